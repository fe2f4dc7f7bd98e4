"""StreamingBench Omni-Source Understanding: the reference's prompt (four option slots), the question's
timestamp as a time window on the video and its sound, first-character scoring, accuracy by task type, and a
fixture whose answers change if the model could see past the timestamp."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import DocumentError, MediaError, Response, VideoPart
from harness.extract.base import ExtractContext, get_rule
from harness.media import load_video_audio, load_video_frames
from harness.preflight import check_media
from tasks.common import clock_seconds
from tasks.fixtures.exemplars import BLUE, GREEN, RED, YELLOW
from tests.tasks.helpers import (
    answer_all, doc_by_id as doc, load_task, oracle_response, validate_with_oracle,
)

NAME = "streamingbench_omni"
HEAD = ("You are an advanced video question-answering AI assistant. You have been provided with some frames from "
        "the video and a multiple-choice question related to the video. Your task is to carefully analyze the video "
        "and provide the best answer to question, choosing from the four options provided. Respond with only the "
        "letter (A, B, C, or D) of the correct option.\n\n")


@pytest.fixture(scope="module")
def task():
    return load_task(NAME)



def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle(NAME, tmp_path) == {NAME: []}


def test_prompt_is_the_reference_template(task) -> None:
    request = task.build_request(doc(task, "Source Discrimination_sample_1_1"))
    assert request.text() == HEAD + (
        "Question: Which shape was on screen when the beep just sounded?\n\nOptions:\n"
        "A. A red square.\nB. A blue disc.\nC. A green triangle.\nD. Nothing is on screen.\n\nThe best option is:")
    assert request.choices == ("A", "B", "C", "D")
    assert request.generation.max_new_tokens == 32


def test_options_fill_four_slots_as_stored(task) -> None:
    # "A.text" (no space) is shown as stored, not re-lettered
    assert task.build_request(doc(task, "Emotion Recognition_sample_2_1")).text().endswith(
        "Options:\nA.One.\nB.Two.\nC.Three.\nD.Five.\n\nThe best option is:")
    # six stored entries: only the first four fill the template (option D is never shown)
    assert task.build_request(doc(task, "Multimodal Alignment_sample_3_1")).text().endswith(
        "Options:\nA. A yellow square.\n\nB. A blue disc.\nC. A green square.\n\nThe best option is:")
    # bare option texts are lettered A-D
    bare = {**doc(task, "Source Discrimination_sample_1_1"), "options": "['red', 'blue', 'green', 'none', 'extra']"}
    assert task.build_request(bare).text().endswith("Options:\nA. red\nB. blue\nC. green\nD. none\n\nThe best option is:")


def test_video_with_sound_up_to_the_timestamp(task) -> None:
    video = task.build_request(doc(task, "Source Discrimination_sample_1_1")).media()
    assert len(video) == 1 and isinstance(video[0], VideoPart)
    part = video[0]
    assert part.path.endswith("streamingbench_omni/sample/Source Discrimination/sample_1.mp4")
    assert (part.use_audio, part.start_time, part.end_time, part.fps, part.max_frames) == (True, None, 4.0, 1.0, 64)
    last = task.build_request(doc(task, "Source Discrimination_sample_1_2")).media()[0]
    assert last.end_time == 8.0  # the clip's duration: still inside the video
    assert task.build_request(doc(task, "Source Discrimination_sample_1_1")).hash() != \
        task.build_request(doc(task, "Source Discrimination_sample_1_2")).hash()


def test_context_seconds_keeps_only_the_last_seconds(task) -> None:
    variant = load_task(NAME, options={**task.config.options, "context_seconds": 3})
    assert variant.build_request(doc(variant, "Source Discrimination_sample_1_1")).media()[0].start_time == 1.0
    assert variant.build_request(doc(variant, "Multimodal Alignment_sample_3_1")).media()[0].start_time == 0.0


def colours(frames: np.ndarray) -> set[str]:
    named = {"red": RED, "blue": BLUE, "green": GREEN, "yellow": YELLOW}
    return {name for name, rgb in named.items() for f in frames
            if (np.abs(f.astype(int) - np.array(rgb)).sum(axis=-1) < 60).sum() > 50}


def test_fixture_answers_depend_on_what_comes_before_the_timestamp(task) -> None:
    """In the window the gold option's cue is there and the distractor is not; over the whole clip both are."""
    def seen(question_id: str, window: bool = True) -> tuple[set[str], np.ndarray]:
        part = task.build_request(doc(task, question_id)).media()[0]
        end = part.end_time if window else None
        frames, _ = load_video_frames(part.path, fps=4.0, max_frames=64, end_time=end)
        return colours(frames), load_video_audio(part.path, end_time=end)

    shapes, sound = seen("Source Discrimination_sample_1_1")
    assert shapes == {"red"} and len(sound) == 4 * 16_000 and np.abs(sound[16_000:48_000]).max() > 0.2
    assert seen("Source Discrimination_sample_1_1", window=False)[0] == {"red", "blue"}
    assert "blue" in seen("Source Discrimination_sample_1_2")[0]
    shapes, _ = seen("Multimodal Alignment_sample_3_1")
    assert shapes == {"green"} and seen("Multimodal Alignment_sample_3_1", window=False)[0] == {"green", "yellow"}
    _, sound = seen("Emotion Recognition_sample_2_1")
    loud = np.abs(sound) > 0.2
    bursts = [s for s in (0.5, 2.0, 3.5, 6.0, 7.0) if loud[int(s * 16_000): int((s + 0.3) * 16_000)].any()]
    assert bursts == [0.5, 2.0, 3.5]  # three heard by 0:05 (gold C), five over the clip (distractor D)


