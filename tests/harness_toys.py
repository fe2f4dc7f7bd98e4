"""A toy text task and scriptable models for testing the engine without any real benchmark or model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from harness.api import Request, Response, stable_hash
from harness.extract.base import RULES, register_rule
from harness.metrics.base import METRICS, Metric, register_metric

if "toy_exact" not in METRICS:
    register_metric(Metric("toy_exact", item=lambda p, t: float(str(p) == str(t)),
                           aggregate=lambda xs: sum(xs) / len(xs), best=1.0))
if "toy_identity" not in RULES:
    register_rule("toy_identity", "1")(lambda response, ctx: response.strip())


def toy_task_config(name: str = "toy", **overrides) -> dict:
    cfg = {
        "name": name,
        "group": "text",
        "doc_id": "id",
        "prompt": {"template": "What is {a} + {b}?"},
        "extract": "toy_identity",
        "metrics": ["toy_exact"],
        "primary_metric": "toy_exact",
        "paper_score": 50.0,
    }
    cfg.update(overrides)
    return cfg


def write_toy_docs(folder: Path, n: int = 20, extra_lines: Sequence[str] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "docs.jsonl", "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i}", "a": i, "b": 1, "answer": str(i + 1)}) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return folder


class ArithmeticModel:
    """Answers toy questions; records every call to ``log_path`` (one line per request) so tests can count them.
    ``fail_on`` makes it raise on chosen doc ids; ``wrong_on`` answers those wrongly; ``empty_on`` answers ''."""

    def __init__(self, name: str = "arith", log_path: Path | None = None, fail_on=(), wrong_on=(), empty_on=(),
                 sleep: float = 0.0):
        self.name = name
        self.log_path = log_path
        self.fail_on, self.wrong_on, self.empty_on = set(fail_on), set(wrong_on), set(empty_on)
        self.sleep = sleep

    def fingerprint(self) -> str:
        return stable_hash({"arith": sorted(self.wrong_on)})

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        import re
        import time

        out = []
        for req in requests:
            if self.sleep:
                time.sleep(self.sleep)
            if self.log_path:
                with open(self.log_path, "a") as f:
                    f.write(req.doc_id + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            if req.doc_id in self.fail_on:
                raise RuntimeError(f"boom on {req.doc_id}")
            a, b = map(int, re.findall(r"\d+", req.text())[:2])
            if req.doc_id in self.empty_on:
                out.append(Response(text=""))
            else:
                out.append(Response(text=str(a + b + (1 if req.doc_id in self.wrong_on else 0))))
        return out
