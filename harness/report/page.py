"""The report page: one self-contained HTML file (inline CSS, JS, figures and media; no network).

Sample rows travel as one JSON document inside the page and are filtered and paginated in the browser, so a
run of tens of thousands of samples stays one small, fast file that also works opened straight from disk.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any, Mapping, Sequence

CSS = """
:root { --fg:#1b1f24; --muted:#5b6570; --line:#d8dde3; --bg:#fff; --band:#f5f7f9; --accent:#0072B2; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg);
       margin: 0; }
header { padding: 16px 24px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 20px; margin: 0 0 4px; }
header .meta { color: var(--muted); font-size: 13px; }
nav { position: sticky; top: 0; background: var(--bg); border-bottom: 1px solid var(--line); padding: 6px 24px;
      z-index: 2; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; font-weight: 600; }
section { padding: 8px 24px 24px; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.runs { display: flex; gap: 24px; flex-wrap: wrap; align-items: flex-start; }
.runs > div { flex: 1 1 480px; min-width: 0; }
figure { margin: 8px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--band); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: var(--muted); font-size: 12px; }
.filters { display: flex; gap: 10px; flex-wrap: wrap; align-items: center; margin: 8px 0; }
.filters label { font-size: 13px; color: var(--muted); }
#samples td { max-width: 360px; }
#samples pre { white-space: pre-wrap; word-break: break-word; margin: 0; font: 12px/1.35 ui-monospace, monospace;
               max-height: 9em; overflow: auto; }
