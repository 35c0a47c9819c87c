"""Distill: cluster the unrestricted adversarial examples into failure scenarios (paper §3.2.2).

A Gaussian mixture with a Dirichlet-process prior (truncated stick breaking, at most K
components) is fitted by variational EM to the latent codes of the failures; the components
whose weight is above ε are the failure scenarios Λ = {(μ_j, Σ_j, π_j) | π_j > ε}. Appendix B.1
uses scikit-learn's ``BayesianGaussianMixture`` with its defaults and full covariances, K = 100,
ε = 0.01, and at most 50,000 codes (random down-sampling). The "torch" backend
(:mod:`defuse.distill.dpgmm`) computes the same updates several times faster; "sklearn" runs the paper's
implementation itself.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, replace

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from ..identify.search import Failures
from ..runtime.checks import is_int
from ..runtime.devices import resolve_device
from ..runtime.progress import ProgressFn, ProgressReporter
from ..runtime.words import named
from .config import COVARIANCE_TYPES, FIT_BACKENDS, GROUP_BY, DistillConfig  # noqa: F401  (re-exported)
from .confusions import split_by_confusion
from .dpgmm import DPGaussianMixture, limit_threads

_PREDICT_BATCH = 65_536  # rows assigned per call: bounds the (rows, K) log-probabilities in memory


class DistillConvergenceWarning(ConvergenceWarning):
    """The mixture stopped at max_iter before its lower bound settled (also in Scenarios.converged)."""


@dataclass
class Scenarios:
    """Failure scenarios: the mixture components whose weight is above ε, heaviest first.

    ``weights`` are the fitted mixture weights as they are (normalised over all K components), or with
    ``group_by="confusion"`` each scenario's share of the UAEs, so the kept ones sum to at most 1; they are
    not renormalised. ``m == 0`` (``len(s) == 0``) when no
    component weighs more than ε: every assignment is then -1 and the caller says so.
    """

    means: np.ndarray           # (m, k) float64: μ_j
    covariances: np.ndarray     # (m, k, k) float64: Σ_j
    weights: np.ndarray         # (m,) float64: π_j, raw mixture weights (not renormalised)
    component_ids: np.ndarray   # (m,) int64: index of the scenario's component among the K fitted
    assignment: np.ndarray      # (n,) int64: each failure's scenario in 0..m-1; -1: its component was dropped
    sizes: np.ndarray           # (m,) int64: failures assigned to each scenario
    true_label_mix: np.ndarray  # (m, C) int64: counts of true labels among each scenario's failures
    pred_label_mix: np.ndarray  # (m, C) int64: counts of the classifier's labels among them
    fitted_index: np.ndarray    # (n_fitted,) int64: sorted rows of the failures the mixture was fitted on
    converged: bool             # False: EM stopped at max_iter (a DistillConvergenceWarning was issued)
    n_iter: int                 # EM iterations of the best initialisation
    lower_bound: float          # its final variational lower bound
    fit_seconds: float          # fitting time, initialisation included, assignment excluded
    backend: str
    n_fitted: int               # codes fitted, after down-sampling
    n_components: int           # K used: min(max_components, n_fitted)
    # The diagonal added to every covariance: the configured reg_covar, or the larger one the fit needed
    # (see _fit_regularised). Scenarios saved before it was recorded load with NaN.
    reg_covar: float = float("nan")

    def __len__(self) -> int:
        return int(self.weights.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.true_label_mix.shape[1])

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """(arrays for an npz file, JSON-able meta); :meth:`from_arrays` inverts it."""
        arrays, meta = {}, {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                arrays[f.name] = value
            else:
                meta[f.name] = value.item() if isinstance(value, np.generic) else value
        return arrays, meta

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], meta: Mapping) -> Scenarios:
        kw = {f.name: (np.asarray(arrays[f.name]) if f.name in arrays else meta[f.name])
              for f in fields(cls) if f.name in arrays or f.name in meta or f.default is MISSING}
        return cls(**kw)


def _fit_torch(codes: np.ndarray, k: int, cfg: DistillConfig, on_iter: Callable[[float], None],
               prior_reg: float = 0.0):
    device = resolve_device(cfg.device)
    if device.type == "mps":
        device = torch.device("cpu")  # MPS has no float64, which the fit needs to match the reference
    model = DPGaussianMixture(k, cfg, device=device, prior_reg=prior_reg)
    return model.fit(codes, on_iter=lambda init, n_iter, lower_bound: on_iter(lower_bound))


class _ReportingBGMM(BayesianGaussianMixture):
    """scikit-learn's mixture, calling ``_on_lower_bound`` once per EM iteration (it has no callback)."""

    _on_lower_bound = None

    def _compute_lower_bound(self, log_resp, log_prob_norm):
        lower_bound = super()._compute_lower_bound(log_resp, log_prob_norm)
        if self._on_lower_bound is not None:
            self._on_lower_bound(float(lower_bound))
        return lower_bound


