"""GPQA Diamond, zero-shot, generative: four shuffled choices shown as (A)-(D), answer letter extracted.

Choices are cleaned and shuffled as lm-eval's GPQA ``process_docs`` does, but with a private RNG per
question instead of the global one, so a question's order never depends on which others are loaded, the
shard, or the run seed: ``random.Random(f"gpqa:{shuffle_seed}:{Record ID}")`` shuffles
``[incorrect 1, incorrect 2, incorrect 3, correct]``. ``options.shuffle_seed`` picks another fixed order.
"""

from __future__ import annotations

import random
import re
from typing import Any, Mapping

from harness.api import DocumentError, Reference
from harness.extract.base import ExtractContext
from harness.task import Task
from tasks.common import LETTERS

ANSWER_FIELDS = ("Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3", "Correct Answer")


def clean(text: str) -> str:
    """lm-eval's GPQA text clean-up: strip, ' [title]' -> '. ', drop other [bracketed] tags, squeeze spaces."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


class GPQA(Task):
    def shuffled(self, doc: Mapping[str, Any]) -> tuple[list[str], str]:
        """(choices in display order, letter of the correct one)."""
        try:
            answers = [clean(str(doc[k])) for k in ANSWER_FIELDS]
            record = doc["Record ID"]
        except KeyError as e:
            raise DocumentError(f"task {self.name}: row lacks field {e}") from None
        correct = answers[-1]
        rng = random.Random(f"gpqa:{self.config.options.get('shuffle_seed', 0)}:{record}")
        rng.shuffle(answers)
        return answers, LETTERS[answers.index(correct)]

    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        choices, _ = self.shuffled(doc)
        fields = {f"choice{i + 1}": c for i, c in enumerate(choices)}
        return super().prompt_text({**doc, "question": clean(str(doc["Question"])), **fields})

    def choices(self, doc: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(LETTERS[:4])

    def target(self, doc: Mapping[str, Any]) -> str:
        return self.shuffled(doc)[1]

    def extract_context(self, doc: Mapping[str, Any]) -> ExtractContext:
        choices, _ = self.shuffled(doc)
        return ExtractContext(options=dict(zip(LETTERS, choices)), doc=doc, seed=self.seed)

    def oracle(self, doc: Mapping[str, Any]) -> Reference:
        return Reference(text=f"The answer is ({self.target(doc)}).")
