"""Speech-head checkpoints: the released layouts, read with ``weights_only=True`` (never unpickling code).

* MoE-TTS: a flat state dict whose keys are the generator's module names, optionally under the Omni model's
  ``speech_generator.`` prefix (as in the Uni-MoE-2.0 checkpoint and ``load_moetts``).
* WavTokenizer: the Lightning checkpoint ``{"state_dict": {...}}`` of which the codec keeps ``backbone.*``,
  ``head.*``, the codebook ``feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed`` and the encoder
  ``feature_extractor.encodec.encoder.*`` (the training-only discriminator, loss, EnCodec-decoder and
  EMA-codebook entries are ignored). A checkpoint without encoder weights that fit the configured encoder
  still loads: such a codec decodes but cannot encode.

A speech-head folder (what ``unimoe_tiny`` ships) holds ``tts_config.json`` (``{"moe_tts": {...},
"wavtokenizer": {...}}``), ``moe_tts.pt`` and ``wavtokenizer.ckpt`` in those layouts.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from unimoe.tts.moe_tts import MoETTS, MoETTSConfig
from unimoe.tts.wavtokenizer import WavTokenizer, WavTokenizerConfig

MOE_TTS_PREFIX = "speech_generator."
DECODER_PREFIXES = ("backbone.", "head.")
CODEBOOK_KEY = "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed"
ENCODER_PREFIX = "feature_extractor.encodec.encoder."
CONFIG_FILE, MOE_TTS_FILE, CODEC_FILE = "tts_config.json", "moe_tts.pt", "wavtokenizer.ckpt"


class SpeechCheckpointError(ValueError):
    """A speech-head file is missing, unreadable or does not fit the configured modules (named in the message)."""


def _read(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise SpeechCheckpointError(f"speech head: {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise SpeechCheckpointError(f"speech head: cannot read {path}: {type(e).__name__}: {e}") from e
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise SpeechCheckpointError(f"speech head: {path} holds {type(data).__name__}, not a state dict")
    return data


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, optional: str = "") -> list[str]:
    """Strict load except that keys under ``optional`` may be missing; returns the missing optional keys."""
    own = module.state_dict()
    unexpected = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state))
    required = [k for k in missing if not (optional and k.startswith(optional))]
    if unexpected or required:
        raise SpeechCheckpointError(
            f"speech head: {path} does not fit {type(module).__name__}: missing {required[:5]}, "
            f"unexpected {unexpected[:5]}")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise SpeechCheckpointError(f"speech head: {path}: {key} has shape {tuple(value.shape)}, "
                                        f"the model expects {tuple(own[key].shape)}")
    module.load_state_dict(state, strict=False)
    return [k for k in missing if k not in required]


def load_moe_tts(path: str | Path, config: MoETTSConfig, dtype: torch.dtype = torch.float32) -> MoETTS:
    path = Path(path)
    state = {k.removeprefix(MOE_TTS_PREFIX): v for k, v in _read(path).items()}
    model = MoETTS(config)
    _load_into(model, {k: v.to(dtype) for k, v in state.items()}, path)
    return model.to(dtype).eval()


def load_wavtokenizer(path: str | Path, config: WavTokenizerConfig, dtype: torch.dtype = torch.float32
                      ) -> tuple[WavTokenizer, bool]:
    """The codec and whether its encoder was loaded (all of the configured encoder's keys were present)."""
    path = Path(path)
    raw = _read(path)
    state = {k: v for k, v in raw.items() if k.startswith(DECODER_PREFIXES) or k == CODEBOOK_KEY}
    model = WavTokenizer(config)
    encoder = {k: v for k, v in raw.items() if k.startswith(ENCODER_PREFIX)}
    own_encoder = {k for k in model.state_dict() if k.startswith(ENCODER_PREFIX)}
    has_encoder = set(encoder) == own_encoder
    if has_encoder:
        state.update(encoder)
    _load_into(model, {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, path,
               optional=ENCODER_PREFIX)
    return model.to(dtype).eval(), has_encoder


def save_speech_head(folder: str | Path, moe_tts: MoETTS, codec: WavTokenizer,
                     dtype: torch.dtype = torch.bfloat16) -> None:
    """Writes a speech-head folder in the released layouts (weights cast to ``dtype``; buffers kept fp32)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(
        {"moe_tts": moe_tts.config.to_dict(), "wavtokenizer": codec.config.to_dict()}, indent=2, sort_keys=True) + "\n")
    cast = lambda sd: {k: v.to(dtype) if v.is_floating_point() and k.endswith("weight") else v
                       for k, v in sd.items()}
    torch.save({MOE_TTS_PREFIX + k: v.contiguous() for k, v in cast(moe_tts.state_dict()).items()},
               folder / MOE_TTS_FILE)
    torch.save({"state_dict": {k: v.contiguous() for k, v in cast(codec.state_dict()).items()}}, folder / CODEC_FILE)


def load_speech_head(folder: str | Path, dtype: torch.dtype = torch.float32) -> tuple[MoETTS, WavTokenizer]:
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise SpeechCheckpointError(f"speech head: {config_path} does not exist")
    try:
        config = json.loads(config_path.read_text())
        tts_config = MoETTSConfig.from_dict(config["moe_tts"])
        codec_config = WavTokenizerConfig.from_dict(config["wavtokenizer"])
    except (KeyError, TypeError, ValueError) as e:
        raise SpeechCheckpointError(f"speech head: {config_path}: {type(e).__name__}: {e}") from e
    codec, _ = load_wavtokenizer(folder / CODEC_FILE, codec_config, dtype)
    return load_moe_tts(folder / MOE_TTS_FILE, tts_config, dtype), codec
