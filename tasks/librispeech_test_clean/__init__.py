"""LibriSpeech ASR (lmms-eval ``tasks/librispeech``): one audio clip in, its transcript out, corpus WER.

The model's raw text is scored; the ``wer`` metric applies the protocol's normaliser (Whisper English
normaliser, then the basic one, sacreBLEU tokens) and sums edits over the whole corpus.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping

from harness.api import AudioPart, Part
from harness.task import Task
from tasks.common import media_field


class LibriSpeech(Task):
    def doc_id(self, doc: Mapping[str, Any]) -> str:
        """The utterance id (the audio file's stem): the hub rows carry no other identifier."""
        return PurePosixPath(media_field(doc, "audio", self.name)).stem

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return [AudioPart(self.media_path(media_field(doc, "audio", self.name)))]
