"""CharXiv (validation) as the paper-era lmms-eval (0.5.x) ran it: one chart image and one templated question,
the whole stripped response graded by a GPT judge against the gold (1 right, 0 wrong, -1 when the grading
failed; the score is the plain mean of those, -1s included).

Descriptive: the reference repeats the split four times by concatenation and asks row ``j`` of the result its
question ``j % 4 + 1``; as 1,000 is a multiple of 4, every copy of a figure asks the same question, so each
figure gets one question (``descriptive_q{row % 4 + 1}``, ``row`` its position in the split) and, the model
being greedy, the same answer four times. Grading happens when the run aggregates (:meth:`finalize`): answers
grouped by question template, in copy-major order, five per judge call; a figure's score is the one from its
last copy's call (the reference stores scores by figure and template, so later copies overwrite earlier
ones). Only the calls that hold a last copy are made: the others' scores are overwritten in the reference.

Reasoning: one judge call per answer, with the rules of the question's source type.

Without a judge, samples are marked as needing one and never scored. ``fields["answer_source"]`` says how a
sample was graded: ``judge``, ``judge_failed`` (scored -1) or ``needs_judge``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Iterator, Mapping

from harness.api import DocumentError, Response
from harness.judges import charxiv
from harness.judges.llm import PROMPTS
from harness.metrics.base import get_metric
from harness.task import Sample
from tasks.image_mcq import ImageMCQ


class CharXiv(ImageMCQ):
    """What both CharXiv tasks share: the row's position, the image, judge-or-nothing scoring."""

    judge_prompt = ""

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        for i, row in enumerate(super().docs()):
            yield row if isinstance(row, DocumentError) else self.prepare({**row, "_row": i})

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return row

    def target(self, doc: Mapping[str, Any]) -> str:
        return str(doc[self.opts["target_field"]])

    def grade_sample(self, sample: Sample, grade: float | None, extracted: Any = None) -> None:
        """Record a grade (None: the judge failed, scored -1 as the reference's dummy output)."""
        failed = grade is None
        sample.prediction = -1.0 if failed else grade
        sample.fields["answer_source"] = "judge_failed" if failed else "judge"
        sample.fields["extracted_answer"] = "Failed to parse response" if failed else extracted
        if failed:
            sample.parse_error = "the judge failed after its retries; scored -1 and averaged in, as the reference"
        sample.items = {m: get_metric(m).item(sample.prediction, sample.target) for m in self.config.metrics}

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                        target=self.target(doc), fields={k: doc.get(k) for k in self.config.breakdowns})
        if response.error:
            sample.error = response.error
            return sample
        if self.judge is None:
            sample.fields["answer_source"] = "needs_judge"
            sample.error = (f"needs the LLM judge ({self.judge_prompt}): run with judge=<a judge config>, "
                            f"e.g. judge={self.config.judge}")
            return sample
        self.judge_now(doc, sample, str(self.extract(doc, response) or ""))  # the stripped response
        return sample

    def judge_now(self, doc: Mapping[str, Any], sample: Sample, response: str) -> None:
        raise NotImplementedError


class CharXivDescriptive(CharXiv):
    judge_prompt = "charxiv_descriptive"

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        """The question number by split position (the reference's ``indice % 4 + 1``), its template id
        ``qid`` and gold answer."""
        number = row["_row"] % int(self.opts.get("repeats", 4)) + 1
        return {**row, "qid": int(row[f"descriptive_q{number}"]), "descriptive_a": row[f"descriptive_a{number}"]}

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        """The template's instruction, after a subplot prefix: none for the layout templates (18, 19); "For
        the current plot, " when ``subplot_loc`` (else ``[subplot_row, subplot_col]``) is a list starting with
        0; "For the subplot at row r and column c, " for another list; "For <text>, " for a text."""
        qid = doc["qid"]
        template = self.config.prompt["templates"][qid]
        if qid in (18, 19):
            return template
        loc = doc.get("subplot_loc")
        if loc is None:
            loc = [doc["subplot_row"], doc["subplot_col"]]
        if isinstance(loc, str):
            prefix = f"For {loc}, "
        elif isinstance(loc, (list, tuple)):
            prefix = "For the current plot, " if loc[0] == 0 else f"For the subplot at row {loc[0]} and column {loc[1]}, "
        else:
            raise DocumentError(f"task {self.name}: invalid subplot_loc {loc!r}")
        return template.format(prefix)

    def judge_now(self, doc: Mapping[str, Any], sample: Sample, response: str) -> None:
        """Graded later, with the others of its template (see :meth:`finalize`)."""
        sample.prediction = response
        sample.fields.update(answer_source="pending", qid=doc["qid"])

    def finalize(self, samples: list[Sample]) -> list[Sample]:
        pending = [s for s in samples if s.error is None and s.fields.get("answer_source") == "pending"]
        repeats, per_call = int(self.opts.get("repeats", 4)), int(self.opts.get("per_call", 5))
        for qid in sorted({s.fields["qid"] for s in pending}):
            entries = [(copy, s) for copy in range(repeats) for s in pending if s.fields["qid"] == qid]
            for start in range(0, len(entries), per_call):
                batch = entries[start:start + per_call]
                if all(copy != repeats - 1 for copy, _ in batch):
                    continue  # every score of this call is overwritten by a later copy's
                query = charxiv.descriptive_query(qid, [(s.prediction, s.target) for _, s in batch])
                prompt = PROMPTS[self.judge_prompt]
                verdict = self.judge.judge(prompt.render(query=query), version=f"{prompt.name}@{prompt.version}",
                                           parse=partial(charxiv.parse_descriptive, n=len(batch)))
                for i, (copy, s) in enumerate(batch):
                    if copy == repeats - 1:
                        graded = verdict.value[i] if verdict.ok else None
                        self.grade_sample(s, graded and graded["score"], graded and graded["extracted_answer"])
        return pending


class CharXivReasoning(CharXiv):
    judge_prompt = "charxiv_reasoning"

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        """The source type's instruction around the question; type 4 (number in general) adds how many
        decimals the gold has: "exact integer" without a ".", else the length of the text after the first
        "." (the reference's ``get_number_instruction``)."""
        source = int(doc["reasoning_q_source"])
        template = self.config.prompt["templates"][source]
        if source != 4:
            return template.format(doc["reasoning_q"])
        parts = str(doc["reasoning_a"]).split(".")
        numbers = self.config.prompt["number_instruction"]
        hint = numbers["integer"] if len(parts) == 1 else numbers["decimals"].format(n=len(parts[1]))
        return template.format(doc["reasoning_q"], hint)

    def judge_now(self, doc: Mapping[str, Any], sample: Sample, response: str) -> None:
        sample.prediction = response
        query = charxiv.reasoning_query(int(doc["reasoning_q_source"]), str(doc["reasoning_q"]), sample.target,
                                        response)
        verdict = self.judge.ask(using=self.judge_prompt, query=query)
        graded = verdict.value if verdict.ok else None
        self.grade_sample(sample, graded and graded["score"], graded and graded["extracted_answer"])
