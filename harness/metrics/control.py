"""Condition fidelity for controllable image generation: Canny edge F1 and depth RMSE / AbsRel.

The ControlNet++ protocol (MultiGen-20M canny/depth, the paper's Table 13) compares the condition
extracted from the generated image with the input condition, per image, then averages over images:

- ``canny_f1``: OpenCV Canny (hysteresis thresholds 100/200, ControlNet's annotator defaults; 3x3 Sobel,
  L1 gradient) on the generated image and, unless ``target_is_edges`` says the target already is an
  edge map (the MultiGen condition image, binarised at 127), on the reference image; then the binary F1
  over pixels with no spatial tolerance, ``2TP / (2TP + FP + FN)``, 0 when neither map has an edge
  (torchmetrics ``BinaryF1Score``'s zero-division rule).
- ``depth_rmse`` / ``depth_abs_rel``: per-image RMSE and mean ``|pred - ref| / ref`` between depth maps
  (``.npy`` or PNG, 16-bit kept exact; an 8-bit RGB map becomes grey with Pillow's ``convert("L")`` as in
  ControlNet++). ``scale`` divides both maps (e.g. 1000 for millimetre PNGs). Pixels whose reference is
  not positive are invalid and left out (``valid_only``); ControlNet++'s RMSE on 0..255 maps keeps every
  pixel, which ``valid_only: false`` reproduces. AbsRel always needs a positive reference.

Depth-conditioned tasks first estimate the generated image's depth with a registered estimator
(``DEPTH_ESTIMATORS``: ``dpt`` = transformers DPT from local weights) and map both sides to 8 bits as
ControlNet++ does (:func:`depth_to_uint8`, :func:`minmax_uint8`).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from harness.media import image_array
from harness.metrics.base import Metric, register_metric
from harness.metrics.text import mean
from harness.optional import require
from harness.registry import Registry
from harness.time_limit import untimed

CANNY_LOW, CANNY_HIGH = 100, 200


def _cv2():
    return require("cv2", "opencv-python-headless", "canny_f1")


def canny_edges(image: Any, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> np.ndarray:
    """Boolean edge map of an image (path, PIL or uint8 array, grey or RGB)."""
    return _cv2().Canny(np.ascontiguousarray(image_array(image)), low, high) > 0


def _edge_map(image: Any) -> np.ndarray:
    """An existing edge map as booleans (values above 127 are edges)."""
    array = image_array(image)
    return (array.max(axis=-1) if array.ndim == 3 else array) > 127


def binary_f1(pred: np.ndarray, ref: np.ndarray) -> float:
    if pred.shape != ref.shape:
        raise ValueError(f"edge maps differ in size: {pred.shape} vs {ref.shape} (resize the output first)")
    tp = int(np.count_nonzero(pred & ref))
    wrong = int(np.count_nonzero(pred ^ ref))  # FP + FN
    return 2 * tp / (2 * tp + wrong) if tp or wrong else 0.0


def canny_f1_item(prediction: Any, target: Any, low: int = CANNY_LOW, high: int = CANNY_HIGH,
                  target_is_edges: bool = False) -> float:
    """Pixel F1 between the Canny edges of the generated image and the reference edges."""
    ref = _edge_map(target) if target_is_edges else canny_edges(target, low, high)
    return binary_f1(canny_edges(prediction, low, high), ref)


def load_depth(depth: Any) -> np.ndarray:
    """A float64 ``[H, W]`` depth map from an array, a ``.npy`` file or an image (16-bit values kept)."""
    from PIL import Image

    if isinstance(depth, (str, Path)):
        path = Path(depth)
        if path.suffix.lower() == ".npy":
            depth = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as im:
                depth = im.convert("L") if im.mode in ("RGB", "RGBA", "P", "LA") else im.copy()
    if isinstance(depth, Image.Image):
        depth = depth.convert("L") if depth.mode in ("RGB", "RGBA", "P", "LA") else depth
    array = np.asarray(depth)
    if array.ndim == 3:
        if array.dtype != np.uint8 or array.shape[-1] not in (3, 4):
            raise ValueError(f"a depth map must be [H, W] (or 8-bit RGB), got {array.shape} {array.dtype}")
        array = np.asarray(Image.fromarray(array).convert("L"))
    return array.astype(np.float64)


def _depth_pair(prediction: Any, target: Any, scale: float,
                valid_only: bool) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = load_depth(prediction) / scale, load_depth(target) / scale
    if pred.shape != ref.shape:
        raise ValueError(f"depth maps differ in size: {pred.shape} vs {ref.shape} (resize the output first)")
    valid = np.isfinite(ref) & ((ref > 0) if valid_only else True)
    if not valid.any():
        raise ValueError("the reference depth map has no valid pixel (reference > 0)")
    return pred[valid], ref[valid]


def depth_rmse_item(prediction: Any, target: Any, scale: float = 1.0, valid_only: bool = True) -> float:
    """Root mean squared error over the valid pixels of one image."""
    pred, ref = _depth_pair(prediction, target, scale, valid_only)
    return float(np.sqrt(np.mean((pred - ref) ** 2)))


def depth_abs_rel_item(prediction: Any, target: Any, scale: float = 1.0) -> float:
    """Mean absolute relative error ``|pred - ref| / ref`` over pixels with a positive reference."""
    pred, ref = _depth_pair(prediction, target, scale, valid_only=True)
    return float(np.mean(np.abs(pred - ref) / ref))


register_metric(Metric("canny_f1", canny_f1_item, mean, best=1.0, version="1",
                       description="pixel F1 of Canny edges (100/200), generated vs reference, per image"))
register_metric(Metric("depth_rmse", depth_rmse_item, mean, higher_is_better=False, best=0.0, version="1",
                       description="per-image depth RMSE over valid pixels (reference > 0), averaged"))
register_metric(Metric("depth_abs_rel", depth_abs_rel_item, mean, higher_is_better=False, best=0.0,
                       version="1",
                       description="per-image mean |pred - ref| / ref over valid pixels, averaged"))


# --------------------------------------------------------------------------------------------------
# Depth estimators for depth-conditioned generation: the depth of the *generated* image is estimated, then
# compared with the condition. Pluggable by name; the built-in wraps transformers' DPT from local weights.


class DPTDepthEstimator:
    """``DPTForDepthEstimation`` (ControlNet++ uses ``Intel/dpt-large``): relative inverse depth, model size."""

    def __init__(self, model: str = "Intel/dpt-large", model_dir: str | None = None, device: str = "cpu"):
        self.model_id = model
        self.model_dir = model_dir
        self.device = device

    @functools.cached_property
    @untimed  # loading a scorer's model is not scoring time
    def _loaded(self) -> tuple[Any, Any]:
        tf = require("transformers", "transformers", "the DPT depth estimator")
        source = self.model_dir or self.model_id
        try:
            if self.model_dir and not (Path(self.model_dir) / "config.json").is_file():
                raise OSError(f"no config.json in {self.model_dir}")
            processor = tf.DPTImageProcessor.from_pretrained(source, local_files_only=True)
            model = tf.DPTForDepthEstimation.from_pretrained(source, local_files_only=True)
        except (OSError, ValueError) as e:
            raise FileNotFoundError(
                f"depth estimator {self.model_id!r} is not available offline (looked in "
                f"{self.model_dir or 'the Hugging Face cache'}): download it, e.g. `huggingface-cli download "
                f"{self.model_id}`, or set the task's options.depth.model_dir to a local copy") from e
        return processor, model.to(self.device).eval()

    def predict(self, image: Any) -> np.ndarray:
        import torch

        from harness.metrics.encoders import to_pil

        processor, model = self._loaded
        inputs = processor(images=[to_pil(image)], return_tensors="pt").to(self.device)
        with torch.inference_mode():
            return model(**inputs).predicted_depth[0].double().cpu().numpy()


DEPTH_ESTIMATORS: Registry[Callable[..., Any]] = Registry("depth estimator")
DEPTH_ESTIMATORS.register("dpt", DPTDepthEstimator)


def register_depth_estimator(name: str, factory: Callable[..., Any]) -> None:
    """``factory(**options)`` returns an object with ``predict(image) -> float [H, W] depth``."""
    DEPTH_ESTIMATORS.register(name, factory)


_ESTIMATORS: dict[str, Any] = {}


def load_depth_estimator(spec: Mapping[str, Any]) -> Any:
    """The estimator named by ``spec`` (``estimator`` plus its options), built once per process."""
    spec = dict(spec)
    key = json.dumps(spec, sort_keys=True, default=str)
    if key not in _ESTIMATORS:
        _ESTIMATORS[key] = DEPTH_ESTIMATORS.get(spec.pop("estimator", "dpt"))(**spec)
    return _ESTIMATORS[key]


def depth_to_uint8(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """ControlNet++'s 8-bit map of a predicted depth: ``d / d.max()`` times 255, truncated to bytes, then resized
    bilinearly to ``size`` (width, height)."""
    from PIL import Image

    d = np.asarray(depth, dtype=np.float64)
    peak = d.max()
    scaled = np.clip(d / peak if peak > 0 else d * 0.0, 0.0, 1.0) * 255.0
    return np.asarray(Image.fromarray(scaled.astype(np.uint8)).resize(size, Image.Resampling.BILINEAR))


def minmax_uint8(condition: Any) -> np.ndarray:
    """ControlNet++'s label: the condition depth map min-max stretched to 0..255, truncated, then grey (L)."""
    from PIL import Image

    x = image_array(condition).astype(np.float64)
    span = x.max() - x.min()
    x = (x - x.min()) / span * 255.0 if span > 0 else x * 0.0
    return np.asarray(Image.fromarray(x.astype(np.uint8)).convert("L"))