@pytest.mark.parametrize("response, letter", [
    ("B", "B"), ("B. A blue disc.", "B"), ("Bob", "B"),
    (" B", " "),                       # no stripping: a leading space is the first character
    ("b", "b"),                        # no case folding
    ("The best option is B", "T"),     # only the first character counts
    ("(B)", "("),
    ("", ""),                          # the reference cannot index it; scored wrong here
])
def test_first_character_rule(response: str, letter: str) -> None:
    assert get_rule("streamingbench")(response, ExtractContext()) == letter


def test_oracle_best_wrong_worst_and_accuracy_by_task_type(task) -> None:
    right = answer_all(task, lambda d: oracle_response(task, d))
    assert task.aggregate(right)["accuracy"].value == pytest.approx(100.0)
    wrong = answer_all(task, lambda d: Response(text=next(c for c in "ABCD" if c != d["answer"])))
    assert task.aggregate(wrong)["accuracy"].value == pytest.approx(0.0)
    lower = answer_all(task, lambda d: Response(text=d["answer"].lower()))
    assert task.aggregate(lower)["accuracy"].value == pytest.approx(0.0)
    # right on all but the second Source Discrimination question: micro 3/4, per task type as count.py
    mixed = answer_all(task, lambda d: Response(
        text="A" if d["question_id"] == "Source Discrimination_sample_1_2" else f"{d['answer']}. because"))
    assert task.aggregate(mixed)["accuracy"].value == pytest.approx(75.0)
    assert task.breakdown(mixed)["task_type"] == {
        "Emotion Recognition": 100.0, "Multimodal Alignment": 100.0, "Source Discrimination": 50.0}
    assert {s.cluster for s in mixed} == {"Source Discrimination_sample_1", "Emotion Recognition_sample_2",
                                          "Multimodal Alignment_sample_3"}


def test_timestamp_past_the_video_names_sample_and_file(task) -> None:
    late = {**doc(task, "Source Discrimination_sample_1_1"), "time_stamp": "00:00:30"}
    with pytest.raises(MediaError, match=r"^sample streamingbench_omni/Source Discrimination_sample_1_1: video file "
                                         r".*sample_1\.mp4: window end 30 s is beyond the file's duration of 8\.000 s"):
        check_media(task.build_request(late))
    with pytest.raises(ValueError, match="window end 0.0 s is not after 0 s"):
        task.build_request({**late, "time_stamp": "00:00:00"})


def test_question_id_names_the_video(task, monkeypatch: pytest.MonkeyPatch) -> None:
    d = doc(task, "Emotion Recognition_sample_2_1")
    assert (d["video_id"], d["video_sample"]) == ("Emotion Recognition_sample_2", "sample_2")
    from tasks.media_mcq import MediaMCQ

    monkeypatch.setattr(MediaMCQ, "docs", lambda self: iter([{**d, "question_id": "Emotion Recognition_2"}]))
    (row,) = list(task.docs())
    assert isinstance(row, DocumentError) and "'Emotion Recognition_2' is not '<task type>_sample_<n>_<k>'" in str(row)


def test_clock_seconds() -> None:
    assert clock_seconds("00:14:45") == 885.0
    assert clock_seconds("08:01") == 481.0  # MM:SS, as some of the benchmark's rows are
    assert clock_seconds("7") == 7.0 and clock_seconds(12) == 12.0 and clock_seconds(2.5) == 2.5
    with pytest.raises(DocumentError, match="'soon' is not HH:MM:SS"):
        clock_seconds("soon")
