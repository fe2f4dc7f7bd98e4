"""Clotho v2 audio captioning: one clip in, one sentence out, CIDEr against its five reference captions.

Rows follow the official ``clotho_captions_evaluation.csv`` (``file_name, caption_1 .. caption_5``); audio
is ``<media_root>/audio/<file_name>`` (the release's ``evaluation/`` folder renamed).
"""

from __future__ import annotations

from typing import Any, Mapping

from harness.api import AudioPart, DocumentError, Part, Reference
from harness.task import Task

N_CAPTIONS = 5


class ClothoCaption(Task):
    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return [AudioPart(self.media_path(f"{self.config.options.get('audio_dir', 'audio')}/{doc['file_name']}"))]

    def target(self, doc: Mapping[str, Any]) -> list[str]:
        try:
            return [str(doc[f"caption_{i}"]) for i in range(1, N_CAPTIONS + 1)]
        except KeyError as e:
            raise DocumentError(f"task {self.name}: row {doc.get('file_name')!r} lacks {e}") from None

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(text=self.target(doc)[0])
