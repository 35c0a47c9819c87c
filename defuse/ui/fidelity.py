"""The fidelity gate on the pages: Setup and Home say prominently when the β-VAE is too blurry to search with,
and Identify asks for an explicit confirmation before searching with it anyway."""

from __future__ import annotations

import streamlit as st

from ..nets.vae_recipe import ACCEPT_FLAG
from ..steps.fidelity import workspace_gate
from ..workspace import Workspace

CONFIRM = "Search with this VAE anyway (most 'failures' found will be its blur)"


def fidelity_banner(ws: Workspace) -> bool:
    """An error box with what is wrong and what to do; True when the VAE fails the gate."""
    problem = workspace_gate(ws)
    if problem:
        st.error(problem, icon="🌫️")
    return problem is not None


def confirmation(ws: Workspace) -> list[str] | None:
    """Identify's extra CLI arguments: [] when the VAE passes the gate, [ACCEPT_FLAG] when the user confirmed
    searching with a failing one, None while they have not (the page then refuses to start)."""
    if not fidelity_banner(ws):
        return []
    return [ACCEPT_FLAG] if st.checkbox(CONFIRM, key="accept-low-fidelity") else None
