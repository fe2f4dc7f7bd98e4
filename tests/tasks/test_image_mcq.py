"""Image multiple-choice family (MMBench-CN, MMStar, RealWorldQA, AI2D, CV-Bench, MME-RealWorld,
SEED-Bench-2-Plus, MMMU val, MMMU-Pro standard/vision): exact protocol prompts, media, the paper-era
extraction quirks, oracle/wrong-model scores and each benchmark's aggregation."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from harness.api import ImagePart, Response
from tests.tasks.helpers import (
    answer_all, doc_by_id as doc, load_task, oracle_response, sample_docs, validate_with_oracle,
)

TASKS = ["mmbench_cn_dev", "mmstar", "realworldqa", "ai2d", "cv_bench", "mme_realworld", "seedbench_2_plus",
         "mmmu_val", "mmmu_pro_standard", "mmmu_pro_vision"]
PRIMARY_IS_EVERY_QUESTION = [t for t in TASKS if t != "mmmu_val"]  # mmmu_val's primary cannot credit open answers


@pytest.fixture(scope="module")
def tasks():
    return {name: load_task(name) for name in TASKS}



PROMPTS = {
    ("mmbench_cn_dev", "2"): "图中是哪种动物？ There are several options:\nA. 狗\nB. 马\nC. 猫\nD. 鹦鹉\n"
                             "\n请直接使用所提供的选项字母作为答案回答。",
    ("mmbench_cn_dev", "1"): "图片拍摄于桌面上方。 图中是哪种饮品？ There are several options:\nA. 橙汁\nB. 咖啡\nC. 牛奶\nD. 红酒\n"
                             "\n请直接使用所提供的选项字母作为答案回答。",
    ("mmstar", "1"): "Is the rocket standing on the ground?\nOptions: A: yes, B: no\n"
                     "Answer with the option's letter from the given choices directly",
    ("realworldqa", "0"): "Is the rocket in flight or on the ground?\nA. In flight\nB. On the ground\n"
                          "Please answer directly with only the letter of the correct option and nothing else.",
    ("ai2d", "2"): "Which label marks the triangle?\nA. X\nB. Y\nC. Z\n"
                   "Answer with the option's letter from the given choices directly.",
    ("cv_bench", "1"): "Note: You only need to respond with A, B without providing any additional information.\n\n"
                       "Considering the relative positions of the blue box and the green box in the image provided, "
                       "where is the blue box located with respect to the green box? Select from the following "
                       "choices.\n(A) left\n(B) right",
    ("mme_realworld", "1"): "What is the colour of the animal's fur? The choices are listed below:\n(A) Black\n"
                            "(B) White\n(C) Green\n(D) Orange and brown striped\n"
                            "(E) The image does not feature the animal.\nSelect the best answer to the above "
                            "multiple-choice question based on the image. Respond with only the letter (A, B, C, D, "
                            "or E) of the correct option.\nThe best answer is: ",
    ("seedbench_2_plus", "3"): "What discount does the sale offer on shoes?\nA. 20%\nB. 50%\nC. 10%\nD. 5%\n"
                               "Answer with the option's letter from the given choices directly.",
    ("mmmu_val", "validation_Design_2"): "Which of the two pictures shows a drink, <image 2> or <image 1>?\n"
                                         "A. <image 1>\nB. <image 2>\n\n"
                                         "Answer with the option's letter from the given choices directly.",
    ("mmmu_val", "validation_Math_3"): "<image 1> How many red squares are in the figure?\n\n"
                                       "Answer the question using a single word or phrase.",
    ("mmmu_pro_standard", "test_Math_3"): "What is 6 x 7?\nA. 36\nB. 40\nC. 42\nD. 48\nE. 49\nF. 54\nG. 56\nH. 63\n"
                                          "I. 64\nJ. 72\n\nAnswer with the option letter from the given choices "
                                          "directly.",
    ("mmmu_pro_vision", "test_Math_1"): "Answer with the option letter from the given choices directly.",
}


@pytest.mark.parametrize("name, doc_id", list(PROMPTS))
def test_prompt_snapshots(tasks, name: str, doc_id: str) -> None:
    assert tasks[name].build_request(doc(tasks[name], doc_id)).text() == PROMPTS[(name, doc_id)]


def test_generation_lengths_follow_each_protocol(tasks) -> None:
    expected = {"mmbench_cn_dev": 256, "mmstar": 32, "realworldqa": 16, "ai2d": 16, "cv_bench": 1024,
                "mme_realworld": 16, "seedbench_2_plus": 16, "mmmu_val": 16, "mmmu_pro_standard": 256,
                "mmmu_pro_vision": 256}
    assert {n: t.config.generation.max_new_tokens for n, t in tasks.items()} == expected


def test_choice_lists_come_from_wherever_the_options_live(tasks) -> None:
    assert tasks["mmstar"].build_request(doc(tasks["mmstar"], "0")).choices == ("A", "B", "C", "D")
    assert tasks["realworldqa"].build_request(doc(tasks["realworldqa"], "1")).choices == ()  # a number question
    assert tasks["mme_realworld"].build_request(doc(tasks["mme_realworld"], "0")).choices == tuple("ABCDE")
    assert tasks["mmmu_pro_standard"].build_request(doc(tasks["mmmu_pro_standard"], "test_Art_2")).choices == \
        tuple("ABCDEFGHIJ")


def test_mmmu_images_follow_the_tags_in_sorted_order(tasks) -> None:
    task = tasks["mmmu_val"]
    media = task.build_request(doc(task, "validation_Design_2")).media()
    assert [Path(m.path).name for m in media] == ["rocket.jpg", "coffee.jpg"]  # image_1, image_2 (tags in options)
    no_image = tasks["mmmu_pro_standard"].build_request(doc(tasks["mmmu_pro_standard"], "test_Math_3"))
    assert list(no_image.media()) == []


def test_mme_realworld_base64_image_is_materialised(tasks, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    task = tasks["mme_realworld"]
    row = doc(task, "2")
    (image,) = task.build_request(row).media()
    assert isinstance(image, ImagePart) and image.path.startswith(str(tmp_path))
    assert Path(image.path).read_bytes() == base64.b64decode(row["bytes"])


def test_rows_without_an_id_column_are_numbered(tasks) -> None:
    assert [tasks["ai2d"].doc_id(d) for d in sample_docs(tasks["ai2d"])] == ["0", "1", "2", "3"]


def test_seedbench_image_choices_become_the_image_token(tasks) -> None:
    task = tasks["seedbench_2_plus"]
    row = {**doc(task, "0"), "choice_C": "images/option_c.png"}
    assert "\nC. <image>\n" in task.build_request(row).text()


# ---- extraction through each task (its doc supplies options and question)

EXTRACTION = [
    ("mmbench_cn_dev", "2", "C", "C"),
    ("mmbench_cn_dev", "2", "答案是 C", "C"),
    ("mmbench_cn_dev", "2", "我认为是猫", "C"),  # unique option text
    ("mmstar", "0", "(b) A cat", "B"),
    ("mmstar", "0", "Answer: B", "A"),  # MMStar reads the first character
    ("realworldqa", "0", "On the ground.", "B"),  # option text inside the response
    ("realworldqa", "0", "The answer is B", "The answer is B"),  # scored wrong
    ("realworldqa", "1", "One", "1"),
    ("realworldqa", "1", "One.", "One"),  # number words only when they are the whole response
    ("ai2d", "0", "B. larva", "B"),
    ("ai2d", "0", "The answer is B.", "The answer is B."),  # scored wrong
    ("cv_bench", "0", "(b)", "B"),
    ("cv_bench", "0", "The answer is B", "T"),
    ("mme_realworld", "0", "The best answer is: (B)", "B"),
    ("mme_realworld", "0", "", "A"),
    ("seedbench_2_plus", "0", "B. 2022", "B"),
    ("seedbench_2_plus", "0", "The tallest is B", "T"),
    ("mmmu_val", "validation_Art_1", "(B) A cat", "B"),
    ("mmmu_val", "validation_Art_1", "It is a cat, I am sure of it", "B"),  # > 5 words: option text
    ("mmmu_pro_standard", "test_Art_2", "The answer is J.", "J"),
    ("mmmu_pro_standard", "test_Art_2", "A cup of hot coffee is served", "A"),  # "A " is a letter candidate
    ("mmmu_pro_vision", "test_Math_1", " C\n", "C"),
    ("mmmu_pro_vision", "test_Math_1", "C. 42", "C. 42"),  # never parsed
]


@pytest.mark.parametrize("name, doc_id, response, expected", EXTRACTION)
def test_extraction(tasks, name: str, doc_id: str, response: str, expected: str) -> None:
    task = tasks[name]
    assert task.process(doc(task, doc_id), Response(text=response)).prediction == expected


@pytest.mark.parametrize("name, doc_id, response, correct", [
    ("realworldqa", "0", "b", 1.0),  # exact match ignores case
    ("ai2d", "0", "b.", 1.0),  # kept whole, then exact match drops case and punctuation
    ("ai2d", "0", "B larva", 0.0),
    ("mme_realworld", "0", "B", 1.0),
    ("mmmu_pro_vision", "test_Math_1", "C.", 0.0),  # exact equality with the gold letter
    ("mmmu_pro_vision", "test_Math_1", "c", 0.0),
])
def test_item_scores(tasks, name: str, doc_id: str, response: str, correct: float) -> None:
    task = tasks[name]
    sample = task.process(doc(task, doc_id), Response(text=response))
    assert sample.items[task.config.primary_metric] == correct


def test_open_question_scores(tasks) -> None:
    task = tasks["mmmu_val"]
    sample = task.process(doc(task, "validation_Math_3"), Response(text="There are 3 red squares."))
    assert 3.0 in sample.prediction
    assert sample.items == {"mmmu_acc": 1.0, "mmmu_acc_lmms05": 0.0}


# ---- oracle, wrong model, aggregation


def _wrong(task, row: dict) -> Response:
    gold = task.target(row)
    letters = [c for c in task.choices(row) if c != gold] or ["Z"]
    return Response(text="0" if gold.isdigit() and not task.choices(row) else letters[0])


@pytest.mark.parametrize("name", PRIMARY_IS_EVERY_QUESTION)
def test_oracle_scores_best_and_wrong_model_worst(tasks, name: str) -> None:
    task = tasks[name]
    right = answer_all(task, lambda d: oracle_response(task, d))
    wrong = answer_all(task, lambda d: _wrong(task, d))
    for metric, value in task.aggregate(right).items():
        assert value.value == pytest.approx(100.0), metric
    for metric, value in task.aggregate(wrong).items():
        assert value.value == pytest.approx(0.0), metric


def test_mmmu_val_paper_era_score_cannot_credit_open_questions(tasks) -> None:
    task = tasks["mmmu_val"]
    right = task.aggregate(answer_all(task, lambda d: oracle_response(task, d)))
    assert right["mmmu_acc"].value == pytest.approx(100.0)
    assert right["mmmu_acc_lmms05"].value == pytest.approx(75.0)  # 3 choice questions of 4
    wrong = task.aggregate(answer_all(task, lambda d: _wrong(task, d)))
    assert wrong["mmmu_acc"].value == wrong["mmmu_acc_lmms05"].value == 0.0


def test_mmstar_average_is_unweighted_over_l2_categories(tasks) -> None:
    task = tasks["mmstar"]
    samples = answer_all(task, lambda d: Response(text="C" if d["index"] == 0 else d["answer"]))  # one slip
    scores = task.aggregate(samples)
    assert scores["macro_accuracy"].value == pytest.approx(100 * (0.5 + 1 + 1) / 3)  # 3 l2 groups
    assert scores["accuracy"].value == pytest.approx(75.0)


def test_cv_bench_official_overall_versus_plain_mean(tasks) -> None:
    task = tasks["cv_bench"]
    # wrong on one ADE20K question (of 2) and one Omni3D question (of 2); COCO right
    samples = answer_all(task, lambda d: Response(text="D" if d["idx"] in (0, 3) else task.target(d)))
    scores = task.aggregate(samples)
    assert scores["macro_accuracy"].value == pytest.approx(100 * 0.5 * ((0.5 + 1.0) / 2 + 0.5))  # 62.5
    assert scores["accuracy"].value == pytest.approx(60.0)  # lmms-eval cv_bench_acc: 3 of 5
    assert task.breakdown(samples)["source"] == pytest.approx({"ADE20K": 50.0, "COCO": 100.0, "Omni3D": 50.0})


def test_seedbench_breakdown_by_image_type(tasks) -> None:
    task = tasks["seedbench_2_plus"]
    samples = answer_all(task, lambda d: Response(text="A" if d["question_image_type"] == "chart" else d["answer"]))
    assert task.aggregate(samples)["accuracy"].value == pytest.approx(50.0)
    assert task.breakdown(samples)["question_image_type"] == {"chart": 0.0, "map": 100.0, "web": 100.0}


def test_mmbench_cn_is_circular(tasks) -> None:
    task = tasks["mmbench_cn_dev"]
    samples = answer_all(task, lambda d: Response(text="A" if d["index"] == 1_000_002 else d["answer"]))
    assert task.aggregate(samples)["circular_accuracy"].value == pytest.approx(75.0)  # one copy wrong


@pytest.mark.parametrize("name", TASKS)
def test_validate_passes(name: str, tmp_path: Path) -> None:
    assert validate_with_oracle(name, tmp_path) == {name: []}
