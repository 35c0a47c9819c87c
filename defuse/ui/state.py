"""Which project the app shows: ``st.session_state["project"]`` (a folder), else ``?project=NAME`` in the
address (survives a browser refresh), else the demo project, created from ``models/`` on first use."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Optional

import streamlit as st

from ..steps.demo import open_demo_project
from ..workspace import Workspace, default_home, list_workspaces

PROJECT_KEY = "project"
DEMO = "demo"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Checksums of artifacts, kept across reruns: path -> ((size, mtime_ns, inode), sha256).
_SETTLED: dict[str, tuple] = {}
RACY_S = 2.0  # a file changed this recently may change again within one mtime tick: hash it again next time


class AppWorkspace(Workspace):
    """The workspace a page works on: checksums outlive the rerun.

    Every rerun opens the project again, and its status hashes every artifact: for a million failures, about
    70 MB on each rerun of each page. A checksum is reused while the file's size, mtime and inode are unchanged,
    and only for files that had settled when hashed (as git does against "racy" timestamps).
    """

    def fingerprint(self, rel: str) -> Optional[str]:
        p = self.path(rel)
        try:
            s = p.stat()
        except FileNotFoundError:
            return None
        key = (s.st_size, s.st_mtime_ns, s.st_ino)
        hit = _SETTLED.get(str(p))
        if hit and hit[0] == key:
            return hit[1]
        digest = super().fingerprint(rel)
        if time.time() - s.st_mtime > RACY_S:
            _SETTLED[str(p)] = (key, digest)
        return digest


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
            ws = AppWorkspace.open(wanted)
            select_project(ws.root)
            return ws
        except ValueError as e:
            st.warning(f"The project {wanted} could not be opened ({e}); showing the demo project instead. Pick "
                       "another project or create one in the sidebar.")
    ws = AppWorkspace(open_demo_project(default_home() / DEMO).root)
    select_project(ws.root)
    return ws


def project_choices() -> list[Path]:
    """Projects under DEFUSE_HOME, the demo first (listed even before its first opening)."""
    found = list_workspaces()
    demo = default_home() / DEMO
    return [demo] + [p for p in found if p.name != DEMO]
