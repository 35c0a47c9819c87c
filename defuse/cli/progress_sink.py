"""Where a CLI command's progress goes: a terminal bar with ETA and/or a JSON-lines file.

The JSON lines are the contract with the app's job runner (:mod:`defuse.cli.jobs`): each line is
``{"time", "step", "done", "total", "eta_s", "rate", "metrics"}`` or an ``{"time", "event", ...}`` record.
"""

from __future__ import annotations

import json
import math
import sys
import time
from typing import Optional

from ..runtime.progress import Progress, fmt_seconds


def _fmt_metric(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class ProgressSink:
    """Callable progress callback that renders and/or logs :class:`Progress` events."""

    def __init__(self, jsonl: Optional[str] = None, terminal: bool = True, min_interval: float = 0.2):
        self._file = open(jsonl, "a", buffering=1, encoding="utf-8") if jsonl else None
        self.terminal, self.min_interval = terminal, min_interval
        self._last_draw, self._last_step = 0.0, None

    def __call__(self, p: Progress) -> None:
        if self._file:
            self._write({"step": p.step, "done": p.done, "total": p.total, "eta_s": p.eta_s, "rate": p.rate,
                         "metrics": p.metrics})
        if self.terminal:
            self._draw(p)

    def event(self, record: dict) -> None:
        if self._file:
            self._write(record)

    def _write(self, record: dict) -> None:
        line = json.dumps({"time": time.time(), **record}, default=_json_value, allow_nan=False)
        self._file.write(line + "\n")

    def _draw(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.done >= p.total
        if not final and now - self._last_draw < self.min_interval and p.step == self._last_step:
            return
        if self._last_step not in (None, p.step):
            sys.stderr.write("\n")
        self._last_draw, self._last_step = now, p.step
        width = 30
        filled = int(width * p.fraction)
        shown = {k: v for k, v in p.metrics.items() if isinstance(v, (int, float, str))}
        metrics = " ".join(f"{k}={_fmt_metric(v)}" for k, v in list(shown.items())[:4])
        sys.stderr.write(f"\r{p.step:<16} [{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total} "
                         f"{_fmt_rate(p)}ETA {fmt_seconds(p.eta_s)} {metrics}"[:160].ljust(100))
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.terminal and self._last_step is not None:
            sys.stderr.write("\n")
        if self._file:
            self._file.close()
            self._file = None


def _fmt_rate(p: Progress) -> str:
    """"12.3 it/s " (steps of a training, decodes of identify...), or nothing before the rate is known."""
    if p.rate is None:
        return ""
    return f"{p.rate:.3g} it/s " if p.rate >= 1 else f"{1 / p.rate:.3g} s/it "


def _json_value(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
