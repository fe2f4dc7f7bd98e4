"""The OpenAI-compatible HTTP API over one in-process adapter: ``/v1/chat/completions``, ``/v1/models``,
``/health``.

Errors follow OpenAI's shape (``{"error": {"message", "type", "code"}}``): a malformed request or undecodable
media is 400 and the server keeps serving, a missing or wrong bearer token 401, a full queue 503, a model
failure 500 with its message. Responses carry the adapter's routing statistics, when it has them (unimoe
models), in the extension field ``routing`` (per-modality, per-layer expert counts; see
:mod:`harness.routing_report`).
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import JSONResponse

from harness.api import MediaError, ModelAdapter, Response
from harness.serve.batcher import DynamicBatcher, QueueFull
from harness.serve.protocol import BadRequest, Limits, parse_chat


def error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def create_app(adapter: ModelAdapter, *, max_batch: int = 16, max_wait_ms: float = 10.0, max_queue: int = 256,
               token: str | None = None, limits: Limits = Limits()) -> FastAPI:
    """A FastAPI app serving ``adapter`` under its name; ``token`` (when given) is required as a bearer token."""
    batcher = DynamicBatcher(adapter, max_batch=max_batch, max_wait_s=max_wait_ms / 1000, max_queue=max_queue)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_: Any):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title=f"harness serve: {adapter.name}", lifespan=lifespan)
    app.state.batcher = batcher

    @app.middleware("http")
    async def bearer(request: HTTPRequest, call_next: Any) -> Any:
        if token and request.url.path != "/health":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return error(401, "missing or wrong bearer token", "authentication_error")
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": adapter.name}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": adapter.name, "object": "model", "created": created,
                                            "owned_by": "unimoe-harness"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: HTTPRequest) -> Any:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as e:
            return error(400, f"malformed JSON body: {e}")
        try:
            harness_request = parse_chat(body, adapter.name, limits)
        except BadRequest as e:
            return error(400, str(e))
        try:
            result = await batcher.submit(harness_request)
        except QueueFull as e:
            return error(503, str(e), "server_overloaded")
        if isinstance(result, MediaError):
            return error(400, f"undecodable media: {result}")
        if isinstance(result, Exception):
            return error(500, f"model failed: {type(result).__name__}: {result}", "server_error")
        if result.error:
            return error(500, f"model failed: {result.error}", "server_error")
        return JSONResponse(completion(result, adapter.name))

    return app


def completion(response: Response, model: str) -> dict[str, Any]:
    """The chat.completion object for one adapter response."""
    stats = response.stats
    prompt_tokens = int(stats.get("prompt_tokens", 0))
    completion_tokens = int(stats.get("new_tokens", stats.get("completion_tokens", 0)))
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": response.text},
                     "finish_reason": "length" if stats.get("finish_reason") == "length" else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }
    if stats.get("routing"):
        body["routing"] = stats["routing"]
    return body
