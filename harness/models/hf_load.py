"""Finding and loading a transformers checkpoint for the ``hf`` adapter.

The checkpoint's own config picks the model class, the way transformers' Auto classes do: a speech
sequence-to-sequence model (Whisper family), a multimodal LM (image / video / audio with text: Qwen2-VL,
LLaVA, Qwen2-Audio, the Qwen2.5-Omni thinker), or a causal LM. Every failure to find or load the checkpoint
becomes one :class:`~harness.api.ModelUnavailable` line naming the model and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.api import ModelUnavailable

Kind = Literal["speech_seq2seq", "multimodal", "causal_lm"]
Modality = Literal["image", "video", "audio"]


@dataclass
class Loaded:
    """A loaded checkpoint: the model, what prepares its inputs (a processor, or a tokenizer for text-only
    models), its tokenizer, its kind and the media it takes."""

    model: Any
    processor: Any
    tokenizer: Any
    kind: Kind
    modalities: frozenset[str]


def resolve_folder(name: str, path: str | None, gguf_file: str | None = None) -> Path:
    """The local folder holding the checkpoint: ``path`` itself, or a hub id resolved through the local
    Hugging Face cache (downloading when the hub is reachable)."""
    if not path:
        raise ModelUnavailable(f"model {name}: no checkpoint given; pass model.args.path=<folder or hub id>")
    folder = Path(path).expanduser()
    if folder.is_dir():
        if not any((folder / f).is_file() for f in ("config.json", gguf_file or "config.json")):
            raise ModelUnavailable(f"model {name}: {folder} holds neither config.json nor a gguf_file; point "
                                   f"model.args.path at a transformers checkpoint folder")
        return folder
    if path.startswith((".", "/", "~")) or path.count("/") != 1:
        raise ModelUnavailable(f"model {name}: no folder {folder}; download the checkpoint there or pass "
                               f"model.args.path=<folder or hub id>")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path))
    except Exception as e:
        raise ModelUnavailable(f"model {name}: hub id {path} is neither cached nor downloadable ({type(e).__name__}); "
                               f"download it and pass model.args.path=<local folder>") from e


def checkpoint_kind(config: Any) -> Kind:
    """Which generation path a config needs, from transformers' own Auto-class mappings."""
    from transformers.models.auto import modeling_auto as auto

    model_type = config.model_type
    if model_type in auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES:
        return "speech_seq2seq"
    if model_type in auto.MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES and model_type not in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "multimodal"
    return "causal_lm"


def processor_modalities(processor: Any) -> frozenset[str]:
    """The media a multimodal processor prepares (it carries an image processor, a video processor, an audio
    feature extractor). A model with an image processor and no video processor takes a video as its sampled
    frames, one image each (as lmms-eval shows videos to image-only models)."""
    found = set()
    if getattr(processor, "image_processor", None) is not None:
        found.update(("image", "video"))
    if getattr(processor, "video_processor", None) is not None:
        found.add("video")
    if getattr(processor, "feature_extractor", None) is not None:
        found.add("audio")
    return frozenset(found)


def load_config(name: str, folder: Path, gguf_file: str | None, trust_remote_code: bool) -> Any:
    """The checkpoint's config (cheap: read when the adapter is built, so that a broken checkpoint or one that
    needs its own code fails the run before any sample)."""
    import transformers as tf

    try:
        return tf.AutoConfig.from_pretrained(folder, **_common(gguf_file, trust_remote_code))
    except Exception as e:
        raise ModelUnavailable(_load_failure(name, folder, "config", e)) from e


def _common(gguf_file: str | None, trust_remote_code: bool) -> dict[str, Any]:
    return {"trust_remote_code": trust_remote_code, **({"gguf_file": gguf_file} if gguf_file else {})}


def load(name: str, folder: Path, config: Any, *, dtype: str, device: str, device_map: Any,
         attn_implementation: str | None, gguf_file: str | None, trust_remote_code: bool) -> Loaded:
    """Load model and processor; the model in eval mode on ``device`` (or spread by ``device_map``)."""
    import torch
    import transformers as tf

    common = _common(gguf_file, trust_remote_code)
    kind = checkpoint_kind(config)
    model_class = {"speech_seq2seq": tf.AutoModelForSpeechSeq2Seq, "multimodal": tf.AutoModelForMultimodalLM,
                   "causal_lm": tf.AutoModelForCausalLM}[kind]
    model_args: dict[str, Any] = {**common, "dtype": getattr(torch, dtype)}
    if device_map is not None:
        model_args["device_map"] = device_map
    if attn_implementation:
        model_args["attn_implementation"] = attn_implementation
    try:
        model = model_class.from_pretrained(folder, **model_args)
        if kind == "causal_lm":
            processor = tokenizer = tf.AutoTokenizer.from_pretrained(folder, **common)
        else:
            processor = tf.AutoProcessor.from_pretrained(folder, **common)
            tokenizer = processor.tokenizer
    except Exception as e:
        raise ModelUnavailable(_load_failure(name, folder, "weights", e)) from e
    if device_map is None:
        model = model.to(device)
    modalities = frozenset() if kind == "causal_lm" else (
        frozenset({"audio"}) if kind == "speech_seq2seq" else processor_modalities(processor))
    return Loaded(model.eval(), processor, tokenizer, kind, modalities)


def _load_failure(name: str, folder: Path, what: str, error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "trust_remote_code" in str(error):
        return (f"model {name}: the checkpoint in {folder} runs its own code; if you trust it, pass "
                f"model.args.trust_remote_code=true")
    return f"model {name}: could not load the {what} from {folder} ({type(error).__name__}: {text[:200]})"
