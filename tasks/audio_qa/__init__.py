"""Open-answer questions about an audio clip, or asked BY the clip (spoken QA): one plugin, set by YAML.

ClothoAQA (single-word answer, exact match), MELD (one of seven emotion labels), Llama Questions and spoken
WebQuestions (the gold answer string must occur in the reply). Options:

* ``audio_field`` (a column holding a path or a hub ``Audio`` cell) or ``audio_template`` (a path built from
  row fields, e.g. MELD's ``dia{Dialogue_ID}_utt{Utterance_ID}.mp4``);
* ``id_template``: the document id from row fields, for rows without an id column; without it and without
  the ``doc_id`` column, the id is the clip's file stem plus a hash of the question (several questions per
  clip stay distinct and the id never depends on row order);
* ``cluster_by_audio``: questions on one clip share a standard-error cluster;
* ``labels``: a closed answer set handed to the extraction rule as its options (MELD).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping

from harness.api import AudioPart, DocumentError, Part, Reference, Response, stable_hash
from harness.extract.base import ExtractContext
from harness.task import Sample, Task
from tasks.common import media_field


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

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return [AudioPart(self.media_path(self.audio_path(doc)))]

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        labels = self.config.options.get("labels") or ()
        return ExtractContext(options={str(k): str(k) for k in labels}, doc=doc, seed=self.seed)

    def target(self, doc: Mapping[str, Any]) -> Any:
        field = self.config.options.get("target_field", "answer")
        if field not in doc:
            raise DocumentError(f"task {self.name}: row {self.doc_id(doc)} has no gold field {field!r}")
        value = doc[field]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        gold = self.target(doc)
        return Reference(text=gold[0] if isinstance(gold, list) else gold)

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = super().process(doc, response, request_hash)
        if self.config.options.get("cluster_by_audio"):
            sample.cluster = PurePosixPath(self.audio_path(doc)).stem
        return sample
