"""Strict (de)serialisation shared by the speech-head configs: a typo in a saved config is an error, not a
silently ignored key."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from typing_extensions import Self

T = TypeVar("T", bound="StrictConfig")


class StrictConfig:
    """Mixin for dataclass configs: ``from_dict`` rejects unknown keys and restores tuple fields."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise KeyError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> Self:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]
