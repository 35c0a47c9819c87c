"""Scoring a model of the λ sweep, and what the sweep reads: D, the evaluation splits, the failure sets, D_f.

(Not the independent judge, which grades a whole project: that is :mod:`defuse.evaluation`.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch

from ..data.datasets import ImageData
from .config import CorrectConfig
from .failure_sets import stack_failure_sets, stack_reviewer_labels


@dataclass
class SweepInputs:
    """Everything the sweep reads, built once per sweep (tensors stay on the CPU; batches move)."""

    train: tuple          # (images, labels): D
    evals: dict           # name -> (images, labels): train subset, val, test
    failure: dict         # "val"/"test" -> (images, scenario labels, scenario ids, reviewer labels)
    d_f: dict             # kind -> (images, labels): D_f for "defuse", the raw UAEs for "baseline"
    # the original classifier's labels on the failure-validation samples: with the reviewer's clear readings
    # they give each model's fix rate and collateral there (the "two_sided" λ choice); None: not measured
    failure_val_before: Optional[torch.Tensor] = None


def _two_sided_val(pred: torch.Tensor, inp: SweepInputs) -> dict:
    """Fix rate and collateral (K models) on failure validation, read by the reviewer's clear labels: of the
    samples read clearly as the scenario's label that the original got wrong, the share now read so; of those
    the original got right, the share now wrong (defuse.correct.two_sided, on the validation side)."""
    _, scenario, _, clear = inp.failure["val"]
    before = inp.failure_val_before
    real = (clear == scenario) & (before != clear) & (clear >= 0)
    right = (before == clear) & (clear >= 0)
    right_now = pred == clear
    fix = right_now[:, real].float().mean(1).tolist() if real.any() else [None] * len(pred)
    collateral = (~right_now[:, right]).float().mean(1).tolist() if right.any() else [None] * len(pred)
    return {"failure_val_fix_rate": fix, "failure_val_collateral": collateral,
            "n_failure_val_real": [int(real.sum())] * len(pred),
            "n_failure_val_right_before": [int(right.sum())] * len(pred)}


@torch.no_grad()
def predict_labels(logits_fn, images: torch.Tensor, dev: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """Predicted labels (K, N) for images (N, C, H, W), moved to ``dev`` one batch at a time."""
    return torch.cat([logits_fn(images[i:i + batch_size].to(dev)).argmax(-1).cpu()
                      for i in range(0, len(images), batch_size)], dim=1)


def _accuracy(pred: torch.Tensor, labels: torch.Tensor) -> list:
    """pred (K, N), labels (N,) -> K accuracies; None when there are no labels."""
    if len(labels) == 0:
        return [None] * pred.shape[0]
    return (pred == labels).float().mean(1).tolist()


def evaluate(logits_fn, inp: SweepInputs, dev: torch.device) -> list[dict]:
    """One metrics dict per model of ``logits_fn``."""
    cols = {f"{name}_acc": _accuracy(predict_labels(logits_fn, x, dev), y) for name, (x, y) in inp.evals.items()}
    per_scenario = {}
    for split in ("val", "test"):
        x, y, ids, rev = inp.failure[split]
        pred = predict_labels(logits_fn, x, dev)
        cols[f"failure_{split}_acc"] = _accuracy(pred, y)
        cols[f"failure_{split}_acc_reviewer"] = _accuracy(pred[:, rev >= 0], rev[rev >= 0])
        if split == "val" and inp.failure_val_before is not None:
            cols.update(_two_sided_val(pred, inp))
        if split == "test":
            per_scenario = {str(int(s)): _accuracy(pred[:, ids == s], y[ids == s]) for s in ids.unique()}
    n = len(cols["val_acc"])
    rows = [{key: values[k] for key, values in cols.items()} for k in range(n)]
    for k, row in enumerate(rows):
        row["failure_test_acc_per_scenario"] = {s: acc[k] for s, acc in per_scenario.items()}
    return rows


def build_inputs(data: ImageData, failure_sets, baseline, cfg: CorrectConfig) -> SweepInputs:
    gen = torch.Generator().manual_seed(cfg.seed)
    sub = torch.randperm(len(data.train), generator=gen)[:cfg.train_eval_size].sort().values
    evals = {"train": (data.train.images[sub], data.train.labels[sub]), "val": (data.val.images, data.val.labels),
             "test": (data.test.images, data.test.labels)}
    failure = {split: (*stack_failure_sets(failure_sets, split), stack_reviewer_labels(failure_sets, split))
               for split in ("val", "test")}
    if cfg.failure_labels == "scenario":  # the paper's D_f: per-sample labels, if any, are not used
        failure_sets = [replace(s, finetune_labels=None) for s in failure_sets]
    d_f = {"defuse": stack_failure_sets(failure_sets, "finetune")[:2]}
    if baseline is not None:
        d_f["baseline"] = (baseline[0].float(), torch.as_tensor(baseline[1]).long())
    return SweepInputs((data.train.images, data.train.labels), evals, failure, d_f)
