"""``python -m harness report run=<dir> [compare=<dir>,...] [out=<folder>]``: one HTML page plus PNG/PDF figures.

Sections: routing (per run, side by side), results (metrics with 95% intervals and breakdowns, per run),
samples (filterable, with media; changed samples against the first compared run), and training curves when
the model folder holds the trainers' logs.
"""

from __future__ import annotations

import html as _html
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.api import HarnessError
from harness.report import figures, page
from harness.report import routing as R
from harness.report.media import MediaStore
from harness.report.runs import STATUSES, Run, load_run, rebuild_requests, sample_score, sample_status
from harness.report.trace import trace_section
from harness.routing_report import run_counts

TEXT_LIMIT = 1_500  # characters of a prompt or response kept in the page (the run's files hold all of it)
STAGE_ORDER = ("alignment", "warmup", "upcycle", "moe", "anneal", "gspo", "dpo", "lora")


def report_command(args: Mapping[str, str]) -> int:
    if not args.get("run"):
        raise HarnessError("report needs run=<run dir>  (optional: compare=<dir>[,<dir>...] out=<folder> "
                           "trace=<doc_id>|none)")
    unknown = set(args) - {"run", "compare", "out", "trace", "media_budget_mb"}
    if unknown:
        raise HarnessError(f"report: unknown key(s) {', '.join(sorted(unknown))}; "
                           "allowed: run, compare, out, trace, media_budget_mb")
    run = load_run(args["run"])
    others = [load_run(p) for p in args.get("compare", "").split(",") if p.strip()]
    out = Path(args.get("out") or run.directory / "report")
    budget = _positive_number(args.get("media_budget_mb", "12"), "media_budget_mb")
    path = build_report(run, others, out, trace=args.get("trace", "auto"), media_budget=int(budget * (1 << 20)))
    print(path)
    return 0


