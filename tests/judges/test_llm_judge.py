"""The LLM judge against a fake OpenAI-compatible server on loopback: answers, failures, timeouts, garbage, cache."""

from __future__ import annotations

import json

import pytest

from harness.api import Response
from harness.judges.base import CallPolicy, JudgeCache
from harness.judges.llm import AdapterJudge, OpenAICompatibleJudge
from tests.judges.fake_endpoint import FakeServer


@pytest.fixture
def server():
    with FakeServer() as s:
        yield s


def judge(server, tmp_path, prompt="mmbench_matcher", **policy):
    return OpenAICompatibleJudge(server.url, "fake-gpt", prompt, cache=JudgeCache(tmp_path / "judge.sqlite"),
                                 policy=CallPolicy(**{"backoff_s": 0.0, **policy}))


FIELDS = dict(question="What shape?", options="A. square\nB. circle", answer="it is round")


def test_correct_answers_and_cache_makes_second_run_free(server, tmp_path):
    j = judge(server, tmp_path)
    v = j.ask(**FIELDS)
    assert v.ok and v.value == "B" and server.calls == 1
    again = judge(server, tmp_path).ask(**FIELDS)  # a new judge object, the same cache file: a rerun
    assert again.value == "B" and again.cached and server.calls == 1


def test_e_means_no_option(server, tmp_path):
    server.reply = lambda p: "E"
    assert judge(server, tmp_path).ask(**FIELDS).value is None


def test_failing_server_is_a_counted_failure_not_a_verdict(server, tmp_path):
    server.mode = "error"
    j = judge(server, tmp_path, retries=2)
    v = j.ask(**FIELDS)
    assert not v.ok and "HTTP 500" in v.error and v.value is None
    assert server.calls == 3 and j.stats.failures == 1 and j.stats.retries == 2
    server.mode = "ok"
    assert j.ask(**FIELDS).ok  # failures are not cached: the next run tries again


def test_slow_server_times_out(server, tmp_path):
    server.mode = "slow"
    v = judge(server, tmp_path, retries=0, timeout_s=0.1).ask(**FIELDS)
    assert not v.ok and "timed out" in v.error.lower()


def test_malformed_output_is_retried_then_reported(server, tmp_path):
    answers = iter(["I think the first?", "Hmm, hard to say", "B"])
    server.reply = lambda p: next(answers)
    j = judge(server, tmp_path, retries=2)
    assert j.ask(**FIELDS).value == "B" and j.stats.retries == 2
    server.reply = lambda p: "no idea"
    v = judge(server, tmp_path, retries=1).ask(question="q2", options="A. x", answer="y")
    assert not v.ok and "malformed" in v.error


def test_budget_and_api_key_from_named_env_var(server, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_JUDGE_KEY", "sk-secret")
    j = OpenAICompatibleJudge(server.url, "fake-gpt", "mmbench_matcher", api_key_env="FAKE_JUDGE_KEY",
                              policy=CallPolicy(budget=1, backoff_s=0))
    assert j.ask(**FIELDS).ok and server.auth[-1] == "Bearer sk-secret"
    over = j.ask(question="another", options="A. x", answer="y")
    assert not over.ok and "budget" in over.error and server.calls == 1
    assert "sk-secret" not in json.dumps(j.identity())


def test_video_chatgpt_prompt_parses_pred_and_score(server, tmp_path):
    server.reply = lambda p: "{'pred': 'yes', 'score': 4}"
    v = judge(server, tmp_path, prompt="videochatgpt_qa").ask(question="q", reference="a dog", answer="a puppy")
    assert v.value == {"pred": True, "score": 4.0}


def test_any_adapter_can_be_the_judge(tmp_path):
    class Echo:
        name = "echo"

        def fingerprint(self):
            return "echo"

        def generate(self, requests):
            return [Response(text="yes") for _ in requests]

    j = AdapterJudge(Echo(), "binary_correct", cache=JudgeCache(tmp_path / "j.sqlite"))
    assert j.ask(question="2+2?", reference="4", answer="four").value is True
    assert j.identity()["model"] == "echo"


def test_run_with_a_judge_records_its_identity_and_calls(server, tmp_path):
    from harness.evaluate import evaluate

    class Vague:
        name = "vague"

        def fingerprint(self):
            return "vague"

        def generate(self, requests):
            return [Response(text="Hard to say, maybe the round one.") for _ in requests]

    judge_cfg = {"kind": "openai", "base_url": server.url, "model": "fake-gpt", "prompt": "mmbench_matcher",
                 "policy": {"backoff_s": 0}}
    summary = evaluate("mmbench_en_dev", Vague(), output_dir=tmp_path, judge=judge_cfg, rebuild_leaderboards=False)
    rec = summary.results["tasks"]["mmbench_en_dev"]
    assert rec["judge"]["model"] == "fake-gpt" and rec["judge"]["host"].startswith("127.0.0.1")
    assert rec["judge"]["stats"]["calls"] == server.calls == rec["n_docs"]
    samples = summary.outcomes[0].samples
    assert {s.fields["answer_source"] for s in samples} == {"judge"}


def test_a_task_can_ask_its_own_registered_prompt(server, tmp_path):
    prompts = []
    server.reply = lambda p: prompts.append(p) or ("  14 " if "Extracted answer: " in p else "B")
    j = judge(server, tmp_path)  # configured with the MMBench matcher
    v = j.ask(using="mathvista_extract", query="Which number is missing?", response="It is 14.")
    assert v.value == "14"  # parsed by the extractor's own parser (stripped text), not the letter parser
    assert prompts[-1].endswith("Which number is missing?\n\nIt is 14.\n\nExtracted answer: ")
    assert j.ask(**FIELDS).value == "B"  # its own prompt is unchanged
    again = judge(server, tmp_path).ask(using="mathvista_extract", query="Which number is missing?",
                                        response="It is 14.")
    assert again.cached and server.calls == 2  # cached under the extractor prompt's version


def test_empty_extraction_is_retried_then_a_failure(server, tmp_path):
    server.reply = lambda p: "   "
    v = judge(server, tmp_path, retries=1).ask(using="mathvista_extract", query="q", response="r")
    assert not v.ok and server.calls == 2
