"""Optional dependencies, imported on first use with an error that says what needs them and how to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, pip: str, needed_by: str) -> ModuleType:
    """``import module``, or an ImportError naming ``needed_by`` and the ``pip install`` that fixes it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{needed_by} needs `{module}`: pip install {pip}") from e
