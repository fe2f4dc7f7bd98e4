"""What every judge shares: typed verdicts, a persistent cache, retries with backoff, and a call budget.

A judge failure is a counted failure, never a silent right or wrong: the verdict carries ``error`` and the
task decides (and records) what the protocol does with it. Every successful call is cached by
(judge identity, prompt version, input hash), so a rerun never pays for the same judgement twice. A prompt
with images (or a system message) adds their sha256 digests to the key; a text-only key is as it always was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from harness.api import stable_hash
from harness.shared_sqlite import connect_shared
from harness.time_limit import untimed


@dataclass
class Verdict:
    """A judge's answer: a parsed ``value`` (label, score, letter...), the raw text, or the error."""

    value: Any = None
    raw: str = ""
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class JudgeImage:
    """Encoded bytes of one image shown to the judge (already resized as the protocol says)."""

    data: bytes
    mime: str = "image/png"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass
class JudgeStats:
    calls: int = 0
    cached: int = 0
    failures: int = 0
    retries: int = 0
    # not in as_dict (results keep their form): they let a run tell "the judge failed every time" (a failed
    # task, reported with the judge's own error) from "some verdicts failed" (per-sample errors)
    verdicts: int = 0  # fresh verdicts parsed
    last_error: str | None = None

    def as_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "cached": self.cached, "failures": self.failures, "retries": self.retries}


class BudgetExceeded(RuntimeError):
    """More judge calls were needed than the configured budget allows."""


VERDICTS_SCHEMA = "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, value TEXT, raw TEXT)"


class JudgeCache:
    """SQLite store of successful verdicts; safe to share between concurrent runs."""

    def __init__(self, path: str | Path):
        self._db = connect_shared(path, setup=[VERDICTS_SCHEMA])

    def get(self, key: str) -> Verdict | None:
        row = self._db.execute("SELECT value, raw FROM verdicts WHERE key = ?", (key,)).fetchone()
        return Verdict(json.loads(row[0]), row[1], cached=True) if row else None

    def put(self, key: str, verdict: Verdict) -> None:
        self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?)", (key, json.dumps(verdict.value), verdict.raw))

    def close(self) -> None:
        self._db.close()


@dataclass
class CallPolicy:
    retries: int = 3
    backoff_s: float = 1.0  # doubled after every failed attempt
    timeout_s: float = 60.0
    budget: int | None = None  # most uncached calls this judge may make


class CachedJudge:
    """Base for judges: subclasses implement ``_call(prompt) -> raw text`` and ``parse(raw) -> value``."""

    prompt_version: str = "1"

    def __init__(self, cache: JudgeCache | None = None, policy: CallPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.cache = cache
        self.policy = policy or CallPolicy()
        self.stats = JudgeStats()
        self._sleep = sleep

    # ---- to implement
    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def _call(self, prompt: str, images: Sequence[JudgeImage] = (), system: str | None = None) -> str:
        """The raw reply; judges that only read text may keep the one-argument form."""
        raise NotImplementedError

    def parse(self, raw: str) -> Any:
        """The verdict's value; raise ValueError for malformed judge output."""
        return raw.strip()

    # ---- the shared machinery
    def key(self, prompt: str, version: str | None = None, images: Sequence[JudgeImage] = (),
            system: str | None = None) -> str:
        parts: list[Any] = [self.identity(), version or self.prompt_version, prompt]
        if images or system:  # only then: text-only keys (and caches) stay valid
            parts.append({"images": [im.digest for im in images], "system": system})
        return stable_hash(parts, n=32)

    @untimed  # waiting on the judge is not scoring time (see harness.time_limit)
    def judge(self, prompt: str, version: str | None = None, parse: Callable[[str], Any] | None = None,
              images: Sequence[JudgeImage] = (), system: str | None = None) -> Verdict:
        """One verdict; ``version``/``parse`` name and read a prompt other than the judge's own (a task asking
        its protocol's prompt of a run-wide judge); ``images`` follow the text, in order."""
        parse = parse or self.parse
        images = tuple(images)
        key = self.key(prompt, version, images, system)
        if self.cache and (hit := self.cache.get(key)) is not None:
            self.stats.cached += 1
            return hit
        if self.policy.budget is not None and self.stats.calls >= self.policy.budget:
            self.stats.failures += 1
            self.stats.last_error = f"judge call budget of {self.policy.budget} exhausted"
            return Verdict(error=self.stats.last_error)
        last_error = "no attempt made"
        for attempt in range(self.policy.retries + 1):
            if attempt:
                self.stats.retries += 1
                self._sleep(self.policy.backoff_s * 2 ** (attempt - 1))
            self.stats.calls += 1
            try:
                raw = self._call(prompt, images, system) if images or system else self._call(prompt)
            except Exception as e:  # transport errors: retried
                last_error = f"{type(e).__name__}: {e}"
                continue
            try:
                verdict = Verdict(parse(raw), raw)
            except ValueError as e:  # malformed output: retried too (sampling judges may recover)
                last_error = f"malformed judge output ({e}): {raw[:200]!r}"
                continue
            self.stats.verdicts += 1
            if self.cache:
                self.cache.put(key, verdict)
            return verdict
        self.stats.failures += 1
        self.stats.last_error = last_error
        return Verdict(error=last_error)
