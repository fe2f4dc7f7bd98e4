"""The framework-level response strip (``response_strip``) and the unanswered policy (``unanswered``), checked
against the lmms-eval 0.5.0 (tag v0.5 @ 8f142bc) code they follow.

lmms-eval's ``ConfigurableTask.process_results`` (lmms_eval/api/task.py) strips every generate_until response
before the task's own ``process_results`` sees it. Each oracle below is a TRANSCRIPTION of the reference parser
named in its docstring, kept here only as an independent comparison; the per-sample score of the reference
pipeline (strip, then parse, then the per-sample score) must equal ours, whitespace included.
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from harness.api import Response
from harness.task import UNANSWERED_NOTE, TaskConfig
from tests.tasks.helpers import answer_all, doc_by_id, load_task, sample_docs

RANDOM = "<random>"  # the oracles' stand-in for the reference's random.choice (ours is seeded per question)

# Responses shaped like real model output, written around the gold letter {g} and a wrong one {o}: wrapped in
# newlines, tabs or spaces, with and without punctuation, brackets, prefixes, lower case, full-width letters.
RESPONSES = ["{g}", "\n{g}\n", "{g}.\n\n", "  ({g})  ", "\t({o})\t", "\n\nThe answer is {g}", "{g}\n\nbecause it is",
             "\n\n{g}\n\n{o}\n", "\n({g}) not ({o})\n", "{lower}", "{wide}", "{g})", "\n\n{g}.", "{o} ", " A cat\n",
             "  \n  ", ""]


def _numpy_argmax(values: list[int]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def _numpy_argmin(values: list[int]) -> int:
    return min(range(len(values)), key=values.__getitem__)


# ---- transcriptions of the reference parsers (oracles)


def ref_mmmu_parse(response: str, all_choices: list[str], index2ans: dict[str, str]) -> str:
    """Transcription of lmms_eval/tasks/mmmu/utils.py ``parse_multi_choice_response`` (v0.5)."""
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "
    index_ans, ans_with_brack, candidates = True, False, []
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(choice)
            ans_with_brack = True
    if len(candidates) == 0:
        for choice in all_choices:
            if f"{choice} " in response:
                candidates.append(choice)
    if len(candidates) == 0:
        for choice in all_choices:
            if f"{choice}." in response:
                candidates.append(choice)
    if len(candidates) == 0 and len(response.split()) > 5:
        for index, ans in index2ans.items():
            if ans.lower() in response.lower():
                candidates.append(index)
                index_ans = False
    if len(candidates) == 0:
        return RANDOM
    if len(candidates) > 1:
        if index_ans:
            if ans_with_brack:
                starts = [response.rfind(f"({can})") for can in candidates]
            else:
                starts = [response.rfind(f" {can} ") for can in candidates]
        else:
            starts = [response.lower().rfind(index2ans[can].lower()) for can in candidates]
        return candidates[_numpy_argmax(starts)]
    return candidates[0]


def ref_egoschema_parse(response: str, all_choices: list[str], index2ans: dict[str, str]) -> str:
    """Transcription of lmms_eval/tasks/egoschema/utils.py ``parse_multi_choice_response`` (v0.5)."""
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "
    index_ans, candidates = True, []
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(f"({choice})")
    for choice in all_choices:
        if f"{choice} " in response:
            candidates.append(f"{choice} ")
    for choice in all_choices:
        if f"{choice}." in response:
            candidates.append(f"{choice}.")
    if len(candidates) == 0 and len(response.split()) > 5:
        for index, ans in index2ans.items():
            if ans.lower() in response.lower():
                candidates.append(index)
                index_ans = False
    if len(candidates) == 0:
        return RANDOM
    if len(candidates) > 1:
        if index_ans:
            starts = [response.rfind(can) for can in candidates]
        else:
            starts = [response.lower().rfind(index2ans[can].lower()) for can in candidates]
        pred = candidates[_numpy_argmin(starts)]
    else:
        pred = candidates[0]
    return pred.replace("(", "").replace(")", "").replace(".", "").strip()


def ref_mmau_parse(response: str, all_choices: list[str]) -> str:
    """Transcription of lmms_eval/tasks/mmau/utils.py ``parse_multi_choice_response`` (v0.5)."""
    for char in [",", ".", "!", "?", ";", ":", "'"]:
        response = response.strip(char)
    response = " " + response + " "
    candidates = [c for c in all_choices if f"({c})" in response]
    if len(candidates) == 0:
        candidates = [c for c in all_choices if f" {c} " in response]
    if len(candidates) == 0:
        candidates = [c for c in all_choices if f"{c}." in response]
    if len(candidates) == 0:
        return RANDOM
    if len(candidates) > 1:
        return candidates[_numpy_argmax([response.rfind(f" {can} ") for can in candidates])]
    return candidates[0]


def ref_longvideobench_parse(response: str) -> str:
    """Transcription of lmms_eval/tasks/longvideobench/utils.py ``parse_multi_choice_response`` (v0.5)."""
    s = response.strip()
    for prefix in ["The best answer is", "The correct answer is", "The answer is", "The answer",
                   "The best option is", "The correct option is", "Best answer:", "Best option:"]:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCDE]", s):
        return RANDOM
    matches = re.search(r"[ABCDE]", s)
    return RANDOM if matches is None else matches[0]


# ---- the reference pipeline: strip, parse, per-sample score (None: the reference drew a random letter)


def ref_mmmu_score(doc: dict, response: str) -> float | None:
    options = ast.literal_eval(doc["options"])
    letters = [chr(ord("A") + i) for i in range(len(options))]
    pred = ref_mmmu_parse(response.strip(), letters, dict(zip(letters, options)))
    return None if pred == RANDOM else float(pred == doc["answer"])  # eval_multi_choice


def ref_egoschema_score(doc: dict, response: str) -> float | None:
    letters = ["A", "B", "C", "D", "E"]
    pred = ref_egoschema_parse(response.strip(), letters, {c: o.strip() for c, o in zip(letters, doc["option"])})
    if pred == RANDOM:
        return None
    index = {"A": 0, "B": 1, "C": 2, "D": 3, "E": 4}.get(pred, -1)
    return float(str(doc["answer"]) == str(index))  # egoschema_aggregate_score


def ref_mmau_score(doc: dict, response: str) -> float | None:
    pred = ref_mmau_parse(response.strip(), ["A", "B", "C", "D"])
    if pred == RANDOM:
        return None
    choice = json.loads(doc["choices"])[ord(pred) - ord("A")]  # letter_to_ans
    return float(choice.strip().lower() == doc["answer"].strip().lower())


def ref_longvideobench_score(doc: dict, response: str) -> float | None:
    pred = ref_longvideobench_parse(response.strip())
    return None if pred == RANDOM else float(pred == chr(ord("A") + doc["correct_choice"]))


def mmau_gold_letter(doc: dict) -> str:
    return "ABCD"[json.loads(doc["choices"]).index(doc["answer"])]


CASES = [  # task, sample doc, the reference's per-sample score, the gold letter
    ("mmmu_val", "validation_Art_1", ref_mmmu_score, lambda doc: doc["answer"]),
    ("mmmu_pro_standard", "test_Biology_1", ref_mmmu_score, lambda doc: doc["answer"]),
    ("egoschema", "1", ref_egoschema_score, lambda doc: "ABCDE"[int(doc["answer"])]),
    ("mmau_sound", None, ref_mmau_score, mmau_gold_letter),
    ("longvideobench_val", "lvb_red_square_0", ref_longvideobench_score, lambda doc: "ABCDE"[doc["correct_choice"]]),
]


def _score(sample) -> float:
    item = next(iter(sample.items.values()))
    return float(item["correct"] if isinstance(item, dict) and "correct" in item else item)


def responses_for(gold: str) -> list[str]:
    other = "A" if gold != "A" else "C"
    letters = {"g": gold, "o": other, "lower": gold.lower(), "wide": chr(ord(gold) + 0xFEE0)}
    return [template.format(**letters) for template in RESPONSES]


@pytest.mark.parametrize("name, doc_id, reference, gold", CASES, ids=[c[0] for c in CASES])
def test_stripped_responses_score_as_the_reference(name: str, doc_id: str | None, reference, gold) -> None:
    task = load_task(name)
    assert task.config.response_strip
    doc = doc_by_id(task, doc_id) if doc_id else sample_docs(task)[0]
    compared = 0
    for response in responses_for(gold(doc)):
        expected = reference(doc, response)
        # several run seeds: a seeded guess would not land on the reference's answer under every one of them
        for seed in range(5):
            task.seed = seed
            sample = task.process_response(doc, Response(text=response))
            assert sample.error is None, (name, response, sample.error)
            if expected is None:  # the reference guesses; ours guesses too, among the question's options
                assert sample.prediction not in (None, ""), (name, response)
            else:
                assert _score(sample) == expected, (name, repr(response), seed, sample.prediction)
        compared += expected is not None
    assert compared >= 8  # most cases are decided, not guessed


def test_newline_wrapped_letter_is_read_not_guessed() -> None:
    """The case that motivated the strip: MMMU's parser cannot see "B" in "\\nB\\n" and guesses."""
    task = load_task("mmmu_val")
    doc = doc_by_id(task, "validation_Art_1")
    assert ref_mmmu_parse("\nB\n", ["A", "B", "C", "D"], {}) == RANDOM  # unstripped: a guess
    assert task.process_response(doc, Response(text="\nB\n")).prediction == "B"
    unstripped = load_task("mmmu_val", response_strip=False)
    assert unstripped.process_response(doc, Response(text="\nB\n")).parse_error is None  # rule ran on raw text