def _fit_sklearn(codes: np.ndarray, k: int, cfg: DistillConfig, on_iter: Callable[[float], None],
                 prior_reg: float = 0.0):
    # scikit-learn's default covariance prior is the codes' covariance; the same, with a diagonal when asked.
    prior = np.atleast_2d(np.cov(codes.T)) + prior_reg * np.eye(codes.shape[1]) if prior_reg else None
    model = _ReportingBGMM(covariance_prior=prior, n_components=k, covariance_type=cfg.covariance_type, tol=cfg.tol,
                           reg_covar=cfg.reg_covar, max_iter=cfg.max_iter, n_init=cfg.n_init,
                           weight_concentration_prior_type="dirichlet_process",
                           weight_concentration_prior=cfg.weight_concentration_prior, random_state=cfg.seed)
    model._on_lower_bound = on_iter
    # Measured on 2 shared cores: BLAS threads competing with other work made this fit 6x slower.
    with limit_threads(cfg.threads):
        return model.fit(codes)


BACKENDS = {"torch": _fit_torch, "sklearn": _fit_sklearn}

# Both backends raise this when a component's covariance is singular (scikit-learn's own words, kept by dpgmm).
_SINGULAR = "ill-defined empirical covariance"
REG_COVAR_GROWTH = 100.0       # each retry multiplies reg_covar by this
REG_COVAR_CEILING_SHARE = 0.01  # ... up to this share of the codes' mean variance: beyond, it would blur them


class DistillRegularisedWarning(UserWarning):
    """The mixture needed a larger reg_covar than configured (recorded in Scenarios.reg_covar)."""


def _fit_regularised(codes: np.ndarray, k: int, cfg: DistillConfig, on_iter: Callable[[float], None]):
    """(model, reg_covar used): the fit, retried with a larger diagonal when a covariance is singular.

    Why: a class-conditional VAE's code ends in the label's code, which takes one value per class, so
    the codes of UAEs from c classes span at most c - 1 of its dimensions: the codes' covariance, which
    is also the prior of every component's covariance, is singular, and a component with (almost) no
    codes gets a singular covariance whatever reg_covar adds to the codes' own scatter (7,068 verified
    Fashion-MNIST UAEs from 9 classes, issue #21). A component fitted to a thin sheet of codes fails the
    same way. scikit-learn's advice is to raise reg_covar by hand; the step retries by itself, with
    reg_covar ×100 at a time added to the components' scatter *and* to the prior's diagonal (which
    makes the prior proper), while that diagonal stays a small share of the codes' own variance, and
    says so. The first fit is scikit-learn's exactly. Past the ceiling the error stands, with what was
    tried.
    """
    ceiling = max(REG_COVAR_CEILING_SHARE * float(codes.var(axis=0).mean()), cfg.reg_covar)
    reg, tried = cfg.reg_covar, []
    while True:
        try:
            model = BACKENDS[cfg.backend](codes, k, replace(cfg, reg_covar=reg), on_iter,
                                          prior_reg=reg if tried else 0.0)
        except ValueError as e:
            if _SINGULAR not in str(e):
                raise
            tried.append(reg)
            reg = float(f"{max(reg, 1e-12) * REG_COVAR_GROWTH:.3g}")  # 1e-4, not 9.999999999999999e-05
            if reg > ceiling:
                raise ValueError(f"distill: the mixture's covariances stayed singular with reg_covar "
                                 f"{', '.join(f'{r:g}' for r in tried)} (the ceiling, 1% of the codes' mean "
                                 f"variance, is {ceiling:.3g}). Lower "
                                 f"{named(DistillConfig, 'max_components')} or fit fewer codes "
                                 f"({named(DistillConfig, 'max_samples')}).") from e
            continue
        if tried:
            warnings.warn(f"distill: the mixture's covariances were singular with reg_covar={tried[0]:g}; fitted "
                          f"with reg_covar={reg:g} instead (recorded with the scenarios)",
                          DistillRegularisedWarning, stacklevel=3)
        return model, reg


def _check_failures(failures: Failures, num_classes: int | None) -> tuple[np.ndarray, ...]:
    """Validated (codes (n, k) floats, true (n,), pred (n,), C).

    Float codes keep their dtype (identify's are float32): the fit and the assignment convert to
    float64, exactly, only the rows they use, not a float64 copy of every code (1M codes: 80 MB).
    """
    codes = np.asarray(failures.latents)
    if codes.dtype.kind != "f":
        codes = codes.astype(np.float64)
    if codes.ndim != 2:
        raise ValueError(f"failures.latents must be (n, latent_dim); got shape {codes.shape}")
    n = codes.shape[0]
    if n < 2:
        raise ValueError("no unrestricted adversarial examples to distill: run identify with more samples "
                         f"per image or over more images (found {n} failures, need at least 2)")
    if not np.isfinite(codes).all():
        raise ValueError("failures.latents contains NaN or inf; the identify step must produce finite codes")
    labels = [np.asarray(failures.true_label), np.asarray(failures.pred_label)]
    for name, lab in zip(("true_label", "pred_label"), labels, strict=True):
        if lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
            raise ValueError(f"failures.{name} must be ({n},) integers >= 0; "
                             f"got shape {lab.shape}, dtype {lab.dtype}")
    needed = int(max(labels[0].max(), labels[1].max())) + 1
    if num_classes is not None and (not is_int(num_classes) or num_classes < needed):
        raise ValueError(f"num_classes must be an integer >= {needed} (largest label + 1), "
                         f"got {num_classes!r}")
    return codes, labels[0].astype(np.int64), labels[1].astype(np.int64), num_classes or needed


