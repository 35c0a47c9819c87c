"""The Compare page: checkpoints side by side on the project's regression suite and its test split."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from torch import nn

from ..nets import checkpoints
from ..steps.correct import SWEEP, load_sweep
from ..steps.project import load_classifier
from ..steps.suite import suite_changes as _changes
from ..suite.compare import ModelOutputs, accuracy_rows, flip_indices, flip_matrix
from ..suite.regression_suite import RegressionSuite, predict, read_suite, to_uint8
from ..workspace import CLASSIFIER, EXPORTS, SCENARIOS, SUITE_DIR, VAE, VERDICTS, Workspace
from . import cache
from .charts import MAP_COLORS
from .gallery import show_grid

ORIGINAL = "original"
MAX_FLIPS_SHOWN = 32


def model_choices(ws: Workspace) -> dict[str, tuple]:
    """{name shown: (kind, value)}: the original, every λ of the sweep, the baseline's chosen λ, the export."""
    choices = {ORIGINAL: ("original", None)}
    if ws.exists(SWEEP):
        sweep = ws.load_json(SWEEP)
        chosen = (sweep.get("chosen") or {}).get("lambda")
        for row in sweep.get("best_per_lambda", []):
            lam, kind = float(row["lambda"]), row["kind"]
            if kind == "defuse":
                tags = ["control"] * (lam == 0) + ["chosen"] * (lam == chosen)
                choices[f"λ={lam:g}" + (f" ({', '.join(tags)})" if tags else "")] = ("defuse", lam)
            elif kind == "baseline" and lam == (sweep.get("baseline_chosen") or {}).get("lambda"):
                choices[f"baseline λ={lam:g} (raw adversarial examples)"] = ("baseline", lam)
    if ws.exists("exports/model-card.json"):
        card = ws.load_json("exports/model-card.json")
        sidecar = card.get("files", {}).get("sidecar")
        if sidecar and ws.exists(f"{EXPORTS}/{sidecar}"):
            choices[f"exported: {card['name']}"] = ("exported", str(ws.path(f"{EXPORTS}/{sidecar}")))
    return choices


def default_models(choices: dict) -> list[str]:
    keep = [ORIGINAL] + [n for n in choices if "chosen)" in n] + [n for n in choices if n.startswith("exp")]
    return keep[:3]


def _model(ws: Workspace, kind: str, value) -> nn.Module:
    if kind == "original":
        return load_classifier(ws)[0]
    if kind in ("defuse", "baseline"):
        return load_sweep(ws).model(value, kind=kind)
    return checkpoints.load_model(value, kind="classifier")[0]


def test_split(ws: Workspace) -> tuple[np.ndarray, np.ndarray]:
    """The project's test images as uint8 (as the suite stores its own) and their labels."""
    test = cache.data(ws).test
    return to_uint8(test.images), test.labels.numpy()


@st.cache_data(max_entries=32, show_spinner="Running the model on the suite and the test split…")
def _outputs(root: str, key: str, kind: str, value) -> ModelOutputs:
    ws = Workspace(root)
    model, suite = _model(ws, kind, value), page_suite(ws)
    return _run(model, suite, test_split(ws)[0])


def _run(model: nn.Module, suite: RegressionSuite, test_images: np.ndarray) -> ModelOutputs:
    pred, conf = predict(model, suite.images, num_classes=suite.num_classes or None)
    test_pred, test_conf = predict(model, test_images, num_classes=suite.num_classes or None)
    return ModelOutputs(pred, conf, test_pred, test_conf)


def outputs(ws: Workspace, kind: str, value) -> ModelOutputs:
    key = ":".join(str(ws.fingerprint(rel)) for rel in (CLASSIFIER, SWEEP, f"{SUITE_DIR}/manifest.json"))
    return _outputs(str(ws.root), f"{key}:{value if kind != 'exported' else checkpoints.read_meta(value)['sha256']}",
                    kind, value)


@st.cache_data(max_entries=8, show_spinner=False)
def _uploaded(root: str, key: str, data: bytes) -> ModelOutputs:
    ws = Workspace(root)
    meta = checkpoints.read_meta(ws.path(CLASSIFIER))
    if meta["architecture"] in checkpoints.EXTERNAL_FORMATS:
        raise ValueError(f"the project's classifier is a {meta['architecture']} file, so bare weights cannot be "
                         "rebuilt into it: compare a checkpoint made by Defuse's export instead")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uploaded.safetensors"
        path.write_bytes(data)
        model, _ = checkpoints.load_classifier(path, architecture=meta["architecture"],
                                               arch_kwargs=meta.get("arch_kwargs", {}))
    return _run(model, page_suite(ws), test_split(ws)[0])


