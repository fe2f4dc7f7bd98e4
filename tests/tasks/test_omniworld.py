"""omniworld: deterministic generation, every modality, oracle at 100 and random near chance."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from harness.evaluate import evaluate
from unimoe.train.omniworld import LETTERS, MODALITIES, generate, training_examples


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_generation_is_byte_deterministic_and_splits_differ(tmp_path):
    pytest.importorskip("hibari", reason="speech items need the offline TTS hibari-tts")
    a = generate(tmp_path / "a", n=3, seed=0)
    generate(tmp_path / "b", n=3, seed=0)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    train = generate(tmp_path / "c", split="train", n=3, seed=0)
    assert [d["question"] for d in a] != [d["question"] for d in train] or a[0]["media"] != train[0]["media"]
    assert {d["modality"] for d in a} == set(MODALITIES)
    for d in a:
        for path in d["media"].values():
            assert (tmp_path / "a" / path).stat().st_size > 0
        if "options" in d:
            assert d["answer"] in "ABCD" and len(d["options"]) == 4


def test_options_are_listed_in_one_fixed_order_per_question_type(tmp_path):
    docs = generate(tmp_path, n=12, seed=0, modalities=("image", "video", "audio", "text"))
    orders: dict[str, set] = {}
    for d in docs:
        if "options" in d:
            orders.setdefault(d["kind"], set()).add(tuple(d["options"]))
            assert d["options"][LETTERS.index(d["answer"])].endswith(". " + d["answer_text"])
    assert orders and all(len(o) == 1 for o in orders.values()), orders


def test_training_examples_have_placeholders_and_targets(tmp_path):
    ex = list(training_examples(tmp_path, n=2, modalities=("image", "video", "text")))
    assert len(ex) == 6
    image = next(e for e in ex if e["modality"] == "image")
    assert image["messages"][0]["content"].startswith("<image>") and Path(image["media"]["image"]).is_file()
    assert image["messages"][1]["content"] == image["answer"]


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory):
    return tmp_path_factory.mktemp("xdg")


@pytest.mark.parametrize("model, low, high", [("oracle", 100.0, 100.0), ("random", 0.0, 60.0)])
def test_oracle_perfect_and_random_near_chance(model, low, high, tmp_path, monkeypatch, cache_home):
    pytest.importorskip("hibari", reason="speech items need the offline TTS hibari-tts")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    summary = evaluate("omniworld", model, output_dir=tmp_path, rebuild_leaderboards=False)
    for name, rec in summary.results["tasks"].items():
        assert rec["n_errors"] == 0, rec["errors"]
        value = rec["metrics"]["exact_match"]["value"]
        assert low <= value <= high, (name, value)
