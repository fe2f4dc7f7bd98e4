"""SQLite files that several runs open at the same time (the response cache, the judge cache).

A cache only saves work, so a corrupt one must never stop a run: it is checked on opening, and a file that
SQLite cannot read is renamed aside (with its -wal/-shm companions) under a warning that names both paths;
the run goes on with an empty cache in its place.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import sqlite3
import sys
from pathlib import Path
from typing import Sequence

from harness.errors import CacheError

_CORRUPT = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_COMPANIONS = ("-wal", "-shm")


def connect_shared(path: str | Path, setup: Sequence[str] = ()) -> sqlite3.Connection:
    """An autocommit connection in WAL mode, with ``setup`` statements (schema) run once it is open.

    Switching a database to WAL needs a moment of exclusive access that SQLite's busy timeout does not wait
    for: two runs starting together got "database is locked". So opening, checking and set-up are serialised
    between processes by an advisory lock on a sidecar file; afterwards the connections work concurrently.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            return _open(path, setup)
        except sqlite3.DatabaseError as e:
            if getattr(e, "sqlite_errorcode", None) not in _CORRUPT:
                raise CacheError(f"cannot open the cache {path}: {e}") from e
            aside = quarantine(path)
            print(f"warning: {path} is corrupt ({e}); moved it aside to {aside} and continuing with an empty one",
                  file=sys.stderr)
            return _open(path, setup)


def _open(path: Path, setup: Sequence[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        (verdict,) = db.execute("PRAGMA quick_check(1)").fetchone()
        if verdict != "ok":
            error = sqlite3.DatabaseError(f"integrity check: {verdict}")
            error.sqlite_errorcode = sqlite3.SQLITE_CORRUPT  # type: ignore[attr-defined]
            raise error
        for statement in setup:
            db.execute(statement)
    except BaseException:
        db.close()
        raise
    return db


def quarantine(path: Path) -> Path:
    """Rename a database file (and its -wal/-shm files) to ``<name>.corrupt-<UTC time>``; the new name."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.rename(aside)
    for suffix in _COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    return aside