.status-correct { color: #007a4d; font-weight: 600; }
.status-wrong { color: #b3261e; font-weight: 600; }
.status-error, .status-parse.error { color: #8a5a00; font-weight: 600; }
.thumb img { max-width: 320px; max-height: 120px; display: block; }
.thumb audio { width: 240px; }
.pager button { margin: 0 4px; }
.tokens span.tok { border-radius: 3px; padding: 0 1px; margin: 1px 0; white-space: pre-wrap; }
.strip { display: flex; height: 14px; width: 320px; border: 1px solid var(--line); }
.strip span { flex: 1; }
.legend span { display: inline-block; padding: 0 6px; margin-right: 4px; border-radius: 3px; font-size: 12px; }
"""

JS = r"""
(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const PAGE = 50;
  let page = 0;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s === null || s === undefined ? '' : s).replace(/[&<>"]/g,
      (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
  const fmt = (v) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) :
      (typeof v === 'string' ? v : JSON.stringify(v)));

  function fillSelect(id, values) {
    const select = $(id);
    if (!select) return;
    for (const value of values) {
      const option = document.createElement('option');
      option.value = value; option.textContent = value; select.appendChild(option);
    }
  }

  function mediaCell(ids) {
    return (ids || []).map((id) => {
      const m = data.media[id];
      if (!m) return '';
      if (!m.url) return '<div class="note">' + esc(m.kind + ': ' + m.path + (m.note ? ' — ' + m.note : '')) + '</div>';
      if (m.kind === 'audio') return '<div class="thumb"><audio controls preload="none" src="' + m.url + '"></audio></div>';
      return '<div class="thumb"><img alt="' + esc(m.kind + ' ' + m.path) + '" src="' + m.url + '"></div>';
    }).join('');
  }

  function matches(row) {
    const task = $('f-task').value, status = $('f-status').value, field = $('f-field').value;
    const text = $('f-text').value.toLowerCase();
    const changed = $('f-changed') && $('f-changed').checked;
    if (task && data.tasks[row.t] !== task) return false;
    if (status && row.s !== status) return false;
    if (field && !Object.entries(row.f || {}).some(([k, v]) => k + '=' + v === field)) return false;
    if (changed && !row.c) return false;
    if (text && !(row.id + ' ' + row.p + ' ' + row.r + ' ' + fmt(row.x) + ' ' + fmt(row.g)).toLowerCase().includes(text))
      return false;
    return true;
  }

  function render() {
    const rows = data.rows.filter(matches);
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(page, pages - 1);
    const shown = rows.slice(page * PAGE, page * PAGE + PAGE);
    const compare = data.compareLabel;
    $('sample-body').innerHTML = shown.map((row) => '<tr>' +
      '<td>' + esc(data.tasks[row.t]) + '<br><code>' + esc(row.id) + '</code>' +
        Object.entries(row.f || {}).map(([k, v]) => '<div class="note">' + esc(k) + ': ' + esc(v) + '</div>').join('') + '</td>' +
      '<td><pre>' + esc(row.p) + '</pre>' + mediaCell(row.m) + '</td>' +
      '<td><pre>' + esc(row.r) + '</pre>' + (row.e ? '<div class="note">' + esc(row.e) + '</div>' : '') + '</td>' +
      '<td><pre>' + esc(fmt(row.x)) + '</pre></td><td><pre>' + esc(fmt(row.g)) + '</pre></td>' +
      '<td class="num">' + esc(row.v === null ? '' : fmt(row.v)) + '<div class="status-' + row.s.replace(' ', '.') + '">' +
        esc(row.s) + '</div>' + (compare && row.c ? '<div class="note">' + esc(compare) + ': ' + esc(row.c) + '</div>' : '') +
      '</td></tr>').join('');
    $('sample-count').textContent = rows.length + ' of ' + data.rows.length + ' samples · page ' + (page + 1) + ' of ' + pages;
  }

  if ($('sample-body')) {
    fillSelect('f-task', data.tasks);
    fillSelect('f-status', data.statuses);
    fillSelect('f-field', data.fields);
    for (const id of ['f-task', 'f-status', 'f-field', 'f-text', 'f-changed']) {
      if ($(id)) $(id).addEventListener('input', () => { page = 0; render(); });
    }
    $('prev').addEventListener('click', () => { page = Math.max(0, page - 1); render(); });
    $('next').addEventListener('click', () => { page += 1; render(); });
    render();
  }

  const trace = data.trace;
  if (trace && $('trace-layer')) {
    const colour = (expert) => trace.palette[expert % trace.palette.length];
    const draw = () => {
      const layer = Number($('trace-layer').value);
      $('trace-layer-label').textContent = 'layer ' + layer;
      const pick = (i) => trace.top[layer][i];
      $('trace-text').innerHTML = trace.tokens.map((tok, i) => tok.m === 'text'
        ? '<span class="tok" title="' + esc(trace.labels[pick(i)]) + '" style="background:' + colour(pick(i)) + '">' + esc(tok.s) + '</span>'
        : '').join('');
      for (const strip of document.querySelectorAll('.strip[data-from]')) {
        const from = Number(strip.dataset.from), to = Number(strip.dataset.to);
        let cells = '';
        for (let i = from; i < to; i++) cells += '<span title="' + esc(trace.labels[pick(i)]) + '" style="background:' + colour(pick(i)) + '"></span>';
        strip.innerHTML = cells;
      }
    };
    $('trace-layer').addEventListener('input', draw);
    draw();
  }
})();
"""


def escape(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def image(png: bytes, alt: str, caption: str = "") -> str:
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{escape(alt)}" src="{url}">{cap}</figure>'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{escape(c)}</td>' if i >= numeric_from else f"<td>{escape(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def json_script(data: Mapping[str, Any]) -> str:
    """Data for the page's script; ``</`` is escaped so no string can close the script element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" id="report-data">{text}</script>'


def sample_section(has_compare: bool) -> str:
    changed = ('<label><input type="checkbox" id="f-changed"> changed vs the compared run</label>'
               if has_compare else "")
    return f"""
<section id="samples"><h2>Samples</h2>
<div class="filters">
 <label>task <select id="f-task"><option value="">all</option></select></label>
 <label>status <select id="f-status"><option value="">all</option></select></label>
 <label>category <select id="f-field"><option value="">all</option></select></label>
 <label>search <input id="f-text" type="search" placeholder="id, prompt, response"></label>
 {changed}
 <span class="pager"><button id="prev" type="button">&larr;</button><button id="next" type="button">&rarr;</button></span>
 <span id="sample-count" class="note"></span>
</div>
<table><thead><tr><th>task / id</th><th>prompt and media</th><th>response</th><th>extracted</th><th>target</th>
<th>score</th></tr></thead><tbody id="sample-body"></tbody></table>
</section>"""


def document(title: str, meta: str, sections: Sequence[tuple[str, str, str]], data: Mapping[str, Any]) -> str:
    """The whole page; ``sections`` are ``(anchor, nav label, html)``."""
    nav = "".join(f'<a href="#{a}">{escape(label)}</a>' for a, label, _ in sections)
    body = "\n".join(content for _, _, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body><header><h1>{escape(title)}</h1><div class="meta">{meta}</div></header>
<nav>{nav}</nav>
{body}
{json_script(data)}
<script>{JS}</script>
</body></html>
"""
