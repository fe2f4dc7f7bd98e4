"""VQA v2 accuracy against lmms-eval 0.5.0 (tag v0.5 @ 8f142bc): ``tasks/vqav2/utils.py`` ``vqav2_process_results``
with ``tasks/_task_utils/vqa_eval_metric.py`` ``EvalAIAnswerProcessor`` (EvalAI's processor, via mmf).

Everything named ``Reference*``/``reference_*`` below is a TRANSCRIPTION of that code (its contraction and number
tables copied as data), kept in this test only as an independent oracle. Our per-sample ``vqa_accuracy`` with
``always_normalize`` (as vqav2_speech runs it) must equal the reference's on every case.
"""

from __future__ import annotations

import re
import statistics

import pytest

from harness.metrics.base import get_metric
from tests.tasks.helpers import load_task

REFERENCE_CONTRACTIONS = {
    'aint': "ain't", 'arent': "aren't", 'cant': "can't", 'couldve': "could've", 'couldnt': "couldn't", "couldn'tve":
    "couldn't've", "couldnt've": "couldn't've", 'didnt': "didn't", 'doesnt': "doesn't", 'dont': "don't", 'hadnt':
    "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", 'hasnt': "hasn't", 'havent': "haven't", 'hed':
    "he'd", "hed've": "he'd've", "he'dve": "he'd've", 'hes': "he's", 'howd': "how'd", 'howll': "how'll", 'hows':
    "how's", "Id've": "I'd've", "I'dve": "I'd've", 'Im': "I'm", 'Ive': "I've", 'isnt': "isn't", 'itd': "it'd",
    "itd've": "it'd've", "it'dve": "it'd've", 'itll': "it'll", "let's": "let's", 'maam': "ma'am", 'mightnt':
    "mightn't", "mightnt've": "mightn't've", "mightn'tve": "mightn't've", 'mightve': "might've", 'mustnt':
    "mustn't", 'mustve': "must've", 'neednt': "needn't", 'notve': "not've", 'oclock': "o'clock", 'oughtnt':
    "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", 'shant': "shan't", "shed've":
    "she'd've", "she'dve": "she'd've", "she's": "she's", 'shouldve': "should've", 'shouldnt': "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": 'somebodyd', "somebodyd've":
    "somebody'd've", "somebody'dve": "somebody'd've", 'somebodyll': "somebody'll", 'somebodys': "somebody's",
    'someoned': "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've", 'someonell':
    "someone'll", 'someones': "someone's", 'somethingd': "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", 'somethingll': "something'll", 'thats': "that's", 'thered': "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", 'therere': "there're", 'theres': "there's", 'theyd':
    "they'd", "theyd've": "they'd've", "they'dve": "they'd've", 'theyll': "they'll", 'theyre': "they're", 'theyve':
    "they've", 'twas': "'twas", 'wasnt': "wasn't", "wed've": "we'd've", "we'dve": "we'd've", 'weve': "we've",
    'werent': "weren't", 'whatll': "what'll", 'whatre': "what're", 'whats': "what's", 'whatve': "what've", 'whens':
    "when's", 'whered': "where'd", 'wheres': "where's", 'whereve': "where've", 'whod': "who'd", "whod've":
    "who'd've", "who'dve": "who'd've", 'wholl': "who'll", 'whos': "who's", 'whove': "who've", 'whyll': "why'll",
    'whyre': "why're", 'whys': "why's", 'wont': "won't", 'wouldve': "would've", 'wouldnt': "wouldn't", "wouldnt've":
    "wouldn't've", "wouldn'tve": "wouldn't've", 'yall': "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", 'youd': "you'd", "youd've":
    "you'd've", "you'dve": "you'd've", 'youll': "you'll", 'youre': "you're", 'youve': "you've"
}
REFERENCE_NUMBER_MAP = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                        "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
REFERENCE_ARTICLES = ["a", "an", "the"]
REFERENCE_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
REFERENCE_COMMA_STRIP = re.compile(r"(?<=\d)(\,)+(?=\d)")
REFERENCE_PUNCTUATIONS = [";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
                          ",", "?", "!"]


