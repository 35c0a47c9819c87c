"""Choosing λ from a sweep's rows: the paper's rule and the project's tolerance rule with noise-aware ties."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from ..runtime.words import named, option
from .config import CorrectConfig

# the accuracy that keeps an epoch per λ (CorrectConfig.per_lambda_epoch_choice)
EPOCH_METRICS = {"val": "val_acc", "failure_val": "failure_val_acc", "train": "train_acc"}


def within_noise(best: float, other: float, n: Optional[int], standard_errors: float) -> bool:
    """Whether two accuracies measured on the same ``n`` samples differ by at most ``standard_errors``
    standard errors of their difference (two-proportion test, pooled and Laplace-smoothed so that
    0/n against 2/n errors still counts as noise)."""
    if not n or standard_errors <= 0:
        return other >= best - 1e-12
    pooled = ((best + other) * n + 1) / (2 * n + 2)
    return best - other <= standard_errors * math.sqrt(pooled * (1 - pooled) * 2 / n) + 1e-12


def _select_tolerance(rows, ref, rule, tied):
    ok = [r for r in rows if r["val_acc"] >= ref - rule.tolerance - 1e-12]
    if not ok:  # only possible without a control row: keep the least harmful λ, and say so
        return max(rows, key=lambda r: (r["val_acc"], -r["lambda"])), False
    key = rule.failure_key
    top = max(r[key] for r in ok)
    # failure accuracies within noise of the best are ties: then the better validation accuracy wins
    ties = [r for r in ok if tied(top, r[key])]
    return max(ties, key=lambda r: (r["val_acc"], r[key], -r["lambda"])), True


def _select_paper(rows, ref, rule, tied):
    pool = [r for r in rows if r["lambda"] > 0] or rows  # the paper swept λ > 0 only
    best = max(pool, key=lambda r: (r["val_acc"], -r["lambda"]))
    return best, best["val_acc"] >= ref - rule.tolerance - 1e-12


def _select_two_sided(rows, ref, rule, tied):
    """Fixes apart from damage (issue #21): among the λ within ``tolerance`` on validation accuracy whose
    collateral on failure validation stays within ``collateral_margin`` of the control's, the best fix rate
    there; ties (within noise on the real failures) go to the lower collateral, then the smaller λ. The
    netted failure accuracy rewarded a λ that taught a scenario's region one label, other classes included."""
    limit = (rule.reference_collateral or 0.0) + rule.collateral_margin + 1e-12
    ok = [r for r in rows if r["val_acc"] >= ref - rule.tolerance - 1e-12 and (r["failure_val_collateral"] or 0.0)
          <= limit]
    if not ok:  # without a control row nothing may qualify: the least damaging λ, said so
        return min(rows, key=lambda r: ((r["failure_val_collateral"] or 0.0), -r["val_acc"], r["lambda"])), False
    top = max(r["failure_val_fix_rate"] or 0.0 for r in ok)
    ties = [r for r in ok if tied(top, r["failure_val_fix_rate"] or 0.0)]
    return min(ties, key=lambda r: ((r["failure_val_collateral"] or 0.0), -r["val_acc"], r["lambda"])), True


SELECTIONS = {"tolerance": _select_tolerance, "paper": _select_paper, "two_sided": _select_two_sided}


@dataclass(frozen=True)
class SelectionRule:
    """How :func:`select_lambda` picks λ.

    "tolerance": among the λ whose val_acc stays within ``tolerance`` of the reference (the λ=0
    control's val_acc unless ``reference_val_acc`` is given), the highest failure accuracy
    (``failure_key``); ties go to the better val_acc, then the smaller λ. With
    ``tie_standard_errors`` > 0 and ``n_failure_val`` samples, failure accuracies within that many
    standard errors of the best are tied too. If none qualifies, the highest val_acc
    (``within_tolerance`` False).
    "paper": the highest val_acc among λ > 0 (§4.1); ties go to the smaller λ.
    "two_sided": among the λ within ``tolerance`` whose ``failure_val_collateral`` is at most
    ``reference_collateral`` (the control's) + ``collateral_margin``, the best ``failure_val_fix_rate``
    (ties within ``tie_standard_errors`` on ``n_failure_val`` real failures: lower collateral, smaller λ).
    """

    name: str = "tolerance"
    tolerance: float = 0.005
    reference_val_acc: Optional[float] = None
    failure_key: str = "failure_val_acc"
    n_failure_val: Optional[int] = None
    tie_standard_errors: float = 0.0
    reference_collateral: Optional[float] = None
    collateral_margin: float = 0.01

    def __post_init__(self):
        if self.name not in SELECTIONS:
            raise ValueError(f"rule must be one of {sorted(SELECTIONS)}, got {self.name!r}")


def select_lambda(rows: list[dict], rule: SelectionRule = SelectionRule()) -> dict:
    """Pick one λ from the kept row of each λ (dicts with lambda, val_acc, failure_val_acc) by ``rule``.

    Returns a copy of the chosen row plus ``rule`` (its name) and ``within_tolerance``.
    """
    if not rows:
        raise ValueError("rows is empty: there is no λ to select from")
    reference_val_acc, failure_key = rule.reference_val_acc, rule.failure_key
    if reference_val_acc is None:
        control = [r for r in rows if r["lambda"] == 0]
        if not control:
            raise ValueError("no λ=0 control row among rows; pass reference_val_acc")
        reference_val_acc = control[0]["val_acc"]
    if rule.name == "tolerance" and any(r.get(failure_key) is None for r in rows):
        raise ValueError(f"rows lack {failure_key!r} (no labeled failure validation samples): nothing to choose "
                         "λ on; label them, or choose on the scenario labels (failure_val_acc)")
    # measured (even when no sample is a real failure: then every fix rate is None and the least damage wins)
    if rule.name == "two_sided" and any("failure_val_collateral" not in r for r in rows):
        raise ValueError("the two-sided λ choice needs the reviewer's clear readings of the failure-validation "
                         f"samples: correct with {option('reviewer-auto')}, or choose λ by "
                         f"{named(CorrectConfig, 'selection')} tolerance")
    best, ok = SELECTIONS[rule.name](rows, reference_val_acc, rule,
                                     lambda best, acc: within_noise(best, acc, rule.n_failure_val,
                                                                    rule.tie_standard_errors))
    return {**best, "rule": rule.name, "within_tolerance": bool(ok)}


def failure_measure(cfg: CorrectConfig) -> str:
    """The failure-validation column that picks λ (and, with "failure_val", the epoch)."""
    return "failure_val_acc_reviewer" if cfg.failure_labels == "reviewer" else "failure_val_acc"


def epoch_metric(cfg: CorrectConfig) -> str:
    choice = cfg.per_lambda_epoch_choice
    return failure_measure(cfg) if choice == "failure_val" else EPOCH_METRICS[choice]
