"""MultiChallenge Audio in both public releases: the multi-turn requests (spoken user turns, text assistant
turns, the text baseline), malformed rows, MiMo-Audio-Eval's reply clean-up and YES/NO verdict against
PASS_CRITERIA (a "NO" criterion, empty replies, failed judgements), audiomc's per-item rubric judgements with
pass rate and rubric score, the judge prompts and reply readers, no scores without a judge, and validate
through a fake judge endpoint on loopback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.api import AudioPart, DocumentError, Response, TextPart
from harness.judges import multichallenge
from harness.judges.base import Verdict
from harness.judges.llm import PROMPTS
from tests.judges.fake_endpoint import FakeServer
from tests.tasks.helpers import doc_by_id, load_task, oracle_response, sample_docs, validate_with_oracle

MIMO, AUDIOMC = "multichallenge_audio", "multichallenge_audio_audiomc"


class FakeJudge:
    """Answers every ask with the next reply (``None``: a judge failure), read by the prompt's own parser."""

    def __init__(self, *replies: str | None):
        self.replies, self.calls = list(replies), []

    def ask(self, using=None, **fields):
        self.calls.append((using, fields))
        reply = self.replies[min(len(self.calls), len(self.replies)) - 1]
        if reply is None:
            return Verdict(error="RuntimeError: judge endpoint answered HTTP 500")
        return Verdict(PROMPTS[using].parse(reply), raw=reply)


def judged(name: str, *replies: str | None):
    task = load_task(name)
    task.judge = FakeJudge(*replies)
    return task


# ---- requests


def test_mimo_request_speaks_user_turns_and_writes_assistant_turns() -> None:
    task = load_task(MIMO)
    request = task.build_request(doc_by_id(task, "1"))
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    (first,), (middle,), (last,) = (m.content for m in request.messages)
    assert isinstance(first, AudioPart) and Path(first.path).name == "mc-2_0.mp3" and Path(first.path).exists()
    assert middle == TextPart("Thanks, I will keep that in mind.")
    assert isinstance(last, AudioPart) and Path(last.path).name == "mc-2_2.mp3"
    assert request.text() == "Thanks, I will keep that in mind." and request.generation.max_new_tokens == 1024


def test_text_baseline_reads_the_transcripts() -> None:
    mimo = load_task(MIMO, options={"user_turns": "text"})
    assert [p.text for m in mimo.build_request(doc_by_id(mimo, "0")).messages for p in m.content] == [
        "From now on, answer in one sentence.", "Understood, one sentence each time.", "Why is the sky blue?"]
    amc = load_task(AUDIOMC, options={"user_turns": "text"})
    assert [(m.role, m.content[0].text) for m in amc.build_request(doc_by_id(amc, "amc-2")).messages] == [
        ("user", "Always end your answers with the word done."), ("assistant", ""), ("user", "What is two plus two?")]


def test_audiomc_fixed_context_request_ends_at_the_last_user_turn() -> None:
    task = load_task(AUDIOMC)
    row = doc_by_id(task, "amc-1")
    request = task.build_request({**row, "user_turn_3_transcript": "  ", "user_turn_3_audio": None})
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert [Path(p.path).name for p in request.media()] == ["user_turn_1.mp3", "user_turn_2.mp3"]
    assert request.messages[1].content == (TextPart("A table for six, got it."),)


