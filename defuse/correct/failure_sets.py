"""The samples of each confirmed failure scenario that correction trains, selects and tests on (§4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

SPLITS = ("finetune", "val", "test")


@dataclass
class FailureSet:
    """Samples of one failure scenario (judged a failure by the annotators) for correction.

    The paper samples 256 images per split from the scenario and labels all of them with the
    scenario's label (§4.1); the caller draws them, this class holds them. Images are
    (n, C, H, W) float in [0, 1]. Reviewer labels, when given, are per-sample labels (-1: not
    reviewed) for the val/test samples: a stricter measure than the single scenario label.
    """

    scenario_id: int
    label: int
    finetune: torch.Tensor                       # (n_f, C, H, W): this scenario's part of D_f
    val: torch.Tensor                            # (n_v, C, H, W): selects the epoch / λ
    test: torch.Tensor                           # (n_t, C, H, W): held out, reported only
    val_reviewer: Optional[torch.Tensor] = None  # (n_v,) int64, -1 = not reviewed
    test_reviewer: Optional[torch.Tensor] = None  # (n_t,) int64, -1 = not reviewed
    # Per-sample labels for D_f (CorrectConfig.failure_labels="reviewer"); None: every sample gets ``label``
    finetune_labels: Optional[torch.Tensor] = None  # (n_f,) int64
    # what the reviewers' agreement filter kept and dropped (defuse.steps.correct.agreed_splits); None: unfiltered
    agreed: Optional[dict] = None

    def __post_init__(self):
        for split in SPLITS:
            x = getattr(self, split)
            if not isinstance(x, torch.Tensor) or x.ndim != 4 or len(x) == 0 or not x.is_floating_point():
                raise ValueError(f"FailureSet {self.scenario_id}: {split} must be non-empty (n, C, H, W) floats "
                                 f"in [0, 1]; got {getattr(x, 'shape', type(x).__name__)}")
        for split in ("val", "test"):
            rev = getattr(self, f"{split}_reviewer")
            if rev is not None and tuple(rev.shape) != (len(getattr(self, split)),):
                raise ValueError(f"FailureSet {self.scenario_id}: {split}_reviewer must have shape "
                                 f"({len(getattr(self, split))},); got {tuple(rev.shape)}")
        own = self.finetune_labels
        if own is not None and (tuple(own.shape) != (len(self.finetune),) or bool((own < 0).any())):
            raise ValueError(f"FailureSet {self.scenario_id}: finetune_labels must be {len(self.finetune)} class "
                             f"indices >= 0; got shape {tuple(own.shape)}")

    def summary(self) -> dict:
        """JSON-ready sizes for reports and model cards."""
        reviewed = sum(int((r >= 0).sum()) for r in (self.val_reviewer, self.test_reviewer) if r is not None)
        own = self.finetune_labels
        agree = None if own is None else float((own == int(self.label)).float().mean())
        return {"scenario_id": int(self.scenario_id), "label": int(self.label), "n_finetune": len(self.finetune),
                "finetune_labels": "scenario" if own is None else "per-sample",
                "finetune_share_scenario_label": agree,
                "n_val": len(self.val), "n_test": len(self.test), "n_reviewed": reviewed,
                "agreed": dict(self.agreed) if self.agreed else None}


def stack_failure_sets(sets: list[FailureSet], split: str = "finetune"):
    """One split of every failure set, concatenated.

    Returns ``images`` (n, C, H, W), ``labels`` (n,) int64 (each sample's scenario label, or for
    "finetune" its own label where the set has ``finetune_labels``) and
    ``scenario_ids`` (n,) int64.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    images = torch.cat([getattr(s, split) for s in sets]).float()
    sizes = [len(getattr(s, split)) for s in sets]
    own = [s.finetune_labels if split == "finetune" else None for s in sets]
    labels = torch.cat([torch.full((n,), int(s.label), dtype=torch.int64) if o is None else o.long()
                        for s, n, o in zip(sets, sizes, own, strict=True)])
    ids = torch.cat([torch.full((n,), int(s.scenario_id), dtype=torch.int64) for s, n in zip(sets, sizes, strict=True)])
    return images, labels, ids


def stack_reviewer_labels(sets: list[FailureSet], split: str) -> torch.Tensor:
    parts = [getattr(s, f"{split}_reviewer") for s in sets]
    return torch.cat([torch.full((len(getattr(s, split)),), -1, dtype=torch.int64) if r is None else r.long()
                      for s, r in zip(sets, parts, strict=True)])
