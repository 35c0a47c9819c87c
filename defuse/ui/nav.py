"""Guards and links between the pages: what must be done first, and one click to it."""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ..workspace import Workspace
from . import state
from .boot import leave_pages_folder_mode
from .errors import guard

# The page that runs each step of defuse.workspace.STEPS.
STEP_PAGES = {"classifier": ("pages/setup.py", "Setup", "🛠️"), "vae": ("pages/setup.py", "Setup", "🛠️"),
              "identify": ("pages/identify.py", "Identify", "🔎"), "distill": ("pages/explore.py", "Explore", "🗺️"),
              "label": ("pages/label.py", "Label", "🏷️"), "correct": ("pages/correct.py", "Correct", "🩹"),
              "export": ("pages/correct.py", "Correct", "🩹"), "report": ("pages/report.py", "Report", "📄")}
STEP_WORDS = {"classifier": "a classifier", "vae": "a β-VAE", "identify": "unrestricted adversarial examples "
              "(Identify)", "distill": "failure scenarios (Explore → distill)", "correct": "the λ sweep (Correct)",
              "export": "an exported model (Correct → export)"}
STEP_COMMANDS = {"classifier": "train-classifier", "vae": "train-vae"}  # the CLI's name where it is not the step's
# Each step's title on the Home page, and each job's name (by its CLI command) in messages and the sidebar.
STEP_TITLES = {"classifier": "Classifier", "vae": "β-VAE", "identify": "Identify", "distill": "Distill",
               "label": "Label", "correct": "Correct", "export": "Export"}
JOB_WORDS = {"identify": "Identify", "distill": "Distillation", "embed": "2-D map", "label": "Automatic review",
             "correct": "λ sweep", "export": "Export", "train-classifier": "Classifier training",
             "train-vae": "VAE training", "train-reviewer": "Reviewer training", "review": "Review",
             "suite": "Regression suite"}


def open_project() -> Workspace:
    """The project of this session; the page stops with a message when none can be opened."""
    leave_pages_folder_mode()
    with guard("open a project"):
        return state.current_workspace()


def link(step: str, label: str | None = None) -> None:
    """A link to the page of ``step`` (plain text where the page is not part of a navigation, as in tests)."""
    path, title, icon = STEP_PAGES[step]
    try:
        st.page_link(path, label=label or f"Go to {title}", icon=icon)
    except StreamlitAPIException:
        st.caption(f"{icon} {label or title}: open the {title} page.")


def label_button(j: int) -> None:
    """A button that opens scenario ``j`` on the Label page (to label it, or to change an earlier answer)."""
    if st.button("Label it", key=f"open-label-{j}", help=f"Open scenario #{j} on the Label page"):
        st.session_state["label-next"] = j  # the Label page picks it up before drawing its scenario picker
        try:
            st.switch_page(STEP_PAGES["label"][0])
        except StreamlitAPIException:  # no navigation around this page (a page run on its own, as in tests)
            st.rerun()


def require(ws: Workspace, *steps: str) -> None:
    """Stop the page with a hint when a step it builds on was never run; warn when one is stale."""
    status = ws.status()
    for step in steps:
        if status[step] in ("missing", "corrupt"):
            problem = "was never made" if status[step] == "missing" else "is damaged (its checksum changed)"
            st.info(f"This page needs {STEP_WORDS[step]}, which {problem} for project **{ws.name}**: run "
                    f"{STEP_COMMANDS.get(step, step)} first (on the {STEP_PAGES[step][1]} page).")
            link(step)
            st.stop()
    stale_note(ws, *steps, status=status)


def stale_note(ws: Workspace, *steps: str, status: dict | None = None) -> None:
    """A warning for each of ``steps`` whose inputs changed after it ran."""
    status = status or ws.status()
    stale = [s for s in steps if status[s] == "stale"]
    if stale:
        st.warning(f"{', '.join(stale)} is stale: something it was computed from has changed since. "
                   "Results below may not match the current models; re-run it to refresh.")
