"""Cached models and arrays, keyed by the fingerprint (sha256) of the artifact they come from.

A re-run step writes a new artifact, so a new fingerprint, so a fresh load: a stale cache is never used.
Models come from ``st.cache_resource`` and are shared by every session: never modify them (the core
copies a model before fine-tuning it, and puts it back where it was after moving it to a device).
"""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from ..distill.embed import Embedding
from ..distill.sampling import ReviewSamples, check_taus
from ..identify.search import Failures, decode_latents
from ..steps.distill import default_tau, load_scenarios
from ..steps.embed import load_embedding
from ..steps.identify import load_failures
from ..steps.label import decided_scenarios
from ..steps.project import load_classifier, load_data, load_vae
from ..workspace import CLASSIFIER, EMBEDDING, FAILURES, LABELS, SCENARIOS, VAE, Workspace


def data(ws: Workspace):
    """The project's data, from the process's one data cache (:func:`defuse.steps.project.load_data`)."""
    with st.spinner("Loading the data…"):  # shown only when loading takes a moment
        return load_data(ws)


@st.cache_resource(max_entries=4, show_spinner="Loading the classifier…")
def _classifier(root: str, fingerprint: str):
    return load_classifier(Workspace(root))


@st.cache_resource(max_entries=4, show_spinner="Loading the VAE…")
def _vae(root: str, fingerprint: str):
    return load_vae(Workspace(root))


def classifier(ws: Workspace) -> tuple:
    """(model, meta) of the project's classifier (ValueError when there is none)."""
    return _classifier(str(ws.root), ws.fingerprint(CLASSIFIER) or "")


def vae(ws: Workspace) -> tuple:
    return _vae(str(ws.root), ws.fingerprint(VAE) or "")


@st.cache_data(max_entries=4, show_spinner=False)
def _failures(root: str, fingerprint: str) -> Failures:
    return load_failures(Workspace(root))


def failures(ws: Workspace) -> Failures:
    return _failures(str(ws.root), ws.fingerprint(FAILURES) or "")


@st.cache_data(max_entries=4, show_spinner=False)
def _scenarios(root: str, fingerprint: str):
    return load_scenarios(Workspace(root))


def scenarios(ws: Workspace):
    return _scenarios(str(ws.root), ws.fingerprint(SCENARIOS) or "")


@st.cache_data(max_entries=6, show_spinner=False)
def _embedding(root: str, method: str, fingerprint: str):
    return load_embedding(Workspace(root), method)


def embedding(ws: Workspace, method: str) -> tuple[Embedding, bool] | None:
    rel = EMBEDDING.format(method=method)
    return _embedding(str(ws.root), method, f"{ws.fingerprint(rel)}:{ws.fingerprint(FAILURES)}")


def _fingerprints(ws: Workspace) -> str:
    return ":".join(str(ws.fingerprint(rel)) for rel in (SCENARIOS, VAE, CLASSIFIER))


@st.cache_data(max_entries=256, show_spinner=False)
def _scenario_samples(root: str, key: str, j: int, n: int, tau, seed: int) -> tuple:
    ws = Workspace(root)
    s = ReviewSamples(vae(ws)[0], classifier(ws)[0], scenarios(ws), tau=tau, seed=seed).render(j, n, device="cpu")
    return s.images.numpy(), s.predictions, s.confidence


def scenario_samples(ws: Workspace, j: int, n: int, tau: float, seed: int = 0) -> tuple:
    """(images (n, C, H, W) float32, predictions (n,), confidence (n,)) of scenario row ``j`` at τ.

    The draws are the same stream (seed, j) the automatic reviewer labels, so its hint is about these images.
    """
    return _scenario_samples(str(ws.root), _fingerprints(ws), int(j), int(n), check_taus(tau), int(seed))


@st.cache_data(max_entries=16, show_spinner=False)
def _decoded(root: str, key: str, rows: tuple) -> np.ndarray:
    ws = Workspace(root)
    latents = failures(ws).latents[list(rows)]
    return decode_latents(vae(ws)[0], latents, device="cpu").numpy()


def decoded_failures(ws: Workspace, rows) -> torch.Tensor:
    """Images (n, C, H, W) of the failures at ``rows`` (decoded on demand, not stored)."""
    key = f"{ws.fingerprint(FAILURES)}:{ws.fingerprint(VAE)}"
    return torch.from_numpy(_decoded(str(ws.root), key, tuple(int(r) for r in rows)))


@st.cache_data(max_entries=8, show_spinner=False)
def _decided(root: str, key: str, tau) -> dict:
    return decided_scenarios(Workspace(root), tau=tau, device="cpu")


def decided(ws: Workspace, tau: float | None = None) -> dict:
    """{scenario: defuse.provenance.ScenarioDecision}: who decided, the votes, conflicts (recomputed when a
    decision, the scenarios or τ change)."""
    labels = ws.path(LABELS)
    stamp = [labels.stat().st_mtime_ns if labels.exists() else 0]
    wal = labels.with_name(labels.name + "-wal")
    stamp.append(wal.stat().st_mtime_ns if wal.exists() else 0)  # decisions land in the WAL first
    tau = default_tau(ws) if tau is None else tau
    return _decided(str(ws.root), f"{stamp}:{_fingerprints(ws)}", check_taus(tau))


def verdicts(ws: Workspace, tau: float | None = None) -> dict:
    """The decision that counts per scenario: people's where any person voted, else the reviewer's."""
    return {j: s.verdict for j, s in decided(ws, tau).items()}
