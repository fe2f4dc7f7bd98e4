"""MMBench (EN, dev) with circular evaluation, as the paper-era lmms-eval task ran it (``tasks/mmbench``).

Each question appears once per option with the options rotated (copies have ``index >= 1e6``); a question
counts as correct only if every copy is. Per copy the answer is found by, in order: the ``mmbench`` rule
(a lone option letter, then a unique option text), a GPT matcher when a judge is configured, and finally a
random letter seeded with 2680 (which may be the always-wrong "E", as in the protocol). The path taken is
recorded per sample in ``fields["answer_source"]``.
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.api import ImagePart, Part, Response
from harness.extract.base import ExtractContext, get_rule
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
        """(letter, source) with source one of ``rule``, ``judge``, ``random``."""
        ctx = self.extract_context(doc)
        letter = get_rule(self.config.extract)(text, ctx)
        if letter:
            return letter, "rule"
        if self.judge is not None:
            verdict = self.judge.ask(question=str(doc.get("question", "")), answer=text,
                                     options="\n".join(f"{k}. {v}" for k, v in ctx.options.items()))
            if verdict.ok and verdict.value:
                return verdict.value, "judge"
        from harness.extract.mmbench import mmbench_random_letter

        return mmbench_random_letter(ctx.options, doc_key=self.doc_id(doc)), "random"

    def extract(self, doc: Mapping[str, Any], response: Response) -> str:
        return self.infer_answer(doc, response.text)[0]

    def group(self, doc: Mapping[str, Any]) -> int:
        """The question a (possibly rotated) copy belongs to; also its bootstrap cluster."""
        return int(doc["index"]) % CIRCULAR_STRIDE

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        return {m: get_metric(m).item(prediction, target, group=self.group(doc)) for m in self.config.metrics}

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        """As the base class, but every copy gets an answer (the protocol never leaves one unscored) and the
        path that produced it is recorded."""
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                        target=self.target(doc), cluster=str(self.group(doc)),
                        fields={k: doc.get(k) for k in self.config.breakdowns})
        if response.error:
            sample.error = response.error
            return sample
        sample.prediction, source = self.infer_answer(doc, response.text or "")
        sample.fields["answer_source"] = source
        if source == "random":
            sample.parse_error = "no option found in the response; scored with the seeded random letter"
        sample.items = self.score(doc, sample.prediction, sample.target)
        return sample
