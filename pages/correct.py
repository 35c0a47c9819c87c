"""Correct: fine-tune on L(D) + λ·CE(D_f) over a λ sweep, pick a model, export it (§3.2.3, §4.3)."""

import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.ui import cache, jobs
from defuse.ui.correct import live_chart, render_export, render_results, settings_form
from defuse.ui.errors import guard
from defuse.ui.nav import link, open_project, require
from defuse.workspace import SWEEP

st.title("Correct")
st.caption("Each λ fine-tunes a copy of the classifier on the training data plus λ × the failure-scenario samples; "
           "λ=0 (the control) fine-tunes as long without them, so a gain counts against it.")
ws = open_project()
require(ws, "distill")
with guard("read the labels"):
    failing = {j: v for j, v in cache.verdicts(ws).items() if v.is_failure}
if not failing:
    st.warning("No scenario is labeled a failure yet, so there is nothing to correct: label some first on the "
               "Label page (or run the automatic reviewer there).")
    link("label")
    st.stop()
st.caption(f"Failure scenarios to fix: {', '.join(f'#{j} → {v.label}' for j, v in sorted(failing.items()))}")

args = None
with guard("read the sweep settings", stop=False):  # a bad setting never hides the finished results below
    args = settings_form(ws, len(failing))
jobs.busy_note(ws)
if args:
    jobs.start(ws, "correct", args)
sweep_job = jobs.panel(ws, ["correct"], live=live_chart, key="correct")

if ws.exists(SWEEP) and not jobs.running(sweep_job):
    st.subheader("Trade-off")
    with guard("show the sweep"):
        lam = render_results(ws)
    st.subheader("Export")
    if st.button(f"Export the model of λ={lam:g}", type="primary"):
        chosen = ws.load_json(SWEEP)["chosen"]["lambda"]  # its model card names the rule
        jobs.start(ws, "export", [] if float(lam) == float(chosen) else ["--lambda", repr(float(lam))])
    jobs.panel(ws, ["export"], key="export")
    if ws.step_status("export") in ("done", "stale"):
        with guard("offer the download"):
            render_export(ws)
        link("report", "Next: the report")
