"""One tie-break everywhere: the most common label first, a tie going to the smallest label (as the vote rules
in defuse.label.verdicts break theirs), so Explore and Label never name the same scenario differently."""

from __future__ import annotations

import numpy as np


def top_counts(counts: np.ndarray, k: int = 2) -> str:
    """'3 (60%), 5 (40%)': the ``k`` most common labels of a count vector, ties to the smallest label."""
    counts = np.asarray(counts)
    total = max(1, int(counts.sum()))
    order = np.argsort(-counts, kind="stable")[:k]
    return ", ".join(f"{c} ({counts[c] / total:.0%})" for c in order if counts[c] > 0) or "–"


def top_pairs(assignment: np.ndarray, true: np.ndarray, pred: np.ndarray, n_scenarios: int,
              n_classes: int) -> list[tuple[int, int] | None]:
    """Per scenario, its most common (source label, classifier's label) pair among its failures — a real
    failure pair, never "3→3" as separate majorities can give; ties to the smallest pair. None when empty."""
    a = np.asarray(assignment)
    keep = (a >= 0) & (a < n_scenarios)
    key = a[keep].astype(np.int64) * n_classes ** 2 + np.asarray(true)[keep] * n_classes + np.asarray(pred)[keep]
    counts = np.bincount(key, minlength=n_scenarios * n_classes ** 2).reshape(n_scenarios, n_classes ** 2)
    best = counts.argmax(1)  # argmax returns the first maximum: the smallest pair on ties
    return [divmod(int(b), n_classes) if counts[j, b] > 0 else None for j, b in enumerate(best)]
