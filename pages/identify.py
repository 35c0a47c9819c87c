"""Identify: search the β-VAE's latent space for unrestricted adversarial examples (paper §3.2.1)."""

import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.ui import cache, jobs
from defuse.ui.errors import guard
from defuse.ui.fidelity import confirmation
from defuse.ui.identify import check_memory, render_results, settings_form
from defuse.ui.nav import link, open_project, require

st.title("Identify")
st.caption("Each training image's latent code is perturbed Q times with Beta(a, b) noise and decoded; decodes the "
           "classifier labels differently from the image's true label are unrestricted adversarial examples "
           "(at most M per image).")
ws = open_project()
require(ws, "classifier", "vae")
accept = confirmation(ws)

submitted = None
with guard("read the settings", stop=False):  # a bad setting never hides the finished results below
    form = settings_form(ws, len(cache.data(ws).train))
    if form:
        check_memory(ws, form[0])
    if form and accept is None:
        raise ValueError("the β-VAE fails the fidelity check above: retrain it on Setup, or tick “Search with "
                         "this VAE anyway” to search with it")
    submitted = form  # only settings that passed every check start a job
jobs.busy_note(ws)
if submitted:
    jobs.start(ws, "identify", submitted[1] + accept)
job = jobs.panel(ws, ["identify"], key="identify")

if ws.step_status("identify") in ("done", "stale") and not jobs.running(job):
    st.divider()
    with guard("show the results"):
        render_results(ws)
    link("distill", "Next: distill them into failure scenarios")
