"""Task plugin ``lmeval``: any lm-eval task run by our runner, with any of our adapters.

``harness run task=lmeval task.name=<lm-eval task> [task.options.include_path=<folder of task YAMLs>]
[task.options.include_defaults=false]`` (the last: only the folder's tasks, skipping lm-eval's index).
lm-eval builds each document's prompt (its few-shot context) and, after the model answered, applies the
task's filters and ``process_results``; our runner does the rest (cache, resume, results schema,
leaderboards). ``generate_until`` tasks are generated; ``multiple_choice`` tasks are scored by likelihood
(the adapter needs ``loglikelihood``), each option being lm-eval's continuation (delimiter included), and
record lm-eval's metrics (acc, acc_norm). Metrics are named ``<metric>,<filter>`` as in lm-eval's results.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from harness.api import DocumentError, Request, Response
from harness.lmeval.requests import choice_request, generation_request
from harness.task import MetricValue, Sample, Task, TaskConfig

DOC_ID = "lm_eval_doc_id"
SUPPORTED = ("generate_until", "multiple_choice")


def load_lm_eval_task(name: str, include_path: str | None, include_defaults: bool = True) -> Any:
    """lm-eval's task object for ``name`` (a single task; groups are not bridged). Indexing lm-eval's own
    ~15k task files takes seconds; ``include_defaults=False`` looks in ``include_path`` only."""
    import lm_eval.tasks

    if name == "lmeval":
        raise DocumentError("task=lmeval needs task.name=<lm-eval task>, e.g. task.name=arc_easy")
    manager = lm_eval.tasks.TaskManager(include_path=include_path, include_defaults=include_defaults)
    if name not in manager.all_tasks:
        raise DocumentError(f"lm-eval knows no task {name!r}" + (f" (include_path {include_path})" if include_path else
                            "; pass task.options.include_path=<folder of task YAMLs> for a local one"))
    loaded = manager.load_task_or_group([name])
    task = loaded.get(name)
    if task is None or not hasattr(task, "OUTPUT_TYPE"):
        raise DocumentError(f"lm-eval task {name!r} is a group; run its member tasks one by one")
    if task.OUTPUT_TYPE not in SUPPORTED:
        raise DocumentError(f"lm-eval task {name!r} has output_type {task.OUTPUT_TYPE}; the bridge runs {SUPPORTED}")
    return task


class LMEvalTask(Task):
    def __init__(self, config: TaskConfig, data: str = "sample", data_dir: str | None = None, seed: int = 0):
        self.lm_task = load_lm_eval_task(config.name, config.options.get("include_path"),
                                         bool(config.options.get("include_defaults", True)))
        likelihood = self.lm_task.OUTPUT_TYPE == "multiple_choice"
        metrics = tuple(self._metric_keys())
        config = dataclasses.replace(
            config, doc_id=DOC_ID, metrics=metrics, primary_metric=metrics[0],
            scoring="likelihood" if likelihood else "generate", scale=1.0,
            options={**config.options, "target_delimiter": ""},  # lm-eval's continuations carry their delimiter
        )
        super().__init__(config, data=data, data_dir=data_dir, seed=seed)

    def _filter_names(self) -> list[str]:
        if self.lm_task.OUTPUT_TYPE == "multiple_choice":
            return ["none"]
        return [f.name for f in getattr(self.lm_task, "_filters", ())] or ["none"]

    def _metric_keys(self) -> Iterator[str]:
        for name in self.lm_task.aggregation():
            for filter_name in self._filter_names():
                yield f"{name},{filter_name}"

    def data_source(self) -> str:
        return f"lm-eval:{self.config.name}"

    def docs(self) -> Iterator[dict[str, Any]]:
        for index, doc in enumerate(self.lm_task.eval_docs):
            yield {DOC_ID: index, "doc": doc}

    def build_request(self, doc: Mapping[str, Any]) -> Request:
        lm = self.lm_task
        inner = doc["doc"]
        num_fewshot = lm.config.num_fewshot or 0
        context = lm.fewshot_context(inner, num_fewshot, gen_prefix=lm.doc_to_prefix(inner))
        instances = lm.construct_requests(doc=inner, ctx=context, metadata=(self.name, doc[DOC_ID], 1))
        if lm.OUTPUT_TYPE == "multiple_choice":
            return choice_request(self.name, doc[DOC_ID], instances[0].args[0],
                                  tuple(inst.args[1] for inst in instances))
        return generation_request(self.name, doc[DOC_ID], *instances.args[:2])

    def target(self, doc: Mapping[str, Any]) -> Any:
        return self.lm_task.doc_to_target(doc["doc"])

    def process(self, doc: Mapping[str, Any], response: Response, request_hash: str = "") -> Sample:
        sample = Sample(doc_id=self.doc_id(doc), request_hash=request_hash, response=response,
                        target=_plain(self.target(doc)))
        if response.error:
            sample.error = response.error
            return sample
        lm, inner = self.lm_task, doc["doc"]
        if lm.OUTPUT_TYPE == "multiple_choice":
            results = list(zip(response.stats["loglikelihoods"], response.stats["greedy"]))
            sample.prediction = response.text
            sample.items = {f"{k},none": v for k, v in lm.process_results(inner, results).items()}
            return sample
        from lm_eval.api.instance import Instance

        instance = Instance("generate_until", inner, ("", {}), 0, (self.name, doc[DOC_ID], 1))
        instance.resps = [response.text]
        for ensemble in getattr(lm, "_filters", ()):
            ensemble.apply([instance])
        filtered = instance.filtered_resps or {"none": response.text}
        sample.prediction = next(iter(filtered.values()))
        for filter_name, answer in filtered.items():
            for metric, value in lm.process_results(inner, [answer]).items():
                sample.items[f"{metric},{filter_name}"] = value
        return sample

    def aggregate(self, samples: Sequence[Sample]) -> dict[str, MetricValue]:
        """lm-eval's aggregation of each metric; the standard error of a mean over documents."""
        scored = [s for s in samples if s.error is None]
        aggregations, better = self.lm_task.aggregation(), self.lm_task.higher_is_better()
        out = {}
        for key in self.config.metrics:
            metric = key.split(",")[0]
            items = [s.items[key] for s in scored if key in s.items]
            value = float(aggregations[metric](items)) if items else math.nan
            stderr = None
            if len(items) > 1 and all(isinstance(v, (int, float)) for v in items):
                mean = sum(items) / len(items)
                stderr = math.sqrt(sum((v - mean) ** 2 for v in items) / (len(items) - 1) / len(items))
            out[key] = MetricValue(value, stderr, len(items), bool(better.get(metric, True)))
        return out

    def breakdown(self, samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
        return {}


def _plain(value: Any) -> Any:
    """A JSON-friendly target (lm-eval targets may be ints, lists or strings)."""
    return value if isinstance(value, (str, int, float, list)) or value is None else str(value)
