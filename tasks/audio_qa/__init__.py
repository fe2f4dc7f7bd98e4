"""Open-answer questions about an audio clip, or asked BY the clip (spoken QA): one plugin, set by YAML.

ClothoAQA (single-word answer, exact match), MELD (one of seven emotion labels), Llama Questions and spoken
WebQuestions (the gold answer string must occur in the reply). Options:

* ``audio_field`` (a column holding a path or a hub ``Audio`` cell) or ``audio_template`` (a path built from
  row fields, e.g. MELD's ``dia{Dialogue_ID}_utt{Utterance_ID}.mp4``);
* ``id_template``: the document id from row fields, for rows without an id column; without it and without
  the ``doc_id`` column, the id is the clip's file stem plus a hash of the question (several questions per
  clip stay distinct and the id never depends on row order);
* ``cluster_by_audio``: questions on one clip share a standard-error cluster;
* ``labels``: a closed answer set handed to the extraction rule as its options (MELD);
* ``visual``: media shown with a SPOKEN question (A-OKVQA / VQAv2 / ActivityNet-QA read aloud): a list of
  ``{kind: image|video, field: <column>}`` or ``{kind, path: "<template over the row>"}``, placed before the
  audio (video: ``fps`` / ``max_frames`` options);
* ``target_path``: a key read inside each element of the gold list (VQAv2's ``answers[*].answer``).

:class:`JudgedAudioQA` scores free answers with a Video-ChatGPT-style LLM judge (ActivityNet-QA).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping

from harness.api import AudioPart, DocumentError, ImagePart, Part, Reference, Response, VideoPart, stable_hash
from harness.extract.base import ExtractContext, get_rule
from harness.task import Sample, Task
from tasks.common import media_field, spec_media


class AudioQA(Task):
    def audio_path(self, doc: Mapping[str, Any]) -> str:
        template = self.config.options.get("audio_template")
        if template:
            try:
                return template.format(**doc)
            except KeyError as e:
                raise DocumentError(f"task {self.name}: row lacks field {e} for its audio path") from None
        return media_field(doc, self.config.options.get("audio_field", "audio"), self.name)

    def doc_id(self, doc: Mapping[str, Any]) -> str:
        template = self.config.options.get("id_template")
        if template:
            return template.format(**doc)
        if self.config.doc_id in doc:
            return str(doc[self.config.doc_id])
        question = str(doc.get("question", ""))
        return f"{PurePosixPath(self.audio_path(doc)).stem}-{stable_hash(question, 8)}"

    def visual_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        opts = self.config.options
        parts: list[Part] = []
        for spec in opts.get("visual", ()):
            path = self.media_path(spec_media(doc, spec, self.name))
            if spec["kind"] == "image":
                parts.append(ImagePart(path))
            elif spec["kind"] == "video":
                parts.append(VideoPart(path, fps=float(opts.get("fps", 1.0)), max_frames=int(opts.get("max_frames", 64))))
            else:
                raise ValueError(f"task {self.name}: unknown visual kind {spec['kind']!r}")
        return parts

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return [*self.visual_parts(doc), AudioPart(self.media_path(self.audio_path(doc)))]

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        labels = self.config.options.get("labels") or ()
        return ExtractContext(options={str(k): str(k) for k in labels}, doc=doc, seed=self.seed)

    def target(self, doc: Mapping[str, Any]) -> Any:
        field = self.config.options.get("target_field", "answer")
        if field not in doc:
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} has no gold field {field!r}")
        value = doc[field]
        key = self.config.options.get("target_path")
        if key and isinstance(value, (list, tuple)):
            value = [v[key] for v in value]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        gold = self.target(doc)
        return Reference(text=gold[0] if isinstance(gold, list) else gold)

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = super().process(doc, response, request_hash)
        if self.config.options.get("cluster_by_audio"):
            sample.cluster = PurePosixPath(self.audio_path(doc)).stem
        return sample


class JudgedAudioQA(AudioQA):
    """A free answer judged against the gold one by an LLM with the ``videochatgpt_qa`` prompt (Video-ChatGPT
    protocol, as lmms-eval's ``activitynetqa``): the verdict ``{pred: yes/no, score: 0-5}`` is the prediction,
    and a judge failure counts as ``no`` / 0 as in the reference. Without a judge the run stays usable
    offline: a normalised exact match stands in (yes/5 or no/0), and every sample records which path scored
    it in ``fields["judged_by"]`` (``judge``, ``judge_failed`` or ``exact_match_fallback``)."""

    JUDGE_PROMPT = "videochatgpt_qa"

    def verdict(self, doc: Mapping[str, Any], answer: str) -> tuple[dict[str, Any], str]:
        gold = self.target(doc)
        if self.judge is not None:
            prompt = getattr(getattr(self.judge, "prompt", None), "name", None)
            if prompt != self.JUDGE_PROMPT:
                raise ValueError(f"task {self.name} needs a judge with prompt {self.JUDGE_PROMPT!r}, not {prompt!r}")
            v = self.judge.ask(question=str(doc.get("question", "")), reference=gold, answer=answer)
            if v.ok:
                return {"pred": bool(v.value["pred"]), "score": int(v.value["score"])}, "judge"
            return {"pred": False, "score": 0}, "judge_failed"
        from harness.metrics.base import get_metric

        hit = get_metric("exact_match").item(answer, gold) == 1.0
        return {"pred": hit, "score": 5 if hit else 0}, "exact_match_fallback"

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                        target=self.target(doc), fields={k: doc.get(k) for k in self.config.breakdowns})
        if self.config.cluster_key:
            sample.cluster = str(doc[self.config.cluster_key])
        if response.error:
            sample.error = response.error
            return sample
        answer = get_rule(self.config.extract)(response.text or "", self.extract_context(doc))
        if not str(answer).strip():
            sample.parse_error = "empty response"
        sample.prediction, sample.fields["judged_by"] = self.verdict(doc, str(answer))
        sample.items = self.score(doc, sample.prediction, sample.target)
        return sample

    def aggregate(self, samples):  # type: ignore[override]
        """As the base class, but metrics in ``options.unscaled`` (the 0-5 judge score) are not multiplied
        by the task's scale."""
        out = super().aggregate(samples)
        for name in self.config.options.get("unscaled", ()):
            mv = out[name]
            mv.value /= self.config.scale
            mv.stderr = None if mv.stderr is None else mv.stderr / self.config.scale
        return out
