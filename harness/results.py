"""Run directories and the versioned ``results.json`` schema.

Layout: ``<output_dir>/runs/<run_id>/{results.json, config.yaml, status.json, samples/<task>.jsonl}``.
Files are written atomically (temp file + rename), so a reader, a concurrent run or a crash never sees
half a file. The schema is documented in README.md ("Results schema"); bump ``SCHEMA_VERSION`` on any
incompatible change.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from harness.api import stable_hash

SCHEMA_VERSION = 1
PACKAGES = ("torch", "transformers", "numpy", "hydra-core", "av", "soundfile", "jiwer", "whisper-normalizer",
            "pycocoevalcap", "scikit-image", "pillow", "unimoe-harness")
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization)", re.I)
REPO_ROOT = Path(__file__).resolve().parent.parent


def new_run_id(model: str, task: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model}-{task}")[:80]
    return f"{stamp}-{safe}-{uuid.uuid4().hex[:6]}"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False, default=str, allow_nan=True)
        f.write("\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def redact(obj: Any) -> Any:
    """Drop values of keys that look like secrets (an env-var *name* such as ``api_key_env`` is kept)."""
    if isinstance(obj, Mapping):
        return {
            k: ("<redacted>" if _SECRET_KEY.search(str(k)) and not str(k).endswith("_env") and v else redact(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact(v) for v in obj]
    return obj


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"hash": git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git": git_state(),
        "packages": versions,
    }


def task_record(outcome: Any) -> dict[str, Any]:
    """The results.json entry for one task (see README "Results schema")."""
    task = outcome.task
    cfg = task.config
    samples = outcome.samples
    n_model = sum(not s.cached for s in samples if s.response is not None)
    record = {
        "group": cfg.group,
        "version": cfg.version,
        "task_hash": cfg.hash(),
        "prompt_hash": stable_hash({"prompt": dict(cfg.prompt), "generation": cfg.generation.__dict__}),
        "extraction_rule": _rule_id(cfg.extract),
        "metrics": {name: mv.to_dict() for name, mv in outcome.metrics.items()},
        "primary_metric": cfg.primary_metric,
        "scale": cfg.scale,
        "paper_score": cfg.paper_score,
        "judge": task.judge_identity(),
        "data_source": task.data_source(),
        "data": task.data,
        "breakdown": outcome.breakdown,
        "n_docs": len(samples),
        "n_scored": sum(s.error is None for s in samples),
        "n_errors": outcome.n_errors,
        "n_parse_errors": sum(s.parse_error is not None for s in samples),
        "n_cached": sum(s.cached for s in samples),
        "errors": [{"doc_id": s.doc_id, "error": s.error} for s in samples if s.error][:50],
        "fatal": outcome.fatal,
        "timing": {
            "seconds": round(outcome.seconds, 4),
            "model_seconds": round(outcome.model_seconds, 4),
            "model_calls": outcome.model_calls,
            "samples_computed": n_model,
            "samples_per_second": round(n_model / outcome.model_seconds, 3) if outcome.model_seconds else None,
        },
    }
    usage = token_usage(samples)
    if usage:
        record["usage"] = usage
    if outcome.routing:
        from harness.routing_report import summarize

        record["routing"] = {"counts": outcome.routing, "summary": summarize(outcome.routing)}
    return record


USAGE_KEYS = ("prompt_tokens", "completion_tokens", "cost_usd")


def token_usage(samples: Any) -> dict[str, Any]:
    """Tokens (and cost) the model spent on this run's uncached samples, for adapters that report them
    (model=openai); empty when none does."""
    totals: dict[str, Any] = {}
    for s in samples:
        if s.response is None or s.cached:
            continue
        for key in USAGE_KEYS:
            if isinstance(s.response.stats.get(key), (int, float)):
                totals[key] = totals.get(key, 0) + s.response.stats[key]
    if "completion_tokens" not in totals:  # OpenAI-style usage only
        return {}
    totals["requests"] = sum(1 for s in samples if s.response is not None and not s.cached
                             and "completion_tokens" in s.response.stats)
    return totals


def _rule_id(name: str) -> str:
    try:
        from harness.extract.base import get_rule

        return get_rule(name).id
    except (KeyError, ImportError):
        return name


def group_records(tasks: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Per modality group: the unweighted mean of member tasks' primary metrics, where directions agree."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in tasks.values():
        if rec["metrics"]:
            groups.setdefault(rec["group"], []).append(rec)
    out = {}
    for group, recs in sorted(groups.items()):
        prim = [r["metrics"][r["primary_metric"]] for r in recs if r["primary_metric"] in r["metrics"]]
        directions = {p["higher_is_better"] for p in prim}
        out[group] = {
            "tasks": sorted(t for t, r in tasks.items() if r["group"] == group),
            "mean_primary": (sum(p["value"] for p in prim) / len(prim)) if prim and len(directions) == 1 else None,
        }
    return out
