"""``model=faster_whisper``: CTranslate2 Whisper (faster-whisper) as a speech-recognition peer.

It transcribes the request's audio and ignores the text prompt (Whisper takes no instruction); a request
without audio, or with an image or video, is a per-sample error naming the model. Decoding options follow
faster-whisper's ``transcribe``: ``beam_size``, ``language`` (None: detected), ``vad_filter`` and
``vad_parameters`` (Silero VAD that drops silence before decoding). ``compute_type`` defaults to the weights'
stored type: CTranslate2's int8 CPU kernels give different transcripts on different CPUs, so int8 scores are
not comparable across machines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.api import AudioPart, ModelUnavailable, Request, Response, stable_hash
from harness.models.weights import folder_digest

_IDENTITY_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json", "preprocessor_config.json")


class FasterWhisperAdapter:
    def __init__(self, name: str, path: str | None = None, device: str = "cpu", compute_type: str = "default",
                 cpu_threads: int = 0, beam_size: int = 5, language: str | None = None, vad_filter: bool = False,
                 vad_parameters: Mapping[str, Any] | None = None, condition_on_previous_text: bool = True):
        self.name = name
        if not path or not (Path(path) / "model.bin").is_file():
            raise ModelUnavailable(f"model {name}: no CTranslate2 Whisper model (model.bin) in {path}; pass "
                                   f"model.args.path=<folder>, e.g. a faster-whisper conversion from the hub")
        self.path = Path(path)
        self.device, self.compute_type, self.cpu_threads = device, compute_type, cpu_threads
        self.options = {"beam_size": beam_size, "language": language, "vad_filter": vad_filter,
                        "vad_parameters": dict(vad_parameters) if vad_parameters else None,
                        "condition_on_previous_text": condition_on_previous_text}
        self._fingerprint = stable_hash({"faster_whisper": folder_digest(self.path, _IDENTITY_FILES),
                                         "compute_type": compute_type, **self.options})
        self._model: Any = None

    def fingerprint(self) -> str:
        return self._fingerprint

    def _load(self) -> Any:
        if self._model is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError as e:
                raise ModelUnavailable(f"model {self.name}: needs `pip install faster-whisper` "
                                       f"(the real-models extra)") from e
            try:
                self._model = WhisperModel(str(self.path), device=self.device, compute_type=self.compute_type,
                                           cpu_threads=self.cpu_threads)
            except Exception as e:
                raise ModelUnavailable(f"model {self.name}: could not load {self.path} "
                                       f"({type(e).__name__}: {e})") from e
        return self._model

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        from harness.media import load_audio

        model = self._load()
        out = []
        for request in requests:
            other = next((p.type for p in request.media() if not isinstance(p, AudioPart)), None)
            audio = next((p for p in request.media() if isinstance(p, AudioPart)), None)
            if other or audio is None:
                out.append(Response(error=f"model {self.name} takes no {other or 'text-only input'} "
                                          f"({request.task}/{request.doc_id})"))
                continue
            samples = load_audio(audio.path, start_time=audio.start_time, end_time=audio.end_time)
            segments, info = model.transcribe(samples, max_new_tokens=request.generation.max_new_tokens,
                                              **self.options)
            text = " ".join(s.text.strip() for s in segments)
            out.append(Response(text=text, stats={"language": info.language, "audio_seconds": info.duration}))
        return out
