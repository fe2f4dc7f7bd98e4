"""Spoken-question and audio-visual benchmarks (VideoMMMU, A-OKVQA / VQAv2 / ActivityNet-QA with spoken
questions, MMBench with a spoken hint, Big Bench Audio, OmniVideoBench): exact prompts and media order, the reference parsers'
quirks, protocol aggregation, oracle at the best score and a wrong model at the worst."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.api import AudioPart, ImagePart, Response, VideoPart
from harness.extract.base import ExtractContext, get_rule
from harness.judges.base import Verdict
from harness.metrics.base import get_metric
from tests.tasks.helpers import (
    answer_all, assert_oracle_best_and_wrong_worst, doc_by_id as _doc, load_task, oracle_response, sample_docs,
    validate_with_oracle,
)

TASKS = ["videommmu", "aokvqa_speech", "vqav2_speech", "activitynet_speech", "mmbench_hint_speech", "big_bench_audio",
         "omnivideobench"]



def _wrong(task, doc) -> Response:
    """A response every protocol reads as wrong."""
    if task.name == "videommmu":
        if doc["question_type"] != "multiple-choice":
            return Response(text="42")
        return Response(text=next(c for c in task.choices(doc) if c != task.target(doc)))
    if task.name == "mmbench_hint_speech":
        return Response(text=next(c for c in task.choices(doc) if c != task.target(doc)))
    if task.name == "big_bench_audio":
        return Response(text="Maybe so.")  # ("I cannot tell" would match "No" inside "cannot")
    return Response(text="zebra")


@pytest.mark.parametrize("name", TASKS)
def test_validate_passes(name: str, tmp_path: Path) -> None:
    assert validate_with_oracle(name, tmp_path) == {name: []}


@pytest.mark.parametrize("name", TASKS)
def test_oracle_best_and_wrong_model_worst(name: str) -> None:
    assert_oracle_best_and_wrong_worst(name, _wrong)


# ---- VideoMMMU


def test_videommmu_prompts_per_track_and_question_type() -> None:
    task = load_task("videommmu")
    perception = task.build_request(_doc(task, "Perception/validation_Math_1"))
    assert perception.text() == ("What colour are the squares in the lecture?\nA. Red\nB. Green\nC. Blue\nD. Yellow\n"
                                 "Please ignore the Quiz question in last frame of the video.")
    assert perception.choices == ("A", "B", "C", "D")
    (video,) = perception.media()
    assert isinstance(video, VideoPart) and video.path.endswith("videommmu/sample/Science/validation_Math_1.mp4")
    assert not video.use_audio
    prefixed = task.build_request(_doc(task, "Perception/validation_Accounting_1")).text()
    assert prefixed.startswith("Which shape stands for the cash balance in the lecture?\nA. A red square\n"
                               "B. A blue circle\n")  # stored "A. ..." options are shown as stored
    mcq = task.build_request(_doc(task, "Adaptation/validation_Accounting_1")).text()
    assert mcq == ("You should watch and learn the video content. Then apply what you learned to answer the following "
                   "multi-choice question. The image for this question is at the end of the video.\n<image 1> The "
                   "image shows the shape used for a new account. Which colour is it?\nA. Blue\nB. Green\nC. Red\n"
                   "D. Yellow")
    open_q = task.build_request(_doc(task, "Adaptation/validation_Math_1"))
    assert open_q.text() == ("You should watch and learn the video content. Then apply what you learned to answer the "
                             "following open-ended question. The image for this question is at the end of the video.\n"
                             "<image 1> Using the method taught in the video, how many yellow squares are shown in "
                             "the image in total?")
    assert open_q.choices == ()


def test_videommmu_three_tracks_share_one_video_id() -> None:
    task = load_task("videommmu")
    docs = sample_docs(task)
    assert len({task.doc_id(d) for d in docs}) == len(docs) == 6
    samples = answer_all(task, lambda doc: oracle_response(task, doc))
    assert {s.cluster for s in samples} == {"validation_Math_1", "validation_Accounting_1"}


OPTIONS = {"A": "Red", "B": "Green", "C": "Blue", "D": "Yellow"}


@pytest.mark.parametrize("response, expected", [
    ("B", "B"),
    ("(C)", "C"),
    ("C. Blue", "C"),
    ("(A) is wrong, B. is right", "B"),          # "B." is tried before "(A)" (MMMU's parser would say A)
    ("A. no, C. yes", "C"),                      # several: the last
    ("C: blue. A. is wrong", "A"),               # period and colon candidates: ranked by "X." (C's is -1)
    ("I am not sure", "No Answer Found."),       # no random letter (MMMU's parser draws one)
    ("the squares in this lecture are all blue", "C"),  # > 5 words: option text
])
def test_videommmu_mcq_parser(response: str, expected: str) -> None:
    assert get_rule("videommmu_mcq")(response, ExtractContext(options=OPTIONS)) == expected


def test_videommmu_text_match_uses_the_stored_option_with_its_letter() -> None:
    task = load_task("videommmu")
    doc = _doc(task, "Perception/validation_Accounting_1")
    assert task.extract(doc, Response(text="the cash balance is drawn as b. a blue circle here")) == "B"
    assert task.extract(doc, Response(text="the cash balance is drawn as a blue circle here")) == "No Answer Found."


def test_videommmu_open_parser_knows_more_indicator_words() -> None:
    assert get_rule("videommmu_open")("The image has seven squares", ExtractContext()) == ["seven squares"]
    assert get_rule("mmmu_open")("The image has seven squares", ExtractContext()) == ["the image has seven squares"]
    task = load_task("videommmu")
    doc = _doc(task, "Adaptation/validation_Math_1")
    hit = task.process(doc, Response(text="So the total number of squares equals 5."))
    assert hit.items["group_mean"]["score"] == 1.0
    assert task.process(doc, Response(text="There are 7 squares.")).items["group_mean"]["score"] == 0.0


def test_videommmu_overall_is_the_mean_of_tracks_and_empty_responses_are_dropped() -> None:
    task = load_task("videommmu")
    answers = {"Perception/validation_Math_1": "A", "Perception/validation_Accounting_1": "B",
               "Comprehension/validation_Math_1": "", "Comprehension/validation_Accounting_1": "A",
               "Adaptation/validation_Math_1": "5", "Adaptation/validation_Accounting_1": "C"}
    samples = answer_all(task, lambda doc: Response(text=answers[task.doc_id(doc)]))
    # tracks: Perception 2/2, Comprehension 0/1 (the empty answer is not counted), Adaptation 1/2
    assert task.aggregate(samples)["group_mean"].value == pytest.approx(100 * (1.0 + 0.0 + 0.5) / 3)
    assert task.aggregate(samples)["group_mean"].n == 5
    assert task.breakdown(samples)["track"] == pytest.approx({"Adaptation": 50.0, "Comprehension": 0.0,
                                                              "Perception": 100.0})


# ---- A-OKVQA and VQAv2 with spoken questions


@pytest.mark.parametrize("name, doc_id", [("aokvqa_speech", "2V9ABvGR3bkSMuXs5ezBGb"), ("vqav2_speech", "1020")])
def test_spoken_vqa_request_is_image_then_spoken_question(name: str, doc_id: str) -> None:
    task = load_task(name)
    request = task.build_request(_doc(task, doc_id))
    assert request.text() == "Answer the question using a single word or phrase."
    image, audio = request.media()
    assert isinstance(image, ImagePart) and image.path.endswith(".jpg")
    assert isinstance(audio, AudioPart) and audio.path.endswith(f"audio/{doc_id}.mp3")


@pytest.mark.parametrize("response, em, vqa", [
    ("Cat", 1.0, 1.0),
    ("a cat.", 1.0, 1.0),          # VQA normalisation: article and period dropped
    ("kitten", 1.0, 0.3),          # one annotator of ten: exact match counts it, VQA accuracy gives 0.3
    ("It is a cat", 0.0, 0.0),
])
def test_aokvqa_exact_match_against_any_direct_answer(response: str, em: float, vqa: float) -> None:
    task = load_task("aokvqa_speech")
    items = task.process(_doc(task, "2V9ABvGR3bkSMuXs5ezBGb"), Response(text=response)).items
    assert items["exact_match"] == pytest.approx(em)
    assert items["vqa_accuracy"] == pytest.approx(vqa)


@pytest.mark.parametrize("doc_id, response, expected", [
    ("1010", "One", 1.0),          # always normalised (lmms-eval vqav2): "one" -> "1"
    ("1010", "2", 0.3),
    ("1020", "No.", 1.0),
    ("1030", "space suit", 1.0),   # 4 of 10 annotators: min(1, 3/3) in every leave-one-out subset
    ("1030", "suit", 0.3),
])
def test_vqav2_accuracy(doc_id: str, response: str, expected: float) -> None:
    task = load_task("vqav2_speech")
    assert task.process(_doc(task, doc_id), Response(text=response)).items["vqa_accuracy"] == pytest.approx(expected)
    assert task.target(_doc(task, doc_id))[:2] == [a["answer"] for a in _doc(task, doc_id)["answers"][:2]]


# ---- ActivityNet-QA with spoken questions (Video-ChatGPT judge)


class _Judge:
    def __init__(self, verdict: Verdict, prompt: str = "videochatgpt_qa"):
        self.prompt = SimpleNamespace(name=prompt)
        self.verdict, self.calls = verdict, []

    def ask(self, **fields):
        self.calls.append(fields)
        return self.verdict


def test_activitynet_request_is_video_then_spoken_question() -> None:
    task = load_task("activitynet_speech")
    doc = _doc(task, "v_shapes_red_right_1")
    request = task.build_request(doc)
    assert request.text() == "Answer the question using a single word or phrase."
    video, audio = request.media()
    assert isinstance(video, VideoPart) and video.path.endswith("activitynet_speech/sample/v_shapes_red_right.mp4")
    assert isinstance(audio, AudioPart) and task.config.generation.max_new_tokens == 64


def test_activitynet_judge_verdicts_and_failures() -> None:
    task = load_task("activitynet_speech")
    doc = _doc(task, "v_shapes_red_right_1")
    task.judge = _Judge(Verdict(value={"pred": True, "score": 4.8}))
    sample = task.process(doc, Response(text=" Crimson "))
    assert task.judge.calls == [{"question": "what color is the square", "reference": "red", "answer": "Crimson"}]
    assert sample.prediction == {"pred": True, "score": 4} and sample.fields["judged_by"] == "judge"  # int(4.8)
    task.judge = _Judge(Verdict(error="timeout"))
    failed = task.process(doc, Response(text="red"))
    assert failed.prediction == {"pred": False, "score": 0} and failed.fields["judged_by"] == "judge_failed"
    task.judge = _Judge(Verdict(value="A"), prompt="mmbench_matcher")
    with pytest.raises(ValueError, match="videochatgpt_qa"):
        task.process(doc, Response(text="red"))


def test_activitynet_without_judge_falls_back_to_exact_match_and_reports_the_score_unscaled() -> None:
    task = load_task("activitynet_speech")
    answers = {"v_shapes_red_right_1": "Red.", "v_shapes_red_right_2": "no", "v_shapes_green_blink_1": "circle"}
    samples = answer_all(task, lambda doc: Response(text=answers[task.doc_id(doc)]))
    assert {s.fields["judged_by"] for s in samples} == {"exact_match_fallback"}
    metrics = task.aggregate(samples)
    assert metrics["judge_accuracy"].value == pytest.approx(100 * 2 / 3)
    assert metrics["judge_score"].value == pytest.approx(10 / 3)  # a 0-5 mean, not x100
    right = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert right["judge_score"].value == pytest.approx(5.0)


# ---- MMBench with the hint spoken


def test_mmbench_hint_speech_hint_is_heard_not_read() -> None:
    task = load_task("mmbench_hint_speech")
    with_hint = task.build_request(_doc(task, "0"))
    assert with_hint.text() == ("Which animal is in the image? There are several options:\nA. A dog\nB. A horse\n"
                                "C. A cat\nD. A parrot\n\nAnswer with the option's letter from the given choices "
                                "directly.")
    image, audio = with_hint.media()
    assert isinstance(image, ImagePart) and isinstance(audio, AudioPart) and audio.path.endswith("audio/hint_0.mp3")
    no_hint = task.build_request(_doc(task, "2"))
    assert [type(p) for p in no_hint.media()] == [ImagePart]


def test_mmbench_hint_speech_is_circular() -> None:
    task = load_task("mmbench_hint_speech")
    # every copy right except one rotated copy of question 0: question 0 fails, 1 and 2 pass
    def answer(doc):
        if task.doc_id(doc) == "1000000":
            return Response(text="A")
        return Response(text=task.target(doc))
    assert task.aggregate(answer_all(task, answer))["circular_accuracy"].value == pytest.approx(100 * 2 / 3)


# ---- Big Bench Audio


def test_big_bench_audio_request_and_existence_matching_quirks() -> None:
    task = load_task("big_bench_audio")
    request = task.build_request(_doc(task, "0"))
    (audio,) = request.media()
    assert isinstance(audio, AudioPart) and audio.path.endswith("big_bench_audio/sample/data/question_0.mp3")
    assert request.text() == "Answer the question in the audio."
    valid, invalid, no = _doc(task, "0"), _doc(task, "1"), _doc(task, "4")
    assert task.process(valid, Response(text="The argument is invalid.")).items["existence_match"] == 1.0  # "valid" in "invalid"
    assert task.process(invalid, Response(text="It is valid.")).items["existence_match"] == 0.0
    assert task.process(no, Response(text="I don't know.")).items["existence_match"] == 1.0  # "no" in "know"
    assert task.process(no, Response(text="Yes, Bob is honest.")).items["existence_match"] == 0.0


def test_big_bench_audio_breakdown_by_category() -> None:
    task = load_task("big_bench_audio")
    samples = answer_all(task, lambda doc: Response(text="4" if doc["category"] == "object_counting" else "maybe"))
    assert task.breakdown(samples)["category"] == {"formal_fallacies": 0.0, "navigate": 0.0,
                                                   "object_counting": 100.0, "web_of_lies": 0.0}
    assert get_metric("existence_match").item("Four", "4") == 0.0  # digits as stored: no number words


# ---- OmniVideoBench


def test_omnivideobench_flattens_videos_and_prompts_as_the_reference() -> None:
    task = load_task("omnivideobench")
    assert [task.doc_id(d) for d in sample_docs(task)] == ["video_1#0", "video_1#1", "video_2#0"]
    request = task.build_request(_doc(task, "video_1#1"))
    assert request.text() == (
        "You are given a video. Based on the content of the video, answer the following question:\n\nQuestion:\n"
        "When does the beep stop?\n\nOptions:\nA. Before the square appears\nB. When the square appears\n"
        "C. When the square disappears\nD. It never stops\n\nAnswer with the option's letter directly(e.g., A, B, "
        "C, or D).If your access to the video content is limited, at least one option that is more likely than the "
        "others must be chosen.Mustn't give any other reason for can not choose!")
    assert "Options:\nA.Blue\nB.Red\n" in task.build_request(_doc(task, "video_1#0")).text()  # shown as stored
    (video,) = request.media()
    assert isinstance(video, VideoPart) and video.use_audio and video.path.endswith("omnivideobench/sample/video_1.mp4")
    assert task.target(_doc(task, "video_1#1")) == "C"


@pytest.mark.parametrize("response, correct", [
    ("C", True),
    ("C. When the square disappears", True),   # second character "." -> the first
    ("(C)", True),                             # punctuation removed
    ("\\boxed{C}", True),
    ("I am your assistant.\nC", True),         # only the text after the last "assistant" is kept
    ("As an assistant, I pick C", False),      # ", i pick c" -> "i pick c"
    ("C) When the square disappears", False),  # "c when the square disappears"
    ("The answer is C", False),
    ("c", True),
])
def test_omnivideobench_exact_cleaned_letter(response: str, correct: bool) -> None:
    task = load_task("omnivideobench")
    sample = task.process(_doc(task, "video_1#1"), Response(text=response))
    assert sample.items["accuracy"] == float(correct)
