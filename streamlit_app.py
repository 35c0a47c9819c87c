"""Defuse app entry point: a router over the pages (the full app lands with the app issue)."""

import streamlit as st

st.set_page_config(page_title="Defuse", page_icon="🧯", layout="wide")

home = st.Page("pages/home.py", title="Home", icon="🏠", default=True)
st.navigation([home]).run()
