"""MMBench's paper-era rule stage (rule ``mmbench_lmms05``) against lmms-eval 0.5.0 (tag v0.5 @ 8f142bc),
``lmms_eval/tasks/mmbench/mmbench_evals.py``.

``ReferenceEvaluator`` below is a TRANSCRIPTION of ``MMBench_Evaluator.can_infer_option``, ``can_infer_text``,
``can_infer`` and ``build_choices`` (pandas' isna written out for the cell types a row holds), kept in this
test only as an independent oracle. The reference sees ``results[0].strip()`` (``mmbench_process_results``);
our task gets the same text from the framework strip (``response_strip``).
"""

from __future__ import annotations

import math
import string

import pytest

from harness.api import Response
from harness.extract.base import ExtractContext, get_rule
from tests.tasks.helpers import load_task, sample_docs


def _isna(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class ReferenceEvaluator:
    """Transcription of the v0.5 ``MMBench_Evaluator`` rule stage (no GPT, no logging)."""

    def can_infer_option(self, answer, num_choice=5):
        choices = string.ascii_uppercase[:num_choice]
        if "Failed to obtain answer via API" in answer:
            return False

        def count(splits, choices="ABCD", prefix="", suffix=""):
            cnt = 0
            for c in choices:
                if prefix + c + suffix in splits:
                    cnt += 1
            return cnt

        splits = [x.strip() for x in answer.split()]
        if count(splits, choices) == 1:
            for ch in choices:
                if "A" in splits and len(splits) > 3:
                    break  # "A might be a quantifier"
                if ch in splits:
                    return ch
        tups = [("", "."), ("", ","), ("", ":"), ("", ")"), ("", ")."), ("(", ")"), ("(", ")."), (":", ""),
                (":", ","), (":", "."), (":", ")"), (":", ").")]
        for tup in tups:
            if count(splits, choices, prefix=tup[0], suffix=tup[1]) == 1:
                for ch in choices:
                    if tup[0] + ch + tup[1] in splits:
                        return ch
        return False

    def can_infer_text(self, answer, choices):
        answer = answer.lower()
        for k in choices:
            choices[k] = str(choices[k]).lower()
        cands = [k for k in choices if choices[k] in answer]
        return cands[0] if len(cands) == 1 else False

    def build_choices(self, item):
        return {ch: item[ch] for ch in "ABCD" if not _isna(item.get(ch))}

    def can_infer(self, answer, item):
        copt = self.can_infer_option(answer)
        return copt if copt else self.can_infer_text(answer, self.build_choices(item))


REFERENCE = ReferenceEvaluator()
ROW = {"A": "a red square", "B": "a blue circle", "C": "a green triangle", "D": "nothing at all"}
TWO_OPTIONS_NAN = {"A": "yes", "B": "no", "C": "nan", "D": None}  # MMBench stores empty cells as "nan", None, NaN
TWO_OPTIONS_NONE = {"A": "yes", "B": "no", "C": None, "D": float("nan")}

RESPONSES = [
    # bare letters and the quantifier guard
    "A", "B", "E", "b", "A B", "B B", "A cat is here", "It is A", "I pick B over A here",
    "The answer is A", "A.", "A red square.", "C because A is wrong",
    # affix forms, first form with exactly one hit wins
    "B.", "(B)", "(B).", "B)", "B).", "B,", "B:", ":B", ":B,", ":B.", ":B)", ":B).", "(A) or (B)", "(A) B.",
    "A. or B.", "Answer: (C)", "Answer:C", "the answer is (D).", "[B]", "**B**", "B\u3002", "option B;",
    # letter forms that are not letters here
    "\uff22", "\u0392", "\u24b7", "B\u200b", "bb", "AB", "A/B",
    # option texts
    "a blue circle", "It is A BLUE CIRCLE", "a red square or a blue circle", "nothing", "yes", "no", "banana",
    "I can't tell", "Sorry, I cannot answer. C", "Failed to obtain answer via API B", "", "   ",
    # whitespace and tags
    "\nB\n", "B\n\nExplanation: A is wrong", "\tC\t", "<|im_end|>B", "B<|im_end|>", "<answer>B</answer>",
]


@pytest.mark.parametrize("row", [ROW, TWO_OPTIONS_NAN, TWO_OPTIONS_NONE], ids=["four", "nan-cells", "none-cells"])
def test_rule_equals_the_reference_on_every_case(row: dict) -> None:
    rule = get_rule("mmbench_lmms05")
    options = {k: str(v) for k, v in row.items() if v is not None and v == v and v != "nan"}
    for response in RESPONSES:
        text = response.strip()  # what process_results hands on
        expected = REFERENCE.can_infer(text, dict(row)) or None
        assert rule(text, ExtractContext(options=options, doc=row)) == expected, repr(response)


def test_the_two_rules_disagree_where_the_issue_says() -> None:
    """Quantifier guard, letters beyond the options, refusals and affix order separate the generations."""
    ctx = ExtractContext(options={"A": "yes", "B": "no"}, doc=TWO_OPTIONS_NONE)
    pairs = {"E": ("E", None), "C": ("C", None), "Sorry, I can't say. B": ("B", None),
             "(B) A cat": ("A", None), "A is the answer here": (None, "A")}
    for response, (paper_era, newer) in pairs.items():
        assert get_rule("mmbench_lmms05")(response, ctx) == (REFERENCE.can_infer(response, dict(ctx.doc)) or None)
        assert (get_rule("mmbench_lmms05")(response, ctx), get_rule("mmbench_vlmevalkit")(response, ctx)) == \
            (paper_era, newer), response


def test_task_uses_the_paper_era_rule_per_copy_after_the_strip() -> None:
    task = load_task("mmbench_en_dev")
    assert task.config.extract == "mmbench_lmms05" and task.config.response_strip
    for doc in sample_docs(task):
        for response in RESPONSES:
            sample = task.process_response(doc, Response(text=response))
            expected = REFERENCE.can_infer(response.strip(), dict(doc)) or None
            if expected:
                assert (sample.prediction, sample.fields["answer_source"]) == (expected, "rule"), repr(response)
                assert sample.items["circular_accuracy"]["correct"] == (expected == doc["answer"])
            else:  # the reference would ask GPT; without a judge we draw the seeded letter
                assert sample.fields["answer_source"] == "random", repr(response)
