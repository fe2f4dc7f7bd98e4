"""The project's one HTTP client: OpenAI-compatible chat completions through the official ``openai`` package.

Both the ``openai`` model adapter and the LLM judges call endpoints through :class:`ChatClient`. It adds what
an evaluation run needs on top of the ``openai`` client: a bound on requests in flight, retries with
exponential backoff on 429 / 5xx / timeouts / lost connections, request and token rate limits, client-side
load balancing over several replicas (the least busy one is asked), and a circuit breaker: after
``max_consecutive_failures`` connection failures in a row with no answer in between, the endpoint is declared
down and every pending and later call raises :class:`EndpointDown` at once, so a run stops with one message
instead of marking thousands of samples failed.

The client runs its own event loop on a daemon thread (started on first use), so synchronous callers (the
runner's batches, a judge's single call) share one connection pool and the concurrency limit. The API key is
read from the environment variable the settings name, at construction, and is kept only in memory.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence, TypeVar
from urllib.parse import unquote, urlparse

T = TypeVar("T")

# Sent when no key variable is named: OpenAI-compatible servers started without a key (vLLM, SGLang, ours)
# ignore it, and the official client refuses to run without one.
NO_KEY = "none"
RETRIED_STATUS = frozenset({408, 409, 429})  # plus every 5xx


class EndpointDown(RuntimeError):
    """The endpoint stopped answering: too many consecutive connection failures. ``completed`` holds the
    results of a :meth:`ChatClient.complete_all` call that did arrive (None for the others)."""

    def __init__(self, message: str, completed: Sequence["Completion | None"] = ()):
        super().__init__(message)
        self.completed = list(completed)


class EndpointError(RuntimeError):
    """One request failed for good (after its retries); the message says how (HTTP status, timeout...)."""


@dataclass(frozen=True)
class EndpointSettings:
    """Where and how to call. ``base_urls`` are replicas of one model (each ``http://host:port/v1``)."""

    base_urls: tuple[str, ...]
    api_key_env: str | None = None
    max_concurrency: int = 8
    retries: int = 3
    backoff_s: float = 1.0  # doubled after every failed attempt
    timeout_s: float = 60.0
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_consecutive_failures: int | None = 10  # None: never declare the endpoint down

    def __post_init__(self) -> None:
        if not self.base_urls:
            raise ValueError("an OpenAI-compatible endpoint needs at least one base_url")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")

    def api_key(self) -> str:
        if not self.api_key_env:
            return NO_KEY
        key = os.environ.get(self.api_key_env)
        if not key:
            raise RuntimeError(f"the endpoint needs an API key in the environment variable {self.api_key_env}")
        return key


@dataclass
class Completion:
    """One chat completion: the text, token usage, and any non-standard top-level fields (``extra``; our
    server's ``routing``)."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1


class RateLimiter:
    """A token bucket refilled at ``per_minute`` units a minute, holding at most one minute's worth."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = per_minute
        self.level = per_minute
        self.clock = clock
        self.stamp = clock()

    def delay(self, amount: float) -> float:
        """Take ``amount`` units and return how long to wait before using them (0 when available now)."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= min(amount, self.capacity)
        return 0.0 if self.level >= 0 else -self.level / self.rate


def estimated_tokens(body: dict[str, Any]) -> int:
    """Tokens a request may use, for the tokens-per-minute limit: ~4 characters a token of its text plus the
    completion budget (media parts are not counted: their cost is model-specific)."""
    chars = 0
    for message in body.get("messages", ()):
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return chars // 4 + int(body.get("max_tokens") or 0)


class _LoopThread:
    """An event loop on a daemon thread; ``run`` executes a coroutine there from any other thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coro: Awaitable[T]) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="openai-client", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()  # type: ignore[arg-type]


def split_userinfo(url: str) -> tuple[str, str | None]:
    """``http://user:key@host/v1`` -> (``http://host/v1``, ``"user:key"``): credentials never reach an identity,
    a cache key or a message that quotes the URL."""
    parts = urlparse(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=host).geturl(), unquote(userinfo)


def _with_credentials(url: str, api_key_env: str | None) -> tuple[str, dict[str, str] | None]:
    """The URL to call and, for credentials written into it (and no API key variable), HTTP basic auth as curl
    sends it."""
    clean, userinfo = split_userinfo(url.rstrip("/"))
    if userinfo is None or api_key_env:
        return clean, None
    return clean, {"Authorization": "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")}