def test_the_scored_text_is_logged_and_errors_pass_through() -> None:
    task = load_task("mmmu_val")
    doc = doc_by_id(task, "validation_Art_1")
    assert task.process_response(doc, Response(text="\n (B) \n")).response.text == "(B)"
    failed = task.process_response(doc, Response(error="model crashed"))
    assert failed.error == "model crashed" and failed.items == {}


# ---- unanswered items: MVBench and VideoMMMU leave an empty (stripped) response out


def ref_mvbench_answered(response: str) -> bool:
    """mvbench_aggregate_results counts a sample only when ``pred_answer != ""`` (after the framework strip)."""
    return response.strip() != ""


def ref_videommmu_answered(response: str) -> bool:
    """parse_* return "API Error" for ``response == ""`` (after the strip); the aggregation filters those out."""
    return response.strip() != ""


@pytest.mark.parametrize("name, reference", [("mvbench", ref_mvbench_answered),
                                             ("videommmu", ref_videommmu_answered)])
@pytest.mark.parametrize("response", ["", " ", "\n\n", "\t \n", " B\n"])
def test_unanswered_items_are_left_out_as_the_reference_does(name: str, reference, response: str) -> None:
    task = load_task(name)
    doc = sample_docs(task)[0]
    sample = task.process_response(doc, Response(text=response))
    assert (sample.error is None) == reference(response)
    if not reference(response):
        assert sample.error == UNANSWERED_NOTE and sample.items == {}


