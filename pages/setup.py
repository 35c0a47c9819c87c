"""Setup: the project's data, the classifier to debug, and the β-VAE that Identify searches with."""

import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.ui import jobs
from defuse.ui.errors import guard
from defuse.ui.fidelity import fidelity_banner
from defuse.ui.model_import import convert_form
from defuse.ui.nav import link, open_project
from defuse.ui.setup import classifier_source, live_loss, model_summary, reconstructions, render_data, vae_source
from defuse.workspace import CLASSIFIER, VAE

st.title("Setup")
ws = open_project()
fidelity_banner(ws)  # at the top too: the first thing to fix

st.subheader("Data")
with guard("load the data"):
    render_data(ws)

st.subheader("Classifier")
with guard("load the classifier", stop=False):
    model_summary(ws, "classifier")
with guard("set up the classifier", stop=False):
    classifier_source(ws)
with guard("convert the classifier", stop=False):
    convert_form(ws)

st.subheader("β-VAE")
model_summary(ws, "vae")
with guard("set up the VAE", stop=False):
    vae_source(ws)

jobs.busy_note(ws)
if "setup-start" in st.session_state:
    jobs.start(ws, *st.session_state.pop("setup-start"))
jobs.panel(ws, ["train-classifier", "train-vae"], live=live_loss, key="setup")
if ws.exists(VAE):
    with guard("show reconstructions", stop=False):
        reconstructions(ws)
if ws.exists(CLASSIFIER) and ws.exists(VAE):
    if not fidelity_banner(ws):
        link("identify", "Next: identify unrestricted adversarial examples")
