"""Embed over a workspace: the 2-D map of the Explore page (``embed`` command), computed once per method.

The map is cached as ``distill/embedding-<method>.npz`` with the fingerprint of the failures it was made
from: a new identify run makes it stale. Scenario colours are looked up at display time, so re-distilling
does not invalidate the map.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import numpy as np
import torch

from ..distill.embed import PROJECTIONS, EmbedConfig, Embedding, embed_codes, encode_means, pick_rows
from ..runtime.progress import ProgressFn
from ..workspace import EMBEDDING, FAILURES
from .identify import load_failures
from .project import load_data, load_vae


def embed_step(ws, cfg: EmbedConfig, *, on_progress: ProgressFn = None) -> dict:
    """Project the workspace's training codes and failures; save ``distill/embedding-<method>.npz``."""
    if not ws.exists(FAILURES):
        raise ValueError("no unrestricted adversarial examples yet: run identify first")
    fingerprint = ws.fingerprint(FAILURES)
    rows, codes, n_train = training_codes(ws, cfg)
    failures = load_failures(ws)
    emb = embed_codes(codes, failures.latents, cfg, sources=failures.source_index, on_progress=on_progress)
    emb.row[~emb.is_failure] = rows[emb.row[~emb.is_failure]]      # back to rows of the training images
    emb.n_train_total = n_train          # all training images, not only the rows encoded: the page's note says so
    ws.save_arrays(EMBEDDING.format(method=cfg.method), coords=emb.coords, is_failure=emb.is_failure,
                   row=emb.row, n_failures_total=np.int64(emb.n_failures_total),
                   n_train_total=np.int64(emb.n_train_total))
    meta = {"config": asdict(cfg), "failures_fingerprint": fingerprint, "points": len(emb)}
    ws.save_json(EMBEDDING.format(method=cfg.method).replace(".npz", ".json"), meta)
    return meta


def training_codes(ws, cfg: EmbedConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """(rows, codes (n, k), number of training images): the encoder's means of the training images the map
    can show (``cfg.train_points`` at most, seeded), not of all of them."""
    train = load_data(ws).train
    rows = pick_rows(len(train), cfg.train_points, np.random.default_rng(cfg.seed))
    picked = torch.as_tensor(rows)   # a conditional VAE's codes carry the label: encoded with it
    return rows, encode_means(load_vae(ws)[0], train.images[picked], train.labels[picked]), len(train)


def load_embedding(ws, method: str) -> Optional[tuple[Embedding, bool]]:
    """The cached map of ``method`` and whether it is current (made from today's failures), or None."""
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {sorted(PROJECTIONS)}; got {method!r}")
    rel = EMBEDDING.format(method=method)
    if not ws.exists(rel):
        return None
    a = ws.load_arrays(rel)
    meta = ws.load_json(rel.replace(".npz", ".json"), default={"failures_fingerprint": None})
    emb = Embedding(a["coords"], a["is_failure"].astype(bool), a["row"].astype(np.int64), method,
                    int(a["n_failures_total"]), int(a["n_train_total"]))
    return emb, meta.get("failures_fingerprint") == ws.fingerprint(FAILURES)


def fitted_on_every_code(ws, method: str) -> bool:
    """True for a saved map fitted on every code (made before maps were fitted per source, or with
    ``fit_per_source=0``): for UMAP, each source's near-duplicate codes then show as a dot of their own."""
    meta = ws.load_json(EMBEDDING.format(method=method).replace(".npz", ".json"), default={})
    return not (meta.get("config") or {}).get("fit_per_source")
