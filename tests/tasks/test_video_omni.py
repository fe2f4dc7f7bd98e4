"""Video and omni benchmarks (VSI-Bench, WorldSense, OmniBench, MVBench, LongVideoBench, EgoSchema, TOMATO,
Charades-STA): exact protocol prompts, the paper-era parsers' quirks, protocol aggregation, oracle at the
best score and a wrong model at the worst, and fixtures whose media hold what the rows say."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import AudioPart, ImagePart, Response, VideoPart
from harness.extract.base import ExtractContext, get_rule
from harness.media import load_video_audio
from harness.metrics.grouped import group_mean_aggregate, group_scores
from tests.tasks.helpers import (
    answer_all, assert_oracle_best_and_wrong_worst, doc_by_id as _doc, load_task, sample_docs,
    validate_with_oracle,
)

TASKS = ["vsibench", "worldsense", "omnibench", "mvbench", "longvideobench_val", "egoschema", "tomato", "charades_sta"]



def _wrong(task, doc) -> Response:
    """A response every protocol parser reads as a wrong option (or, for Charades, a disjoint span)."""
    if task.name == "charades_sta":
        start, end = task.target(doc)
        return Response(text=f"The event happens in the {end + 10:g} - {end + 20:g} seconds.")
    if task.name == "vsibench" and not doc.get("options"):
        return Response(text=str(float(doc["ground_truth"]) * 3))  # relative error 2: MRA 0
    letters = [c for c in task.choices(doc) if c != task.target(doc)]
    return Response(text=f"({letters[0]})" if task.name == "omnibench" else letters[0])


@pytest.mark.parametrize("name", TASKS)
def test_validate_passes(name: str, tmp_path: Path) -> None:
    assert validate_with_oracle(name, tmp_path) == {name: []}


@pytest.mark.parametrize("name", TASKS)
def test_oracle_best_and_wrong_model_worst(name: str) -> None:
    assert_oracle_best_and_wrong_worst(name, _wrong)


# ---- VSI-Bench


def test_vsibench_prompts() -> None:
    task = load_task("vsibench")
    mca = task.build_request(_doc(task, "0"))
    assert mca.text() == (
        "These are frames of a video.\nIf I am standing by the red square and facing the green square, is the "
        "blue circle to my left or to my right?\nOptions:\nA. left\nB. right\n"
        "Answer with the option's letter from the given choices directly.")
    assert mca.choices == ("A", "B")
    na = task.build_request(_doc(task, "3"))
    assert na.text() == ("These are frames of a video.\nHow many blue circle(s) are in this room?\n"
                         "Please answer the question using a single word or phrase.")
    (video,) = na.media()
    assert isinstance(video, VideoPart) and video.path.endswith("vsibench/sample/scannet/scene0011_00.mp4")


@pytest.mark.parametrize("response, doc_id, score", [
    ("a. left", "0", 1.0),            # first token, trailing '.' removed, case-insensitive
    ("A is correct", "0", 1.0),
    ("Left, option A", "0", 0.0),     # the first token is the prediction
    ("3", "3", 1.0),
    ("3.", "3", 1.0),
    ("three", "3", 0.0),              # not a float: 0
    ("2.5 meters", "2", 0.6),         # relative error 0.25 <= 1 - theta for theta 0.50 .. 0.75 (boundary counts)
    ("17", "5", 0.8),                 # 17 vs 15.4: relative error 0.104 passes theta 0.50 .. 0.85
])
def test_vsibench_scoring(response: str, doc_id: str, score: float) -> None:
    task = load_task("vsibench")
    doc = _doc(task, doc_id)
    sample = task.process(doc, Response(text=response))
    assert sample.items["group_mean"]["score"] == pytest.approx(score)


def test_vsibench_overall_is_the_mean_of_task_scores_with_rel_direction_levels_merged() -> None:
    task = load_task("vsibench")
    answers = {"0": "A", "1": "A", "2": "2.0", "3": "3", "4": "B", "5": "15.4"}  # 1 (hard) and 4 wrong
    samples = answer_all(task, lambda doc: Response(text=answers[task.doc_id(doc)]))
    items = [s.items["group_mean"] for s in samples]
    # tasks: rel_direction (easy 1, hard 0 -> 0.5), abs_distance 1, counting 1, appearance_order 0, room_size 1
    assert group_scores(items)["object_rel_direction"] == pytest.approx(0.5)
    assert task.aggregate(samples)["group_mean"].value == pytest.approx(100 * (0.5 + 1 + 1 + 0 + 1) / 5)
    assert sum(s.items["group_mean"]["score"] for s in samples) / len(samples) != pytest.approx(0.7)  # not per question
    assert task.breakdown(samples)["question_type"]["object_rel_direction_hard"] == 0.0


def test_group_mean_nests_unweighted() -> None:
    items = [{"group": ("a", "x"), "score": 1.0}, {"group": ("a", "x"), "score": 0.0}, {"group": ("a", "y"), "score": 1.0},
             {"group": ("b",), "score": 0.0}]
    assert group_mean_aggregate(items) == pytest.approx(((0.5 + 1.0) / 2 + 0.0) / 2)


# ---- WorldSense and TOMATO (the same bare-letter parser)


def test_worldsense_prompt_and_audio_track() -> None:
    task = load_task("worldsense")
    request = task.build_request(_doc(task, "1"))
    assert request.text() == (
        "Carefully watch this video and pay attention to every detail. Based on your observations, select the best "
        "option that accurately addresses the question.\nThese are the frames of a video and the corresponding "
        "audio. Select the best answer to the following multiple-choice question based on the video. Respond with "
        "only the letter (A, B, C, or D) of the correct option.\nWhen does the beep start?\n"
        "A. When the square appears.\nB. Before the video starts.\nC. After the square disappears.\n")
    assert request.choices == ("A", "B", "C")
    (video,) = request.media()
    assert isinstance(video, VideoPart) and video.use_audio


@pytest.mark.parametrize("response, expected", [
    ("B", "B"),
    ("Because of the sound, the answer is C", "B"),   # any capital counts; several: the first
    ("(C) After it disappears. Definitely not (A)", "A"),  # several: the last "(X)" (D is no option here)
    ("Do not know", "A"),           # "D" is no option of this 3-option row: no candidate, too short for text
    ("it comes after the square disappears. i think", "C"),  # no option capital, > 5 words: option text
    ("it happens before the video starts. i am sure", "B"),  # the stored text, its period included
    ("no idea", "A"),               # nothing: "A"
])
def test_worldsense_parser(response: str, expected: str) -> None:
    task = load_task("worldsense")
    doc = _doc(task, "1")
    assert task.extract(doc, Response(text=response)) == expected


def test_tomato_prompt_lists_options_as_a_dict_and_uses_the_bare_letter_parser() -> None:
    task = load_task("tomato")
    doc = _doc(task, "direction_001")
    text = task.build_request(doc).text()
    assert "<question> \nWhich direction is the red square moving in? \n</question>\n\n<options> \n" \
           "{'A': 'Left', 'B': 'Right', 'C': 'Up', 'D': 'Down', 'E': 'Not moving'} \n</options>\n\n" in text
    assert text.startswith("You will be provided with 16 separate frames uniformly sampled from a video")
    assert text.endswith("DO NOT GENERATE ANSWER SUCH AS 'NOT POSSIBLE TO DETERMINE.' \n")
    assert task.target(doc) == "B"
    assert task.extract(doc, Response(text="Answer: B")) == "A"  # the capital A of "Answer" comes first
    assert task.extract(doc, Response(text="the square is moving to the right")) == "B"


# ---- OmniBench


def test_omnibench_prompt_media_and_gold() -> None:
    task = load_task("omnibench")
    doc = _doc(task, "0")
    request = task.build_request(doc)
    assert request.text() == (
        "Question:\nA tone rises steadily in pitch. What is the object in the picture most likely about to do?\n\n"
        "Options:\nA. Sink into the sea\nB. Lift off\nC. Fall asleep\nD. Melt in the sun\n\n"
        "Answer with the option's letter from the given choices directly.")
    audio, image = request.media()
    assert isinstance(audio, AudioPart) and isinstance(image, ImagePart)
    assert task.target(doc) == "B"  # the gold is the option text "Lift off"


@pytest.mark.parametrize("response, expected", [
    ("B", "B"),
    ("(B) Lift off", "B"),
    ("A rocket will lift off, so B", "B"),      # "A " and "B " (space-padded) both count; the last " X " wins
    ("A rocket will lift off", "A"),            # "A " anywhere is a candidate
    ("B.", "B"),
    ("Lift off", ""),                            # no option-text pass: wrong
    ("(A) or (B)? I pick (B)", "B"),             # several: the last "(X)"
])
def test_omnibench_parser(response: str, expected: str) -> None:
    task = load_task("omnibench")
    assert task.extract(_doc(task, "0"), Response(text=response)) == expected


# ---- MVBench


def test_mvbench_prompt_and_ids() -> None:
    task = load_task("mvbench")
    doc = _doc(task, "moving_direction_0")
    assert task.build_request(doc).text() == ("Question:In which direction does the red square move?\nOption:\n"
                                              "(A) Left\n(B) Right\n(C) Up\nOnly give the best option.\n")
    assert task.target(doc) == "B"
    assert task.build_request(doc).media()[0].path.endswith("clevrer/video_validation/video_10001.mp4")


@pytest.mark.parametrize("response, expected", [
    ("B. Right", "B"),
    ("(B) Right", "B"),
    ("It is a rightward motion", "A"),   # lower-cased first: the article "a" reads as option A
    ("Right", "right"),                  # no letter: the normalised text, never a letter
    ("b", "B"),
])
def test_mvbench_normalisation(response: str, expected: str) -> None:
    assert get_rule("mvbench")(response, ExtractContext()) == expected


def test_mvbench_mean_over_sub_tasks_and_empty_answers_left_out() -> None:
    task = load_task("mvbench")
    answers = {"moving_direction_0": "B", "moving_direction_1": "A", "action_count_0": "C"}
    samples = answer_all(task, lambda doc: Response(text=answers[task.doc_id(doc)]))
    # moving_direction 1/2, action_count 1/1: mean of sub-tasks 0.75 (per question it would be 2/3)
    assert task.aggregate(samples)["group_mean"].value == pytest.approx(75.0)
    answers["moving_direction_1"] = ""
    samples = answer_all(task, lambda doc: Response(text=answers[task.doc_id(doc)]))
    assert task.aggregate(samples)["group_mean"].value == pytest.approx(100.0)
    assert task.aggregate(samples)["group_mean"].n == 2


# ---- LongVideoBench


def test_longvideobench_prompt_stops_at_na_and_parser() -> None:
    task = load_task("longvideobench_val")
    doc = _doc(task, "lvb_blue_circles_0")
    request = task.build_request(doc)
    assert request.text() == ("How many circles are visible?\nA. Three\nB. One\nC. Two\nD. Six\n"
                              "Answer with the option's letter from the given choices directly.\n")
    assert request.choices == ("A", "B", "C", "D") and task.target(doc) == "A"
    extract = lambda text: task.extract(doc, Response(text=text))  # noqa: E731
    assert extract("The best answer is C.") == "C"
    assert extract("As shown, B") == "A"   # the first A-E anywhere
    guess = extract("there are several circles bouncing around the screen in a row")  # > 10 words, no letter
    assert guess in "ABCD" and guess == extract("there are several circles bouncing around the screen in a row")


# ---- EgoSchema


def test_egoschema_prompt_and_parser() -> None:
    task = load_task("egoschema")
    doc = _doc(task, "0")
    assert task.build_request(doc).text() == (
        "What is the overall movement of the object seen throughout the video?\nA. It stays in the centre.\n"
        "B. It moves steadily from left to right.\nC. It moves from right to left.\nD. It moves up and down.\n"
        "E. It spins in place.\nAnswer with the option's letter from the given choices directly.")
    assert task.target(doc) == "B"
    extract = lambda text: task.extract(doc, Response(text=text))  # noqa: E731
    assert extract("B") == "B"
    assert extract("(B) it moves right") == "B"
    assert extract("B. not C. ") == "B"     # every form collected; the earliest LAST occurrence wins
    assert extract("C. or maybe B.") == "C"
    assert extract("i think b. it moves steadily from left to right. yes") == "B"  # whole "B. text." matched
    guess = extract("i think it moves steadily from left to right")  # no form, no whole "X. text.": a guess
    assert guess in "ABCDE" and all(extract("i think it moves steadily from left to right") == guess for _ in range(3))


# ---- Charades-STA


def test_charades_prompt_and_time_parser() -> None:
    task = load_task("charades_sta")
    doc = sample_docs(task)[0]
    assert task.build_request(doc).text() == (
        "Please find the visual event described by a sentence in the video, determining its starting and ending "
        "times. The format should be: 'The event happens in the start time - end time'. For example, The event "
        "'person turn a light on' happens in the 24.3 - 30.4 seonds. Now I will give you the textual sentence: "
        "a red square appears in the middle. Please return its start time and end time.")
    rule = get_rule("charades_time")
    assert rule("The event happens in the 1.0 - 2.5 seconds.", ExtractContext()) == (1.0, 2.5)
    assert rule("It happens from 1 to 2.5 s", ExtractContext()) == (1.0, 2.5)        # "to" becomes "-"
    assert rule("The event happens in 30 - 20.", ExtractContext()) == (20.0, 30.0)   # reversed spans are ordered
    assert rule("It starts at 4 s.\nIt ends at 9 s.", ExtractContext()) == (4.0, 9.0)  # keyword sentences
    # quirk: the seconds pass reads the "00" of each clock first, so the hh:mm:ss pass never gets there
    assert rule("starts at 00:01:05\nends at 00:01:10", ExtractContext()) == (0.0, 0.0)
    assert rule("I cannot tell", ExtractContext()) is None


def test_charades_metrics() -> None:
    task = load_task("charades_sta")
    doc = sample_docs(task)[0]  # gold 1.0 - 2.5
    sample = task.process(doc, Response(text="The event happens in the 1.5 - 3.0 seconds."))
    assert sample.items["miou"] == pytest.approx(1.0 / 2.0)
    assert (sample.items["recall_at_iou_0.3"], sample.items["recall_at_iou_0.5"],
            sample.items["recall_at_iou_0.7"]) == (1.0, 1.0, 0.0)
    missing = task.process(doc, Response(text="no idea"))
    assert missing.items["miou"] == 0.0 and missing.parse_error


# ---- the fixtures' media hold what the rows say


def test_worldsense_beep_plays_while_the_square_is_shown() -> None:
    task = load_task("worldsense")
    audio = load_video_audio(Path(task.media_root) / "videos" / "beep_red_square.mp4")
    rms = [float(np.sqrt(np.mean(audio[i * 4000:(i + 1) * 4000] ** 2))) for i in range(16)]  # quarter seconds
    assert max(rms[:3]) < 0.05 and min(rms[5:11]) > 0.2 and max(rms[13:]) < 0.05


def test_worldsense_three_noise_bursts() -> None:
    task = load_task("worldsense")
    audio = load_video_audio(Path(task.media_root) / "videos" / "three_bursts.mp4")
    loud = np.convolve(np.abs(audio) > 0.1, np.ones(400), "same") > 0
    assert int(np.sum(np.diff(loud.astype(int)) == 1)) == 3