def uploaded_outputs(ws: Workspace, data: bytes) -> ModelOutputs:
    """A user's safetensors weights (the project's architecture) on the suite; its sha256 is the cache key."""
    return _uploaded(str(ws.root), hashlib.sha256(data).hexdigest() + str(ws.fingerprint(CLASSIFIER)), data)


@st.cache_resource(max_entries=4, show_spinner="Reading the regression suite…")
def _suite(folder: str, manifest_sha: str) -> RegressionSuite:
    return read_suite(folder)


def page_suite(ws: Workspace) -> RegressionSuite:
    """The project's suite (``exports/suite``), verified against its manifest."""
    return _suite(str(ws.path(SUITE_DIR)), str(ws.fingerprint(f"{SUITE_DIR}/manifest.json")))


CHANGE_WORDS = {CLASSIFIER: "the classifier", VAE: "the VAE", SCENARIOS: "the scenarios", VERDICTS: "the labels"}


def suite_changes(ws: Workspace, suite: RegressionSuite) -> list[str]:
    """What changed in meaning since the suite was made, in words ("the labels")."""
    return [CHANGE_WORDS.get(rel, rel) for rel in _changes(ws, {"settings": suite.settings})]


def has_suite(ws: Workspace) -> bool:
    return ws.exists(f"{SUITE_DIR}/manifest.json")


# ------------------------------------------------------------------ rendering

def render_accuracy(suite: RegressionSuite, outs: dict[str, ModelOutputs], test_labels: np.ndarray) -> None:
    rows = accuracy_rows(suite, outs, test_labels)
    fig = go.Figure()
    for i, name in enumerate(outs):
        fig.add_bar(x=[r["scenario"] for r in rows], y=[100 * r[name] for r in rows], name=name,
                    marker_color=MAP_COLORS[i % len(MAP_COLORS)],
                    hovertemplate=name + ", %{x}: %{y:.1f}%<extra></extra>")
    fig.update_layout(barmode="group", yaxis_title="accuracy (%)", yaxis_range=[0, 100], height=360,
                      margin=dict(l=10, r=10, t=30, b=10), legend_orientation="h")
    st.plotly_chart(fig, width="stretch", key="compare-bars")
    table = pd.DataFrame(rows).rename(columns={"scenario": "on", "n": "images"})
    table["label"] = table["label"].map(lambda v: "–" if v is None or v != v else str(int(v)))
    st.dataframe(table.style.format({n: "{:.1%}" for n in outs}), hide_index=True, width="stretch")


def render_flip_matrix(labels: np.ndarray, preds: dict[str, np.ndarray], where: str) -> None:
    names, m = flip_matrix(labels, preds)
    fig = go.Figure(go.Heatmap(z=m, x=names, y=names, colorscale="Reds", text=m, texttemplate="%{text}",
                               hovertemplate="%{y} right, %{x} wrong: %{z}<extra></extra>"))
    fig.update_layout(xaxis_title="… and this model gets wrong", yaxis_title="samples this model gets right …",
                      yaxis_autorange="reversed", height=120 + 60 * len(names), margin=dict(l=10, r=10, t=30, b=10))
    st.plotly_chart(fig, width="stretch", key="compare-flips")
    st.caption(f"Flip matrix on the {where}: each cell counts the negative flips of the column's model against the "
               "row's (right before, wrong after). Read a column upwards for what a new model breaks.")


def render_flip_grids(images: np.ndarray, labels: np.ndarray, base: ModelOutputs, cand: ModelOutputs,
                      names: tuple[str, str], *, test: bool) -> None:
    bp, cp = (base.test_predictions, cand.test_predictions) if test else (base.predictions, cand.predictions)
    conf = cand.test_confidence if test else cand.confidence
    neg, pos = flip_indices(labels, bp, cp, conf)
    for rows, what in ((neg, f"negative flips: {names[0]} right, {names[1]} wrong"),
                       (pos, f"positive flips: {names[0]} wrong, {names[1]} right")):
        st.markdown(f"**{len(rows):,} {what}** (most confident first; up to {MAX_FLIPS_SHOWN} shown)")
        shown = rows[:MAX_FLIPS_SHOWN]
        captions = [f"{int(labels[r])}>{int(cp[r])} {conf[r]:.0%}" for r in shown]
        show_grid(images[shown].astype(np.float32) / 255, captions=captions, ncol=8, scale=3)
