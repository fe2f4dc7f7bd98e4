"""Reference adapters: a seeded chance baseline and an oracle that proves a task's pipeline end to end."""

from __future__ import annotations

import random
import time
from typing import Sequence

from harness.api import Request, Response, stable_hash

_WORDS = "the a of and to in is it that was for on are with as be at by this from or an".split()


class RandomModel:
    """Chance baseline. Multiple choice: a uniformly random option letter; free text: random words;
    image output: the input image unchanged (the identity is the natural 'do nothing' baseline), or uniform
    noise where there is no input image (text-to-image); audio output: one second of white noise.

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
                out.append(Response(image=images[0] if images else _noise_image(rng)))
            elif req.output == "audio":
                out.append(Response(audio=_noise_audio(rng)))
            elif req.choices:
                out.append(Response(text=rng.choice(req.choices)))
            else:
                n = rng.randint(1, 8)
                out.append(Response(text=" ".join(rng.choice(_WORDS) for _ in range(n))))
        return out


def _noise_image(rng: random.Random, size: int = 256) -> str:
    """A seeded uniform-noise RGB PNG (the chance output of a text-to-image model), as a cached file."""
    import io

    import numpy as np
    from PIL import Image

    from harness.media import stored_bytes

    pixels = np.random.default_rng(rng.getrandbits(64)).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return str(stored_bytes(buffer.getvalue(), ".png"))


def _noise_audio(rng: random.Random, seconds: float = 1.0, rate: int = 16_000) -> str:
    """A seeded white-noise 16-bit WAV (the chance output of a speech generator), as a cached file."""
    import io

    import numpy as np
    import soundfile as sf

    from harness.media import stored_bytes

    samples = 0.1 * np.random.default_rng(rng.getrandbits(64)).standard_normal(int(seconds * rate))
    buffer = io.BytesIO()
    sf.write(buffer, samples.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return str(stored_bytes(buffer.getvalue(), ".wav"))


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
