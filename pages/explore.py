"""Explore: distill the failures into failure scenarios (§3.2.2) and look at them on a 2-D latent map."""

import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.ui import jobs
from defuse.ui.errors import guard
from defuse.ui.explore import distill_form, map_form, n_failures, render_cards, render_map
from defuse.ui.nav import link, open_project, require, stale_note

st.title("Explore")
st.caption("A Dirichlet-process Gaussian mixture groups the failures' latent codes into failure scenarios; "
           "the components heavier than ε are kept.")
ws = open_project()
require(ws, "identify")
with guard("read the failures"):
    found = n_failures(ws)
if found < 2:
    st.warning(f"Identify found {found} unrestricted adversarial example(s): nothing to distill. Search more images "
               "or raise Q on the Identify page (or use a VAE that reconstructs this data better).")
    link("identify")
    st.stop()

st.subheader("Distill")
with guard("read the distillation settings"):
    args = distill_form(ws)
jobs.busy_note(ws)
if args:
    jobs.start(ws, "distill", args)
distill_job = jobs.panel(ws, ["distill"], key="distill")

st.subheader("Latent map")
with guard("read the map settings"):
    method, map_args = map_form(ws)
if map_args:
    jobs.start(ws, "embed", map_args)
jobs.panel(ws, ["embed"], key="embed")
with guard("draw the map", stop=False):
    render_map(ws, method)

if ws.step_status("distill") in ("done", "stale") and not jobs.running(distill_job):
    st.subheader("Failure scenarios")
    stale_note(ws, "distill")
    with guard("show the scenarios"):
        render_cards(ws)
    if ((ws.step_record("distill") or {}).get("metrics") or {}).get("n_scenarios", 1):  # none: nothing to label
        link("label", "Next: label the scenarios")
