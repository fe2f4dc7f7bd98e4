"""MultiGen-20M canny/depth (ControlNet++ protocol): requests, per-image condition fidelity, FID and CLIPScore
through local encoders, and per-sample errors naming the missing model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image

from harness.api import Response
from harness.catalog import load_entry
from harness.metrics.control import depth_to_uint8, minmax_uint8, register_depth_estimator
from tasks.fixtures.generation import pseudo_depth
from tests.metrics.test_image_features import tiny_clip_dir  # noqa: F401  (a pytest fixture)
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs


class _PseudoDepth:
    """Stands in for DPT: the fixture's own depth proxy, returned as a float map offset from zero."""

    def __init__(self, **_):
        pass

    def predict(self, image) -> np.ndarray:
        x = pseudo_depth(np.asarray(image.convert("RGB")))[..., 0].astype(np.float64)
        return x - x.min()


register_depth_estimator("pseudo", _PseudoDepth)


def _task(name: str, metrics: tuple[str, ...], **metric_options):
    cfg = load_entry(name)
    options = {**cfg.options, "depth": {"estimator": "pseudo"}}
    return load_task(name, metrics=metrics, primary_metric=metrics[0], options=options,
                     metric_options={**cfg.metric_options, **metric_options})


def _flat(task, doc, tmp_path, value=128):
    path = tmp_path / f"flat-{task.doc_id(doc)}.png"
    Image.fromarray(np.full((96, 96, 3), value, np.uint8)).save(path)
    return Response(image=str(path))


@pytest.mark.parametrize("name, control, text", [
    ("multigen_canny", "control/0.png", "Generate an image that follows this Canny edge map: "),
    ("multigen_depth", "control_depth/0.png", "Generate an image that follows this depth map: "),
])
def test_request_sends_the_condition_and_the_caption(name, control, text):
    task = load_task(name)
    doc = sample_docs(task)[0]
    request = task.build_request(doc)
    (image,) = request.media()
    assert request.output == "image" and image.path.endswith(control)
    assert request.text() == text + "an astronaut in a white space suit in front of a flag"
    assert request.reference.image.endswith("images/0.png")
    assert [task.doc_id(d) for d in sample_docs(task)] == ["0", "1", "2", "3"]


def test_canny_oracle_is_one_blank_is_zero_and_outputs_are_resized(tmp_path):
    task = _task("multigen_canny", ("canny_f1",))
    best = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert best["canny_f1"].value == 1.0
    blank = task.aggregate(answer_all(task, lambda doc: _flat(task, doc, tmp_path)))
    assert blank["canny_f1"].value == 0.0
    doc = sample_docs(task)[0]
    big = tmp_path / "big.png"
    Image.open(task.media_path(doc["image"])).resize((192, 192), Image.Resampling.BICUBIC).save(big)
    assert 0.2 < task.process(doc, Response(image=str(big))).items["canny_f1"] < 1.0


def test_depth_maps_follow_controlnet_plus_plus():
    depth = torch.tensor([[0.0, 1.0], [2.5, 4.0]], dtype=torch.float64)
    expected = (depth / depth.max()).mul(255).byte().numpy()  # torchvision to_pil_image's byte conversion
    assert (depth_to_uint8(depth.numpy(), (2, 2)) == expected).all()
    label = np.array([[[40] * 3, [100] * 3], [[160] * 3, [220] * 3]], np.uint8)
    stretched = ((label.astype(np.float64) - 40) / 180 * 255).astype(np.uint8)[..., 0]
    assert (minmax_uint8(label) == stretched).all()


def test_depth_oracle_is_zero_and_a_flat_image_is_far(tmp_path):
    task = _task("multigen_depth", ("depth_rmse",))
    best = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert best["depth_rmse"].value == 0.0
    flat = answer_all(task, lambda doc: _flat(task, doc, tmp_path))
    for doc, sample in zip(sample_docs(task), flat):  # the stub sees no relief: an all-zero 8-bit map
        label = minmax_uint8(task.media_path(doc["control_depth"])).astype(np.float64)
        assert sample.items["depth_rmse"] == pytest.approx(math.sqrt(np.mean(label**2)))
    assert task.aggregate(flat)["depth_rmse"].value > 60.0


def test_fid_and_clip_score_through_a_local_clip(tiny_clip_dir):  # noqa: F811
    from harness.metrics.image_features import clip_score_item

    opts = {"fid": {"encoder": "clip", "model_dir": str(tiny_clip_dir)},
            "clip_score": {"encoder": "clip", "model_dir": str(tiny_clip_dir)}}
    task = _task("multigen_canny", ("canny_f1", "fid", "clip_score"), **opts)
    samples = answer_all(task, lambda doc: oracle_response(task, doc))
    assert all(s.error is None for s in samples)
    metrics = task.aggregate(samples)
    assert metrics["canny_f1"].value == 1.0 and metrics["fid"].value == pytest.approx(0.0, abs=1e-6)
    doc = sample_docs(task)[2]
    direct = clip_score_item(task.media_path(doc["image"]), doc["text"], model_dir=str(tiny_clip_dir))
    assert samples[2].items["clip_score"] == pytest.approx(direct)


@pytest.mark.parametrize("name, missing", [("multigen_canny", "openai/clip-vit-base-patch16"),
                                           ("multigen_depth", "Intel/dpt-large")])
def test_missing_models_fail_each_sample_by_name_and_the_run_goes_on(name, missing, tmp_path):
    from harness.evaluate import evaluate
    from harness.models.reference import OracleModel

    cfg = dataclasses.asdict(load_entry(name))
    if name == "multigen_canny":
        cfg["metrics"] = ["canny_f1", "clip_score"]
    else:
        cfg["metrics"], cfg["options"]["depth"] = ["depth_rmse"], {"estimator": "dpt", "model": "Intel/dpt-large",
                                                                   "model_dir": str(tmp_path / "absent")}
    summary = evaluate(cfg, OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    (outcome,) = summary.outcomes
    assert outcome.fatal.startswith("every sample failed") and summary.results["status"] == "failed"  # no metrics: not complete
    assert len(outcome.samples) == 4
    assert all(missing in s.error for s in outcome.samples), outcome.samples[0].error


@pytest.mark.parametrize("name", ["multigen_canny", "multigen_depth"])
def test_validate_with_local_models(name, tiny_clip_dir, tmp_path):  # noqa: F811
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    cfg = dataclasses.asdict(load_entry(name))
    for metric in ("fid", "clip_score"):
        cfg["metric_options"][metric] = {"encoder": "clip", "model_dir": str(tiny_clip_dir)}
    cfg["options"]["depth"] = {"estimator": "pseudo"}
    summary = evaluate(cfg, OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    assert validation_problems(summary) == {name: []}
    record = summary.results["tasks"][name]
    assert record["paper_score"] == {"multigen_canny": 0.24, "multigen_depth": 42.41}[name]
