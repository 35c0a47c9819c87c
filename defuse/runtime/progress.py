"""Progress reporting and cancellation shared by every long step, and how such a step runs.

A step calls ``on_progress(Progress(...))``; the CLI turns the events into a
terminal bar and JSON lines, the app into a progress bar. A callback cancels the
step by raising :class:`Cancelled`; the step keeps what it already finished.
:class:`RunOptions` carries the callback with the other settings of *how* a step runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional


def fmt_seconds(s: Optional[float]) -> str:
    """A duration or ETA as MM:SS (H:MM:SS from an hour); ``--:--`` when unknown."""
    if s is None or not math.isfinite(s):
        return "--:--"
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


class Cancelled(Exception):
    """Raised (by a progress callback, or on SIGTERM) to stop a step cleanly."""


@dataclass(frozen=True)
class Progress:
    step: str
    done: int
    total: int
    eta_s: Optional[float] = None
    metrics: dict = field(default_factory=dict)
    rate: Optional[float] = None       # units of ``done`` per second so far (steps/s of a training), None at first

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressFn = Optional[Callable[[Progress], None]]


@dataclass(frozen=True)
class RunOptions:
    """How a long, resumable step runs (the λ sweep): none of these changes what it computes.

    ``backend``: None trains in this process; a :class:`defuse.distributed.backend.RayBackend` trains
    on a Ray cluster, with the same results. ``resume_dir``: a folder that keeps finished parts, so an
    interrupted run resumes there (None: nothing is kept).
    """

    device: object = "auto"            # "auto", "cpu", "cuda", "cuda:1" or a torch.device
    on_progress: ProgressFn = None
    backend: object = None
    resume_dir: object = None          # str or Path


class ProgressReporter:
    """Builds :class:`Progress` events with an ETA from the rate so far."""

    def __init__(self, step: str, total: int, on_progress: ProgressFn, *, start_done: int = 0):
        self.step, self.total, self.on_progress = step, int(total), on_progress
        self._t0 = time.perf_counter()
        self._start_done = start_done  # work resumed from disk does not count towards the rate
        self._until: Optional[int] = None

    def restart_rate(self, done: int, *, until: Optional[int] = None) -> None:
        """Measure the rate from now and ``done`` on, for a new stage of the work: time spent before, in a stage
        that reports no units (UMAP's neighbour search), would otherwise make the first ETAs hours long.

        ``until``: this stage ends at that count, and the ETA covers it alone (what follows it is measured when it
        starts, by another call)."""
        self._t0, self._start_done, self._until = time.perf_counter(), int(done), until

    def __call__(self, done: int, **metrics) -> None:
        if self.on_progress is None:
            return
        elapsed = time.perf_counter() - self._t0
        fresh = done - self._start_done
        eta = rate = None
        if fresh > 0 and elapsed > 0:
            end = self.total if self._until is None else min(self.total, self._until)
            eta, rate = max(0.0, (end - done) * elapsed / fresh), fresh / elapsed
        self.on_progress(Progress(self.step, int(done), self.total, eta, dict(metrics), rate))
