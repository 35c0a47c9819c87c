"""Identify: unrestricted adversarial examples from perturbed β-VAE latent codes (paper §3.2.1).

Algorithm 1 (appendix A), for every source image x with true label y: μ = the encoder's mean for x;
draw Q noise vectors ε with every latent dim ~ Beta(a, b); decode μ + ε; keep the decodes the
classifier labels ≠ y (a source that is already misclassified counts too, §3.2.1); at most M per
source (appendix B.2: Q = 500, a = b = 50, M = 100 on MNIST), here the M of smallest ‖ε‖.

Unlike the reference loop (one image at a time), the search runs in chunks of source images, each
chunk's Q x n_sources decodes in large batches under ``torch.inference_mode()`` at the precision and
layout of :mod:`defuse.nets.inference`; ε is a pure function of (seed, source row, sample), so results do
not depend on batch size, chunk size or a resume. Finished chunks can be saved to ``resume_dir``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ..nets.architectures import latent_means
from ..nets.inference import (  # noqa: F401  (classify, decode_latents: re-exported for the other steps)
    PRECISION_CHOICES,
    InferencePlan,
    check_images,
    classify,
    decode_classify,
    decode_latents,
    plan_inference,
    prepare_model,
)
from ..runtime.devices import resolve_device
from ..runtime.progress import ProgressFn
from .checks import check_labels, check_models
from .chunk_search import Sources, search_chunks
from .chunks import ChunkStore, inputs_fingerprint
from .config import SUBSET_MODES, IdentifyConfig  # noqa: F401  (re-exported)
from .failures import FAILURE_ARRAYS, Failures  # noqa: F401  (FAILURE_ARRAYS: re-exported)
from .noise import MAX_ROWS

REVIEW_SAMPLE = 500        # failures the reviewer looks at, at most


# --------------------------------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------------------------------
def identify(classifier: nn.Module, vae: nn.Module, images, labels, cfg: IdentifyConfig | None = None, *,
             device="auto", on_progress: ProgressFn = None, resume_dir=None,
             reviewer: nn.Module | None = None, backend=None) -> Failures:
    """Find unrestricted adversarial examples of ``classifier`` around ``images`` (algorithm 1).

    Parameters
    ----------
    classifier : nn.Module
        Images (B, C, H, W) in [0, 1] -> logits (B, n_classes). Not modified (a copy runs).
    vae : nn.Module
        ``encode(x) -> (mu, logvar)`` each (B, k); ``decode(z) -> (B, C, H, W)`` in [0, 1].
    images : (N, C, H, W) float tensor or array in [0, 1]
    labels : (N,) integer tensor or array, the true labels.
    cfg : IdentifyConfig
    device : "auto", "cpu", "cuda", "mps" or a torch.device.
    on_progress : callable, optional
        Receives a :class:`~defuse.runtime.progress.Progress` after each chunk (metrics ``found``,
        ``images_per_s``); may raise :class:`~defuse.runtime.progress.Cancelled`, which propagates after the
        chunk is saved.
    resume_dir : path, optional
        Folder for finished chunks; a re-run with the same inputs and config skips them.
    reviewer : nn.Module, optional
        A second classifier: judges a sample of the failures (``reviewer_real_share``).
    backend : optional
        Where the search runs: None on this machine, or a :class:`defuse.distributed.backend.RayBackend`
        (same failures, bit for bit; its chunks go to the same ``resume_dir``).

    Returns
    -------
    Failures
        ``metrics`` holds the trust figures: ``acc_original`` / ``acc_reconstruction`` (classifier
        accuracy on the searched images and on their unperturbed reconstructions), ``n_searched``,
        ``n_misreconstructed``, ``n_skipped_misreconstructed`` and ``failures_from_misreconstructed``
        (what skip_misreconstructed removes or would remove), ``share_sources_with_failure``,
        ``share_sources_at_cap``, ``images_per_s`` (decodes/s of this run's fresh chunks), the
        ``precision``, ``batch_size``, ``channels_last`` and ``device`` used, ``chunks_resumed``; with a
        reviewer, ``reviewer_real_share`` (reviewer label = true label) and
        ``reviewer_artefact_share`` (reviewer agrees with the classifier) on ``reviewer_n`` failures.

    Notes
    -----
    torch's thread count is left as the caller set it (the CLI decides; see ``defuse.runtime.devices``).
    """
    cfg = IdentifyConfig() if cfg is None else cfg
    if not isinstance(cfg, IdentifyConfig):
        raise TypeError(f"cfg must be an IdentifyConfig; got {type(cfg).__name__}")
    images, labels = check_images(images), check_labels(labels)
    if len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image: got {len(labels)} labels "
                         f"for {len(images)} images")
    if len(images) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS:,} images can be searched in one call; got {len(images):,}")
    plan = plan_inference(resolve_device(device), cfg.precision, cfg.batch_size)
    clf, dec = prepare_model(classifier, plan), prepare_model(vae, plan)
    check_models(clf, dec, images, labels, plan)
    rows = _select_rows(len(images), cfg)
    store = None
    if resume_dir is not None:
        settings = {**asdict(cfg), "batch_size": None, "precision": plan.precision, "device": plan.device.type}
        settings.update(backend.plan_settings(plan, cfg) if backend is not None else {})
        tensors = [images, labels, *classifier.state_dict().values(), *vae.state_dict().values()]
        store = ChunkStore(resume_dir, inputs_fingerprint(settings, tensors), FAILURE_ARRAYS)
    job = _Search(clf, dec, plan, store, search_chunks if backend is None else backend.search)
    failures = _identify_impl(job, images, labels, rows, cfg, on_progress)
    if reviewer is not None:
        failures.metrics.update(_review(reviewer, dec, failures, cfg.seed, plan.device))
    return failures


@dataclass(frozen=True)
class _Search:
    """The prepared models and where and how their chunks are searched (here, or a Ray backend)."""

    clf: nn.Module
    dec: nn.Module
    plan: InferencePlan
    store: ChunkStore | None
    search_fn: object


def _identify_impl(job: _Search, images, labels, rows, cfg, on_progress) -> Failures:
    """Encode, pick the sources, search them chunk by chunk; inputs are trusted."""
    clf, dec, plan = job.clf, job.dec, job.plan
    with torch.inference_mode():
        mu, pred_recon, pred_orig = _encode(clf, dec, images, labels, rows, plan)
    y = labels[rows].to(plan.device)
    recon_ok = pred_recon == y
    search = recon_ok if cfg.skip_misreconstructed else torch.ones_like(recon_ok)
    sources = Sources(rows.to(plan.device)[search], mu[search], y[search])
    parts, stats = job.search_fn(clf, dec, sources, cfg, plan, job.store, on_progress)
    failures = Failures.concatenate(parts, mu.shape[1])
    misrecon_rows = rows[~recon_ok.cpu()].numpy()
    failures.metrics = {
        "n_images": len(images), "n_searched": len(sources), "n_candidates": len(rows),
        "acc_original": _mean(pred_orig == y), "acc_reconstruction": _mean(recon_ok),
        "n_misreconstructed": len(misrecon_rows), "skip_misreconstructed": cfg.skip_misreconstructed,
        "n_skipped_misreconstructed": int((~search).sum()),
        "failures_from_misreconstructed": int(np.isin(failures.source_index, misrecon_rows).sum()),
        "n_failures": len(failures), **_source_shares(failures, len(sources), cfg.max_per_image),
        **plan.describe(), **stats,  # stats' batch_size: the tuner's choice
    }
    return failures


def _mean(mask: torch.Tensor) -> float | None:
    return float(mask.float().mean()) if mask.numel() else None


def _source_shares(failures: Failures, n_searched: int, cap: int) -> dict:
    if not n_searched:
        return {"share_sources_with_failure": None, "share_sources_at_cap": None}
    counts = np.unique(failures.source_index, return_counts=True)[1]
    return {"share_sources_with_failure": len(counts) / n_searched,
            "share_sources_at_cap": int(np.sum(counts >= cap)) / n_searched}


def _encode(clf, dec, images, labels, rows, plan: InferencePlan):
    """μ (n, k) fp32 on the device, and the classifier's labels for the reconstructions and originals.

    A conditional VAE encodes each source with its own label, so its decodes keep the source's class.
    """
    mus, recon, orig = [], [], []
    for s in range(0, len(rows), plan.batch_size):
        x = images[rows[s:s + plan.batch_size]].to(plan.device, torch.float32)
        y = labels[rows[s:s + plan.batch_size]].to(plan.device)
        mu = latent_means(dec, x, y).float()   # fp32: μ is stored in the results
        mus.append(mu)
        recon.append(decode_classify(dec, clf, mu, plan))
        with plan.autocast():
            x = x.contiguous(memory_format=torch.channels_last) if plan.channels_last else x
            orig.append(clf(x).argmax(1))
    return torch.cat(mus), torch.cat(recon), torch.cat(orig)


def _select_rows(n: int, cfg: IdentifyConfig) -> torch.Tensor:
    """Rows of the images to search: all, the first N, or N at random (seeded), ascending."""
    if cfg.subset is None or cfg.subset >= n:
        return torch.arange(n)
    if cfg.subset_mode == "first":
        return torch.arange(cfg.subset)
    rng = np.random.default_rng(cfg.seed)
    return torch.from_numpy(np.sort(rng.choice(n, size=cfg.subset, replace=False))).long()


def _review(reviewer: nn.Module, dec: nn.Module, failures: Failures, seed: int, device) -> dict:
    """How many failures a second classifier calls real (its label = the true label) or artefacts."""
    if len(failures) == 0:
        return {"reviewer_n": 0, "reviewer_real_share": None, "reviewer_artefact_share": None}
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(failures), size=min(REVIEW_SAMPLE, len(failures)), replace=False))
    x = decode_latents(dec, failures.latents[idx], device=device)
    preds = classify(reviewer, x, device=device)[0].numpy()
    return {"reviewer_n": len(idx),
            "reviewer_real_share": float(np.mean(preds == failures.true_label[idx])),
            "reviewer_artefact_share": float(np.mean(preds == failures.pred_label[idx]))}
