"""Embed: a 2-D map of the β-VAE's latent space for the Explore page (UMAP, t-SNE or PCA).

The map shows the training images' codes (the encoder's means, a faint background) and the latent
codes of the unrestricted adversarial examples, which the page colours by failure scenario. Both
are projected together, so distances on the map compare them. Large sets are down-sampled (seeded,
without replacement) to ``max_points``; the map records how many codes there were in all. The projection
is fitted on the training codes and a few failure codes per source image, then places the rest
(:mod:`defuse.distill.projections`): fitted on every code, a source's near-duplicates draw a dot each.

:mod:`defuse.steps.embed` computes a map once per method and caches it in the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..nets.architectures import latent_means
from ..runtime.progress import ProgressFn, ProgressReporter
from .config import EmbedConfig
from .projections import PROJECTIONS, per_source_rows, project  # noqa: F401  (PROJECTIONS: re-exported)


@dataclass
class Embedding:
    """Projected codes: training codes first, then failure codes."""

    coords: np.ndarray       # (n, 2) float32
    is_failure: np.ndarray   # (n,) bool: a failure code (else a training image's code)
    row: np.ndarray          # (n,) int64: row in the failures, or in the training images
    method: str
    n_failures_total: int    # failures before down-sampling
    n_train_total: int       # training images before down-sampling

    def __len__(self) -> int:
        return int(self.coords.shape[0])


def pick_rows(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= k else np.sort(rng.choice(n, size=k, replace=False))


def embed_codes(train_codes, failure_codes, cfg: EmbedConfig = EmbedConfig(), *, sources=None,
                on_progress: ProgressFn = None) -> Embedding:
    """Project training codes (n_t, k) and failure codes (n_f, k) to 2-D together.

    At most ``cfg.train_points`` training codes are kept, and failure codes fill ``cfg.max_points``.
    ``sources`` (n_f,): each failure's source image; given, the projection is fitted on the training codes
    and ``cfg.fit_per_source`` failure codes per source, then places the rest (see
    :mod:`defuse.distill.projections`). Progress counts codes placed.
    """
    train, fail = np.asarray(train_codes, np.float32), np.asarray(failure_codes, np.float32)
    if train.ndim != 2 or fail.ndim != 2 or train.shape[1] != fail.shape[1]:
        raise ValueError(f"codes must be (n, k) arrays of one latent size; got shapes {train.shape} and {fail.shape}")
    if len(fail) == 0:
        raise ValueError("there are no failure codes to map: run identify first, or search more images")
    if sources is not None and len(sources) != len(fail):
        raise ValueError(f"one source per failure code: got {len(sources)} sources for {len(fail)} codes")
    rng = np.random.default_rng(cfg.seed)
    t_rows = pick_rows(len(train), min(cfg.train_points, cfg.max_points // 2), rng)
    f_rows = pick_rows(len(fail), cfg.max_points - len(t_rows), rng)
    codes = np.concatenate([train[t_rows], fail[f_rows]])
    if len(codes) < 3:
        raise ValueError(f"a 2-D map needs at least 3 codes; got {len(codes)}")
    # unknown sources: each code is its own, so the projection is fitted on every code
    fit_rows = _fit_rows(len(t_rows), np.arange(len(f_rows)) if sources is None else np.asarray(sources)[f_rows], cfg)
    report, stage, n_fit = ProgressReporter("embed", len(codes), on_progress), [None], len(fit_rows)

    def placed(done: int) -> None:
        # The ETA's rate is measured per stage: the fit (UMAP's epochs; the neighbour search before them reports
        # no units), then the placing of the other codes, a blink after it.
        now = "fit" if done < n_fit else "place"
        if stage[0] != now:
            stage[0] = now
            report.restart_rate(done, until=n_fit if now == "fit" else None)
        report(done, points=len(codes), fitted_on=n_fit)
    report(0, points=len(codes), fitted_on=n_fit)
    coords = project(codes, fit_rows, cfg.method, cfg, on_placed=placed)
    return Embedding(coords, np.r_[np.zeros(len(t_rows), bool), np.ones(len(f_rows), bool)],
                     np.r_[t_rows, f_rows].astype(np.int64), cfg.method, len(fail), len(train))


def _fit_rows(n_train: int, sources, cfg: EmbedConfig) -> np.ndarray:
    """Positions (training codes first, then the failures of ``sources``) of the codes the projection is
    fitted on: all of them when per-source fitting is off."""
    if cfg.fit_per_source == 0:
        return np.arange(n_train + len(sources))
    return np.r_[np.arange(n_train), n_train + per_source_rows(sources, cfg.fit_per_source)].astype(np.int64)


@torch.no_grad()
def encode_means(vae, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """The encoder's means (n, k) of images (n, C, H, W) in [0, 1] with their labels (n,) (a conditional
    VAE's codes carry the label)."""
    vae.eval()
    parts = [latent_means(vae, images[s:s + batch_size], labels[s:s + batch_size]).float()
             for s in range(0, len(images), batch_size)]
    return torch.cat(parts).numpy() if parts else np.zeros((0, vae.latent_dim), np.float32)
