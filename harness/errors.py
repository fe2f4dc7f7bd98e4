"""The errors a user can cause or fix, as opposed to bugs.

Every :class:`HarnessError` carries a complete, one-line message (it names the key, file, line or sample
at fault and what would be accepted), so the command line prints that line alone and exits 2; any other
exception is a bug and keeps its traceback (exit 1). Inside a run, the runner records a HarnessError raised
for one sample against that sample and goes on. The base class and the per-sample kinds (media, document) live
with the task/adapter contracts in :mod:`harness.api`; this module adds the kinds the command line meets.
"""

from __future__ import annotations

from harness.api import DocumentError, HarnessError, MediaError  # noqa: F401  (the base and the per-sample kinds)


class ConfigError(HarnessError):
    """A configuration key has a value that is not allowed; the message names the key, value and choices."""


class InputFileError(HarnessError):
    """A file given to a command is missing, unreadable or malformed; the message names the file (and line)."""


class ModelLoadError(HarnessError):
    """The model cannot be built or loaded (missing or broken checkpoint); the run fails before any sample."""


class CacheError(HarnessError):
    """A cache file cannot be used (e.g. the disk is full); the message names the file."""
