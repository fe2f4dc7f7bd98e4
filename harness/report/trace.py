"""One sample's tokens coloured by the expert each chose, at a layer picked in the page.

The run keeps only additive counts, so the sample is replayed: the run's model is rebuilt from its config
and asked for the sample's routing with its recorded answer teacher-forced (one forward pass). Adapters that
can do this implement ``routing_trace(request, response_text)``; for others the section says so.
"""

from __future__ import annotations

import html
from typing import Any

from harness.api import HarnessError
from harness.report import routing as R
from harness.report.media import thumbnail_url
from harness.report.runs import Run, rebuild_requests
from harness.routing_report import run_counts

# Okabe-Ito first (colour-blind safe), then further distinct hues; null experts are drawn in grey
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#7F3C8D", "#11A579", "#3969AC", "#F2B701", "#E73F74", "#80BA5A", "#E68310", "#008695")
NULL_COLOUR = "#BDBDBD"


def trace_section(run: Run, doc_id: str | None) -> tuple[str, dict[str, Any] | None]:
    """The section's HTML and the data its script draws; a reason instead when no trace can be made."""
    try:
        return _trace(run, doc_id)
    except HarnessError as e:
        return _note(str(e)), None


def _note(text: str) -> str:
    return f'<h3>One sample\'s tokens</h3><p class="note">{html.escape(text)}</p>'


def _pick(run: Run, doc_id: str | None) -> tuple[str, dict[str, Any]]:
    routed = [t for t, rec in run.results["tasks"].items() if (rec.get("routing") or {}).get("counts")]
    candidates = [(t, s) for t in routed for s in run.samples.get(t, []) if not s.get("error")]
    if doc_id is not None:
        found = [(t, s) for t, s in candidates if s["doc_id"] == doc_id]
        if not found:
            raise HarnessError(f"trace={doc_id}: no scored sample with that id in a task with routing statistics")
        return found[0]
    if not candidates:
        raise HarnessError("no sample with routing statistics to trace")
    with_media = [(t, s) for t, s in candidates
                  if any(m != "text" for m in ((s.get("response") or {}).get("stats", {}).get("routing") or {})
                         if m != "aux_loss")]
    return (with_media or candidates)[0]


def _trace(run: Run, doc_id: str | None) -> tuple[str, dict[str, Any] | None]:
    from harness.models import build_model

    task, sample = _pick(run, doc_id)
    model_cfg = run.config.get("model")
    if not isinstance(model_cfg, dict) or "name" not in model_cfg:
        raise HarnessError("the run's config.yaml names no model to replay")
    try:
        adapter = build_model(model_cfg)
    except (HarnessError, KeyError, OSError, TypeError, ValueError) as e:
        raise HarnessError(f"the run's model cannot be rebuilt here ({type(e).__name__}: {e})") from e
    if not hasattr(adapter, "routing_trace"):
        raise HarnessError(f"model {model_cfg['name']} ({model_cfg.get('adapter')}) cannot replay a sample's routing")
    if adapter.fingerprint() != run.results.get("model", {}).get("fingerprint"):
        raise HarnessError(f"model {model_cfg['name']} here is not the one the run used (its fingerprint differs)")
    requests, why = rebuild_requests(run, task)
    if why or sample["doc_id"] not in requests:
        raise HarnessError(why or f"sample {sample['doc_id']} is not among {task}'s documents here")
    request = requests[sample["doc_id"]]
    trace = adapter.routing_trace(request, (sample.get("response") or {}).get("text") or "")
    counts = run_counts(run.results)
    layout = R.layout_for(counts, run.model_dir)
    labels = layout.labels[: layout.routed + layout.null]
    palette = [PALETTE[i % len(PALETTE)] for i in range(layout.routed)] + [NULL_COLOUR] * layout.null
    top = [[max(range(len(ids)), key=lambda k: weights[k] if ids[k] >= 0 else -1.0) for ids, weights in zip(li, lw)]
           for li, lw in zip(trace["expert_ids"], trace["expert_weights"])]
    top = [[ids[k] for ids, k in zip(li, layer_top)] for li, layer_top in zip(trace["expert_ids"], top)]
    tokens = [{"s": text, "m": modality} for text, modality in trace["tokens"]]
    data = {"tokens": tokens, "top": top, "labels": labels, "palette": palette}
    return _section_html(task, sample["doc_id"], request, tokens, labels, palette, len(top)), data


def _section_html(task: str, doc_id: str, request: Any, tokens: list[dict[str, str]], labels: list[str],
                  palette: list[str], layers: int) -> str:
    legend = "".join(f'<span style="background:{c};color:{"#000" if c in (NULL_COLOUR, "#F0E442", "#E69F00", "#56B4E9") else "#fff"}">'
                     f"{html.escape(label)}</span>" for label, c in zip(labels, palette))
    spans, start = [], 0
    for i in range(1, len(tokens) + 1):  # contiguous runs of one non-text modality become strips
        if i == len(tokens) or tokens[i]["m"] != tokens[start]["m"]:
            if tokens[start]["m"] != "text":
                spans.append((tokens[start]["m"], start, i))
            start = i
    media = request.media()
    strips = []
    for n, (modality, begin, end) in enumerate(spans):
        thumb = ""
        if n < len(media):
            try:
                url = thumbnail_url(media[n])
                thumb = (f'<audio controls preload="none" src="{url}"></audio>' if url.startswith("data:audio")
                         else f'<img alt="{html.escape(modality)}" src="{url}" style="width:320px">')
            except (HarnessError, OSError, ValueError) as e:  # decoration: say why it is missing, go on
                thumb = f'<span class="note">{html.escape(str(e))}</span>'
        strips.append(f'<div class="thumb">{thumb}<div class="strip" data-from="{begin}" data-to="{end}" '
                      f'title="{html.escape(modality)} tokens {begin}-{end - 1}"></div>'
                      f'<div class="note">{html.escape(modality)}: {end - begin} tokens, in order</div></div>')
    return (f"<h3>One sample's tokens: {html.escape(task)} / <code>{html.escape(doc_id)}</code></h3>"
            f'<p class="note">Each token coloured by the expert with the largest routing weight at the chosen layer '
            f"(prompt and the run's answer, teacher-forced).</p>"
            f'<div class="filters"><label>layer <input id="trace-layer" type="range" min="0" max="{layers - 1}" '
            f'value="{layers - 1}"></label><span id="trace-layer-label" class="note"></span></div>'
            f'<div class="legend">{legend}</div>{"".join(strips)}'
            f'<div id="trace-text" class="tokens"></div>')
