"""Probing ``python -m harness`` as a user does: the subprocess call and the checks every probe of a mistake makes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def harness(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the command line from the repository root with this checkout first on the path."""
    environment = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"} | (env or {})
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=environment)


def start_harness(*args: str) -> subprocess.Popen:
    environment = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment)


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2 and exactly one line on stderr, ``error: ...`` containing every fragment; no traceback anywhere."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content digest, to show a failed command damaged nothing."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def assert_untouched(before: dict[str, str], root: Path, allow_new: bool = False) -> None:
    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in before} == before, "an existing file changed"
    if not allow_new:
        assert after.keys() == before.keys(), sorted(after.keys() - before.keys())
