"""``scoring: likelihood``: a multiple-choice answer picked by log-likelihood instead of written by the model.

As lm-eval's ``multiple_choice`` output type does, each option is scored as the continuation ``" " + option``
of the prompt (plain text, no chat template) and the answer is the option with the highest log-likelihood.
The options are the request's choices (its option letters, which the prompt lists, as lm-eval's MMLU does);
since they are equally long, lm-eval's length-normalised ``acc_norm`` picks the same option as ``acc``. The
chosen letter becomes the response text, so extraction, metrics, cache and leaderboards work unchanged; the
per-option log-likelihoods are kept in the response's stats.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.api import LikelihoodAdapter, LoglikelihoodRequest, ModelAdapter, Request, Response, stable_hash
from harness.task import TaskConfig


class LikelihoodChoice:
    """An adapter that answers multiple-choice requests by scoring their options with ``model``."""

    def __init__(self, model: ModelAdapter, delimiter: str = " "):
        if not isinstance(model, LikelihoodAdapter):
            raise TypeError(f"model {model.name} cannot score text (no loglikelihood); "
                            f"use scoring: generate with it")
        self.model = model
        self.name = model.name
        self.delimiter = delimiter

    def fingerprint(self) -> str:
        return stable_hash({"likelihood_of": self.model.fingerprint(), "delimiter": self.delimiter})

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out: list[Response | None] = [None] * len(requests)
        scored: list[tuple[int, LoglikelihoodRequest]] = []
        for i, request in enumerate(requests):
            if request.media():
                out[i] = Response(error=f"likelihood scoring takes text-only requests; {request.doc_id} has "
                                        f"{request.media()[0].type}")
            elif not request.choices:
                out[i] = Response(error=f"likelihood scoring needs options; {request.task}/{request.doc_id} has none")
            else:
                context = request.text()
                scored.extend((i, LoglikelihoodRequest(context, self.delimiter + c)) for c in request.choices)
        results = iter(self.model.loglikelihood([r for _, r in scored]) if scored else [])
        for i, request in enumerate(requests):
            if out[i] is None:
                logprobs, greedy = zip(*(next(results) for _ in request.choices))
                best = max(range(len(logprobs)), key=logprobs.__getitem__)
                out[i] = Response(text=request.choices[best],
                                  stats={"loglikelihoods": list(logprobs), "greedy": list(greedy)})
        return [r for r in out if r is not None]


def scoring_model(model: ModelAdapter, config: TaskConfig) -> ModelAdapter:
    """The adapter a task's ``scoring`` mode calls: the model itself, or its likelihood chooser (the option
    follows ``options.target_delimiter``, lm-eval's name, a space by default)."""
    if config.scoring != "likelihood":
        return model
    return LikelihoodChoice(model, delimiter=str(config.options.get("target_delimiter", " ")))
