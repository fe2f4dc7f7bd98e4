"""From a resolved config to a finished run directory: the Python API behind ``run``, ``score`` and ``validate``.

``evaluate(task="videomme", model="random")`` does in Python what ``python -m harness run task=videomme
model=random`` does on the command line.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness import run_status
from harness.api import ModelAdapter, stable_hash
from harness.cache import ResponseCache
from harness.cli import say
from harness.catalog import build_task, expand, load_entry, parse_entry
from harness.distributed import (DEFAULT_TIMEOUT_S, RANK_FAILED, RankFailure, evaluate_part, gather_parts, joined,
                                 place_model, share_run_id, whole_task)
from harness.errors import ConfigError, HarnessError, InputFileError, ModelLoadError
from harness.jsonio import iter_jsonl
from harness.launch import World, launched_world
from harness.results import (SCHEMA_VERSION, environment, group_records, new_run_id, task_record, write_json,
                             write_results, write_text)
from harness.runner import RunSettings, SampleLog, TaskOutcome, evaluate_task, score_predictions
from harness.schema import check_group_choice, check_values, parse_limit, parse_shard
from harness.prefetch import Prefetcher
from harness.secrets import redact
from harness.task import Task
from harness.time_limit import DEFAULT_SCORING_SECONDS, scoring_seconds


@dataclass
class RunSummary:
    run_dir: Path
    results: dict[str, Any]
    outcomes: list[TaskOutcome] = field(default_factory=list)
    part: bool = False  # a torchrun rank other than 0: it did its share; rank 0 records and reports the run

    @property
    def exit_code(self) -> int:
        """Non-zero unless the run finished (complete, or inferred with ``stage=infer``); per-sample errors are
        recorded, not fatal. A rank that finished its part exits 0 (a failed rank raises instead)."""
        if self.part:
            return 0
        return 0 if self.results.get("status") in (run_status.COMPLETE, run_status.INFERRED) else 1


def _plain(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]
    return dict(cfg)


def _model_config(model: Any) -> dict[str, Any]:
    if isinstance(model, str):
        from harness.catalog import CONFIG_DIR

        check_group_choice("model", model)
        path = CONFIG_DIR / "model" / f"{model}.yaml"
        if not path.is_file():
            raise ConfigError(f"unknown model {model!r} (no {path})")
        return yaml.safe_load(path.read_text())
    return dict(model)


def evaluate(
    task: str | Mapping[str, Any],
    model: str | Mapping[str, Any] | ModelAdapter,
    *,
    data: str = "sample",
    data_dir: str | None = None,
    limit: float | None = None,
    batch_size: int = 1,
    seed: int = 0,
    shard: str | None = None,
    stage: str = "all",
    cache: bool = True,
    progress: bool = False,
    output_dir: str | Path = "results",
    rebuild_leaderboards: bool = True,
    judge: Mapping[str, Any] | None = None,
    scoring_timeout_s: float | None = DEFAULT_SCORING_SECONDS,
    world: World | None = None,
    num_workers: int = 2,
    prefetch_depth: int = 2,
) -> RunSummary:
    """Run ``task`` on ``model``; with a ``world`` (inside ``torchrun``, see :mod:`harness.distributed`) this
    process is one rank of a data-parallel run and only rank 0 writes the run's results. ``num_workers``
    processes decode the media of the next ``prefetch_depth`` batches while the model runs (0: no prefetching)."""
    from harness.models import build_model

    check_values({"data": data, "data_dir": data_dir, "limit": limit, "batch_size": batch_size, "seed": seed,
                  "shard": shard, "stage": stage, "output_dir": str(output_dir)})
    entry = load_entry(task) if isinstance(task, str) else parse_entry(task)
    if hasattr(model, "generate"):
        adapter: ModelAdapter | None = model  # type: ignore[assignment]
        model_cfg = {"name": model.name, "adapter": type(model).__name__, "args": {}}  # type: ignore[union-attr]
    else:
        adapter = None
        model_cfg = _model_config(model)  # type: ignore[arg-type]
    settings = RunSettings(
        limit=parse_limit(limit), batch_size=batch_size, shard=parse_shard(shard), infer_only=stage == "infer",
        progress=progress, scoring_timeout_s=scoring_seconds(scoring_timeout_s),
    )
    main = world is None or world.is_main
    out = Path(output_dir)
    run_status.mark_dead_runs(out / "runs")
    run_id = new_run_id(model_cfg["name"], entry.name)
    run_dir = out / "runs" / (share_run_id(world, run_id) if world else run_id)
    config = redact(
        {"task": entry.name, "model": model_cfg, "data": data, "data_dir": data_dir, "limit": limit,
         "batch_size": batch_size, "seed": seed, "shard": shard, "stage": stage, "cache": cache,
         "scoring_timeout_s": scoring_timeout_s}
    )
    started = dt.datetime.now(dt.timezone.utc)
    model_record = {"name": model_cfg["name"], "adapter": model_cfg.get("adapter"), "fingerprint": None,
                    "args": redact(model_cfg.get("args") or {})}
    results = new_results(run_dir, model_record, request=entry.name, data=data, stage=stage, seed=seed,
                          config=config)
    if world:
        results["distributed"] = {"world_size": world.size}
    summary = RunSummary(run_dir=run_dir, results=results)
    response_cache = None
    prefetcher = None
    # What exists once the model is loaded (torch's modules, the model: ~200k objects) lives until the run ends;
    # frozen, the cyclic garbage collector stops walking it on every full collection (4 per omniworld run,
    # 0.3 s; 0.1 s in the middle of rank 0's gather). Unfrozen at the end: a caller that drops the model later
    # gets it collected as before.
    frozen = False
    if main:
        write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    try:
        if main:
            write_json(run_dir / "status.json", run_status.running(run_dir.name))
        try:
            adapter = _loaded(adapter or build_model(place_model(model_cfg, world) if world else model_cfg))
        except Exception as e:
            raise ModelLoadError(f"model {model_cfg['name']} cannot load: {type(e).__name__}: {e}") from e
        model_record["fingerprint"] = adapter.fingerprint()
        gc.freeze()  # unfrozen when the run ends, below
        frozen = True
        response_cache = ResponseCache(out / "cache") if cache else None
        judge_obj = build_judge_for_run(judge, out)
        prefetcher = Prefetcher(num_workers, prefetch_depth) if num_workers > 0 else None

        def record(outcome: TaskOutcome) -> None:
            summary.outcomes.append(outcome)
            results["tasks"][outcome.task.config.name] = task_record(outcome)
            results["groups"] = group_records(results["tasks"])
            write_results(run_dir, results)  # after every task: nothing computed is lost

        parts: list[tuple[Task, TaskOutcome]] = []  # under torchrun: each task with this rank's part of it
        for task_cfg in expand(entry):
            task_obj = build_task(task_cfg, data=data, data_dir=data_dir, seed=seed)
            if task_cfg.judge and judge_obj is not None:
                task_obj.judge = judge_obj
            if world:
                parts.append((task_obj, evaluate_part(task_obj, adapter, settings, response_cache,
                                                      run_dir / "samples", world, prefetcher)))
                continue  # rank 0 records the tasks once every rank has done its parts
            log = SampleLog(run_dir / "samples" / f"{task_cfg.name}.jsonl")
            try:
                record(evaluate_task(task_obj, adapter, settings, response_cache, log, prefetcher))
            finally:
                log.close()
        if world:
            every_part = gather_parts([part for _, part in parts], world)
            for (task_obj, _), task_parts in zip(parts, every_part or []):
                record(whole_task(task_obj, task_parts, settings, run_dir / "samples"))
    except KeyboardInterrupt:
        if main:
            _finish(summary, started, run_status.ABORTED, "interrupted (Ctrl-C); rerun the same command to resume")
        raise
    except BaseException as e:
        if main:
            _finish(summary, started, run_status.FAILED,
                    str(e) if isinstance(e, HarnessError) else f"{type(e).__name__}: {e}")
        raise
    finally:
        if frozen:
            gc.unfreeze()
        if prefetcher:
            prefetcher.close()
        if response_cache:
            response_cache.close()
    if not main:
        summary.part = True
        return summary
    fatal = {name: rec["fatal"] for name, rec in results["tasks"].items() if rec.get("fatal")}
    if fatal:
        _finish(summary, started, run_status.FAILED, "; ".join(f"{name}: {why}" for name, why in fatal.items()))
    else:
        _finish(summary, started, run_status.INFERRED if stage == "infer" else run_status.COMPLETE)
    if rebuild_leaderboards:
        from harness.leaderboard import build_leaderboards

        build_leaderboards(out)
    return summary


def _loaded(adapter: ModelAdapter) -> ModelAdapter:
    """Load the model's weights now, if the adapter can (an optional ``load()``): a broken checkpoint then
    fails the run once, before the first sample, instead of once per sample."""
    load = getattr(adapter, "load", None)
    if callable(load):
        load()
    return adapter


def _finish(summary: RunSummary, started: dt.datetime, status: str, reason: str | None = None) -> None:
    """Record the run's final status, with its timing, in results.json and status.json."""
    finished = dt.datetime.now(dt.timezone.utc)
    results = summary.results
    results["status"] = status
    if reason:
        results["status_reason"] = reason
    results["timing"] = {"started": started.isoformat(), "finished": finished.isoformat(),
                         "seconds": round((finished - started).total_seconds(), 3)}
    write_results(summary.run_dir, results)
    write_json(summary.run_dir / "status.json", run_status.finished(summary.run_dir.name, status, reason))


