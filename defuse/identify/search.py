"""Identify: unrestricted adversarial examples from perturbed β-VAE latent codes (paper §3.2.1).

Algorithm 1 (appendix A), for every source image x with true label y: μ = the encoder's mean for x;
draw Q noise vectors ε with every latent dim ~ Beta(a, b); decode μ + ε; keep the decodes the
classifier labels ≠ y (a source that is already misclassified counts too, §3.2.1); at most M per
source (appendix B.2: Q = 500, a = b = 50, M = 100 on MNIST), here the M of smallest ‖ε‖.

Unlike the reference loop (one image at a time), the search runs in chunks of source images, each
chunk's Q x n_sources decodes in large batches under ``torch.inference_mode()`` at the precision and
layout of :mod:`defuse.identify.fastpath`; ε is a pure function of (seed, source row, sample), so results do
not depend on batch size, chunk size or a resume. Finished chunks can be saved to ``resume_dir``.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import nn

from ..runtime.devices import resolve_device
from ..runtime.progress import ProgressFn, ProgressReporter
from .autotune import CPU_CANDIDATES, BatchTuner
from .chunks import ChunkStore, inputs_fingerprint
from .fastpath import (  # noqa: F401  (classify, decode_latents: re-exported for the other steps)
    PRECISION_CHOICES,
    InferencePlan,
    check_images,
    classify,
    decode_classify,
    decode_latents,
    plan_inference,
    prepare_model,
)
from .noise import MAX_LATENT_DIM, MAX_ROWS, MAX_SAMPLES_PER_IMAGE, beta_noise

SUBSET_MODES = ("first", "random")
REVIEW_SAMPLE = 500        # failures the reviewer looks at, at most


@dataclass(frozen=True)
class IdentifyConfig:
    """Settings of the identification step; defaults are the paper's MNIST settings (appendix B.2)."""

    samples_per_image: int = 500      # Q
    beta_a: float = 50.0              # a of Beta(a, b) (§4.1: 50 for MNIST, 75 for SVHN / German signs)
    beta_b: float = 50.0              # b
    max_per_image: int = 100          # M, cap on |ψ| per source
    # The paper's ε is Beta noise in (0, 1), so every dim shifts by about a/(a+b) = +0.5; centered
    # subtracts that mean. Off by default for fidelity to the paper.
    centered: bool = False
    # Search only sources whose own reconstruction the classifier labels correctly: measured on MNIST,
    # the share of real failures rose from ~31-56 % to 70-78 %, at the cost of two thirds of the finds.
    skip_misreconstructed: bool = False
    subset: int | None = None         # search only N of the images (None: all)
    subset_mode: str = "random"       # which N: "random" (seeded) or "first"
    batch_size: int | None = None     # decodes per batch (None: the device's default)
    precision: str = "auto"           # "auto" | "fp32" | "bf16" | "fp16"
    seed: int = 0
    chunk_images: int = 256           # source images per resumable chunk

    def __post_init__(self):
        _check_int("samples_per_image", self.samples_per_image, 1, MAX_SAMPLES_PER_IMAGE)
        for name in ("beta_a", "beta_b"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
        _check_int("max_per_image", self.max_per_image, 1)
        for name in ("centered", "skip_misreconstructed"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if self.subset is not None:
            _check_int("subset", self.subset, 1)
        if self.subset_mode not in SUBSET_MODES:
            raise ValueError(f"subset_mode must be one of {sorted(SUBSET_MODES)}; got {self.subset_mode!r}")
        if self.batch_size is not None:
            _check_int("batch_size", self.batch_size, 1)
        if self.precision not in PRECISION_CHOICES:
            raise ValueError(f"precision must be one of {sorted(PRECISION_CHOICES)}; got {self.precision!r}")
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("chunk_images", self.chunk_images, 1)


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        allowed = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
        raise ValueError(f"{name} must be {allowed}; got {value!r}")


@dataclass
class Failures:
    """Unrestricted adversarial examples found by :func:`identify` (decoded on demand, not stored).

    Rows are grouped by source (in search order), each source's rows by ascending ``noise_norm``.
    """

    latents: np.ndarray       # (n, k) float32: the perturbed codes mu + eps whose decode was misclassified
    source_index: np.ndarray  # (n,) int64: row of the source image in the images passed to identify
    true_label: np.ndarray    # (n,) int64: the source image's true label
    pred_label: np.ndarray    # (n,) int64: the classifier's label for the decode
    noise_norm: np.ndarray    # (n,) float32: ||eps||
    metrics: dict = field(default_factory=dict)  # trust figures (reconstruction accuracy, ...)

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays (not the metrics) by field name, for ``np.savez``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "metrics"}

    @classmethod
    def from_arrays(cls, arrays, metrics: dict | None = None) -> Failures:
        return cls(**{f.name: np.asarray(arrays[f.name]) for f in fields(cls) if f.name != "metrics"},
                   metrics=dict(metrics or {}))

    @classmethod
    def concatenate(cls, parts: list[dict], latent_dim: int) -> Failures:
        """The chunks' rows in order. Each chunk array is popped from its dict once copied, so the rows
        are held about once, not twice (1M failures of k=10: ~70 MB, not ~140 MB); ``parts`` ends empty."""
        if not parts:
            return cls(np.zeros((0, latent_dim), np.float32), *(np.zeros(0, np.int64) for _ in range(3)),
                       np.zeros(0, np.float32))
        return cls.from_arrays({f.name: np.concatenate([p.pop(f.name) for p in parts])
                                for f in fields(cls) if f.name != "metrics"})


FAILURE_ARRAYS = tuple(f.name for f in fields(Failures) if f.name != "metrics")  # what a chunk on disk holds


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
        Receives a :class:`~defuse.progress.Progress` after each chunk (metrics ``found``,
        ``images_per_s``); may raise :class:`~defuse.progress.Cancelled`, which propagates after the
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
    images, labels = check_images(images), _check_labels(labels)
    if len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image: got {len(labels)} labels "
                         f"for {len(images)} images")
    if len(images) > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS:,} images can be searched in one call; got {len(images):,}")
    plan = plan_inference(resolve_device(device), cfg.precision, cfg.batch_size)
    clf, dec = prepare_model(classifier, plan), prepare_model(vae, plan)
    _check_models(clf, dec, images, labels, plan)
    rows = _select_rows(len(images), cfg)
    store = None
    if resume_dir is not None:
        settings = {**asdict(cfg), "batch_size": None, "precision": plan.precision, "device": plan.device.type}
        settings.update(backend.plan_settings(plan, cfg) if backend is not None else {})
        tensors = [images, labels, *classifier.state_dict().values(), *vae.state_dict().values()]
        store = ChunkStore(resume_dir, inputs_fingerprint(settings, tensors), FAILURE_ARRAYS)
    search_fn = _search if backend is None else backend.search
    failures = _identify_impl(clf, dec, images, labels, rows, cfg, plan, store, on_progress, search_fn)
    if reviewer is not None:
        failures.metrics.update(_review(reviewer, dec, failures, cfg.seed, plan.device))
    return failures


