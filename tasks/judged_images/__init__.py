"""Image-output benchmarks scored by a multimodal LLM judge that looks at the generated image: GEdit-Bench
(VIEScore "tie": instruction-guided editing) and WISE (WiScore: world-knowledge text-to-image).

The run's judge (``judge=<config>``) is asked the protocol's registered prompts (``using=``), with the images
encoded and resized as the protocol says. Without a judge nothing is scored: each sample is marked as
needing it (an error, so no metric counts it). A judge that fails after its retries is an error too (the
references would guess or drop the sample), recorded in ``fields["judged_by"]``: ``judge``,
``judge_failed``, ``needs_judge``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.api import DocumentError, MediaError, Reference, Response
from harness.judges.llm import judge_image
from harness.media import load_image
from harness.metrics.base import get_metric
from harness.task import Sample, Task


class JudgedImageTask(Task):
    """Common path: the output image, the judge's verdicts (``judge_verdict``), the metrics on them."""

    def extract(self, doc: Mapping[str, Any], response: Response) -> str | None:
        return response.image or None

    def target(self, doc: Mapping[str, Any]) -> Any:
        return None  # no gold image: the judge is the reference

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        """A known-good image where the fixture has one (``options.oracle_image``, a path template under the
        media root); the real benchmarks have none, so the oracle answers nothing there."""
        template = self.config.options.get("oracle_image")
        if template:
            relative = template.format(**doc)
            if Path(self.media_path(relative)).exists():
                return Reference(image=self.media_path(relative))
        return Reference(text="")

    def judge_verdict(self, doc: Mapping[str, Any], image: str) -> tuple[Any, str | None, str | None]:
        """(scores, error, parse note) from the judge; implemented per benchmark."""
        raise NotImplementedError

    def metric_kwargs(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def score(self, doc: Mapping[str, Any], prediction: Any, target: Any) -> dict[str, Any]:
        opts, extra = self.config.metric_options, self.metric_kwargs(doc)
        return {m: get_metric(m).item(prediction, target, **{**opts.get(m, {}), **extra})
                for m in self.config.metrics}

    def sample_fields(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {k: doc.get(k) for k in self.config.breakdowns}

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                        fields=self.sample_fields(doc))
        if response.error:
            sample.error = response.error
            return sample
        sample.prediction = self.extract(doc, response)
        if not sample.prediction:
            raise MediaError(f"task {self.name}: sample {sample.doc_id} returned no image")
        if self.judge is None:
            sample.fields["judged_by"] = "needs_judge"
            sample.error = (f"needs the image judge: run with judge=<a judge config>, e.g. judge={self.config.judge} "
                            f"(not scored without one)")
            return sample
        scores, error, note = self.judge_verdict(doc, sample.prediction)
        if error:
            sample.fields["judged_by"] = "judge_failed"
            sample.error = f"the judge failed after its retries: {error}"
            return sample
        sample.fields["judged_by"] = "judge"
        sample.fields["judge_scores"] = scores
        sample.parse_error = note
        sample.items = self.score(doc, scores, None)
        return sample


class GEditBench(JudgedImageTask):
    """GEdit-Bench: one split holding English and Chinese instructions; ``options.language`` keeps one. The
    judge sees [source, edited] for SC and the edited image alone for PQ."""

    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        language = self.config.options.get("language", "en")
        for row in super().docs():
            if isinstance(row, DocumentError) or row.get("instruction_language") == language:
                yield row

    def judge_images(self, doc: Mapping[str, Any], edited_path: str) -> tuple[Any, Any]:
        opts = self.config.options.get("judge_images", {})
        source, edited = load_image(self.media_path(doc["input_image"])), load_image(edited_path)
        fmt = opts.get("format", "JPEG")
        if opts.get("resize", "area") == "area":  # lmms-eval: each to ~512*512 pixels, aspect kept
            area = int(opts.get("area", 512 * 512))
            return judge_image(source, area=area, fmt=fmt), judge_image(edited, area=area, fmt=fmt)
        # "source" (Step1X-Edit test_gedit_score.py): the source as stored, the edit resized to its size
        return judge_image(source, fmt=fmt), judge_image(edited, size=source.size, fmt=fmt)

    def judge_verdict(self, doc: Mapping[str, Any], image: str) -> tuple[Any, str | None, str | None]:
        source, edited = self.judge_images(doc, image)
        sc = self.judge.ask(using="viescore_tie_sc", images=[source, edited], instruction=str(doc["instruction"]))
        pq = self.judge.ask(using="viescore_pq", images=[edited])
        if not (sc.ok and pq.ok):
            return None, "; ".join(f"{name}: {v.error}" for name, v in (("SC", sc), ("PQ", pq)) if not v.ok), None
        return {"sc": list(sc.value), "pq": list(pq.value)}, None, None

    def metric_kwargs(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {"group": doc["task_type"]}


WISE_PARTS = ("consistency", "realism", "aesthetic_quality")


class WISE(JudgedImageTask):
    """WISE: the category comes from ``prompt_id`` ranges (``options.categories``), as the official
    ``Calculate.py`` does; the rows' own ``Category`` strings are inconsistent ("time", "Physical Knowledge")."""

    def category(self, doc: Mapping[str, Any]) -> str:
        pid = int(doc["prompt_id"])
        for name, (low, high) in self.config.options["categories"].items():
            if low <= pid <= high:
                return str(name)
        raise DocumentError(f"task {self.name}: prompt_id {pid} is in no WISE category range")

    def sample_fields(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {**{k: doc.get(k) for k in self.config.breakdowns if k != "category"}, "category": self.category(doc)}

    def judge_verdict(self, doc: Mapping[str, Any], image: str) -> tuple[Any, str | None, str | None]:
        verdict = self.judge.ask(using="wise_wiscore", images=[judge_image(image)],  # the file's bytes as they are
                                 prompt=str(doc["Prompt"]), explanation=str(doc["Explanation"]))
        if verdict.ok:
            missing = [k for k in WISE_PARTS if k not in verdict.value]
            note = f"judge gave no {', '.join(missing)}: scored 0, as the reference" if missing else None
            return {k: float(verdict.value.get(k, 0.0)) for k in WISE_PARTS}, None, note
        if verdict.error.startswith("malformed"):  # the reference reads no score as 0 for each part
            return dict.fromkeys(WISE_PARTS, 0.0), None, f"unreadable judge reply, scored 0 as the reference: {verdict.error}"
        return None, verdict.error, None

    def metric_kwargs(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {"category": self.category(doc)}
