"""``python -m harness merge runs=<dir>,<dir>,...``: one evaluation's shard runs, made anywhere, as one run.

Shard runs (``shard=i/n``: separate jobs, a SLURM array, other machines) each hold the responses for every n-th
document. Merging first checks that they are the shards of ONE evaluation: the same request, data, seed, model
fingerprint and task hashes (which must also match today's task configs, since scoring happens now), the same
shard count, every shard present exactly once, none limited and each finished. Anything else is refused with
a line naming the runs and what differs. It then rebuilds every task's documents, takes each document's response
from the shard that owns it, and scores the whole task once, exactly as one unsharded process would (document
order, finalize, aggregate): metrics and per-sample predictions equal the unsharded run's. Shard runs that only
inferred (``stage=infer``) are scored here.

The merged run is an ordinary complete run (``config.shard`` null) with a top-level ``merged_from`` list of
the shard run ids, so leaderboards count it as a whole run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from harness import run_status
from harness.api import DocumentError, HarnessError, Response
from harness.catalog import build_task, expand, load_entry
from harness.errors import InputFileError
from harness.evaluate import RunSummary, build_judge_for_run, new_results, print_summary
from harness.results import group_records, new_run_id, task_record, write_json, write_results, write_text
from harness.routing_report import merge_counts
from harness.runner import (SampleLog, TaskOutcome, aggregate_outcome, nothing_usable, parse_shard, read_sample_log,
                            score_sample)
from harness.task import Sample, Task
from harness.time_limit import DEFAULT_SCORING_SECONDS

FINISHED = ("complete", "inferred")
SAME_ACROSS_SHARDS = ("request", "data", "data_dir", "seed")  # keys whose values every shard must share


class MergeRefused(HarnessError):
    """The runs are not the shards of one evaluation (the message says which runs differ, and how)."""


@dataclass(frozen=True)
class ShardRun:
    run_dir: Path
    results: dict[str, Any]
    index: int
    count: int

    @property
    def run_id(self) -> str:
        return str(self.results.get("run_id") or self.run_dir.name)

    def setting(self, key: str) -> Any:
        return self.request_name if key == "request" else (self.results.get("config") or {}).get(key)

    @property
    def request_name(self) -> str:
        return str(self.results.get("request"))

    @property
    def fingerprint(self) -> str:
        return str((self.results.get("model") or {}).get("fingerprint"))

    def last_records(self, task: str) -> dict[str, dict[str, Any]]:
        """doc_id -> the last record of that document in this run's sample log (a later record supersedes)."""
        path = self.run_dir / "samples" / f"{task}.jsonl"
        if not path.is_file():
            raise MergeRefused(f"run {self.run_id} (shard {self.index}/{self.count}) has no sample log {path}")
        try:
            return read_sample_log(path)
        except InputFileError as e:
            raise MergeRefused(str(e)) from e


