"""Pixel metrics: PSNR and SSIM (image restoration), with the colour convention chosen per task, and L1
(image editing: MagicBrush / Emu Edit, the mean absolute difference of RGB values scaled to 0..1, as
``torch.nn.L1Loss`` over ``ToTensor`` images computes it; the caller resizes the output first).

``color="y"``: the luma of ITU-R BT.601 YCbCr as MATLAB's ``rgb2ycbcr`` computes it (16-235 range), the
convention of the Rain100L deraining literature; ``color="rgb"``: all three channels. SSIM is Wang et al.
(2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, the population covariance, and
data range 255, averaged over channels.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from harness.metrics.base import Metric, register_metric


def to_channels(image: Any, color: str) -> np.ndarray:
    """float64 ``[H, W, C]`` in 0..255; ``color="y"`` gives one channel of MATLAB rgb2ycbcr luma."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    if color == "y":
        if x.shape[-1] == 1:
            return x
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        return (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0)[..., None]
    if color == "rgb":
        return x
    raise ValueError(f"color must be 'y' or 'rgb', got {color!r}")


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape} (resize the output before scoring)")


def psnr(prediction: Any, target: Any, color: str = "rgb") -> float:
    a, b = to_channels(prediction, color), to_channels(target, color)
    _check(a, b)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(prediction: Any, target: Any, color: str = "rgb") -> float:
    from scipy.ndimage import gaussian_filter

    a, b = to_channels(prediction, color), to_channels(target, color)
    _check(a, b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:  # 11x11 window: radius = int(3.5 * 1.5 + 0.5) = 5
        return gaussian_filter(x, sigma=1.5, truncate=3.5, mode="reflect")

    values = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        values.append(float(s[5:-5, 5:-5].mean()))  # drop the border, as the reference implementations do
    return sum(values) / len(values)


def _mean(items: Sequence[float]) -> float:
    return sum(items) / len(items)


def l1(prediction: Any, target: Any) -> float:
    """Mean absolute difference over pixels and RGB channels, values in 0..1 (lower is better)."""
    a, b = to_channels(prediction, "rgb"), to_channels(target, "rgb")
    _check(a, b)
    return float(np.mean(np.abs(a - b)) / 255.0)


register_metric(Metric("psnr", psnr, _mean, best=math.inf, description="PSNR (dB), data range 255"))
register_metric(Metric("ssim", ssim, _mean, best=1.0, description="SSIM, Gaussian 11x11 sigma 1.5"))
register_metric(Metric("l1", l1, _mean, higher_is_better=False, best=0.0,
                       description="mean |pred - ref| of RGB values in 0..1 (MagicBrush / Emu Edit L1)"))
