"""MathVision as lmms-eval 0.5.x scores it (``tasks/mathvision``: ``mathvision_process_results`` over the
MathVision authors' ``eval_utils``): the rule that cuts the final answer out of a step-by-step response, and
the equivalence test that compares it with the gold (string, tuple, then LaTeX value through ``latex2sympy2``).

Quirks kept on purpose, since they decide scores: only the last ``\\boxed{`` counts when there are several;
the "the answer is" cues apply only when nothing is boxed; fractions are re-braced only when the answer also
contains ``sqrt``; "0.5" becomes ``\\frac{1}{2}`` and "a/b" ``\\frac{a}{b}``; values compare at two decimals.
``latex2sympy2`` is optional (:func:`harness.optional.require`); it is loaded for every comparison, so without
it each sample fails alike instead of some scoring by string alone. Its expressions are evaluated as the
reference does, with :mod:`math`'s names, but without builtins and refusing any integer beyond ``_MAX_BITS``
bits before computing it (the reference hangs on "10^{10^{10}}" and takes a minute on "10!!", which is
factorial(3628800)); such answers compare as unequal.
"""

from __future__ import annotations

import ast
import contextlib
import io
import math
import operator
import re
from typing import Any, Sequence

from harness.extract.base import ExtractContext, register_rule

_MATH_NAMES = {k: v for k, v in vars(math).items() if not k.startswith("_")}  # the reference's `from math import *`
_MAX_BITS = 20_000  # integers of about 6,000 digits: far beyond any answer, and instant to compute
_MAX_COMBINATORIAL = 2000  # factorial(2000) has 19,053 bits


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


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.LShift: operator.lshift, ast.RShift: operator.rshift, ast.BitOr: operator.or_,
           ast.BitAnd: operator.and_, ast.BitXor: operator.xor, ast.MatMult: operator.matmul}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_, ast.Invert: operator.invert}
_COMBINATORIAL = (math.factorial, math.comb, math.perm)


def _check_size(value: Any, expr: str) -> Any:
    if isinstance(value, int) and value.bit_length() > _MAX_BITS:
        raise ValueError(f"{expr!r} has a value of more than {_MAX_BITS} bits")
    return value


def _bounded_eval(node: ast.AST, expr: str) -> Any:
    """What ``eval`` gives for the names, numbers, arithmetic, calls and tuples of a sympy string, refusing
    (ValueError) any step whose integer would exceed ``_MAX_BITS`` bits before computing it: ``10!!`` is
    factorial(3628800) and ``10^{10^{10}}`` a ten-billion-digit power, each minutes to hours of one C call."""
    if isinstance(node, ast.Expression):
        return _bounded_eval(node.body, expr)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in _MATH_NAMES:
            raise NameError(f"name {node.id!r} is not defined")
        return _MATH_NAMES[node.id]
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_bounded_eval(e, expr) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check_size(_UNARY[type(node.op)](_bounded_eval(node.operand, expr)), expr)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        a, b = _bounded_eval(node.left, expr), _bounded_eval(node.right, expr)
        ints = isinstance(a, int) and isinstance(b, int)
        if ints and isinstance(node.op, ast.Pow) and b > 0 and abs(a) > 1 and a.bit_length() * b > _MAX_BITS:
            raise ValueError(f"{expr!r}: the power has more than {_MAX_BITS} bits")
        if ints and isinstance(node.op, ast.Mult) and a.bit_length() + b.bit_length() > _MAX_BITS + 1:
            raise ValueError(f"{expr!r}: the product has more than {_MAX_BITS} bits")
        if ints and isinstance(node.op, ast.LShift) and b > _MAX_BITS:
            raise ValueError(f"{expr!r}: the shift is more than {_MAX_BITS} bits")
        return _check_size(_BINARY[type(node.op)](a, b), expr)
    if isinstance(node, ast.Call):
        func = _bounded_eval(node.func, expr)
        args = [_bounded_eval(a, expr) for a in node.args]
        kwargs = {k.arg: _bounded_eval(k.value, expr) for k in node.keywords if k.arg is not None}
        if len(kwargs) != len(node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
            raise ValueError(f"{expr!r}: unpacking in a call is not evaluated")
        if func in _COMBINATORIAL and any(isinstance(a, int) and a > _MAX_COMBINATORIAL for a in args):
            raise ValueError(f"{expr!r}: {func.__name__} of more than {_MAX_COMBINATORIAL} is not evaluated")
        return _check_size(func(*args, **kwargs), expr)
    raise ValueError(f"{expr!r}: {type(node).__name__} is not evaluated")


def _value(latex: str, latex2sympy: Any) -> Any:
    """``eval(str(latex2sympy(latex)))`` with math's names, as the reference evaluates answers, through
    :func:`_bounded_eval` (no builtins, no attribute access, bounded integers)."""
    with contextlib.redirect_stdout(io.StringIO()):
        expr = str(latex2sympy(latex))
    return _bounded_eval(ast.parse(expr, mode="eval"), expr)


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
