"""Imported first by every page: a cold deep link (a fresh server, /explore) runs the page's own file in
Streamlit's pages/ folder mode, whose menu lists the raw file names, until the router runs. Leave that mode
and rerun *before* the page imports torch and the core (seconds on a busy machine), so the router's menu and
its "Opening Defuse…" spinner come at once. Light on purpose: it imports only Streamlit.
"""

from __future__ import annotations

import streamlit as st


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


leave_pages_folder_mode()  # on import: the first time a page runs in this process
