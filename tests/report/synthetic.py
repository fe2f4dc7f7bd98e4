"""A large synthetic run folder for the report's size and speed checks (used by tests and bench/report.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

COUNTS = {
    "text": {"tokens": 50_000, "expert_tokens": [[9000, 12000, 15000, 8000, 6000]] * 3, "null_tokens": [6000] * 3,
             "active_experts_sum": [90_000] * 3},
    "image": {"tokens": 20_000, "expert_tokens": [[10000, 2000, 3000, 1000, 4000]] * 3, "null_tokens": [4000] * 3,
              "active_experts_sum": [30_000] * 3},
}


def write_run(root: Path, n: int = 10_000, seed: int = 0) -> Path:
    """``root/run`` holding results.json, config.yaml and ``n`` samples of one task with long responses."""
    rng = random.Random(seed)
    run = root / "run"
    (run / "samples").mkdir(parents=True, exist_ok=True)
    words = "the model answered with a long explanation of the chart before giving its final choice".split()
    with open(run / "samples" / "omniworld_text.jsonl", "w", encoding="utf-8") as f:
        for i in range(n):
            answer = rng.choice("ABCD")
            text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 400))) + f" Answer: {answer}"
            f.write(json.dumps({"doc_id": f"doc-{i:05d}", "response": {"text": text, "stats": {}},
                                "prediction": answer, "target": rng.choice("ABCD"),
                                "items": {"exact_match": float(rng.random() < 0.5)},
                                "error": "model crashed" if i % 997 == 0 else None,
                                "parse_error": None, "fields": {"kind": rng.choice(["sum", "syllogism"])}}) + "\n")
    results = {"run_id": "synthetic", "status": "complete", "data": "sample", "model": {"name": "random"},
               "tasks": {"omniworld_text": {"group": "omniworld", "primary_metric": "exact_match", "n_docs": n,
                                            "metrics": {"exact_match": {"value": 50.0, "stderr": 0.5, "n": n,
                                                                        "higher_is_better": True}},
                                            "breakdown": {"kind": {"sum": 49.0, "syllogism": 51.0}},
                                            "routing": {"counts": COUNTS}}}}
    (run / "results.json").write_text(json.dumps(results))
    (run / "config.yaml").write_text("task: omniworld_text\ndata: sample\nmodel: {name: random, adapter: random}\n")
    return run
