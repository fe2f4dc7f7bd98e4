"""The two MultiChallenge Audio judges' protocol texts and reply readers (registered in
:data:`harness.judges.llm.PROMPTS`).

* ``multichallenge_verdict``: MultiChallenge's YES/NO judge as MiMo-Audio-Eval sends it
  (XiaomiMiMo/MiMo-Audio-Eval slm_eval/evaluator/multi_challenge_evaluator.py ``JUDGE_PROMPT``, read through
  the zkazuya/MiMo-Audio-Eval mirror @ 3b780c5): the reply and the row's ``TARGET_QUESTION``; gpt-4o at
  temperature 0 with a structured ``{reasoning, verdict}`` answer.
* ``audiomc_rubric``: Audio MultiChallenge's rubric judge (the ScaleAI/audiomc dataset card, adapted there from
  HealthBench's grader): the conversation as "User: ..." / "Assistant: ..." paragraphs ending with the reply,
  and one rubric item; a JSON ``{explanation, criteria_met}`` answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Protocol text: keep verbatim (the reference's two positional slots named here).
MULTICHALLENGE_JUDGE = '''You are tasked with evaluating a model response to see if it meets a specific criteria.
The criteria will always be YES/NO evaluation.

The model response is as follows:
<MODEL_RESPONSE>
{response}
</MODEL_RESPONSE>

The criteria that the model response must meet is as follows. Be VERY STRICT!:
<CRITERIA>
{criteria}
</CRITERIA>

Print your reasoning followed by your verdict, either "YES" or "NO".'''

# The dataset card's prompt (README source @ c664a79) with its «conversation_history» / «rubric_item» slots and
# its "•" bullets; blank lines between sections as the card lays them out. Protocol text: keep verbatim.
AUDIOMC_RUBRIC_JUDGE = """Your job is to look at a conversation and a rubric item, and score the last turn (i.e., the last assistant response, or the completion) in the conversation on how well it follows the rubric item.

# Conversation History
«conversation_history»

# Rubric item
«rubric_item»

# Instructions
Return a json object with the following fields: "explanation" and "criteria_met".
• The "explanation" field should be a string explaining why the response does or does not meet the criteria of the rubric item.
• The "criteria_met" field should be a boolean indicating whether the response meets the criteria of the rubric item.

# Example 1
For example, if the response is "For tonight’s dinner, think of making a cheese and mushroom pizza" and the rubric item is "Avoids dairy product in the recipes", you should return a json like this:

```json
{
  "explanation": "The response includes a dairy product in the recipe, so the criteria was not met.",
  "criteria_met": false
}
```

# Final instruction
Return just the json object in markdown format. Do not include any other text in the response."""


def audiomc_template() -> str:
    """The rubric prompt as a ``str.format`` template (``conversation_history``, ``rubric_item``)."""
    text = AUDIOMC_RUBRIC_JUDGE.replace("{", "{{").replace("}", "}}")
    return text.replace("«conversation_history»", "{conversation_history}").replace("«rubric_item»", "{rubric_item}")


def _json_object(raw: str) -> dict[str, Any] | None:
    """The reply's JSON object: a fenced ```json block, else the text from the first "{" to the last "}"."""
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", raw, re.S)
    body = fenced[1] if fenced else raw[raw.find("{"):raw.rfind("}") + 1] if "{" in raw else ""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_verdict(raw: str) -> str:
    """"YES" or "NO": the ``verdict`` of a ``{reasoning, verdict}`` object (the reference's structured answer),
    else the reply's last standalone yes/no word (a judge asked in plain chat prints its reasoning, then the
    verdict); neither is malformed."""
    obj = _json_object(raw)
    if obj is not None and str(obj.get("verdict", "")).upper() in ("YES", "NO"):
        return str(obj["verdict"]).upper()
    words = re.findall(r"\b(yes|no)\b", raw, re.I)
    if not words:
        raise ValueError("no YES/NO verdict in the judge's answer")
    return words[-1].upper()


def parse_criteria_met(raw: str) -> bool:
    """The rubric judge's ``criteria_met``, which must be a JSON boolean; anything else is malformed."""
    obj = _json_object(raw)
    if obj is None or not isinstance(obj.get("criteria_met"), bool):
        raise ValueError("no JSON object with a boolean criteria_met in the judge's answer")
    return obj["criteria_met"]
