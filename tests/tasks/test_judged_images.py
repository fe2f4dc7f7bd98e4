"""GEdit-Bench EN (VIEScore tie) and WISE (WiScore): prompts, the language filter, the judge's prompts and
images, the scores and their aggregation (macro over task types; weighted categories), no judge = not scored,
and the oracle end to end through a fake judge endpoint on loopback."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from PIL import Image

from harness.api import Response
from harness.judges.base import Verdict
from tests.judges.fake_endpoint import FakeServer, user_images, user_text
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs


@pytest.fixture(scope="module")
def gedit():
    return load_task("gedit_bench_en")


@pytest.fixture(scope="module")
def wise():
    return load_task("wise")


class FakeJudge:
    """Answers each registered prompt with ``replies[prompt name]`` (a value, a callable of the fields, or an
    error string starting with '!')."""

    def __init__(self, replies):
        self.replies, self.calls = replies, []

    def ask(self, using=None, images=(), **fields):
        self.calls.append((using, list(images), fields))
        reply = self.replies[using]
        reply = reply(fields) if callable(reply) else reply
        if isinstance(reply, str) and reply.startswith("!"):
            return Verdict(error=reply[1:])
        return Verdict(reply)


def test_prompts_media_and_language_filter(gedit, wise) -> None:
    docs = sample_docs(gedit)
    assert [d["key"] for d in docs] == ["fx0001", "fx0002", "fx0003", "fx0004", "fx0005"]  # the cn row is out
    request = gedit.build_request(docs[0])
    assert request.text() == "Change the color of the ball to blue." and request.output == "image"
    assert [Path(m.path).name for m in request.media()] == ["fx0001.png"]
    assert "input_image/" in request.media()[0].path and gedit.config.generation.max_new_tokens == 512
    wdoc = sample_docs(wise)[0]
    wreq = wise.build_request(wdoc)
    assert wreq.text() == wdoc["Prompt"] and list(wreq.media()) == [] and wise.config.generation.max_new_tokens == 64


def test_without_a_judge_nothing_is_scored(gedit, wise) -> None:
    for task in (gedit, wise):
        samples = answer_all(task, lambda d: oracle_response(task, d))
        assert all(s.error and "needs the image judge" in s.error and s.items == {} for s in samples)
        assert {s.fields["judged_by"] for s in samples} == {"needs_judge"}


def test_gedit_asks_sc_with_both_images_and_pq_with_the_edit() -> None:
    task = load_task("gedit_bench_en")
    task.judge = FakeJudge({"viescore_tie_sc": [8, 6], "viescore_pq": [9, 4]})
    doc = sample_docs(task)[0]
    sample = task.process(doc, oracle_response(task, doc))
    (sc_using, sc_images, sc_fields), (pq_using, pq_images, pq_fields) = task.judge.calls
    assert (sc_using, sc_fields) == ("viescore_tie_sc", {"instruction": "Change the color of the ball to blue."})
    assert (pq_using, pq_fields) == ("viescore_pq", {})
    assert sc_images[1] == pq_images[0] and sc_images[0] != sc_images[1]  # [source, edited], then edited alone
    sizes = [Image.open(io.BytesIO(im.data)).size for im in sc_images]
    assert sizes == [(591, 443)] * 2 and sc_images[0].mime == "image/jpeg"  # 96x72 -> ~512*512, aspect kept
    assert sample.items["viescore_overall"] == {"group": ("color_alter",), "score": math.sqrt(6 * 4)}
    assert sample.items["viescore_semantics"]["score"] == 6 and sample.items["viescore_quality"]["score"] == 4


def test_gedit_source_resize_variant() -> None:
    base = load_task("gedit_bench_en")
    task = load_task("gedit_bench_en", options={**base.config.options,
                                                "judge_images": {"resize": "source", "format": "JPEG"}})
    task.judge = FakeJudge({"viescore_tie_sc": [8, 8], "viescore_pq": [8, 8]})
    doc = sample_docs(task)[0]
    task.process(doc, Response(image=str(Path(task.media_path(doc["input_image_raw"])))))  # a 128x96 "edit"
    sizes = [Image.open(io.BytesIO(im.data)).size for im in task.judge.calls[0][1]]
    assert sizes == [(96, 72), (96, 72)]  # the edit resized to the source as stored


def test_gedit_aggregation_is_a_mean_of_task_type_means(gedit) -> None:
    overall = {"fx0001": 4, "fx0002": 8, "fx0003": 10, "fx0004": 10, "fx0005": 10}  # SC = PQ = O
    task = load_task("gedit_bench_en")
    task.judge = FakeJudge({"viescore_tie_sc": [10, 10], "viescore_pq": [10, 10]})
    samples = []
    for doc in sample_docs(task):
        o = overall[doc["key"]]
        task.judge.replies = {"viescore_tie_sc": [o, 10], "viescore_pq": [10, o]}
        samples.append(task.process(doc, oracle_response(task, doc)))
    metrics = task.aggregate(samples)
    assert metrics["viescore_overall"].value == pytest.approx((6 + 10 + 10 + 10) / 4)  # color_alter: (4+8)/2
    assert metrics["viescore_overall_micro"].value == pytest.approx(42 / 5)
    assert metrics["viescore_semantics"].value == pytest.approx(9.0)
    breakdown = task.breakdown(samples)
    assert breakdown["task_type"]["color_alter"] == pytest.approx(6.0)
    assert breakdown["Intersection_exist"] == {"False": pytest.approx(9.0), "True": pytest.approx(8.0)}


def test_gedit_judge_failure_is_an_error_not_a_score() -> None:
    task = load_task("gedit_bench_en")
    task.judge = FakeJudge({"viescore_tie_sc": [9, 9], "viescore_pq": "!malformed judge output"})
    doc = sample_docs(task)[0]
    sample = task.process(doc, oracle_response(task, doc))
    assert sample.error and "PQ: malformed" in sample.error and sample.items == {}
    assert sample.fields["judged_by"] == "judge_failed"


def test_wise_wiscore_categories_and_weights(wise) -> None:
    task = load_task("wise")
    parts = {5: (2, 2, 2), 410: (1, 1, 1), 600: (0, 2, 2), 720: (2, 0, 0), 830: (1, 2, 0), 960: (0, 0, 0)}
    task.judge = FakeJudge({"wise_wiscore": None})
    samples = []
    for doc in sample_docs(task):
        c, r, a = parts[doc["prompt_id"]]
        task.judge.replies = {"wise_wiscore": {"consistency": c, "realism": r, "aesthetic_quality": a}}
        samples.append(task.process(doc, oracle_response(task, doc)))
    using, images, fields = task.judge.calls[0]
    doc0 = sample_docs(task)[0]
    assert using == "wise_wiscore" and fields == {"prompt": doc0["Prompt"], "explanation": doc0["Explanation"]}
    assert images[0].data == Path(oracle_response(task, doc0).image).read_bytes()  # the PNG as it is
    per = {pid: (0.7 * c + 0.2 * r + 0.1 * a) / 2 for pid, (c, r, a) in parts.items()}
    assert per[5] == pytest.approx(1.0) and per[410] == pytest.approx(0.5)
    expected = (0.4 * per[5] + 0.167 * per[410] + 0.133 * per[600] + 0.1 * per[720] + 0.1 * per[830]
                + 0.1 * per[960])
    assert task.aggregate(samples)["wiscore"].value == pytest.approx(expected)
    assert [s.fields["category"] for s in samples] == ["culture", "time", "space", "biology", "physics", "chemistry"]
    assert task.breakdown(samples)["category"]["space"] == pytest.approx(per[600])


def test_wise_partial_and_unreadable_replies_score_zero_as_the_reference() -> None:
    task = load_task("wise")
    doc = sample_docs(task)[0]
    task.judge = FakeJudge({"wise_wiscore": {"consistency": 2.0}})
    partial = task.process(doc, oracle_response(task, doc))
    assert partial.items["wiscore"]["score"] == pytest.approx(0.7) and "realism" in partial.parse_error
    task.judge = FakeJudge({"wise_wiscore": "!malformed judge output (no score): 'hmm'"})
    unreadable = task.process(doc, oracle_response(task, doc))
    assert unreadable.items["wiscore"]["score"] == 0.0 and unreadable.parse_error and not unreadable.error
    task.judge = FakeJudge({"wise_wiscore": "!RuntimeError: judge endpoint answered HTTP 500"})
    failed = task.process(doc, oracle_response(task, doc))
    assert failed.error and failed.items == {} and failed.fields["judged_by"] == "judge_failed"


def _judged_run(name: str, reply: str, tmp_path: Path):
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    with FakeServer() as server:
        server.reply = lambda prompt: reply
        judge = {"kind": "openai", "base_url": server.url, "model": "fake-vlm", "prompt": "viescore_tie_sc",
                 "policy": {"backoff_s": 0}}
        summary = evaluate(name, OracleModel(), data="sample", cache=False, output_dir=tmp_path, judge=judge,
                           rebuild_leaderboards=False)
        return summary, validation_problems(summary), server.bodies


@pytest.mark.parametrize("name, best, worst, images_per_call", [
    ("gedit_bench_en", '||V^=^V||{"score": [10, 10], "reasoning": "perfect"}||V^=^V||', "[0, 0]", [2, 1]),
    ("wise", "Consistency: 2\nRealism: 2\nAesthetic Quality: 2", "Consistency: 0\nRealism: 0\nAesthetic Quality: 0",
     [1]),
])
def test_oracle_through_a_judge_endpoint_best_and_worst(name, best, worst, images_per_call, tmp_path) -> None:
    summary, problems, bodies = _judged_run(name, best, tmp_path / "best")
    assert problems == {name: []}  # validate: every metric at its best, no errors
    n = len(summary.outcomes[0].samples)
    assert len(bodies) == n * len(images_per_call)
    assert [len(user_images(b)) for b in bodies[:len(images_per_call)]] == images_per_call
    assert all(u.startswith("data:image/") for b in bodies for u in user_images(b))
    assert all(user_text(b) for b in bodies)
    record = summary.results["tasks"][name]
    assert record["judge"]["model"] == "fake-vlm" and record["judge"]["stats"]["calls"] == len(bodies)
    wrong, _, _ = _judged_run(name, worst, tmp_path / "worst")
    assert all(mv.value == 0.0 for mv in wrong.outcomes[0].metrics.values())


def test_paper_scores_and_groups() -> None:
    from harness.catalog import load_entry

    assert load_entry("gedit_bench_en").paper_score == 6.02 and load_entry("wise").paper_score == 0.44
    assert load_entry("gedit_bench_en").group == "image_editing" and load_entry("wise").group == "image_generation"
    assert "gedit_bench_en" in load_entry("image_editing").tasks and "wise" in load_entry("image_generation").tasks
