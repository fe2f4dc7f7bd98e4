"""Run directories and the versioned ``results.json`` schema.

Layout: ``<output_dir>/runs/<run_id>/{results.json, config.yaml, status.json, samples/<task>.jsonl}``.
Files are written atomically (temp file + rename), so a reader, a concurrent run or a crash never sees
half a file. The schema is documented in README.md ("Results schema"); bump ``SCHEMA_VERSION`` on any
incompatible change.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import os
import platform
import re
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.api import stable_hash
from harness.errors import InputFileError
from harness.jsonio import read_json_object
from harness.secrets import redact, redact_text

SCHEMA_VERSION = 1
PACKAGES = ("torch", "transformers", "numpy", "hydra-core", "av", "soundfile", "jiwer", "whisper-normalizer",
            "pycocoevalcap", "scikit-image", "pillow", "unimoe-harness")
REPO_ROOT = Path(__file__).resolve().parent.parent


def new_run_id(model: str, task: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model}-{task}")[:80]
    return f"{stamp}-{safe}-{uuid.uuid4().hex[:6]}"


def strict_json(obj: Any, where: str = "") -> tuple[Any, dict[str, str]]:
    """A copy of ``obj`` that strict JSON can hold: every NaN or infinity becomes null. Also returns which
    values were replaced (``{"tasks/x/metrics/wer/value": "NaN"}``), so a reader can tell "not a number" from
    "absent"."""
    if isinstance(obj, Mapping):
        out, replaced = {}, {}
        for key, value in obj.items():
            out[key], inner = strict_json(value, f"{where}/{key}" if where else str(key))
            replaced.update(inner)
        return out, replaced
    if isinstance(obj, (list, tuple)):
        items = [strict_json(v, f"{where}/{i}") for i, v in enumerate(obj)]
        return [v for v, _ in items], {k: r for _, inner in items for k, r in inner.items()}
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):
        value = float(obj)
        if not math.isfinite(value):
            return None, {where: "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
        return value, {}
    return obj, {}


def dumps_strict(data: Any, **kw: Any) -> str:
    """Strict JSON text of ``data`` (see :func:`strict_json`); an object records its replaced values under
    ``"non_finite"``."""
    try:  # the common case, every number finite: no copy of the data (a sample log line is written per sample)
        return json.dumps(data, ensure_ascii=False, default=_finite_or_text, allow_nan=False, **kw)
    except _NotFinite:
        pass
    except ValueError as e:  # json's own refusal of a NaN or an infinity
        if "out of range float" not in str(e).lower():
            raise
    clean, replaced = strict_json(data)
    if replaced and isinstance(clean, dict):
        clean["non_finite"] = {**(clean.get("non_finite") or {}), **replaced}
    return json.dumps(clean, ensure_ascii=False, default=str, allow_nan=False, **kw)


class _NotFinite(Exception):
    pass


def _finite_or_text(obj: Any) -> Any:
    """What :func:`strict_json` makes of a value json cannot write (a numpy float, a mapping that is not a dict);
    anything else as its text. A non-finite number leaves the fast path."""
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, numbers.Real) and not isinstance(obj, numbers.Integral):
        value = float(obj)
        if not math.isfinite(value):
            raise _NotFinite
        return value
    return str(obj)


def write_json(path: Path, data: Any) -> None:
    """Write strict JSON atomically (temp file + rename)."""
    write_text(path, dumps_strict(data, indent=2) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write atomically (temp file + rename); a failed write (a full disk) leaves no temp file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        "judge": redact(task.judge_identity()),
        "data_source": task.data_source(),
        "data": task.data,
        "breakdown": outcome.breakdown,
        "n_docs": len(samples),
        "n_dataset": outcome.n_dataset,
        "n_scored": sum(s.error is None for s in samples),
        "n_errors": outcome.n_errors,
        "n_parse_errors": sum(s.parse_error is not None for s in samples),
        "n_cached": sum(s.cached for s in samples),
        "errors": [{"doc_id": s.doc_id, "error": redact_text(s.error)} for s in samples if s.error][:50],
        "fatal": outcome.fatal and redact_text(outcome.fatal),
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


# --------------------------------------------------------------------------------------------------
# Coverage: which runs speak for a whole benchmark


@dataclass(frozen=True)
class Coverage:
    """Whether a run scored every document of every task it names (``whole``), and why not (or how)."""

    whole: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"whole": self.whole, "reason": self.reason}


def run_selection(results: Mapping[str, Any]) -> dict[str, Any]:
    """The run's document selection: ``{"shard": "i/n" | None, "limit": N | None}``, read from ``request``
    when it is a mapping (merged and distributed runs) and otherwise from the run's ``config``."""
    source = results.get("request")
    if not isinstance(source, Mapping):
        source = results.get("config")
    source = source if isinstance(source, Mapping) else {}
    return {"shard": source.get("shard") or None, "limit": source.get("limit")}


