"""The search itself: Q perturbations of each source, decoded and classified chunk by chunk.

:func:`search_chunks` walks the sources in chunks of ``cfg.chunk_images`` (loading finished ones from a
:class:`~defuse.identify.chunks.ChunkStore`); :func:`search_chunk` decodes one chunk's Q x n codes in
batches the :class:`~defuse.identify.autotune.BatchTuner` sizes and keeps, per source, the M failures of
smallest ‖ε‖. The Ray backend runs :func:`search_chunk` on one chunk per task.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..nets.architectures import perturbed_dims
from ..nets.inference import InferencePlan, decode_classify
from ..runtime.progress import ProgressReporter
from .autotune import CPU_CANDIDATES, BatchTuner
from .config import IdentifyConfig
from .noise import beta_noise


@dataclass(frozen=True)
class Sources:
    """The source images one search perturbs, in search order."""

    rows: torch.Tensor  # (n,) int64: rows of the images passed to identify
    mu: torch.Tensor    # (n, k) float32: their codes μ, on the search's device
    y: torch.Tensor     # (n,) int64: their true labels, on the same device

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitem__(self, part: slice) -> Sources:
        return Sources(self.rows[part], self.mu[part], self.y[part])


def search_chunks(clf, dec, sources: Sources, cfg: IdentifyConfig, plan: InferencePlan, store,
                  on_progress) -> tuple[list[dict], dict]:
    """Search the sources in chunks of ``cfg.chunk_images``, here, one after another; load finished chunks from
    ``store``."""
    tuner = batch_tuner(cfg, plan)

    def search_here(todo):
        for i in todo:
            t0 = time.perf_counter()
            with torch.inference_mode():
                part = search_chunk(clf, dec, sources[chunk_slice(i, len(sources), cfg.chunk_images)], cfg, plan,
                                    tuner)
            yield i, part, time.perf_counter() - t0

    parts, metrics = run_chunks(len(sources), cfg, store, on_progress, search_here)
    return parts, {**metrics, **tuner.summary()}


def chunk_slice(i: int, n: int, size: int) -> slice:
    """The sources of chunk ``i`` of ``n`` sources in chunks of ``size``."""
    return slice(i * size, min(n, (i + 1) * size))


def run_chunks(n: int, cfg: IdentifyConfig, store, on_progress, search, *, wall_clock: bool = False
               ) -> tuple[list[dict], dict]:
    """The chunk loop every backend shares: load the finished chunks from ``store``, search the others with
    ``search(todo)`` (yields ``(chunk, part, seconds)`` in any order), save each, report progress.

    ``wall_clock``: the search rate over the time since the first chunk started (parallel workers), else over the
    seconds the chunks report. Returns the parts in chunk order and the search's figures.
    """
    size = cfg.chunk_images
    n_chunks = math.ceil(n / size)
    parts = {i: store.load(i) for i in range(n_chunks)} if store is not None else {}
    parts = {i: part for i, part in parts.items() if part is not None}
    resumed = len(parts)
    done = sum(_chunk_len(i, n, size) for i in parts)
    report = ProgressReporter("identify", n, on_progress, start_done=done)
    found = sum(len(p["latents"]) for p in parts.values())
    report(done, found=found, images_per_s=None)
    todo = [i for i in range(n_chunks) if i not in parts]
    t0, fresh, seconds = time.perf_counter(), 0, 0.0
    for i, part, took in search(todo) if todo else ():
        parts[i] = part
        if store is not None:
            store.save(i, part)
        seconds = time.perf_counter() - t0 if wall_clock else seconds + took
        done += _chunk_len(i, n, size)
        fresh += _chunk_len(i, n, size) * cfg.samples_per_image
        found += len(part["latents"])
        report(done, found=found, images_per_s=fresh / seconds if seconds else None, chunk=len(parts))
    rate = fresh / seconds if seconds else None
    return [parts[i] for i in range(n_chunks)], {
        "images_per_s": rate, "sources_per_s": rate / cfg.samples_per_image if rate else None,
        "search_seconds": seconds, "n_decodes": n * cfg.samples_per_image, "chunks": n_chunks,
        "chunks_resumed": resumed}


def _chunk_len(i: int, n: int, size: int) -> int:
    return min(size, n - i * size)


def batch_tuner(cfg: IdentifyConfig, plan: InferencePlan) -> BatchTuner:
    """A set batch size (the user's, or a GPU's measured best) stays; a CPU's is tuned online."""
    if cfg.batch_size is not None or plan.device.type != "cpu":
        return BatchTuner.fixed(plan.batch_size)
    return BatchTuner(CPU_CANDIDATES)


def search_chunk(clf, dec, sources: Sources, cfg: IdentifyConfig, plan: InferencePlan,
                  tuner: BatchTuner) -> dict[str, np.ndarray]:
    """Decode and classify the Q perturbations of each source of one chunk; return the kept failures."""
    rows, mu, y = sources.rows, sources.mu, sources.y
    n, k = mu.shape
    q, free = cfg.samples_per_image, perturbed_dims(dec, k)     # a conditional VAE's label stays put
    eps = beta_noise(cfg.seed, rows, q, free, cfg.beta_a, cfg.beta_b, plan.device)  # (n, Q, free)
    if cfg.centered:
        eps.sub_(cfg.beta_a / (cfg.beta_a + cfg.beta_b))
    if cfg.noise_scale != 1.0:
        eps.mul_(cfg.noise_scale)
    norms = _row_norms(eps)                                                        # (n, Q)
    if free < k:
        eps = torch.nn.functional.pad(eps, (0, k - free))
    z = eps.add_(mu.unsqueeze(1)).view(n * q, k)                                   # μ + ε, in place
    preds = torch.empty(n * q, dtype=torch.int64, device=plan.device)
    s = 0
    while s < n * q:
        size, t0 = tuner.size(), time.perf_counter()
        preds[s:s + size] = decode_classify(dec, clf, z[s:s + size], plan)
        tuner.record(size, min(size, n * q - s), time.perf_counter() - t0)
        s += size
    return _select_kept(z.view(n, q, k), norms, preds.view(n, q), y, rows, cfg.max_per_image)


def _row_norms(eps: torch.Tensor) -> torch.Tensor:
    """‖ε‖ over the last dim, summed dim by dim: a reduction kernel's order (and so the last bit)
    changes with the tensor's shape, which would make the kept set depend on the chunk size."""
    total = torch.zeros(eps.shape[:-1], dtype=eps.dtype, device=eps.device)
    for j in range(eps.shape[-1]):
        total.addcmul_(eps[..., j], eps[..., j])
    return total.sqrt_()


def _select_kept(z, norms, preds, y, rows, cap: int) -> dict[str, np.ndarray]:
    """Per source, the ``cap`` failures of smallest ‖ε‖, vectorised over the (n, Q) matrix.

    Non-failures get norm +inf, a stable sort orders each row (ties: lower sample index first),
    and the finite entries among the first ``cap`` columns are kept.
    """
    keyed = torch.where(preds != y.unsqueeze(1), norms, torch.full_like(norms, math.inf))
    top, order = torch.sort(keyed, dim=1, stable=True)
    top, order = top[:, :cap], order[:, :cap]
    src, rank = torch.isfinite(top).nonzero(as_tuple=True)
    sample = order[src, rank]
    out = {"latents": z[src, sample], "source_index": rows[src], "true_label": y[src],
           "pred_label": preds[src, sample], "noise_norm": top[src, rank]}
    return {name: t.cpu().numpy() for name, t in out.items()}
