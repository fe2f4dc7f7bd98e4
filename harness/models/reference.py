"""Reference adapters: a seeded chance baseline and an oracle that proves a task's pipeline end to end."""

from __future__ import annotations

import random
import time
from typing import Sequence

from harness.api import Request, Response, stable_hash

_WORDS = "the a of and to in is it that was for on are with as be at by this from or an".split()


class RandomModel:
    """Chance baseline. Multiple choice: a uniformly random option letter; free text: random words;
    image output: the input image unchanged (the identity is the natural 'do nothing' baseline).

    Each answer is seeded by (seed, task, document id), so it depends neither on batch size or order nor on
    where the data lie on disk: the same baseline everywhere.
    ``latency_ms`` simulates a slow model for runner and resume tests.
    """

    def __init__(self, name: str = "random", seed: int = 0, latency_ms: float = 0.0):
        self.name = name
        self.seed = seed
        self.latency_ms = latency_ms

    def fingerprint(self) -> str:
        return stable_hash({"adapter": "random", "seed": self.seed})

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for req in requests:
            if self.latency_ms:
                time.sleep(self.latency_ms / 1000)
            rng = random.Random(f"{self.seed}:{req.task}:{req.doc_id}")
            if req.output == "image":
                images = [p.path for p in req.media() if p.type == "image"]
                out.append(Response(image=images[0] if images else None, error=None if images else "no input image"))
            elif req.choices:
                out.append(Response(text=rng.choice(req.choices)))
            else:
                n = rng.randint(1, 8)
                out.append(Response(text=" ".join(rng.choice(_WORDS) for _ in range(n))))
        return out


class OracleModel:
    """Answers with the request's reference: the gold answer in the form a good model would write it."""

    def __init__(self, name: str = "oracle"):
        self.name = name

    def fingerprint(self) -> str:
        return stable_hash({"adapter": "oracle"})

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for req in requests:
            ref = req.reference
            if ref is None:
                out.append(Response(error=f"task {req.task} gives no reference for {req.doc_id}"))
            else:
                out.append(Response(text=ref.text, audio=ref.audio, image=ref.image))
        return out
