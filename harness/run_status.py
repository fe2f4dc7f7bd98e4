"""What a run directory says about its run: ``status.json`` (and the ``status`` field of ``results.json``).

- ``running``: the run's process is at work; status.json names it (host, pid, start time), so a later command
  on the same host can tell a live run from one that died (SIGKILL, power loss) and mark the dead one ``aborted``.
- ``complete``: every task produced metrics; ``inferred``: ``stage=infer`` finished every task's inference.
- ``failed``: the model could not load or a task could not run; ``reason`` says why and the exit code is nonzero.
- ``aborted``: interrupted (Ctrl-C) or found dead; rerunning the same command resumes from the cache.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.jsonio import read_json_object
from harness.results import write_json

RUNNING, COMPLETE, INFERRED, FAILED, ABORTED = "running", "complete", "inferred", "failed", "aborted"


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), which tells a reused pid from ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of proc(5), counted after the command name


def running(run_id: str) -> dict[str, Any]:
    """The status.json of a run that this process is executing."""
    return {"status": RUNNING, "run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
            "process_start": _process_start(os.getpid())}


def finished(run_id: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return {"status": status, "run_id": run_id, **({"reason": reason} if reason else {})}


def is_dead(status: dict[str, Any]) -> bool:
    """True for a ``running`` status whose process, on this host, no longer exists (or is another process)."""
    if status.get("status") != RUNNING or status.get("host") != socket.gethostname():
        return False
    pid = status.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    recorded = status.get("process_start")
    return recorded is not None and _process_start(pid) not in (None, recorded)


def mark_dead_runs(runs_dir: Path) -> list[str]:
    """Mark every run under ``runs_dir`` whose process died while ``running`` as ``aborted``; their ids."""
    marked = []
    for path in sorted(Path(runs_dir).glob("*/status.json")):
        try:
            status = read_json_object(path, "status file")
        except HarnessError:
            continue  # unreadable: the leaderboard's own checks skip such runs
        if not is_dead(status):
            continue
        reason = f"process {status['pid']} on {status['host']} ended without finishing the run"
        set_status(path.parent, ABORTED, reason)
        marked.append(path.parent.name)
    return marked


def set_status(run_dir: Path, status: str, reason: str | None = None) -> None:
    """Write the status to status.json and, when the run has one, results.json."""
    results_path = run_dir / "results.json"
    if results_path.is_file():
        try:
            results = read_json_object(results_path, "results file")
        except HarnessError:
            results = None
        if results is not None:
            results["status"] = status
            if reason:
                results["status_reason"] = reason
            write_json(results_path, results)
    write_json(run_dir / "status.json", finished(run_dir.name, status, reason))
