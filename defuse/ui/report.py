"""The Report page: Figure 4 of the paper for this project, scenario galleries, trade-off, HTML export."""

from __future__ import annotations

import base64
import html
import io
import time

from ..data.render import image_grid, prediction_captions
from ..label.provenance import HUMAN, ScenarioDecision, table_rows
from ..label.purity import mix_words
from ..runtime import atomic
from ..steps.distill import default_tau
from ..steps.purity import workspace_purities
from ..steps.report import build_report, report_markdown
from ..workspace import HTML_REPORT, SWEEP, Workspace
from . import cache
from .charts import tradeoff_chart
from .gallery import as_tensor
from .static_chart import tradeoff_png as static_tradeoff


def figure4(ws: Workspace) -> tuple[dict, str]:
    report = build_report(ws)
    return report, report_markdown(report)


def scenario_gallery(ws: Workspace, max_scenarios: int | None = None) -> list[tuple[str, object]]:
    """(caption, PIL grid) of the labeled scenarios (every one by default), failures first."""
    decided = cache.decided(ws)
    order = sorted(decided, key=lambda j: (not decided[j].verdict.is_failure, j))[:max_scenarios]
    names, purities = ws.project["class_names"], workspace_purities(ws)
    out = []
    for j in order:
        v = decided[j].verdict
        images, preds, conf = cache.scenario_samples(ws, j, 16, default_tau(ws))
        what = f"failure, true label {names[v.label]}" if v.is_failure else "not a failure"
        conflicts = f"; conflicts: {'; '.join(decided[j].conflicts)}" if decided[j].conflicts else ""
        caption = (f"Scenario #{j}: {what} ({who_decided(decided[j])}{conflicts}); classifier's labels and "
                   "confidence drawn")
        p = purities.get(j)
        if p is not None:
            mixed = f" — mixed: {mix_words(p, names)}" if p.mixed else ""
            caption += f". Reviewer purity {p.purity:.0%}{mixed}"
        out.append((caption, image_grid(as_tensor(images), ncol=8, captions=prediction_captions(preds, conf),
                                        scale=2)))
    return out


def who_decided(s: ScenarioDecision) -> str:
    """"decided by people: alice, bob, agreement 100%" or "decided by the automatic reviewer (name)"."""
    v = s.verdict
    if s.decided_by != HUMAN:
        return f"decided by the automatic reviewer {', '.join(s.reviewers)}".rstrip()
    agree = "" if v.agreement != v.agreement else f", agreement {v.agreement:.0%}"  # nan: no votes
    return f"decided by people: {', '.join(s.annotators)}{agree}"


def decision_rows(ws: Workspace) -> list[dict]:
    """Every decided scenario: its decision, who decided it (people or the reviewer), notes and conflicts."""
    return table_rows(cache.decided(ws), ws.project["class_names"])


def tradeoff_png(ws: Workspace) -> bytes | None:
    """The trade-off chart as a static PNG, for the HTML report (offline, a few kB)."""
    sweep = ws.load_json(SWEEP, default={})
    if not sweep:
        return None
    per_sample = sweep.get("config", {}).get("failure_labels") == "reviewer"
    return static_tradeoff(sweep["best_per_lambda"], before=sweep["before"], chosen=sweep["chosen"],
                           per_sample=per_sample)


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


def build_html(ws: Workspace, table_md: str, galleries: list, chart_png: bytes | None,
               decisions: list[dict] = ()) -> str:
    """One self-contained HTML file that opens offline: images and the static chart inlined as base64 PNG."""
    parts = [f"<h1>Defuse report — {html.escape(ws.name)}</h1>",
             f"<p>Made {time.strftime('%Y-%m-%d %H:%M')} · data: {html.escape(ws.project['dataset']['source'])}</p>",
             "<h2>Accuracy before and after correction (as Figure 4 of the paper)</h2>", _table_html(table_md)]
    if chart_png is not None:
        data = base64.b64encode(chart_png).decode("ascii")
        parts += ["<h2>λ trade-off</h2>", f"<img src='data:image/png;base64,{data}' alt='λ trade-off chart'>"]
    if decisions:
        parts += ["<h2>Decisions</h2>", _rows_html(decisions)]
    if galleries:
        parts.append("<h2>Failure scenarios</h2>")
        parts += [f"<figure><img src='data:image/png;base64,{_png(img)}' alt='scenario samples'>"
                  f"<figcaption>{html.escape(caption)}</figcaption></figure>" for caption, img in galleries]
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "td.l{text-align:left}figure{display:inline-block;margin:8px;vertical-align:top}figcaption{font-size:0.85em;max-width:420px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Defuse report — {html.escape(ws.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _rows_html(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td class='l'>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


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
