"""SQLite files that several runs open at the same time (the response cache, the judge cache)."""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path
from typing import Sequence


def connect_shared(path: str | Path, setup: Sequence[str] = ()) -> sqlite3.Connection:
    """An autocommit connection in WAL mode, with ``setup`` statements (schema) run once it is open.

    Switching a database to WAL needs a moment of exclusive access that SQLite's busy timeout does not wait
    for: two runs starting together got "database is locked". So opening and set-up are serialised between
    processes by an advisory lock on a sidecar file; afterwards the connections work concurrently.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        for statement in setup:
            db.execute(statement)
    return db
