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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.media import image_array
from harness.metrics.base import Metric, register_metric
from harness.metrics.text import mean
from harness.optional import require

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
