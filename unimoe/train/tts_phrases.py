"""The small vocabulary the tiny speech head learns to say, and its train/test split of phrases.

A phrase is ``<quality> <colour> <thing>`` (12 x 12 x 24 = 3,456 combinations of 48 words). The test phrases
(what omniworld's speech-output task asks to say) are drawn first from a seeded shuffle of every combination;
the training phrases are drawn from the rest, so no test phrase is ever heard in training, while every word
is (the head must compose words it knows, not replay phrases). Words are chosen to be common and without
homophones that Whisper would write differently, and none is a number word (Whisper writes those as digits).
"""

from __future__ import annotations

import itertools
import random

QUALITIES = ("big", "small", "old", "new", "soft", "warm", "dark", "bright", "tall", "long", "cold", "happy")
COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "pink", "brown", "black", "white", "gold",
           "silver")
THINGS = ("circle", "square", "triangle", "star", "heart", "ball", "box", "cup", "bird", "kite", "tree", "house",
          "shoe", "car", "hat", "book", "door", "table", "lamp", "clock", "train", "horse", "ring", "bell")
SLOTS = (QUALITIES, COLOURS, THINGS)
WORDS: tuple[str, ...] = tuple(w for slot in SLOTS for w in slot)
SPLIT_SEED = 1234
TEST_SIZE = 36


def _shuffled() -> list[str]:
    phrases = [" ".join(words) for words in itertools.product(*SLOTS)]
    random.Random(SPLIT_SEED).shuffle(phrases)
    return phrases


def held_out_phrases() -> tuple[str, ...]:
    """The held-out phrases omniworld asks the model to say (never in :func:`train_phrases`)."""
    return tuple(_shuffled()[:TEST_SIZE])


def train_phrases(n: int) -> tuple[str, ...]:
    """The first ``n`` phrases after the held-out ones (a seeded random sample of the other combinations)."""
    rest = _shuffled()[TEST_SIZE:]
    if not 0 < n <= len(rest):
        raise ValueError(f"train_phrases: n must be in 1..{len(rest)}, got {n}")
    return tuple(rest[:n])
