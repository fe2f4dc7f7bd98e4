"""MMBench (EN, dev) with circular evaluation, as the paper-era lmms-eval task ran it (``tasks/mmbench``).

Each question appears once per option with the options rotated (copies have ``index >= 1e6``); a question
counts as correct only if every copy is. Per copy the answer is found by, in order: the task's rule (the
paper-era ``mmbench_lmms05``: a lone option letter, then a unique option text), a GPT matcher when a judge is
configured, and finally a random letter seeded with 2680 (which may be the always-wrong "E", as in the
protocol). The path taken is recorded per sample in ``fields["answer_source"]``.

``options.secondary_extract`` maps further metric names to other rules (``circular_accuracy_vlmevalkit``:
VLMEvalKit's newer rule): those metrics score the same responses with answers inferred by that rule (judge
verdict and random letter shared), and each copy's secondary letters are logged in
``fields["secondary_predictions"]``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from harness.api import ImagePart, Part, Response
from harness.extract.base import ExtractContext, get_rule
from harness.extract.mmbench import mmbench_random_letter
from harness.metrics.base import get_metric
from harness.task import Sample, Task
from tasks.common import LETTERS, media_field, present

CIRCULAR_STRIDE = 1_000_000  # copy c of question i has index c * 1e6 + i


class MMBench(Task):
    def doc_id(self, doc: Mapping[str, Any]) -> str:
        return str(int(doc["index"]))  # one hub revision stores ``index`` as a string

    def options(self, doc: Mapping[str, Any]) -> dict[str, str]:
        return {letter: str(doc[letter]) for letter in LETTERS[:5] if present(doc.get(letter))}

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        p = self.config.prompt
        options = "\n".join([p["options_header"], *(f"{k}. {v}" for k, v in self.options(doc).items())])
        parts = [doc["hint"]] if present(doc.get("hint")) else []
        query = " ".join([*parts, doc["question"], options])
        return f"{query}\n{p['post']}"

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return [ImagePart(self.media_path(media_field(doc, "image", self.name)))]

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(self.options(doc))

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        return ExtractContext(options=self.options(doc), doc=doc, seed=self.seed)

    # ---- answer inference: rule -> judge -> seeded random letter
    def infer_answer(self, doc: Mapping[str, Any], text: str) -> tuple[str, str]:
        """(letter, source) by the task's rule, with source one of ``rule``, ``judge``, ``random``."""
        return self._infer_answers(doc, text, (self.config.extract,))[0]

    def _infer_answers(self, doc: Mapping[str, Any], text: str, rules: Sequence[str]) -> list[tuple[str, str]]:
        """One (letter, source) per rule; the judge is asked at most once, and only if some rule fails."""
        ctx = self.extract_context(doc)
        fallback: tuple[str, str] | None = None
        answers = []
        for rule in rules:
            letter = get_rule(rule)(text, ctx)
            if not letter and fallback is None:
                fallback = self._fallback_answer(doc, text, ctx)
            answers.append((letter, "rule") if letter else fallback)
        return answers

    def _fallback_answer(self, doc: Mapping[str, Any], text: str, ctx: ExtractContext) -> tuple[str, str]:
        """The GPT matcher's letter when a judge is configured and answers, else the seeded random letter."""
        if self.judge is not None:
            verdict = self.judge.ask(question=str(doc.get("question", "")), answer=text,
                                     options="\n".join(f"{k}. {v}" for k, v in ctx.options.items()))
            if verdict.ok and verdict.value:
                return verdict.value, "judge"
        return mmbench_random_letter(doc, doc_key=self.doc_id(doc)), "random"

    @property
    def secondary_rules(self) -> dict[str, str]:
        """metric name -> the rule whose answers that metric scores (metrics not named use the task's rule)."""
        return dict(self.config.options.get("secondary_extract", {}))

    def extract(self, doc: Mapping[str, Any], response: Response) -> str:
        return self.infer_answer(doc, response.text)[0]

    def group(self, doc: Mapping[str, Any]) -> int:
        """The question a (possibly rotated) copy belongs to; also its bootstrap cluster."""
        return int(doc["index"]) % CIRCULAR_STRIDE

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any,
              secondary: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Circular items per metric, from ``prediction`` or, for a secondary metric, its own letter."""
        letters = secondary or {}
        return {m: get_metric(m).item(letters.get(m, prediction), target, group=self.group(doc))
                for m in self.config.metrics}

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        """As the base class, but every copy gets an answer (the protocol never leaves one unscored) and the
        path that produced it is recorded."""
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                        target=self.target(doc), cluster=str(self.group(doc)),
                        fields={k: doc.get(k) for k in self.config.breakdowns})
        if response.error:
            sample.error = response.error
            return sample
        metrics = [m for m in self.config.metrics if m in self.secondary_rules]
        rules = [self.config.extract, *(self.secondary_rules[m] for m in metrics)]
        (sample.prediction, source), *others = self._infer_answers(doc, response.text or "", rules)
        secondary = {m: letter for m, (letter, _) in zip(metrics, others)}
        sample.fields["answer_source"] = source
        if secondary:
            sample.fields["secondary_predictions"] = secondary
        if source == "random":
            sample.parse_error = "no option found in the response; scored with the seeded random letter"
        sample.items = self.score(doc, sample.prediction, sample.target, secondary)
        return sample
