"""Several checkpoints side by side on a regression suite: accuracy per scenario and on the test set, flips.

Pure numpy over predictions (the app's Compare page draws these; :mod:`defuse.suite.check` scores one model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .check import count_flips
from .regression_suite import RegressionSuite

TEST_ROW = "test set"
MEAN_ROW = "mean over scenarios"


@dataclass(frozen=True)
class ModelOutputs:
    """One checkpoint's labels and confidences on a suite's scenario samples and on a test split."""

    predictions: np.ndarray                  # (n,) int64 on the suite's samples
    confidence: np.ndarray                   # (n,) float32
    test_predictions: Optional[np.ndarray] = None  # (n_test,) int64
    test_confidence: Optional[np.ndarray] = None   # (n_test,) float32


def accuracy_rows(suite: RegressionSuite, outputs: Mapping[str, ModelOutputs],
                  test_labels: Optional[np.ndarray] = None) -> list[dict]:
    """One row per scenario (then the mean, then the test set): ``scenario``, ``label``, ``n`` and each model's
    accuracy under its name."""
    rows = []
    for s in suite.scenarios:
        m = suite.scenario_ids == s.id
        rows.append({"scenario": f"#{s.id}", "label": s.label, "n": int(m.sum()),
                     **{name: float(np.mean(o.predictions[m] == suite.labels[m])) for name, o in outputs.items()}})
    rows.append({"scenario": MEAN_ROW, "label": None, "n": len(suite),
                 **{name: float(np.mean([r[name] for r in rows])) for name in outputs}})
    if test_labels is not None and all(o.test_predictions is not None for o in outputs.values()):
        rows.append({"scenario": TEST_ROW, "label": None, "n": len(test_labels),
                     **{name: float(np.mean(o.test_predictions == test_labels)) for name, o in outputs.items()}})
    return rows


def flip_matrix(labels: np.ndarray, predictions: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """Negative flips between every pair: entry [a, b] counts samples model ``a`` gets right and ``b`` wrong.

    Reading along a row: what each other model loses of ``a``'s right answers; entry [b, a] is then the
    positive flips of ``b`` over ``a``. Returns the names and an (m, m) int64 matrix with a zero diagonal.
    """
    names = list(predictions)
    out = np.zeros((len(names), len(names)), np.int64)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            out[i, j] = count_flips(labels, predictions[a], predictions[b])[0]
    return names, out


def flip_indices(labels: np.ndarray, baseline: np.ndarray, candidate: np.ndarray,
                 confidence: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """(negative, positive) flip rows of the candidate vs the baseline; with ``confidence``, most confident first."""
    base_ok, cand_ok = baseline == labels, candidate == labels
    neg, pos = np.flatnonzero(base_ok & ~cand_ok), np.flatnonzero(~base_ok & cand_ok)
    if confidence is not None:
        neg, pos = (rows[np.argsort(-confidence[rows], kind="stable")] for rows in (neg, pos))
    return neg, pos
