"""``python -m harness table``: a paper comparison table, models as rows and benchmarks as columns.

Columns are the benchmarks' headline (primary) metrics, grouped by modality. Per column the best value is bold
and the second underlined, each in its metric's direction. Reference rows come from reported numbers: the
Uni-MoE-2.0-Omni paper and the best peer it reports (``configs/reported/unimoe2_omni_paper.csv``), plus any
CSV the user gives (``task,metric,model,value[,source]``). A cell computed from a partial run (sample data, a
shard, a limit, an unfinished run) carries a footnote saying so, and a whole run always wins over a partial one.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from harness.api import HarnessError
from harness.errors import InputFileError
from harness.leaderboard import _tex_escape as tex_escape
from harness.results import REPO_ROOT, run_coverage, warn
from harness.results import read_results as results_file

CATALOGUE = REPO_ROOT / "configs" / "reported" / "unimoe2_omni_paper.csv"
PAPER_MODEL = "Uni-MoE-2.0-Omni (paper)"
PEER_ROW = "Best reported peer"
GROUP_ORDER = ("image", "video", "text", "audio_speech", "music", "omni", "speech_generation", "image_generation",
               "image_editing", "low_level_vision")
FORMATS = ("latex", "markdown", "csv")


@dataclass
class Cell:
    value: float
    notes: tuple[str, ...] = ()  # footnote texts (partial run, which peer)
    whole: bool = True


@dataclass
class Column:
    task: str
    group: str
    metric: str
    higher_is_better: bool


@dataclass
class Table:
    columns: list[Column]
    rows: dict[str, dict[str, Cell]]  # row label -> task -> cell; reference rows first
    reference_rows: list[str] = field(default_factory=list)

    def ranks(self) -> dict[tuple[str, str], int]:
        """``(row, task) -> 1 | 2`` for the best and second-best distinct values of each column."""
        out: dict[tuple[str, str], int] = {}
        for col in self.columns:
            values = sorted({c.value for r in self.rows.values() if (c := r.get(col.task)) is not None},
                            reverse=col.higher_is_better)
            for label, cells in self.rows.items():
                cell = cells.get(col.task)
                if cell is not None and cell.value in values[:2]:
                    out[(label, col.task)] = values.index(cell.value) + 1
        return out

    def footnotes(self) -> list[str]:
        """Distinct note texts in order of first appearance; a cell's marker is its note's number."""
        seen: dict[str, None] = {}
        for cells in self.rows.values():
            for col in self.columns:
                for note in (cells[col.task].notes if col.task in cells else ()):
                    seen.setdefault(note)
        return list(seen)


# ---- reading runs and reported numbers ---------------------------------------------------------------


def find_results(spec: str) -> list[Path]:
    """results.json files named by ``runs=``: run directories, or folders holding ``runs/*`` or ``*/results.json``."""
    paths: list[Path] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        root = Path(item)
        if root.is_file() and root.name == "results.json":
            paths.append(root)
        elif (root / "results.json").is_file():
            paths.append(root / "results.json")
        elif root.is_dir():
            paths.extend(sorted(root.glob("runs/*/results.json")) or sorted(root.glob("*/results.json")))
        else:
            raise HarnessError(f"table: runs={item}: no such run directory or results folder")
    return paths


def read_results(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Parsed results files; one that cannot be used is skipped with a warning naming it."""
    out = []
    for path in paths:
        try:
            out.append(results_file(path))
        except InputFileError as e:
            warn(f"skipped: {e}")
    return out