def test_malformed_rows_name_the_row() -> None:
    task = load_task(MIMO)
    row = doc_by_id(task, "2")
    with pytest.raises(DocumentError, match="row 2 has 3 text turns and 2 spoken ones"):
        task.build_request({**row, "speech_dialogue": row["speech_dialogue"][:2]})
    with pytest.raises(DocumentError, match="row 2 has a turn without a known role"):
        task.build_request({**row, "CONVERSATION": [{"role": "narrator", "content": "x"}, *row["CONVERSATION"][1:]]})
    with pytest.raises(DocumentError, match="row 2 has a user turn without audio"):
        task.build_request({**row, "speech_dialogue": [{"role": "user", "content": ""}, *row["speech_dialogue"][1:]]})
    with pytest.raises(DocumentError, match="row 2 lacks the CONVERSATION"):
        task.build_request({**row, "CONVERSATION": None})
    amc = load_task(AUDIOMC)
    blank = {**doc_by_id(amc, "amc-2"), **{f"user_turn_{k}_transcript": None for k in range(1, 9)}}
    with pytest.raises(DocumentError, match="row amc-2 has no user turn"):
        amc.build_request(blank)
    with pytest.raises(DocumentError, match="row amc-2 has no rubric items"):
        amc.rubric({**doc_by_id(amc, "amc-2"), "rubric": "[]"})


# ---- MiMo-Audio-Eval scoring


def test_reply_is_cleaned_as_the_reference_before_judging() -> None:
    task = judged(MIMO, "Reasoning... YES")
    row = doc_by_id(task, "0")
    sample = task.process(row, Response(text="  Blue light..... scatters.... most..<|eot|>spoken tail\n"))
    (using, fields), = task.judge.calls
    assert using == "multichallenge_verdict"
    assert fields == {"response": "Blue light scatters. most", "criteria": row["TARGET_QUESTION"]}
    assert sample.items == {"judged_binary": 1.0} and sample.fields["judged_by"] == "judge"


@pytest.mark.parametrize("doc_id, reply, passed", [("1", "NO", 1.0), ("1", "YES", 0.0), ("0", "YES", 1.0),
                                                   ("0", "NO", 0.0)])
def test_a_reply_passes_when_the_verdict_equals_pass_criteria(doc_id: str, reply: str, passed: float) -> None:
    task = judged(MIMO, f'{{"reasoning": "checked", "verdict": "{reply}"}}')
    sample = task.process(doc_by_id(task, doc_id), Response(text="Try dried apricots."))
    assert sample.items == {"judged_binary": passed} and sample.fields["verdict"] == reply


def test_empty_reply_scores_zero_without_a_call_and_failed_judge_scores_zero() -> None:
    task = judged(MIMO, "YES")
    empty = task.process(doc_by_id(task, "0"), Response(text=" ...\n"))
    assert empty.items == {"judged_binary": 0.0} and task.judge.calls == [] and empty.parse_error
    failing = judged(MIMO, None)
    failed = failing.process(doc_by_id(failing, "0"), Response(text="One sentence."))
    assert failed.items == {"judged_binary": 0.0} and failed.error is None
    assert failed.fields["judged_by"] == "judge_failed" and "scored 0" in failed.parse_error


@pytest.mark.parametrize("name", [MIMO, AUDIOMC])
def test_without_a_judge_samples_need_it_and_are_not_scored(name: str) -> None:
    task = load_task(name)
    sample = task.process(sample_docs(task)[0], Response(text="A reply."))
    assert sample.error and "needs the LLM judge" in sample.error and sample.items == {}


@pytest.mark.parametrize("raw, verdict", [
    ('{"reasoning": "fine", "verdict": "YES"}', "YES"), ('```json\n{"reasoning": "r", "verdict": "NO"}\n```', "NO"),
    ("The reply is one sentence, so yes.\nVerdict: NO", "NO"), ("Reasoning: no issues.\n\nYES", "YES"),
])
def test_verdict_reader(raw: str, verdict: str) -> None:
    assert multichallenge.parse_verdict(raw) == verdict


def test_verdict_reader_rejects_a_reply_without_one() -> None:
    with pytest.raises(ValueError, match="no YES/NO verdict"):
        multichallenge.parse_verdict("I am unsure.")


def test_verdict_prompt_is_the_reference_text() -> None:
    text = PROMPTS["multichallenge_verdict"].render(response="R", criteria="C?")
    assert text == ("You are tasked with evaluating a model response to see if it meets a specific criteria.\n"
                    "The criteria will always be YES/NO evaluation.\n\nThe model response is as follows:\n"
                    "<MODEL_RESPONSE>\nR\n</MODEL_RESPONSE>\n\nThe criteria that the model response must meet is as "
                    "follows. Be VERY STRICT!:\n<CRITERIA>\nC?\n</CRITERIA>\n\nPrint your reasoning followed by your "
                    "verdict, either \"YES\" or \"NO\".")


