"""Imported first by every page: a cold deep link (a fresh server, /explore) runs the page's own file in
Streamlit's pages/ folder mode, whose menu lists the raw file names, until the router runs. Leave that mode
and rerun *before* the page imports torch and the core (seconds on a busy machine), so the router's menu and
its "Opening Defuse…" spinner come at once. Light on purpose: it imports only Streamlit and the few lines of
``defuse.runtime.words``.

It also makes the core speak the app's words on a page: a message names a setting by its label, an option by
the page's control (:mod:`defuse.runtime.words`).
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from defuse.runtime.words import speak_to_app


def leave_pages_folder_mode() -> None:
    """Make sure the router (streamlit_app.py) runs, with its sidebar, around every page: a fresh Streamlit
    process stays in its old `pages/` folder mode until st.navigation is called once, so a refresh on /identify
    after a restart would show the bare page. Leave that mode and rerun: the rerun goes through the router."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the old mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def on_a_page() -> bool:
    """Whether the running code draws a page (a Streamlit script run): the app's words are for it. Asked per
    call, not once per process, because tests run pages and the CLI in one process."""
    return get_script_run_ctx(suppress_warning=True) is not None


speak_to_app(when=on_a_page)  # once per process, on import: every page and the router import this first
leave_pages_folder_mode()  # on import: the first time a page runs in this process
