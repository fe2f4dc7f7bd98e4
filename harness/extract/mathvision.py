"""MathVision as lmms-eval 0.5.x scores it (``tasks/mathvision``: ``mathvision_process_results`` over the
MathVision authors' ``eval_utils``): the rule that cuts the final answer out of a step-by-step response, and
the equivalence test that compares it with the gold (string, tuple, then LaTeX value through ``latex2sympy2``).

Quirks kept on purpose, since they decide scores: only the last ``\\boxed{`` counts when there are several;
the "the answer is" cues apply only when nothing is boxed; fractions are re-braced only when the answer also
contains ``sqrt``; "0.5" becomes ``\\frac{1}{2}`` and "a/b" ``\\frac{a}{b}``; values compare at two decimals.
``latex2sympy2`` is optional (:func:`harness.optional.require`); it is loaded for every comparison, so without
it each sample fails alike instead of some scoring by string alone. Its expressions are evaluated as the
reference does, with :mod:`math`'s names, but without builtins and refusing exponents above
``_MAX_EXPONENT`` (the reference would hang on "10^{10^{10}}"); such answers compare as unequal.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import re
from typing import Any, Sequence

from harness.extract.base import ExtractContext, register_rule

_MATH_NAMES = {k: v for k, v in vars(math).items() if not k.startswith("_")}  # the reference's `from math import *`
_MAX_EXPONENT = 1000


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


_CUES = ("the final answer is", "the answer is", "the correct answer is", "the answer should be")


@register_rule("mathvision", "1")
def mathvision(response: str, ctx: ExtractContext) -> str:
    """The cleaned final answer of a MathVision response (``mathvision_process_results`` up to ``is_equal``)."""
    answer = (response or "").strip()
    for c in "ABCDE":
        if (answer.endswith(f" {c}.") or answer.endswith(f" ({c}).") or answer.startswith(f"{c}\n")
                or answer.startswith(f"({c})\n") or answer.startswith(f"({c}) {c}\n")):
            answer = c
    tail = answer.split("is ")[-1].rstrip(".")
    if _is_number(tail):
        answer = tail
    if "oxed{" not in answer:
        for cue in _CUES:
            for form in (cue, cue.replace("the", "The")):
                before = answer
                answer = answer.split(form)[-1].strip()
                if form in before:
                    answer = answer.split("\n")[0].split(". ")[0]
    elif answer.count("oxed{") > 1:
        answer = "\\boxed{" + answer.split("oxed{")[-1]
    answer = find_math_answer(answer)
    for letter in "abcde":
        answer = answer.replace(f"({letter})", letter)
    for letter in "abcde":
        answer = answer.replace(f"{{{letter}}}", letter)
    return answer.rstrip(".").lstrip(":").strip()


_BOXED = re.compile("oxed{(.*)}", flags=re.S)


def find_math_answer(text: str) -> str:
    """The boxed content (greedy, to the last "}"), else the whole text, lower-cased; the part after the last
    "=" or "\\approx"; LaTeX wrappers, units and spaces removed; then :func:`strip_answer`."""
    s = text.lower().replace("{}", "")
    found = _BOXED.findall(s)
    ans = found[-1] if found else s
    if ans.find("}") != -1 and (ans.find("{") == -1 or ans.find("}") < ans.find("{")):
        ans = ans.split("}")[0]
    ans = ans.split("=")[-1].split("\\approx")[-1]
    for old, new in ((" ", ""), ("\\,", ""), ("∞", "\\infty"), ("+\\infty", "\\infty"), ("\\\\", "\\"),
                     ("\n", ""), ("\\text", ""), ("\\mbox", ""), ("bmatrix", "pmatrix"), ("\\left", ""),
                     ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("{m}^3", ""), ("m^3", ""),
                     ("{units}", ""), ("units", ""), ("{km}", ""), ("km", "")):
        ans = ans.replace(old, new)
    return strip_answer(ans)


def _brace_sqrt(s: str) -> str:
    """"\\sqrt3" -> "\\sqrt{3}" (the first character after each \\sqrt that is not a brace)."""
    head, *rest = s.split("\\sqrt")
    return head + "".join("\\sqrt{" + p[0] + "}" + p[1:] if p and p[0] != "{" else "\\sqrt" + p for p in rest)


def _brace_fracs(s: str) -> str:
    """"\\frac12" -> "\\frac{1}{2}"; a \\frac with fewer than two characters after it leaves ``s`` unchanged."""
    head, *rest = s.split("\\frac")
    out = head
    for p in rest:
        out += "\\frac"
        if p and p[0] == "{":
            out += p
            continue
        if len(p) < 2:
            return s
        a, b, post = p[0], p[1], p[2:]
        out += "{" + a + "}{" + b + "}" + post if b != "{" else "{" + a + "}" + b + post
    return out


def _slash_to_frac(s: str) -> str:
    """"3/4" (two integers written plainly) -> "\\frac{3}{4}"."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    return f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s


