"""How long `harness report` takes on a 10,000-sample run, and how big the page is, against the floor.

The floor ("plain" in the output) is what any report of these samples must do at least: read the sample log
and write its rows as one JSON document. The ratio says how much the figures, media and page cost on top.

    python bench/report.py [--n 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from harness.report.build import build_report
    from harness.report.runs import load_run
    from tests.report.synthetic import write_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = write_run(Path(tmp), n)
        start = time.perf_counter()
        rows = [json.loads(line) for line in (run_dir / "samples" / "omniworld_text.jsonl").open()]
        (Path(tmp) / "plain.json").write_text(json.dumps(rows))
        plain = time.perf_counter() - start
        start = time.perf_counter()
        page = build_report(load_run(run_dir), out=Path(tmp) / "report", trace="none")
        ours = time.perf_counter() - start
        size = page.stat().st_size
    print(f"samples {n}: report {ours:.2f} s, page {size / 2**20:.1f} MiB; plain read+dump {plain:.2f} s; "
          f"ratio {ours / plain:.1f}x (goal: under 10 s and 20 MiB)")


if __name__ == "__main__":
    main()
