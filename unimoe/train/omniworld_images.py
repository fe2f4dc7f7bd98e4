"""omniworld image output: draw a described shape, edit one attribute of a given image, remove synthetic rain.

Every item comes from an RNG seeded by (seed, split, kind, index), as in :mod:`unimoe.train.omniworld`, and
carries its ground truth (shape, colour, corner) and target rendering, so outputs are scored from pixels
(:func:`check_scene`) and against the target (PSNR/SSIM) with no model in the loop.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from unimoe.train.omniworld import COLOURS, SHAPES, draw_shape

VERSION = "2"
KINDS = ("draw", "edit", "derain")
SIZE = 64
BACKGROUND = (245, 245, 245)
CORNERS = {"top left": (16, 16), "top right": (48, 16), "bottom left": (16, 48), "bottom right": (48, 48)}
RADIUS = 11


@dataclass
class SceneItem:
    id: str
    kind: str
    prompt: str
    shape: str  # the target scene's attributes, which the checker reads back from the output's pixels
    colour: str
    corner: str
    target: str  # relative path of the target rendering
    source: str | None = None  # relative path of the input image (edit, derain)
    edited: str | None = None  # the attribute an edit changes ("colour" or "shape")


def render(shape: str, colour: str, corner: str) -> np.ndarray:
    """One shape on the light background, ``(64, 64, 3)`` uint8."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw_shape(ImageDraw.Draw(im), shape, colour, *CORNERS[corner], RADIUS)
    return np.asarray(im)


def add_rain(image: np.ndarray, rng: random.Random) -> np.ndarray:
    """Synthetic rain: 30-40 white, slanted, semi-transparent streaks (Rain100L-like, at 64 px)."""
    from PIL import Image, ImageDraw

    layer = Image.new("L", (SIZE, SIZE), 0)
    d = ImageDraw.Draw(layer)
    slant = rng.uniform(-0.4, 0.4)
    for _ in range(rng.randint(30, 40)):
        x, y, length = rng.uniform(-8, SIZE + 8), rng.uniform(-8, SIZE), rng.uniform(6, 14)
        d.line([(x, y), (x + slant * length, y + length)], fill=255, width=1)
    alpha = np.asarray(layer, dtype=np.float32)[..., None] / 255.0 * 0.85
    return np.round(image * (1 - alpha) + 255.0 * alpha).astype(np.uint8)


def make_item(kind: str, index: int, split: str, seed: int) -> tuple[SceneItem, np.ndarray, np.ndarray | None]:
    """An item, its target pixels and its source pixels (None for drawing)."""
    rng = random.Random(f"omniworld-images:{seed}:{split}:{kind}:{index}")
    shape, colour, corner = rng.choice(SHAPES), rng.choice(sorted(COLOURS)), rng.choice(sorted(CORNERS))
    stem = f"{kind}_{index:05d}"
    item = SceneItem(stem, kind, "", shape, colour, corner, f"images/{stem}_target.png")
    if kind == "draw":
        item.prompt = f"Draw a {colour} {shape} in the {corner} corner."
        return item, render(shape, colour, corner), None
    if kind == "edit":
        item.source, item.edited = f"images/{stem}_source.png", rng.choice(("colour", "shape"))
        if item.edited == "colour":
            old = rng.choice([c for c in sorted(COLOURS) if c != colour])
            item.prompt = f"Make the {shape} {colour}."
            return item, render(shape, colour, corner), render(shape, old, corner)
        old = rng.choice([s for s in SHAPES if s != shape])
        item.prompt = f"Turn the {colour} {old} into a {shape}."
        return item, render(shape, colour, corner), render(old, colour, corner)
    if kind == "derain":
        item.source = f"images/{stem}_source.png"
        item.prompt = "Remove the rain streaks from this image."
        clean = render(shape, colour, corner)
        return item, clean, add_rain(clean, rng)
    raise ValueError(f"unknown omniworld image-output kind {kind!r}; known: {', '.join(KINDS)}")


def iter_items(kinds: tuple[str, ...], n: int, split: str, seed: int
               ) -> Iterator[tuple[SceneItem, np.ndarray, np.ndarray | None]]:
    for kind in kinds:
        for i in range(n):
            yield make_item(kind, i, split, seed)


def generate(root: str | Path, kinds: tuple[str, ...] = KINDS, n: int = 50, split: str = "test", seed: int = 0) -> Path:
    """Write ``n`` items per kind under ``root`` (``docs.jsonl`` last, so a complete file means a complete split)."""
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for item, target, source in iter_items(kinds, n, split, seed):
        Image.fromarray(target).save(root / item.target)
        if source is not None:
            Image.fromarray(source).save(root / item.source)
        rows.append(asdict(item))
    tmp = root / "docs.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(root / "docs.jsonl")
    return root


def check_scene(image: np.ndarray, shape: str, colour: str, corner: str) -> dict[str, bool]:
    """Read shape, colour and corner back from pixels (any size; resized to 64 px).

    Foreground = pixels far from the background; colour = the palette colour nearest their median; corner =
    the quadrant of their centroid; shape = how much of their bounding box they fill (square ~1, circle
    ~0.79, triangle ~0.5). An output with almost no foreground, with foreground over a third of the image (noise,
    a flood fill), or whose foreground is no palette colour fails every check.
    """
    from PIL import Image

    im = np.asarray(Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB").resize((SIZE, SIZE)),
                    dtype=np.float32)
    mask = np.abs(im - np.array(BACKGROUND, dtype=np.float32)).max(axis=-1) > 60
    fail = {"colour": False, "shape": False, "corner": False}
    if not 40 <= mask.sum() <= SIZE * SIZE / 3:
        return fail
    ys, xs = np.nonzero(mask)
    median = np.median(im[mask], axis=0)
    found_colour = min(COLOURS, key=lambda c: float(np.sum((median - np.array(COLOURS[c])) ** 2)))
    if np.abs(median - np.array(COLOURS[found_colour])).max() > 60:
        return fail
    cx, cy = xs.mean(), ys.mean()
    found_corner = f"{'top' if cy < SIZE / 2 else 'bottom'} {'left' if cx < SIZE / 2 else 'right'}"
    x0, x1, y0, y1 = np.percentile(xs, 1), np.percentile(xs, 99), np.percentile(ys, 1), np.percentile(ys, 99)
    fill = mask.sum() / max((x1 - x0 + 1) * (y1 - y0 + 1), 1.0)
    found_shape = "square" if fill > 0.9 else "circle" if fill > 0.66 else "triangle"
    return {"colour": found_colour == colour, "shape": found_shape == shape, "corner": found_corner == corner}
