"""Response cache: SQLite for lookups, a per-process write-ahead JSONL for crash safety.

Every finished response is appended (and flushed) to this process's WAL file before anything else, so a
SIGKILL loses nothing that the model produced. Rows are moved into SQLite in batches (one transaction each),
which keeps the per-sample cost to one small write. On start-up, WAL files whose writer is gone (their
advisory lock is free) are replayed into SQLite and removed; live writers' files are left alone, so several
runs can share one cache.

The key is (model fingerprint, task-config hash, request hash). Sampled outputs are never cached, and
neither are errors: a rerun retries them.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Iterable

from harness.api import Response, stable_hash
from harness.errors import CacheError
from harness.shared_sqlite import connect_shared

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    task TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def _copy_whole(src: Path, dst: Path) -> None:
    """Copy through a temporary name, so that ``dst`` exists only complete (a full disk leaves no half file)."""
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cache_key(model_fingerprint: str, task_hash: str, request_hash: str) -> str:
    return stable_hash([model_fingerprint, task_hash, request_hash], n=32)


class ResponseCache:
    def __init__(self, root: str | Path, flush_every: int = 64, flush_seconds: float = 2.0):
        self.root = Path(root)
        (self.root / "wal").mkdir(parents=True, exist_ok=True)
        (self.root / "artifacts").mkdir(exist_ok=True)
        self._db = connect_shared(self.root / "responses.sqlite", setup=[SCHEMA])
        self._replay_orphaned_wals()
        # Locked before it is visible as a *.jsonl: another process's recovery must never take a live log for
        # an orphan (the lock belongs to the open file, so it survives the rename).
        self._wal_path = self.root / "wal" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        opening = self._wal_path.with_suffix(".opening")
        self._wal = open(opening, "a", encoding="utf-8")
        fcntl.flock(self._wal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        opening.rename(self._wal_path)
        self._pending: list[tuple[str, str, str, str, str, float]] = []
        self._flush_every = flush_every
        self._flush_seconds = flush_seconds
        self._last_flush = time.monotonic()

    # ---- reads
    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        keys = list(keys)
        found: dict[str, Response] = {}
        pending = {row[0]: row[4] for row in self._pending}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            try:
                rows = self._db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk).fetchall()
            except sqlite3.DatabaseError as e:
                self._raise_explained(e)
                raise
            for key, blob in rows:
                found[key] = Response.from_dict(json.loads(blob))
        for key in keys:
            if key not in found and key in pending:
                found[key] = Response.from_dict(json.loads(pending[key]))
        return found

    # ---- writes
    def put(self, key: str, model: str, task: str, request_hash: str, response: Response) -> Response:
        """Store a response (copying any output file into the cache) and return the stored form."""
        response = self._keep_artifacts(key, response)
        blob = json.dumps(response.to_dict(), ensure_ascii=False)
        row = (key, model, task, request_hash, blob, time.time())
        self._wal.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._wal.flush()
        self._pending.append(row)
        if len(self._pending) >= self._flush_every or time.monotonic() - self._last_flush > self._flush_seconds:
            self.flush()
        return response

    def _keep_artifacts(self, key: str, response: Response) -> Response:
        for attr in ("audio", "image"):
            src = getattr(response, attr)
            if src and Path(src).is_file():
                dst = self.root / "artifacts" / f"{key}-{attr}{Path(src).suffix}"
                if not dst.exists():
                    _copy_whole(Path(src), dst)
                setattr(response, attr, str(dst))
        return response

    def flush(self) -> None:
        if self._pending:
            self._insert(self._pending)
            self._pending = []
        self._last_flush = time.monotonic()

    def _insert(self, rows: list[tuple]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (a full disk does)
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the first error is the one that explains what happened
                raise
        except sqlite3.DatabaseError as e:
            self._raise_explained(e)
            raise

    def _raise_explained(self, e: sqlite3.DatabaseError) -> None:
        """Raise a full disk or a database damaged during the run as a one-line CacheError; else return."""
        db = self.root / "responses.sqlite"
        code = getattr(e, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            raise CacheError(f"cannot write the response cache {db}: the disk is full (responses of this run are "
                             f"kept in {self.root / 'wal'} and replayed by the next run)") from e
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
            raise CacheError(f"the response cache {db} was damaged during the run ({e}); rerun the same command: "
                             f"the damaged file is moved aside and the run continues without it") from e

    def close(self) -> None:
        """Move everything into SQLite and drop this process's WAL file."""
        if self._wal.closed:
            return
        self.flush()
        self._wal.close()
        self._wal_path.unlink(missing_ok=True)
        self._db.close()

    def __enter__(self) -> "ResponseCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- recovery
    def _replay_orphaned_wals(self) -> None:
        for path in sorted((self.root / "wal").glob("*.jsonl")):
            try:
                f = open(path, "r", encoding="utf-8")  # never creates: another recovery may have removed it
            except FileNotFoundError:
                continue
            with f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live run owns it, or another process is recovering it
                try:
                    if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                        continue
                except FileNotFoundError:
                    continue  # recovered and removed by another process while we waited for the lock
                rows = []
                for line in f:
                    try:
                        rows.append(tuple(json.loads(line)))
                    except ValueError:
                        continue  # a line torn by the crash: that response is simply recomputed
                if rows:
                    self._insert(rows)
                path.unlink(missing_ok=True)