# ---- audiomc scoring


def test_audiomc_judges_each_rubric_item_on_the_conversation() -> None:
    task = judged(AUDIOMC, '{"explanation": "ok", "criteria_met": true}',
                  '{"explanation": "no", "criteria_met": false}')
    row = doc_by_id(task, "amc-1")
    sample = task.process(row, Response(text="Booked for six."))
    history = ("User: Book a table for four, no wait, for six people.\n\nAssistant: A table for six, got it.\n\n"
               "User: Make it at seven tonight.\n\nAssistant: Booked for six.")
    assert [f for _, f in task.judge.calls] == [
        {"conversation_history": history, "rubric_item": "Confirms a table for six people."},
        {"conversation_history": history, "rubric_item": "Confirms the time as seven tonight."}]
    assert sample.items == {"judged_binary": 0.0, "judged_grade": 0.5}
    assert sample.fields["criteria_met"] == [True, False]


def test_audiomc_blank_assistant_turns_are_left_out_of_the_history() -> None:
    task = load_task(AUDIOMC)
    assert task.history(doc_by_id(task, "amc-2"), "Four, done.") == (
        "User: Always end your answers with the word done.\n\nUser: What is two plus two?\n\nAssistant: Four, done.")


def test_audiomc_failed_gradings_count_as_not_met() -> None:
    task = judged(AUDIOMC, '{"criteria_met": true}', None)
    sample = task.process(doc_by_id(task, "amc-2"), Response(text="Four, done."))
    assert sample.items == {"judged_binary": 0.0, "judged_grade": 0.5} and sample.error is None
    assert sample.fields["judged_by"] == "judge_failed" and "1 of 2 rubric gradings failed" in sample.parse_error


@pytest.mark.parametrize("value, items", [
    (["a", " b "], ["a", "b"]), ('["a", "b"]', ["a", "b"]), ("a\n\nb\n", ["a", "b"]), ("one item", ["one item"]),
])
def test_audiomc_rubric_forms(value, items) -> None:
    task = load_task(AUDIOMC)
    assert task.rubric({**doc_by_id(task, "amc-1"), "rubric": value}) == items


@pytest.mark.parametrize("raw, met", [('```json\n{"explanation": "x", "criteria_met": true}\n```', True),
                                      ('Sure: {"explanation": "x", "criteria_met": false}', False)])
def test_rubric_reader(raw: str, met: bool) -> None:
    assert multichallenge.parse_criteria_met(raw) is met


@pytest.mark.parametrize("raw", ['{"criteria_met": "true"}', "criteria met", '{"explanation": "x"}'])
def test_rubric_reader_needs_a_boolean(raw: str) -> None:
    with pytest.raises(ValueError, match="boolean criteria_met"):
        multichallenge.parse_criteria_met(raw)


def test_rubric_prompt_fills_the_cards_slots() -> None:
    text = PROMPTS["audiomc_rubric"].render(conversation_history="User: hi\n\nAssistant: hello", rubric_item="Greets.")
    assert text.startswith("Your job is to look at a conversation and a rubric item, and score the last turn (i.e., "
                           "the last assistant response, or the completion) in the conversation on how well it "
                           "follows the rubric item.\n\n# Conversation History\nUser: hi\n\nAssistant: hello\n\n"
                           "# Rubric item\nGreets.\n\n# Instructions\n")
    assert '```json\n{\n  "explanation": "The response includes a dairy product' in text
    assert '\n• The "criteria_met" field should be a boolean indicating whether the response meets' in text
    assert text.endswith("Return just the json object in markdown format. Do not include any other text in the "
                         "response.")


# ---- end to end


