"""`harness serve model=unimoe_tiny` in a subprocess and `model=openai` pointed at it: the same predictions,
scores and routing statistics as in process; a server killed mid-run stops the run with one message and the
rerun asks only for the missing samples; an LLM judge pointed at the served model."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import pytest

from harness.api import ModelUnavailable
from harness.evaluate import evaluate
from harness.judges.llm import AdapterJudge, OpenAICompatibleJudge
from harness.models import build_model
from harness.evaluate import _model_config
from tests.serve.server import served

pytestmark = pytest.mark.slow
LIMIT = 4  # documents per omniworld task in the fault test


def openai_model(url: str, **args) -> dict:
    return {"name": "openai", "adapter": "openai",
            "args": {"base_url": url, "model": "unimoe_tiny", "video": "video_url", **args}}


def split_weights(routing: dict | None) -> tuple[dict | None, list[float]]:
    """Routing counts without their float sums (router weights, load-balancing loss), and those sums
    flattened: a padded batch (the server batches concurrent requests) rounds them differently in the last
    bits, while every count is exact."""
    if routing is None:
        return None, []
    counts, floats = {}, []
    for name, stats in routing.items():
        if name == "aux_loss":
            floats += stats["sum"]
            stats = {"calls": stats["calls"]}
        elif "weight_sum" in stats:
            floats += [w for layer in stats["weight_sum"] for w in layer]
            stats = {k: v for k, v in stats.items() if k != "weight_sum"}
        counts[name] = stats
    return counts, floats


def assert_same_samples(got: dict, expected: dict) -> None:
    """Every sample's text, prediction, score items and routing counts equal; router-weight sums within 1e-5."""
    assert got.keys() == expected.keys()
    for key, sample in got.items():
        want = expected[key]
        assert {**sample, "weights": None} == {**want, "weights": None}, key
        assert sample["weights"] == pytest.approx(want["weights"], rel=1e-5), key


def per_sample(run_dir: Path) -> dict[tuple[str, str], dict]:
    """(task, doc_id) -> what was predicted and scored, the last record of each sample (routing counts exact,
    router-weight sums under ``weights``)."""
    out = {}
    for log in sorted((run_dir / "samples").glob("*.jsonl")):
        for line in log.read_text().splitlines():
            s = json.loads(line)
            counts, weights = split_weights(s["response"]["stats"].get("routing"))
            out[(log.stem, s["doc_id"])] = {"text": s["response"]["text"], "prediction": s["prediction"],
                                            "items": s["items"], "error": s["error"], "routing": counts,
                                            "weights": weights}
    return out


@pytest.fixture(scope="module")
def in_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("in-process")
    return evaluate("omniworld", "unimoe_tiny", cache=False, output_dir=out, rebuild_leaderboards=False)


@pytest.fixture(scope="module")
def server():
    with served("model=unimoe_tiny") as s:
        yield s


def test_served_run_matches_the_in_process_run(in_process, server, tmp_path):
    summary = evaluate("omniworld", openai_model(server.url, max_concurrency=8), cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    assert summary.exit_code == 0
    expected, got = per_sample(in_process.run_dir), per_sample(summary.run_dir)
    assert len(got) == 120
    assert_same_samples(got, expected)
    for task, record in summary.results["tasks"].items():
        assert record["metrics"] == in_process.results["tasks"][task]["metrics"]
        counts, weights = split_weights(record["routing"]["counts"])
        expected_counts, expected_weights = split_weights(in_process.results["tasks"][task]["routing"]["counts"])
        assert counts == expected_counts and weights == pytest.approx(expected_weights, rel=1e-5)
        assert record["usage"]["requests"] == 20 and record["usage"]["completion_tokens"] > 0


def test_killed_server_stops_the_run_and_a_rerun_resumes(in_process, server, tmp_path):
    model = openai_model("", retries=2, backoff_s=0.05, max_consecutive_failures=4)
    outcome: dict = {}

    def run_until_stopped() -> None:
        try:
            evaluate("omniworld", model, limit=LIMIT, output_dir=tmp_path, rebuild_leaderboards=False)
        except ModelUnavailable as stop:
            outcome["stop"] = stop

    with served("model=unimoe_tiny") as first:
        model["args"]["base_url"] = first.url
        run = threading.Thread(target=run_until_stopped)
        run.start()
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("runs/*/samples/omniworld_video.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.01)
        first.kill()  # mid-run: the image task is done, the video task has started
        run.join(timeout=120)
    assert not run.is_alive()
    message = str(outcome["stop"])  # the command line prints it as its one line
    assert "endpoint down" in message and "rerun" in message and "\n" not in message
    (stopped_dir,) = tmp_path.glob("runs/*")
    done = per_sample(stopped_dir)
    assert LIMIT <= len(done) < 6 * LIMIT and not any(s["error"] for s in done.values())  # nothing marked failed

    model["args"]["base_url"] = server.url  # the model served again, on another port: the cache still applies
    rerun = evaluate("omniworld", model, limit=LIMIT, output_dir=tmp_path, rebuild_leaderboards=False)
    tasks = rerun.results["tasks"].values()
    assert rerun.exit_code == 0 and sum(t["n_cached"] for t in tasks) == len(done)
    assert sum(t["timing"]["samples_computed"] for t in tasks) == 6 * LIMIT - len(done)
    expected = {k: v for k, v in per_sample(in_process.run_dir).items() if k in per_sample(rerun.run_dir)}
    assert len(expected) == 6 * LIMIT
    assert_same_samples(per_sample(rerun.run_dir), expected)


def test_a_judge_pointed_at_the_served_model(server):
    fields = {"query": "Which shape is red?", "response": "The red one is the square."}
    served_judge = OpenAICompatibleJudge(server.url, "unimoe_tiny", "mathvista_extract", max_tokens=16)
    local_judge = AdapterJudge(build_model(_model_config("unimoe_tiny")), "mathvista_extract", max_new_tokens=16)
    verdict = served_judge.ask(**fields)
    assert verdict.ok and verdict.raw == local_judge.ask(**fields).raw


def test_greedy_sampled_and_undecodable_media(server):
    ask = {"model": "unimoe_tiny", "messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 6}
    greedy = [server.post({**ask, "temperature": 0})[1] for _ in range(2)]
    assert greedy[0]["choices"][0]["message"]["content"] == greedy[1]["choices"][0]["message"]["content"]
    assert greedy[0]["usage"]["completion_tokens"] <= 6 and greedy[0]["routing"]["text"]["tokens"] > 0
    sampled = [server.post({**ask, "temperature": 1.5, "seed": seed})[1]["choices"][0]["message"]["content"]
               for seed in (1, 1, 2, 3, 4)]
    assert sampled[0] == sampled[1] and len(set(sampled)) > 1  # seeded: repeatable, and not always the same
    bad = {**ask, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "data:image/png;base64," + base64.b64encode(b"not a png").decode()}}]}]}
    status, answer = server.post(bad)
    assert status == 400 and "cannot be decoded" in answer["error"]["message"]


def test_batched_rows_keep_their_own_answers_and_statistics(in_process, tmp_path):
    batched = evaluate("omniworld", "unimoe_tiny", limit=LIMIT, batch_size=LIMIT, cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    got = per_sample(batched.run_dir)
    assert all(t["model_calls"] == 1 for t in (r["timing"] for r in batched.results["tasks"].values()))
    assert_same_samples(got, {k: v for k, v in per_sample(in_process.run_dir).items() if k in got})
