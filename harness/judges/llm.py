"""LLM judges: any OpenAI-compatible chat endpoint, or any model adapter of ours, with versioned prompts.

The API key is read from the environment variable that the judge config *names* (``api_key_env``); the key
itself is never stored in configs, caches or results, and ``identity()`` shows only the endpoint's host.

A prompt may carry images (VIEScore for GEdit-Bench, WISE): :func:`judge_image` encodes and resizes them as the
protocol says, and the OpenAI-compatible judge sends them as ``image_url`` content parts (base64 data URLs)
after the text, which is how the reference scorers order them.
"""

from __future__ import annotations

import io
import json
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

from harness.api import GenerationConfig, ImagePart, Message, Request, TextPart
from harness.judges import charxiv, image_prompts, multichallenge
from harness.judges.base import CachedJudge, CallPolicy, JudgeCache, JudgeImage
from harness.openai_client import ChatClient, EndpointSettings, split_userinfo


@dataclass(frozen=True)
class JudgePrompt:
    """A versioned prompt template and the parser of its answers (raise ValueError when malformed)."""

    name: str
    version: str
    template: str
    parse: Callable[[str], Any]
    system: str | None = None  # a system message sent before the user turn (WISE has one)

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


# ---- images for the judge


def area_size(width: int, height: int, area: int) -> tuple[int, int]:
    """The aspect ratio kept and ``width*height`` about ``area``, truncated to integers (GEdit-Bench's
    ``calculate_dimensions`` as lmms-eval scores it: 512*512 gives e.g. 591x443 for a 4:3 image)."""
    ratio = width / height
    w = math.sqrt(area * ratio)
    return int(w), int(w / ratio)


