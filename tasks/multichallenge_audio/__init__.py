"""MultiChallenge Audio: a spoken multi-turn conversation, the model writes the last assistant turn, and an LLM
judge decides whether that reply meets the row's criteria. Two public releases, one plugin each:

* :class:`MultiChallengeAudio` (``multichallenge_audio``): MiMo-Audio-Eval's MultiChallenge Audio, the text
  MultiChallenge conversations with spoken user turns. The model hears the user turns (``speech_dialogue``)
  and reads the earlier assistant turns as text (``CONVERSATION``); one YES/NO judgement of the cleaned reply
  against ``TARGET_QUESTION`` (prompt ``multichallenge_verdict``); the reply passes when the verdict equals
  ``PASS_CRITERIA`` and the reply is not empty.
* :class:`AudioMultiChallenge` (``multichallenge_audio_audiomc``): Scale AI's Audio MultiChallenge (audiomc),
  fixed-context protocol: user turns as audio, the dataset's assistant transcripts between them, no system
  prompt; every rubric item judged on its own (prompt ``audiomc_rubric``); the conversation passes when every
  item is met (pass rate, APR) and scores the share met (rubric score, ARS).

``options.user_turns: text`` gives either release's text baseline (the transcripts instead of the audio).
Without a judge a sample is marked as needing one and never scored; ``fields["judged_by"]`` records the path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.api import AudioPart, DocumentError, Message, Reference, Request, Response, TextPart
from harness.task import Sample, Task
from tasks.common import media_field, numbered


class JudgedDialogue(Task):
    """What both releases share: the multi-turn request, the known-good replies of the sample fixture, and a
    sample that needs the run's judge."""

    judge_prompt = ""

    @property
    def spoken(self) -> bool:
        mode = self.config.options.get("user_turns", "audio")
        if mode not in ("audio", "text"):
            raise ValueError(f"task {self.name}: options.user_turns must be audio or text, not {mode!r}")
        return mode == "audio"

    def turns(self, doc: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
        """The conversation up to the last user turn: ``(role, text, audio path or None)``."""
        raise NotImplementedError

    def build_request(self, doc: Mapping[str, Any]) -> Request:
        messages = []
        for role, text, audio in self.turns(doc):
            if role == "user" and self.spoken:
                if not audio:
                    raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} has a user turn without audio")
                messages.append(Message.user(AudioPart(self.media_path(audio))))
            elif role == "system":
                messages.append(Message.system(text))
            else:
                messages.append(Message(role, (TextPart(text),)))  # type: ignore[arg-type]
        return Request(task=self.name, doc_id=self.doc_id(doc), messages=tuple(messages),
                       generation=self.config.generation, output=self.config.output, reference=self.oracle(doc))

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        """A reply known to meet the row's criteria where the fixture has one (``options.oracle_replies``: a
        JSON file under the media root, keyed by document id); the releases have none, so the oracle says
        nothing there."""
        relative = self.config.options.get("oracle_replies")
        if relative and self.data == "sample":
            replies = json.loads(Path(self.media_path(relative)).read_text(encoding="utf-8"))
            return Reference(text=str(replies.get(self.doc_id(doc), "")))
        return Reference(text="")

    def started(self, doc: Mapping[str, Any], response: Response, request_hash: str) -> Sample:
        """The sample before judging: gold and breakdown fields filled, or the model's error."""
        return Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response, target=self.target(doc),
                      fields={k: doc.get(k) for k in self.config.breakdowns}, error=response.error)

    def needs_judge(self, sample: Sample) -> Sample:
        sample.fields["judged_by"] = "needs_judge"
        sample.error = (f"needs the LLM judge ({self.judge_prompt}): run with judge=<a judge config>, "
                        f"e.g. judge={self.config.judge}")
        return sample


