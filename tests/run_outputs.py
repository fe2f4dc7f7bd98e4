"""Reading a finished run back for comparisons: its results.json, per-task metrics and last sample records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def harness(*args: str, launcher: tuple[str, ...] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """``python [launcher] -m harness ARGS`` from the repository root, one thread per process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, *launcher, "-m", "harness", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def torchrun(nproc: int) -> tuple[str, ...]:
    return ("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc))


def only_run(out: Path) -> Path:
    runs = sorted((out / "runs").glob("*/results.json"))
    assert len(runs) == 1, runs
    return runs[0].parent


def results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text())


def metrics(run_dir: Path) -> dict[str, dict[str, Any]]:
    return {task: rec["metrics"] for task, rec in results(run_dir)["tasks"].items()}


def predictions(run_dir: Path) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(task, doc_id) -> what the model said and how it scored, from each sample's last record."""
    out = {}
    for log in sorted((run_dir / "samples").glob("*.jsonl")):
        for line in log.read_text().splitlines():
            r = json.loads(line)
            text = (r["response"] or {}).get("text")
            out[(log.stem, r["doc_id"])] = (text, r["prediction"], r["items"], r["error"])
    return out
