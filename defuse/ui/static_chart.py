"""The λ trade-off as a static PNG for the HTML report: a few kB that open offline, where the interactive
chart would inline the whole plotting library (about 4.5 MB) for one figure."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Optional

# (label, marker, colour, size): the same encoding as defuse.ui.charts.tradeoff_chart
STYLES = {"defuse": ("Defuse (λ)", "o", "#1f77b4", 40), "control": ("control (λ=0)", "s", "#7f7f7f", 40),
          "baseline": ("baseline (raw adversarial examples)", "D", "#ff7f0e", 40),
          "before": ("before correction", "x", "#d62728", 60), "chosen": ("chosen", "*", "#2ca02c", 160)}


def tradeoff_png(rows: Sequence[dict], *, before: Optional[dict], chosen: Optional[dict], per_sample: bool = False,
                 x: str = "test") -> bytes:
    """PNG bytes: x = test accuracy, y = failure-scenario test accuracy (per-sample labels if ``per_sample``)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: the server renders files
    from matplotlib.figure import Figure

    xk, yk = f"{x}_acc", f"failure_{x}_acc" + ("_reviewer" if per_sample else "")
    groups = {"defuse": [r for r in rows if r.get("kind", "defuse") == "defuse" and r.get("lambda") not in (0, 0.0)],
              "control": [r for r in rows if r.get("kind", "defuse") == "defuse" and r.get("lambda") in (0, 0.0)],
              "baseline": [r for r in rows if r.get("kind") == "baseline"],
              "before": [before] if before else [], "chosen": [chosen] if chosen else []}
    fig = Figure(figsize=(7, 4.2), dpi=90)
    ax = fig.add_subplot()
    for kind, group in groups.items():
        pts = [r for r in group if r.get(xk) is not None and r.get(yk) is not None]
        if not pts:
            continue
        label, marker, colour, size = STYLES[kind]
        ax.scatter([100 * r[xk] for r in pts], [100 * r[yk] for r in pts], marker=marker, c=colour, s=size,
                   label=label)
        for r in pts:
            if kind != "before" and r.get("lambda") is not None:
                ax.annotate(f"λ={r['lambda']:g}", (100 * r[xk], 100 * r[yk]), fontsize=7,
                            textcoords="offset points", xytext=(0, 6), ha="center")
    ax.set_xlabel(f"{x} accuracy (%)")
    ax.set_ylabel("failure-scenario accuracy" + (" (per-sample labels)" if per_sample else "") + " (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