def new_results(run_dir: Path, model: dict[str, Any], *, request: str, data: str, stage: str, seed: int,
                config: dict[str, Any]) -> dict[str, Any]:
    """The results.json skeleton (schema documented in README "Results schema")."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_dir.name,
        "status": "running",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(),
        "model": model,
        "request": request,
        "data": data,
        "stage": stage,
        "seeds": {"seed": seed},
        "config": config,
        "environment": environment(),
        "tasks": {},
        "groups": {},
    }


def build_judge_for_run(config: Mapping[str, Any] | None, out: Path):
    """The run's judge (``judge=<name>``, configs/judge/), sharing one verdict cache across runs (``run`` and
    ``merge`` build it here)."""
    if not config or config.get("kind", "none") == "none":
        return None
    from harness.judges.base import JudgeCache
    from harness.judges.llm import build_judge

    try:
        return build_judge(config, cache=JudgeCache(out / "cache" / "judge.sqlite"))
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"judge {config.get('name', '')!r} cannot be built from its config: {e}") from e


def evaluate_from_config(cfg: Any) -> RunSummary:
    """``run``; under ``torchrun`` each process joins the run as one rank (one line and exit status 1 when
    another rank fails)."""
    c = _plain(cfg)

    def run(world: World | None) -> RunSummary:
        return evaluate(
            c["task"], c["model"], data=c["data"], data_dir=c.get("data_dir"), limit=c.get("limit"),
            batch_size=int(c.get("batch_size") or 1), seed=int(c.get("seed") or 0), shard=c.get("shard"),
            stage=c.get("stage", "all"), cache=bool(c.get("cache", True)), progress=bool(c.get("progress", True)),
            output_dir=c.get("output_dir", "results"), judge=c.get("judge"), world=world,
            scoring_timeout_s=c.get("scoring_timeout_s", DEFAULT_SCORING_SECONDS),
            num_workers=int(c.get("num_workers", 2)), prefetch_depth=int(c.get("prefetch_depth") or 2),
        )

    world = launched_world()
    if world is None:
        summary = run(None)
    else:
        try:
            with joined(world, float(c.get("dist_timeout_s") or DEFAULT_TIMEOUT_S)):
                summary = run(world)
        except RankFailure as e:
            say(str(e))
            raise SystemExit(RANK_FAILED) from None
        if not world.is_main:
            return summary
    print_summary(summary)
    return summary


def print_summary(summary: RunSummary, stream: Any = None) -> None:
    stream = stream or sys.stdout
    res = summary.results
    print(f"\nrun {res['run_id']}  model={res['model']['name']}  data={res['data']}", file=stream)
    print(f"{'task':28} {'metric':18} {'value':>10} {'stderr':>8} {'n':>5} {'errors':>6} {'paper':>8}", file=stream)
    for name, rec in res["tasks"].items():
        if rec.get("fatal"):
            print(f"{name:28} FAILED: {rec['fatal']}", file=stream)
            continue
        for metric, mv in rec["metrics"].items():
            se = "" if mv["stderr"] is None or math.isnan(mv["stderr"]) else f"{mv['stderr']:.2f}"
            paper = rec["paper_score"] if metric == rec["primary_metric"] and rec["paper_score"] is not None else ""
            print(f"{name:28} {metric:18} {mv['value']:10.2f} {se:>8} {mv['n']:5d} {rec['n_errors']:6d} {paper:>8}",
                  file=stream)
        for err in rec["errors"][:5]:
            print(f"  ! {err['doc_id']}: {err['error']}", file=stream)
    print(f"results: {summary.run_dir / 'results.json'}", file=stream)


# --------------------------------------------------------------------------------------------------


def score_from_config(cfg: Any) -> RunSummary:
    """``score task=<t> predictions=<file>``: the same results files as ``run``, with a ``predictions`` model."""
    c = _plain(cfg)
    started = dt.datetime.now(dt.timezone.utc)
    if not c.get("predictions"):
        raise ConfigError("score needs predictions=<file.jsonl>")
    pred_path = Path(c["predictions"])
    timeout_s = scoring_seconds(c.get("scoring_timeout_s", DEFAULT_SCORING_SECONDS))
    task_cfgs = expand(parse_entry(c["task"]))
    if len(task_cfgs) != 1:
        raise ConfigError("score takes a single task, not a group")
    task_cfg = task_cfgs[0]
    task = build_task(task_cfg, data=c["data"], data_dir=c.get("data_dir"), seed=int(c.get("seed") or 0))
    rows = []
    for number, row in iter_jsonl(pred_path, "predictions file"):
        if "doc_id" not in row:
            raise InputFileError(f"predictions file {pred_path} line {number}: no doc_id")
        rows.append(row)
    outcome = score_predictions(task, iter(rows), timeout_s)
    out = Path(c.get("output_dir", "results"))
    run_dir = out / "runs" / new_run_id(f"predictions-{pred_path.stem}", task_cfg.name)
    log = SampleLog(run_dir / "samples" / f"{task_cfg.name}.jsonl")
    for s in outcome.samples:
        log.write(s)
    log.close()
    results = new_results(
        run_dir,
        {"name": pred_path.stem, "adapter": "predictions", "fingerprint": stable_hash(pred_path.read_bytes().hex()),
         "args": {"predictions": str(pred_path)}},
        request=task_cfg.name, data=c["data"], stage="score", seed=int(c.get("seed") or 0),
        config=redact({"task": task_cfg.name, "predictions": str(pred_path), "data": c["data"]}),
    )
    results["tasks"][task_cfg.name] = task_record(outcome)
    results["groups"] = group_records(results["tasks"])
    summary = RunSummary(run_dir=run_dir, results=results, outcomes=[outcome])
    if outcome.fatal:
        _finish(summary, started, run_status.FAILED, f"{task_cfg.name}: {outcome.fatal}")
    else:
        _finish(summary, started, run_status.COMPLETE)
    print_summary(summary)
    return summary


def validate_from_config(cfg: Any) -> int:
    """Oracle on the sample: every metric must reach its best value, with no errors or parse failures."""
    c = _plain(cfg)
    summary = evaluate(c["task"], "oracle", data="sample", cache=False, progress=False,
                       output_dir=c.get("output_dir", "results"), rebuild_leaderboards=False,
                       judge=c.get("judge"))  # judged tasks (image outputs) score only through a judge
    problems = validation_problems(summary)
    for name, rec in summary.results["tasks"].items():
        status = "ok" if not problems.get(name) else "FAIL"
        print(f"{status:4} {name}")
        for p in problems.get(name, []):
            print(f"     - {p}")
    return 1 if any(problems.values()) else 0


def validation_problems(summary: RunSummary) -> dict[str, list[str]]:
    from harness.metrics.base import get_metric

    problems: dict[str, list[str]] = {}
    for outcome in summary.outcomes:
        name = outcome.task.name
        issues: list[str] = []
        if outcome.fatal:
            issues.append(f"task failed: {outcome.fatal}")
        if not outcome.samples:
            issues.append("no samples")
        for s in outcome.samples:
            if s.error or s.parse_error:
                issues.append(f"{s.doc_id}: {s.error or s.parse_error}")
        for metric_name, mv in outcome.metrics.items():
            best = get_metric(metric_name).best
            if best is None:
                continue
            target = best * outcome.task.config.scale
            if not (mv.value == target or (math.isinf(best) and math.isinf(mv.value))
                    or math.isclose(mv.value, target, rel_tol=1e-9, abs_tol=1e-9)):
                issues.append(f"{metric_name} = {mv.value} (best is {target})")
        problems[name] = issues
    return problems
