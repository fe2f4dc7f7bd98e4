"""MMBench-EN dev: the protocol prompt, circular copies, rule -> judge -> seeded-random answer paths, and
circular accuracy (a question counts only when every rotated copy is right)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from harness.api import ImagePart, Response
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

PROMPT_INDEX_0 = (
    "What is the person in the image wearing? There are several options:\n"
    "A. A spacesuit\nB. A swimsuit\nC. A chef's uniform\nD. A tuxedo\n"
    "\nAnswer with the option's letter from the given choices directly."
)
PROMPT_INDEX_2_WITH_HINT = (
    "The photo was taken indoors. Which animal is in the image? There are several options:\n"
    "A. A dog\nB. A horse\nC. A cat\nD. A parrot\n"
    "\nAnswer with the option's letter from the given choices directly."
)


@pytest.fixture(scope="module")
def task():
    return load_task("mmbench_en_dev")


def doc_with_index(task, index: int) -> dict:
    return next(d for d in sample_docs(task) if d["index"] == index)


def test_prompt_snapshots(task) -> None:
    assert task.build_request(doc_with_index(task, 0)).text() == PROMPT_INDEX_0
    assert task.build_request(doc_with_index(task, 2)).text() == PROMPT_INDEX_2_WITH_HINT


def test_two_option_question_lists_two_options(task) -> None:
    request = task.build_request(doc_with_index(task, 3))
    assert request.choices == ("A", "B") and "C." not in request.text()
    (image,) = request.media()
    assert isinstance(image, ImagePart) and image.path.endswith("images/rocket.jpg")


def test_circular_copies_rotate_the_options_and_keep_the_answer(task) -> None:
    groups = defaultdict(list)
    for doc in sample_docs(task):
        groups[doc["index"] % 1_000_000].append(doc)
    for copies in groups.values():
        n_options = len(task.options(copies[0]))
        assert len(copies) == n_options
        assert {d["index"] // 1_000_000 for d in copies} == set(range(n_options))
        assert len({d[d["answer"]] for d in copies}) == 1  # the same option text is right in every copy
        assert len({d["answer"] for d in copies}) == n_options  # ... at a different letter each time


def test_doc_id_casts_string_indexes(task) -> None:
    assert task.doc_id({**doc_with_index(task, 1_000_000), "index": "1000000"}) == "1000000"


@pytest.mark.parametrize("response, letter", [
    ("C", "C"),
    ("(C) A cat", "A"),  # lmms-eval 0.5.0: the bare pass runs first, and "A" is its only bare letter (3 words)
    ("(C) is a cat", "C"),  # no bare letter: the "(X)" form decides
    ("The answer is C.", "C"),
    ("a cat", "C"),  # no letter: the unique option text decides
    ("A cat", "A"),  # protocol quirk: "A" is a standalone option letter
])
def test_rule_path(task, response: str, letter: str) -> None:
    doc = doc_with_index(task, 2)
    sample = task.process(doc, Response(text=response))
    assert (sample.prediction, sample.fields["answer_source"], sample.parse_error) == (letter, "rule", None)


def test_secondary_metric_scores_vlmevalkit_answers(task) -> None:
    doc = doc_with_index(task, 2)  # gold C
    sample = task.process(doc, Response(text="(C) A cat"))
    assert (sample.prediction, sample.fields["secondary_predictions"]) == ("A", {"circular_accuracy_vlmevalkit": "C"})
    assert not sample.items["circular_accuracy"]["correct"] and sample.items["circular_accuracy_vlmevalkit"]["correct"]
    refusal = task.process(doc, Response(text="Sorry, I cannot tell. C"))  # VLMEvalKit rejects, 0.5.0 reads C
    assert refusal.prediction == "C"
    assert refusal.fields["secondary_predictions"]["circular_accuracy_vlmevalkit"] in "ABCDE"  # random fallback


def test_unparseable_answer_falls_back_to_the_seeded_random_letter(task) -> None:
    doc = doc_with_index(task, 2)
    first = task.process(doc, Response(text="I would rather not say."))
    again = task.process(doc, Response(text="I would rather not say."))
    assert first.fields["answer_source"] == "random" and first.parse_error
    assert first.prediction == again.prediction and first.prediction in "ABCDE"


def test_judge_path_is_used_and_recorded_when_configured() -> None:
    from harness.judges.base import Verdict

    class FakeMatcher:
        def __init__(self, letter):
            self.letter, self.prompts = letter, []

        def ask(self, **fields):
            self.prompts.append(fields)
            return Verdict(self.letter) if self.letter else Verdict(error="judge endpoint answered HTTP 500")

    judged = load_task("mmbench_en_dev", judge="gpt4o_mmbench")
    doc = doc_with_index(judged, 2)
    judged.judge = FakeMatcher("C")
    sample = judged.process(doc, Response(text="It is a feline."))
    assert (sample.prediction, sample.fields["answer_source"]) == ("C", "judge")
    assert "C. A cat" in judged.judge.prompts[0]["options"]
    assert sample.items["circular_accuracy"]  # scored like any other answer
    assert len(judged.judge.prompts) == 1  # both rules failed; the primary and secondary share one verdict
    assert sample.fields["secondary_predictions"] == {"circular_accuracy_vlmevalkit": "C"}
    judged.judge = FakeMatcher(None)  # a failed judge call falls through to the protocol's random letter
    assert judged.process(doc, Response(text="It is a feline.")).fields["answer_source"] == "random"


def test_circular_accuracy_needs_every_copy(task) -> None:
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    assert task.aggregate(right)["circular_accuracy"].value == pytest.approx(100.0)

    def all_but_one_copy(doc: dict) -> Response:
        wrong = next(k for k in "ABCD" if k != doc["answer"])
        return Response(text=wrong if doc["index"] == 1_000_000 else doc["answer"])

    one_slip = answer_all(task, all_but_one_copy)
    assert task.aggregate(one_slip)["circular_accuracy"].value == pytest.approx(75.0)  # 3 of 4 questions


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("mmbench_en_dev", tmp_path) == {"mmbench_en_dev": []}
