"""CharXiv protocol text (lmms-eval 0.5.x tasks/charxiv/constant.py, the CharXiv authors' src/constants.py with
whitespace and spelling edits), as the Python interpreter reads it: verbatim, and not to be edited.

The reference writes these as non-raw string literals, so ``\\a`` and ``\\b`` in the enum rubric's example became
the BEL and backspace characters (``\\x07lpha``, ``\\x08eta``) while ``\\g`` and ``\\l`` stayed two characters;
the values below are those strings, so the judge sees what the reference sent.

Below the text: how a grading query is assembled and how the judge's JSON reply is read (our code).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

# fmt: off
# flake8: noqa: E501

DESCRIPTIVE_GRADING_PREFIX = '\nYou will be given <|NUM_TRIPLETS|> pairs of ground truth answers and model responses under an overarching question. You need to go through each of the pairs, extract the final answer from the model response, compare it with the ground truth answer, and then assign a binary score. Avoid providing explanations in your response. If there is no provided model response, please leave the extracted answer empty and give a score of 0. Your response must follow json formats with keys [<|JSON_KEYS|>] where the value for any `extract_answer` is your extracted answer and `score` is an interge in [0, 1] based on the following rules:\n\n\nOverarching Question: <|OVERARCHING_QUESTION|>\n'

DESCRIPTIVE_GRADING_QMAP = {
    1: 'What is the title of the plot?',
    2: 'What is the label of the x-axis?',
    3: 'What is the label of the y-axis?',
    4: 'What is the leftmost labeled tick on the x-axis?',
    5: 'What is the rightmost labeled tick on the x-axis?',
    6: 'What is the spatially lowest labeled tick on the y-axis?',
    7: 'What is the spatially highest labeled tick on the y-axis?',
    8: 'What is difference between consecutive numerical tick values on the x-axis?',
    9: 'What is difference between consecutive numerical tick values on the y-axis?',
    10: 'How many lines are there?',
    11: 'Do any lines intersect?',
    12: 'How many discrete labels are there in the legend?',
    13: 'What are the names of the labels in the legend? (from top to bottom, then left to right)',
    14: 'What is the difference between the maximum and minimum values of the tick labels on the continuous legend (i.e., colorbar)?',
    15: 'What is the maximum value of the tick labels on the continuous legend (i.e., colorbar)?',
    16: 'What is the general trend of data from left to right?',
    17: 'What is the total number of explicitly labeled ticks across all axes?',
    18: 'What is the layout of the subplots?',
    19: 'What is the number of subplots?',
}

DESCRIPTIVE_GRADING_ICL = {
    'title': '\nRubric: \n    * Give a score of 1 if and only if the extracted answer and the ground truth answer are referring to the same term. It\'s acceptable to have different grammar or form (e.g., α and alpha; $R^2_{t,h,v,m}$ and R^2_t,h,v,m). It\'s acceptable to omit letter prefixes (e.g., (a) Increment over time and Increment over time).\n    * Give a score of 0 if any term in the extracted answer is different from the ground truth answer.\n    * When ground truth answer is "Not Applicable", the response must express "Not Applicable" to receive a score of 1.\n\n    ### Example Start ###\n    T1:\n    Response 1: The title of the plot is "The number of students in each grade".\n    Ground Truth 1: The variance of students in each grade\n\n    T2:\n    Response 2: There is no title.\n    Ground Truth 2: Not Applicable\n\n    T3:\n    Response 3: A_v^t\n    Ground Truth 3: A^t_v\n\n    {\n        "extract_answer_T1": "The number of students in each grade",\n        "score_T1": 0\n        "extract_answer_T2: "Not Applicable",\n        "score_T2": 1\n        "extract_answer_T3": "A_v^t",\n        "score_T3": 1\n    }\n    ### Example End ###        \n',
    'ocr': '\nRubric: \n    * Give a score of 1 if and only if the extracted answer and the ground truth answer are referring to the same term. It\'s acceptable to have equivalent grammar or form (e.g., α and alpha; $R^2_{t,h,v,m}$ and R^2_t,h,v,m). If the ground truth is a number, the extracted answer should be the number with the exact same value.\n    * Give a score of 0 if any term in the extracted answer is different from the ground truth answer, or if the extracted number is different in value from the ground truth number.\n    * When ground truth answer is "Not Applicable", the response must express "Not Applicable" to receive a score of 1.\n\n    ### Example Start ###\n    T1:\n    Response 1: The answer is 1.0\n    Ground Truth 1: 1.00\n\n    T2:\n    Response 2: By manually inspecting the plot, the final answer should be 0.\n    Ground Truth 2: Not Applicable\n\n    T3:\n    Response 3: A_v^t\n    Ground Truth 3: A^t_v\n\n    {\n        "extract_answer_T1": 1.0,\n        "score_T1": 1\n        "extract_answer_T2: 0,\n        "score_T2": 0\n        "extract_answer_T3": "A_v^t",\n        "score_T3": 1\n    }\n    ### Example End ###        \n',
    'quant': '\nRubric:\n    * Give a score of 1 if and only if the extracted answer and the ground truth answer are numbers with the exact same value.\n    * Give a score of 0 if the extracted answer is different in value from the ground truth answer.\n    * When ground truth answer is "Not Applicable", the response must express "Not Applicable" to receive a score of 1.\n\n    ### Example Start ###\n    T1:\n    Response 1: 5\n    Ground Truth 1: 6\n\n    T2:\n    Response 2: 0\n    Ground Truth 2: Not Applicable\n\n    T3:\n    Response 3: 4\n    Ground Truth 3: 4\n\n    {\n        "extract_answer_T1": 5,\n        "score_T1": 0\n        "extract_answer_T2: 0,\n        "score_T2": 0\n        "extract_answer_T3": 4,\n        "score_T3": 1\n    }\n    ### Example End ###   \n',
    'bool': '\nRubric:\n    * Give a score of 1 if and only if the extracted answer and the ground truth answer are the same.\n    * Give a score of 0 if the extracted answer and the ground truth answer are different.\n    * When ground truth answer is "Not Applicable", the response must express "Not Applicable" to receive a score of 1.\n\n    ### Example Start ###\n    T1:\n    Response 1: No, there are no intersections.\n    Ground Truth 1: no\n\n    T2:\n    Response 2: No, all the lines are parallel.\n    Ground Truth 2: Yes\n\n    T3:\n    Response 3: There are no lines in the plot.\n    Ground Truth 3: Not Applicable\n\n    {\n        "extract_answer_T1": "No",\n        "score_T1": 1\n        "extract_answer_T2: "No",\n        "score_T2": 0\n        "extract_answer_T3": "Not Applicable",\n        "score_T3": 1\n    }\n    ### Example End ###   \n',
    'enum': '\nRubric:\n    * Give a score of 1 if and only if the extracted answer and the ground truth answer are referring to the same term. It\'s acceptable to have equivalent grammar or form (e.g., α and alpha; $R^2_{t,h,v,m}$ and R^2_t,h,v,m). The order of the terms must be the same.\n    * Give a score of 0 if any term in the extracted answer is different from the ground truth answer, or if the order of the terms is different.\n    * When ground truth answer is "Not Applicable", the response must express "Not Applicable" to receive a score of 1.\n\n    ### Example Start ###\n    T1:\n    Response 1: Here are the names of the labels: A, B, C\n    Ground Truth 1: B, A, C\n\n    T2:\n    Response 2: The labels are T56, B33.\n    Ground Truth 2: T56,B33,A12\n\n    T3:\n    Response 3: \x07lpha, \x08eta, \\gamma^t_v\n    Ground Truth 3: α, β, γ_v^t\n\n    {\n        "extract_answer_T1": "A, B, C",\n        "score_T1": 0\n        "extract_answer_T2: "T56, B33",\n        "score_T2": 0\n        "extract_answer_T3": "\x07lpha, \x08eta, \\gamma^t_v",\n        "score_T3": 1\n    }\n    ### Example End ###\n',
    'trend': '\nRubric:\n    * Give a score of 1 if and only if the extracted answer and the ground truth answer share the same general trend.\n    * Give a score of 0 if the extracted answer and the ground truth answer are different in trend expression.\n\n    ### Example Start ###\n    T1:\n    Response 1: there is an increase in the data from left to right\n    Ground Truth 1: Decreases\n\n    T2:\n    Response 2: the curves move up and stay constant\n    Ground Truth 2: Increases then stabilizes\n\n    T3:\n    Response 3: Decreases\n    Ground Truth 3: Decreases then increases\n\n    {\n        "extract_answer_T1": "Increases",\n        "score_T1": 0\n        "extract_answer_T2: "Move up and stay constant",\n        "score_T2": 1\n        "extract_answer_T3": "Decreases",\n        "score_T3": 0\n    }\n    ### Example End ###\n',
    'layout': '\nRubric:\n    * Give a score of 1 if and only if the extracted answer and the ground truth answer are the same in terms of the number of rows and columns (e.g., n by m).\n    * Give a score of 0 if the extracted answer is different from the ground truth answer.\n\n    ### Example Start ###\n    T1:\n    Response 1: 2 by 3\n    Ground Truth 1: 3 by 2\n\n    T2:\n    Response 2: the layout is 1 by 1\n    Ground Truth 2: 1 by 1\n\n    T3:\n    Response 3: there are two rows and three columns\n    Ground Truth 3: 2 by 3\n\n    {\n        "extract_answer_T1": "2 by 3",\n        "score_T1": 0\n        "extract_answer_T2: "1 by 1",\n        "score_T2": 1\n        "extract_answer_T3": "2 by 3",\n        "score_T3": 1\n    }\n    ### Example End ###\n',
}

REASONING_GRADING_PREFIX = '\nYou will be given a question, an ground truth answer and a model response. You need to extract the final answer from the model response, compare it with the ground truth answer, and then assign a binary score. Avoid providing explanations in your response. If there is no provided model response, please leave the extracted answer empty and give a score of 0. \n\nYour response must follow json formats with keys [extract_answer, score] where the value of the score is an integer in [0, 1]. You must follow the scoring rules:\n'

REASONING_GRADING_INST = {
    1: '\n    ### Rules ###\n    * Give a score of 1 if and only if the final answer and the ground truth answer are referring to the same term. It\'s acceptable to have different grammar or form (e.g., α and alpha; $R^2_{t,h,v,m}$ and R^2_t,h,v,m). It\'s also acceptable to have different orders of the terms when question asks for multiple terms.\n    * Give a score of 0 if any term (e.g., ACC+ and ACC; P-101 and P=101) is different between the final answer and the ground truth.\n\n    ### Example 1 Starts ###\n    * Question: What is the name of the curve that intersects y=\\lambda exactly three times?\n    * Ground Truth: P56962\n    * Response: There is only one curve that intersects y=\\lambda exactly three times. The name of the curve is written as P55762.\n    \n    {\n        "extracted_answer": "P55762",\n        "score": 0\n    }\n    ### Example 1 Ends ###\n\n\n    ### Example 2 Starts ###\n    * Question: What is the letter of the subplot where all bars are above 35?\n    * Ground Truth: (b)\n    * Response: The letter of the subplot where all bars are above 35 is b.\n\n    {\n        "extracted_answer": "b",\n        "score": 1\n    }\n    ### Example 2 Ends ###\n\n    ### Your Turn ###\n    * Question: <|question|>\n    * Ground Truth: <|ground_truth|>\n    * Response: <|response|>\n\n    ',
    2: '\n    ### Rules ###\n    * If there are predefined options in the question:\n        * Give a score of 1 if the final answer matches the ground truth answer exactly.\n        * Give a score of 0 if the final answer does not match the ground truth answer.\n    * If there are no predefined options in the question:\n        * Give a score of 1 if the final answer shares the same semantic meaning with the ground truth answer (e.g., "increasing then decreasing" and "moving up then down"; "converge" and "move closer together").\n        * Give a score of 0 if the final answer shares different semantic meanings from the ground truth answer (e.g., "increasing then decreasing" and "remain constant"; "converge" and "diverge").\n\n    ### Example 1 Starts ###\n    * Question: What is the trend of the red curve between t=10 and t=25?\n    * Ground Truth: increasing then decreasing\n    * Response: The red curve is increasing between t=10 and t=25.\n\n    {\n        "extracted_answer": "increasing",\n        "score": 0\n    }\n    ### Example 1 Ends ###\n\n    ### Example 2 Starts ###\n    * Question: What is the interval where the blue curve achieves the maximum value among [0, 50], [50, 100], [100, 150], and [150, 200]?\n    * Ground Truth: [50, 100]\n    * Response: The interval where the blue curve achieves the maximum value is [50, 100].\n\n    {\n        "extracted_answer": "[50, 100]",\n        "score": 1\n    }\n    ### Example 2 Ends ###\n\n    ### Your Turn ###\n    * Question: <|question|>\n    * Ground Truth: <|ground_truth|>\n    * Response: <|response|>\n\n    ',
    3: '\n    ### Rules ###\n    * Give a score of 1 if and only if the two numbers are exactly equal in values. It\'s acceptable to have different notations (e.g., 0.01 and 10^-2; 1500 and 1.5e3).\n    * Give a score of 0 if the two numbers are different in values.\n\n    ### Example 1 Starts ###\n    * Question: What is the value of the red curve at t=10?\n    * Ground Truth: 0.01\n    * Response: The value of the red curve at t=10 is 0.012.\n\n    {\n        "extracted_answer": "0.012",\n        "score": 0\n    }\n    ### Example 1 Ends ###\n\n    ### Example 2 Starts ###\n    * Question: What is the value of the blue curve at t=50?\n    * Ground Truth: 1500\n    * Response: The value of the blue curve at t=50 is 1.5e3.\n\n    {\n        "extracted_answer": "1.5e3",\n        "score": 1\n    }\n    ### Example 2 Ends ###\n\n    ### Your Turn ###\n    * Question: <|question|>\n    * Ground Truth: <|ground_truth|>\n    * Response: <|response|>\n\n    ',
    4: '\n    ### Rules ###\n    * Give a score of 1 if and only if the two numbers are exactly equal in values. It\'s acceptable to have different notations (e.g., 0.01 and 10^-2; 1500 and 1.5e3).\n    * Give a score of 0 if the two numbers are different in values.\n\n    ### Example 1 Starts ###\n    * Question: What is the value of the red curve at t=10?\n    * Ground Truth: 0.01\n    * Response: The value of the red curve at t=10 is 0.012.\n\n    {\n        "extracted_answer": "0.012",\n        "score": 0\n    }\n    ### Example 1 Ends ###\n\n    ### Example 2 Starts ###\n    * Question: What is the value of the blue curve at t=50?\n    * Ground Truth: 1500\n    * Response: The value of the blue curve at t=50 is 1.5e3.\n\n    {\n        "extracted_answer": "1.5e3",\n        "score": 1\n    }\n    ### Example 2 Ends ###\n\n    ### Your Turn ###\n    * Question: <|question|>\n    * Ground Truth: <|ground_truth|>\n    * Response: <|response|>\n\n    ',
}


# ---- assembling the grading queries

# Template ids (descriptive_q1..4 values, 1-19) -> the rubric with in-context examples (get_rubric).
RUBRIC_OF_TEMPLATE = {1: "title", **dict.fromkeys(range(2, 8), "ocr"),
                      **dict.fromkeys((8, 9, 10, 12, 14, 15, 17, 19), "quant"), 11: "bool", 13: "enum",
                      16: "trend", 18: "layout"}


def descriptive_query(template: int, batch: Sequence[tuple[str, str]]) -> str:
    """One grading query for up to five (response, gold) pairs of one template: the prefix with the pair
    count, the JSON key list (``str`` of a Python list, as the reference writes it) and the template's
    overarching question, then the rubric, then "T<i>:" blocks."""
    keys = str([k for i in range(1, len(batch) + 1) for k in (f"extract_answer_T{i}", f"score_T{i}")])
    prefix = (DESCRIPTIVE_GRADING_PREFIX.replace("<|NUM_TRIPLETS|>", str(len(batch)))
              .replace("<|OVERARCHING_QUESTION|>", DESCRIPTIVE_GRADING_QMAP[template]).replace("<|JSON_KEYS|>", keys))
    pairs = "".join(f"T{i}:\nResponse {i}: {response}\nGround Truth {i}: {gold}\n\n"
                    for i, (response, gold) in enumerate(batch, 1))
    return prefix + DESCRIPTIVE_GRADING_ICL[RUBRIC_OF_TEMPLATE[template]] + pairs


def reasoning_query(source: int, question: str, gold: str, response: str) -> str:
    """The grading query of one reasoning answer: prefix, then the rules and examples of the question's
    source type (1-4) with question, gold and response substituted in that order (plain replacement, as the
    reference: a response containing "<|response|>"-like text is not re-substituted, a question containing
    "<|ground_truth|>" would be)."""
    return REASONING_GRADING_PREFIX + (REASONING_GRADING_INST[source].replace("<|question|>", question)
                                       .replace("<|ground_truth|>", gold).replace("<|response|>", response))


# ---- reading the judge's replies


def _json_object(raw: str) -> dict[str, Any]:
    """The reply as a JSON object. The reference asks for ``response_format=json_object`` and reads the whole
    reply; an endpoint without that mode may wrap the object in a code fence, so the text from the first "{"
    to the last "}" is read when the whole is not JSON."""
    text = raw.strip()
    try:
        obj = json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end < start:
            raise ValueError("no JSON object in the judge's answer") from None
        try:
            obj = json.loads(text[start:end + 1])
        except ValueError as e:
            raise ValueError(f"unreadable JSON ({e})") from None
    if not isinstance(obj, dict):
        raise ValueError("the judge's JSON is not an object")
    return obj


def parse_descriptive(raw: str, n: int | None = None) -> list[dict[str, Any]]:
    """``[{"extracted_answer", "score"}]`` for T1..Tn (``verify_grading_output``: every key present, every score
    0 or 1; otherwise malformed, so retried). Without ``n`` (a registry lookup), as many as the reply has."""
    obj = _json_object(raw)
    if n is None:
        n = sum(1 for k in obj if k.startswith("score_T"))
    out = []
    for i in range(1, n + 1):
        if f"extract_answer_T{i}" not in obj or f"score_T{i}" not in obj:
            raise ValueError(f"extract_answer_T{i} or score_T{i} missing")
        score = obj[f"score_T{i}"]
        if isinstance(score, str) or score not in (0, 1):
            raise ValueError(f"score_T{i} = {score!r} is not 0 or 1")
        out.append({"extracted_answer": obj[f"extract_answer_T{i}"], "score": float(score)})
    return out


def parse_reasoning(raw: str) -> dict[str, Any]:
    """``{"extracted_answer", "score"}``. The reference reads ``content["extracted_answer"]`` although its prompt
    asks for the key ``extract_answer``: a reply with only the asked-for key is malformed (retried, then a
    failure scored -1), as there. The score is taken as given (no 0/1 check); a non-number is malformed (the
    reference's sum() would fail on it)."""
    obj = _json_object(raw)
    if "extracted_answer" not in obj or "score" not in obj:
        raise ValueError("extracted_answer or score missing")
    score = obj["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise ValueError(f"score {score!r} is not a number")
    return {"extracted_answer": obj["extracted_answer"], "score": float(score)}
