"""Run a done step again: a secondary button, and a confirmation naming what becomes stale (issue 23).

A step's first run is the page's primary action. Once it is done, running it again replaces its results and makes
every later step that was built on them stale, so the button turns secondary ("Run distillation again") and the
form asks to confirm, naming those steps, before any job starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import streamlit as st

from ..workspace import STEPS, Workspace
from .nav import STEP_TITLES


def downstream(step: str) -> list[str]:
    """The steps built on ``step``, directly or through others, in pipeline order."""
    found: set[str] = set()
    frontier = {step}
    while frontier:
        outputs = {rel for s in frontier for rel in STEPS[s].outputs}
        new = {s for s, spec in STEPS.items() if s not in found and s != step
               and (set(spec.upstream) & frontier or set(spec.inputs) & outputs)}
        found |= new
        frontier = new
    return [s for s in STEPS if s in found]


@dataclass
class RunAgain:
    """Inside a job form: whether the step is done, what a re-run makes stale, and the user's confirmation."""

    done: bool
    stale: list[str]          # titles of the later steps that are done now and would go stale
    confirmed: bool
    note: Any                 # st.empty() under the confirmation

    def label(self, first: str) -> str:
        return f"{first} again" if self.done else first

    @property
    def button_type(self) -> str:
        return "secondary" if self.done else "primary"

    def refused(self) -> bool:
        """True (and says so under the box) when the step is done and the re-run was not confirmed."""
        if not self.done or self.confirmed:
            return False
        self.note.error("Not started: tick the box above to replace the results"
                        + (f" ({', '.join(self.stale)} would become stale)." if self.stale else "."), icon="⚠️")
        return True


def run_again_box(ws: Workspace, step: str, *, key: Optional[str] = None) -> RunAgain:
    """Inside a form: for a done step, a confirmation box naming what becomes stale; nothing for a first run."""
    status = ws.status()
    if status.get(step) not in ("done", "stale"):
        return RunAgain(False, [], True, None)
    stale = [STEP_TITLES.get(s, s) for s in downstream(step) if status.get(s) == "done"]
    what = f"; {', '.join(stale)} will become stale" if stale else ""
    confirmed = st.checkbox(f"Replace the current {STEP_TITLES.get(step, step).lower()} results{what}",
                            key=key or f"again-{step}")
    return RunAgain(True, stale, confirmed, st.empty())
