"""Which project the app shows: ``st.session_state["project"]`` (a folder), else ``?project=NAME`` in the
address (survives a browser refresh), else the demo project, created from ``models/`` on first use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import streamlit as st

from ..demo import open_demo_project
from ..workspace import Workspace, default_home, list_workspaces

PROJECT_KEY = "project"
DEMO = "demo"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name or ""))


def select_project(root) -> None:
    """Open ``root`` on every page from now on (and in the address bar when it lies under DEFUSE_HOME)."""
    root = Path(root)
    st.session_state[PROJECT_KEY] = str(root)
    if root.parent.resolve() == default_home().resolve():
        st.query_params["project"] = root.name


def _from_query() -> Optional[Path]:
    name = st.query_params.get("project")
    return default_home() / name if name and valid_name(name) else None  # only names under DEFUSE_HOME


def current_workspace() -> Workspace:
    """The open project; raises ValueError only when even the demo cannot be opened."""
    wanted = st.session_state.get(PROJECT_KEY) or _from_query()
    if wanted:
        try:
            ws = Workspace.open(wanted)
            select_project(ws.root)
            return ws
        except ValueError as e:
            st.warning(f"The project {wanted} could not be opened ({e}); showing the demo project instead.")
    ws = open_demo_project(default_home() / DEMO)
    select_project(ws.root)
    return ws


def project_choices() -> list[Path]:
    """Projects under DEFUSE_HOME, the demo first (listed even before its first opening)."""
    found = list_workspaces()
    demo = default_home() / DEMO
    return [demo] + [p for p in found if p.name != DEMO]
