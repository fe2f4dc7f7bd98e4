"""The Uni-MoE v1 recipe at toy length: v1's MoE block from the first stage (no dense twin), and a LoRA
stage that changes only LoRA adapters, routers and connectors while the expert FFNs stay bit-identical."""

from __future__ import annotations

import csv
import re

import torch

from unimoe.checkpoint import from_pretrained
from unimoe.moe_v1 import TopKLoRAMoE
from unimoe.omni import UniMoEOmni
from unimoe.train.__main__ import main

LORA_STAGE = re.compile(r"_lora_[AB]$|\.mlp\.gate\.weight$|^vision_aligner\.|^audio_aligner\.")


def test_v1_lora_stage_trains_only_lora_routers_and_connectors(tmp_path):
    args = ["recipe=unimoe_v1_tiny", f"out_dir={tmp_path}", "data.n_per_modality=2", "data.modalities=[image,text]",
            "stage.alignment.steps=2", "stage.warmup.steps=2", "stage.lora_v1.steps=8",
            *[f"stage.{s}.batch_size=4" for s in ("alignment", "warmup", "lora_v1")]]
    assert main(args) == 0
    before = from_pretrained(tmp_path / "warmup" / "model", model_class=UniMoEOmni)
    after = from_pretrained(tmp_path / "lora_v1" / "model", model_class=UniMoEOmni)
    assert after.config.moe_type == "topk_lora" and isinstance(after.model.layers[0].mlp, TopKLoRAMoE)
    assert before.config.moe_type == "topk_lora"  # the early stages trained the v1 model itself

    old = dict(before.named_parameters())
    changed = {n for n, p in after.named_parameters() if not torch.equal(p, old[n])}
    assert changed and not [n for n in changed if not LORA_STAGE.search(n)]
    assert any(n.endswith("_lora_B") for n in changed) and any(n.endswith(".mlp.gate.weight") for n in changed)
    for layer_before, layer_after in zip(before.model.layers, after.model.layers):  # the frozen expert FFNs
        for proj in ("gate_proj", "up_proj", "down_proj"):
            assert torch.equal(getattr(layer_after.mlp.experts, proj), getattr(layer_before.mlp.experts, proj))

    rows = list(csv.DictReader(open(tmp_path / "lora_v1" / "log.csv")))
    assert len(rows) == 8 and float(rows[-1]["ce"]) < float(rows[0]["ce"]) and rows[0]["aux"] != ""
