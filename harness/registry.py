"""Name -> object registries with lazy imports and Python entry points.

Built-in entries are registered as ``"module:attr"`` strings and imported on first use, so importing the
harness stays cheap. Outside packages add tasks or models without forking through the entry-point groups
``unimoe_harness.tasks`` and ``unimoe_harness.models`` (value ``"package.module:object"``).

Only names that code (ours or an installed package) registered can be resolved: a config file can pick a
registered name but can never make the harness import an arbitrary module.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str | None = None):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._targets: dict[str, str | T] = {}
        self._entry_points_loaded = entry_point_group is None

    def register(self, name: str, target: str | T | None = None) -> Callable[[T], T] | None:
        """``register("x", "pkg.mod:obj")`` registers lazily; ``@register("x")`` decorates an object."""
        if target is not None:
            self._add(name, target)
            return None

        def deco(obj: T) -> T:
            self._add(name, obj)
            return obj

        return deco

    def _add(self, name: str, target: str | T) -> None:
        existing = self._targets.get(name)
        if existing is not None and existing is not target and existing != target:
            raise ValueError(f"{self.kind} {name!r} is already registered as {existing!r}")
        self._targets[name] = target

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            self._targets.setdefault(ep.name, ep.value)

    def get(self, name: str) -> T:
        self._load_entry_points()
        if name not in self._targets:
            known = ", ".join(sorted(self._targets)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}")
        target = self._targets[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            obj = importlib.import_module(module)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
            self._targets[name] = target = obj  # type: ignore[assignment]
        return target  # type: ignore[return-value]

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._targets

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._targets)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

