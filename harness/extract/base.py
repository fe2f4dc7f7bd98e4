"""The extraction-rule contract: a named, versioned function from raw model output to an answer.

Every sample log records ``rule@version`` so that a score can be explained and re-derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from harness.registry import Registry


@dataclass(frozen=True)
class ExtractContext:
    """What a rule may look at besides the response: the options (letter -> text), the doc, a seed."""

    options: Mapping[str, str] = field(default_factory=dict)
    doc: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class ExtractionRule:
    name: str
    version: str
    fn: Callable[[str, ExtractContext], Any]
    description: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    def __call__(self, response: str, ctx: ExtractContext | None = None) -> Any:
        return self.fn(response, ctx or ExtractContext())


RULES: Registry[ExtractionRule] = Registry("extraction rule")


def register_rule(name: str, version: str, description: str = "") -> Callable:
    def deco(fn: Callable[[str, ExtractContext], Any]) -> Callable[[str, ExtractContext], Any]:
        RULES.register(name, ExtractionRule(name, version, fn, description or (fn.__doc__ or "").strip()))
        return fn

    return deco


def get_rule(name: str) -> ExtractionRule:
    import harness.extract  # noqa: F401  (registers the built-in rules)

    return RULES.get(name)
