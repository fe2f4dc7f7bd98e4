"""Per-modality leaderboards rebuilt from every finished run under ``<output_dir>/runs``.

One table per modality group: models as rows, tasks as columns (primary metric), the paper's reference
numbers as a row. For each (model, task) the best run counts, respecting the metric's direction. Only whole
runs count (complete, unsharded, unlimited, or merged from shards: :func:`harness.results.run_coverage`); a
partial run is named on stderr with the reason it is left out. Runs on ``sample`` data go to
``leaderboards/sample/`` and never enter the full-benchmark tables.
"""

from __future__ import annotations

import csv
import fcntl
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.results import iter_results, primary_value, run_coverage, warn, write_text

PAPER_ROW = "Uni-MoE-2.0-Omni (paper)"


@dataclass
class Cell:
    value: float
    stderr: float | None
    higher_is_better: bool
    metric: str
    run_id: str
    data_source: str

    def better_than(self, other: "Cell") -> bool:
        return self.value > other.value if self.higher_is_better else self.value < other.value


def collect(runs_dir: Path, skipped: list[tuple[str, str]] | None = None
            ) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{data kind: {group: {task: {"paper": score, "metric": name, "models": {model: Cell}}}}} over the whole
    runs (:func:`harness.results.run_coverage`); each finished run left out for covering only part of its
    tasks is appended to ``skipped`` as (run id, reason). Unreadable results files are skipped with a warning."""
    boards: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for _, res in iter_results(runs_dir):
        if res.get("status") != "complete":
            continue  # running, failed or inferred only: not a result yet
        coverage = run_coverage(res)
        if not coverage.whole:
            if skipped is not None:
                skipped.append((res["run_id"], coverage.reason))
            continue
        model = res["model"]["name"]
        for task, rec in res["tasks"].items():
            metric = rec.get("primary_metric")
            value = primary_value(rec)
            if value is None or not isinstance(rec.get("group"), str):
                continue
            mv = rec["metrics"][metric]
            kind = "sample" if rec.get("data") == "sample" else "full"
            column = boards.setdefault(kind, {}).setdefault(rec["group"], {}).setdefault(
                task, {"paper": rec.get("paper_score"), "metric": metric, "models": {}}
            )
            stderr = mv.get("stderr") if isinstance(mv.get("stderr"), (int, float)) else None
            cell = Cell(value, stderr, mv.get("higher_is_better", True) is not False, metric, res["run_id"],
                        str(rec.get("data_source", "")))
            best = column["models"].get(model)
            if best is None or cell.better_than(best):
                column["models"][model] = cell
    return boards


def _fmt(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def tables(group: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, rows (paper first) and notes (metric and data source per task)."""
    tasks = sorted(group)
    models = sorted({m for col in group.values() for m in col["models"]})
    header = ["model", *tasks]
    rows = [[PAPER_ROW, *[_fmt(group[t]["paper"]) for t in tasks]]]
    for model in models:
        row = [model]
        for t in tasks:
            cell = group[t]["models"].get(model)
            row.append("" if cell is None else _fmt(cell.value) + (f" ± {_fmt(cell.stderr)}" if cell.stderr else ""))
        rows.append(row)
    notes = []
    for t in tasks:
        col = group[t]
        arrow = "↑" if next(iter(col["models"].values())).higher_is_better else "↓"
        sources = sorted({c.data_source for c in col["models"].values()})
        notes.append(f"{t}: {col['metric']} {arrow}; data: {', '.join(sources)}")
    return header, rows, notes


def to_markdown(title: str, header: list[str], rows: list[list[str]], notes: list[str]) -> str:
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("±", r"$\pm$")):
        s = s.replace(a, b)
    return s


def to_latex(title: str, header: list[str], rows: list[list[str]]) -> str:
    cols = "l" + "r" * (len(header) - 1)
    out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_tex_escape(title)}}}", rf"\begin{{tabular}}{{{cols}}}",
           r"\toprule", " & ".join(_tex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, r in enumerate(rows):
        out.append(" & ".join(_tex_escape(c) for c in r) + r" \\")
        if i == 0:
            out.append(r"\midrule")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(out)


def build_leaderboards(output_dir: Path) -> list[Path]:
    """Rebuild every leaderboard file; serialised by a lock so concurrent runs never interleave writes."""
    output_dir = Path(output_dir)
    board_dir = output_dir / "leaderboards"
    board_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    with open(board_dir / ".lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        for kind, groups in collect(output_dir / "runs", skipped).items():
            for group, columns in sorted(groups.items()):
                header, rows, notes = tables(columns)
                title = f"{group} ({'sample data: not comparable to the paper' if kind == 'sample' else 'full benchmarks'})"
                base = board_dir / kind / group
                for suffix, text in ((".md", to_markdown(title, header, rows, notes)),
                                     (".csv", to_csv(header, rows)),
                                     (".tex", to_latex(title, header, rows))):
                    write_text(base.with_suffix(suffix), text)
                    written.append(base.with_suffix(suffix))
    for run_id, reason in skipped:
        warn(f"leaderboard: run {run_id} not counted, it is not a whole run ({reason})")
    return written
