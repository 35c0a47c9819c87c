"""Defuse app: the router (st.navigation) and the shared frame (sidebar: project, device, running jobs)."""

import streamlit as st

st.set_page_config(page_title="Defuse", page_icon="🧯", layout="wide")


# A fresh server starts in Streamlit's pages/ folder mode, whose menu lists the raw file names ("streamlit app,
# compare, …"): leave it and rerun before anything slow. defuse.ui.boot imports only Streamlit, and does it on import.
from defuse.ui.boot import leave_pages_folder_mode  # noqa: E402

leave_pages_folder_mode()
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
page = st.navigation(PAGES)  # the menu first: a cold deep link never shows the file names for long
# Then the seconds of importing torch and the core, said at once rather than behind a blank page.
with st.spinner("Opening Defuse…"):
    import torch

    from defuse.ui.errors import guard
    from defuse.ui.jobs import app_threads
    from defuse.ui.sidebar import render_sidebar
    from defuse.ui.warmup import start_umap_warmup

st.set_option("client.showErrorDetails", "type")  # a last safety net: pages show errors in plain words
torch.set_num_threads(app_threads())  # the server's own decoding leaves the other cores to jobs
start_umap_warmup()  # numba's first compile happens now, in the background, not behind the map's spinner

with guard("draw the sidebar", stop=False):
    render_sidebar()
with guard("show this page"):
    page.run()
