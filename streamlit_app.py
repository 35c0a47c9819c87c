"""Defuse app: the router (st.navigation) and the shared frame (sidebar: project, device, running jobs)."""

import streamlit as st
import torch

from defuse.ui.errors import guard
from defuse.ui.jobs import app_threads
from defuse.ui.nav import leave_pages_folder_mode
from defuse.ui.sidebar import render_sidebar

leave_pages_folder_mode()  # before anything is drawn
st.set_page_config(page_title="Defuse", page_icon="🧯", layout="wide")
st.set_option("client.showErrorDetails", "type")  # a last safety net: pages show errors in plain words
torch.set_num_threads(app_threads())  # the server's own decoding leaves the other cores to jobs

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/setup.py", title="Setup", icon="🛠️"),
    st.Page("pages/identify.py", title="Identify", icon="🔎"),
    st.Page("pages/explore.py", title="Explore", icon="🗺️"),
    st.Page("pages/label.py", title="Label", icon="🏷️"),
    st.Page("pages/correct.py", title="Correct", icon="🩹"),
    st.Page("pages/compare.py", title="Compare", icon="⚖️"),
    st.Page("pages/report.py", title="Report", icon="📄"),
]

page = st.navigation(PAGES)
with guard("draw the sidebar", stop=False):
    render_sidebar()
with guard("show this page"):
    page.run()
