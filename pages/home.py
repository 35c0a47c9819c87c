"""Home: what Defuse is and where the demo project stands."""

import streamlit as st

from defuse.ui.home import render_home

st.title("Defuse")
st.caption("Find, understand and fix the failure modes of an image classifier.")
render_home()
