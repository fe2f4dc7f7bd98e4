"""``model=openai``: any OpenAI-compatible chat endpoint (vLLM, SGLang, a hosted API, ``harness serve``) as a
model adapter.

A batch from the runner is sent concurrently (up to ``max_concurrency`` in flight, over every ``base_urls``
replica) through the project's one HTTP client (:mod:`harness.openai_client`). A request that fails for good is
that sample's error; an endpoint that stops answering stops the run (:class:`~harness.api.ModelUnavailable`)
with the answers that did arrive kept, so a rerun asks only for the rest. Every response records its token
usage and, with ``prices`` (USD per million prompt / completion tokens), its cost. The fingerprint names the
served model and how media are sent, not the URL: replicas and a restarted server share cached answers.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from harness.api import MediaError, ModelUnavailable, Request, Response, stable_hash
from harness.models.openai_messages import VideoMode, chat_body
from harness.openai_client import ChatClient, Completion, EndpointDown, EndpointSettings


class OpenAIModel:
    """Chat completions against ``model`` at ``base_url`` (or several ``base_urls``)."""

    def __init__(self, name: str, model: str, base_url: str | None = None, base_urls: Sequence[str] = (),
                 api_key_env: str | None = None, max_concurrency: int = 8, retries: int = 3, backoff_s: float = 1.0,
                 timeout_s: float = 120.0, requests_per_minute: float | None = None,
                 tokens_per_minute: float | None = None, max_consecutive_failures: int = 10,
                 video: VideoMode = "frames", image_area: int | None = None, image_format: str | None = None,
                 prices: Mapping[str, float] | None = None):
        urls = tuple(base_urls) or ((base_url,) if base_url else ())
        if not urls:
            raise ValueError(f"model {name}: set model.args.base_url=<http://host:port/v1> (or base_urls)")
        if video not in ("frames", "video_url"):
            raise ValueError(f"model {name}: video must be 'frames' or 'video_url', got {video!r}")
        self.name = name
        self.model = model
        self.video = video
        self.image_area = image_area
        self.image_format = image_format
        self.prices = dict(prices or {})
        self.settings = EndpointSettings(urls, api_key_env=api_key_env, max_concurrency=int(max_concurrency),
                                         retries=int(retries), backoff_s=float(backoff_s), timeout_s=float(timeout_s),
                                         requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute,
                                         max_consecutive_failures=max_consecutive_failures)
        # batches several times the concurrency keep every slot busy while a batch's slowest request finishes
        self.preferred_batch_size = 4 * self.settings.max_concurrency
        self._client: ChatClient | None = None

    def fingerprint(self) -> str:
        return stable_hash({"adapter": "openai", "model": self.model, "video": self.video,
                            "image_area": self.image_area, "image_format": self.image_format})

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if self._client is None:
            try:
                self._client = ChatClient(self.settings)
            except RuntimeError as e:  # the key's variable is unset: no request can succeed
                raise ModelUnavailable(f"model {self.name}: {e}") from None
        out: list[Response | None] = [None] * len(requests)
        bodies, slots = [], []
        for i, request in enumerate(requests):
            if request.output != "text":
                out[i] = Response(error=f"model {self.name} answers in text only; {request.task} asks for "
                                        f"{request.output}")
                continue
            try:
                bodies.append(chat_body(request, self.model, video=self.video, image_area=self.image_area,
                                        image_format=self.image_format))
            except MediaError as e:
                out[i] = Response(error=f"sample {request.doc_id}: {e}")
                continue
            slots.append(i)
        try:
            results = self._client.complete_all(bodies)
        except EndpointDown as down:
            for i, completion in zip(slots, down.completed):
                if completion is not None:
                    out[i] = self._response(completion)
            raise ModelUnavailable(f"model {self.name}: {down}", out) from None
        for i, result in zip(slots, results):
            out[i] = (Response(error=f"sample {requests[i].doc_id}: {result}") if isinstance(result, Exception)
                      else self._response(result))
        return out  # type: ignore[return-value]

    def _response(self, completion: Completion) -> Response:
        stats: dict[str, Any] = {"prompt_tokens": completion.prompt_tokens,
                                 "completion_tokens": completion.completion_tokens,
                                 "finish_reason": completion.finish_reason}
        if self.prices:
            stats["cost_usd"] = (completion.prompt_tokens * self.prices.get("prompt", 0.0)
                                 + completion.completion_tokens * self.prices.get("completion", 0.0)) / 1e6
        if isinstance(completion.extra.get("routing"), dict):  # harness serve's extension field
            stats["routing"] = completion.extra["routing"]
        return Response(text=completion.text, stats=stats)
