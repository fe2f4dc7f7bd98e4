"""Text-to-speech scored through ASR (Seed-TTS-eval convention): text in, speech out, the speech transcribed
by the protocol's recogniser and compared with the input text (``wer_mean``: per-utterance WER/CER, averaged).

One plugin serves every TTS set of the paper (Seed-TTS en/zh/hard, LibriTTS clean/other, TinyStories en/zh);
the YAML says:

* ``options.list_file``: read rows from a Seed-TTS ``*.lst`` file (``utt|prompt_text|prompt_wav|text``, also
  its 2-, 3- and 5-field variants) in the sample folder or ``data_dir``, instead of ``docs.jsonl``/the hub;
* ``options.text_field``: the column to synthesise and to score against (``text``, ``text_normalized``);
* ``options.index_ids``: rows carry no identifier (TinyStories): the id is the row's position in the split;
* ``options.prompt_audio_field``: the column of a voice prompt to send with the text (off by default: the
  Uni-MoE-2.0-Omni speech decoder speaks in fixed voices and takes no reference audio);
* ``options.reference_audio``: where a row's real recording is (a column, or a ``{field}`` path template);
  only the ``oracle`` adapter reads it;
* ``options.asr``: the recogniser (``harness.judges.asr.build_asr``): the reference's by default, any
  registered engine by override, e.g. ``task.options.asr.engine=faster_whisper`` (offline Whisper tiny.en).

A response without audio, a missing ASR model or an unreadable clip is an error on that sample (excluded,
as Seed-TTS-eval skips utterances without a wav), and the run goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.api import AudioPart, DocumentError, MediaError, Part, Reference, Response
from harness.judges.asr import ASRJudge, build_asr
from harness.task import Task
from tasks.common import media_field, numbered

LIST_FIELDS = {
    2: ("utt", "text"),
    3: ("utt", "text", "prompt_wav"),
    4: ("utt", "prompt_text", "prompt_wav", "text"),
    5: ("utt", "prompt_text", "prompt_wav", "text", "infer_wav"),
}


def read_seedtts_list(path: Path) -> Iterator[dict[str, Any] | DocumentError]:
    """Rows of a Seed-TTS-eval ``meta.lst`` / ``hardcase.lst`` (pipe-separated, one utterance a line)."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().split("|")
            names = LIST_FIELDS.get(len(parts))
            if names is None:
                yield DocumentError(f"{path}:{lineno}: expected 2-5 '|'-separated fields, got {len(parts)}")
                continue
            row = dict(zip(names, parts))
            if row["utt"].endswith(".wav"):
                row["utt"] = row["utt"][:-4]
            yield row


class TTS(Task):
    @property
    def text_field(self) -> str:
        return str(self.config.options.get("text_field", "text"))

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        list_file = self.config.options.get("list_file")
        if list_file and (self.data == "sample" or self.data_dir):
            rows: Iterator[Any] = read_seedtts_list(self.media_root / list_file)
        else:
            rows = super().docs()
        yield from numbered(rows, self.config.doc_id) if self.config.options.get("index_ids") else rows

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        if not str(doc.get(self.text_field) or "").strip():
            raise DocumentError(f"task {self.name}: row has no text to synthesise in {self.text_field!r}")
        return super().prompt_text(doc)

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        key = self.config.options.get("prompt_audio_field")
        return [AudioPart(self.media_path(media_field(doc, key, self.name)))] if key else []

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc.get(self.text_field) or "")

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        where = self.config.options.get("reference_audio")
        if not where:
            return Reference(text=self.target(doc))
        relative = where.format(**doc) if "{" in where else media_field(doc, where, self.name)
        return Reference(text=self.target(doc), audio=self.media_path(relative))

    # ---- scoring
    def asr(self) -> ASRJudge:
        """A run-level ASR judge when one is attached, else the task's own (``options.asr``)."""
        if self.judge is not None and hasattr(self.judge, "transcribe"):
            return self.judge
        return build_asr(self.config.options.get("asr") or {})

    def judge_identity(self) -> dict[str, Any] | None:
        return self.asr().identity()

    def extract(self, doc: Mapping[str, Any], response: Response) -> str:
        """The ASR transcript of the generated speech (the 'prediction' scored against the input text)."""
        if not response.audio:
            raise MediaError(f"task {self.name}: sample {self.doc_id(doc)} returned no audio")
        return self.asr().transcribe(response.audio)