def read_reported(path: Path) -> list[dict[str, str]]:
    """Rows ``task, metric, model, value[, source]`` of a reported-scores CSV (``#`` lines are comments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise HarnessError(f"table: reported={path}: cannot be read ({e.strerror})") from e
    lines = [line for line in text.splitlines(True) if not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("".join(lines)))
    missing = {"task", "model", "value"} - set(reader.fieldnames or ())
    if missing:
        raise HarnessError(f"table: {path}: missing column(s) {', '.join(sorted(missing))} "
                           "(expected task,metric,model,value[,source])")
    rows = []
    for number, row in enumerate(reader, 2):
        try:
            row["value"] = float(row["value"])
        except (TypeError, ValueError):
            raise HarnessError(f"table: {path}:{number}: value {row.get('value')!r} is not a number") from None
        rows.append(row)
    return rows


def partial_reason(results: Mapping[str, Any], record: Mapping[str, Any]) -> str | None:
    """Why a task's number is not a whole-benchmark result (None when it is): sample data, or the run's
    coverage (unfinished, a shard, a limit, fewer documents than the dataset; see ``run_coverage``)."""
    if (record.get("data") or results.get("data")) == "sample":
        return "sample data"
    coverage = run_coverage(results)
    return None if coverage.whole else coverage.reason


# ---- building ---------------------------------------------------------------------------------------


def build_table(results: Sequence[Mapping[str, Any]], tasks: Sequence[str] | None = None,
                reported: Sequence[Mapping[str, Any]] = ()) -> Table:
    """Model rows from runs (best whole run per model and task), reference rows from reported numbers."""
    from harness.metrics.base import get_metric

    columns: dict[str, Column] = {}
    rows: dict[str, dict[str, Cell]] = {}
    for res in results:
        model = str(res["model"].get("name", "?"))
        for task, record in res["tasks"].items():
            if tasks is not None and task not in tasks:
                continue
            metric = record.get("primary_metric")
            value = ((record.get("metrics") or {}).get(metric) or {}).get("value")
            if not isinstance(value, (int, float)) or math.isnan(value) or record.get("fatal"):
                continue
            higher = bool(record["metrics"][metric].get("higher_is_better", True))
            columns.setdefault(task, Column(task, record.get("group") or "other", metric, higher))
            why = partial_reason(res, record)
            cell = Cell(float(value), (f"{why} ({res.get('run_id', '')})",) if why else (), why is None)
            best = rows.setdefault(model, {}).get(task)
            if best is None or _better(cell, best, higher):
                rows[model][task] = cell
    wanted = set(columns) if tasks is None else set(tasks)
    for task in wanted - set(columns):  # a column with reported numbers only
        group, metric = _task_meta(task)
        if metric and any(r["task"] == task for r in reported):
            try:
                higher = get_metric(metric).higher_is_better
            except KeyError:
                higher = True
            columns[task] = Column(task, group, metric, higher)
    ordered = sorted(columns.values(), key=lambda c: (GROUP_ORDER.index(c.group) if c.group in GROUP_ORDER
                                                     else len(GROUP_ORDER), c.group, c.task))
    reference = _reference_rows(ordered, reported)
    return Table(ordered, {**reference, **rows}, list(reference))


def _better(new: Cell, old: Cell, higher: bool) -> bool:
    if new.whole != old.whole:
        return new.whole
    return new.value > old.value if higher else new.value < old.value


def _task_meta(task: str) -> tuple[str, str]:
    from harness.catalog import load_entry
    from harness.task import TaskConfig

    try:
        entry = load_entry(task)
    except KeyError:
        return "other", ""
    return (entry.group, entry.primary_metric) if isinstance(entry, TaskConfig) else ("other", "")


def _reference_rows(columns: Sequence[Column], reported: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Cell]]:
    by_task = {c.task: c for c in columns}
    usable = [r for r in reported if r["task"] in by_task and (not r.get("metric") or r["metric"] == by_task[r["task"]].metric)]
    rows: dict[str, dict[str, Cell]] = {}
    for r in usable:
        if r["model"] == PAPER_MODEL:
            rows.setdefault(PAPER_MODEL, {})[r["task"]] = Cell(r["value"])
    peers: dict[str, dict[str, Cell]] = {}
    for r in usable:
        if r["model"] == PAPER_MODEL:
            continue
        col = by_task[r["task"]]
        cell = Cell(r["value"], (f"best reported peer: {r['model']}",))
        current = peers.setdefault(PEER_ROW, {}).get(r["task"])
        if current is None or (r["value"] > current.value if col.higher_is_better else r["value"] < current.value):
            peers[PEER_ROW][r["task"]] = cell
    return {**rows, **peers}


# ---- rendering --------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


def _rendered_rows(table: Table, notes: list[str], escape: Callable[[str], str], bold: str, underline: str,
                   mark: str, missing: str) -> Iterator[tuple[str, list[str]]]:
    """Each row's label and cells as text: numbers with the format's emphasis and footnote marks."""
    ranks = table.ranks()
    for label, cells in table.rows.items():
        out = [escape(label)]
        for col in table.columns:
            cell = cells.get(col.task)
            if cell is None:
                out.append(missing)
                continue
            text = _number(cell.value)
            rank = ranks.get((label, col.task))
            text = bold.format(text) if rank == 1 else underline.format(text) if rank == 2 else text
            marks = ",".join(str(notes.index(n) + 1) for n in cell.notes)
            out.append(text + (mark.format(marks) if marks else ""))
        yield label, out


def to_latex(table: Table, caption: str = "Comparison") -> str:
    notes = table.footnotes()
    groups: list[tuple[str, int]] = []
    for col in table.columns:
        if groups and groups[-1][0] == col.group:
            groups[-1] = (col.group, groups[-1][1] + 1)
        else:
            groups.append((col.group, 1))
    lines = [r"\begin{table*}[t]", r"\centering", r"\small", rf"\caption{{{tex_escape(caption)}}}",
             rf"\begin{{tabular}}{{l{'r' * len(table.columns)}}}", r"\toprule",
             " & ".join(["", *(rf"\multicolumn{{{n}}}{{c}}{{{tex_escape(g.replace('_', ' '))}}}" for g, n in groups)])
             + r" \\"]
    start = 2
    rules = []
    for _, n in groups:
        rules.append(rf"\cmidrule(lr){{{start}-{start + n - 1}}}")
        start += n
    lines.append("".join(rules))
    lines.append(" & ".join(["Model", *(tex_escape(c.task) + ("$\\uparrow$" if c.higher_is_better else "$\\downarrow$")
                                         for c in table.columns)]) + r" \\")
    lines.append(r"\midrule")
    for i, (label, out) in enumerate(_rendered_rows(table, notes, tex_escape, r"\textbf{{{}}}", r"\underline{{{}}}",
                                                   r"\textsuperscript{{{}}}", "--")):
        lines.append(" & ".join(out) + r" \\")
        if i == len(table.reference_rows) - 1 and len(table.rows) > len(table.reference_rows):
            lines.append(r"\midrule")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines.append(r"\\[2pt]\footnotesize " + "; ".join(
            rf"\textsuperscript{{{i}}}{tex_escape(n)}" for i, n in enumerate(notes, 1)))
    lines += [r"\end{table*}", ""]
    return "\n".join(lines)


def to_markdown(table: Table) -> str:
    notes = table.footnotes()
    header = ["model", *(f"{c.task} ({c.group}) {'↑' if c.higher_is_better else '↓'}" for c in table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(table.columns) + "|"]
    for _, out in _rendered_rows(table, notes, str, "**{}**", "<u>{}</u>", "<sup>{}</sup>", "–"):
        lines.append("| " + " | ".join(out) + " |")
    lines += ["", *(f"{i}. {n}" for i, n in enumerate(notes, 1))]
    return "\n".join(lines).rstrip() + "\n"


def to_csv(table: Table) -> str:
    """Plain values (no emphasis), one ``notes`` column per row with that row's footnotes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", *(c.task for c in table.columns), "notes"])
    writer.writerow(["(group)", *(c.group for c in table.columns), ""])
    for label, cells in table.rows.items():
        notes = sorted({f"{t}: {n}" for t, c in cells.items() for n in c.notes})
        writer.writerow([label, *(_number(cells[c.task].value) if c.task in cells else "" for c in table.columns),
                         "; ".join(notes)])
    return buffer.getvalue()


