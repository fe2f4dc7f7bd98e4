"""Pluggable image and text encoders for embedding-based metrics (FID, CLIP score, CLIP-I, DINO-I).

A metric needs only ``encode_images`` (and ``encode_texts`` for CLIP score), so any model can stand in:
the built-in kinds wrap transformers models saved with ``save_pretrained`` in a local folder and are
loaded with ``local_files_only=True`` (nothing is downloaded, and a missing folder is an error naming it):

- ``clip``: ``CLIPModel`` projected image and text embeddings (what CLIPScore and CLIP-I use);
- ``dinov2``: ``Dinov2Model`` pooled output, the layer-normed CLS token (DINO-I);
- ``dino``: DINO v1 (``facebook/dino-vits16``, MagicBrush's DINO metric) as a transformers ``ViTModel``
  without its pooler: the layer-normed CLS token of the last layer, what the torch-hub DINO model returns;
- ``auto``: any ``AutoModel`` vision backbone, its ``pooler_output`` or else the mean of its last hidden
  state; an Inception-style FID extractor converted to a transformers folder plugs in here.

Other encoders are registered by name with :func:`register_encoder`; metric options name them
(``encoder: clip, model_dir: /models/clip-vit-base-patch16``). Features come back as float64 numpy
arrays, one row per input, so the metric arithmetic is independent of the model's dtype.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from harness.media import image_array
from harness.optional import require
from harness.registry import Registry
from harness.time_limit import untimed

ImageLike = Any  # a path, a PIL image, or an HxW / HxWxC uint8 array


@runtime_checkable
class ImageEncoder(Protocol):
    def encode_images(self, images: Sequence[ImageLike]) -> np.ndarray:
        """``[N, D]`` float64 features, one row per image."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """``[N, D]`` float64 features, one row per text, in the image encoder's space."""
        ...


def to_pil(image: ImageLike) -> "Image.Image":  # noqa: F821  (PIL is imported lazily)
    """An RGB PIL image from a path, a PIL image or a uint8 array (grey or RGB)."""
    from PIL import Image

    return Image.fromarray(image_array(image)).convert("RGB")


def _require_dir(model_dir: str | Path | None, kind: str) -> Path:
    if model_dir is None:
        raise ValueError(f"encoder {kind!r} needs `model_dir`: a local folder written by save_pretrained "
                         f"(set it in the task's metric_options)")
    path = Path(model_dir).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"encoder {kind!r}: no model weights at {path} (expected a folder written by "
                                f"save_pretrained with config.json and the weights; nothing is downloaded)")
    return path


def _transformers():
    needed_by = "embedding metrics"
    return require("torch", "torch", needed_by), require("transformers", "transformers", needed_by)


def _features(output: Any) -> Any:
    """transformers 5 returns a ModelOutput from ``get_*_features`` (embedding in ``pooler_output``)."""
    return output if hasattr(output, "detach") else output.pooler_output


class _HFImageModel:
    def __init__(self, model_dir: str | Path | None, device: str = "cpu", kind: str = "auto"):
        torch, tf = _transformers()
        self.path = _require_dir(model_dir, kind)
        self.device = device
        self.model = self._load_model(tf).to(device).eval()
        self.processor = self._load_processor(tf)
        self._torch = torch

    def _load_model(self, tf: Any) -> Any:
        return tf.AutoModel.from_pretrained(str(self.path), local_files_only=True)

    def _load_processor(self, tf: Any) -> Any:
        return tf.AutoImageProcessor.from_pretrained(str(self.path), local_files_only=True)

    def _pixels(self, images: Sequence[ImageLike]) -> Any:
        batch = self.processor(images=[to_pil(im) for im in images], return_tensors="pt")
        return batch["pixel_values"].to(self.device)

    def _embed(self, pixel_values: Any) -> Any:
        out = self.model(pixel_values=pixel_values)
        pooled = getattr(out, "pooler_output", None)
        return pooled if pooled is not None else out.last_hidden_state.mean(dim=1)

    def encode_images(self, images: Sequence[ImageLike]) -> np.ndarray:
        with self._torch.inference_mode():
            return self._embed(self._pixels(images)).double().cpu().numpy()


class AutoImageEncoder(_HFImageModel):
    """Any transformers vision backbone: pooled output, or mean-pooled last hidden state."""


class Dinov2Encoder(_HFImageModel):
    """DINOv2 pooled output (layer-normed CLS token), the DINO-I embedding."""

    def __init__(self, model_dir: str | Path | None, device: str = "cpu"):
        super().__init__(model_dir, device, kind="dinov2")

    def _load_model(self, tf: Any) -> Any:
        return tf.Dinov2Model.from_pretrained(str(self.path), local_files_only=True)


class DinoV1Encoder(_HFImageModel):
    """DINO v1 ViT: the final layer-normed CLS token (no pooler head: DINO checkpoints have none)."""

    def __init__(self, model_dir: str | Path | None, device: str = "cpu"):
        super().__init__(model_dir, device, kind="dino")

    def _load_model(self, tf: Any) -> Any:
        return tf.ViTModel.from_pretrained(str(self.path), local_files_only=True, add_pooling_layer=False)

    def _embed(self, pixel_values: Any) -> Any:
        return self.model(pixel_values=pixel_values).last_hidden_state[:, 0]


class CLIPEncoder(_HFImageModel):
    """CLIP projected image and text embeddings (an ImageEncoder and a TextEncoder)."""

    def __init__(self, model_dir: str | Path | None, device: str = "cpu"):
        super().__init__(model_dir, device, kind="clip")

    def _load_model(self, tf: Any) -> Any:
        return tf.CLIPModel.from_pretrained(str(self.path), local_files_only=True)

    def _load_processor(self, tf: Any) -> Any:
        return tf.AutoProcessor.from_pretrained(str(self.path), local_files_only=True)

    def _embed(self, pixel_values: Any) -> Any:
        return _features(self.model.get_image_features(pixel_values=pixel_values))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        max_len = self.model.config.text_config.max_position_embeddings
        batch = self.processor(text=list(texts), return_tensors="pt", padding=True, truncation=True,
                               max_length=max_len)
        batch = {k: v.to(self.device) for k, v in batch.items() if k in ("input_ids", "attention_mask")}
        with self._torch.inference_mode():
            return _features(self.model.get_text_features(**batch)).double().cpu().numpy()


ENCODERS: Registry[Callable[..., Any]] = Registry("image encoder")
ENCODERS.register("clip", CLIPEncoder)
ENCODERS.register("dinov2", Dinov2Encoder)
ENCODERS.register("dino", DinoV1Encoder)
ENCODERS.register("auto", AutoImageEncoder)


def register_encoder(name: str, factory: Callable[..., Any]) -> None:
    """``factory(model_dir, device=...)`` returns an :class:`ImageEncoder` (and maybe a TextEncoder)."""
    ENCODERS.register(name, factory)


@functools.lru_cache(maxsize=4)
@untimed  # loading a scorer's model is not scoring time
def _cached(kind: str, model_dir: str, device: str) -> Any:
    return ENCODERS.get(kind)(model_dir, device=device)


def load_encoder(encoder: str | ImageEncoder, model_dir: str | Path | None = None,
                 device: str = "cpu") -> Any:
    """An encoder object as given, or the registered kind loaded from ``model_dir`` (cached per process)."""
    if not isinstance(encoder, str):
        return encoder
    if model_dir is None:
        _require_dir(None, encoder)
    return _cached(encoder, str(Path(model_dir).expanduser().resolve()), device)
