"""The Report page: Figure 4 of the paper for this project, scenario galleries, trade-off, HTML export."""

from __future__ import annotations

import base64
import html
import io
import time

import plotly.graph_objects as go

from ..data.render import image_grid, prediction_captions
from ..runtime import atomic
from ..steps.distill import default_tau
from ..steps.report import build_report, report_markdown
from ..workspace import HTML_REPORT, SWEEP, Workspace
from . import cache
from .charts import tradeoff_chart
from .gallery import as_tensor


def figure4(ws: Workspace) -> tuple[dict, str]:
    report = build_report(ws)
    return report, report_markdown(report)


def scenario_gallery(ws: Workspace, max_scenarios: int = 12) -> list[tuple[str, object]]:
    """(caption, PIL grid) of the labeled scenarios, failures first."""
    verdicts = cache.verdicts(ws)
    order = sorted(verdicts, key=lambda j: (not verdicts[j].is_failure, j))[:max_scenarios]
    names = ws.project["class_names"]
    out = []
    for j in order:
        v = verdicts[j]
        images, preds, conf = cache.scenario_samples(ws, j, 16, default_tau(ws))
        what = f"failure, true label {names[v.label]}" if v.is_failure else "not a failure"
        agree = "" if v.agreement != v.agreement else f", agreement {v.agreement:.0%}"  # nan: no votes
        caption = (f"Scenario #{j}: {what} ({v.n_annotators} annotator(s){agree}); classifier's labels and "
                   "confidence drawn")
        out.append((caption, image_grid(as_tensor(images), ncol=8, captions=prediction_captions(preds, conf),
                                        scale=2)))
    return out


def tradeoff_figure(ws: Workspace):
    sweep = ws.load_json(SWEEP, default={})
    if not sweep:
        return None
    rows = sweep["best_per_lambda"]
    return tradeoff_chart([r for r in rows if r["kind"] == "defuse"], before=sweep["before"], chosen=sweep["chosen"],
                          baseline=[r for r in rows if r["kind"] == "baseline"])


def _png(img) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def build_html(ws: Workspace, table_md: str, galleries: list, fig) -> str:
    """One self-contained HTML file: images inlined as base64 PNG, the chart with plotly.js inlined."""
    parts = [f"<h1>Defuse report — {html.escape(ws.name)}</h1>",
             f"<p>Made {time.strftime('%Y-%m-%d %H:%M')} · data: {html.escape(ws.project['dataset']['source'])}</p>",
             "<h2>Accuracy before and after correction (as Figure 4 of the paper)</h2>", _table_html(table_md)]
    if fig is not None:
        wide = go.Figure(fig).update_layout(margin=dict(l=70))  # the page's narrow margin clips the y ticks here
        parts += ["<h2>λ trade-off</h2>", wide.to_html(include_plotlyjs=True, full_html=False)]
    if galleries:
        parts.append("<h2>Failure scenarios</h2>")
        parts += [f"<figure><img src='data:image/png;base64,{_png(img)}' alt='scenario samples'>"
                  f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, img in galleries]
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "figure{display:inline-block;margin:8px;vertical-align:top}figcaption{font-size:0.85em;max-width:420px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Defuse report — {html.escape(ws.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _table_html(text: str) -> str:
    """The report's Markdown (paragraphs and one pipe table) as HTML."""
    out, rows = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):
                rows.append(cells)
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    if rows:
        head = "".join(f"<th>{c}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows[1:])
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "".join(out)


def save_html(ws: Workspace, text: str) -> None:
    atomic.write_text(ws.path(HTML_REPORT), text)