def test_unanswered_samples_leave_the_denominator() -> None:
    task = load_task("mvbench")
    n = task.aggregate(answer_all(task, lambda doc: Response(text="B")))["group_mean"].n
    first = task.doc_id(sample_docs(task)[0])
    one_blank = answer_all(task, lambda doc: Response(text="\n " if task.doc_id(doc) == first else "B"))
    assert task.aggregate(one_blank)["group_mean"].n == n - 1


def test_other_tasks_still_score_empty_responses() -> None:
    task = load_task("mmmu_val")
    assert task.config.unanswered == "scored"
    sample = task.process_response(doc_by_id(task, "validation_Art_1"), Response(text="  "))
    assert sample.error is None and sample.parse_error == "empty response"


def test_unknown_unanswered_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unanswered must be one of"):
        TaskConfig.from_dict({"name": "t", "group": "g", "unanswered": "skip"})


def test_default_policies_leave_the_task_hash_unchanged() -> None:
    base = TaskConfig.from_dict({"name": "t", "group": "g"})
    explicit = TaskConfig.from_dict({"name": "t", "group": "g", "response_strip": False, "unanswered": "scored"})
    stripped = TaskConfig.from_dict({"name": "t", "group": "g", "response_strip": True})
    assert base.hash() == explicit.hash() != stripped.hash()