def reference_process_punctuation(in_text: str) -> str:
    out_text = in_text
    for p in REFERENCE_PUNCTUATIONS:
        if (p + " " in in_text or " " + p in in_text) or (re.search(REFERENCE_COMMA_STRIP, in_text) is not None):
            out_text = out_text.replace(p, "")
        else:
            out_text = out_text.replace(p, " ")
    return REFERENCE_PERIOD_STRIP.sub("", out_text, re.UNICODE)


def reference_process_digit_article(in_text: str) -> str:
    out_text = []
    for word in in_text.lower().split():
        word = REFERENCE_NUMBER_MAP.setdefault(word, word)
        if word not in REFERENCE_ARTICLES:
            out_text.append(word)
    for word_id, word in enumerate(out_text):
        if word in REFERENCE_CONTRACTIONS:
            out_text[word_id] = REFERENCE_CONTRACTIONS[word]
    return " ".join(out_text)


def reference_vqav2_accuracy(answers: list[str], result: str) -> float:
    """vqav2_process_results' ``exact_match`` for one response (answer dicts reduced to their texts, each
    annotator distinct, as the answer_id field makes them in the dataset)."""
    cleaned = []
    for answer in answers:
        answer = answer.replace("\n", " ").replace("\t", " ").strip()
        cleaned.append(reference_process_digit_article(reference_process_punctuation(answer)))
    res_ans = result.replace("\n", " ").replace("\t", " ").strip()
    res_ans = reference_process_digit_article(reference_process_punctuation(res_ans))
    gt_acc = []
    for i in range(len(cleaned)):
        others = [a for j, a in enumerate(cleaned) if j != i]
        gt_acc.append(min(1, float(sum(a == res_ans for a in others)) / 3))
    return statistics.mean(gt_acc)


GOLD_SETS = {
    "numbers": ["1,000"] * 4 + ["1000"] * 3 + ["1,,000", "one thousand", "100"],
    "comma_runs": ["2,,3"] * 3 + ["2,3"] * 3 + ["23"] * 2 + ["2 3", "two"],
    "words": ["black and white"] * 5 + ["black-and-white"] * 2 + ["black & white", "b/w", "gray"],
    "contractions": ["dont know"] * 4 + ["don't know"] * 3 + ["Im not sure", "I'm not sure", "no"],
    "counts": ["2"] * 6 + ["two"] * 2 + ["3", "2."],
    "time": ["12:30"] * 5 + ["12.30", "1230", "12:30 pm", "half past twelve", "noon"],
}
RESPONSES = [
    "1,000", "1,,000", "1,,,000", "1000", "1, 000", "One thousand.", "2,,3", "2,3", "23", "2, ,3", "a,,b 1,,2",
    "Black and White", "black-and-white", "black - and - white", "(black and white)", "black,,white", "b/w",
    "dont know", "Don't know.", "Im not sure", "I'm not sure!", "two", "Two.", "2", " 2\n", "2.", "\t2\t",
    "12:30", "12.30", "12:30.", "the 12:30", "an answer;", "yes,,,no", "", "   ",
]


@pytest.mark.parametrize("golds", list(GOLD_SETS.values()), ids=list(GOLD_SETS))
def test_per_sample_accuracy_equals_the_reference(golds: list[str]) -> None:
    metric = get_metric("vqa_accuracy")
    for response in RESPONSES:
        ours = metric.item(response, golds, always_normalize=True)
        assert ours == pytest.approx(reference_vqav2_accuracy(golds, response)), repr(response)


def test_a_run_of_commas_between_digits_strips_every_mark() -> None:
    """EvalAI's comma rule: ``1,,000`` deletes punctuation (GT-Vision-Lab's single-comma rule would space it)."""
    golds = ["1000"] * 10
    assert get_metric("vqa_accuracy").item("1,,000", golds, always_normalize=True) == 1.0
    assert reference_vqav2_accuracy(golds, "1,,000") == 1.0


def test_vqav2_speech_runs_the_always_normalised_reference() -> None:
    task = load_task("vqav2_speech")
    assert task.config.metric_options["vqa_accuracy"]["always_normalize"] is True
