"""The catalogue of tasks and groups: YAML files under ``configs/task/``.

A task file holds a :class:`~harness.task.TaskConfig`; a group file holds ``{kind: group, name, tasks: [...]}``
(members may be groups). Plugins are resolved by registered name only (see :mod:`harness.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from harness.schema import check_group_choice
from harness.task import TASK_PLUGINS, Task, TaskConfig

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class GroupConfig:
    name: str
    tasks: tuple[str, ...]
    description: str = ""


def _task_dir() -> Path:
    return CONFIG_DIR / "task"


def load_entry(name: str) -> TaskConfig | GroupConfig:
    check_group_choice("task", name)  # a name, never a path out of configs/task/
    path = _task_dir() / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"unknown task or group {name!r} (no {path})")
    return parse_entry(yaml.safe_load(path.read_text()) or {}, source=str(path))


def parse_entry(data: Mapping[str, Any], source: str = "<config>") -> TaskConfig | GroupConfig:
    data = dict(data)
    data.pop("_target_", None)
    if data.get("kind") == "group":
        return GroupConfig(name=data["name"], tasks=tuple(data["tasks"]), description=data.get("description", ""))
    data.pop("kind", None)
    try:
        return TaskConfig.from_dict(data)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: {e}") from e


def entries() -> dict[str, TaskConfig | GroupConfig]:
    return {p.stem: load_entry(p.stem) for p in sorted(_task_dir().glob("*.yaml"))}


def expand(entry: TaskConfig | GroupConfig) -> list[TaskConfig]:
    """A task, or all tasks of a group (recursively, in order, without duplicates)."""
    if isinstance(entry, TaskConfig):
        return [entry]
    seen: dict[str, TaskConfig] = {}
    for member in entry.tasks:
        for cfg in expand(load_entry(member)):
            seen.setdefault(cfg.name, cfg)
    return list(seen.values())


def build_task(config: TaskConfig, data: str = "sample", data_dir: str | None = None, seed: int = 0) -> Task:
    _register_builtin_plugins()
    cls = TASK_PLUGINS.get(config.plugin)
    return cls(config, data=data, data_dir=data_dir, seed=seed)


def _register_builtin_plugins() -> None:
    try:
        import tasks.registry  # noqa: F401  (lazy name -> "module:Class" registrations)
    except ModuleNotFoundError as e:
        if e.name != "tasks.registry":
            raise
