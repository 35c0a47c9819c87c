"""The Setup page: the project's data, its classifier (demo, upload, path or train) and its β-VAE."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
import torch

from ..cli.jobs import config_args
from ..nets.architectures import latent_means
from ..nets.train import TrainConfig, VAEConfig, parse_class_keep
from ..nets.vae_recipe import default_vae_config
from ..runtime.settings import SettingError
from ..steps.project import DEMO_CLASSIFIER, DEMO_VAE, import_classifier, import_vae
from ..workspace import Workspace
from . import cache
from .estimates import job_time_note
from .fields import refused, setting_field
from .gallery import show_grid
from .model_import import ARCHITECTURES, import_form


def render_data(ws: Workspace) -> None:
    d = cache.data(ws)
    spec = {k: v for k, v in ws.project["dataset"].items() if v not in (None, False)}
    st.write("Source and options: " + ", ".join(f"{k}=`{v}`" for k, v in spec.items()))
    st.write(f"{len(d.train):,} training, {len(d.val):,} validation, {len(d.test):,} test images · "
             f"{d.num_classes} classes · {d.channels}×{d.image_size}×{d.image_size}")
    pick = torch.randperm(len(d.train), generator=torch.Generator().manual_seed(0))[:24]
    show_grid(d.train.images[pick], captions=[str(int(y)) for y in d.train.labels[pick]], ncol=12, scale=2)
    st.caption("Data is fixed per project: for other data, create a new project in the sidebar.")


def classifier_source(ws: Workspace) -> None:
    demo_ok = ws.project["dataset"]["source"] == "mnist-sample"
    options = (["Demo classifier"] if demo_ok else []) + ["Upload a file", "A file on this machine", "Train one here"]
    how = st.radio("Classifier source", options, horizontal=True, key="clf-source")
    if how == "Demo classifier":
        if st.button("Use the demo classifier (planted flaw: 15% of the sixes)"):
            with st.spinner("Checking and importing…"):
                import_classifier(ws, DEMO_CLASSIFIER)
            st.success("Imported the demo classifier.")
    elif how in ("Upload a file", "A file on this machine"):
        import_form(ws, upload=how == "Upload a file")
    else:
        _train_classifier_form(ws)


def _train_classifier_form(ws: Workspace) -> list[str] | None:
    d = TrainConfig()
    with st.form("clf-train", enter_to_submit=True):  # Enter = the button: checked, then started
        c = st.columns(4)
        arch = c[0].selectbox("Network", ARCHITECTURES)
        epochs = setting_field(c[1], TrainConfig, "epochs", d.epochs, label="Epochs (paper: 5)")
        opt = c[2].selectbox("Optimizer", ["adadelta", "adam", "sgd"], help="paper: Adadelta, lr 1")
        lr = setting_field(c[3], TrainConfig, "lr", float(d.lr), label="Learning rate", format="%g")
        keep = st.text_input("Plant a flaw: keep only part of a class, e.g. 6:0.15", "")
        keep_note = st.empty()  # a bad flaw is named here, beside its field, before any job starts
        go = st.form_submit_button("Train the classifier", type="primary")
    problem = flaw_problem(keep, cache.data(ws).num_classes) if go else None
    if problem:
        keep_note.error(f"Not started: {problem}", icon="⚠️")
    bad_fields = go and refused(epochs, lr)     # every bad field is named, the flaw's too
    if go and not bad_fields and not problem:
        cfg = TrainConfig(architecture=arch, epochs=int(epochs.value), optimizer=opt, lr=float(lr.value),
                          class_keep=parse_class_keep(keep))
        st.session_state["setup-start"] = ("train-classifier", config_args(cfg))


def flaw_problem(text: str, num_classes: int) -> str | None:
    """What is wrong with a flaw spec ("6:0.15, 2:0.5"), or None: checked before the training job starts."""


    try:
        pairs = parse_class_keep(text)
        TrainConfig(class_keep=pairs)
    except ValueError as e:
        return e.words("app") if isinstance(e, SettingError) else str(e)
    bad = [c for c, _ in pairs if not 0 <= c < num_classes]
    if bad:
        return f"class {bad[0]} does not exist: this data has classes 0 to {num_classes - 1}"
    return None


def vae_source(ws: Workspace) -> None:
    demo_ok = ws.project["dataset"]["source"] == "mnist-sample"
    how = st.radio("β-VAE source", (["Demo VAE"] if demo_ok else []) + ["Train one here"], horizontal=True)
    if how == "Demo VAE":
        if st.button("Use the demo β-VAE (β=0.4, 200 epochs)"):
            with st.spinner("Importing…"):
                import_vae(ws, DEMO_VAE)
            st.success("Imported the demo VAE.")
        return
    d = default_vae_config(cache.data(ws))  # enough steps for this source's size (defuse.nets.vae_recipe)
    with st.form("vae-train", enter_to_submit=True):  # Enter = the button: checked, then started
        c = st.columns(4)
        beta = setting_field(c[0], VAEConfig, "beta", float(d.beta), label="β (paper: 4 or 0.4 for MNIST)")
        dim = setting_field(c[1], VAEConfig, "latent_dim", d.latent_dim, label="Latent dimensions")
        epochs = setting_field(c[2], VAEConfig, "epochs", d.epochs,
                               label=f"Epochs (at batch {d.batch_size}; fewer than {d.epochs} leave it blurry)")
        width = c[3].selectbox("Width", [32, 64], help="32 for MNIST-like data, 64 for SVHN and signs")
        conditional = st.checkbox(
            "Class-conditional: the encoder and the decoder also take the label", value=d.conditional,
            help="Identify then encodes each image with its own label and decodes with the same label, so a "
                 "perturbation changes how the image is drawn, not its class: fewer finds that are only decodes of "
                 "another class. Its class control (shown after training) says how well the label steers the class.")
        go = st.form_submit_button("Train the β-VAE", type="primary")
    job_time_note(ws, "vae", d)  # over 10 minutes here: a warning with the settings that shorten it
    if go and not refused(beta, dim, epochs):
        cfg = VAEConfig(beta=float(beta.value), latent_dim=int(dim.value), epochs=int(epochs.value), width=int(width),
                        batch_size=int(d.batch_size), conditional=bool(conditional))
        st.session_state["setup-start"] = ("train-vae", config_args(cfg))


def live_loss(state) -> None:
    pts = [(e["done"], e["metrics"]["loss"]) for e in state.history if "loss" in (e.get("metrics") or {})]
    if len(pts) > 1:
        fig = go.Figure(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines"))
        fig.update_layout(height=260, xaxis_title="step", yaxis_title="loss", margin=dict(l=10, r=10, t=10, b=10))
        st.plotly_chart(fig, key=f"loss-{len(pts)}", width="stretch")


def model_summary(ws: Workspace, step: str) -> None:
    rec = ws.step_record(step)
    if rec is None:
        st.caption("None yet.")
        return
    m = dict(rec.get("metrics") or {})
    if step == "classifier":
        m = {**cache.classifier(ws)[1].get("metrics", {}), **m}  # an imported model's own figures
    words = {"test_acc": "test accuracy", "val_acc": "validation accuracy",
             "acc_reconstruction": "classifier accuracy on reconstructions", "acc_original": "on originals",
             "class_control_classifier": "class control (decoded with another label, read as that label)"}
    figures = " · ".join(f"{w} {m[k]:.1%}" for k, w in words.items() if isinstance(m.get(k), float))
    source = rec.get("config", {}).get("imported_from")
    st.caption(("Imported from " + source if source else "Trained here") + (f" · {figures}" if figures else ""))


def reconstructions(ws: Workspace, n: int = 12) -> None:
    vae = cache.vae(ws)[0]
    val = cache.data(ws).val
    pick = torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:n]
    x = val.images[pick]
    with torch.no_grad():
        recon = vae.decode(latent_means(vae, x, val.labels[pick])).clamp(0, 1)
    show_grid(torch.cat([x, recon]), ncol=n, scale=2, caption="top: validation images · bottom: their reconstructions")
