"""Scenarios of one confusion each (source class → the classifier's label).

The paper fits one mixture over every UAE's code; a component then often spans two confusions (sixes
read as 0 next to sixes read as 5), and its samples carry the scenario's label only part of the time
(measured at τ=0.5 on the MNIST test set: 53%). Here the paper's mixture is fitted as it is, then each
component is split by confusion: a scenario is the UAEs of one component *and* one confusion, its Gaussian
their mean and covariance. The covariance is shrunk towards the component's, with a weight of ``k + 2``
pseudo-codes, so a scenario of few codes borrows the shape of its region rather than collapsing to a point.
Its weight is its share of the UAEs, so the weight threshold ε means what it means for the paper's
mixture: the share of the UAEs a scenario stands for.

(Fitting a separate mixture per confusion was tried first: the variational Dirichlet-process fit, started
from k-means with K components inside a single Gaussian cloud, split one cloud into four to five
components and did not converge in 100 iterations, where the one mixture over three clouds found three.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class JoinedMixture:
    """Scenarios of one confusion each, in the attributes :func:`defuse.distill.scenarios._select` reads."""

    weights_: np.ndarray      # (K',): each (component, confusion)'s share of the UAEs
    means_: np.ndarray        # (K', k)
    covariances_: np.ndarray  # (K', k, k)
    converged_: bool          # as the paper's mixture
    n_iter_: int
    lower_bound_: float


def split_by_confusion(model, components: np.ndarray, codes: np.ndarray, true: np.ndarray, pred: np.ndarray,
                       reg_covar: float) -> tuple[JoinedMixture, np.ndarray]:
    """Split every component of the fitted ``model`` by confusion.

    Parameters
    ----------
    model : the fitted mixture (``means_`` (K, k), ``covariances_`` (K, k, k), ``converged_``, ...).
    components : (n,) every failure's component in ``model``.
    codes : (n, k) the failures' codes; true, pred : (n,) their source class and the classifier's label.

    Returns
    -------
    The split mixture, and every failure's row in it (n,).
    """
    k = codes.shape[1]
    key = (components.astype(np.int64) * (int(max(true.max(), pred.max())) + 1) + true) \
        * (int(max(true.max(), pred.max())) + 1) + pred
    keys, rows_of, counts = np.unique(key, return_inverse=True, return_counts=True)
    prior = k + 2.0  # pseudo-codes of the component's own covariance
    weights, means, covs = [], [], []
    for i in range(len(keys)):
        rows = np.flatnonzero(rows_of == i)
        x = codes[rows].astype(np.float64)
        mean = x.mean(0)
        scatter = (x - mean).T @ (x - mean)
        parent = np.asarray(model.covariances_[int(components[rows[0]])], dtype=np.float64)
        covs.append((scatter + prior * parent) / (len(rows) + prior) + reg_covar * np.eye(k))
        means.append(mean)
        weights.append(counts[i] / len(codes))
    joined = JoinedMixture(np.asarray(weights), np.asarray(means).reshape(-1, k), np.asarray(covs).reshape(-1, k, k),
                           bool(model.converged_), int(model.n_iter_), float(model.lower_bound_))
    return joined, rows_of.astype(np.int64)
