"""Speech recognition, the LibriSpeech protocol of lmms-eval (``tasks/librispeech``): one audio clip in, its
transcript out, corpus error rate. One plugin serves every ASR set of the paper (LibriSpeech short and long,
FLEURS, MLS, Common Voice, VoxPopuli, AISHELL); the YAML names the columns:

* ``options.audio_field`` (default ``audio``): the column holding the clip, a path or a hub ``Audio`` cell;
* ``options.target_field``: the reference transcript column (``gt``, ``transcript``, ``transcription``, ...);
* ``doc_id``: a column, or the audio column itself to key rows by the clip's file stem (LibriSpeech rows
  carry no other identifier; FLEURS ``id`` repeats across speakers of one sentence).

The model's raw text is scored: ``wer`` (English) and ``cer_zh`` (Chinese) apply the protocol's
normalisers. Long recordings need nothing here: the adapter loads the whole file and the model cuts it
into 30 s windows.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Mapping

from harness.api import AudioPart, Part
from harness.task import Task
from tasks.common import media_field


class LibriSpeech(Task):
    @property
    def audio_field(self) -> str:
        return str(self.config.options.get("audio_field", "audio"))

    def doc_id(self, doc: Mapping[str, Any]) -> str:
        if self.config.doc_id == self.audio_field:
            return PurePosixPath(media_field(doc, self.audio_field, self.name)).stem
        return super().doc_id(doc)

    def media_parts(self, doc: Mapping[str, Any]) -> list[Part]:
        return [AudioPart(self.media_path(media_field(doc, self.audio_field, self.name)))]
