"""omniworld image output (draw, edit, derain): the pixel checker, deterministic splits, the oracle at the top
and the identity/noise baseline at the bottom, and the shipped tiny image head end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.evaluate import evaluate
from unimoe.train.omniworld_images import (BACKGROUND, COLOURS, CORNERS, KINDS, SHAPES, check_scene, generate,
                                           iter_items, render)

REPO = Path(__file__).resolve().parents[2]
HEAD = REPO / "unimoe" / "weights" / "unimoe_tiny_imagegen"


def test_checker_reads_every_rendering_back():
    for shape in SHAPES:
        for colour in COLOURS:
            for corner in CORNERS:
                assert all(check_scene(render(shape, colour, corner), shape, colour, corner).values())


def test_checker_fails_blank_and_wrong_images():
    blank = np.full((64, 64, 3), BACKGROUND, dtype=np.uint8)
    assert not any(check_scene(blank, "circle", "red", "top left").values())
    wrong = check_scene(render("circle", "blue", "top left"), "circle", "red", "top left")
    assert wrong == {"colour": False, "shape": True, "corner": True}
    moved = check_scene(render("square", "red", "bottom right"), "triangle", "red", "top left")
    assert moved == {"colour": True, "shape": False, "corner": False}
    big = np.asarray(Image.fromarray(render("triangle", "green", "top right")).resize((256, 256)))
    assert all(check_scene(big, "triangle", "green", "top right").values())  # any output size


def test_items_are_deterministic_and_edits_change_one_attribute(tmp_path):
    a, b = generate(tmp_path / "a", n=4), generate(tmp_path / "b", n=4)
    rows = [json.loads(line) for line in (a / "docs.jsonl").read_text().splitlines()]
    assert (a / "docs.jsonl").read_text() == (b / "docs.jsonl").read_text()
    assert all((a / r["target"]).read_bytes() == (b / r["target"]).read_bytes() for r in rows)
    assert {r["kind"] for r in rows} == set(KINDS)
    for item, target, source in iter_items(("edit",), 20, "test", 0):
        assert source is not None and not (source == target).all()
        got = check_scene(source, item.shape, item.colour, item.corner)
        assert not got["colour" if item.edited == "colour" else "shape"] and got["corner"]
    train = [i.prompt for i, _, _ in iter_items(("draw",), 20, "train", 0)]
    test = [i.prompt for i, _, _ in iter_items(("draw",), 20, "test", 0)]
    assert train != test


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    return tmp_path_factory.mktemp("xdg")


def _metrics(task: str, model, tmp_path, monkeypatch, cache_home, data: str = "sample") -> dict:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    summary = evaluate(task, model, data=data, output_dir=tmp_path, rebuild_leaderboards=False, cache=False)
    rec = summary.results["tasks"][task]
    assert rec["n_errors"] == 0, rec["errors"]
    return {k: v["value"] for k, v in rec["metrics"].items()}


def test_oracle_is_perfect_and_identity_or_noise_is_not(tmp_path, monkeypatch, cache_home):
    for task in ("omniworld_draw", "omniworld_edit", "omniworld_derain"):
        oracle = _metrics(task, "oracle", tmp_path / task / "o", monkeypatch, cache_home)
        assert oracle["ssim"] == pytest.approx(1.0) and oracle.get("accuracy", 1.0) == 1.0, (task, oracle)
        baseline = _metrics(task, "random", tmp_path / task / "r", monkeypatch, cache_home)
        assert baseline["ssim"] < 0.95 and baseline.get("accuracy", 0.0) == 0.0, (task, baseline)


UNTRAINED = {"name": "unimoe_tiny", "adapter": "unimoe", "args": {
    "checkpoint": "unimoe/weights/unimoe_tiny", "imagegen": "unimoe/weights/unimoe_tiny_imagegen",
    "imagegen_init": "random"}}


@pytest.mark.skipif(not (HEAD / "model.safetensors").is_file(), reason="the tiny image head is not trained yet")
def test_unimoe_tiny_draws_edits_and_derains_better_than_the_baselines(tmp_path, monkeypatch, cache_home):
    """The shipped head draws the described scene at least 50 points more often than the untrained head (the
    issue's bar), edits items right where the identity and the untrained head edit none, and beats the rainy
    input (identity) and the untrained head on deraining."""
    scores = {(task, name): _metrics(task, model, tmp_path / task / name, monkeypatch, cache_home, data="full")
              for task in ("omniworld_draw", "omniworld_edit", "omniworld_derain")
              for name, model in (("trained", "unimoe_tiny"), ("identity", "random"), ("untrained", UNTRAINED))}
    draw = {name: scores["omniworld_draw", name]["accuracy"] for name in ("trained", "identity", "untrained")}
    assert draw["trained"] >= max(draw["identity"], draw["untrained"]) + 0.5, draw
    edit = {name: scores["omniworld_edit", name]["accuracy"] for name in ("trained", "identity", "untrained")}
    assert edit["trained"] >= 0.5 and edit["identity"] == edit["untrained"] == 0.0, edit
    derain = {name: scores["omniworld_derain", name]["ssim"] for name in ("trained", "identity", "untrained")}
    assert derain["trained"] > max(derain["identity"], derain["untrained"]), derain