def _positive_number(text: str, key: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise HarnessError(f"report: {key} must be a positive number, got {text!r}")
    return value


def build_report(run: Run, compare: Sequence[Run] = (), out: Path | None = None, trace: str = "auto",
                 media_budget: int = 12 << 20) -> Path:
    """Write ``report.html`` and ``figures/*.png|pdf`` under ``out``; return the HTML path."""
    out = Path(out or run.directory / "report")
    figure_dir = out / "figures"
    runs = [run, *compare]
    trace_html, trace_data = trace_section(run, None if trace == "auto" else trace) if trace != "none" else ("", None)
    sections = [
        ("routing", "Routing", _routing_section(runs, figure_dir, trace_html)),
        ("results", "Results", _results_section(runs)),
    ]
    store = MediaStore(budget=media_budget)
    rows, fields, notes = _sample_rows(run, compare[0] if compare else None, store)
    sections.append(("samples", "Samples", page.sample_section(bool(compare))
                     + "".join(f'<p class="note">{_html.escape(n)}</p>' for n in notes)))
    training = _training_section(run, figure_dir)
    if training:
        sections.append(("training", "Training", training))
    data = {"tasks": list(run.results["tasks"]), "statuses": list(STATUSES), "fields": fields, "rows": rows,
            "media": store.items, "compareLabel": compare[0].label if compare else None,
            "trace": trace_data}
    res = run.results
    meta = " · ".join(_html.escape(str(x)) for x in (
        f"model {res.get('model', {}).get('name')}", f"data {res.get('data')}", f"status {res.get('status')}",
        f"created {res.get('created', '')[:19]}", f"fingerprint {res.get('model', {}).get('fingerprint', '')[:12]}"))
    if compare:
        meta += " · compared with " + ", ".join(_html.escape(c.label) for c in compare)
    document = page.document(f"Report: {run.label}", meta, sections, data)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.html"
    path.write_text(document, encoding="utf-8")
    return path


# ---- routing ---------------------------------------------------------------------------------------


def _routing_section(runs: Sequence[Run], figure_dir: Path, trace_html: str) -> str:
    columns = []
    for index, run in enumerate(runs):
        counts = run_counts(run.results)
        if not R.modalities(counts):
            columns.append(f"<div><h3>{_html.escape(run.label)}</h3><p class='note'>no routing statistics "
                           "(the model reported none)</p></div>")
            continue
        layout = R.layout_for(counts, run.model_dir)
        stem = f"run{index}-" if len(runs) > 1 else ""
        parts = [f"<div><h3>{_html.escape(run.label)}</h3>"]
        for name, build, caption in (
            ("expert-usage", lambda: figures.usage_heatmaps(counts, layout),
             "Share of each modality's tokens routed to each expert, per layer (routed | null | shared)."),
            ("layer-profile", lambda: figures.layer_profile(counts),
             "Routed experts per token and null-expert rate per layer, by modality."),
            ("modality-distance", lambda: figures.tv_matrices(counts),
             "Total-variation distance between modalities' expert-choice distributions."),
        ):
            png = figures.save(build(), figure_dir, stem + name)
            parts.append(page.image(png, f"{name} of {run.label}", caption))
        parts.append(_routing_numbers(counts))
        parts.append("</div>")
        columns.append("".join(parts))
    return f'<section id="routing"><h2>Routing</h2><div class="runs">{"".join(columns)}</div>{trace_html}</section>'


def _routing_numbers(counts: Mapping[str, Any]) -> str:
    rows = []
    for name in R.modalities(counts):
        active, null = R.per_layer(counts[name], "active_experts_sum"), R.per_layer(counts[name], "null_tokens")
        rows.append([name, counts[name]["tokens"], f"{active.mean():.2f}" if active.size else "",
                     f"{null.mean():.3f}" if null.size else ""])
    return page.table(["modality", "tokens", "routed experts / token", "null rate"], rows)


# ---- results ---------------------------------------------------------------------------------------


def _results_section(runs: Sequence[Run]) -> str:
    tasks = list(dict.fromkeys(t for run in runs for t in run.results["tasks"]))
    blocks = []
    for task in tasks:
        rows = []
        for run in runs:
            record = run.results["tasks"].get(task)
            if record is None:
                continue
            if record.get("fatal"):
                rows.append([run.label, "failed", record["fatal"], "", "", ""])
                continue
            for metric, value in (record.get("metrics") or {}).items():
                rows.append([run.label, metric + (" (primary)" if metric == record.get("primary_metric") else ""),
                             _fmt(value.get("value")), _interval(value), value.get("n", ""),
                             f"{record.get('n_errors', 0)} / {record.get('n_parse_errors', 0)}"])
        paper = next((r["tasks"][task].get("paper_score") for r in (run.results for run in runs)
                      if task in r["tasks"]), None)
        head = f"<h3>{_html.escape(task)}</h3>" + (f'<p class="note">paper: {_fmt(paper)}</p>' if paper is not None else "")
        block = head + page.table(["run", "metric", "value", "95% interval", "n", "errors / parse errors"], rows,
                                  numeric_from=2)
        for run in runs:
            for field, values in ((run.results["tasks"].get(task) or {}).get("breakdown") or {}).items():
                block += (f'<p class="note">{_html.escape(run.label)}: by {_html.escape(field)}</p>'
                          + page.table([field, "value"], [[k, _fmt(v)] for k, v in values.items()]))
        blocks.append(block)
    return f'<section id="results"><h2>Results</h2>{"".join(blocks)}</section>'


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return "" if value is None else str(value)


def _interval(value: Mapping[str, Any]) -> str:
    v, se = value.get("value"), value.get("stderr")
    if not isinstance(v, (int, float)) or not isinstance(se, (int, float)) or math.isnan(se):
        return ""
    return f"{v - 1.96 * se:.2f} – {v + 1.96 * se:.2f}"


# ---- samples ---------------------------------------------------------------------------------------


def _sample_rows(run: Run, other: Run | None, store: MediaStore) -> tuple[list[dict], list[str], list[str]]:
    from harness.metrics.base import get_metric

    rows: list[dict] = []
    fields: set[str] = set()
    notes: list[str] = []
    for t, (task, record) in enumerate(run.results["tasks"].items()):
        metric = record.get("primary_metric") or ""
        try:
            best = get_metric(metric).best if metric else None
        except KeyError:
            best = None
        requests, why = rebuild_requests(run, task) if run.samples.get(task) else ({}, None)
        if why:
            notes.append(why)
        theirs = {s["doc_id"]: s for s in (other.samples.get(task, []) if other else [])}
        for sample in run.samples.get(task, []):
            score = sample_score(sample, metric)
            request = requests.get(sample["doc_id"])
            row = {"t": t, "id": sample["doc_id"], "s": sample_status(sample, score, best), "v": score,
                   "x": _clip(sample.get("prediction")), "g": _clip(sample.get("target")),
                   "r": _clip(((sample.get("response") or {}).get("text")) or ""),
                   "e": sample.get("error") or sample.get("parse_error"),
                   "p": _clip(request.text()) if request else "",
                   "m": [m for m in (store.add(p) for p in request.media()) if m] if request else [],
                   "f": {k: _clip(v, 80) for k, v in (sample.get("fields") or {}).items()}}
            fields.update(f"{k}={v}" for k, v in row["f"].items())
            old = theirs.get(sample["doc_id"])
            if old is not None:
                old_score = sample_score(old, metric)
                if old_score != score or old.get("prediction") != sample.get("prediction"):
                    row["c"] = f"{_fmt(old_score) or '—'} (answer {_clip(old.get('prediction'), 60)!s})"
            rows.append(row)
    return rows, sorted(fields)[:500], notes


def _clip(value: Any, limit: int = TEXT_LIMIT) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f" … [{len(value) - limit} more characters]"
    if isinstance(value, (list, dict)):
        text = str(value)
        return value if len(text) <= limit else text[:limit] + " …"
    return value


# ---- training --------------------------------------------------------------------------------------


def _training_section(run: Run, figure_dir: Path) -> str:
    folder = run.model_dir / "training" if run.model_dir else None
    if folder is None or not folder.is_dir():
        return ""
    logs = {p.name[: -len("-log.csv")]: p for p in folder.glob("*-log.csv")}
    ordered = dict(sorted(logs.items(), key=lambda kv: (STAGE_ORDER.index(kv[0]) if kv[0] in STAGE_ORDER
                                                        else len(STAGE_ORDER), kv[0])))
    figure = figures.training_curves(ordered)
    if figure is None:
        return ""
    png = figures.save(figure, figure_dir, "training")
    return ('<section id="training"><h2>Training</h2>'
            + page.image(png, "training curves", f"Loss and learning rate per stage, from {folder}") + "</section>")
