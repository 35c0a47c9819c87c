"""Ending a β-VAE's training early, once its validation fidelity passes the gate and stops improving.

Apart from :mod:`defuse.nets.vae_recipe` (the recipe and the gate, which :mod:`defuse.nets.train` reads) so
that no import circle joins the trainer and the stop it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..data.datasets import ImageData
from .architectures import latent_means
from .config import FIDELITY_MAX_GAP
from .train import evaluate_accuracy


@dataclass(frozen=True)
class EarlyStop:
    """When a VAE's training may end before its recipe's last epoch: every ``check_every`` steps (at an
    epoch's end) the classifier reads the reconstructions of ``val_images`` validation images; training ends
    once they pass the fidelity gate (within ``margin`` below FIDELITY_MAX_GAP) and their accuracy has not
    improved by ``min_delta`` for ``patience`` checks. Never before ``min_steps``."""

    check_every: int = 500
    min_steps: int = 1000
    patience: int = 2
    min_delta: float = 0.005
    margin: float = 0.01
    val_images: int = 2000

    def __post_init__(self):
        for name in ("check_every", "min_steps", "patience", "val_images"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.min_delta < 1 or not 0 <= self.margin < FIDELITY_MAX_GAP:
            raise ValueError(f"min_delta must be in [0, 1) and margin in [0, {FIDELITY_MAX_GAP}); got "
                             f"{self.min_delta}, {self.margin}")


class FidelityStop:
    """The ``stop`` of :func:`defuse.nets.train.train_vae` that ends training when validation fidelity stops
    improving (see :class:`EarlyStop`). Each check adds ``val_acc_original`` / ``val_acc_reconstruction`` to the
    epoch's history row; ``observe_only=True`` records them and never stops (what benchmarks measure curves with).
    """

    def __init__(self, classifier: nn.Module, data: ImageData, cfg: EarlyStop = EarlyStop(), *,
                 observe_only: bool = False):
        self.classifier, self.cfg, self.observe_only = classifier, cfg, observe_only
        keep = min(cfg.val_images, len(data.val))
        self.images, self.labels = data.val.images[:keep], data.val.labels[:keep]
        self.acc_original_: float | None = None
        self.best_, self.stale_, self.last_check_, self.stopped_at_ = -1.0, 0, 0, None

    @torch.no_grad()
    def _recon_accuracy(self, vae: nn.Module) -> float:
        dev = next(vae.parameters()).device
        self.classifier.to(dev).eval()
        correct = 0
        for i in range(0, len(self.labels), 500):
            x, y = self.images[i:i + 500].to(dev), self.labels[i:i + 500]
            pred = self.classifier(vae.decode(latent_means(vae, x, y))).argmax(1).cpu()
            correct += int((pred == y).sum())
        return correct / max(1, len(self.labels))

    def __call__(self, vae: nn.Module, row: dict) -> bool:
        step, cfg = row["step"], self.cfg
        if step < cfg.min_steps or step - self.last_check_ < cfg.check_every:
            return False
        self.last_check_ = step
        if self.acc_original_ is None:
            dev = next(vae.parameters()).device
            self.acc_original_ = evaluate_accuracy(self.classifier.to(dev), self.images, self.labels, dev)
        acc = self._recon_accuracy(vae)
        row.update(val_acc_original=self.acc_original_, val_acc_reconstruction=acc)
        self.stale_ = 0 if acc >= self.best_ + cfg.min_delta else self.stale_ + 1
        self.best_ = max(self.best_, acc)
        passes = self.acc_original_ - acc <= FIDELITY_MAX_GAP - cfg.margin
        if passes and self.stale_ >= cfg.patience and self.stopped_at_ is None:
            self.stopped_at_ = step
            row["early_stop"] = True
            return not self.observe_only
        return False