def strip_answer(s: str) -> str:
    """The MATH-style ``_strip_string``: line breaks, ``\\!``, doubled backslashes, tfrac/dfrac, \\left/\\right,
    degrees, dollars, a trailing "\\text{ unit}", percent signs; leading zeros for ".5"; the value after a single
    "=" or "\\approx"; braces for \\sqrt (and for \\frac, only when sqrt occurs); no spaces; "0.5" and "a/b" as
    \\frac."""
    for old, new in (("\n", ""), ("\\!", ""), ("\\\\", "\\"), ("tfrac", "frac"), ("dfrac", "frac"),
                     ("\\left", ""), ("\\right", ""), ("^{\\circ}", ""), ("^\\circ", ""), ("\\$", ""), ("$", "")):
        s = s.replace(old, new)
    s = s.split("\\text{ ")[0]
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    if len(s.split("=")) == 2:
        s = s.split("=")[-1]
    if len(s.split("\\approx")) == 2:
        s = s.split("\\approx")[-1]
    if "sqrt" in s:
        s = _brace_sqrt(s)
    s = s.replace(" ", "")
    if "sqrt" in s:
        s = _brace_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_to_frac(s)


# ---- equivalence (``is_equal``)


def _latex2sympy():
    from harness.optional import require

    with contextlib.redirect_stdout(io.StringIO()):  # ANTLR prints a runtime-version notice on every parse
        return require("latex2sympy2", "--no-deps latex2sympy2==1.9.1", "MathVision scoring").latex2sympy


def _const(node: ast.AST) -> float | None:
    """The value of a subtree made only of numbers and + - * / ** (None otherwise, or when too large)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _const(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp):
        a, b = _const(node.left), _const(node.right)
        if a is None or b is None:
            return None
        try:
            if isinstance(node.op, ast.Pow):
                return None if abs(b) > _MAX_EXPONENT else float(a) ** b
            ops = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__, ast.Div: float.__truediv__}
            op = ops.get(type(node.op))
            return None if op is None else op(float(a), float(b))
        except (ArithmeticError, ValueError, TypeError):
            return None
    return None


def _value(latex: str, latex2sympy: Any) -> Any:
    """``eval(str(latex2sympy(latex)))`` with math's names, as the reference evaluates answers."""
    with contextlib.redirect_stdout(io.StringIO()):
        expr = str(latex2sympy(latex))
    tree = ast.parse(expr, mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = _const(node.right)
            if exponent is not None and abs(exponent) > _MAX_EXPONENT:
                raise ValueError(f"exponent of {expr!r} is too large to evaluate")
    return eval(compile(tree, "<answer>", "eval"), {"__builtins__": {}, **_MATH_NAMES})  # noqa: S307


def _eval_tuple(s: str, latex2sympy: Any) -> str:
    """"(a, b)" / "[a, b]" with each element's value rounded to 2 decimals ("infty", "a", "-a" kept); the
    input unchanged when it is not such a tuple or an element fails."""
    elements = s[1:-1].split(",")
    try:
        for open_, close in (("(", ")"), ("[", "]")):
            if s[0] == open_ and s[-1] == close and len(elements) > 1:
                values = [e if "infty" in e or e in ("a", "-a") else str(round(_value(e, latex2sympy), 2))
                          for e in elements]
                return open_ + ",".join(values) + close
    except Exception:  # noqa: BLE001 - the reference returns the input on any failure
        return s
    return s


def mathvision_equal(answer: str, gold: str) -> bool:
    """``is_equal``: case-blind; empty never matches; equal stripped strings; equal evaluated tuples; else both
    sides' LaTeX values equal when rounded to 2 decimals (any failure: not equal)."""
    latex2sympy = _latex2sympy()
    answer, gold = answer.lower(), gold.lower()
    if not answer.replace(" ", "") or not gold.replace(" ", ""):
        return False
    if gold.strip() == answer.strip():
        return True
    answer, gold = _eval_tuple(answer, latex2sympy), _eval_tuple(gold, latex2sympy)
    if gold == answer:
        return True
    try:
        return round(_value(gold, latex2sympy), 2) == round(_value(answer, latex2sympy), 2)
    except Exception:  # noqa: BLE001 - the reference's bare except: not equal
        return False


def mathvision_correct(prediction: Any, target: Any, options: Sequence[str] = ()) -> bool:
    """Right when the extracted answer equals the gold, or (multiple choice) the gold letter's option text."""
    gold = str(target)
    prediction = "" if prediction is None else str(prediction)
    gold_text = ""
    if options:
        index = ord(gold) - ord("A") if len(gold) == 1 else -1
        if not 0 <= index < len(options):
            raise ValueError(f"gold {gold!r} is not a letter of the {len(options)} options")
        gold_text = str(options[index])
    return mathvision_equal(gold, prediction) or mathvision_equal(gold_text, prediction)
