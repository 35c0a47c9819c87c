"""Dirichlet-process Gaussian mixture fitted by variational EM, in torch (float64).

The same model, priors, initialisation, updates, lower bound and convergence test as
scikit-learn's ``BayesianGaussianMixture(weight_concentration_prior_type="dirichlet_process",
covariance_type="full")`` (paper §3.2.2 and appendix B.1 use that class with its defaults),
rewritten so one EM iteration is two matrix products instead of Python loops over components.

Why it is fast: every data term the model needs is linear in the per-point features
``f(x) = [x_i x_j (i <= j), x, 1]`` of shape (n, p), p = d(d+1)/2 + d + 1. So

* the E-step's Mahalanobis distances of all points to all components are ``F @ W`` with
  ``W`` (p, K) built from the K means and precisions, and
* the M-step's sufficient statistics (counts, first and second moments) are ``resp.T @ F``.

``F`` is computed once per fit (the data are centred on their mean first, so the expanded
quadratic form loses no accuracy in float64). Nothing leaves the device inside the loop except
the lower bound, which the convergence test needs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple, Optional

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from .config import DistillConfig

IterFn = Optional[Callable[[int, int, float], None]]  # (init, n_iter, lower_bound); may raise to stop

_CHOLESKY_ERROR = (
    "Fitting the mixture model failed because some components have ill-defined empirical covariance "
    "(for instance caused by singleton or collapsed samples). Try to decrease the number of components, "
    "increase reg_covar, or scale the input data."
)


@contextmanager
def limit_threads(threads: int | None) -> Iterator[None]:
    """Cap CPU threads inside the block: BLAS/OpenMP (threadpoolctl) and torch's intra-op pool.

    Why: on 2 shared cores, 2 threads made this fit ~10x slower than 1 while other work ran
    (scikit-learn's mixture 6x). ``None`` leaves every library as it is. torch's setting is
    process-wide; it is restored on exit.
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


class _Prior(NamedTuple):
    weight_concentration: float
    mean_precision: float
    mean: torch.Tensor        # (d,) zero: the fit works in coordinates centred on the data mean
    degrees_of_freedom: float
    covariance: torch.Tensor  # (d, d) empirical covariance of the data


class _Params(NamedTuple):
    alpha: torch.Tensor           # (K,) first stick-breaking Beta parameter
    beta: torch.Tensor            # (K,) second stick-breaking Beta parameter
    mean_precision: torch.Tensor  # (K,)
    means: torch.Tensor           # (K, d) centred coordinates
    dof: torch.Tensor             # (K,) Wishart degrees of freedom
    covariances: torch.Tensor     # (K, d, d) normalised by dof, as scikit-learn stores them
    prec_chol: torch.Tensor       # (K, d, d) upper-triangular U with precision = U @ U.T


def _features(x: torch.Tensor) -> torch.Tensor:
    """(n, d) -> (n, p): products x_i x_j for i <= j, then x, then a column of ones."""
    i, j = torch.triu_indices(x.shape[1], x.shape[1], device=x.device)
    return torch.cat([x[:, i] * x[:, j], x, torch.ones_like(x[:, :1])], dim=1)


def _estimate_params(stats: torch.Tensor, prior: _Prior, reg_covar: float) -> _Params:
    """Variational M-step from stats = resp.T @ F (K, p); mirrors sklearn's ``_m_step``."""
    d = prior.mean.shape[0]
    i, j = torch.triu_indices(d, d, device=stats.device)
    n_raw = stats[:, -1]
    nk = n_raw + 10 * torch.finfo(stats.dtype).eps
    xk = stats[:, -1 - d:-1] / nk[:, None]
    second = stats.new_zeros(stats.shape[0], d, d)
    second[:, i, j] = stats[:, : i.numel()]
    second[:, j, i] = stats[:, : i.numel()]
    # sum_n r (x - xk)(x - xk)^T / nk, expanded; (2 - n_raw / nk) keeps sklearn's +10 eps exact.
    outer = xk[:, :, None] * xk[:, None, :]
    sk = second / nk[:, None, None] - (2 - n_raw / nk)[:, None, None] * outer
    sk = sk + reg_covar * torch.eye(d, dtype=stats.dtype, device=stats.device)
    # Stick breaking: beta_k = prior + sum_{j > k} n_j, the tail sums taken from the end as sklearn does.
    tail = nk.flip(0).cumsum(0).flip(0)
    beta = prior.weight_concentration + torch.cat([tail[1:], tail.new_zeros(1)])
    mean_precision = prior.mean_precision + nk
    means = (prior.mean_precision * prior.mean + nk[:, None] * xk) / mean_precision[:, None]
    dof = prior.degrees_of_freedom + nk
    diff = xk - prior.mean
    scale = (nk * prior.mean_precision / mean_precision)[:, None, None]
    cov = prior.covariance + nk[:, None, None] * sk + scale * diff[:, :, None] * diff[:, None, :]
    cov = cov / dof[:, None, None]
    chol, info = torch.linalg.cholesky_ex(cov)
    if bool(info.any()):
        raise ValueError(_CHOLESKY_ERROR)
    eye = torch.eye(d, dtype=cov.dtype, device=cov.device).expand_as(cov)
    prec_chol = torch.linalg.solve_triangular(chol, eye, upper=False).mT
    return _Params(1.0 + nk, beta, mean_precision, means, dof, cov, prec_chol)


def _log_weights(p: _Params) -> torch.Tensor:
    """(K,) expected log stick-breaking weights (sklearn ``_estimate_log_weights``)."""
    digamma_sum = torch.digamma(p.alpha + p.beta)
    before = torch.cumsum(torch.digamma(p.beta) - digamma_sum, 0)[:-1]
    return torch.digamma(p.alpha) - digamma_sum + torch.cat([before.new_zeros(1), before])


def _log_prob_terms(p: _Params) -> tuple[torch.Tensor, torch.Tensor]:
    """W (p, K) and c (K,) with weighted log prob = -0.5 * F @ W + c (sklearn's E-step terms)."""
    d = p.means.shape[1]
    i, j = torch.triu_indices(d, d, device=p.means.device)
    precision = p.prec_chol @ p.prec_chol.mT
    p_mu = (precision @ p.means[:, :, None])[:, :, 0]
    quad = precision[:, i, j] * torch.where(i == j, 1.0, 2.0).to(precision.dtype)
    w = torch.cat([quad, -2.0 * p_mu, (p.means * p_mu).sum(1, keepdim=True)], dim=1).T
    log_det_chol = torch.log(torch.diagonal(p.prec_chol, dim1=1, dim2=2)).sum(1)
    ar = torch.arange(d, dtype=p.dof.dtype, device=p.dof.device)
    log_lambda = d * math.log(2.0) + torch.digamma(0.5 * (p.dof[None, :] - ar[:, None])).sum(0)
    c = (-0.5 * d * math.log(2 * math.pi) + log_det_chol - 0.5 * d * torch.log(p.dof)
         + 0.5 * (log_lambda - d / p.mean_precision) + _log_weights(p))
    return w, c


def _e_step_stats(feats: torch.Tensor, p: _Params, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """E-step fused with the M-step's sufficient statistics, over blocks of ``chunk`` rows.

    Returns stats = resp.T @ feats (K, p) and sum(resp * log resp) (scalar). Blocks keep the
    (chunk, K) intermediates in cache: on one CPU core this halves the time of a whole-array pass.
    """
    w, c = _log_prob_terms(p)
    stats = feats.new_zeros(w.shape[1], w.shape[0])
    neg_entropy = feats.new_zeros(())
    for start in range(0, feats.shape[0], chunk):
        f = feats[start:start + chunk]
        wlp = torch.addmm(c, f, w, alpha=-0.5)
        top = wlp.amax(1, keepdim=True)
        # exp underflows to exactly 0 below -745 anyway; the clamp only avoids libm's slow path there.
        resp = torch.sub(wlp, top).clamp_(min=-750.0).exp_()
        total = resp.sum(1, keepdim=True)
        resp /= total
        # sum r (wlp - log_norm) = sum r wlp - sum log_norm, since each row of r sums to one.
        neg_entropy += torch.dot(resp.reshape(-1), wlp.reshape(-1)) - top.sum() - total.log_().sum()
        stats.addmm_(resp.T, f)
    return stats, neg_entropy


def _lower_bound(neg_entropy: torch.Tensor, p: _Params) -> torch.Tensor:
    """sklearn's ``_compute_lower_bound`` for the Dirichlet process, full covariances."""
    d = p.means.shape[1]
    log_det = torch.log(torch.diagonal(p.prec_chol, dim1=1, dim2=2)).sum(1) - 0.5 * d * torch.log(p.dof)
    ar = torch.arange(d, dtype=p.dof.dtype, device=p.dof.device)
    log_wishart = -(p.dof * log_det + p.dof * d * 0.5 * math.log(2.0)
                    + torch.lgamma(0.5 * (p.dof[None, :] - ar[:, None])).sum(0)).sum()
    betaln = torch.lgamma(p.alpha) + torch.lgamma(p.beta) - torch.lgamma(p.alpha + p.beta)
    return -neg_entropy - log_wishart + betaln.sum() - 0.5 * d * torch.log(p.mean_precision).sum()


class DPGaussianMixture:
    """Variational Dirichlet-process Gaussian mixture with full covariances, in torch float64.

The fit's settings are those of a :class:`~defuse.distill.config.DistillConfig` (default: its
    defaults): ``tol``, ``reg_covar``, ``max_iter``, ``n_init``, ``weight_concentration_prior`` and
    ``seed`` (scikit-learn's ``random_state``) mean what they mean in scikit-learn's
    ``BayesianGaussianMixture``; the priors are its defaults (mean prior = data mean, degrees of
    freedom prior = n_features, covariance prior = empirical covariance, mean precision prior = 1,
    weight concentration = 1 / n_components). ``threads`` caps the CPU threads of fit and predict
    (see :func:`limit_threads`; None: leave torch and BLAS as configured). ``device`` is where the
    fit runs (a resolved device: the config's "auto" is the caller's to resolve). ``chunk_size`` rows
    are processed per block in the E-step (None: 2048 on CPU, where blocks stay in cache; all rows
    up to 2**18 on a GPU, where fewer, larger kernels are faster).

    Fitted attributes (numpy, original coordinates): ``weights_`` (K,), ``means_`` (K, d),
    ``covariances_`` (K, d, d), ``precisions_cholesky_`` (K, d, d), ``weight_concentration_``
    (tuple of two (K,)), ``mean_precision_`` (K,), ``degrees_of_freedom_`` (K,), ``converged_``,
    ``n_iter_``, ``lower_bound_``, ``lower_bounds_``.
    """

    def __init__(self, n_components: int = 100, cfg: DistillConfig | None = None, *,
                 device: str | torch.device = "cpu", chunk_size: int | None = None, prior_reg: float = 0.0):
        if cfg is None:
            cfg = DistillConfig()
        self.n_components, self.tol, self.reg_covar = n_components, cfg.tol, cfg.reg_covar
        self.max_iter, self.n_init = cfg.max_iter, cfg.n_init
        self.weight_concentration_prior, self.random_state = cfg.weight_concentration_prior, cfg.seed
        self.device, self.threads, self.chunk_size = device, cfg.threads, chunk_size
        # Added to the covariance prior's diagonal: 0 keeps scikit-learn's prior exactly; see
        # defuse.distill.scenarios._fit_regularised for when it is not.
        self.prior_reg = prior_reg

    def fit(self, X: np.ndarray, *, init_resp: np.ndarray | None = None, on_iter: IterFn = None):
        """Fit to X (n, d), float64 whatever its dtype.

        ``init_resp`` (n, K) replaces the k-means initialisation (for every init); ``on_iter(init,
        n_iter, lower_bound)`` is called after each EM iteration and may raise to stop the fit.
        """
        with limit_threads(self.threads):
            return self._fit(X, init_resp, on_iter)

    def _fit(self, X: np.ndarray, init_resp: np.ndarray | None, on_iter: IterFn):
        x64 = np.asarray(X, dtype=np.float64)
        n, d = x64.shape
        if n < max(2, self.n_components):
            raise ValueError(f"Expected n_samples >= n_components but got n_components = "
                             f"{self.n_components}, n_samples = {n}")
        if init_resp is not None and np.shape(init_resp) != (n, self.n_components):
            raise ValueError(f"init_resp must have shape {(n, self.n_components)}, got {np.shape(init_resp)}")
        x = torch.as_tensor(x64, device=self.device)
        self._chunk = self.chunk_size or (2048 if x.device.type == "cpu" else 1 << 18)
        self._shift = x.mean(0)  # the mean prior; working centred keeps F @ W accurate
        feats = _features(x - self._shift)
        wcp = self.weight_concentration_prior
        wcp = 1.0 / self.n_components if wcp is None else float(wcp)
        cov_prior = torch.atleast_2d(torch.cov(x.T))
        if self.prior_reg:
            cov_prior = cov_prior + self.prior_reg * torch.eye(d, dtype=x.dtype, device=x.device)
        prior = _Prior(wcp, 1.0, torch.zeros(d, dtype=x.dtype, device=x.device), float(d), cov_prior)
        rng = np.random.RandomState(self.random_state)  # sklearn's check_random_state
        best, self.converged_ = None, False
        for init in range(self.n_init):
            params = _estimate_params(self._initial_stats(x64, feats, rng, init_resp), prior, self.reg_covar)
            params, lbs, converged = self._run_em(feats, params, prior, init, on_iter)
            if best is None or lbs[-1] > best[1][-1]:
                best, self.converged_ = (params, lbs), converged
        if not self.converged_:
            warnings.warn("Best performing initialization did not converge. Try different init parameters, "
                          "or increase max_iter, tol, or check for degenerate data.", ConvergenceWarning,
                          stacklevel=3)
        self._store(*best, prior)
        return self

    def _initial_stats(self, x: np.ndarray, feats: torch.Tensor, rng: np.random.RandomState,
                       init_resp: np.ndarray | None) -> torch.Tensor:
        """resp0.T @ feats (K, p) for the given responsibilities, else hard k-means ones (sklearn's
        init_params="kmeans": KMeans(K, n_init=1) on the raw data, the same random state)."""
        if init_resp is not None:
            return torch.as_tensor(np.asarray(init_resp, dtype=np.float64), device=feats.device).T @ feats
        labels = KMeans(n_clusters=self.n_components, n_init=1, random_state=rng).fit(x).labels_
        index = torch.as_tensor(labels, dtype=torch.int64, device=feats.device)
        if feats.device.type == "cpu":  # one-hot rows: sums of rows per cluster, no (n, K) matrix
            return feats.new_zeros(self.n_components, feats.shape[1]).index_add_(0, index, feats)
        # On a GPU index_add_ adds atomically, in no fixed order; a matrix product is reproducible.
        return torch.nn.functional.one_hot(index, self.n_components).to(feats.dtype).T @ feats

    def _run_em(self, feats: torch.Tensor, params: _Params, prior: _Prior, init: int,
                on_iter: IterFn) -> tuple[_Params, list, bool]:
        """EM until the lower bound changes by less than tol; returns (params, lower bounds, converged)."""
        lower_bound, lbs = -math.inf, []
        for n_iter in range(1, self.max_iter + 1):
            stats, neg_entropy = _e_step_stats(feats, params, self._chunk)
            params = _estimate_params(stats, prior, self.reg_covar)
            previous, lower_bound = lower_bound, float(_lower_bound(neg_entropy, params))
            lbs.append(lower_bound)
            if on_iter is not None:
                on_iter(init, n_iter, lower_bound)
            if abs(lower_bound - previous) < self.tol:
                return params, lbs, True
        return params, lbs, False

    def _store(self, params: _Params, lbs: list, prior: _Prior) -> None:
        self._params = params
        as_np = lambda t: t.detach().cpu().numpy()  # noqa: E731
        self.n_iter_, self.lower_bound_, self.lower_bounds_ = len(lbs), lbs[-1], lbs
        self.weight_concentration_ = (as_np(params.alpha), as_np(params.beta))
        self.mean_precision_, self.degrees_of_freedom_ = as_np(params.mean_precision), as_np(params.dof)
        self.means_ = as_np(params.means + self._shift)
        self.covariances_, self.precisions_cholesky_ = as_np(params.covariances), as_np(params.prec_chol)
        self.precisions_ = self.precisions_cholesky_ @ np.swapaxes(self.precisions_cholesky_, 1, 2)
        self.mean_prior_, self.covariance_prior_ = as_np(self._shift), as_np(prior.covariance)
        self.weight_concentration_prior_ = prior.weight_concentration
        self.degrees_of_freedom_prior_, self.mean_precision_prior_ = prior.degrees_of_freedom, 1.0
        a, b = self.weight_concentration_
        # Expected stick-breaking weights, normalised over all K components (sklearn ``weights_``).
        w = a / (a + b) * np.hstack([1.0, np.cumprod(b / (a + b))[:-1]])
        self.weights_ = w / w.sum()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(n,) index of each row's most probable component (sklearn ``predict``), in blocks of rows."""
        w, c = _log_prob_terms(self._params)
        x = torch.as_tensor(np.asarray(X, dtype=np.float64), device=self._shift.device)
        step = max(self._chunk, 16_384)
        with limit_threads(self.threads):
            labels = [torch.addmm(c, _features(x[s:s + step] - self._shift), w, alpha=-0.5).argmax(1)
                      for s in range(0, x.shape[0], step)]
        return torch.cat(labels).cpu().numpy() if labels else np.zeros(0, dtype=np.int64)
