"""MathVision answer extraction (rule mathvision@1) and equivalence, cases from lmms-eval 0.5.x
``mathvision_process_results`` and the MathVision authors' ``eval_utils`` (quirks included)."""

from __future__ import annotations

import importlib.util

import pytest

from harness.extract.base import ExtractContext, get_rule
from harness.extract.mathvision import find_math_answer, mathvision_correct, mathvision_equal, strip_answer

# latex2sympy2 is installed with --no-deps (see pyproject.toml); without it these comparisons cannot run.
needs_latex2sympy = pytest.mark.skipif(importlib.util.find_spec("latex2sympy2") is None,
                                       reason="needs `pip install --no-deps latex2sympy2==1.9.1`")


def extract(text: str) -> str:
    return get_rule("mathvision")(text, ExtractContext())


@pytest.mark.parametrize("response, answer", [
    ("Step 1 ... so the final answer is \\boxed{5}.", "5"),
    ("First \\boxed{3}, then correcting: \\boxed{4}", "4"),  # several boxes: only the last counts
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("The answer is 12.", "12"),  # "... is <number>"
    ("So the answer is 7 cm. Done", "7cm"),  # cue: first line, up to ". "
    ("The correct answer is (C).", "c"),  # ends with " (C)." -> the letter, lower-cased later
    ("B\nBecause the square is shaded.", "b"),  # starts with "B\n"
    ("(B) B\nwhy", "b"),
    ("x = 2\\sqrt3", "2\\sqrt{3}"),  # value after "=", \sqrt braced
    ("\\boxed{45^{\\circ}}", "45"),  # degrees dropped
    ("\\boxed{\\text{B}}", "b"),  # \text dropped, {b} -> b
    ("\\boxed{\\dfrac{3}{4}}", "\\frac{3}{4}"),
    ("\\boxed{0.5}", "\\frac{1}{2}"),  # the MATH quirk: 0.5 becomes a fraction
    ("\\boxed{3/4}", "\\frac{3}{4}"),
    ("\\boxed{12\\%}", "12"),
    ("\\boxed{(2, 3)}", "(2,3)"),
    ("", ""),
])
def test_extraction(response: str, answer: str) -> None:
    assert extract(response) == answer


def test_normalisation_quirks() -> None:
    assert strip_answer("\\frac12") == "\\frac12"  # fractions are re-braced only when sqrt occurs
    assert strip_answer("\\frac12\\sqrt2") == "\\frac{1}{2}\\sqrt{2}"
    assert strip_answer(".5") == "\\frac{1}{2}" and strip_answer("3/x") == "3/x"  # ".5" -> "0.5" -> \\frac
    assert find_math_answer("\\boxed{1} and \\boxed{2}") == "1"  # greedy box, then cut at the first "}"
    assert find_math_answer("x = 3 \\approx 2.9") == "2.9"


@needs_latex2sympy
@pytest.mark.parametrize("answer, gold, equal", [
    ("b", "B", True),  # case-blind
    ("0.25", "\\frac{1}{4}", True),  # LaTeX values at 2 decimals
    ("\\frac{2}{8}", "\\frac{1}{4}", True),
    ("0.26", "\\frac{1}{4}", False),
    ("3.141", "\\pi", True),  # round(pi, 2) == round(3.141, 2)
    ("2\\sqrt{3}", "\\sqrt{12}", True),
    ("(2.0,3)", "(2,3)", True),  # tuples element by element
    ("(3,2)", "(2,3)", False),
    ("", "", False),  # empty never matches
    ("x", "x+0", False),  # symbols cannot be evaluated: not equal
    ("10^{10^{10}}", "1", False),  # refused instead of hanging
])
def test_equivalence(answer: str, gold: str, equal: bool) -> None:
    assert mathvision_equal(answer, gold) is equal


@needs_latex2sympy
def test_option_text_counts_for_multiple_choice() -> None:
    options = ["circle", "square", "triangle"]
    assert mathvision_correct("square", "B", options) and mathvision_correct("b", "B", options)
    assert not mathvision_correct("circle", "B", options)
    assert not mathvision_correct("", "3", [])
    with pytest.raises(ValueError):
        mathvision_correct("a", "F", options)


def test_missing_latex2sympy_names_the_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "latex2sympy2", None)  # makes `import latex2sympy2` fail
    with pytest.raises(ImportError, match="--no-deps latex2sympy2==1.9.1"):
        mathvision_equal("b", "b")  # loaded for every comparison, even one that strings decide
