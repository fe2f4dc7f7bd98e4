"""Video-MME: the exact protocol prompt, 1-fps video requests, the paper-era extraction, and a fixture whose
answers are true of its generated videos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from harness.api import MediaError, Response, VideoPart
from harness.media import load_video_frames
from harness.preflight import check_media
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

PROMPT_001_1 = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option.\n"
    "What colour is the square that moves across the screen?\n"
    "A. Red.\nB. Green.\nC. Blue.\nD. Yellow.\n"
    "\nAnswer with the option's letter from the given choices directly."
)


@pytest.fixture(scope="module")
def task():
    return load_task("videomme")


def test_prompt_snapshot(task) -> None:
    request = task.build_request(sample_docs(task)[0])
    assert request.doc_id == "001-1"
    assert request.text() == PROMPT_001_1
    assert request.choices == ("A", "B", "C", "D")


def test_request_names_the_video_at_one_fps(task) -> None:
    (video,) = task.build_request(sample_docs(task)[0]).media()
    assert isinstance(video, VideoPart)
    assert video.path.endswith("videomme/sample/data/shapes_red_square_left_to_right.mp4")
    assert (video.fps, video.max_frames, video.use_audio) == (1.0, 64, False)


def test_missing_video_is_reported_against_the_sample(task) -> None:
    doc = {**sample_docs(task)[0], "videoID": "no_such_video"}
    with pytest.raises(MediaError, match="no_such_video.mp4"):
        check_media(task.build_request(doc))


@pytest.mark.parametrize("response, letter", [
    ("C", "C"),
    ("The best answer is C.", "C"),
    ("The correct answer is (B) From right to left.", "B"),
    ("As shown in the video, the square is red.", "A"),  # protocol quirk: the first capital A-D anywhere
    ("the square is red and it moves steadily from one side of the screen to the other", ""),  # >10 words, no A-D
])
def test_paper_era_extraction(task, response: str, letter: str) -> None:
    doc = sample_docs(task)[0]
    assert task.extract(doc, Response(text=response)) == letter


def test_oracle_scores_full_marks_and_wrong_letters_zero(task) -> None:
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    wrong = answer_all(task, lambda doc: Response(text="B" if doc["answer"] != "B" else "C"))
    assert task.aggregate(right)["accuracy"].value == pytest.approx(100.0)
    assert task.aggregate(wrong)["accuracy"].value == pytest.approx(0.0)
    assert {s.cluster for s in right} == {doc["videoID"] for doc in sample_docs(task)}
    assert set(task.breakdown(right)["task_type"]) >= {"Counting Problem", "Temporal Reasoning"}


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("videomme", tmp_path) == {"videomme": []}


# ---- the fixture's answers are true of its videos


def _frames(task, video_id: str) -> np.ndarray:
    frames, _ = load_video_frames(Path(task.media_root) / "data" / f"{video_id}.mp4", fps=1.0)
    return frames.astype(int)


def _mask(frames: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.abs(frames - np.array(rgb)).sum(-1) < 90


def test_red_square_moves_left_to_right(task) -> None:
    red = _mask(_frames(task, "shapes_red_square_left_to_right"), (220, 30, 30))
    centres_x = [np.nonzero(m)[1].mean() for m in red]
    assert all(m.any() for m in red) and np.all(np.diff(centres_x) > 5)


def test_three_blue_circles(task) -> None:
    blue = _mask(_frames(task, "shapes_three_blue_circles_bouncing"), (40, 80, 230))
    assert [ndimage.label(m)[1] for m in blue] == [3] * len(blue)


def test_square_turns_from_green_to_yellow(task) -> None:
    frames = _frames(task, "shapes_square_green_then_yellow")
    assert _mask(frames[0], (30, 180, 60)).sum() > 100 and _mask(frames[-1], (240, 220, 40)).sum() > 100
