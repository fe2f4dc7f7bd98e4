"""Rain100L deraining: image requests and outputs, PSNR/SSIM on the Y channel, outputs resized back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from harness.api import ImagePart, Response
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle


@pytest.fixture(scope="module")
def task():
    return load_task("rain100l_derain")


def y_channel(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma for uint8 input (ITU-R BT.601, studio range 16-235)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def test_request_is_an_image_edit(task) -> None:
    doc = sample_docs(task)[0]
    request = task.build_request(doc)
    assert request.output == "image" and request.text() == "Remove the rain streaks from this image."
    (image,) = request.media()
    assert isinstance(image, ImagePart) and image.path.endswith("rainy/rain-001.png")
    assert request.reference.image.endswith("norain/norain-001.png")


def test_oracle_is_perfect(task) -> None:
    metrics = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert math.isinf(metrics["psnr"].value) and metrics["ssim"].value == pytest.approx(1.0)


def test_doing_nothing_scores_the_rainy_input_on_the_y_channel(task) -> None:
    samples = answer_all(task, lambda doc: Response(image=task.media_path(doc["rain"])))
    for doc, sample in zip(sample_docs(task), samples):
        rainy = np.asarray(Image.open(task.media_path(doc["rain"])).convert("RGB"))
        clean = np.asarray(Image.open(task.media_path(doc["norain"])).convert("RGB"))
        expected = peak_signal_noise_ratio(y_channel(clean), y_channel(rainy), data_range=255)
        assert sample.items["psnr"] == pytest.approx(expected, abs=1e-3)
        assert 0.0 < sample.items["ssim"] < 1.0


def test_output_at_another_size_is_resized_back(task, tmp_path: Path) -> None:
    doc = sample_docs(task)[0]
    clean = Image.open(task.media_path(doc["norain"])).convert("RGB")
    upscaled = tmp_path / "upscaled.png"
    clean.resize((clean.width * 2, clean.height * 2), Image.Resampling.BICUBIC).save(upscaled)
    sample = task.process(doc, Response(image=str(upscaled)))
    assert sample.error is None and sample.items["psnr"] > 30.0


def test_no_output_image_is_an_error_not_a_score(task) -> None:
    from harness.api import MediaError

    with pytest.raises(MediaError, match="returned no image"):
        task.process(sample_docs(task)[0], Response(text="I removed the rain."))


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("rain100l_derain", tmp_path) == {"rain100l_derain": []}
