"""The report in a real browser: headless Chromium opens the page from disk and over loopback HTTP.

Needs Debian's ``chromium`` (``make browser`` installs it; CI does); skipped with that reason elsewhere. The
screenshot is kept under results/test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.report.conftest import REPO, harness

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (make browser)")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0")


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def page(tiny_run: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser-report")
    done = harness("report", f"run={tiny_run}", f"out={out}")
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "report.html"


def _check_rendered(dom: subprocess.CompletedProcess) -> None:
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, "console messages: " + "\n".join(console)
    html = dom.stdout
    assert re.search(r'id="sample-count"[^>]*>120 of 120 samples', html), "the script rendered the sample table"
    assert html.count('<tr><td>omniworld_') == 50, "one page of 50 rows"
    assert 'alt="expert-usage of' in html and 'alt="modality-distance of' in html
    assert re.search(r'id="trace-text"[^>]*><span class="tok"', html), "the token view is drawn"
    assert '<div class="strip" data-from=' in html and "<span title=" in html


def test_opened_from_disk(page: Path, tmp_path):
    _check_rendered(chromium(page.as_uri(), tmp_path / "profile", "--dump-dom"))
    shot_dir = REPO / "results" / "test-artifacts"
    shot_dir.mkdir(parents=True, exist_ok=True)
    shot = shot_dir / "report-screenshot.png"
    done = chromium(page.as_uri(), tmp_path / "profile2", "--window-size=1400,2400", f"--screenshot={shot}")
    assert done.returncode == 0 and shot.stat().st_size > 50_000, done.stderr[-1000:]


def test_served_over_loopback(page: Path, tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page.parent))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _check_rendered(chromium(f"http://127.0.0.1:{server.server_port}/report.html", tmp_path / "p", "--dump-dom"))
    finally:
        server.shutdown()
