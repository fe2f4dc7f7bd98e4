"""The unimoe adapter: real media decoding, generation, routing statistics per modality in results."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.evaluate import evaluate
from harness.models import build_model
from harness.models.unimoe import CheckpointMissing


def test_missing_checkpoint_says_what_to_download(tmp_path, capsys):
    with pytest.raises(CheckpointMissing, match="HIT-TMG/Uni-MoE-2.0-Omni"):
        build_model({"name": "unimoe2_omni", "adapter": "unimoe", "args": {"checkpoint": None}})
    with pytest.raises(CheckpointMissing, match="holds no config.json"):
        build_model({"name": "unimoe2_omni", "adapter": "unimoe", "args": {"checkpoint": str(tmp_path)}})
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "task=gpqa_diamond", "model=unimoe2_omni", f"output_dir={tmp_path}"])
    assert exit_info.value.code == 1
    assert "Download HIT-TMG/Uni-MoE-2.0-Omni" in capsys.readouterr().err


def test_tiny_model_on_videomme_reports_routing_by_modality(tmp_path):
    summary = evaluate("videomme", "unimoe_tiny", output_dir=tmp_path, limit=2, rebuild_leaderboards=False)
    rec = summary.results["tasks"]["videomme"]
    assert rec["n_errors"] == 0 and rec["metrics"]["accuracy"]["n"] == 2
    routing = rec["routing"]["summary"]
    assert routing["video"]["tokens"] > 0 and routing["text"]["tokens"] > 0
    layers = len(routing["text"]["expert_share"])
    assert layers == 2 and all(abs(sum(layer) - 1) < 1e-6 for layer in routing["video"]["expert_share"])
    sample = summary.outcomes[0].samples[0]
    assert sample.response.stats["finish_reason"] in ("eos", "length", "stop")
