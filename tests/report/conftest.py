"""One real run shared by the report tests: unimoe_tiny on the omniworld sample (120 samples, all modalities)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd or REPO, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report-runs")
    done = harness("run", "task=omniworld", "model=unimoe_tiny", "data=sample", f"output_dir={out}", "progress=false")
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = sorted((out / "runs").glob("*/"))
    return run
