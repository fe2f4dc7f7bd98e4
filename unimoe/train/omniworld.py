"""``omniworld``: a procedurally generated omnimodal benchmark on which a tiny model can learn on a CPU.

Every item is drawn from an RNG seeded by (seed, split, modality, index), so a split is byte-identical
wherever it is generated, and train and test never share a seed. Media are tiny (64 px images, 8-frame
64 px videos at 4 fps, <= 2 s of 16 kHz audio) so thousands of items train and a test split evaluates in
seconds. Options of a multiple-choice item are listed in one fixed order per question type (as in benchmarks
with fixed answer lists), so the suite measures perception and reasoning, not robustness to option order;
chance stays at one in four. Modalities and what is asked:

- image: colour, shape or number of shapes (multiple choice);
- video: direction a dot moves, which colour appears first (multiple choice);
- audio: number of beeps, rising or falling pitch (multiple choice);
- speech: spoken digits to transcribe, spoken arithmetic to answer (short answer; needs an offline TTS);
- text: small arithmetic (short answer) and syllogisms (multiple choice);
- omni: a spoken question about an image (multiple choice).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

VERSION = "2"
MODALITIES = ("image", "video", "audio", "speech", "text", "omni")
LETTERS = "ABCD"
SIZE = 64
RATE = 16_000
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
SHAPES = ("circle", "square", "triangle")
DIGITS = "zero one two three four five six seven eight nine".split()
MCQ_SUFFIX = "\nAnswer with the option's letter from the given choices directly."


@dataclass
class Item:
    kind: str
    question: str
    answer: str  # the gold answer text
    options: list[str] | None = None  # option texts for multiple choice
    media: dict[str, str] | None = None  # role -> relative path


# --------------------------------------------------------------------------------------------------
# Drawing and sound


def _draw(shape: str, colour: str, count: int, rng: random.Random):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (SIZE, SIZE), (245, 245, 245))
    d = ImageDraw.Draw(im)
    r = 9 if count > 1 else 14
    spots = [(16, 16), (48, 48), (48, 16), (16, 48)] if count > 1 else [(32, 32)]
    for cx, cy in spots[:count]:
        draw_shape(d, shape, colour, cx + rng.randint(-3, 3), cy + rng.randint(-3, 3), r)
    return im


def draw_shape(d, shape: str, colour: str, cx: int, cy: int, r: int) -> None:
    """One filled shape of half-size ``r`` centred at ``(cx, cy)`` on a ``PIL.ImageDraw``."""
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        d.ellipse(box, fill=COLOURS[colour])
    elif shape == "square":
        d.rectangle(box, fill=COLOURS[colour])
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=COLOURS[colour])


def _write_video(path: Path, frames: list[np.ndarray], fps: int = 4) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast", "threads": "1"}
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _tone(freqs: np.ndarray) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(freqs) / RATE
    return 0.3 * np.sin(phase)


def _write_wav(path: Path, samples: np.ndarray) -> None:
    import soundfile as sf

    sf.write(str(path), np.asarray(samples, dtype=np.float32), RATE, subtype="PCM_16")


class Speaker:
    """Offline TTS (hibari-tts, seeded, deterministic) resampled to 16 kHz."""

    def __init__(self):
        try:
            import hibari
        except ImportError as e:
            raise RuntimeError("omniworld speech items need the offline TTS `pip install hibari-tts`") from e
        self._tts = hibari.Hibari()
        self._rate = hibari.SAMPLE_RATE

    def __call__(self, text: str) -> np.ndarray:
        from scipy.signal import resample_poly

        audio = np.asarray(self._tts(text, seed=0), dtype=np.float64)
        return resample_poly(audio, RATE, self._rate).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Item makers: (rng, folder, stem, speaker) -> Item


def _mcq(answer: str, pool: list[str]) -> list[str]:
    """The four options of a question type, in its fixed order."""
    assert len(pool) == 4 and answer in pool
    return list(pool)


def make_image(rng, folder, stem, speaker) -> Item:
    shape, colour, count = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.randint(1, 4)
    _draw(shape, colour, count, rng).save(folder / f"{stem}.png")
    kind = rng.choice(("colour", "shape", "count"))
    if kind == "colour":
        q, a, pool = "What colour are the shapes in the image?", colour, list(COLOURS)
    elif kind == "shape":
        q, a, pool = "What shape is shown in the image?", shape, [*SHAPES, "star"]
    else:
        q, a, pool = "How many shapes are in the image?", DIGITS[count], DIGITS[1:5]
    return Item(kind, q, a, _mcq(a, pool), {"image": f"{stem}.png"})


def make_video(rng, folder, stem, speaker) -> Item:
    from PIL import Image, ImageDraw

    frames = []
    if rng.random() < 0.5:
        direction = rng.choice(("left", "right", "up", "down"))
        dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[direction]
        x0, y0 = 32 - dx * 20, 32 - dy * 20
        for f in range(8):
            im = Image.new("RGB", (SIZE, SIZE), (245, 245, 245))
            x, y = x0 + dx * f * 40 // 7, y0 + dy * f * 40 // 7
            ImageDraw.Draw(im).ellipse((x - 6, y - 6, x + 6, y + 6), fill=COLOURS["blue"])
            frames.append(np.asarray(im))
        item = Item("direction", "In which direction does the dot move?", direction,
                    _mcq(direction, ["left", "right", "up", "down"]))
    else:
        first, second = rng.sample(list(COLOURS), 2)
        for f in range(8):
            im = Image.new("RGB", (SIZE, SIZE), (245, 245, 245))
            d = ImageDraw.Draw(im)
            if f >= 1:
                d.rectangle((6, 20, 28, 42), fill=COLOURS[first])
            if f >= 5:
                d.rectangle((36, 20, 58, 42), fill=COLOURS[second])
            frames.append(np.asarray(im))
        item = Item("order", "Which colour appears first in the video?", first, _mcq(first, list(COLOURS)))
    _write_video(folder / f"{stem}.mp4", frames)
    item.media = {"video": f"{stem}.mp4"}
    return item


def make_audio(rng, folder, stem, speaker) -> Item:
    if rng.random() < 0.5:
        count = rng.randint(1, 4)
        beep = _tone(np.full(int(0.15 * RATE), rng.choice((440.0, 660.0, 880.0))))
        gap = np.zeros(int(0.2 * RATE))
        samples = np.concatenate([np.concatenate([beep, gap]) for _ in range(count)])
        item = Item("beeps", "How many beeps do you hear?", DIGITS[count], _mcq(DIGITS[count], DIGITS[1:5]))
    else:
        rising = rng.random() < 0.5
        lo, hi = rng.uniform(300, 500), rng.uniform(900, 1400)
        sweep = np.linspace(lo, hi, RATE) if rising else np.linspace(hi, lo, RATE)
        answer = "rising" if rising else "falling"
        item = Item("pitch", "Is the pitch of the tone rising or falling?", answer,
                    _mcq(answer, ["rising", "falling", "steady", "silent"]))
        samples = _tone(sweep)
    _write_wav(folder / f"{stem}.wav", samples)
    item.media = {"audio": f"{stem}.wav"}
    return item


def make_speech(rng, folder, stem, speaker) -> Item:
    if rng.random() < 0.5:
        words = [DIGITS[rng.randrange(10)] for _ in range(2)]
        text = " ".join(words)
        item = Item("digits", "Transcribe the spoken digits.", text)
    else:
        a, b = rng.randint(1, 4), rng.randint(1, 4)
        text = f"What is {DIGITS[a]} plus {DIGITS[b]}?"
        item = Item("spoken_sum", "Answer the spoken question with one number word.", DIGITS[a + b])
    _write_wav(folder / f"{stem}.wav", speaker(text))
    item.media = {"audio": f"{stem}.wav"}
    return item


def make_text(rng, folder, stem, speaker) -> Item:
    if rng.random() < 0.5:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return Item("sum", f"What is {a} + {b}? Answer with a number.", str(a + b))
    x, y, z = rng.sample(["cats", "birds", "robots", "trees", "stones", "clouds"], 3)
    valid = rng.random() < 0.5
    premise = f"All {x} are {y}. All {y} are {z}." if valid else f"All {x} are {y}. Some {z} are {y}."
    answer = "yes" if valid else "cannot tell"
    return Item("syllogism", f"{premise} Must all {x} be {z}?", answer,
                _mcq(answer, ["yes", "no", "cannot tell", "only some"]))


def make_omni(rng, folder, stem, speaker) -> Item:
    shape, colour, count = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.randint(1, 3)
    _draw(shape, colour, count, rng).save(folder / f"{stem}.png")
    asks_colour = rng.random() < 0.5
    spoken = "What colour are the shapes?" if asks_colour else "What shape do you see?"
    _write_wav(folder / f"{stem}.wav", speaker(spoken))
    answer = colour if asks_colour else shape
    pool = list(COLOURS) if asks_colour else [*SHAPES, "star"]
    return Item("spoken_question", "Answer the spoken question about the image.", answer, _mcq(answer, pool),
                {"image": f"{stem}.png", "audio": f"{stem}.wav"})


MAKERS: dict[str, Callable] = {"image": make_image, "video": make_video, "audio": make_audio, "speech": make_speech,
                               "text": make_text, "omni": make_omni}


# --------------------------------------------------------------------------------------------------
# Splits


def item_seed(seed: int, split: str, modality: str, index: int) -> str:
    return f"omniworld:{VERSION}:{seed}:{split}:{modality}:{index}"


def generate(root: str | Path, split: str = "test", n: int = 20, seed: int = 0,
             modalities: tuple[str, ...] = MODALITIES) -> list[dict[str, Any]]:
    """Write ``n`` items per modality (media + ``docs.jsonl``) under ``root`` and return the docs."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    speaker = Speaker() if {"speech", "omni"} & set(modalities) else None
    docs = []
    for modality in modalities:
        folder = root / modality
        folder.mkdir(exist_ok=True)
        for i in range(n):
            rng = random.Random(item_seed(seed, split, modality, i))
            item = MAKERS[modality](rng, folder, f"{split}-{i:05d}", speaker)
            doc = {"id": f"{modality}-{split}-{i:05d}", "modality": modality, "kind": item.kind,
                   "question": item.question, "answer_text": item.answer,
                   "media": {k: f"{modality}/{v}" for k, v in (item.media or {}).items()}}
            if item.options:
                doc["options"] = [f"{LETTERS[j]}. {o}" for j, o in enumerate(item.options)]
                doc["answer"] = LETTERS[item.options.index(item.answer)]
            else:
                doc["answer"] = item.answer
            docs.append(doc)
    tmp = root / f"docs.jsonl.{os.getpid()}.tmp"
    tmp.write_text("".join(json.dumps(d) + "\n" for d in docs))
    tmp.replace(root / "docs.jsonl")  # the marker that the split is complete
    return docs


def prompt_text(doc: dict[str, Any]) -> str:
    """The question as the model sees it (options and the letter instruction for multiple choice)."""
    if "options" in doc:
        return doc["question"] + "\n" + "\n".join(doc["options"]) + MCQ_SUFFIX
    return doc["question"]


def training_examples(root: str | Path, split: str = "train", n: int = 1000, seed: int = 0,
                      modalities: tuple[str, ...] = MODALITIES) -> Iterator[dict[str, Any]]:
    """Chat-style training examples: text with ``<image>``/``<video>``/``<audio>`` placeholders, media paths,
    the target answer (the option letter for multiple choice) and the modality."""
    root = Path(root)
    if not (root / "docs.jsonl").is_file():
        generate(root, split=split, n=n, seed=seed, modalities=modalities)
    for line in (root / "docs.jsonl").read_text().splitlines():
        doc = json.loads(line)
        tags = "".join(f"<{k}>" for k in doc["media"])
        yield {"messages": [{"role": "user", "content": tags + prompt_text(doc)},
                            {"role": "assistant", "content": doc["answer"]}],
               "media": {k: str(root / v) for k, v in doc["media"].items()},
               "answer": doc["answer"], "modality": doc["modality"]}
