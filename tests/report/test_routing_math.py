"""Routing numbers behind the figures, checked on counts small enough to work out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.report import routing as R
from harness.routing_report import run_counts

# 2 layers, 3 routed experts + 1 null (last column), 10 text and 4 image tokens
COUNTS = {
    "text": {"tokens": 10, "expert_tokens": [[5, 5, 10, 0], [2, 8, 4, 6]], "null_tokens": [0, 6],
             "active_experts_sum": [20, 14]},
    "image": {"tokens": 4, "expert_tokens": [[0, 0, 0, 4], [4, 0, 0, 0]], "null_tokens": [4, 0],
              "active_experts_sum": [0, 4]},
    "aux_loss": {"sum": [1.0, 2.0], "calls": [1, 1]},
}


def test_usage_is_the_share_of_tokens_and_shared_experts_are_always_on():
    layout = R.ExpertLayout(routed=3, null=1, shared=2)
    usage = R.usage(COUNTS["text"], layout)
    assert usage.shape == (2, 6)
    np.testing.assert_allclose(usage[0], [0.5, 0.5, 1.0, 0.0, 1.0, 1.0])
    assert layout.labels == ["E0", "E1", "E2", "null", "S0", "S1"]


def test_total_variation_between_modalities_per_layer():
    names, tv = R.total_variation(COUNTS)
    assert names == ["text", "image"]
    # layer 0: text (.25, .25, .5, 0) vs image (0, 0, 0, 1): TV = 1; layer 1: text (.1, .4, .2, .3) vs (1, 0, 0, 0)
    np.testing.assert_allclose(tv[:, 0, 1], [1.0, 0.9])
    np.testing.assert_allclose(tv[:, 1, 0], tv[:, 0, 1])
    assert np.all(np.diagonal(tv, axis1=1, axis2=2) == 0)


def test_layout_from_the_checkpoint_config_or_recognised_from_counts(tmp_path):
    assert R.layout_for(COUNTS) == R.ExpertLayout(3, 1, 0)  # last column equals null_tokens in every layer
    (tmp_path / "config.json").write_text(json.dumps(
        {"moe_type": "dynamic", "mlp_dynamic_null_expert_num": 1, "mlp_fixed_expert_num": 2}))
    assert R.layout_for(COUNTS, tmp_path) == R.ExpertLayout(3, 1, 2)
    no_null = {"text": {**COUNTS["text"], "null_tokens": [0, 0]}}
    assert R.layout_for(no_null) == R.ExpertLayout(4, 0, 0)


def test_run_counts_add_tasks_together():
    results = {"tasks": {"a": {"routing": {"counts": COUNTS}}, "b": {"routing": {"counts": COUNTS}}, "c": {}}}
    merged = run_counts(results)
    assert merged["text"]["tokens"] == 20 and merged["image"]["expert_tokens"][1] == [8, 0, 0, 0]


@pytest.mark.parametrize("key,expected", [("active_experts_sum", [2.0, 1.4]), ("null_tokens", [0.0, 0.6])])
def test_per_layer_means(key, expected):
    np.testing.assert_allclose(R.per_layer(COUNTS["text"], key), expected)
