"""Keyboard-first labeling: one key per decision and per label (Streamlit's button shortcuts).

0-9: a failure whose true label is that class · N: not a failure · S: skip · A: accept the suggestion
(the automatic reviewer's, or your earlier answer) · Left / Right: previous / next scenario.
"""

from __future__ import annotations

import streamlit as st

MAX_DIGIT_KEYS = 10  # classes 0-9 get a key; any others are picked in the form below
ACTION_COLUMNS = 5   # N, S, A, ←, →: wide enough for each label and its key


def quick_decisions(names: list, suggestion: tuple) -> tuple | str | None:
    """Buttons with shortcuts; returns a decision (is_failure, label, note), "previous"/"next", or None.

    ``suggestion``: (label, is_failure) preselected from your earlier answer or the reviewer's hint.
    """
    st.caption("Keys: **0-9** failure with that true label · **N** not a failure · **S** skip · "
               "**A** accept the suggestion · **←/→** previous/next scenario")
    n = min(len(names), MAX_DIGIT_KEYS)
    cols = st.columns(n)
    for c in range(n):
        if cols[c].button(str(names[c]), key=f"key-label-{c}", shortcut=str(c), help=f"Failure, true label {c}",
                          width="stretch"):
            return True, c, None
    # the other keys on a row of their own: in one row with ten digits their labels were cut to "S." and "A."
    cols = st.columns(ACTION_COLUMNS)
    if cols[0].button("Not a failure", key="key-not", shortcut="N", width="stretch"):
        return False, None, None
    if cols[1].button("Skip", key="key-skip", shortcut="S", width="stretch"):
        return None, None, None
    label, failure = suggestion
    usable = failure is False or (failure and label is not None)
    if cols[2].button("Accept", key="key-accept", shortcut="A", disabled=not usable, width="stretch",
                      help="Save the suggestion: " + (_words(label, failure) if usable else "none yet")):
        return (True, int(label), None) if failure else (False, None, None)
    if cols[3].button("← Previous", key="key-prev", shortcut="Left", help="Previous scenario", width="stretch"):
        return "previous"
    if cols[4].button("Next →", key="key-next", shortcut="Right", help="Next scenario", width="stretch"):
        return "next"
    return None


def _words(label, failure) -> str:
    return f"failure, true label {label}" if failure else "not a failure"