class MultiChallengeAudio(JudgedDialogue):
    judge_prompt = "multichallenge_verdict"

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        """Rows as stored, each with ``uid`` = its position (the reference names its items so)."""
        yield from numbered(super().docs(), "uid")

    def turns(self, doc: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
        text_turns, speech_turns = doc.get("CONVERSATION"), doc.get("speech_dialogue")
        row = self.doc_id(doc)
        if not isinstance(text_turns, list) or not isinstance(speech_turns, list):
            raise DocumentError(f"task {self.name}: row {row} lacks the CONVERSATION or speech_dialogue list")
        if len(text_turns) != len(speech_turns) or not text_turns or text_turns[-1].get("role") != "user":
            raise DocumentError(f"task {self.name}: row {row} has {len(text_turns)} text turns and "
                                f"{len(speech_turns)} spoken ones, or does not end with a user turn")
        if not all(isinstance(t, Mapping) and t.get("role") in ("system", "user", "assistant") and "content" in t
                   for t in [*text_turns, *speech_turns]):
            raise DocumentError(f"task {self.name}: row {row} has a turn without a known role and a content")
        # The reference joins each path to the data folder after lstrip("./").
        return [(t["role"], str(t["content"]), str(s["content"]).lstrip("./") if t["role"] == "user" else None)
                for t, s in zip(text_turns, speech_turns)]

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc.get("PASS_CRITERIA", "")).strip().upper()

    @staticmethod
    def cleaned(text: str) -> str:
        """The reference's clean-up of every reply before judging: stripped, cut at "<|eot|>", and "....." then
        "..." then ".." deleted."""
        return text.strip().split("<|eot|>")[0].replace(".....", "").replace("...", "").replace("..", "")

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = self.started(doc, response, request_hash)
        if sample.error:
            return sample
        reply = self.cleaned(response.text or "")
        if not reply:  # the reference scores an empty reply 0 whatever its judge says: no call needed
            sample.parse_error, sample.prediction, sample.fields["judged_by"] = "empty response", False, "empty"
        elif self.judge is None:
            return self.needs_judge(sample)
        else:
            verdict = self.judge.ask(using=self.judge_prompt, response=reply, criteria=str(doc["TARGET_QUESTION"]))
            sample.fields["judged_by"] = "judge" if verdict.ok else "judge_failed"
            sample.fields["verdict"] = verdict.value
            sample.prediction = verdict.ok and verdict.value == sample.target
            if not verdict.ok:
                sample.parse_error = (f"the judge failed after its retries ({verdict.error}); scored 0, as the "
                                      f"reference")
        sample.items = self.score(doc, sample.prediction, sample.target)
        return sample


MAX_USER_TURNS = 8  # audiomc's user_turn_1..8 columns


class AudioMultiChallenge(JudgedDialogue):
    judge_prompt = "audiomc_rubric"

    def last_user_turn(self, doc: Mapping[str, Any]) -> int:
        """The last k whose ``user_turn_k_transcript`` is not blank (the dataset card's rule)."""
        filled = [k for k in range(1, MAX_USER_TURNS + 1) if str(doc.get(f"user_turn_{k}_transcript") or "").strip()]
        if not filled:
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} has no user turn")
        return filled[-1]

    def turns(self, doc: Mapping[str, Any]) -> list[tuple[str, str, str | None]]:
        last = self.last_user_turn(doc)
        out: list[tuple[str, str, str | None]] = []
        for k in range(1, last + 1):
            audio = media_field(doc, f"user_turn_{k}_audio", self.name) if self.spoken else None
            out.append(("user", str(doc.get(f"user_turn_{k}_transcript") or "").strip(), audio))
            if k < last:
                out.append(("assistant", str(doc.get(f"assistant_turn_{k}_transcript") or "").strip(), None))
        return out

    def rubric(self, doc: Mapping[str, Any]) -> list[str]:
        """The row's rubric items: a list, a JSON list in a string, or one item per line."""
        value = doc.get("rubric")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = value.splitlines()
        items = [str(v).strip() for v in (value if isinstance(value, list) else [value]) if v and str(v).strip()]
        if not items:
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} has no rubric items")
        return items

    def target(self, doc: Mapping[str, Any]) -> list[str]:
        return self.rubric(doc)

    def history(self, doc: Mapping[str, Any], reply: str) -> str:
        """The conversation as the judge reads it: "User: ..." / "Assistant: ..." paragraphs (blank turns
        left out), the model's reply as the last assistant turn."""
        lines = [f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text, _ in self.turns(doc) if text]
        return "\n\n".join([*lines, f"Assistant: {reply}"])

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = self.started(doc, response, request_hash)
        if sample.error:
            return sample
        if self.judge is None:
            return self.needs_judge(sample)
        reply = response.text or ""
        if not reply.strip():
            sample.parse_error = "empty response"
        history = self.history(doc, reply)
        verdicts = [self.judge.ask(using=self.judge_prompt, conversation_history=history, rubric_item=item)
                    for item in sample.target]
        met = [bool(v.ok and v.value) for v in verdicts]
        failed = sum(not v.ok for v in verdicts)
        sample.fields["judged_by"] = "judge_failed" if failed else "judge"
        sample.fields["criteria_met"] = met
        if failed:
            sample.parse_error = f"{failed} of {len(met)} rubric gradings failed after retries; counted as not met"
        sample.prediction = met
        sample.items = {"judged_binary": float(all(met)), "judged_grade": sum(met) / len(met)}
        return sample
