"""Reading the JSON and JSONL files that users hand to commands: one reader, one kind of error message.

A missing file, a directory, undecodable bytes or a malformed record raise :class:`InputFileError` naming the
file and, for JSONL, the line, so that the command line can print that one line instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from harness.errors import InputFileError


def _text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputFileError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InputFileError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError as e:
        raise InputFileError(f"{what} {path} is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise InputFileError(f"{what} {path} cannot be read: {e.strerror}") from None


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """The parsed document; ``what`` names the file's role in messages (e.g. ``"results file"``)."""
    path = Path(path)
    text = _text(path, what)
    try:
        return json.loads(text)
    except ValueError as e:
        raise InputFileError(f"{what} {path}: not valid JSON ({_reason(e)})") from None


def read_json_object(path: str | Path, what: str = "JSON file") -> dict[str, Any]:
    """Like :func:`read_json`, for files whose top level must be an object."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise InputFileError(f"{what} {path}: expected a JSON object at the top, found {type(data).__name__}")
    return data


def iter_jsonl(path: str | Path, what: str = "JSONL file") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every non-blank line; each record must be a JSON object."""
    path = Path(path)
    for number, line in enumerate(_text(path, what).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise InputFileError(f"{what} {path} line {number}: not valid JSON ({_reason(e)})") from None
        if not isinstance(record, dict):
            raise InputFileError(f"{what} {path} line {number}: expected a JSON object, found {type(record).__name__}")
        yield number, record


def _reason(e: ValueError) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"{e.msg} at line {e.lineno} column {e.colno}"
    return str(e)
