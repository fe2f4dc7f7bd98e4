"""Canny F1 and depth errors against direct OpenCV / torchmetrics / numpy computations on real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.metrics.base import get_metric

REPO = Path(__file__).resolve().parents[2]
RAIN = REPO / "tasks" / "rain100l_derain" / "sample"
PAIRS = list(zip(sorted((RAIN / "rainy").glob("*.png")), sorted((RAIN / "norain").glob("*.png"))))


def _rgb(path: Path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


def test_canny_f1_matches_opencv_and_torchmetrics_on_real_images():
    import cv2
    import torch
    from torchmetrics.classification import BinaryF1Score

    assert len(PAIRS) == 4
    m = get_metric("canny_f1")
    ours = [m.item(str(rainy), str(clean)) for rainy, clean in PAIRS]  # paths, decoded by the harness
    f1 = BinaryF1Score()
    direct, tm = [], []
    for rainy, clean in PAIRS:
        p, r = cv2.Canny(_rgb(rainy), 100, 200) > 0, cv2.Canny(_rgb(clean), 100, 200) > 0
        tp, fp, fn = np.sum(p & r), np.sum(p & ~r), np.sum(~p & r)
        direct.append(2 * tp / (2 * tp + fp + fn))
        tm.append(float(f1(torch.from_numpy(p.ravel()).long(), torch.from_numpy(r.ravel()).long())))
    assert ours == pytest.approx(direct, abs=1e-12)
    assert ours == pytest.approx(tm, abs=1e-6)
    assert all(0.05 < x < 0.95 for x in ours)  # rain streaks add and hide edges: far from 0 and 1
    assert m.aggregate(ours) == pytest.approx(np.mean(direct))


def test_canny_f1_against_a_saved_condition_map(tmp_path):
    import cv2

    rainy, clean = PAIRS[0]
    condition = tmp_path / "condition.png"
    Image.fromarray(cv2.Canny(_rgb(clean), 100, 200)).save(condition)  # the MultiGen-style edge image
    m = get_metric("canny_f1")
    from_condition = m.item(_rgb(rainy), str(condition), target_is_edges=True)
    assert from_condition == pytest.approx(m.item(_rgb(rainy), _rgb(clean)))
    assert m.item(_rgb(clean), str(condition), target_is_edges=True) == 1.0


def test_canny_f1_thresholds_and_edge_cases():
    import cv2

    img = _rgb(PAIRS[1][1])
    grey = np.array(Image.fromarray(img).convert("L"))
    m = get_metric("canny_f1")
    p, r = cv2.Canny(grey, 50, 150) > 0, cv2.Canny(img, 50, 150) > 0
    expected = 2 * np.sum(p & r) / (2 * np.sum(p & r) + np.sum(p ^ r))
    assert m.item(grey, img, low=50, high=150) == pytest.approx(expected)
    flat = np.full((16, 16, 3), 128, np.uint8)
    assert m.item(flat, flat) == 0.0  # no edges on either side: torchmetrics' zero-division value
    with pytest.raises(ValueError, match="differ in size"):
        m.item(img, img[:-1])


def test_depth_rmse_and_abs_rel_match_numpy(tmp_path):
    rng = np.random.default_rng(0)
    ref = rng.integers(500, 10000, size=(48, 64)).astype(np.uint16)  # millimetres
    ref[:8] = 0  # no measurement: invalid
    pred = np.clip(ref.astype(np.int64) + rng.integers(-300, 300, size=ref.shape), 1, 65535).astype(np.uint16)
    Image.fromarray(ref).save(tmp_path / "ref.png")  # 16-bit PNG
    np.save(tmp_path / "pred.npy", pred)

    valid = ref > 0
    p, r = pred[valid] / 1000.0, ref[valid] / 1000.0
    rmse, abs_rel = np.sqrt(np.mean((p - r) ** 2)), np.mean(np.abs(p - r) / r)
    m_rmse, m_rel = get_metric("depth_rmse"), get_metric("depth_abs_rel")
    args = (str(tmp_path / "pred.npy"), str(tmp_path / "ref.png"))
    assert m_rmse.item(*args, scale=1000.0) == pytest.approx(rmse, rel=1e-12)
    assert m_rel.item(*args, scale=1000.0) == pytest.approx(abs_rel, rel=1e-12)
    # without the mask every pixel counts (the ControlNet++ 0..255 protocol)
    everything = np.sqrt(np.mean((pred / 1.0 - ref / 1.0) ** 2))
    assert m_rmse.item(pred, ref, valid_only=False) == pytest.approx(everything, rel=1e-12)
    assert m_rmse.item(ref, ref) == 0.0
    with pytest.raises(ValueError, match="no valid pixel"):
        m_rmse.item(pred, np.zeros_like(ref))


def test_depth_rmse_on_8bit_rgb_maps_uses_pillow_grey(tmp_path):
    # ControlNet++ reads both maps with PIL convert("L") and averages per-image RMSE
    rgb = [_rgb(p) for p, _ in PAIRS[:2]], [_rgb(c) for _, c in PAIRS[:2]]
    m = get_metric("depth_rmse")
    items = []
    for i, (a, b) in enumerate(zip(*rgb)):
        Image.fromarray(a).save(tmp_path / f"a{i}.png")
        items.append(m.item(str(tmp_path / f"a{i}.png"), b, valid_only=False))
    grey = [[np.asarray(Image.fromarray(x).convert("L"), np.float64) for x in side] for side in rgb]
    expected = [np.sqrt(np.mean((a - b) ** 2)) for a, b in zip(*grey)]
    assert items == pytest.approx(expected, rel=1e-12)
    assert m.aggregate(items) == pytest.approx(np.mean(expected))