def fake_judge_reply(prompt: str) -> str:
    """A judge that knows the fixtures: a reply meets its criteria exactly when it is the fixture's known-good
    one; MiMo criteria are answered so that such a reply gets its row's PASS_CRITERIA."""
    good: dict[str, str] = {}
    for name in (MIMO, AUDIOMC):
        folder = Path(__file__).resolve().parents[2] / "tasks" / name / "sample"
        good.update(json.loads((folder / "oracle_replies.json").read_text()))
    if "<MODEL_RESPONSE>" in prompt:
        reply = re.search(r"<MODEL_RESPONSE>\n(.*)\n</MODEL_RESPONSE>", prompt, re.S)[1]
        criteria = re.search(r"<CRITERIA>\n(.*)\n</CRITERIA>", prompt, re.S)[1]
        task = load_task(MIMO)
        pass_on = next(d["PASS_CRITERIA"] for d in sample_docs(task) if d["TARGET_QUESTION"] == criteria)
        meets = reply == good[next(task.doc_id(d) for d in sample_docs(task) if d["TARGET_QUESTION"] == criteria)]
        verdict = pass_on if meets else {"YES": "NO", "NO": "YES"}[pass_on]
        return json.dumps({"reasoning": "checked", "verdict": verdict})
    reply = prompt.split("\n\n# Rubric item")[0].rsplit("Assistant: ", 1)[1]
    return json.dumps({"explanation": "checked", "criteria_met": reply in good.values()})


@pytest.mark.parametrize("name, calls", [(MIMO, 3), (AUDIOMC, 4)])
def test_validate_through_a_judge_endpoint_and_wrong_replies_score_zero(name: str, calls: int, tmp_path: Path) -> None:
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    with FakeServer() as server:
        server.reply = fake_judge_reply
        judge = {"kind": "openai", "base_url": server.url, "model": "fake-gpt", "prompt": "multichallenge_verdict",
                 "policy": {"backoff_s": 0}}
        summary = evaluate(name, OracleModel(), data="sample", cache=False, output_dir=tmp_path, judge=judge,
                           rebuild_leaderboards=False)
        assert validation_problems(summary) == {name: []} and server.calls == calls
        task = load_task(name)
        task.judge = summary.outcomes[0].task.judge
        wrong = [task.process(d, Response(text="Peanut butter cups, and I will not say more."))
                 for d in sample_docs(task)]
    assert task.aggregate(wrong)["judged_binary"].value == 0.0 and all(s.error is None for s in wrong)
    assert summary.results["tasks"][name]["judge"]["model"] == "fake-gpt"


@pytest.mark.parametrize("name", [MIMO, AUDIOMC])
def test_validate_without_a_judge_reports_the_missing_judge(name: str, tmp_path: Path) -> None:
    problems = validate_with_oracle(name, tmp_path)[name]
    assert problems and all("needs the LLM judge" in p for p in problems if "judged_" not in p)


def test_oracle_replies_exist_only_for_the_sample() -> None:
    task = load_task(MIMO)
    assert oracle_response(task, doc_by_id(task, "2")).text == "No, seven is odd."
    full = load_task(MIMO)
    full.data = "full"
    assert full.oracle(doc_by_id(task, "2")).text == ""


@pytest.mark.parametrize("name, judge, model, temperature", [(MIMO, "gpt4o_multichallenge", "gpt-4o", 0),
                                                               (AUDIOMC, "o4mini_audiomc", "o4-mini", None)])
def test_cli_validate_with_the_shipped_judge_config_pointed_at_a_fake_endpoint(name: str, judge: str, model: str,
                                                                               temperature, tmp_path: Path) -> None:
    from harness.cli import main

    with FakeServer() as server:
        server.reply = fake_judge_reply
        assert main(["validate", f"task={name}", f"judge={judge}", f"judge.base_url={server.url}",
                     "judge.api_key_env=null", f"output_dir={tmp_path}"]) == 0
    assert server.bodies and all(b["model"] == model and b.get("temperature") == temperature for b in server.bodies)