def _identify_impl(clf, dec, images, labels, rows, cfg, plan, store, on_progress, search_fn) -> Failures:
    """Encode, pick the sources, search them chunk by chunk; inputs are trusted."""
    with torch.inference_mode():
        mu, pred_recon, pred_orig = _encode(clf, dec, images, rows, plan)
    y = labels[rows].to(plan.device)
    recon_ok = pred_recon == y
    search = recon_ok if cfg.skip_misreconstructed else torch.ones_like(recon_ok)
    src_rows, src_mu, src_y = rows.to(plan.device)[search], mu[search], y[search]
    parts, stats = search_fn(clf, dec, src_rows, src_mu, src_y, cfg, plan, store, on_progress)
    failures = Failures.concatenate(parts, mu.shape[1])
    misrecon_rows = rows[~recon_ok.cpu()].numpy()
    failures.metrics = {
        "n_images": len(images), "n_searched": int(src_rows.shape[0]), "n_candidates": len(rows),
        "acc_original": _mean(pred_orig == y), "acc_reconstruction": _mean(recon_ok),
        "n_misreconstructed": len(misrecon_rows), "skip_misreconstructed": cfg.skip_misreconstructed,
        "n_skipped_misreconstructed": int((~search).sum()),
        "failures_from_misreconstructed": int(np.isin(failures.source_index, misrecon_rows).sum()),
        "n_failures": len(failures), **_source_shares(failures, int(src_rows.shape[0]), cfg.max_per_image),
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


def _encode(clf, dec, images, rows, plan: InferencePlan):
    """μ (n, k) fp32 on the device, and the classifier's labels for the reconstructions and originals."""
    mus, recon, orig = [], [], []
    for s in range(0, len(rows), plan.batch_size):
        x = images[rows[s:s + plan.batch_size]].to(plan.device, torch.float32)
        mu = dec.encode(x)[0].float()          # fp32: μ is stored in the results
        mus.append(mu)
        recon.append(decode_classify(dec, clf, mu, plan))
        with plan.autocast():
            x = x.contiguous(memory_format=torch.channels_last) if plan.channels_last else x
            orig.append(clf(x).argmax(1))
    return torch.cat(mus), torch.cat(recon), torch.cat(orig)


def _search(clf, dec, rows, mu, y, cfg, plan, store, on_progress) -> tuple[list[dict], dict]:
    """Search the sources in chunks of ``cfg.chunk_images``; load finished chunks from ``store``."""
    n, size = int(rows.shape[0]), cfg.chunk_images
    n_chunks = math.ceil(n / size)
    saved = {i: store.load(i) for i in range(n_chunks)} if store is not None else {}
    saved = {i: part for i, part in saved.items() if part is not None}
    resumed = sum(min(size, n - i * size) for i in saved)
    report = ProgressReporter("identify", n, on_progress, start_done=resumed)
    parts, found, fresh, seconds = [], 0, 0, 0.0
    tuner = _batch_tuner(cfg, plan)
    report(resumed, found=sum(len(p["latents"]) for p in saved.values()), images_per_s=None)
    for i in range(n_chunks):
        sl = slice(i * size, min(n, (i + 1) * size))
        part = saved.get(i)
        if part is None:
            t0 = time.perf_counter()
            with torch.inference_mode():
                part = _search_chunk(clf, dec, rows[sl], mu[sl], y[sl], cfg, plan, tuner)
            seconds += time.perf_counter() - t0
            fresh += (sl.stop - sl.start) * cfg.samples_per_image
            if store is not None:
                store.save(i, part)
        parts.append(part)
        found += len(part["latents"])
        report(sl.stop, found=found, images_per_s=fresh / seconds if seconds else None, chunk=i + 1)
    rate = fresh / seconds if seconds else None
    return parts, {"images_per_s": rate, "sources_per_s": rate / cfg.samples_per_image if rate else None,
                   "search_seconds": seconds, "n_decodes": n * cfg.samples_per_image,
                   "chunks": n_chunks, "chunks_resumed": len(saved), **tuner.summary()}


def _batch_tuner(cfg: IdentifyConfig, plan: InferencePlan) -> BatchTuner:
    """A set batch size (the user's, or a GPU's measured best) stays; a CPU's is tuned online."""
    if cfg.batch_size is not None or plan.device.type != "cpu":
        return BatchTuner.fixed(plan.batch_size)
    return BatchTuner(CPU_CANDIDATES)


def _search_chunk(clf, dec, rows, mu, y, cfg: IdentifyConfig, plan: InferencePlan,
                  tuner: BatchTuner) -> dict[str, np.ndarray]:
    """Decode and classify the Q perturbations of each source of one chunk; return the kept failures."""
    n, k = mu.shape
    q = cfg.samples_per_image
    eps = beta_noise(cfg.seed, rows, q, k, cfg.beta_a, cfg.beta_b, plan.device)    # (n, Q, k)
    if cfg.centered:
        eps.sub_(cfg.beta_a / (cfg.beta_a + cfg.beta_b))
    norms = _row_norms(eps)                                                        # (n, Q)
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


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------
def _check_labels(labels) -> torch.Tensor:
    y = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer array; got shape {tuple(y.shape)}, dtype {y.dtype}")
    if len(y) and int(y.min()) < 0:
        raise ValueError(f"labels must be >= 0; got a minimum of {int(y.min())}")
    return y.long().cpu()


def _check_models(clf: nn.Module, dec: nn.Module, images: torch.Tensor, labels: torch.Tensor, plan) -> None:
    """Probe both models on one image: the latent width, the decode's shape and the number of classes."""
    if not (callable(getattr(dec, "encode", None)) and callable(getattr(dec, "decode", None))):
        raise ValueError("vae must have encode(x) -> (mu, logvar) and decode(z) -> images")
    x = images[:1].to(plan.device, torch.float32)
    with torch.inference_mode():
        mu = dec.encode(x)[0]
        k = getattr(dec, "latent_dim", mu.shape[-1])
        if mu.dim() != 2 or mu.shape[1] != k:
            raise ValueError("latent_dim mismatch: the VAE's encoder returns codes of shape "
                             f"{tuple(mu.shape)} for one image but vae.latent_dim is {k}")
        if k > MAX_LATENT_DIM:
            raise ValueError(f"latent_dim must be <= {MAX_LATENT_DIM}; got {k}")
        recon = dec.decode(mu.float())
        if tuple(recon.shape[1:]) != tuple(images.shape[1:]):
            raise ValueError(f"the VAE decodes to images of shape {tuple(recon.shape[1:])} but the images "
                             f"are {tuple(images.shape[1:])}; load the data at the VAE's training size")
        logits = clf(recon.float())
    if logits.dim() != 2:
        raise ValueError(f"the classifier must return logits (B, n_classes); got shape {tuple(logits.shape)}")
    if int(labels.max()) >= logits.shape[1]:
        raise ValueError(f"labels go up to {int(labels.max())} but the classifier has "
                         f"{logits.shape[1]} outputs")
