"""The ablation table: rows named by what differs between checkpoints, scores per task, routing cost."""

from __future__ import annotations

import json

from harness.ablation import ablation_table, routing_cost
from harness.cli import main


def run(checkpoint: str, score: float, active: list[int], null: list[int], tokens: int = 10) -> dict:
    counts = {"text": {"tokens": tokens, "active_experts_sum": active, "null_tokens": null},
              "aux_loss": {"sum": [1.0], "calls": [1]}}
    return {"status": "complete", "model": {"name": "unimoe_tiny", "args": {"checkpoint": checkpoint}},
            "tasks": {"omniworld_text": {"primary_metric": "exact_match", "routing": {"counts": counts},
                                         "metrics": {"exact_match": {"value": score}}}}}


def test_routing_cost_averages_over_tokens_and_layers():
    active, null = routing_cost(run("x", 50.0, active=[20, 10], null=[0, 5]))
    assert active == 30 / 20 and null == 5 / 20


def test_table_rows_are_named_by_the_differing_part_of_the_checkpoint(tmp_path, capsys):
    rows = [run("runs/abl/top_k/anneal/model", 60.0, [20], [0]), run("runs/abl/no_null/anneal/model", 40.0, [15], [5])]
    table = ablation_table(rows)
    assert "| top_k | 60.0 | 60.0 | 2.00 | 0.000 |" in table
    assert "| no_null | 40.0 | 40.0 | 1.50 | 0.500 |" in table
    for i, r in enumerate(rows):
        (tmp_path / "runs" / str(i)).mkdir(parents=True)
        (tmp_path / "runs" / str(i) / "results.json").write_text(json.dumps(r))
    assert main(["ablation", f"runs={tmp_path}", f"out={tmp_path / 't.md'}"]) == 0
    assert (tmp_path / "t.md").read_text().strip() == table == capsys.readouterr().out.strip()
