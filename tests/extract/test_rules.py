"""Each extraction rule against tricky responses taken from its protocol."""

from __future__ import annotations

import pytest

from harness.extract.base import ExtractContext, get_rule
from harness.extract.mmbench import mmbench_random_letter

OPTIONS = {"A": "a red square", "B": "a blue circle", "C": "a green triangle", "D": "nothing"}
CTX = ExtractContext(options=OPTIONS)


@pytest.mark.parametrize("response, expected", [
    ("B", "B"),
    ("The best answer is C.", "C"),
    ("The answer is (D)", "D"),
    ("As shown in the video, the answer is C", "A"),  # the first capital A-D anywhere: "As" counts
    ("It is hard to tell what happens in this clip, since the objects move around a lot", ""),  # > 10 words, no A-D
    ("i think it is b", ""),  # lower-case letters are not options
    ("The correct answer isD", "D"),
    ("", ""),
])
def test_videomme(response, expected):
    assert get_rule("videomme")(response, CTX) == expected


@pytest.mark.parametrize("response, expected", [
    ("A", "A"), ("(B) a blue circle", "B"), ("Answer: C.", "C"), ("I choose D)", "D"),
    ("A or B", None),  # two letters: undecided
    ("It is a green triangle.", "C"),  # option text, unique
    ("Sorry, I cannot answer. A", None),  # refusals never match a letter
    ("something else", None),
])
def test_mmbench_vlmevalkit(response, expected):
    assert get_rule("mmbench_vlmevalkit")(response, CTX) == expected


def test_mmbench_random_fallback_is_seeded_and_may_be_wrong_e():
    row = {"A": "x", "B": "y", "C": "nan", "D": None, "index": 3}  # empty cells still count as columns
    draws = {mmbench_random_letter(row, doc_key=str(i)) for i in range(200)}
    assert draws == set("ABCDE")  # the row's columns A-D plus the always-wrong "E", as lmms-eval 0.5.0 draws
    assert {mmbench_random_letter({"A": "x", "B": "y"}, doc_key=str(i)) for i in range(200)} == {"A", "B", "E"}
    assert mmbench_random_letter(OPTIONS, "7") == mmbench_random_letter(OPTIONS, "7")


@pytest.mark.parametrize("response, expected", [
    ("The answer is (C).", "C"), ("(A) because ... but not (B)", "A"), ("B", "B"), ("Answer: D", "D"),
    ("none of these", ""),
])
def test_gpqa(response, expected):
    assert get_rule("gpqa")(response, CTX) == expected


@pytest.mark.parametrize("response, expected", [
    ("B", "B"), ("(C) a green triangle", "C"), ("answer: d", "D"), ("It shows a blue circle.", "B"), ("hmm", ""),
])
def test_option_letter(response, expected):
    assert get_rule("option_letter")(response, CTX) == expected


def test_think_strip_and_rule_ids():
    assert get_rule("think")("<think>A? no, B</think> The answer is C", CTX) == "The answer is C"
    assert get_rule("think")("<think>still thinking", CTX) == ""
    assert get_rule("videomme").id == "videomme@1"


@pytest.mark.parametrize("response, expected", [
    ("The answer is (B) not (C)", "C"),  # several bracketed candidates: the last occurrence wins
    ("B is right", "B"), ("A.", "A"),
    ("I believe the shape shown here is a blue circle", "B"),  # > 5 words: option text
])
def test_mmmu_mcq(response, expected):
    assert get_rule("mmmu_mcq")(response, CTX) == expected


def test_mmmu_mcq_random_fallback_is_seeded_per_question():
    ctx = ExtractContext(options=OPTIONS, doc={"id": "validation_Art_1"}, seed=0)
    picks = {get_rule("mmmu_mcq")("no idea", ctx) for _ in range(5)}
    assert len(picks) == 1 and picks <= set(OPTIONS)


def test_mmmu_open_candidates():
    assert 1234.0 in get_rule("mmmu_open")("So the total is 1,234", CTX)
    assert "blue" in get_rule("mmmu_open")("The colour is blue.", CTX)


@pytest.mark.parametrize("rule, response, expected", [
    ("worldsense", "Because of the sound, the answer is C", "B"),  # "Because": any capital letter counts, first wins
    ("worldsense", "no letters here", "A"),
    ("mmlu_pro", "Let's think. The answer is (H).", "H"),
    ("ai2d", "C. a green triangle", "C"),
    ("ai2d", "I pick C. because", "I pick C. because"),  # a letter only counts at the start
    ("realworldqa", "Three", "3"),  # the whole response is a number word
    ("realworldqa", "There are three cars.", "There are three cars"),  # not a whole number word: kept, minus punctuation
    ("vsibench", "3.5 meters.", "3.5"),
    ("numeric", "about 1,200 people", 1200.0),
    ("charades_time", "It happens at 12.5-20 s.", (12.5, 20.0)),
    ("option_text", "it looks like a blue circle to me", "a blue circle"),
])
def test_protocol_rules(rule, response, expected):
    assert get_rule(rule)(response, CTX) == expected


