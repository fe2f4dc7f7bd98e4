"""MathVision as lmms-eval 0.5.x asks it: the step-by-step instruction glued to the question (no separator, as
the reference builds it), then, for multiple choice, "Choices: A. x" lines and the letter instruction; scored by
the ``mathvision`` rule and ``mathvision_acc`` (which also accepts the gold letter's option text)."""

from __future__ import annotations

from typing import Any, Mapping

from tasks.image_mcq import ImageMCQ


class MathVision(ImageMCQ):
    def prompt_text(self, doc: Mapping[str, Any]) -> str:
        p = self.config.prompt
        text = p["instruction"] + str(doc["question"])
        if self.option_texts(doc):
            text += f"\nChoices: {self.options_block(doc)}\n{p['mc_prompt']}"
        return text

    def metric_kwargs(self, name: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {"options": self.option_texts(doc)} if name == "mathvision_acc" else super().metric_kwargs(name, doc)
