"""The committed regression baseline (`make gate`) belongs to the weights and tasks that are committed now."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.catalog import expand, load_entry
from harness.models import build_model

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "results" / "baselines" / "unimoe_tiny" / "omniworld"


def test_baseline_matches_the_shipped_weights_and_the_omniworld_tasks():
    results = json.loads((BASELINE / "results.json").read_text())
    assert results["status"] == "complete" and results["config"]["data"] == "full"
    config = yaml.safe_load((ROOT / "configs" / "model" / "unimoe_tiny.yaml").read_text())
    assert results["model"]["fingerprint"] == build_model(config).fingerprint(), (
        "unimoe_tiny's weights changed: rerun `make gate` after regenerating the baseline (README: Training)")
    tasks = {cfg.name: cfg for cfg in expand(load_entry("omniworld"))}
    assert set(results["tasks"]) == set(tasks)
    for name, rec in results["tasks"].items():
        assert rec["task_hash"] == tasks[name].hash(), f"{name}: task config changed since the baseline"
        assert rec["n_errors"] == 0 and (BASELINE / "samples" / f"{name}.jsonl").is_file()
