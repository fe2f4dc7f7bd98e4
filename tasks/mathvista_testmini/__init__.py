"""MathVista (testmini) as lmms-eval 0.5.x ran it: the query built for one of its prompt variants, answers
found by the ``mathvista`` rule or, where the protocol asks GPT, by the run's LLM judge with the
``mathvista_extract`` prompt; then the type-aware normalisation and a string compare (the metrics).

Without a judge, a response the rule cannot read is not guessed: the sample is marked as needing the judge
(an error, so no metric counts it). A judge that fails after its retries gives "" as in the reference, which
the normalisation then scores (for multiple choice, the shortest choice). ``fields["answer_source"]`` records
the path: ``rule``, ``judge``, ``judge_failed`` or ``needs_judge``.
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.api import DocumentError, Response
from harness.extract.base import get_rule
from harness.task import Sample
from tasks.common import LETTERS
from tasks.image_mcq import ImageMCQ

JUDGE_PROMPT = "mathvista_extract"


class MathVista(ImageMCQ):
    judge_prompt = JUDGE_PROMPT  # the protocol's registered judge prompt (harness.judges.llm.PROMPTS)
    judge_role = "LLM answer extractor"
    judge_failed_note = "the judge failed after its retries; scored with an empty extraction, as the reference"

    def shot_type(self) -> str:
        return str(self.opts.get("shot_type", "format-prompt"))

    def choice_list(self, doc: Mapping[str, Any]) -> list[str]:
        return [str(c) for c in (doc.get("choices") or [])]

    def options(self, doc: Mapping[str, Any]) -> dict[str, str]:
        return dict(zip(LETTERS, self.choice_list(doc)))

    def hint(self, doc: Mapping[str, Any]) -> str:
        """The variant's instruction for the question's type (``prompt.hints`` in the task YAML)."""
        hints = self.config.prompt["hints"][self.shot_type()]
        if doc["question_type"] == "multi_choice":
            return hints["multi_choice"]
        kind = doc["answer_type"]
        if kind == "float":
            kind = {1: "float_1", 2: "float_2"}.get(doc.get("precision"))  # 1.0 == 1: the hub's float64 works
        if kind not in hints:
            raise DocumentError(f"task {self.name}: no {self.shot_type()} hint for answer type "
                                f"{doc['answer_type']!r} with precision {doc.get('precision')!r}")
        return hints[kind]

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        """``create_one_query`` with zero shots: the question (prefixed "Question: " except in format-prompt),
        " (Unit: u)", the choices ("A. x" lines in format-prompt, else "Choices:" and "(A) x" lines), the hint
        (first in reason-first, else after the choices) and the variant's answer cue, joined by newlines
        without empty parts; the whole query is stripped (so "Solution: " loses its space)."""
        fmt = self.shot_type() == "format-prompt"
        question = doc["question"] if fmt else f"Question: {doc['question']}"
        if doc.get("unit"):
            question += f" (Unit: {doc['unit']})"
        pairs = list(zip(LETTERS, self.choice_list(doc)))
        if not pairs:
            choices = ""
        elif fmt:
            choices = "\n".join(f"{k}. {v}" for k, v in pairs)
        else:
            choices = "\n".join(["Choices:", *(f"({k}) {v}" for k, v in pairs)])
        cue = self.config.prompt.get("cues", {}).get(self.shot_type(), "")
        hint = self.hint(doc)
        parts = [hint, question, choices, cue] if self.shot_type() == "reason-first" else [question, choices, hint, cue]
        return "\n".join(p for p in parts if p != "").strip()

    # ---- extraction: rule, then the judge
    def infer_answer(self, doc: Mapping[str, Any], text: str) -> tuple[str | None, str]:
        found = get_rule(self.config.extract)(text, self.extract_context(doc))
        if found is not None:
            return found, "rule"
        if self.judge is None:
            return None, "needs_judge"
        verdict = self.judge.ask(using=self.judge_prompt, query=str(doc["query"]), response=text.strip())
        return (verdict.value, "judge") if verdict.ok else ("", "judge_failed")

    def metric_kwargs(self, name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {"question_type": doc["question_type"], "answer_type": doc["answer_type"],
                "choices": self.choice_list(doc), "precision": doc.get("precision")}

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                        target=self.target(doc), fields={k: doc.get(k) for k in self.config.breakdowns},
                        cluster=str(doc[self.config.cluster_key]) if self.config.cluster_key else None)
        if response.error:
            sample.error = response.error
            return sample
        sample.prediction, source = self.infer_answer(doc, response.text or "")
        sample.fields["answer_source"] = source
        if source == "needs_judge":
            sample.error = (f"needs the {self.judge_role} ({self.judge_prompt}): run with judge=<a judge config>, "
                            f"e.g. judge={self.config.judge}")
            return sample
        if source == "judge_failed":
            sample.parse_error = self.judge_failed_note
        sample.items = self.score(doc, sample.prediction, sample.target)
        return sample