MMAU_OPTIONS = {"A": "Dog barking", "B": "Rain", "C": "Car horn"}  # three choices: D maps to nothing


@pytest.mark.parametrize("response, expected", [
    ("B", "Rain"),
    ("(C) Car horn", "Car horn"),
    ("The answer is B.", "Rain"),  # trailing "." stripped, then " B " found
    ("A.", "Dog barking"),  # "A." stripped to "A"
    ("Options A and C fit, but C is better", "Car horn"),  # several: the LAST " X " wins
    ("(A) or (B)", "Dog barking"),  # several bracketed: rfind(" X ") is -1 for both, so the first
    ("D", ""),  # a letter past the last choice (lmms-eval raises IndexError): scored wrong
    ("E", None),  # E is never a candidate (A-D only): random letter, seeded per question
])
def test_mmau(response, expected):
    got = get_rule("mmau")(response, ExtractContext(options=MMAU_OPTIONS, doc={"id": "q1"}))
    if expected is None:
        assert got in {"Dog barking", "Rain", "Car horn", ""}
    else:
        assert got == expected


def test_mmau_random_fallback_is_seeded_per_question():
    def draw(qid: str, seed: int = 0) -> str:
        return get_rule("mmau")("no idea", ExtractContext(options=OPTIONS, doc={"id": qid}, seed=seed))

    assert [draw(str(i)) for i in range(40)] == [draw(str(i)) for i in range(40)]
    assert {draw(str(i)) for i in range(40)} == set(OPTIONS.values())
    assert [draw(str(i), seed=1) for i in range(40)] != [draw(str(i)) for i in range(40)]


@pytest.mark.parametrize("response, expected", [
    ("The answer is (J).", "J"), ("the answer is B", "B"), ("answer is I", "I"),
    ("B", ""),  # no "answer is": a parse error, as in lmms-eval's custom-extract
    ("The Answer is (C)", ""),  # case-sensitive
])
def test_mmlu_pro(response, expected):
    assert get_rule("mmlu_pro")(response, CTX) == expected


RWQA_DOC = {"question": "Which way does the road turn?\nA. Left\nB. Straight\nC. Right\nPlease answer directly with "
                        "only the letter of the correct option and nothing else."}


@pytest.mark.parametrize("response, expected", [
    ("C", "C"), ("(C)", "C"), ("C. Right", "C"),  # option text found after punctuation is removed
    ("It turns right", "It turns right"),  # option texts match case-sensitively
    ("The answer is C", "The answer is C"),  # the YAML regex "(\\([A-Z]\\))" is never applied
    ("Left or Right", "A"),  # the leftmost option text wins
])
def test_realworldqa_reads_the_options_from_the_question(response, expected):
    assert get_rule("realworldqa")(response, ExtractContext(doc=RWQA_DOC)) == expected


@pytest.mark.parametrize("response, expected", [
    ("B", "B"), ("b", "B"), ("(c) green", "C"), ("Option D", "D"), ("The answer is A.", "A"),
    ("Answer: B", "A"),  # MMStar compares the first character: "a" of "Answer"
    ("I think B", ""), ("", ""),
])
def test_mmstar(response, expected):
    assert get_rule("mmstar")(response, CTX) == expected


@pytest.mark.parametrize("response, expected", [
    ("B", "B"), ("(b) 3", "B"), (" C.", "C"), ("The answer is B", "T"), ("", ""), ("42", ""),
])
def test_cv_bench(response, expected):
    assert get_rule("cv_bench")(response, CTX) == expected


@pytest.mark.parametrize("response, expected", [
    ("E", "E"), ("The best answer is: (D)", "D"), ("Best option: C", "C"),
    ("As the picture shows, it is D", "A"),  # the first capital A-E anywhere
    ("", "A"),  # empty text is "in" "(a)": the reference answers A
    ("b", "B"), ("(c)", "C"),  # no capital letter: the choice "(X)" containing the text
    ("the vehicle in the picture is parked next to a tall building on the left", ""),  # > 10 words, no A-E
    ("xyz", ""),
])
def test_mme_realworld(response, expected):
    assert get_rule("mme_realworld")(response, CTX) == expected


def test_streamingbench_takes_the_raw_first_character():
    rule = get_rule("streamingbench")
    assert rule("B. a blue circle", CTX) == "B" and rule("Bb", CTX) == "B"
    assert rule(" B", CTX) == " " and rule("b", CTX) == "b" and rule("The answer is B", CTX) == "T"
    assert rule("", CTX) == "" and rule.id == "streamingbench@1"


def test_first_char():
    assert get_rule("first_char")("  B. a blue circle", CTX) == "B"
    assert get_rule("first_char")("The answer is B", CTX) == "T"
    assert get_rule("first_char")("", CTX) == ""


def test_mmmu_open_follows_the_reference_number_pattern_and_shortest_tail():
    assert 12.0 not in get_rule("mmmu_open")("it weighs 12kg", CTX)  # \d+\b: no number inside a word
    assert 12.0 in get_rule("mmmu_open")("it weighs 12 kg", CTX)
    assert get_rule("mmmu_open").id == "mmmu_open@2"
