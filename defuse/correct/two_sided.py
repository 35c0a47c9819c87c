"""Correction graded two-sided: fixes of real failures apart from damage to what was right (issue #21).

A single per-sample accuracy on a scenario's failure-test samples adds two things into one number: the
samples that really are failures (a grader reads them clearly as the scenario's label and the original
classifier got them wrong), which a good fix turns right, and the samples the original already got right,
which a careless fix turns wrong. A model that learns "this region is label y" gains on the first and
loses on the second, and the netted accuracy cannot tell a good fix from a bad one. So:

- **clear**: the grader's confidence (its top softmax probability) is at least ``threshold``; the rest
  are counted as *unclear* and never graded (on boundary decodes two strong readers disagree, so a
  figure on them measures the readers, not the model);
- **fix rate**: of the clear samples the grader reads as the scenario's label and the original classifier
  gets wrong (the *real failures*), the share the model now reads as the grader does;
- **collateral**: of the clear samples the original classifier got right (it agreed with the grader),
  the share the model now gets wrong.

The grader must have labelled nothing the model learnt from: the independent judge in the benchmarks
(:mod:`defuse.evaluation.judge`), a reviewer member that voted on no sample in the app
(:class:`defuse.label.reviewer.Reviewer` ``grader``). Plain arithmetic over arrays, checkable by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

DEFAULT_THRESHOLD = 0.9  # the grader's top probability at which a sample counts as read clearly


@dataclass(frozen=True)
class GradedSamples:
    """A grader's reading of failure-test samples, and what the original classifier said of them."""

    grader_labels: np.ndarray     # (n,) int64: the grader's label
    grader_confidence: np.ndarray  # (n,) float: its top softmax probability
    scenario_labels: np.ndarray   # (n,) int64: the label of the scenario each sample was drawn from
    before: np.ndarray            # (n,) int64: the original classifier's label
    scenario_ids: np.ndarray      # (n,) int64: the scenario each sample was drawn from
    threshold: float = DEFAULT_THRESHOLD

    def __post_init__(self):
        n = len(np.asarray(self.grader_labels))
        for name in ("grader_labels", "grader_confidence", "scenario_labels", "before", "scenario_ids"):
            a = np.asarray(getattr(self, name))
            if a.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},) like grader_labels; got {a.shape}")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1:
            raise ValueError(f"threshold must be a probability in [0, 1]; got {t!r}")

    @property
    def clear(self) -> np.ndarray:
        return np.asarray(self.grader_confidence) >= self.threshold

    @property
    def real_failures(self) -> np.ndarray:
        """(n,) bool: read clearly as the scenario's label, and the original classifier disagreed."""
        g = np.asarray(self.grader_labels)
        return self.clear & (g == np.asarray(self.scenario_labels)) & (np.asarray(self.before) != g)

    @property
    def right_before(self) -> np.ndarray:
        """(n,) bool: read clearly, and the original classifier agreed with the grader."""
        return self.clear & (np.asarray(self.before) == np.asarray(self.grader_labels))


def _share(hits: np.ndarray, of: np.ndarray) -> float | None:
    return float(hits[of].mean()) if of.any() else None


def rates(graded: GradedSamples, predictions: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """{"fix_rate", "collateral"} of one model's ``predictions`` (n,) on ``graded`` (restricted to ``mask``);
    None where there is nothing to grade (no real failure, or nothing right before)."""
    pred, g = np.asarray(predictions), np.asarray(graded.grader_labels)
    if pred.shape != g.shape:
        raise ValueError(f"predictions must have shape {g.shape}; got {pred.shape}")
    keep = np.ones(len(g), bool) if mask is None else mask
    right = pred == g
    return {"fix_rate": _share(right, graded.real_failures & keep),
            "collateral": _share(~right, graded.right_before & keep)}


def _counts(graded: GradedSamples, mask: np.ndarray) -> dict:
    return {"n_test": int(mask.sum()), "n_unclear": int((~graded.clear & mask).sum()),
            "n_real_failures": int((graded.real_failures & mask).sum()),
            "n_right_before": int((graded.right_before & mask).sum()),
            "n_other_misread": int((graded.clear & mask & ~graded.real_failures & ~graded.right_before).sum())}


def two_sided(graded: GradedSamples, predictions: Mapping[str, np.ndarray | None], *, grader: str) -> dict:
    """Fix rate and collateral of each model, overall and per scenario (the shape the app, the report, the
    model card and the benchmarks read).

    Parameters
    ----------
    predictions : {"before" | "control" | "chosen" | "baseline" | ...: (n,) labels, or None for a model
        that does not exist (its rates are then None)}.
    grader : who graded, in words (shown beside the figures).
    """
    everything = np.ones(len(np.asarray(graded.grader_labels)), bool)

    def models(mask):
        return {name: ({"fix_rate": None, "collateral": None} if p is None else rates(graded, p, mask))
                for name, p in predictions.items()}

    ids = np.asarray(graded.scenario_ids)
    per = [{"scenario_id": int(j), **_counts(graded, ids == j), "models": models(ids == j)}
           for j in sorted(set(ids.tolist()))]
    return {"grader": grader, "threshold": float(graded.threshold), **_counts(graded, everything),
            "models": models(everything), "per_scenario": per}


def fmt_share(value) -> str:
    """"93.8%", or "–" where nothing was graded."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def two_sided_words(t: dict | None, lam=None) -> str | None:
    """One sentence for people: Defuse's fix rate and collateral against the λ=0 control and the UAE-only
    baseline, saying plainly where it ties or loses; None without a grade."""
    if not t or t.get("models", {}).get("chosen", {}).get("fix_rate") is None:
        return None
    m, n = t["models"], t["n_real_failures"]
    mine = m["chosen"]
    head = (f"Of {n} real failures among the failure-test samples (read clearly by {t['grader']}), "
            f"the corrected model{'' if lam is None else f' (λ={lam:g})'} fixes {fmt_share(mine['fix_rate'])} "
            f"and breaks {fmt_share(mine['collateral'])} of the {t['n_right_before']} it already got right")
    rivals = []
    for key, words in (("control", "the λ=0 control"), ("baseline", "the UAE-only baseline")):
        r = m.get(key) or {}
        if r.get("fix_rate") is None:
            continue
        verdict = _compare(mine, r)
        rivals.append(f"{words} fixes {fmt_share(r['fix_rate'])}, breaks {fmt_share(r['collateral'])}: {verdict}")
    unclear = f" {t['n_unclear']} unclear samples were not graded." if t.get("n_unclear") else ""
    return head + (" — " + "; ".join(rivals) if rivals else "") + "." + unclear


def _compare(mine: dict, rival: dict) -> str:
    """"Defuse is better" / "a tie" / "Defuse is worse", on fixes first, then on damage (2 points either way)."""
    fix = (mine["fix_rate"] or 0) - (rival["fix_rate"] or 0)
    harm = (mine["collateral"] or 0) - (rival["collateral"] or 0)
    if fix > 0.02 and harm <= 0.01:
        return "Defuse is better"
    if fix < -0.02 or harm > 0.02:
        return "Defuse is worse"
    return "a tie"
