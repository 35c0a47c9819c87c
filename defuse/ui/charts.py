"""Plotly figures of the pages: label heatmap, loss curve, λ trade-off, latent map (WebGL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np
import plotly.graph_objects as go


def distinct_colors(n: int) -> tuple[str, ...]:
    """``n`` saturated colours, hues a golden angle apart at three lightnesses: never a grey (grey is the
    "outside any scenario" colour), and neighbours in the list far apart in hue."""
    import colorsys

    out = []
    for k in range(n):
        r, g, b = colorsys.hls_to_rgb((k * 0.381966) % 1.0, (0.42, 0.58, 0.32)[k % 3], 0.85)
        out.append(f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}")
    return tuple(out)


MAP_COLORS = distinct_colors(48)  # scenarios beyond 48 reuse colours (the legend still names each)


def label_heatmap(true: np.ndarray, pred: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Counts of the unrestricted adversarial examples by true label (rows) × predicted label (columns)."""
    c = len(class_names)
    counts = np.bincount(np.asarray(true) * c + np.asarray(pred), minlength=c * c).reshape(c, c)
    names = [str(n) for n in class_names]
    fig = go.Figure(go.Heatmap(z=counts, x=names, y=names, colorscale="Reds", text=counts, texttemplate="%{text}",
                               hovertemplate="true %{y} → predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(xaxis_title="predicted label", yaxis_title="true label (of the source image)",
                      yaxis_autorange="reversed", height=420, margin=dict(l=10, r=10, t=30, b=10))
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return fig


def tradeoff_chart(points: Sequence[dict], *, x: str = "test", before: Optional[dict] = None,
                   chosen: Optional[dict] = None, baseline: Sequence[dict] = (), per_sample: bool = False) -> go.Figure:
    """x: test or validation accuracy; y: failure-scenario accuracy of the same split; one point per λ.

    ``points`` are rows (kind, lambda, val_acc, test_acc, failure_val_acc, failure_test_acc); λ=0 is the control.
    ``per_sample``: y is the accuracy on the automatic reviewer's per-sample labels (``*_reviewer``).
    """
    xk, yk = f"{x}_acc", f"failure_{x}_acc" + ("_reviewer" if per_sample else "")
    fig = go.Figure()

    def add(rows, name, symbol, color, size=11):
        rows = [r for r in rows if r.get(xk) is not None and r.get(yk) is not None]
        if not rows:
            return
        text = [("before" if r.get("lambda") is None else f"λ={r['lambda']:g}") for r in rows]
        fig.add_scatter(x=[100 * r[xk] for r in rows], y=[100 * r[yk] for r in rows], mode="markers+text",
                        text=text, textposition="top center", name=name,
                        marker=dict(symbol=symbol, size=size, color=color),
                        hovertemplate="%{text}: " + x + " %{x:.1f}%, failure scenarios %{y:.1f}%<extra></extra>")

    ours = [r for r in points if r.get("kind", "defuse") == "defuse"]
    add([r for r in ours if r.get("lambda") not in (0, 0.0)], "Defuse (λ)", "circle", "#1f77b4")
    add([r for r in ours if r.get("lambda") in (0, 0.0)], "control (λ=0)", "square", "#7f7f7f")
    add(list(baseline) or [r for r in points if r.get("kind") == "baseline"], "baseline (raw adversarial examples)",
        "diamond", "#ff7f0e")
    if before:
        add([before], "before correction", "x", "#d62728", 14)
    if chosen:
        add([chosen], "chosen", "star", "#2ca02c", 20)
    label = "test" if x == "test" else "validation"
    measure = " (per-sample labels)" if per_sample else ""
    fig.update_layout(xaxis_title=f"{label} accuracy (%)",
                      yaxis_title=f"failure-scenario {label} accuracy{measure} (%)", height=440,
                      margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.2))
    return fig


def latent_map(coords: np.ndarray, is_failure: np.ndarray, row: np.ndarray, scenario: np.ndarray,
               names: dict) -> go.Figure:
    """Training codes faint grey, failure codes coloured by scenario; WebGL (Scattergl) for tens of thousands.

    ``customdata`` holds the point's row: the failure's row, or -1 - the training image's row, since
    colouring splits the points into several traces and point indices restart in each.
    """
    fig = go.Figure()
    train = ~is_failure
    fig.add_trace(go.Scattergl(x=coords[train, 0], y=coords[train, 1], mode="markers", name="training images",
                               customdata=-1 - row[train], marker=dict(size=3, color="rgba(120,120,120,0.18)"),
                               hoverinfo="skip"))
    for k, s in enumerate(sorted(set(scenario[is_failure].tolist()))):
        m = is_failure & (scenario == s)
        fig.add_trace(go.Scattergl(
            x=coords[m, 0], y=coords[m, 1], mode="markers", name=names.get(s, f"scenario {s}"),
            customdata=row[m], marker=dict(size=4, color="#c7c7c7" if s < 0 else MAP_COLORS[k % len(MAP_COLORS)],
                                           opacity=0.75),
            hovertemplate="failure %{customdata}<extra>%{fullData.name}</extra>"))
    # the legend below the plot: at the right it sat under the toolbar, which covered its first entries
    fig.update_layout(height=620, dragmode="lasso", margin=dict(l=10, r=10, t=30, b=10),
                      legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.02, x=0),
                      xaxis=dict(showticklabels=False),
                      yaxis=dict(showticklabels=False))
    return fig
