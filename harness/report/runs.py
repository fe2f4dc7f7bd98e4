"""A finished run as a report reads it: results, sample log, and the requests rebuilt from the task configs.

The sample log holds responses and scores but not prompts or media; those are rebuilt from the run's own
config (task, data, data_dir, seed) through the task plugins, the same way the run built them. When that is
impossible (the benchmark's data is not on this machine) the report says why and shows the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.api import HarnessError, Request
from harness.jsonio import read_json_object
from harness.runner import read_sample_log

STATUSES = ("correct", "wrong", "parse error", "error", "unscored")


@dataclass
class Run:
    directory: Path
    results: dict[str, Any]
    config: dict[str, Any]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.results.get('model', {}).get('name', '?')} · {self.results.get('run_id', self.directory.name)}"

    @property
    def model_dir(self) -> Path | None:
        """The checkpoint folder named in the run's model arguments, when it exists here."""
        from harness.results import REPO_ROOT

        checkpoint = (self.results.get("model", {}).get("args") or {}).get("checkpoint")
        if not checkpoint or not isinstance(checkpoint, str):
            return None
        for root in (Path(checkpoint), REPO_ROOT / checkpoint):
            if root.is_dir():
                return root
        return None


def load_run(path: str | Path) -> Run:
    """A run directory (or its results.json); a missing or unreadable file is a one-line HarnessError."""
    path = Path(path)
    directory = path.parent if path.name == "results.json" else path
    results_path = directory / "results.json"
    if not results_path.is_file():
        raise HarnessError(f"{directory}: no results.json (is this a run directory?)")
    results = read_json_object(results_path, "results file")
    if not isinstance(results.get("tasks"), dict):
        raise HarnessError(f"{results_path}: not a results file (no 'tasks' object)")
    config_path = directory / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    run = Run(directory, results, config if isinstance(config, dict) else {})
    for task in results["tasks"]:
        run.samples[task] = _read_samples(directory / "samples" / f"{task}.jsonl")
    return run


def _read_samples(path: Path) -> list[dict[str, Any]]:
    """The last record of each document (a re-scored sample is logged again; the last one is final)."""
    if not path.is_file():
        return []
    return list(read_sample_log(path).values())


def rebuild_requests(run: Run, task: str) -> tuple[dict[str, Request], str | None]:
    """``{doc_id: Request}`` for one task of the run, or an empty dict and the reason it could not be done."""
    from harness.catalog import build_task, expand, load_entry

    try:
        (task_cfg,) = [c for c in expand(load_entry(task))]
        plugin = build_task(task_cfg, data=run.results.get("data") or run.config.get("data", "sample"),
                            data_dir=run.config.get("data_dir"), seed=int(run.config.get("seed") or 0))
        requests = {}
        for doc in plugin.docs():
            if isinstance(doc, Exception):
                continue
            request = plugin.build_request(doc)
            requests[request.doc_id] = request
        return requests, None
    except (HarnessError, KeyError, OSError, ValueError) as e:
        return {}, f"prompts and media of {task} cannot be rebuilt here ({type(e).__name__}: {e})"


def sample_score(sample: Mapping[str, Any], metric: str) -> float | None:
    """The sample's item for the primary metric when it is a number (None for structured items, e.g. WER counts)."""
    value = (sample.get("items") or {}).get(metric)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and not math.isnan(value):
        return float(value)
    return None


def sample_status(sample: Mapping[str, Any], score: float | None, best: float | None) -> str:
    """One of :data:`STATUSES`: errors first, then parse errors, then whether the score is the metric's best."""
    if sample.get("error"):
        return "error"
    if sample.get("parse_error"):
        return "parse error"
    if score is None or best is None:
        return "unscored"
    return "correct" if math.isclose(score, best, abs_tol=1e-9) else "wrong"
