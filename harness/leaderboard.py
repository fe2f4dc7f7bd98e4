"""Per-modality leaderboards rebuilt from every finished run under ``<output_dir>/runs``.

One table per modality group: models as rows, tasks as columns (primary metric), the paper's reference
numbers as a row. For each (model, task) the best run counts, respecting the metric's direction. Runs on
``sample`` data go to ``leaderboards/sample/`` and never enter the full-benchmark tables.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.results import write_text

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


def collect(runs_dir: Path) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{data kind: {group: {task: {"paper": score, "metric": name, "models": {model: Cell}}}}}"""
    boards: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for path in sorted(runs_dir.glob("*/results.json")):
        try:
            res = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a run being written right now, or damaged: skip it
        if res.get("status") != "complete":
            continue
        model = res["model"]["name"]
        for task, rec in res.get("tasks", {}).items():
            metric = rec.get("primary_metric")
            mv = rec.get("metrics", {}).get(metric)
            if not mv or mv.get("value") is None or (isinstance(mv["value"], float) and math.isnan(mv["value"])):
                continue
            kind = "sample" if rec.get("data") == "sample" else "full"
            column = boards.setdefault(kind, {}).setdefault(rec["group"], {}).setdefault(
                task, {"paper": rec.get("paper_score"), "metric": metric, "models": {}}
            )
            cell = Cell(mv["value"], mv.get("stderr"), mv.get("higher_is_better", True), metric, res["run_id"],
                        rec.get("data_source", ""))
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
    with open(board_dir / ".lock", "w") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        for kind, groups in collect(output_dir / "runs").items():
            for group, columns in sorted(groups.items()):
                header, rows, notes = tables(columns)
                title = f"{group} ({'sample data: not comparable to the paper' if kind == 'sample' else 'full benchmarks'})"
                base = board_dir / kind / group
                for suffix, text in ((".md", to_markdown(title, header, rows, notes)),
                                     (".csv", to_csv(header, rows)),
                                     (".tex", to_latex(title, header, rows))):
                    write_text(base.with_suffix(suffix), text)
                    written.append(base.with_suffix(suffix))
    return written
