"""LogicVista, direct-answer variant: the row's question and a one-line instruction to answer with the
option label(s), read by the ``logicvista_choices`` rule and scored by set match against the gold labels
("A, C" needs exactly A and C, in any order), the way LogicVista's own scorer compares them."""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from harness.api import DocumentError
from harness.extract.logicvista import canonical
from tasks.image_mcq import ImageMCQ


class LogicVista(ImageMCQ):
    def docs(self) -> Iterator[dict[str, Any] | DocumentError]:
        """Rows as stored, with the reasoning skill(s) lifted to one string for the breakdown (the hub keeps
        a list, e.g. ["inductive"])."""
        for row in super().docs():
            if isinstance(row, DocumentError):
                yield row
                continue
            skill = row.get("skill")
            yield {**row, "reasoning_skill": ", ".join(skill) if isinstance(skill, (list, tuple)) else skill}

    def target(self, doc: Mapping[str, Any]) -> str:
        """The gold label set in canonical form; "" for the one row stored without an answer, which no reply
        can match (the reference counts it, wrong, in its 448)."""
        gold = doc.get("answer")
        return canonical({part.strip() for part in str(gold or "").split(",") if part.strip()})