def run_coverage(results: Mapping[str, Any]) -> Coverage:
    """The one rule every table uses: a run counts when it is complete, neither sharded nor limited (a merge
    of shard runs is neither), and each task scored as many documents as its dataset holds."""
    status = results.get("status")
    if status != "complete":
        return Coverage(False, f"status {status!r}, not 'complete'")
    selection = run_selection(results)
    if selection["shard"] is not None:
        return Coverage(False, f"shard {selection['shard']} only")
    if selection["limit"] is not None:
        return Coverage(False, f"limit={selection['limit']}")
    for name, rec in (results.get("tasks") or {}).items():
        n_docs, n_dataset = (rec.get("n_docs"), rec.get("n_dataset")) if isinstance(rec, Mapping) else (0, None)
        if n_dataset is not None and n_docs != n_dataset:
            return Coverage(False, f"{name}: {n_docs} of {n_dataset} documents")
    merged = results.get("merged_from")
    if merged:
        return Coverage(True, f"merged from {len(merged)} runs")
    return Coverage(True, "every document of every task")


def write_results(run_dir: Path, results: dict[str, Any]) -> None:
    """Write ``results.json`` with its coverage recorded, so every reader of the file sees the same verdict."""
    results["coverage"] = run_coverage(results).to_dict()
    write_json(run_dir / "results.json", results)


# --------------------------------------------------------------------------------------------------
# Reading results files back


class ResultsFileError(InputFileError):
    """A results.json that cannot be used; the message names the file and what is wrong."""


def read_results(path: str | Path) -> dict[str, Any]:
    """A run's results (``path`` is the file or its run folder), checked for the fields every reader needs:
    an object with ``model.name`` and ``tasks`` mapping task names to objects."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    data = read_json_object(path, "results file")
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise ResultsFileError(f"results file {path}: no model name (model.name)")
    tasks = data.get("tasks", {})
    if not isinstance(tasks, dict) or not all(isinstance(rec, dict) for rec in tasks.values()):
        raise ResultsFileError(f"results file {path}: 'tasks' must map task names to objects")
    data.setdefault("run_id", path.parent.name)
    return data


def iter_results(runs_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``(path, results)`` for every ``<runs_dir>/*/results.json``; a file that cannot be used is skipped with
    one warning line naming it (a run being written is never seen half-written: writes are atomic)."""
    for path in sorted(Path(runs_dir).glob("*/results.json")):
        try:
            yield path, read_results(path)
        except InputFileError as e:
            warn(f"skipped: {e}")


def primary_value(rec: Mapping[str, Any]) -> float | None:
    """A task record's primary metric value, or None when it has none that is a finite number (a failed
    task, a NaN written as null, a hand-edited file)."""
    metric = (rec.get("metrics") or {}).get(rec.get("primary_metric"))
    value = metric.get("value") if isinstance(metric, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
