"""The app's word before a long training job: its time on this machine, and how to make it shorter."""

from __future__ import annotations

import streamlit as st

from ..runtime.progress import fmt_seconds
from ..steps.estimates import estimate_correct, estimate_vae
from ..workspace import Workspace


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def _estimate(root: str, kind: str, cfg, baseline: bool):
    ws = Workspace(root)
    return estimate_vae(ws, cfg) if kind == "vae" else estimate_correct(ws, cfg, baseline=baseline)


def job_time_note(ws: Workspace, kind: str, cfg, *, baseline: bool = True) -> None:
    """Under a job's form: a warning when it would run over 10 minutes here, else its expected time."""
    try:
        estimate = _estimate(str(ws.root), kind, cfg, baseline)
    except (ValueError, OSError, RuntimeError):  # no classifier yet, unreadable data: the form says so itself
        return
    warning = estimate.warning()
    if warning:
        st.warning(warning, icon="⏳")
    else:
        st.caption(f"{estimate.job}: about {fmt_seconds(estimate.seconds)} here "
                   f"({estimate.steps:,} steps at {estimate.steps_per_s:.3g} steps/s).")
