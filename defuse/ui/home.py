"""The Home page's content: the demo project's pipeline status and model figures."""

from __future__ import annotations

import streamlit as st

from ..demo import open_demo_project
from ..project import project_info
from ..workspace import default_home

STATUS_ICONS = {"done": "✅", "stale": "⚠️", "corrupt": "❌", "missing": "⬜"}


def render_home() -> None:
    try:
        ws = open_demo_project(default_home() / "demo")
        info = project_info(ws)
    except ValueError as e:
        st.error(f"The demo project could not be opened: {e}")
        st.stop()
    st.subheader(f"Project: {ws.name}")
    st.write(f"Data: **{info['dataset']['source']}**")
    cols = st.columns(len(info["status"]))
    for col, (step, status) in zip(cols, info["status"].items(), strict=True):
        col.metric(step, f"{STATUS_ICONS.get(status, '')} {status}")
    clf, vae = info.get("classifier_metrics", {}), info.get("vae_metrics", {})
    if "test_acc" in clf:
        st.write(f"Classifier test accuracy: **{clf['test_acc']:.1%}**")
    if "acc_reconstruction" in vae:
        st.write(f"VAE fidelity: the classifier recognises **{vae['acc_reconstruction']:.1%}** of reconstructions "
                 f"({vae['acc_original']:.1%} of originals); {vae['active_dims']} of {vae['latent_dim']} "
                 "latent dimensions active.")
    for warning in info["warnings"]:
        st.warning(warning)
    st.info("Steps run from the command line for now: `python -m defuse --help`.")
