"""The sidebar's compute-backend setting: run the heavy steps here or on Ray, and what Ray offers.

The choice lives in the browser session; :func:`backend_args` turns it into the CLI options that
the identify, correct and run jobs are started with.
"""

from __future__ import annotations

import os

import streamlit as st
import torch

from .errors import guard

RAY_STEPS = ("identify", "correct", "run")   # the steps with a Ray backend
LABELS = {"local": "This machine", "ray": "Ray"}


def render_backend_settings() -> None:
    with st.expander(f"⚙️ Compute: {LABELS[st.session_state.get('backend-kind', 'local')]}"):
        kind = st.radio("Identify and the λ sweep run on", list(LABELS), format_func=LABELS.get, key="backend-kind",
                        horizontal=True)
        if kind == "ray":
            address = st.text_input("Ray address (HOST:PORT)", key="backend-address",
                                    placeholder="empty: a local Ray instance per job").strip()
            if address and st.button("Check the cluster", key="backend-check"):
                with guard("reach the Ray cluster", stop=False):
                    from ..distributed.cluster import check_address, cluster_info

                    check_address(address)
                    st.session_state["backend-cluster"] = (address, cluster_info(address).describe())
            st.caption(_cluster_caption(address))


def _cluster_caption(address: str) -> str:
    if not address:
        gpus = torch.cuda.device_count()
        return (f"A local Ray instance on this machine: {os.cpu_count()} CPUs"
                + (f", {gpus} GPU{'s' if gpus != 1 else ''}" if gpus else "") + ".")
    checked = st.session_state.get("backend-cluster")
    if checked and checked[0] == address:
        return checked[1]
    return f"Ray at {address} (not checked yet)."


def backend_args(step: str) -> list[str]:
    """Extra CLI options for a job of ``step``: the Ray backend and its address, when chosen."""
    if step not in RAY_STEPS or st.session_state.get("backend-kind", "local") != "ray":
        return []
    address = st.session_state.get("backend-address", "").strip()
    return ["--backend", "ray", *(["--ray-address", address] if address else [])]
