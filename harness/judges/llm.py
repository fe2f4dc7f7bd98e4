"""LLM judges: any OpenAI-compatible chat endpoint, or any model adapter of ours, with versioned prompts.

The API key is read from the environment variable that the judge config *names* (``api_key_env``); the key
itself is never stored in configs, caches or results, and ``identity()`` shows only the endpoint's host.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

from harness.api import GenerationConfig, Message, Request
from harness.judges.base import CachedJudge, CallPolicy, JudgeCache


@dataclass(frozen=True)
class JudgePrompt:
    """A versioned prompt template and the parser of its answers (raise ValueError when malformed)."""

    name: str
    version: str
    template: str
    parse: Callable[[str], Any]

    def render(self, **fields: Any) -> str:
        return self.template.format(**fields)


def _parse_letter(raw: str) -> str | None:
    """MMBench matcher: one option letter, or E/None for "no option matches"."""
    match = re.search(r"\b([A-E])\b", raw.strip().upper())
    if not match:
        raise ValueError("no option letter A-E in the judge's answer")
    return None if match[1] == "E" else match[1]


def _parse_yes_no(raw: str) -> bool:
    words = re.findall(r"[a-z]+", raw.lower())
    if not words or words[0] not in ("yes", "no"):
        raise ValueError("the judge's answer does not start with yes or no")
    return words[0] == "yes"


def _parse_pred_score(raw: str) -> dict[str, Any]:
    """Video-ChatGPT style: a dict with 'pred' (yes/no) and 'score' (0-5)."""
    match = re.search(r"\{.*\}", raw, re.S)
    if not match:
        raise ValueError("no {...} object in the judge's answer")
    try:
        obj = json.loads(match[0].replace("'", '"'))
        pred, score = str(obj["pred"]).lower(), float(obj["score"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"unreadable verdict object ({e})") from None
    if pred not in ("yes", "no") or not 0 <= score <= 5:
        raise ValueError(f"verdict out of range: pred={pred!r} score={score}")
    return {"pred": pred == "yes", "score": score}


def _parse_nonempty(raw: str) -> str:
    """Free-text extraction (MathVista): the stripped reply; an empty one is retried, as the reference does."""
    text = raw.strip()
    if not text:
        raise ValueError("empty extraction")
    return text


# MathVista's answer-extraction examples (lmms-eval 0.5.x tasks/mathvista/mathvista_evals.py DEMO_PROMPT, the
# MathVista authors' text), stripped as the reference strips it before use. Protocol text: keep it verbatim.
MATHVISTA_DEMO = """Please read the following example. Then extract the answer from the model response and type it at the end of the prompt.

Hint: Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.
Question: Which number is missing?

Model response: The number missing in the sequence is 14.

Extracted answer: 14

Hint: Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.
Question: What is the fraction of females facing the camera?

Model response: The fraction of females facing the camera is 0.6, which means that six out of ten females in the group are facing the camera.

Extracted answer: 0.6

Hint: Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.
Question: How much money does Luca need to buy a sour apple candy and a butterscotch candy? (Unit: $)

Model response: Luca needs $1.45 to buy a sour apple candy and a butterscotch candy.

Extracted answer: 1.45

Hint: Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.
Question: Between which two years does the line  graph saw its maximum peak?

Model response: The line graph saw its maximum peak between 2007 and 2008.

Extracted answer: [2007, 2008]

Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.
Question: What fraction of the shape is blue?\nChoices:\n(A) 3/11\n(B) 8/11\n(C) 6/11\n(D) 3/5

Model response: The correct answer is (B) 8/11.

Extracted answer: B"""

def _parse_one_zero(raw: str) -> int:
    """lmms-eval 0.5.x ``parse_binary_response`` ("0/1"): 1 when the lower-cased reply contains "1" anywhere
    (so "10" or "score: 1" count), else 0; never malformed."""
    return int("1" in raw.strip().lower())


# lmms-eval 0.5.x llm_judge/prompt.py BINARY_JUDGE_PROMPT with its "0/1" output format filled in ({positive} = 1,
# {negative} = 0), as MathVerse's score_answer sends it (evaluate_binary). Protocol text: keep it verbatim.
BINARY_JUDGE_01 = """You are a strict evaluator assessing answer correctness. You must output 1 for fully correct answers and 0 for any other case.

# Input
Question:
```
{question}
```
Ground Truth Answer:
```
{answer}
```
Model Prediction:
```
{prediction}
```

# Evaluation Rules
- The model prediction may contain the reasoning process, you should spot the final answer from it.
- For multiple-choice questions: Score 1 if the predicted answer matches the ground truth answer, it can be directly in option letters or the content of the options.
- For open-ended questions:
  * Score 1 if the prediction matches the answer semantically, it can be in different format.
  * Score 0 for partially correct answers or answers with extra incorrect information, even if the reasoning process is correct.
- Ignore minor differences in formatting, capitalization, or spacing since the model may explain in a different way.
- Treat numerical answers as correct if they match within reasonable precision
- For questions requiring units, both value and unit must be correct

