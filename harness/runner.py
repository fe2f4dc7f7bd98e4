"""The evaluation loop: plan -> shard -> cache lookup -> batch -> call -> record -> score -> aggregate.

One task at a time. Per-sample records are appended to ``samples/<task>.jsonl`` as samples finish, and
every model response goes to the cache first, so a crash loses nothing and a rerun only computes what is
missing. A failure on one sample (bad row, missing media, model exception, scoring bug) is recorded against
that sample and the run goes on.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from harness.api import DocumentError, HarnessError, ModelAdapter, ModelUnavailable, Request, Response
from harness.cache import ResponseCache, cache_key
from harness.errors import InputFileError
from harness.jsonio import iter_jsonl
from harness.likelihood_scoring import scoring_model
from harness.prefetch import Prefetcher, wants_prefetch
from harness.preflight import check_media
from harness.results import dumps_strict
from harness.routing_report import merge_counts
from harness.schema import parse_shard  # noqa: F401  (re-exported: the one shard parser)
from harness.secrets import redact_text
from harness.task import MetricValue, Sample, Task
from harness.time_limit import DEFAULT_SCORING_SECONDS, TimeLimitExceeded, time_limit


@dataclass(frozen=True)
class RunSettings:
    limit: float | None = None
    batch_size: int = 1
    shard: tuple[int, int] | None = None  # (index, count)
    infer_only: bool = False
    progress: bool = True
    scoring_timeout_s: float | None = DEFAULT_SCORING_SECONDS  # per sample; None: no limit
    # (rank, world size) under data parallelism: this process evaluates selected documents with index % world ==
    # rank and leaves aggregation to the rank that gathers every part (harness.distributed)
    part: tuple[int, int] | None = None


@dataclass
class TaskOutcome:
    task: Task
    samples: list[Sample]
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    breakdown: dict[str, dict[str, float]] = field(default_factory=dict)
    routing: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    model_seconds: float = 0.0
    model_calls: int = 0
    fatal: str | None = None  # the task could not run at all (e.g. its data is absent)
    n_dataset: int | None = None  # documents in the task's dataset, before shard and limit
    # each sample's place in the report: (0, row) for rows that failed before inference, then (1, row)
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def n_errors(self) -> int:
        return sum(s.error is not None for s in self.samples)


def select(docs: list[Any], settings: RunSettings) -> list[Any]:
    """Shard first (so shards partition the whole set), then limit: first N, or a fraction of the shard."""
    if settings.shard:
        i, n = settings.shard
        docs = docs[i::n]
    if settings.limit is not None:
        limit = settings.limit
        count = math.ceil(len(docs) * limit) if 0 < limit < 1 else int(limit)
        docs = docs[:count]
    return docs


class SampleLog:
    """Append-only per-task JSONL of finished samples (one line each, flushed as written)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "a", encoding="utf-8")

    def write(self, sample: Sample) -> None:
        row = sample.to_dict()
        for holder in (row, row["response"] or {}):  # an exception's message may quote a URL's credentials
            holder["error"] = holder.get("error") and redact_text(holder["error"])
        self._f.write(dumps_strict(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_sample_log(path: Path) -> dict[str, dict[str, Any]]:
    """doc_id -> the last record of that document in a run's sample log (a re-scored sample is logged again, so
    the last record is final); a malformed line is an InputFileError naming the file and line."""
    records: dict[str, dict[str, Any]] = {}
    for number, record in iter_jsonl(path, "sample log"):
        if "doc_id" not in record:
            raise InputFileError(f"sample log {path} line {number}: no doc_id")
        records[str(record["doc_id"])] = record
    return records


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=not enabled, dynamic_ncols=True, leave=False)


def _call_model(model: ModelAdapter, batch: Sequence[Request]) -> list[Response]:
    """Call the model on a batch; if the batch fails, isolate the failure by retrying one request at a time."""
    try:
        responses = list(model.generate(batch))
        if len(responses) != len(batch):
            raise RuntimeError(f"model returned {len(responses)} responses for {len(batch)} requests")
        return responses
    except ModelUnavailable:  # retrying one by one cannot help: the run stops
        raise
    except Exception:
        if len(batch) == 1:
            return [Response(error=_describe_exception(batch[0]))]
    out = []
    for req in batch:
        try:
            (resp,) = model.generate([req])
        except Exception:
            resp = Response(error=_describe_exception(req))
        out.append(resp)
    return out


def _describe_exception(req: Request) -> str:
    import sys

    exc = sys.exc_info()[1]
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc and exc.__traceback__ else None
    loc = f" at {Path(where.filename).name}:{where.lineno}" if where else ""
    return f"model failed on {req.task}/{req.doc_id}: {type(exc).__name__}: {exc}{loc}"


def evaluate_task(
    task: Task,
    model: ModelAdapter,
    settings: RunSettings,
    cache: ResponseCache | None,
    sample_log: SampleLog | None = None,
    prefetcher: Prefetcher | None = None,
) -> TaskOutcome:
    started = time.perf_counter()
    outcome = TaskOutcome(task=task, samples=[])
    model = scoring_model(model, task.config)
    try:
        docs = list(task.docs())
        outcome.n_dataset = len(docs)
    except Exception as e:  # the task's data cannot be read at all
        outcome.fatal = f"{type(e).__name__}: {e}"
        outcome.seconds = time.perf_counter() - started
        return outcome
    if not docs:
        outcome.fatal = f"no documents in {task.data_source()}"
        outcome.seconds = time.perf_counter() - started
        return outcome
    rows = select(docs, settings)
    judge_before = _judge_tally(task)  # the run's judge counts across tasks: this task's verdicts start here

    def record(sample: Sample) -> None:
        outcome.samples.append(sample)
        if sample_log:
            sample_log.write(sample)

    # ---- plan: one request per good document
    plan: list[tuple[dict, Request, str]] = []
    task_hash = task.config.hash()  # once: hashing the config costs ~1 ms, as much as serving a request
    for index, row in enumerate(rows):
        if settings.part and index % settings.part[1] != settings.part[0]:
            continue  # another rank's document
        if isinstance(row, DocumentError):
            outcome.positions[f"row-{index}"] = (0, index)
            record(Sample(doc_id=f"row-{index}", error=str(row)))
            continue
        doc_id = f"row-{index}"
        try:
            doc_id = task.doc_id(row)
            request = task.build_request(row)
            check_media(request)
        except HarnessError as e:
            outcome.positions[doc_id] = (0, index)
            record(Sample(doc_id=doc_id, error=f"{type(e).__name__} in sample {doc_id}: {e}"))
            continue
        except (KeyError, TypeError, ValueError, IndexError) as e:  # a row missing or mistyping a field
            outcome.positions[doc_id] = (0, index)
            record(Sample(doc_id=doc_id, error=f"malformed row {doc_id} in {task.data_source()}: "
                                               f"{type(e).__name__}: {e}"))
            continue
        outcome.positions[request.doc_id] = (1, index)
        key = cache_key(model.fingerprint(), task_hash, request.hash())
        plan.append((row, request, key))

    # ---- cache lookup
    cached = cache.get_many(k for _, r, k in plan if not r.generation.do_sample) if cache else {}
    todo = [item for item in plan if item[2] not in cached]
    bar = _progress(len(plan), task.name, settings.progress)

    def finish(row: dict, request: Request, key: str, response: Response, from_cache: bool) -> None:
        if cache and not from_cache and response.error is None and not request.generation.do_sample:
            response = cache.put(key, model.name, task.name, request.hash(), response)
        if settings.infer_only:
            sample = Sample(doc_id=request.doc_id, request_hash=request.hash(), response=response, error=response.error)
        else:
            sample = score_sample(task, row, response, request.doc_id, settings.scoring_timeout_s, request.hash())
        sample.cached = from_cache
        record(sample)
        if response.stats.get("routing"):
            merge_counts(outcome.routing, response.stats["routing"])
        bar.update(1)

    for row, request, key in plan:
        if key in cached:
            finish(row, request, key, cached[key], True)

    # ---- inference on the misses, in deterministic order (media of the next batches decoded meanwhile);
    # an adapter that runs requests concurrently (model=openai) asks for batches of at least its own size
    size = max(1, settings.batch_size, int(getattr(model, "preferred_batch_size", 1)))
    batches: Iterable[Sequence[tuple[dict, Request, str]]] = [
        todo[start : start + size] for start in range(0, len(todo), size)]
    if prefetcher is not None and wants_prefetch(model):
        batches = prefetcher.ahead(batches, lambda batch: [r for _, r, _ in batch])  # type: ignore[assignment]
    for batch in batches:
        t0 = time.perf_counter()
        try:
            responses = _call_model(model, [r for _, r, _ in batch])
        except ModelUnavailable as stop:  # keep (and cache) what did arrive, then stop the run
            for (row, request, key), response in zip(batch, stop.responses):
                if response is not None:
                    finish(row, request, key, response, False)
            bar.close()
            if cache:
                cache.flush()
            raise
        outcome.model_seconds += time.perf_counter() - t0
        outcome.model_calls += 1
        for (row, request, key), response in zip(batch, responses):
            finish(row, request, key, response, False)
    bar.close()
    if cache:
        cache.flush()

    # ---- aggregate (a part's samples are aggregated with the other parts by the rank that gathers them)
    outcome.samples.sort(key=lambda s: outcome.positions.get(s.doc_id, (0, -1)))
    if not settings.infer_only and settings.part is None:
        aggregate_outcome(outcome, sample_log)
    if settings.part is None:
        outcome.fatal = outcome.fatal or nothing_usable(outcome, judge_before)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _judge_stats(task: Task) -> Any:
    """The counters of the task's judge, or None without a judge that counts its verdicts."""
    stats = getattr(getattr(task, "judge", None), "stats", None)
    return stats if hasattr(stats, "verdicts") else None


def _judge_tally(task: Task) -> tuple[int, int] | None:
    """(verdicts obtained, verdicts failed) so far by the task's judge."""
    stats = _judge_stats(task)
    return None if stats is None else (stats.verdicts + stats.cached, stats.failures)


def nothing_usable(outcome: TaskOutcome, judge_before: tuple[int, int] | None) -> str | None:
    """Why a task that ran has no result worth reporting: every sample failed, or its judge never answered."""
    if outcome.samples and all(s.error is not None for s in outcome.samples):
        return f"every sample failed ({len(outcome.samples)}); the first: {outcome.samples[0].error}"
    after = _judge_tally(outcome.task)
    if judge_before is not None and after is not None:
        verdicts, failures = after[0] - judge_before[0], after[1] - judge_before[1]
        if failures and not verdicts:
            return (f"the judge failed on every call ({failures} verdicts); "
                    f"last error: {_judge_stats(outcome.task).last_error}")
    return None


def score_sample(task: Task, row: dict[str, Any], response: Response, doc_id: str, timeout_s: float | None,
                 request_hash: str = "") -> Sample:
    """``task.process`` within the per-sample time budget; a failure or a timeout is that sample's error."""
    try:
        with time_limit(timeout_s, f"scoring sample {doc_id}"):
            return task.process_response(row, response, request_hash=request_hash)
    except (Exception, TimeLimitExceeded) as e:
        return Sample(doc_id=doc_id, response=response,
                      error=f"scoring failed for sample {doc_id}: {type(e).__name__}: {e}")


def aggregate_outcome(outcome: TaskOutcome, sample_log: SampleLog | None = None) -> None:
    """Aggregate; a failure here is fatal for the task's scores but keeps every sample already recorded.
    Samples that :meth:`Task.finalize` scores are logged again, so the log's last record of each is final."""
    try:
        for sample in outcome.task.finalize(outcome.samples):
            if sample_log:
                sample_log.write(sample)
        outcome.metrics = outcome.task.aggregate(outcome.samples)
        outcome.breakdown = outcome.task.breakdown(outcome.samples)
    except Exception as e:
        outcome.fatal = f"aggregation failed: {type(e).__name__}: {e} (samples are kept in the sample log)"


def score_predictions(task: Task, predictions: Iterator[dict[str, Any]],
                      scoring_timeout_s: float | None = DEFAULT_SCORING_SECONDS) -> TaskOutcome:
    """Score predictions made elsewhere: rows of ``{doc_id, prediction}`` (or a run's sample records)."""
    started = time.perf_counter()
    outcome = TaskOutcome(task=task, samples=[])
    by_id: dict[str, Response] = {}
    for row in predictions:
        if "response" in row and isinstance(row["response"], dict):
            by_id[str(row["doc_id"])] = Response.from_dict(row["response"])
        else:
            pred = row.get("prediction")
            kind = task.config.output
            by_id[str(row["doc_id"])] = Response(
                text=pred if kind == "text" else "",
                audio=pred if kind == "audio" else None,
                image=pred if kind == "image" else None,
            )
    try:
        docs = list(task.docs())
    except Exception as e:  # the task's data cannot be read at all
        docs, outcome.fatal = [], f"{type(e).__name__}: {e}"
    outcome.n_dataset = len(docs)
    for index, row in enumerate(docs):
        if isinstance(row, DocumentError):
            outcome.samples.append(Sample(doc_id=f"row-{index}", error=str(row)))
            continue
        doc_id = task.doc_id(row)
        response = by_id.get(doc_id, Response(error=f"no prediction for sample {doc_id}"))
        outcome.samples.append(score_sample(task, row, response, doc_id, scoring_timeout_s))
    if docs:
        aggregate_outcome(outcome)
    outcome.fatal = outcome.fatal or nothing_usable(outcome, None)
    outcome.seconds = time.perf_counter() - started
    return outcome