class ChatClient:
    """Chat completions against one model behind one or more OpenAI-compatible base URLs."""

    def __init__(self, settings: EndpointSettings, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        import openai

        self.settings = settings
        self._sleep = sleep
        key = settings.api_key()
        # retries and backoff are ours (the breaker must see every failure), so the client makes one attempt
        self._clients = [openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=settings.timeout_s,
                                            default_headers=headers)
                         for url, headers in (_with_credentials(u, settings.api_key_env) for u in settings.base_urls)]
        self._in_flight = [0] * len(self._clients)
        self._turn = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._requests = RateLimiter(settings.requests_per_minute) if settings.requests_per_minute else None
        self._tokens = RateLimiter(settings.tokens_per_minute) if settings.tokens_per_minute else None
        self._consecutive_failures = 0
        self.down: str | None = None
        self._loop = _LoopThread()

    # ---- synchronous entry points
    def complete(self, body: dict[str, Any]) -> Completion:
        """One completion (raises :class:`EndpointError` or :class:`EndpointDown`)."""
        return self._loop.run(self.acomplete(body))

    def complete_all(self, bodies: Sequence[dict[str, Any]]) -> list[Completion | Exception]:
        """Every body concurrently (up to ``max_concurrency`` in flight), in order; a request that failed for
        good is its exception. Raises :class:`EndpointDown` when the endpoint is down."""
        return self._loop.run(self._complete_all(bodies))

    async def _complete_all(self, bodies: Sequence[dict[str, Any]]) -> list[Completion | Exception]:
        results = await asyncio.gather(*(self.acomplete(b) for b in bodies), return_exceptions=True)
        if self.down:
            raise EndpointDown(self.down, [r if isinstance(r, Completion) else None for r in results])
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Exception):
                raise r
        return list(results)  # type: ignore[arg-type]

    # ---- the call
    async def acomplete(self, body: dict[str, Any]) -> Completion:
        import openai

        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.settings.max_concurrency)
        last = "no attempt made"
        for attempt in range(self.settings.retries + 1):
            if attempt:
                await self._sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            if self.down:
                raise EndpointDown(self.down)
            await self._wait_for_rate(body)
            async with self._semaphore:
                if self.down:
                    raise EndpointDown(self.down)
                replica = self._pick()
                self._in_flight[replica] += 1
                try:
                    reply = await self._clients[replica].chat.completions.create(**body)
                except openai.APIConnectionError as e:  # refused, reset, or timed out: nobody answered
                    last = f"{self._host(replica)}: {e}"
                    self._connection_failed(last)
                    continue
                except openai.APIStatusError as e:
                    self._consecutive_failures = 0
                    last = f"{self._host(replica)} answered HTTP {e.status_code}: {_message(e)}"
                    if e.status_code in RETRIED_STATUS or e.status_code >= 500:
                        continue
                    raise EndpointError(last) from None
                finally:
                    self._in_flight[replica] -= 1
            self._consecutive_failures = 0
            return _completion(reply, attempt + 1)
        raise EndpointError(f"{last} (after {self.settings.retries + 1} attempts)")

    def _pick(self) -> int:
        """The replica with the fewest requests in flight; ties go round-robin."""
        n = len(self._clients)
        order = [(self._turn + i) % n for i in range(n)]
        self._turn = (self._turn + 1) % n
        return min(order, key=lambda i: self._in_flight[i])

    async def _wait_for_rate(self, body: dict[str, Any]) -> None:
        wait = self._requests.delay(1) if self._requests else 0.0
        if self._tokens:
            wait = max(wait, self._tokens.delay(estimated_tokens(body)))
        if wait > 0:
            await self._sleep(wait)

    def _connection_failed(self, detail: str) -> None:
        self._consecutive_failures += 1
        limit = self.settings.max_consecutive_failures
        if limit is not None and self._consecutive_failures >= limit and not self.down:
            hosts = ", ".join(self._host(i) for i in range(len(self._clients)))
            self.down = (f"endpoint down: {self._consecutive_failures} consecutive connection failures at {hosts} "
                         f"(last: {detail}); start the server and rerun: finished samples are cached")

    def _host(self, replica: int) -> str:
        return urlparse(self.settings.base_urls[replica]).netloc or self.settings.base_urls[replica]


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(getattr(error, "message", error))[:300]


def _completion(reply: Any, attempts: int) -> Completion:
    choices = getattr(reply, "choices", None)
    if not choices or choices[0].message is None:
        raise EndpointError("the endpoint returned no choices[0].message")
    usage = getattr(reply, "usage", None)
    extra = dict(getattr(reply, "model_extra", None) or {})
    return Completion(
        text=choices[0].message.content or "",
        finish_reason=choices[0].finish_reason,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        extra=extra,
        attempts=attempts,
    )
