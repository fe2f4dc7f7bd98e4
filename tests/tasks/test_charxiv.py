"""CharXiv descriptive and reasoning as lmms-eval 0.5.x ran them: the question each figure is asked (split
position % 4 + 1), the prompts, the grading queries (five answers of one template per call, made when the run
aggregates, only for the calls whose scores survive), the JSON replies, -1 for failed gradings averaged in,
no scores without a judge, the judge cache, and the oracle end to end through a fake judge endpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.api import Response
from harness.judges import charxiv
from harness.judges.base import JudgeCache
from harness.judges.llm import build_judge
from harness.metrics.base import get_metric
from harness.task import Sample
from tests.judges.fake_endpoint import FakeServer, user_text
from tests.tasks.helpers import load_task, oracle_response, sample_docs, validate_with_oracle

TRIPLET = re.compile(r"T(\d+):\nResponse \d+: (.*?)\nGround Truth \d+: (.*?)\n\n", re.S)


def grade_descriptive(prompt: str) -> str:
    """A fake grader: 1 where the response equals the gold, as the JSON object the prompt asks for."""
    reply = {}
    for i, response, gold in TRIPLET.findall(prompt.split("### Example End ###")[-1]):
        reply[f"extract_answer_T{i}"] = response
        reply[f"score_T{i}"] = int(response == gold)
    return json.dumps(reply)


def grade_reasoning(prompt: str) -> str:
    turn = prompt.split("### Your Turn ###")[-1]
    gold = re.search(r"\* Ground Truth: (.*)\n", turn)[1]
    response = re.search(r"\* Response: (.*)\n", turn)[1]
    return json.dumps({"extracted_answer": response, "score": int(response == gold)})


def judge_for(server: FakeServer, tmp_path: Path, retries: int = 0):
    return build_judge({"kind": "openai", "base_url": server.url, "model": "fake-gpt", "prompt": "charxiv_reasoning",
                        "policy": {"retries": retries, "backoff_s": 0}}, cache=JudgeCache(tmp_path / "judge.sqlite"))


@pytest.fixture(scope="module")
def desc():
    return load_task("charxiv_descriptive")


@pytest.fixture(scope="module")
def reas():
    return load_task("charxiv_reasoning")


# ---- prompts


def test_each_figure_is_asked_question_position_mod_4_plus_1(desc) -> None:
    docs = sample_docs(desc)
    assert [d["qid"] for d in docs] == [docs[i][f"descriptive_q{i % 4 + 1}"] for i in range(6)] == [2, 18, 10, 11, 2, 13]
    assert [desc.target(d) for d in docs] == ["Epoch", "1 by 2", "3", "Yes", "Depth (m)", "SGD, Adam"]


def test_descriptive_prompts_and_subplot_prefixes(desc) -> None:
    docs = sample_docs(desc)
    request = desc.build_request(docs[0])
    assert request.text() == (
        "For the current plot, what is the label of the x-axis?\n    * Your final answer should be the label of the "
        "x-axis that is explicitly written, including the case when x-axis is shared across multiple subplots. When "
        "the x-axis is present on both the top and bottom of the plot, answer the label of the x-axis at the bottom."
        "\n    * If the plot does not have an explicit x-axis label, answer 'Not Applicable'.\n    ")
    assert [Path(m.path).name for m in request.media()] == ["0.png"]
    assert desc.build_request(docs[1]).text() == (  # layout: no prefix although the row is a grid cell
        'What is the layout of the subplots?\n    * Your final answer should follow "n by m" format, where n is the '
        'number of rows and m is the number of columns.\n    * If the plot does not contain subplots, answer "1 by 1".')
    assert desc.build_request(docs[2]).text().startswith("For the left subplot, how many lines are there?\n")
    assert desc.build_request(docs[5]).text().startswith(
        "For the subplot at row 1 and column 1, what are the names of the labels in the legend?\n")
    assert desc.config.generation.max_new_tokens == 32768


def test_reasoning_prompts_by_source_type(reas) -> None:
    docs = sample_docs(reas)
    assert reas.build_request(docs[0]).text() == (
        "What is the loss at epoch 10?\n    * Your final answer must be a number with 2 decimal places.\n    ")
    assert reas.build_request(docs[4]).text() == (
        "By how many degrees does the temperature fall from 0 m to 200 m?\n    * Your final answer must be an exact "
        "integer.\n    ")
    assert reas.build_request(docs[3]).text() == (
        "What is the value of line A in 2020?\n    * Your final answer must be grounded to a number that is exlicitly "
        "written and relevant to the question in the chart, even if it's an approximate value.\n    * You are allowed "
        "to extract numbers within some text when needed.\n    ")
    assert reas.build_request(docs[1]).text().startswith(
        "Which quantity decreases over time, Speed or Load?\n    * If there are options in the question, your final")


# ---- grading queries and replies


def test_descriptive_grading_query_text() -> None:
    query = charxiv.descriptive_query(18, [("2 by 2", "2 by 2"), ("one row", "1 by 2")])
    assert query.startswith("\nYou will be given 2 pairs of ground truth answers and model responses")
    assert ("with keys [['extract_answer_T1', 'score_T1', 'extract_answer_T2', 'score_T2']] where the value for any "
            "`extract_answer` is your extracted answer and `score` is an interge in [0, 1] based on the following "
            "rules:\n\n\nOverarching Question: What is the layout of the subplots?\n\nRubric:\n") in query
    assert query.endswith("### Example End ###\nT1:\nResponse 1: 2 by 2\nGround Truth 1: 2 by 2\n\n"
                          "T2:\nResponse 2: one row\nGround Truth 2: 1 by 2\n\n")
    # the reference's non-raw strings: "\a" and "\b" are control characters, "\g" two characters
    assert "\x07lpha, \x08eta, \\gamma^t_v" in charxiv.descriptive_query(13, [("a", "b")])
    assert [charxiv.RUBRIC_OF_TEMPLATE[q] for q in (1, 7, 9, 11, 13, 16, 18, 19)] == [
        "title", "ocr", "quant", "bool", "enum", "trend", "layout", "quant"]


def test_reasoning_grading_query_text() -> None:
    query = charxiv.reasoning_query(3, "What is A?", "80", "It is 80.")
    assert query.startswith("\nYou will be given a question, an ground truth answer and a model response.")
    assert "keys [extract_answer, score]" in query and "exactly equal in values" in query
    assert query.endswith("### Your Turn ###\n    * Question: What is A?\n    * Ground Truth: 80\n"
                          "    * Response: It is 80.\n\n    ")


@pytest.mark.parametrize("raw, n, expected", [
    ('{"extract_answer_T1": "a", "score_T1": 1, "extract_answer_T2": 3, "score_T2": 0}', 2, [1.0, 0.0]),
    ('```json\n{"extract_answer_T1": "a", "score_T1": 0}\n```', 1, [0.0]),
    ('{"extract_answer_T1": "a", "score_T1": true}', 1, [1.0]),  # True in [0, 1], as the reference's check
    ('{"extract_answer_T1": "a", "score_T1": 1}', 2, None),  # T2 missing
    ('{"extract_answer_T1": "a", "score_T1": 2}', 1, None),
    ('{"score_T1": 1}', 1, None),
    ("not json", 1, None),
])
def test_descriptive_reply_reading(raw: str, n: int, expected) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            charxiv.parse_descriptive(raw, n)
    else:
        assert [v["score"] for v in charxiv.parse_descriptive(raw, n)] == expected


@pytest.mark.parametrize("raw, expected", [
    ('{"extracted_answer": "80", "score": 1}', 1.0),
    ('{"extracted_answer": "80", "score": 0.5}', 0.5),  # taken as given
    ('{"extract_answer": "80", "score": 1}', None),  # the key the prompt asks for is not the one read
    ('{"extracted_answer": "80", "score": "1"}', None),
])
def test_reasoning_reply_reading(raw: str, expected) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            charxiv.parse_reasoning(raw)
    else:
        assert charxiv.parse_reasoning(raw)["score"] == expected


def test_judged_grade_keeps_failures_at_minus_one() -> None:
    metric = get_metric("judged_grade")
    items = [metric.item(g, "gold") for g in (1, 0, -1, 1)]
    assert items == [1.0, 0.0, -1.0, 1.0] and metric.aggregate(items) == 0.25


# ---- scoring


@pytest.mark.parametrize("name", ["charxiv_descriptive", "charxiv_reasoning"])
def test_without_a_judge_nothing_is_scored(name: str) -> None:
    task = load_task(name)
    samples = [task.process(d, oracle_response(task, d)) for d in sample_docs(task)]
    task.finalize(samples)
    assert all(s.error and "needs the LLM judge" in s.error and s.items == {} for s in samples)
    assert {s.fields["answer_source"] for s in samples} == {"needs_judge"}


def _pending(task, figures: int, template: int = 2) -> list[Sample]:
    out = []
    for i in range(figures):
        s = Sample(doc_id=f"f{i}", target=f"gold{i}", prediction=f"answer{i}")
        s.fields.update(answer_source="pending", qid=template)
        out.append(s)
    return out


def test_descriptive_batches_copy_major_and_last_copy_wins(tmp_path: Path) -> None:
    task = load_task("charxiv_descriptive")
    with FakeServer() as server:
        # 7 figures x 4 copies = 28 entries: calls of 5; the last copies are entries 21-27, in the calls
        # holding entries 20-24 and 25-27. Score T<i> = 1 only in the last call, to show which call counts.
        server.reply = lambda p: json.dumps({k: v for i in range(1, 6) for k, v in (
            (f"extract_answer_T{i}", "x"), (f"score_T{i}", int("Response 3:" in p and "T4:" not in p)))})
        task.judge = judge_for(server, tmp_path)
        samples = _pending(task, 7)
        task.finalize(samples)
        prompts = [user_text(b) for b in server.bodies]
    assert len(prompts) == 2
    assert [r for _, r, _ in TRIPLET.findall(prompts[0].split("### Example End ###")[-1])] == [
        "answer6", "answer0", "answer1", "answer2", "answer3"]  # copy 2's last figure, then copy 3's first four
    assert [r for _, r, _ in TRIPLET.findall(prompts[1].split("### Example End ###")[-1])] == [
        "answer4", "answer5", "answer6"]
    assert "Overarching Question: What is the label of the x-axis?" in prompts[0]
    assert [s.items["judged_grade"] for s in samples] == [0, 0, 0, 0, 1, 1, 1]
    assert all(s.fields["answer_source"] == "judge" for s in samples)


def test_descriptive_failed_grading_scores_minus_one_and_cache_makes_reruns_free(tmp_path: Path) -> None:
    task = load_task("charxiv_descriptive")
    with FakeServer() as server:
        server.reply = lambda p: '{"extract_answer_T1": "x"}'  # keys missing: malformed, retried, failed
        task.judge = judge_for(server, tmp_path, retries=1)
        samples = _pending(task, 2)
        task.finalize(samples)
        assert server.calls == 2  # one call (entries 5-7 hold both last copies), tried twice
        assert [s.items["judged_grade"] for s in samples] == [-1.0, -1.0]
        assert all(s.parse_error and s.fields["answer_source"] == "judge_failed" for s in samples)
        server.reply = grade_descriptive
        again = _pending(task, 2)
        task.finalize(again)
        task.finalize(rerun := _pending(task, 2))
        assert server.calls == 3  # the second pass asked once; the third was answered from the cache
    assert [s.items["judged_grade"] for s in again] == [s.items["judged_grade"] for s in rerun] == [0.0, 0.0]
    assert task.judge.stats.cached == 1


def test_descriptive_sample_calls_and_scores(tmp_path: Path) -> None:
    task = load_task("charxiv_descriptive")
    with FakeServer() as server:
        server.reply = grade_descriptive
        task.judge = judge_for(server, tmp_path)
        docs = sample_docs(task)
        samples = [task.process(d, Response(text=f"  {task.target(d)}\n" if i % 2 else "no idea"))
                   for i, d in enumerate(docs)]
        task.finalize(samples)
        # templates 2 (two figures: calls of entries 0-4 and 5-7, only the second made), 18, 10, 11, 13
        assert server.calls == 5
    assert [s.items["judged_grade"] for s in samples] == [0, 1, 0, 1, 0, 1]
    metrics = task.aggregate(samples)
    assert metrics["judged_grade"].value == pytest.approx(50.0) and metrics["judged_grade"].n == 6
    assert task.breakdown(samples)["qid"] == {"10": 0.0, "11": 100.0, "13": 100.0, "18": 100.0, "2": 0.0}


def test_reasoning_graded_one_answer_per_call(tmp_path: Path) -> None:
    task = load_task("charxiv_reasoning")
    with FakeServer() as server:
        server.reply = grade_reasoning
        task.judge = judge_for(server, tmp_path)
        docs = sample_docs(task)
        samples = [task.process(d, oracle_response(task, d) if i < 4 else Response(text="17")) for i, d in enumerate(docs)]
        assert server.calls == 6
        assert "* Ground Truth: 0.40\n    * Response: 0.40\n" in user_text(server.bodies[0])
        server.reply = lambda p: '{"extract_answer": "0.40", "score": 1}'
        failed = load_task("charxiv_reasoning")
        failed.judge = judge_for(server, tmp_path / "other")
        bad = failed.process(docs[0], Response(text="0.40"))
    assert [s.items["judged_grade"] for s in samples] == [1, 1, 1, 1, 0, 0]
    assert bad.items == {"judged_grade": -1.0} and bad.parse_error and bad.fields["answer_source"] == "judge_failed"
    assert task.aggregate([*samples, bad])["judged_grade"].value == pytest.approx(100 * 3 / 7)


@pytest.mark.parametrize("name, reply", [("charxiv_descriptive", grade_descriptive),
                                         ("charxiv_reasoning", grade_reasoning)])
def test_validate_with_oracle_through_a_judge_endpoint(name: str, reply, tmp_path: Path) -> None:
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    with FakeServer() as server:
        server.reply = reply
        judge = {"kind": "openai", "base_url": server.url, "model": "fake-gpt", "prompt": "charxiv_reasoning",
                 "policy": {"backoff_s": 0}}
        summary = evaluate(name, OracleModel(), data="sample", cache=False, output_dir=tmp_path, judge=judge,
                           rebuild_leaderboards=False)
        assert validation_problems(summary) == {name: []}
        calls = server.calls
        evaluate(name, OracleModel(), data="sample", cache=False, output_dir=tmp_path, judge=judge,
                 rebuild_leaderboards=False)
        assert server.calls == calls  # the rerun's gradings all come from the judge cache
    assert summary.results["tasks"][name]["judge"]["model"] == "fake-gpt"
    last = {}  # the sample log's last record of each document is its final score (graded at aggregation)
    for line in (summary.run_dir / "samples" / f"{name}.jsonl").read_text().splitlines():
        record = json.loads(line)
        last[record["doc_id"]] = record
    assert last and all(r["items"].get("judged_grade") == 1 for r in last.values())


@pytest.mark.parametrize("name", ["charxiv_descriptive", "charxiv_reasoning"])
def test_validate_without_a_judge_reports_the_missing_judge(name: str, tmp_path: Path) -> None:
    problems = validate_with_oracle(name, tmp_path)[name]
    assert problems and all("needs the LLM judge" in p for p in problems if "judged_grade" not in p)
