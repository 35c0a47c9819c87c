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
    failures, vae = load_failures(ws), load_vae(ws)[0]
    train = load_data(ws).train
    rows = pick_rows(len(train), cfg.train_points, np.random.default_rng(cfg.seed))
    picked = torch.as_tensor(rows)
    codes = encode_means(vae, train.images[picked], train.labels[picked])  # only the rows the map can show
    emb = embed_codes(codes, failures.latents, cfg, on_progress=on_progress)
    emb.row[~emb.is_failure] = rows[emb.row[~emb.is_failure]]      # back to rows of the training images
    emb.n_train_total = len(train)       # all training images, not only the rows encoded: the page's note says so
    ws.save_arrays(EMBEDDING.format(method=cfg.method), coords=emb.coords, is_failure=emb.is_failure,
                   row=emb.row, n_failures_total=np.int64(emb.n_failures_total),
                   n_train_total=np.int64(emb.n_train_total))
    meta = {"config": asdict(cfg), "failures_fingerprint": fingerprint, "points": len(emb)}
    ws.save_json(EMBEDDING.format(method=cfg.method).replace(".npz", ".json"), meta)
    return meta


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
