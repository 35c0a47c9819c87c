"""Home: where the open project stands, and one click to its next step."""

import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.ui.home import render_recent_jobs, render_status
from defuse.ui.nav import open_project

st.title("Defuse")
st.caption("Find, understand and fix the failure modes of an image classifier: identify unrestricted adversarial "
           "examples, distill them into failure scenarios, label them, and fine-tune the classifier on them.")
ws = open_project()
st.subheader(f"Project: {ws.name}")
render_status(ws)
render_recent_jobs(ws)
