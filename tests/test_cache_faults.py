"""Issue 11, class 7: a corrupt cache is moved aside with a warning naming it and the run goes on cold; a full
disk is reported as such; no half-written file is left behind."""

from __future__ import annotations

import errno
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from harness.api import Response
from harness.cache import ResponseCache
from harness.errors import CacheError
from harness.judges.base import JudgeCache, Verdict
from tests.cli_probe import harness

RUN = ("run", "task=gpqa_diamond", "model=random", "progress=false")


def _n_cached(out: Path) -> list[int]:
    """n_cached of each run, oldest first (by creation time: run ids made in the same second do not sort)."""
    runs = [json.loads(p.read_text()) for p in (out / "runs").glob("*/results.json")]
    return [r["tasks"]["gpqa_diamond"]["n_cached"] for r in sorted(runs, key=lambda r: r["created"])]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_response_cache_is_quarantined_and_the_run_continues(tmp_path, damage):
    assert harness(*RUN, f"output_dir={tmp_path}").returncode == 0
    db = tmp_path / "cache" / "responses.sqlite"
    for companion in db.parent.glob("responses.sqlite-*"):
        companion.unlink()
    broken = b"this is not a database\n" * 100 if damage == "garbage" else db.read_bytes()[:3000]
    db.write_bytes(broken)

    proc = harness(*RUN, f"output_dir={tmp_path}")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    (warning,) = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    (aside,) = db.parent.glob("responses.sqlite.corrupt-*")
    assert str(db) in warning and str(aside) in warning
    assert aside.read_bytes() == broken  # kept for inspection, untouched
    assert _n_cached(tmp_path)[-1] == 0  # cold

    assert harness(*RUN, f"output_dir={tmp_path}").returncode == 0
    assert _n_cached(tmp_path)[-1] == 4  # the new cache works


def test_a_corrupt_judge_cache_is_quarantined(tmp_path, capsys):
    path = tmp_path / "judge.sqlite"
    path.write_bytes(b"\0garbage" * 512)
    cache = JudgeCache(path)
    cache.put("k", Verdict("A", "raw A"))
    assert cache.get("k").value == "A"
    cache.close()
    assert len(list(tmp_path.glob("judge.sqlite.corrupt-*"))) == 1
    assert str(path) in capsys.readouterr().err


def test_a_full_disk_is_reported_as_such_not_as_a_failed_rollback(tmp_path):
    cache = ResponseCache(tmp_path, flush_every=1)
    (pages,) = cache._db.execute("PRAGMA page_count").fetchone()
    cache._db.execute(f"PRAGMA max_page_count={pages + 1}")  # SQLite's own "database or disk is full"
    with pytest.raises(CacheError, match="disk is full") as info:
        cache.put("k", "m", "t", "h", Response(text="x" * 200_000))
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert "rollback" not in str(info.value).lower()
    assert not cache._db.in_transaction
    wal_rows = [json.loads(line) for p in (tmp_path / "wal").glob("*.jsonl") for line in p.read_text().splitlines()]
    assert [row[0] for row in wal_rows] == ["k"]  # the response is kept for the next run to replay


def test_an_artifact_copy_cut_short_leaves_no_file(tmp_path, monkeypatch):
    source = tmp_path / "speech.wav"
    source.write_bytes(b"RIFF" + b"\0" * 1000)
    cache = ResponseCache(tmp_path / "cache")

    def copy_until_full(src, dst):
        Path(dst).write_bytes(Path(src).read_bytes()[:10])
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", copy_until_full)
    with pytest.raises(OSError):
        cache.put("k", "m", "t", "h", Response(audio=str(source)))
    assert list((tmp_path / "cache" / "artifacts").iterdir()) == []
    monkeypatch.undo()
    stored = cache.put("k", "m", "t", "h", Response(audio=str(source)))
    assert Path(stored.audio).read_bytes() == source.read_bytes()
    cache.close()


def test_a_cache_that_cannot_be_opened_is_one_line_naming_it(tmp_path):
    (tmp_path / "cache" / "responses.sqlite").mkdir(parents=True)  # a folder where the database should be
    proc = harness(*RUN, f"output_dir={tmp_path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: cannot open the cache ") and str(tmp_path / "cache" / "responses.sqlite") in line


def test_a_cache_damaged_during_the_run_is_one_line_and_the_rerun_quarantines_it(tmp_path):
    cache = ResponseCache(tmp_path, flush_every=1)
    for i in range(300):
        cache.put(f"k{i}", "m", "t", "h", Response(text="x" * 500))
    cache.close()
    cache = ResponseCache(tmp_path)  # opened while sound
    db = tmp_path / "responses.sqlite"
    with open(db, "r+b") as f:  # then damaged under it (another program, a failing disk)
        f.seek(4096 * 2)
        f.write(b"\xaa" * 4096 * 4)
    cache._db.execute("PRAGMA cache_size=1")  # make SQLite read the pages again
    cache._db.execute("PRAGMA shrink_memory")
    with pytest.raises(CacheError, match="damaged during the run.*rerun the same command"):
        cache.get_many([f"k{i}" for i in range(300)])
    cache._db.close()
    reopened = ResponseCache(tmp_path)
    assert reopened.get_many(["k1"]) == {} and len(list(tmp_path.glob("responses.sqlite.corrupt-*"))) == 1
    reopened.close()
