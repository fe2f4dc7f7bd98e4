"""The typed schema of the root configuration (``configs/config.yaml``) and the checks of its values.

:class:`RunConfig` has one field per top-level key; Hydra merges ``config.yaml`` and every command-line
override into it, so a wrong type, an unknown key or a value outside an enum is refused while the config is
composed. :func:`check_values` then checks what a type cannot say (ranges, ``shard`` syntax, an
``output_dir`` that is a file). Both report one line naming the key, the value and what is allowed, before any
work starts. Adding a key means adding a field here (with its comment) and its default in config.yaml.

Booleans (``cache``, ``progress``) follow OmegaConf: ``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any
case, quoted or not) all mean what they say; anything else is refused.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, Optional

from harness.errors import ConfigError

SCHEMA_NAME = "run_schema"  # the ConfigStore entry config.yaml's defaults list starts with
CONFIG_GROUPS = ("task", "model", "judge")
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class Stage(Enum):
    all = "all"  # infer and score
    infer = "infer"  # stop after inference (score later with ``score``)


class DataKind(Enum):
    sample = "sample"  # the task's bundled fixture
    full = "full"  # the real benchmark (hub id or data_dir)


@dataclass
class RunConfig:
    task: Any = None  # config group: configs/task/<name>.yaml (a task or a group of tasks)
    model: Any = None  # config group: configs/model/<name>.yaml
    judge: Any = None  # config group: configs/judge/<name>.yaml
    data: DataKind = DataKind.sample
    data_dir: Optional[str] = None  # local folder or file with the benchmark's documents (data=full)
    limit: Any = None  # first N documents (an integer >= 1) or a fraction in (0, 1); null: all
    batch_size: int = 1  # >= 1
    seed: int = 0  # 0 <= seed < 2**32
    output_dir: str = "results"  # a folder (created when absent)
    stage: Stage = Stage.all
    shard: Optional[str] = None  # "i/n" with 0 <= i < n
    cache: bool = True
    progress: bool = True
    predictions: Optional[str] = None  # for ``score``
    baseline: Optional[str] = None  # for ``compare``
    candidate: Optional[str] = None
    tolerance: float = 0.0  # for ``compare``; >= 0
    scoring_timeout_s: Optional[float] = 10.0  # seconds to score one sample (> 0); null: no limit
    num_workers: int = 2  # >= 0 processes decoding the next batches' media (0: none)
    prefetch_depth: int = 2  # >= 1 batches decoded ahead
    dist_timeout_s: float = 1800.0  # > 0: with ranks, the longest a rank that has done its share waits for the others


def register() -> None:
    """Put :class:`RunConfig` into Hydra's ConfigStore (idempotent; called by the CLI before composing)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=RunConfig)


# --------------------------------------------------------------------------------------------------
# Value checks shared by the CLI and the Python API


def parse_shard(spec: Any) -> tuple[int, int] | None:
    """``"i/n"`` -> ``(i, n)``; None or empty -> None."""
    if spec is None or spec == "":
        return None
    index, sep, count = str(spec).partition("/")
    if not (sep and index.strip().isdigit() and count.strip().isdigit()):
        raise ConfigError(f"shard={spec!r} is not allowed: expected i/n with whole numbers 0 <= i < n, e.g. shard=0/4")
    i, n = int(index), int(count)
    if not 0 <= i < n:
        raise ConfigError(f"shard={spec!r} is not allowed: expected i/n with 0 <= i < n (here i={i}, n={n})")
    return i, n


def parse_limit(value: Any) -> float | int | None:
    """None, a whole number of documents >= 1, or a fraction strictly between 0 and 1."""
    if value is None:
        return None
    allowed = "a whole number of documents >= 1 or a fraction in (0, 1)"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"limit={value!r} is not allowed: expected {allowed}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"limit={value!r} is not allowed: expected {allowed}") from None
    if 0 < number < 1:
        return number
    if math.isfinite(number) and number >= 1 and number == int(number):
        return int(number)
    raise ConfigError(f"limit={value!r} is not allowed: expected {allowed}")


def parse_tolerance(value: Any) -> float:
    """A number >= 0 (``compare``'s allowed drop, in the metric's units)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number >= 0:
        raise ConfigError(f"tolerance={value!r} is not allowed: expected a number >= 0")
    return number


def check_values(values: Mapping[str, Any]) -> None:
    """Range and form checks for the keys present in ``values`` (a composed config or ``evaluate``'s kwargs)."""
    if "limit" in values:
        parse_limit(values["limit"])
    if "shard" in values:
        parse_shard(values["shard"])
    _check_int(values, "batch_size", low=1)
    _check_int(values, "num_workers", low=0)
    _check_int(values, "prefetch_depth", low=1)
    timeout = values.get("dist_timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise ConfigError(f"dist_timeout_s={timeout!r} is not allowed: expected a positive number of seconds")
    _check_int(values, "seed", low=0, high=2**32 - 1)
    for key, enum in (("stage", Stage), ("data", DataKind)):
        if key in values:
            value = values[key].value if isinstance(values[key], Enum) else values[key]
            if value not in enum.__members__:
                raise ConfigError(f"{key}={value!r} is not allowed: expected one of {', '.join(enum.__members__)}")
    if values.get("tolerance") is not None:
        parse_tolerance(values["tolerance"])
    if "scoring_timeout_s" in values:
        from harness.time_limit import scoring_seconds

        scoring_seconds(values["scoring_timeout_s"])
    output_dir = values.get("output_dir")
    if output_dir is not None and Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise ConfigError(f"output_dir={output_dir!r} is a file; expected a folder (created when absent)")
    data_dir = values.get("data_dir")
    if data_dir and not Path(data_dir).exists():
        raise ConfigError(f"data_dir={data_dir!r} does not exist")


def _check_int(values: Mapping[str, Any], key: str, low: int, high: int | None = None) -> None:
    if key not in values:
        return
    value = values[key]
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
    if not ok:
        bound = f"{low} <= {key} <= {high}" if high is not None else f"{key} >= {low}"
        raise ConfigError(f"{key}={value!r} is not allowed: expected a whole number with {bound}")


def check_group_choice(group: str, value: str) -> None:
    """A config-group choice is a plain file name: never a path that could reach outside ``configs/<group>/``."""
    if not PLAIN_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(f"{group}={value!r} is not allowed: expected a plain name from configs/{group}/ "
                          f"(letters, digits, '_', '-', '.'; no '/' or '..')")
