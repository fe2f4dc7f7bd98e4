"""From a resolved config to a finished run directory: the Python API behind ``run``, ``score`` and ``validate``.

``evaluate(task="videomme", model="random")`` does in Python what ``python -m harness run task=videomme
model=random`` does on the command line.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.api import ModelAdapter, stable_hash
from harness.cache import ResponseCache
from harness.catalog import build_task, expand, load_entry, parse_entry
from harness.distributed import (DEFAULT_TIMEOUT_S, RankFailure, World, evaluate_part, joined, launched_world,
                                 place_model, share_run_id)
from harness.prefetch import Prefetcher
from harness.results import SCHEMA_VERSION, environment, group_records, new_run_id, redact, task_record, write_json, write_text
from harness.runner import RunSettings, SampleLog, TaskOutcome, evaluate_task, parse_shard, score_predictions


@dataclass
class RunSummary:
    run_dir: Path
    results: dict[str, Any]
    outcomes: list[TaskOutcome] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """Non-zero only when a task could not run at all; per-sample errors are recorded, not fatal."""
        return 1 if any(t.get("fatal") for t in self.results["tasks"].values()) else 0


def _plain(cfg: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def _model_config(model: Any) -> dict[str, Any]:
    if isinstance(model, str):
        from harness.catalog import CONFIG_DIR

        path = CONFIG_DIR / "model" / f"{model}.yaml"
        if not path.is_file():
            raise KeyError(f"unknown model {model!r} (no {path})")
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
    world: World | None = None,
    num_workers: int = 2,
    prefetch_depth: int = 2,
) -> RunSummary:
    """Run ``task`` on ``model``; with a ``world`` (inside ``torchrun``, see :mod:`harness.distributed`) this
    process is one rank of a data-parallel run and only rank 0 writes the run's results. ``num_workers``
    processes decode the media of the next ``prefetch_depth`` batches while the model runs (0: no prefetching)."""
    from harness.models import build_model

    entry = load_entry(task) if isinstance(task, str) else parse_entry(task)
    if hasattr(model, "generate"):
        adapter: ModelAdapter = model  # type: ignore[assignment]
        model_cfg = {"name": adapter.name, "adapter": type(adapter).__name__, "args": {}}
    else:
        model_cfg = _model_config(model)  # type: ignore[arg-type]
        adapter = build_model(place_model(model_cfg, world) if world else model_cfg)
    settings = RunSettings(
        limit=limit, batch_size=batch_size, shard=parse_shard(shard), infer_only=stage == "infer", progress=progress
    )
    main = world is None or world.is_main
    out = Path(output_dir)
    run_id = new_run_id(adapter.name, entry.name)
    run_dir = out / "runs" / (share_run_id(world, run_id) if world else run_id)
    config = redact(
        {"task": entry.name, "model": model_cfg, "data": data, "data_dir": data_dir, "limit": limit,
         "batch_size": batch_size, "seed": seed, "shard": shard, "stage": stage, "cache": cache}
    )
    if main:
        write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    started = dt.datetime.now(dt.timezone.utc)
    results = new_results(
        run_dir,
        {"name": adapter.name, "adapter": model_cfg.get("adapter"), "fingerprint": adapter.fingerprint(),
         "args": redact(model_cfg.get("args") or {})},
        request=entry.name, data=data, stage=stage, seed=seed, config=config,
    )
    if world:
        results["distributed"] = {"world_size": world.size}
    if main:
        write_json(run_dir / "status.json", {"status": "running", "run_id": run_dir.name})
    summary = RunSummary(run_dir=run_dir, results=results)
    response_cache = ResponseCache(out / "cache") if cache else None
    judge_obj = _build_judge(judge, out)
    prefetcher = Prefetcher(num_workers, prefetch_depth) if num_workers > 0 else None
    try:
        for task_cfg in expand(entry):
            task_obj = build_task(task_cfg, data=data, data_dir=data_dir, seed=seed)
            if task_cfg.judge and judge_obj is not None:
                task_obj.judge = judge_obj
            if world:
                outcome = evaluate_part(task_obj, adapter, settings, response_cache, run_dir / "samples", world,
                                        prefetcher)
                if outcome is None:
                    continue  # rank 0 records it
            else:
                log = SampleLog(run_dir / "samples" / f"{task_cfg.name}.jsonl")
                try:
                    outcome = evaluate_task(task_obj, adapter, settings, response_cache, log, prefetcher)
                finally:
                    log.close()
            summary.outcomes.append(outcome)
            results["tasks"][task_cfg.name] = task_record(outcome)
            results["groups"] = group_records(results["tasks"])
            write_json(run_dir / "results.json", results)  # after every task: nothing computed is lost
    finally:
        if prefetcher:
            prefetcher.close()
        if response_cache:
            response_cache.close()
    if not main:
        return summary
    finished = dt.datetime.now(dt.timezone.utc)
    results["status"] = "inferred" if stage == "infer" else "complete"
    results["timing"] = {"started": started.isoformat(), "finished": finished.isoformat(),
                         "seconds": round((finished - started).total_seconds(), 3)}
    write_json(run_dir / "results.json", results)
    write_json(run_dir / "status.json", {"status": results["status"], "run_id": run_dir.name})
    if rebuild_leaderboards:
        from harness.leaderboard import build_leaderboards

        build_leaderboards(out)
    return summary


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


def _build_judge(config: Mapping[str, Any] | None, out: Path):
    """The run's judge (``judge=<name>``, configs/judge/), sharing one verdict cache across runs."""
    if not config or config.get("kind", "none") == "none":
        return None
    from harness.judges.base import JudgeCache
    from harness.judges.llm import build_judge

    return build_judge(config, cache=JudgeCache(out / "cache" / "judge.sqlite"))


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
            print(e, file=sys.stderr)
            raise SystemExit(1) from None
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
    if not c.get("predictions"):
        raise SystemExit("score needs predictions=<file.jsonl>")
    pred_path = Path(c["predictions"])
    task_cfgs = expand(parse_entry(c["task"]))
    if len(task_cfgs) != 1:
        raise SystemExit("score takes a single task, not a group")
    task_cfg = task_cfgs[0]
    task = build_task(task_cfg, data=c["data"], data_dir=c.get("data_dir"), seed=int(c.get("seed") or 0))
    with open(pred_path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    outcome = score_predictions(task, iter(rows))
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
    results["status"] = "complete"
    results["tasks"][task_cfg.name] = task_record(outcome)
    results["groups"] = group_records(results["tasks"])
    write_json(run_dir / "results.json", results)
    write_json(run_dir / "status.json", {"status": "complete", "run_id": run_dir.name})
    summary = RunSummary(run_dir=run_dir, results=results, outcomes=[outcome])
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