def load_shard_run(run_dir: str | Path) -> ShardRun:
    """A finished shard run, or :class:`MergeRefused` saying why the folder is not one."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json" if run_dir.is_dir() else run_dir
    run_dir = path.parent
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MergeRefused(f"{run_dir}: not a run directory (no results.json)") from None
    except ValueError as e:
        raise MergeRefused(f"{path}: unreadable results ({e})") from e
    if not isinstance(results, dict):
        raise MergeRefused(f"{path}: unreadable results (not a JSON object)")
    name = results.get("run_id") or run_dir.name
    if results.get("status") not in FINISHED:
        raise MergeRefused(f"run {name} did not finish (status {results.get('status')!r}); rerun that shard first")
    config = results.get("config") or {}
    try:
        shard = parse_shard(config.get("shard"))
    except ValueError as e:
        raise MergeRefused(f"run {name}: {e}") from e
    if shard is None:
        raise MergeRefused(f"run {name} is not a shard run (no shard=i/n); nothing to merge it with")
    if config.get("limit") is not None:
        raise MergeRefused(f"run {name} was limited (limit={config['limit']}): its documents are not a whole shard")
    return ShardRun(run_dir=run_dir, results=results, index=shard[0], count=shard[1])


def check_shards(shards: Sequence[ShardRun]) -> None:
    """Refuse unless ``shards`` are every shard, once each, of one evaluation."""
    if not shards:
        raise MergeRefused("no runs given")
    first = shards[0]
    for shard in shards[1:]:
        if shard.count != first.count:
            raise MergeRefused(f"shard counts differ: run {first.run_id} is {first.index}/{first.count}, "
                               f"run {shard.run_id} is {shard.index}/{shard.count}")
        if shard.fingerprint != first.fingerprint:
            raise MergeRefused(
                f"model differs: run {shard.run_id} has model {shard.results['model'].get('name')} "
                f"(fingerprint {shard.fingerprint}), run {first.run_id} has model {first.results['model'].get('name')} "
                f"(fingerprint {first.fingerprint})")
        for key in SAME_ACROSS_SHARDS:
            if shard.setting(key) != first.setting(key):
                raise MergeRefused(f"{key} differs: run {shard.run_id} has {shard.setting(key)!r}, "
                                   f"run {first.run_id} has {first.setting(key)!r}")
        mine, theirs = _task_hashes(shard), _task_hashes(first)
        for task in sorted(set(mine) | set(theirs)):
            if mine.get(task) != theirs.get(task):
                raise MergeRefused(f"task {task} differs: run {shard.run_id} has task hash {mine.get(task)}, "
                                   f"run {first.run_id} has {theirs.get(task)}")
    by_index: dict[int, ShardRun] = {}
    for shard in shards:
        if shard.index in by_index:
            raise MergeRefused(f"shard {shard.index}/{shard.count} given twice: runs {by_index[shard.index].run_id} "
                               f"and {shard.run_id}")
        by_index[shard.index] = shard
    missing = [f"{i}/{first.count}" for i in range(first.count) if i not in by_index]
    if missing:
        raise MergeRefused(f"shard {', '.join(missing)} missing (got {len(shards)} of {first.count} shards)")


def _task_hashes(shard: ShardRun) -> dict[str, str]:
    return {name: rec.get("task_hash") for name, rec in (shard.results.get("tasks") or {}).items()}


def merge_runs(run_dirs: Sequence[str | Path], output_dir: str | Path | None = None,
               judge: Mapping[str, Any] | None = None) -> Path:
    """Check, combine and score the shard runs; returns the merged run's directory. ``judge`` is a judge
    config as ``run`` takes it (``configs/judge/<name>.yaml``): tasks the shards ran with a judge are scored
    through it, and refused without one."""
    shards = sorted((load_shard_run(d) for d in run_dirs), key=lambda s: s.index)
    check_shards(shards)
    first = shards[0]
    judged = sorted(name for name, rec in (first.results.get("tasks") or {}).items() if rec.get("judge"))
    if judged and (not judge or judge.get("kind", "none") == "none"):
        by = (first.results["tasks"][judged[0]]["judge"] or {}).get("model")
        raise MergeRefused(f"task {', '.join(judged)} was scored by a judge ({by}) in the shards: pass "
                           f"judge=<judge config> (as the shards' run did) to score the merge the same way")
    out = Path(output_dir) if output_dir else first.run_dir.parent.parent
    judge_obj = build_judge_for_run(judge, out)
    started = dt.datetime.now(dt.timezone.utc)
    config = {**(first.results.get("config") or {}), "shard": None, "limit": None, "stage": "all"}
    run_dir = out / "runs" / new_run_id(first.results["model"].get("name", "model"), first.request_name)
    write_text(run_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    results = new_results(run_dir, first.results["model"], request=first.request_name, data=config.get("data"),
                          stage="all", seed=int(config.get("seed") or 0), config=config)
    results["merged_from"] = [s.run_id for s in shards]
    write_json(run_dir / "status.json", run_status.running(run_dir.name))
    try:
        task_cfgs = expand(load_entry(first.request_name))
    except KeyError as e:
        raise MergeRefused(f"request {first.request_name!r} of run {first.run_id} is not in this catalogue "
                           f"({e})") from e
    for task_cfg in task_cfgs:
        recorded = _task_hashes(first).get(task_cfg.name)
        if recorded != task_cfg.hash():
            raise MergeRefused(f"task {task_cfg.name} changed since the shards ran (task hash {recorded} then, "
                               f"{task_cfg.hash()} now): scoring now would not reproduce their evaluation")
        task = build_task(task_cfg, data=config.get("data", "sample"), data_dir=config.get("data_dir"),
                          seed=int(config.get("seed") or 0))
        if task_cfg.judge and judge_obj is not None:
            task.judge = judge_obj
        outcome = _score_task(task, shards, run_dir / "samples")
        results["tasks"][task_cfg.name] = task_record(outcome)
        results["groups"] = group_records(results["tasks"])
        write_results(run_dir, results)
    finished = dt.datetime.now(dt.timezone.utc)
    fatal = {name: rec["fatal"] for name, rec in results["tasks"].items() if rec.get("fatal")}
    status = run_status.FAILED if fatal else run_status.COMPLETE
    reason = "; ".join(f"{name}: {why}" for name, why in fatal.items()) or None
    results["status"] = status
    if reason:
        results["status_reason"] = reason
    results["timing"] = {"started": started.isoformat(), "finished": finished.isoformat(),
                         "seconds": round((finished - started).total_seconds(), 3)}
    write_results(run_dir, results)
    write_json(run_dir / "status.json", run_status.finished(run_dir.name, status, reason))
    from harness.leaderboard import build_leaderboards

    build_leaderboards(out)
    return run_dir


def _score_task(task: Task, shards: Sequence[ShardRun], samples_dir: Path) -> TaskOutcome:
    """Every document's response from the shard that evaluated it, scored once in document order."""
    outcome = TaskOutcome(task=task, samples=[])
    count = len(shards)
    records = [shard.last_records(task.name) for shard in shards]
    for shard in shards:  # the model's work was done in the shards
        timing = (shard.results["tasks"].get(task.name) or {}).get("timing") or {}
        outcome.seconds += float(timing.get("seconds") or 0.0)
        outcome.model_seconds += float(timing.get("model_seconds") or 0.0)
        outcome.model_calls += int(timing.get("model_calls") or 0)
    try:
        rows = list(task.docs())
    except Exception as e:
        raise MergeRefused(f"task {task.name}: its documents cannot be read here ({type(e).__name__}: {e})") from e
    outcome.n_dataset = len(rows)
    for index, row in enumerate(rows):
        shard, known = shards[index % count], records[index % count]
        doc_id, shard_doc_id = _doc_ids(task, row, index, index // count)
        record = known.get(shard_doc_id)
        if record is None:
            raise MergeRefused(f"run {shard.run_id} (shard {shard.index}/{count}) has no record of document "
                               f"{doc_id} of task {task.name}: the shard and the data here differ")
        outcome.samples.append(_rescored(task, row, doc_id, record))
        outcome.positions[doc_id] = (1 if record.get("response") else 0, index)
        response = outcome.samples[-1].response
        if response is not None and response.stats.get("routing"):
            merge_counts(outcome.routing, response.stats["routing"])
    outcome.samples.sort(key=lambda s: outcome.positions[s.doc_id])
    log = SampleLog(samples_dir / f"{task.name}.jsonl")
    try:
        for sample in outcome.samples:
            log.write(sample)
        aggregate_outcome(outcome, log)
    finally:
        log.close()
    outcome.fatal = outcome.fatal or nothing_usable(outcome, None)
    return outcome


def _doc_ids(task: Task, row: Any, index: int, shard_index: int) -> tuple[str, str]:
    """A document's id in the merged run and in its shard run: a row without a readable id is named by its
    position (``row-<i>``), which differs between the two."""
    if not isinstance(row, DocumentError):
        try:
            doc_id = task.doc_id(row)
            return doc_id, doc_id
        except (KeyError, TypeError, ValueError, IndexError):
            pass
    return f"row-{index}", f"row-{shard_index}"


def _rescored(task: Task, row: Any, doc_id: str, record: Mapping[str, Any]) -> Sample:
    """The sample scored from the shard's response; a document that failed before inference keeps its error."""
    if not record.get("response") or isinstance(row, DocumentError):
        return Sample(doc_id=doc_id, error=record.get("error") or str(row), cached=bool(record.get("cached")))
    response = Response.from_dict(record["response"])
    sample = score_sample(task, row, response, doc_id, DEFAULT_SCORING_SECONDS, str(record.get("request_hash") or ""))
    sample.cached = bool(record.get("cached"))
    return sample


def judge_config(args: Mapping[str, str]) -> dict[str, Any] | None:
    """The judge config of ``judge=<name> [judge.<key>=<value> ...]`` (values read as YAML, as Hydra does)."""
    from harness.catalog import CONFIG_DIR
    from harness.errors import ConfigError
    from harness.schema import check_group_choice

    name = args.get("judge")
    overrides = {k.removeprefix("judge."): yaml.safe_load(v) for k, v in args.items() if k.startswith("judge.")}
    if not name:
        if overrides:
            raise ConfigError(f"judge.{next(iter(overrides))} given without judge=<judge config>")
        return None
    check_group_choice("judge", name)
    path = CONFIG_DIR / "judge" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown judge {name!r} (no {path})")
    return {**(yaml.safe_load(path.read_text()) or {}), **overrides}


def merge_command(args: Mapping[str, str]) -> int:
    """``merge runs=<dir>,<dir>,... [output_dir=DIR] [judge=<config> judge.<key>=...]``: exit status 2 (and one
    line) when the runs are refused."""
    import sys

    runs = [r for r in args.get("runs", "").split(",") if r]
    if not runs:
        print("merge needs runs=<run dir>,<run dir>,...", file=sys.stderr)
        return 2
    try:
        run_dir = merge_runs(runs, args.get("output_dir"), judge_config(args))
    except MergeRefused as e:
        print(f"merge refused: {e}", file=sys.stderr)
        return 2
    results = json.loads((run_dir / "results.json").read_text())
    print_summary(RunSummary(run_dir=run_dir, results=results))
    return 1 if any(t.get("fatal") for t in results["tasks"].values()) else 0
