"""Label: decide for each failure scenario whether it is a failure, and its true label (§3.2.3)."""

import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.steps.distill import default_tau
from defuse.ui import cache, jobs
from defuse.ui.decisions import decided_caption, render_conflicts, reserved_name
from defuse.ui.errors import guard
from defuse.ui.keys import quick_decisions
from defuse.ui.label import (
    annotator_name,
    decision_form,
    hint,
    pick_scenario,
    record,
    render_agreement,
    reviewed,
    show_samples,
    tau_control,
)
from defuse.ui.nav import link, open_project, require

st.title("Label")
st.caption("Look at samples of each failure scenario: is the classifier wrong on them, and what is their true "
           "label? Every decision is saved at once.")
ws = open_project()
require(ws, "distill")
scenarios = cache.scenarios(ws)
if len(scenarios) == 0:
    st.warning("Distillation kept no scenario above ε: nothing to label. Lower ε on the Explore page and run "
               "distillation again.")
    link("distill")
    st.stop()

c = st.columns([2, 2, 1])
with c[0]:
    annotator = annotator_name(ws)
tau, tau_args = tau_control(c[1], ws, default_tau(ws))
if c[2].button("Run auto-reviewer", help="Labels 10 samples per scenario with a reference ensemble of 3 "
               "networks (seconds). Its decisions only fill scenarios no person has decided, and show as hints; a "
               "person's decision always wins. The ensemble is trained once per project — about 4 minutes on 2 CPU "
               "cores — except in the demo, which ships one."):
    jobs.start(ws, "label", ["--reviewer", "auto", *tau_args])
jobs.panel(ws, ["label"], key="label")
if not annotator:
    st.info("Enter your name to start labeling.")
    st.stop()
if reserved_name(annotator):
    st.stop()

done = reviewed(ws, annotator)
st.progress(len(done) / len(scenarios), text=f"{len(done)} of {len(scenarios)} reviewed by {annotator}")
j = pick_scenario(len(scenarios), done)
with guard("draw the samples"):
    preds = show_samples(ws, j, 16, tau)
    suggested, suggested_failure, preselected = hint(ws, j, preds, annotator)
    decided_caption(ws, j, tau)
action = None
with guard("save the decision"):
    action = quick_decisions(ws.project["class_names"], (suggested, suggested_failure))
    decision = decision_form(ws.project["class_names"], suggested, j, preselected)
    if isinstance(action, tuple):
        decision = action
    if decision:
        saved = record(ws, j, annotator, *decision)
if action in ("previous", "next"):
    st.session_state["label-next"] = (j + (1 if action == "next" else -1)) % len(scenarios)
    st.rerun()
if decision:
    st.toast(saved)
    left = [k for k in range(len(scenarios)) if k not in done | {j}]
    st.session_state["label-next"] = left[0] if left else j
    st.rerun()
render_conflicts(ws, tau)
render_agreement(ws)
link("correct", "Next: correct the classifier")
