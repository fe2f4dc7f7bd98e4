"""COCO-30K FID, Emu Edit and MagicBrush on the gen_edit plugin: release-layout loaders, prompts, per-metric
routing (which image or caption each metric compares with), oracle/worst scores through tiny local CLIP and DINO
models, and per-sample errors naming the missing model."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from harness.api import Response
from harness.catalog import load_entry
from harness.metrics.encoders import load_encoder
from harness.metrics.image_features import clip_dir_item
from tests.metrics.test_image_features import tiny_clip_dir, tiny_dino_dir  # noqa: F401  (pytest fixtures)
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs


@pytest.fixture(scope="module")
def tiny_dino_v1_dir(tmp_path_factory):
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    d = tmp_path_factory.mktemp("tiny-dino-v1")
    torch.manual_seed(0)
    ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                       image_size=32, patch_size=8), add_pooling_layer=False).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


def _with_models(name, clip_dir, dino_dir=None, metrics=None):
    cfg = load_entry(name)
    opts = {m: _local(o, clip_dir, dino_dir) for m, o in cfg.metric_options.items()}
    return load_task(name, metric_options=opts, **({"metrics": metrics} if metrics else {}))


def _local(options, clip_dir, dino_dir):
    """The metric's options with a tiny local model (the `auto` FID backbone becomes the tiny CLIP's image tower)."""
    if options.get("encoder") == "dino":
        return {**options, "model_dir": str(dino_dir)}
    return {**options, "encoder": "clip", "model_dir": str(clip_dir)}


def _source_response(task, doc):
    return Response(image=task.image_path(doc, task.opts["source_field"]))


# ---------------------------------------------------------------------------------------------- loaders


def test_coco_loader_draws_captions_and_joins_their_photos():
    task = load_task("coco30k_fid")
    docs = sample_docs(task)
    assert [d["id"] for d in docs] == [101, 205, 333, 418, 520]  # all 5 (fewer than 30K), sorted by caption id
    assert docs[1] == {"id": 205, "image_id": 42, "caption": "a woman in a space suit standing next to an american "
                       "flag", "file_name": "val2014/COCO_val2014_000000000042.jpg"}
    request = task.build_request(docs[0])
    assert request.output == "image" and list(request.media()) == []
    assert request.text() == ("Generate an image that matches this description: "
                              "An astronaut in a white suit poses in front of a flag.")
    assert request.reference.image.endswith("val2014/COCO_val2014_000000000042.jpg")
    small = load_task("coco30k_fid", options={**task.opts, "num_captions": 3})
    drawn = [d["id"] for d in sample_docs(small)]
    assert len(drawn) == 3 and drawn == [d["id"] for d in sample_docs(small)]  # seeded: the same draw each time


def test_magicbrush_loader_flattens_sessions_into_single_turn_rows():
    task = load_task("magicbrush")
    docs = sample_docs(task)
    assert [task.doc_id(d) for d in docs] == ["30-1", "139-1", "139-2"]
    second = docs[2]
    assert second["input"] == "images/139/139-output1.png"  # turn 2 edits turn 1's ground truth
    assert second["output"] == "images/139/139-output2.png" and second["turn"] == 2
    assert second["output_caption"] == "a warm-toned cup and a red ball"
    request = task.build_request(second)
    (image,) = request.media()
    assert image.path.endswith("images/139/139-output1.png") and request.text() == "make it warmer"
    assert request.reference.image.endswith("images/139/139-output2.png")


def test_emu_edit_request_is_the_bare_instruction_on_the_source():
    task = load_task("emu_edit")
    doc = sample_docs(task)[1]
    request = task.build_request(doc)
    (image,) = request.media()
    assert image.path.endswith("images/1.png") and request.text() == "Add a red ball next to the cup"
    assert request.reference.image.endswith("oracle/1.png")
    assert task.doc_id(doc) == "1" and set(doc) == {"instruction", "image", "task", "split", "idx", "hash",
                                                     "input_caption", "output_caption"}


# ---------------------------------------------------------------------------------------------- metrics


def test_l1_is_torch_l1_of_to_tensor_images():
    import torch

    from harness.metrics.base import get_metric

    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(2))
    expected = torch.nn.L1Loss()(torch.tensor(a / 255.0), torch.tensor(b / 255.0)).item()
    assert get_metric("l1").item(a, b) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="shapes differ"):
        get_metric("l1").item(a, b[:4])


def test_clip_dir_matches_a_direct_computation_and_is_zero_for_no_change(tiny_clip_dir):  # noqa: F811
    enc = load_encoder("clip", str(tiny_clip_dir))
    task = load_task("emu_edit")
    doc = sample_docs(task)[0]
    source, edited = task.image_path(doc, "image"), task.media_path("oracle/0.png")
    pair = {"source": source, "input_caption": doc["input_caption"], "output_caption": doc["output_caption"]}
    img = enc.encode_images([source, edited])
    txt = enc.encode_texts([doc["input_caption"], doc["output_caption"]])
    img, txt = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (img, txt))
    di, dt = img[1] - img[0], txt[1] - txt[0]
    expected = float(di @ dt / np.linalg.norm(di) / np.linalg.norm(dt))
    got = clip_dir_item(edited, pair, model_dir=str(tiny_clip_dir))
    assert got == pytest.approx(expected, rel=1e-9) and got != 0.0
    assert clip_dir_item(source, pair, model_dir=str(tiny_clip_dir)) == 0.0  # an unchanged image


def test_dino_v1_encoder_is_the_final_cls_token(tiny_dino_v1_dir, tmp_path):
    import torch
    from transformers import ViTImageProcessor, ViTModel

    from harness.metrics.image_features import image_similarity_item

    paths = [str(p) for p in sorted((load_task("magicbrush").media_root / "images" / "139").glob("*output*"))]
    model = ViTModel.from_pretrained(tiny_dino_v1_dir, add_pooling_layer=False).eval()
    proc = ViTImageProcessor.from_pretrained(tiny_dino_v1_dir)
    with torch.no_grad():
        cls = model(**proc(images=[Image.open(p).convert("RGB") for p in paths],
                           return_tensors="pt")).last_hidden_state[:, 0].double().numpy()
    cos = float(cls[0] @ cls[1] / np.linalg.norm(cls[0]) / np.linalg.norm(cls[1]))
    assert image_similarity_item(*paths, encoder="dino", model_dir=str(tiny_dino_v1_dir)) == pytest.approx(cos)


# ---------------------------------------------------------------------------------------------- tasks


def test_magicbrush_oracle_is_best_and_the_unedited_input_is_worse(tiny_clip_dir, tiny_dino_v1_dir):  # noqa: F811
    task = _with_models("magicbrush", tiny_clip_dir, tiny_dino_v1_dir)
    best = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert best["clip_i"].value == pytest.approx(1.0) and best["dino_i"].value == pytest.approx(1.0)
    assert best["l1"].value == 0.0
    lazy = answer_all(task, lambda doc: Response(image=task.media_path(doc["input"])))
    worse = task.aggregate(lazy)
    assert worse["l1"].value > 0.01 and worse["clip_i"].value < 1.0 and worse["dino_i"].value < 1.0
    assert task.breakdown(lazy)["turn"].keys() == {"1", "2"}


def test_magicbrush_l1_resizes_the_output(tmp_path):
    task = load_task("magicbrush", metrics=("l1",), primary_metric="l1")
    doc = sample_docs(task)[0]
    big = tmp_path / "big.png"
    Image.open(task.media_path(doc["output"])).resize((192, 144), Image.Resampling.BICUBIC).save(big)
    assert 0.0 < task.process(doc, Response(image=str(big))).items["l1"] < 0.02


def test_emu_edit_oracle_beats_doing_nothing(tiny_clip_dir, tiny_dino_v1_dir):  # noqa: F811
    task = _with_models("emu_edit", tiny_clip_dir, tiny_dino_v1_dir,
                        metrics=("clip_dir", "clip_t", "clip_i", "l1", "dino_i"))
    oracle = answer_all(task, lambda doc: oracle_response(task, doc))
    nothing = answer_all(task, lambda doc: _source_response(task, doc))
    assert all(s.error is None for s in oracle + nothing)
    assert task.aggregate(nothing)["clip_dir"].value == 0.0
    assert all(s.items["clip_dir"] != 0.0 for s in oracle)
    # the preservation metrics compare with the source: doing nothing is their best
    worst = task.aggregate(nothing)
    assert worst["clip_i"].value == pytest.approx(1.0) and worst["l1"].value == 0.0
    assert set(task.breakdown(oracle)["task"]) == {"style", "add", "remove", "global"}


def test_coco_fid_oracle_is_zero_and_flat_images_are_far(tiny_clip_dir, tmp_path):  # noqa: F811
    task = _with_models("coco30k_fid", tiny_clip_dir)
    samples = answer_all(task, lambda doc: oracle_response(task, doc))
    assert task.aggregate(samples)["fid"].value == pytest.approx(0.0, abs=1e-6)

    def flat(doc):
        path = tmp_path / f"{doc['id']}.png"
        Image.fromarray(np.full((64, 64, 3), 90 + doc["id"] % 7, np.uint8)).save(path)
        return Response(image=str(path))

    assert task.aggregate(answer_all(task, flat))["fid"].value > 1e-3


@pytest.mark.parametrize("name, missing", [("coco30k_fid", "Inception-v3"),
                                           ("emu_edit", "openai/clip-vit-large-patch14"),
                                           ("magicbrush", "openai/clip-vit-base-patch32")])
def test_missing_models_fail_each_sample_by_name_and_the_run_goes_on(name, missing, tmp_path):
    from harness.evaluate import evaluate
    from harness.models.reference import OracleModel

    summary = evaluate(dataclasses.asdict(load_entry(name)), OracleModel(), data="sample", cache=False,
                       output_dir=tmp_path, rebuild_leaderboards=False)
    (outcome,) = summary.outcomes
    assert outcome.fatal.startswith("every sample failed") and summary.results["status"] == "failed"  # no metrics: not complete
    assert outcome.samples
    assert all(missing in s.error and "model_dir" in s.error for s in outcome.samples), outcome.samples[0].error


@pytest.mark.parametrize("name", ["coco30k_fid", "emu_edit", "magicbrush"])
def test_validate_with_local_models(name, tiny_clip_dir, tiny_dino_v1_dir, tmp_path):  # noqa: F811
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    cfg = dataclasses.asdict(load_entry(name))
    cfg["metric_options"] = {m: _local(o, tiny_clip_dir, tiny_dino_v1_dir) for m, o in cfg["metric_options"].items()}
    summary = evaluate(cfg, OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    assert validation_problems(summary) == {name: []}
    record = summary.results["tasks"][name]
    assert record["paper_score"] == {"coco30k_fid": 18.04, "emu_edit": 0.076, "magicbrush": 0.789}[name]
    json.dumps(record)  # the record is plain JSON
