"""SIDD denoising: noisy image in, image out, PSNR/SSIM in RGB (the sRGB convention), outputs resized back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from harness.api import ImagePart, MediaError, Response
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle


@pytest.fixture(scope="module")
def task():
    return load_task("sidd_denoise")


def _rgb(task, rel: str) -> np.ndarray:
    return np.asarray(Image.open(task.media_path(rel)).convert("RGB"))


def test_request_is_an_image_edit(task) -> None:
    doc = sample_docs(task)[0]
    request = task.build_request(doc)
    assert request.output == "image" and request.text() == "Remove the noise from this image."
    (image,) = request.media()
    assert isinstance(image, ImagePart) and image.path.endswith("input/0000_00.png")
    assert request.reference.image.endswith("groundtruth/0000_00.png")
    assert task.config.paper_score == 25.70 and task.config.options["paper_scores"]["ssim"] == 0.48


def test_oracle_is_perfect_and_noise_is_not(task) -> None:
    best = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert math.isinf(best["psnr"].value) and best["ssim"].value == pytest.approx(1.0)
    idle = task.aggregate(answer_all(task, lambda doc: Response(image=task.media_path(doc["noisy"]))))
    assert 15.0 < idle["psnr"].value < 30.0 and idle["ssim"].value < 0.6


def test_doing_nothing_is_scored_on_all_three_rgb_channels(task) -> None:
    samples = answer_all(task, lambda doc: Response(image=task.media_path(doc["noisy"])))
    for doc, sample in zip(sample_docs(task), samples):
        noisy, clean = _rgb(task, doc["noisy"]), _rgb(task, doc["gt"])
        assert sample.items["psnr"] == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=255), abs=1e-6)
        ref_ssim = structural_similarity(clean, noisy, channel_axis=-1, data_range=255, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False)
        assert sample.items["ssim"] == pytest.approx(ref_ssim, abs=2e-2)  # border handling differs slightly


def test_output_at_another_size_is_resized_back(task, tmp_path: Path) -> None:
    doc = sample_docs(task)[1]
    big = tmp_path / "big.png"
    Image.open(task.media_path(doc["gt"])).resize((320, 320), Image.Resampling.BICUBIC).save(big)
    sample = task.process(doc, Response(image=str(big)))
    assert sample.error is None and sample.items["psnr"] > 25.0


def test_no_output_image_is_an_error_not_a_score(task) -> None:
    with pytest.raises(MediaError, match="returned no image"):
        task.process(sample_docs(task)[0], Response(text="Done."))


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("sidd_denoise", tmp_path) == {"sidd_denoise": []}