def _down_sample(n: int, max_samples: int, seed: int) -> np.ndarray:
    """Sorted rows to fit: all of them, or max_samples drawn without replacement."""
    if n <= max_samples:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False)).astype(np.int64)


def _assign(model, codes: np.ndarray, cfg: DistillConfig) -> np.ndarray:
    """(n,) most probable component of every failure, fitted or not, in batches."""
    with limit_threads(cfg.threads):
        parts = [model.predict(codes[s:s + _PREDICT_BATCH].astype(np.float64, copy=False))
                 for s in range(0, len(codes), _PREDICT_BATCH)]
    return np.concatenate(parts).astype(np.int64)


def _select(model, components: np.ndarray, true: np.ndarray, pred: np.ndarray, n_classes: int,
            threshold: float) -> dict:
    """The Scenarios arrays of the components heavier than ε, heaviest first."""
    weights = np.asarray(model.weights_, dtype=np.float64)
    kept = np.flatnonzero(weights > threshold)
    kept = kept[np.argsort(-weights[kept], kind="stable")]
    scenario_of = np.full(len(weights), -1, dtype=np.int64)
    scenario_of[kept] = np.arange(len(kept))
    # -1: a failure of a confusion too small to be fitted (defuse.distill.confusions)
    assignment = np.where(components >= 0, scenario_of[np.maximum(components, 0)] if len(kept) else -1, -1)
    m, inside = len(kept), assignment >= 0

    def mix(labels: np.ndarray) -> np.ndarray:
        flat = assignment[inside] * n_classes + labels[inside]
        return np.bincount(flat, minlength=m * n_classes).reshape(m, n_classes).astype(np.int64)

    return dict(means=np.asarray(model.means_, dtype=np.float64)[kept],
                covariances=np.asarray(model.covariances_, dtype=np.float64)[kept], weights=weights[kept],
                component_ids=kept.astype(np.int64), assignment=assignment,
                sizes=np.bincount(assignment[inside], minlength=m).astype(np.int64),
                true_label_mix=mix(true), pred_label_mix=mix(pred))


def distill(failures: Failures, cfg: DistillConfig = DistillConfig(), *, num_classes: int | None = None,
            on_progress: ProgressFn = None) -> Scenarios:
    """Cluster the failures' latent codes into failure scenarios.

    Parameters
    ----------
    failures : Failures
        From :func:`defuse.identify.search.identify`; ``latents`` (n, k), labels (n,).
    cfg : DistillConfig
    num_classes : int, optional
        Columns C of the label mixes; default: largest label + 1.
    on_progress : callable, optional
        Receives ``Progress("distill", done, total, metrics={"lower_bound": ...})`` after every EM
        iteration (done counts iterations over all initialisations; total = max_iter * n_init), and
        once more with done = total at the end. It may raise :class:`defuse.runtime.progress.Cancelled`,
        which propagates.

    Returns
    -------
    Scenarios
        m >= 0 scenarios; every failure (not only the fitted ones) is assigned. K is capped at the
        number of fitted codes. Non-convergence issues a :class:`DistillConvergenceWarning` and is
        recorded in ``Scenarios.converged``.
    """
    codes, true, pred, n_classes = _check_failures(failures, num_classes)
    fitted_index = _down_sample(len(codes), cfg.max_samples, cfg.seed)
    k = min(cfg.max_components, len(fitted_index))
    total = cfg.max_iter * cfg.n_init
    report, done = ProgressReporter("distill", total, on_progress), [0]

    def on_iter(lower_bound: float) -> None:
        done[0] += 1
        report(min(done[0], total), lower_bound=lower_bound)

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # re-issued below, once, in our words
        model, reg_covar = _fit_regularised(codes[fitted_index].astype(np.float64, copy=False), k, cfg, on_iter)
    components = _assign(model, codes, cfg)
    if cfg.group_by == "confusion":
        model, components = split_by_confusion(model, components, codes, true, pred, reg_covar)
    fit_seconds = time.perf_counter() - start
    if not model.converged_:
        warnings.warn(f"distill: the mixture did not converge in {cfg.max_iter} EM iterations (lower-bound "
                      f"change still >= tol={cfg.tol}); the scenarios may shift with a larger max_iter",
                      DistillConvergenceWarning, stacklevel=2)
    arrays = _select(model, components, true, pred, n_classes, cfg.weight_threshold)
    report(total, lower_bound=float(model.lower_bound_), scenarios=len(arrays["weights"]))
    return Scenarios(**arrays, fitted_index=fitted_index, converged=bool(model.converged_),
                     n_iter=int(model.n_iter_), lower_bound=float(model.lower_bound_),
                     fit_seconds=fit_seconds, backend=cfg.backend, n_fitted=len(fitted_index), n_components=k,
                     reg_covar=reg_covar)
