"""The unimoe adapter: real media decoding, generation, routing statistics per modality in results."""

from __future__ import annotations

import pytest

from harness.cli import main
from harness.evaluate import evaluate
from harness.models import build_model
from harness.models.unimoe import CheckpointMissing, weights_digest
from unimoe.config import UniMoEConfig


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
    assert layers == UniMoEConfig.preset("tiny_omni").num_hidden_layers and all(abs(sum(layer) - 1) < 1e-6 for layer in routing["video"]["expert_share"])
    sample = summary.outcomes[0].samples[0]
    assert sample.response.stats["finish_reason"] in ("eos", "length", "stop")


@pytest.mark.parametrize("whole", [True, False])
def test_fingerprint_follows_weight_content_not_file_sizes(tmp_path, monkeypatch, whole):
    """Two trainings write files of equal names and sizes; cached answers of one must not serve the other."""
    import harness.models.unimoe as adapter

    if not whole:  # the sampled digest of multi-GB releases
        monkeypatch.setattr(adapter, "FULL_HASH_LIMIT", 0)
    digests = []
    for value in (b"\x00", b"\x01"):
        root = tmp_path / f"ckpt{value[0]}"
        root.mkdir()
        (root / "config.json").write_text("{}")
        (root / "model.safetensors").write_bytes(bytes(300_000) + value + bytes(10))
        digests.append(weights_digest(root))
    assert digests[0] != digests[1]
    assert weights_digest(tmp_path / "ckpt0") == digests[0]
