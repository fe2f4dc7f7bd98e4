"""``list tasks|groups|models``: one tab-separated line per entry, for people and for scripts."""

from __future__ import annotations

import yaml

from harness.catalog import CONFIG_DIR, GroupConfig, entries, expand
from harness.errors import ConfigError


def _judge_needed(cfg) -> str:
    return cfg.judge or "no"


def list_command(args: list[str]) -> int:
    if len(args) > 1:
        raise ConfigError(f"list takes one of tasks, groups or models, got {' '.join(args)!r}")
    what = args[0] if args else "tasks"
    if what == "tasks":
        for name, entry in entries().items():
            if isinstance(entry, GroupConfig):
                continue
            paper = "" if entry.paper_score is None else f"{entry.paper_score:g}"
            print("\t".join([name, entry.group, ",".join(entry.metrics), _judge_needed(entry), paper]))
    elif what == "groups":
        for name, entry in entries().items():
            if isinstance(entry, GroupConfig):
                members = [t.name for t in expand(entry)]
                print("\t".join([name, str(len(members)), ",".join(members)]))
    elif what == "models":
        for path in sorted((CONFIG_DIR / "model").glob("*.yaml")):
            cfg = yaml.safe_load(path.read_text()) or {}
            print("\t".join([path.stem, cfg.get("adapter", ""), str(cfg.get("description", "")).strip()]))
    else:
        raise ConfigError(f"list what? tasks, groups or models (got {what!r})")
    return 0