def table_command(args: Mapping[str, str]) -> int:
    allowed = {"runs", "tasks", "format", "reported", "out", "caption"}
    unknown = set(args) - allowed
    if unknown:
        raise HarnessError(f"table: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
    if not args.get("runs"):
        raise HarnessError("table needs runs=<results folder or run dirs, comma-separated>")
    fmt = args.get("format", "markdown")
    if fmt not in FORMATS:
        raise HarnessError(f"table: format={fmt!r}; choose one of {', '.join(FORMATS)}")
    tasks = None
    if args.get("tasks"):
        from harness.catalog import expand, load_entry

        try:
            tasks = [c.name for name in args["tasks"].split(",") for c in expand(load_entry(name.strip()))]
        except KeyError as e:
            raise HarnessError(f"table: tasks={args['tasks']}: {e.args[0]}") from None
    reported = read_reported(CATALOGUE) if CATALOGUE.is_file() else []
    for extra in filter(None, (p.strip() for p in args.get("reported", "").split(","))):
        reported += read_reported(Path(extra))
    table = build_table(read_results(find_results(args["runs"])), tasks, reported)
    if not table.columns:
        raise HarnessError(f"table: no finished task results under runs={args['runs']}")
    text = {"latex": lambda: to_latex(table, args.get("caption", "Comparison")), "markdown": lambda: to_markdown(table),
            "csv": lambda: to_csv(table)}[fmt]()
    if args.get("out"):
        from harness.results import write_text

        write_text(Path(args["out"]), text)
        print(args["out"])
    else:
        print(text, end="")
    return 0
