"""Compare: checkpoints side by side on the regression suite (per failure scenario) and on the test split."""

import numpy as np
import streamlit as st

import defuse.ui.boot  # noqa: F401 — first: leaves the pages/ folder mode before the slow imports
from defuse.ui import compare, jobs
from defuse.ui.errors import guard
from defuse.ui.nav import link, open_project

st.title("Compare")
st.caption("Two or more checkpoints on the frozen failure scenarios (the regression suite) and the test split: "
           "accuracy, flips between models, and the images that flipped.")
ws = open_project()
if not compare.has_suite(ws):
    st.info("Comparing needs the regression suite: samples of every confirmed failure scenario, frozen once. "
            "Exporting a model makes it; or make it now (`python -m defuse suite`).")
    if st.button("Make the regression suite", type="primary", key="make-suite"):
        jobs.start(ws, "suite", [])
    jobs.panel(ws, ["suite"], key="suite")
    link("label", "Scenarios are confirmed on the Label page")
    st.stop()

with guard("read the regression suite"):
    suite = compare.page_suite(ws)
    choices = compare.model_choices(ws)
    test_images, test_labels = compare.test_split(ws)
changed = compare.suite_changes(ws, suite)
if changed:
    st.warning(f"The regression suite was made before {', '.join(changed)} changed: it tests the failure "
               "scenarios as they were then. Make it again to test the current ones.")
    if st.button("Make the regression suite again", key="remake-suite"):
        jobs.start(ws, "suite", [])
picked = st.multiselect("Checkpoints", list(choices), default=compare.default_models(choices), key="compare-models")
upload = st.file_uploader("Another checkpoint (.safetensors weights of this project's network)",
                          type=["safetensors"], key="compare-upload")
outs = {}
with guard("run the checkpoints", stop=False):
    outs = {name: compare.outputs(ws, *choices[name]) for name in picked}
    if upload is not None:
        outs[f"uploaded: {upload.name}"] = compare.uploaded_outputs(ws, upload.getvalue())
if len(outs) < 2:
    st.info("Pick at least two checkpoints to compare.")
    st.stop()

st.subheader("Accuracy per failure scenario and on the test set")
compare.render_accuracy(suite, outs, test_labels)

st.subheader("Flips")
on_test = st.radio("On", ["failure scenarios", "test set"], horizontal=True, key="compare-on") == "test set"
labels, images = (test_labels, test_images) if on_test else (suite.labels, suite.images)
compare.render_flip_matrix(labels, {n: o.test_predictions if on_test else o.predictions for n, o in outs.items()},
                           "test set" if on_test else "failure-scenario samples")
c = st.columns(2)
base = c[0].selectbox("Before", list(outs), index=0, key="compare-base")
cand = c[1].selectbox("After", list(outs), index=len(outs) - 1, key="compare-cand")
compare.render_flip_grids(np.asarray(images), labels, outs[base], outs[cand], (base, cand), test=on_test)
