"""MathVerse (testmini, vision-centric versions) as lmms-eval 0.5.x runs it: the row's ``query_wo`` as the
prompt (format-prompt, zero shots), and the whole stripped response judged right or wrong by an LLM against
``question_for_eval`` and the gold (prompt ``mathverse_binary``; no separate answer extraction in this
version). A response identical to the gold is counted right without asking (``answer_source: exact``); every
other sample needs the run's judge and, without one, is marked as needing it and never scored. A judge that
fails after its retries scores 0, as the reference does."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from harness.api import DocumentError
from tasks.mathvista_testmini import MathVista


class MathVerse(MathVista):
    judge_prompt = "mathverse_binary"
    judge_role = "LLM judge"
    judge_failed_note = "the judge failed after its retries; scored 0, as the reference"

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        """Rows as stored, with ``metadata.subject``/``subfield`` lifted out for the breakdowns."""
        for row in super().docs():
            if isinstance(row, DocumentError):
                yield row
                continue
            meta = row.get("metadata") or {}
            yield {**row, "subject": meta.get("subject"), "subfield": meta.get("subfield")}

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        return str(doc[self.opts.get("query_field", "query_wo")]).strip()

    def image_fields(self, doc: Mapping[str, Any]) -> list[str]:
        """The image, unless the row has none (``str(image).strip() == ""`` in the reference)."""
        value = doc.get("image")
        return [] if value is None or str(value).strip() == "" else ["image"]

    def infer_answer(self, doc: Mapping[str, Any], text: str) -> tuple[int | None, str]:
        """The verdict (1 right, 0 wrong) and how it was reached: ``exact``, ``judge``, ``judge_failed`` or
        ``needs_judge``."""
        prediction = text.strip()
        answer = str(doc["answer"])
        if self.opts.get("exact_prefilter", True) and prediction == answer:
            return 1, "exact"
        if self.judge is None:
            return None, "needs_judge"
        verdict = self.judge.ask(using=self.judge_prompt, question=str(doc["question_for_eval"]), answer=answer,
                                 prediction=prediction)
        return (int(verdict.value), "judge") if verdict.ok else (0, "judge_failed")

    def metric_kwargs(self, name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {}
