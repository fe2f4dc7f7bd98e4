"""Two lm-eval task configs written at test time (lm-eval needs absolute data paths): ``bridge_arc`` follows
lm-eval's arc_easy YAML (multiple_choice, acc / acc_norm) and ``bridge_qa`` its nq_open/triviaqa generation
layout (generate_until, exact_match after lm-eval's filters), each over five hand-written documents."""

from __future__ import annotations

from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent / "lmeval_data"


def write_tasks(folder: Path) -> Path:
    common = {"dataset_path": "json", "test_split": "test", "metadata": {"version": 1.0}}
    arc = {**common, "task": "bridge_arc", "dataset_kwargs": {"data_files": {"test": str(DATA / "arc_style.jsonl")}},
           "output_type": "multiple_choice", "doc_to_text": "Question: {{question}}\nAnswer:",
           "doc_to_choice": "{{choices.text}}", "doc_to_target": "{{choices.label.index(answerKey)}}",
           "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                           {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]}
    qa = {**common, "task": "bridge_qa", "dataset_kwargs": {"data_files": {"test": str(DATA / "qa_style.jsonl")}},
          "output_type": "generate_until", "doc_to_text": "Q: {{question}}?\nA:", "doc_to_target": "{{answer}}",
          "generation_kwargs": {"until": ["\n", ".", ","], "max_gen_toks": 8, "do_sample": False},
          "filter_list": [{"name": "remove_whitespace", "filter": [{"function": "remove_whitespace"},
                                                                   {"function": "take_first"}]}],
          "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True,
                           "ignore_case": True, "ignore_punctuation": True}]}
    folder.mkdir(parents=True, exist_ok=True)
    for config in (arc, qa):
        (folder / f"{config['task']}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder
