"""Check a classifier against a regression suite: per-scenario accuracy, test accuracy, flips, thresholds.

Needs no workspace, VAE or GPU: the suite holds the images; a check is one batched forward pass.
A *negative flip* is a sample the baseline labels right and the checked model wrong; a *positive
flip* the reverse (negative-flip tracking between model versions, as in model-update regression work).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple, Optional

import numpy as np
from torch import nn

from ..runtime.words import option
from .regression_suite import RegressionSuite, predict

LABEL_MODES = {
    "scenario": "each sample's scenario label (the annotators' majority)",
    "sample": "the automatic reviewer's own label of each sample (samples it did not label are left out)",
}


@dataclass(frozen=True)
class Thresholds:
    min_accuracy: Optional[float] = None       # every scenario's accuracy must reach this
    min_test_accuracy: Optional[float] = None  # the test split's accuracy must reach this
    max_negative_flips: Optional[int] = None   # at most this many negative flips vs the baseline

    def __post_init__(self):
        for name in ("min_accuracy", "min_test_accuracy"):
            v = getattr(self, name)
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be a share in [0, 1] (e.g. 0.9); got {v!r}")
        if self.max_negative_flips is not None and self.max_negative_flips < 0:
            raise ValueError(f"max-negative-flips must be >= 0; got {self.max_negative_flips!r}")


@dataclass(frozen=True)
class ScenarioCheck:
    id: int
    label: int
    n: int                              # samples scored (with labels in the chosen mode)
    accuracy: float
    original_accuracy: float            # the suite's original classifier on the same samples
    baseline_accuracy: Optional[float] = None
    negative_flips: Optional[int] = None
    positive_flips: Optional[int] = None


@dataclass(frozen=True)
class CheckResult:
    scenarios: tuple[ScenarioCheck, ...]
    mean_scenario_accuracy: float
    test_accuracy: Optional[float]
    baseline_test_accuracy: Optional[float]
    negative_flips: Optional[int]       # over every scenario sample and test image; None without a baseline
    positive_flips: Optional[int]
    labels: str
    failures: tuple[str, ...]           # one message per missed threshold, naming the scenario
    passed: bool

    def to_dict(self) -> dict:
        return asdict(self) | {"scenarios": [asdict(s) for s in self.scenarios], "failures": list(self.failures)}


def count_flips(labels: np.ndarray, baseline: np.ndarray, model: np.ndarray) -> tuple[int, int]:
    """(negative flips, positive flips): baseline right and model wrong, and the reverse."""
    base_ok, model_ok = baseline == labels, model == labels
    return int(np.sum(base_ok & ~model_ok)), int(np.sum(~base_ok & model_ok))


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(pred == labels)) if len(labels) else float("nan")


def _scored_labels(suite: RegressionSuite, labels: str) -> np.ndarray:
    if labels not in LABEL_MODES:
        raise ValueError(f"labels must be one of {sorted(LABEL_MODES)}; got {labels!r}")
    if labels == "sample":
        if not (suite.sample_labels >= 0).any():
            raise ValueError("this suite has no per-sample labels (no automatic reviewer labelled it): "
                             f"check with {option('labels')} scenario")
        return suite.sample_labels
    return suite.labels


class SuitePredictions(NamedTuple):
    """One model's labels on a suite."""

    samples: np.ndarray                  # (n,) int64: on the suite's scenario samples
    test: Optional[np.ndarray] = None    # (n_test,) int64: on its test split, where it has one


def check_predictions(suite: RegressionSuite, model: SuitePredictions, *,
                      baseline: Optional[SuitePredictions] = None, labels: str = "scenario",
                      thresholds: Thresholds = Thresholds()) -> CheckResult:
    """Score a model's labels on the suite's samples (and on its test split); ``baseline``: another
    model's labels, for flips."""
    predictions, test_predictions = model
    baseline, baseline_test = baseline if baseline is not None else (None, None)
    truth = _scored_labels(suite, labels)
    if np.shape(predictions) != (len(suite),) or (baseline is not None and np.shape(baseline) != (len(suite),)):
        raise ValueError(f"predictions must be one label per suite sample ({len(suite)})")
    rows = []
    for s in suite.scenarios:
        m = (suite.scenario_ids == s.id) & (truth >= 0)
        flips = count_flips(truth[m], baseline[m], predictions[m]) if baseline is not None else (None, None)
        rows.append(ScenarioCheck(id=s.id, label=s.label, n=int(m.sum()), accuracy=_accuracy(predictions[m], truth[m]),
                                  original_accuracy=_accuracy(suite.original_predictions[m], truth[m]),
                                  baseline_accuracy=None if baseline is None else _accuracy(baseline[m], truth[m]),
                                  negative_flips=flips[0], positive_flips=flips[1]))
    test_acc = base_test_acc = None
    neg = pos = None
    if baseline is not None:
        neg, pos = (sum(getattr(r, f) for r in rows) for f in ("negative_flips", "positive_flips"))
    if suite.has_test and test_predictions is not None:
        test_acc = _accuracy(test_predictions, suite.test_labels)
        if baseline_test is not None:
            base_test_acc = _accuracy(baseline_test, suite.test_labels)
            tn, tp = count_flips(suite.test_labels, baseline_test, test_predictions)
            neg, pos = neg + tn, pos + tp
    failures = _missed(rows, test_acc, neg, thresholds)
    return CheckResult(scenarios=tuple(rows), mean_scenario_accuracy=float(np.nanmean([r.accuracy for r in rows])),
                       test_accuracy=test_acc, baseline_test_accuracy=base_test_acc, negative_flips=neg,
                       positive_flips=pos, labels=labels, failures=tuple(failures), passed=not failures)


def _missed(rows: list, test_acc: Optional[float], neg: Optional[int], t: Thresholds) -> list[str]:
    missed = []
    if t.min_accuracy is not None:
        missed += [f"scenario #{r.id} (label {r.label}): accuracy {r.accuracy:.1%} < {t.min_accuracy:.1%}"
                   for r in rows if not r.accuracy >= t.min_accuracy]
    if t.min_test_accuracy is not None:
        if test_acc is None:
            missed.append(f"{option('min-test-accuracy')} was given but the suite carries no test split "
                          "(make it with `defuse suite --with-test`)")
        elif test_acc < t.min_test_accuracy:
            missed.append(f"test accuracy {test_acc:.1%} < {t.min_test_accuracy:.1%}")
    if t.max_negative_flips is not None:
        if neg is None:
            missed.append(f"{option('max-negative-flips')} was given without a {option('baseline')} to compare "
                          "with")
        elif neg > t.max_negative_flips:
            missed.append(f"{neg} negative flips > {t.max_negative_flips} allowed")
    return missed


def check_model(suite: RegressionSuite, model: nn.Module, *, baseline: nn.Module | str | None = None,
                labels: str = "scenario", thresholds: Thresholds = Thresholds(), batch_size: int = 1024,
                device="cpu") -> CheckResult:
    """Run ``model`` (and ``baseline``: a model, or "original" for the suite's stored labels) on the suite."""
    def run(m) -> SuitePredictions:
        kw = dict(batch_size=batch_size, device=device, num_classes=suite.num_classes)
        pred = predict(m, suite.images, **kw)[0]
        test = predict(m, suite.test_images, **kw)[0] if suite.has_test else None
        return SuitePredictions(pred, test)

    base = None
    if isinstance(baseline, str):
        if baseline != "original":
            raise ValueError(f"baseline must be a model or 'original'; got {baseline!r}")
        base = SuitePredictions(suite.original_predictions, suite.test_original_predictions)
    elif baseline is not None:
        base = run(baseline)
    return check_predictions(suite, run(model), baseline=base, labels=labels, thresholds=thresholds)