def _sniff_mime(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def judge_image(source: Any, *, area: int | None = None, size: tuple[int, int] | None = None,
                fmt: str | None = None) -> JudgeImage:
    """One image for a judge prompt. A path with no resize and no format is sent as its file's bytes (WISE
    sends the generated PNG as it is); otherwise the image (path or PIL) is read as RGB, resized to about
    ``area`` pixels (aspect kept) or to ``size`` (PIL's bicubic default), and encoded as ``fmt`` (PNG by
    default; VIEScore's GPT backbone encodes JPEG)."""
    from PIL import Image

    from harness.media import load_image

    if isinstance(source, (str, Path)) and area is None and size is None and fmt is None:
        data = Path(source).read_bytes()
        return JudgeImage(data, _sniff_mime(data))
    image = source.convert("RGB") if isinstance(source, Image.Image) else load_image(source)
    if area is not None:
        image = image.resize(area_size(*image.size, area), Image.Resampling.BICUBIC)
    elif size is not None:
        image = image.resize(tuple(size), Image.Resampling.BICUBIC)
    fmt = (fmt or "PNG").upper().replace("JPG", "JPEG")
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return JudgeImage(buf.getvalue(), f"image/{fmt.lower()}")


# ---- parsers of the image judges' replies

VIESCORE_DELIMITER = "||V^=^V||"


def _parse_viescore(raw: str) -> list[float]:
    """VIEScore's reply reader (``mllm_output_to_dict``): the text between two ``||V^=^V||`` delimiters, else
    from the first ``{`` to the last ``}``, read as JSON for its ``score`` list; a reply that is only a
    ``[a, b]`` list or only an integer 0-10 counts as those scores. The reference's last resort, a random guess
    on a second unreadable reply, is not reproduced: an unreadable reply is retried, then a judge failure."""
    text = raw.strip()
    if raw.count(VIESCORE_DELIMITER) == 2:
        body = raw[raw.find(VIESCORE_DELIMITER) + len(VIESCORE_DELIMITER):raw.rfind(VIESCORE_DELIMITER)]
    elif "{" in raw and "}" in raw[raw.find("{"):]:
        body = raw[raw.find("{"):raw.rfind("}") + 1]
    else:
        bracket = raw[raw.find("["):raw.rfind("]") + 1] if "[" in raw else ""
        if re.fullmatch(r"\[\d+, ?\d+\]", bracket):
            return [float(x) for x in json.loads(bracket)]
        if re.fullmatch(r"\d+", text) and 0 <= int(text) <= 10:
            return [float(text)]
        raise ValueError("no score object, list or number in the judge's answer")
    body = body.strip().replace("\n", "")
    try:
        scores = json.loads(body)["score"]
    except (ValueError, KeyError, TypeError):  # loose JSON: find the score list (or number) itself
        match = re.search(r'"?score"?\s*:\s*(\[[^\]]*\]|-?\d+(?:\.\d+)?)', body)
        if not match:
            raise ValueError("no readable score in the judge's answer") from None
        scores = json.loads(match[1])
    scores = scores if isinstance(scores, list) else [scores]
    try:
        values = [float(x) for x in scores]
    except (TypeError, ValueError):
        raise ValueError(f"non-numeric scores {scores!r}") from None
    if not values:
        raise ValueError("empty score list")
    return values


WISE_SCORE = re.compile(r"\*{0,2}(Consistency|Realism|Aesthetic Quality)\*{0,2}\s*[:]?\s*(\d)", re.I)


def _parse_wise(raw: str) -> dict[str, float]:
    """WISE's ``extract_scores`` (2025-06 revision): each "Consistency|Realism|Aesthetic Quality: d" found
    (bold marks allowed, the last one of a name wins), keyed consistency / realism / aesthetic_quality. A
    reply with none is malformed (retried); one with only some is a verdict, and the task scores the missing
    ones 0, as the reference's ``scores.get(key, 0)`` does."""
    found = {name.lower().replace(" ", "_"): float(digit) for name, digit in WISE_SCORE.findall(raw)}
    if not found:
        raise ValueError("no Consistency/Realism/Aesthetic Quality score in the judge's answer")
    return found


def _protocol_template(text: str, *fields: str) -> str:
    """A protocol text with ``<field>`` placeholders as a str.format template (its own braces kept)."""
    template = text.replace("{", "{{").replace("}", "}}")
    for name in fields:
        template = template.replace(f"<{name}>", "{" + name + "}")
    return template


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
        # VIEScore "tie" (GEdit-Bench): SC over [source, edited] images, PQ over the edited image alone; texts in
        # harness.judges.image_prompts. The official backbone (Step1X-Edit GEdit-Bench) is gpt-4.1, max_tokens
        # 1400, the API's default temperature; SC = min(scores), PQ = min(scores), O = sqrt(SC * PQ).
        JudgePrompt("viescore_tie_sc", "1", _protocol_template(image_prompts.VIESCORE_TIE_SC, "instruction"),
                    _parse_viescore),
        JudgePrompt("viescore_pq", "1", _protocol_template(image_prompts.VIESCORE_PQ), _parse_viescore),
        # WISE (PKU-YuanGroup/WISE gpt_eval.py): system message, the text, then the generated image (PNG bytes);
        # gpt-4o-2024-05-13, temperature 0, max_tokens 2000.
        JudgePrompt("wise_wiscore", "1", _protocol_template(image_prompts.WISE_EVAL, "prompt", "explanation"),
                    _parse_wise, system=image_prompts.WISE_SYSTEM),
        # CharXiv (lmms-eval 0.5.x tasks/charxiv): the task assembles each query from the protocol text in
        # harness.judges.charxiv (descriptive: up to five answers of one template per query, graded when the
        # run aggregates, read with the batch's size; reasoning: one answer per query); JSON replies.
        JudgePrompt("charxiv_descriptive", "1", "{query}", charxiv.parse_descriptive),
        JudgePrompt("charxiv_reasoning", "1", "{query}", charxiv.parse_reasoning),
        # MultiChallenge Audio (harness.judges.multichallenge): MiMo-Audio-Eval's YES/NO judge (gpt-4o,
        # temperature 0) and Audio MultiChallenge's per-rubric-item judge (o4-mini per the dataset card).
        JudgePrompt("multichallenge_verdict", "1", multichallenge.MULTICHALLENGE_JUDGE,
                    multichallenge.parse_verdict),
        JudgePrompt("audiomc_rubric", "1", multichallenge.audiomc_template(), multichallenge.parse_criteria_met),
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

    def ask(self, using: str | None = None, images: Sequence[JudgeImage] = (), **fields: Any):
        """Render and judge the judge's own prompt, or the registered prompt ``using`` names (a task whose
        protocol fixes its prompt, e.g. MathVista's answer extractor, asks it of whatever judge the run has),
        showing ``images`` (see :func:`judge_image`) after the text."""
        prompt = PROMPTS[using] if using else self.prompt
        return self.judge(prompt.render(**fields), version=f"{prompt.name}@{prompt.version}", parse=prompt.parse,
                          images=images, system=prompt.system)


class OpenAICompatibleJudge(LLMJudge):
    """Asks ``<base_url>/chat/completions`` through the project's one HTTP client (greedy unless ``temperature`` says otherwise; None leaves it to
    the endpoint's default, as VIEScore's official scorer does). Images go as ``image_url`` parts after the
    text."""

    def __init__(self, base_url: str, model: str, prompt: str, api_key_env: str | None = None,
                 max_tokens: int = 64, temperature: float | None = 0, **kw: Any):
        super().__init__(prompt, **kw)
        self._endpoint = base_url.rstrip("/")  # may carry user:key@ credentials: used only to call
        self.base_url, _ = split_userinfo(self._endpoint)  # what identities and messages show
        self.model = model
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.temperature = temperature
        self._chat: ChatClient | None = None

    def identity(self) -> dict[str, Any]:
        ident = {"kind": "openai-compatible", "model": self.model, "host": urlparse(self.base_url).netloc,
                 "prompt": self.prompt_version}
        if self.temperature != 0:  # only when not greedy: greedy judges keep their cache keys
            ident["temperature"] = self.temperature
        return ident

    def _call(self, prompt: str, images: Sequence[JudgeImage] = (), system: str | None = None) -> str:
        content: Any = prompt
        if images:
            content = [{"type": "text", "text": prompt},
                       *({"type": "image_url", "image_url": {"url": im.data_url()}} for im in images)]
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        payload: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": self.max_tokens}
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        return self._client().complete(payload).text

    def _client(self) -> ChatClient:
        """The shared HTTP client, made on first use (the key is read then). Retries stay the judge's own
        (:class:`CallPolicy`), so the client makes one attempt per call and never trips its breaker."""
        if self._chat is None:
            self._chat = ChatClient(EndpointSettings((self._endpoint,), api_key_env=self.api_key_env, retries=0,
                                                     timeout_s=self.policy.timeout_s, max_consecutive_failures=None))
        return self._chat



class AdapterJudge(LLMJudge):
    """Uses any of our model adapters as the judge (e.g. a local model through ``harness.models``)."""

    def __init__(self, adapter: Any, prompt: str, max_new_tokens: int = 64, **kw: Any):
        super().__init__(prompt, **kw)
        self.adapter = adapter
        self.max_new_tokens = max_new_tokens

    def identity(self) -> dict[str, Any]:
        return {"kind": "adapter", "model": self.adapter.name, "fingerprint": self.adapter.fingerprint(),
                "prompt": self.prompt_version}

    def _call(self, prompt: str, images: Sequence[JudgeImage] = (), system: str | None = None) -> str:
        with tempfile.TemporaryDirectory(prefix="judge-images-") as folder:
            parts: list[Any] = [TextPart(prompt)]
            for i, im in enumerate(images):  # adapters read media from files
                path = Path(folder) / f"{i}.{im.mime.split('/')[-1]}"
                path.write_bytes(im.data)
                parts.append(ImagePart(str(path)))
            messages = ((Message.system(system),) if system else ()) + (Message.user(*parts),)
            request = Request(task="judge", doc_id=self.key(prompt, images=images, system=system),
                              messages=messages, generation=GenerationConfig(max_new_tokens=self.max_new_tokens))
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
                                     temperature=config.get("temperature", 0), cache=cache, policy=policy)
    if kind == "adapter":
        from harness.evaluate import _model_config
        from harness.models import build_model

        return AdapterJudge(build_model(_model_config(config["model"])), config["prompt"], cache=cache, policy=policy)
    raise ValueError(f"unknown judge kind {kind!r}")
