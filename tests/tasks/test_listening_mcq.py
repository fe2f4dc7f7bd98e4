"""EHSL (short/long) and RACE-audio (middle/high): spoken passage + lettered question, option-letter rule,
subset selection (by field, else by clip duration), local data in the documented schema, clustering."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from harness.api import AudioPart, Response
from harness.catalog import build_task, load_entry
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

TASKS = {"ehsl_short": 90.00, "ehsl_long": 87.33, "race_audio_middle": 89.69, "race_audio_high": 87.19}


def test_prompt_snapshot_race_cloze_question() -> None:
    task = load_task("race_audio_middle")
    request = task.build_request(sample_docs(task)[0])
    assert request.doc_id == "middle1001.txt-0"
    assert request.text() == (
        "Listen to the article and answer the question: Tom gets up at _ every morning.\nA. five\nB. six\n"
        "C. seven\nD. eight\nAnswer with the option's letter from the given choices directly."
    )
    (audio,) = request.media()
    assert isinstance(audio, AudioPart) and audio.path.endswith("race_audio_middle/sample/audio/middle1001.m4a")
    assert request.choices == ("A", "B", "C", "D")


def test_ehsl_subsets_split_one_fixture() -> None:
    short, long = sample_docs(load_task("ehsl_short")), sample_docs(load_task("ehsl_long"))
    assert {d["subset"] for d in short} == {"short"} and {d["subset"] for d in long} == {"long"}
    assert len(short) == 2 and len(long) == 3
    assert load_task("ehsl_short").build_request(short[0]).text().startswith(
        "Listen to the audio and answer the question: Which bus goes to the city library?\nA. Number two\n")


def test_subset_by_duration_when_rows_lack_it(tmp_path: Path) -> None:
    """high_exam.json as a JSON list without `subset`: placed by clip length (threshold lowered to fit the
    few-second fixture clips: the long passage is the only one over 6 s)."""
    src = load_task("ehsl_short").media_root
    shutil.copytree(src / "audio", tmp_path / "audio")
    rows = [{k: v for k, v in json.loads(line).items() if k != "subset"}
            for line in (src / "docs.jsonl").read_text().splitlines()]
    (tmp_path / "high_exam.json").write_text(json.dumps(rows))
    got = {}
    for name in ("ehsl_short", "ehsl_long"):
        cfg = load_entry(name)
        cfg = replace(cfg, options={**cfg.options, "long_min_seconds": 6},
                      dataset=replace(cfg.dataset, media_dir=str(tmp_path)))
        task = build_task(cfg, data="full", data_dir=str(tmp_path))
        got[name] = sorted(task.doc_id(d) for d in task.docs())
    assert got == {"ehsl_short": ["ehsl_short_01-q1", "ehsl_short_02-q1"],
                   "ehsl_long": ["ehsl_long_01-q1", "ehsl_long_01-q2", "ehsl_long_01-q3"]}


@pytest.mark.parametrize("response, correct", [
    ("B", True), ("(B)", True), ("B. six", True), ("The answer is B.", True), ("six", True),  # unique option text
    ("A", False), ("I am not sure.", False),
])
def test_option_letter_extraction(response: str, correct: bool) -> None:
    task = load_task("race_audio_middle")
    doc = sample_docs(task)[0]  # gold B ("six")
    assert task.process(doc, Response(text=response)).items["accuracy"] == float(correct)


@pytest.mark.parametrize("name", TASKS)
def test_oracle_wrong_clusters_and_validate(name: str, tmp_path: Path) -> None:
    task = load_task(name)
    assert task.config.paper_score == TASKS[name] and task.config.group == "audio_speech"
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    wrong = answer_all(task, lambda doc: Response(text="D" if task.target(doc) != "D" else "A"))
    assert task.aggregate(right)["accuracy"].value == pytest.approx(100.0)
    assert task.aggregate(wrong)["accuracy"].value == pytest.approx(0.0)
    clusters = {s.cluster for s in right}
    assert len(clusters) == len({d["audio"] for d in sample_docs(task)})  # one cluster per passage clip
    assert validate_with_oracle(name, tmp_path) == {name: []}
