"""Per-sample overhead of the evaluation engine: ours against lm-evaluation-harness, same documents, same run.

Both harnesses evaluate a 1,000-document generation task with a no-op model (constant answer), with
scoring (exact match) and their default bookkeeping: for us the response cache, per-sample logs and
results files; for lm-eval ``simple_evaluate`` with ``log_samples=True``. Everything they do besides calling
the model is overhead, so wall time / documents is the per-sample overhead. lm-eval's one-off index of its
own task tree (``TaskManager``) is built before its timer starts; our catalogue needs no such step.

    python bench/harness_overhead.py [--docs 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def make_docs(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "docs.jsonl"
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i}", "question": f"What is {i} plus {i}?", "answer": str(2 * i)}) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- ours


class NoOpModel:
    name = "noop"

    def fingerprint(self) -> str:
        return "noop"

    def generate(self, requests):
        from harness.api import Response

        return [Response(text="0") for _ in requests]


def run_ours(docs: Path, out: Path) -> float:
    from harness.evaluate import evaluate

    task = {
        "name": "overhead", "group": "text", "doc_id": "id",
        "prompt": {"template": "Question: {question}\nAnswer:"},
        "extract": "strip", "metrics": ["exact_match"], "primary_metric": "exact_match",
    }
    t0 = time.perf_counter()
    evaluate(task, NoOpModel(), data="full", data_dir=str(docs.parent), output_dir=out, batch_size=32,
             rebuild_leaderboards=True)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- lm-eval


LM_EVAL_TASK = """task: overhead
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs: {{until: ["\\n"], max_gen_toks: 16, do_sample: false}}
filter_list:
  - name: strip
    filter: [{{function: remove_whitespace}}, {{function: take_first}}]
metric_list:
  - {{metric: exact_match, aggregation: mean, higher_is_better: true}}
metadata: {{version: 1.0}}
"""


def run_lm_eval(docs: Path, out: Path) -> float:
    import lm_eval
    import lm_eval.models  # noqa: F401  (fill the registry before registering ours)
    from lm_eval.api.model import LM
    from lm_eval.tasks import TaskManager

    class NoOpLM(LM):
        def loglikelihood(self, requests):
            return [(0.0, False) for _ in requests]

        def loglikelihood_rolling(self, requests):
            return [0.0 for _ in requests]

        def generate_until(self, requests):
            return ["0" for _ in requests]

    task_dir = out / "lm_eval_tasks"
    task_dir.mkdir(parents=True, exist_ok=True)
    (task_dir / "overhead.yaml").write_text(LM_EVAL_TASK.format(path=docs))
    manager = TaskManager(include_path=str(task_dir))  # indexing lm-eval's own task tree: start-up, not timed
    t0 = time.perf_counter()
    lm_eval.simple_evaluate(model=NoOpLM(), tasks=["overhead"], task_manager=manager, log_samples=True, batch_size=32)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        docs = make_docs(Path(tmp) / "data", args.docs)
        for r in range(args.repeats):  # interleaved, each with a fresh output folder (no cache hits)
            ours.append(run_ours(docs, Path(tmp) / f"ours{r}"))
            theirs.append(run_lm_eval(docs, Path(tmp) / f"lmeval{r}"))
    o, t = statistics.median(ours), statistics.median(theirs)
    print(f"documents: {args.docs}, repeats: {args.repeats} (median)")
    print(f"ours    : {o:.3f} s total, {1e3 * o / args.docs:.3f} ms/sample")
    print(f"lm-eval : {t:.3f} s total, {1e3 * t / args.docs:.3f} ms/sample")
    print(f"ratio ours/lm-eval: {o / t:.3f}  (goal <= 0.5)")


if __name__ == "__main__":
    main()
