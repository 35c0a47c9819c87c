"""The Identify page's settings form and results (counts, true × predicted heatmap, example galleries)."""

from __future__ import annotations

import numpy as np
import streamlit as st

from ..cli.jobs import config_args
from ..identify.checks import check_search_fits
from ..identify.search import IdentifyConfig
from ..runtime.devices import resolve_device
from ..steps.presets import QUICK
from ..workspace import Workspace
from . import cache
from .charts import label_heatmap
from .fields import refused, setting_field
from .gallery import pairs_grid
from .rerun import run_again_box

PAPER = IdentifyConfig()
CPU = QUICK.identify  # Q=100, M=20, 1,500 images: well under a minute on 2 CPU cores


def settings_form(ws: Workspace, n_train: int) -> tuple[IdentifyConfig, list[str]] | None:
    """The form; on submit with every field in range, the config and its CLI arguments (else None: each bad
    field says what is wrong under it)."""
    preset = st.radio("Settings", ["CPU-friendly", "The paper's (appendix B.2)"], horizontal=True,
                      help="CPU-friendly: a subset of the images and fewer perturbations, so the search takes "
                           "well under a minute on a laptop CPU. The paper's: every image, Q=500, M=100.")
    d = CPU if preset == "CPU-friendly" else PAPER
    with st.form("identify-settings", enter_to_submit=True):  # Enter = the button: checked, then started
        c = st.columns(3)
        q = setting_field(c[0], IdentifyConfig, "samples_per_image", d.samples_per_image, key=f"q-{preset}",
                          label=f"Q — perturbations per image (paper: {PAPER.samples_per_image})")
        m = setting_field(c[1], IdentifyConfig, "max_per_image", d.max_per_image, key=f"m-{preset}",
                          label=f"M — failures kept per image (paper: {PAPER.max_per_image})")
        subset = setting_field(c[2], IdentifyConfig, "subset", min(d.subset or n_train, n_train), high=max(1, n_train),
                               label=f"Images searched (all: {n_train:,}; paper: all)", key=f"subset-{preset}")
        c = st.columns(3)
        a = setting_field(c[0], IdentifyConfig, "beta_a", float(d.beta_a), key=f"a-{preset}",
                          label=f"a of Beta(a, b) noise (paper: {PAPER.beta_a:g})")
        b = setting_field(c[1], IdentifyConfig, "beta_b", float(d.beta_b), key=f"b-{preset}",
                          label=f"b of Beta(a, b) noise (paper: {PAPER.beta_b:g})")
        batch = setting_field(c[2], IdentifyConfig, "batch_size", 0, key=f"bs-{preset}",
                              label="Decodes per batch (0: chosen for the device)")
        c = st.columns(3)
        centered = c[0].checkbox("Centred noise (subtract its mean)", value=d.centered, key=f"centred-{preset}",
                                 help="The paper's Beta noise shifts every latent dimension by about a/(a+b). "
                                      "Centred, it only spreads around the source's code.")
        scale = setting_field(c[1], IdentifyConfig, "noise_scale", float(d.noise_scale), key=f"scale-{preset}",
                              label="Noise scale (paper: 1)",
                              help="Multiplies the noise after centring. A class-conditional VAE (Setup) keeps "
                                   "only style in z and needs larger moves: measured best at centred Beta(2, 2) "
                                   "×4 (README, 'Side by side').")
        verify = c[2].checkbox("Keep only finds the reviewer reads as the source's class", value=False,
                               key=f"verify-{preset}",
                               help="The verification filter: the automatic reviewer (trained once per project, "
                                    "minutes on a CPU) reads every find, and finds it gives another class are "
                                    "dropped as decodes that changed class. Costs about half the finds.")
        strict = c[2].checkbox("…only where every reviewer member is sure (≥ 90%)", value=False,
                               key=f"verify-clear-{preset}",
                               help="With the filter: keep a find only where every member of the reviewer reads it "
                                    "as the source's class with confidence ≥ 0.9 (identify --verify clear). "
                                    "Measured on Fashion-MNIST: 78–79% of the kept finds real by an independent "
                                    "judge instead of 76–77%, keeping 5–19% of the finds instead of 63–70% "
                                    "(docs/results.md, 'Session 7').")
        again = run_again_box(ws, "identify")
        go = st.form_submit_button(again.label("Run identify"), type=again.button_type)
    if not go or refused(q, m, subset, a, b, batch, scale) or again.refused():
        return None
    cfg = IdentifyConfig(samples_per_image=int(q.value), max_per_image=int(m.value), beta_a=float(a.value),
                         beta_b=float(b.value), subset=int(subset.value), batch_size=int(batch.value) or None,
                         centered=bool(centered), noise_scale=float(scale.value))
    rule = ["--verify", "clear"] if strict else ["--verify"]  # the stricter box implies the filter
    return cfg, config_args(cfg) + (["--reviewer", "auto", *rule] if verify or strict else [])


def check_memory(ws: Workspace, cfg: IdentifyConfig) -> None:
    """Refuse settings whose job would exhaust memory, before starting it (the job checks the same)."""
    d = cache.data(ws)
    check_search_fits(cfg, latent_dim=cache.vae(ws)[0].latent_dim, image_numel=d.channels * d.image_size ** 2,
                      device=resolve_device("auto"))


def render_results(ws: Workspace) -> None:
    f = cache.failures(ws)
    m = f.metrics
    names = ws.project["class_names"]
    c = st.columns(4)
    c[0].metric("Unrestricted adversarial examples", f"{len(f):,}")
    c[1].metric("Images searched", f"{m.get('n_searched', 0):,}")
    if "share_sources_with_failure" in m:
        c[2].metric("Images with a failure", f"{m['share_sources_with_failure']:.0%}")
    if "acc_reconstruction" in m:
        c[3].metric("Classifier on reconstructions", f"{m['acc_reconstruction']:.1%}",
                    help=f"on the originals: {m.get('acc_original', float('nan')):.1%}. A low value means many "
                         "'failures' are VAE artefacts rather than classifier bugs.")
    if len(f) == 0:
        st.warning("No unrestricted adversarial examples were found, so there is nothing to distill: search more "
                   "images, or raise Q, and run identify again.")
        return
    left, right = st.columns([2, 3])
    with left:
        st.markdown("**True label × predicted label**")
        st.plotly_chart(label_heatmap(f.true_label, f.pred_label, names), width="stretch")
    with right:
        _gallery(ws, f, names)


def _gallery(ws: Workspace, f, names) -> None:
    st.markdown("**Examples beside their source images** (source: its true label; example: →the prediction)")
    options = ["any"] + list(range(len(names)))
    c = st.columns(3)
    t = c[0].selectbox("True label", options, key="gallery-true")
    p = c[1].selectbox("Predicted label", options, key="gallery-pred")
    n = c[2].slider("How many", 4, 48, 16, step=4, key="gallery-n")
    mask = np.ones(len(f), bool)
    if t != "any":
        mask &= f.true_label == t
    if p != "any":
        mask &= f.pred_label == p
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        st.info("No example with these labels.")
        return
    pick = np.sort(np.random.default_rng(0).choice(rows, size=min(n, len(rows)), replace=False))
    sources = cache.data(ws).train.images[f.source_index[pick]]
    st.image(pairs_grid(sources, cache.decoded_failures(ws, pick), f.true_label[pick], f.pred_label[pick]),
             caption=f"{len(pick)} of {len(rows):,} examples")