# Strict Output format
1 or 0"""

PROMPTS: dict[str, JudgePrompt] = {
    p.name: p
    for p in (
        # The MMBench option matcher (VLMEvalKit / lmms-eval wording, paraphrased in structure, same task).
        JudgePrompt(
            "mmbench_matcher", "1",
            "You are an AI assistant who will help me to match an answer with several options of a single-choice "
            "question. You are provided with a question, several options, and an answer, and you need to find "
            "which option is most similar to the answer. If the meaning of all options are significantly different "
            "from the answer, output E. Your should output a single uppercase character in A, B, C, D (if they are "
            "valid options), and E.\nQuestion: {question}\nOptions:\n{options}\nAnswer: {answer}\nYour output:",
            _parse_letter,
        ),
        JudgePrompt(
            "binary_correct", "1",
            "Decide whether the model's answer is correct given the reference answer. Reply with exactly one word, "
            "yes or no.\nQuestion: {question}\nReference answer: {reference}\nModel answer: {answer}\nCorrect?",
            _parse_yes_no,
        ),
        JudgePrompt(
            "videochatgpt_qa", "1",
            "You are evaluating the correctness of generative outputs for video-based question-answer pairs. Compare "
            "the predicted answer with the correct answer and judge whether they match in meaning (synonyms and "
            "paraphrases count). Reply only with a Python dictionary string with the keys 'pred' ('yes' or 'no') and "
            "'score' (an integer from 0 to 5, 5 the best match), e.g. {{'pred': 'yes', 'score': 4}}.\n"
            "Question: {question}\nCorrect Answer: {reference}\nPredicted Answer: {answer}",
            _parse_pred_score,
        ),
        # MathVista answer extraction (create_test_prompt): examples, a blank line, the row's official `query`,
        # a blank line, the response, then "Extracted answer: " (trailing space kept); gpt-4o-2024-11-20 in the
        # vendored code (MODEL_VERSION), temperature 0, 256 tokens.
        JudgePrompt(
            "mathvista_extract", "1",
            MATHVISTA_DEMO.replace("{", "{{").replace("}", "}}") + "\n\n{query}\n\n{response}\n\nExtracted answer: ",
            _parse_nonempty,
        ),
        # MathVerse (lmms-eval 0.5.x score_answer -> evaluate_binary): question_for_eval, str(answer) and the
        # whole stripped response; gpt-4o-2024-11-20 (MODEL_VERSION), temperature 0, 1024 tokens.
        JudgePrompt("mathverse_binary", "1", BINARY_JUDGE_01, _parse_one_zero),
    )
}


class LLMJudge(CachedJudge):
    """Judges by asking a chat model; subclasses say how the model is reached."""

    def __init__(self, prompt: str, cache: JudgeCache | None = None, policy: CallPolicy | None = None, **kw: Any):
        super().__init__(cache, policy, **kw)
        self.prompt = PROMPTS[prompt]
        self.prompt_version = f"{self.prompt.name}@{self.prompt.version}"

    def parse(self, raw: str) -> Any:
        return self.prompt.parse(raw)

    def ask(self, using: str | None = None, **fields: Any):
        """Render and judge the judge's own prompt, or the registered prompt ``using`` names (a task whose
        protocol fixes its prompt, e.g. MathVista's answer extractor, asks it of whatever judge the run has)."""
        prompt = PROMPTS[using] if using else self.prompt
        return self.judge(prompt.render(**fields), version=f"{prompt.name}@{prompt.version}", parse=prompt.parse)


class OpenAICompatibleJudge(LLMJudge):
    """POSTs to ``<base_url>/chat/completions`` (greedy, one choice)."""

    def __init__(self, base_url: str, model: str, prompt: str, api_key_env: str | None = None,
                 max_tokens: int = 64, **kw: Any):
        super().__init__(prompt, **kw)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens

    def identity(self) -> dict[str, Any]:
        return {"kind": "openai-compatible", "model": self.model, "host": urlparse(self.base_url).netloc,
                "prompt": self.prompt_version}

    def _call(self, prompt: str) -> str:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "temperature": 0, "max_tokens": self.max_tokens}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise RuntimeError(f"judge needs an API key in the environment variable {self.api_key_env}")
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.policy.timeout_s) as resp:
                payload = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"judge endpoint answered HTTP {e.code}") from None
        try:
            return payload["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise RuntimeError("judge endpoint returned no choices[0].message.content") from None


class AdapterJudge(LLMJudge):
    """Uses any of our model adapters as the judge (e.g. a local model through ``harness.models``)."""

    def __init__(self, adapter: Any, prompt: str, max_new_tokens: int = 64, **kw: Any):
        super().__init__(prompt, **kw)
        self.adapter = adapter
        self.max_new_tokens = max_new_tokens

    def identity(self) -> dict[str, Any]:
        return {"kind": "adapter", "model": self.adapter.name, "fingerprint": self.adapter.fingerprint(),
                "prompt": self.prompt_version}

    def _call(self, prompt: str) -> str:
        request = Request(task="judge", doc_id=self.key(prompt), messages=(Message.user(prompt),),
                          generation=GenerationConfig(max_new_tokens=self.max_new_tokens))
        (response,) = self.adapter.generate([request])
        if response.error:
            raise RuntimeError(response.error)
        return response.text


def build_judge(config: Mapping[str, Any], cache: JudgeCache | None = None) -> LLMJudge | None:
    """A judge from ``configs/judge/<name>.yaml`` (``kind: none | openai | adapter``)."""
    kind = config.get("kind", "none")
    if kind == "none":
        return None
    policy = CallPolicy(**(config.get("policy") or {}))
    if kind == "openai":
        return OpenAICompatibleJudge(config["base_url"], config["model"], config["prompt"],
                                     api_key_env=config.get("api_key_env"), max_tokens=int(config.get("max_tokens", 64)),
                                     cache=cache, policy=policy)
    if kind == "adapter":
        from harness.evaluate import _model_config
        from harness.models import build_model

        return AdapterJudge(build_model(_model_config(config["model"])), config["prompt"], cache=cache, policy=policy)
    raise ValueError(f"unknown judge kind {kind!r}")
