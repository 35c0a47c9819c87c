"""Who decided what, on the Label page: the decision that counts, the reviewer's place, and conflicts."""

from __future__ import annotations

import streamlit as st

from ..label.provenance import HUMAN, describe
from ..label.store import AUTO_REVIEWER
from ..workspace import Workspace
from . import cache


def reserved_name(annotator: str) -> bool:
    """The automatic reviewer's annotator name cannot be a person's: its decisions would lose their priority."""
    if annotator.strip().lower() != AUTO_REVIEWER:
        return False
    st.error(f"'{AUTO_REVIEWER}' is the automatic reviewer's name; enter your own name to label.")
    return True


def decided_caption(ws: Workspace, j: int, tau: float) -> None:
    """Under a scenario: the decision that counts and who made it."""
    s = cache.decided(ws, tau).get(j)
    if s is None:
        st.caption("Nobody has decided this scenario yet.")
    elif s.decided_by == HUMAN:
        who = ", ".join(s.annotators)
        st.caption(f"Decided by people ({who}): **{describe(s.verdict)}**. A person's decision always wins over "
                   "the automatic reviewer's" + (f" (it says {describe(s.reviewer)})." if s.reviewer else "."))
    else:
        st.caption(f"Decided by the automatic reviewer ({', '.join(s.reviewers)}): **{describe(s.verdict)}** — "
                   "it only fills scenarios no person has decided; your decision replaces it.")


def render_conflicts(ws: Workspace, tau: float) -> None:
    """Every disagreement between people, or between people and the reviewer, one line each."""
    found = cache.decided(ws, tau)
    rows = [(j, c) for j, s in found.items() for c in s.conflicts]
    if not rows:
        return
    st.subheader(f"Conflicts ({len(rows)})")
    st.caption("Where annotators disagree, or the automatic reviewer disagrees with people. People's decisions "
               "count; the vote rules settle disagreements between people. Revisit a scenario to change yours.")
    st.markdown("\n".join(f"- **#{j}**: {c}" for j, c in rows))
