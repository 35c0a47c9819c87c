"""The β-VAE recipe that fits a source's size, and the fidelity gate that stops a VAE too blurry to search with.

A β-VAE learns from optimizer steps, not epochs: the demo recipe (β=0.4, batch 128, 200 epochs over 5,000
images, i.e. 8,000 steps) is recognised as often as the originals, while 30 epochs over `digits`' 1,797 images
(420 steps) left 21% of reconstructions recognised against 91% of originals (issue #17). So the default recipe
takes enough epochs for :data:`MIN_STEPS` steps, with a smaller batch on small sources (more steps per pass).
Measured: benchmarks/vae_recipe.py, docs/runs/vae-recipe.jsonl.

Those steps are a ceiling, not a price: :class:`FidelityStop` ends the training once the reconstructions'
accuracy on validation images has passed the gate and stopped improving (issue 24).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import nn

from ..data.datasets import ImageData
from .architectures import latent_means
from .train import FIDELITY_MAX_GAP, VAEConfig, evaluate_accuracy, vae_images

MIN_STEPS = 8_000          # the demo recipe's steps, which keep reconstructions recognisable
SMALL_SOURCE = 5_000       # fewer images than this: batch 32, so an epoch has enough steps
SMALL_BATCH = 32


def default_vae_config(n_images, base: VAEConfig = VAEConfig()) -> VAEConfig:
    """The recipe for ``n_images`` training images (or an ImageData, counted as the VAE sees it)."""
    if not isinstance(n_images, int):  # the images the VAE trains on: the training split, or train+val
        n_images = len(vae_images(n_images, base.train_on))
    batch = SMALL_BATCH if n_images < SMALL_SOURCE else base.batch_size
    steps_per_epoch = max(1, math.ceil(n_images / batch))
    return replace(base, batch_size=batch, epochs=max(1, math.ceil(MIN_STEPS / steps_per_epoch)))


def fidelity_gate(metrics: dict, config: Optional[dict] = None) -> Optional[str]:
    """None when the VAE is faithful enough to search with; else what is wrong and what to do, in plain words.

    ``config``: the VAE's training settings (its step record), so the advice fits what was already tried.
    """
    if "acc_reconstruction" not in metrics or "acc_original" not in metrics:
        return None
    recon, orig = metrics["acc_reconstruction"], metrics["acc_original"]
    if orig - recon <= FIDELITY_MAX_GAP:
        return None
    return (f"The β-VAE is too blurry to search with: the classifier recognises only {recon:.0%} of its "
            f"reconstructions, against {orig:.0%} of the original images. Identify would report the blur as "
            f"classifier failures. {vae_advice(metrics, config or {})}")


def vae_advice(metrics: dict, config: dict) -> str:
    """What to change, given the settings used (never advise what was already done)."""
    d = VAEConfig()
    todo = []
    epochs, batch = config.get("epochs"), config.get("batch_size", d.batch_size)
    n = metrics.get("n_images")
    if epochs and n:
        steps = epochs * math.ceil(n / batch)
        if steps < MIN_STEPS:
            want = default_vae_config(int(n), replace(d, **{k: v for k, v in config.items() if hasattr(d, k)}))
            todo.append(f"train longer: {epochs} epochs were {steps:,} steps; use {want.epochs} epochs at batch "
                        f"{want.batch_size} (about {MIN_STEPS:,} steps)")
    if config.get("beta", d.beta) > d.beta:
        todo.append(f"lower β from {config['beta']:g} to {d.beta:g}")
    if config.get("train_on") == "train":
        todo.append("train on the validation images too (--train-on train+val; never the test split)")
    if not todo:
        dim, width = config.get("latent_dim", d.latent_dim), config.get("width", d.width)
        todo.append(f"give it more room: latent dimensions {dim} → {dim * 2}"
                    + (f", width {width} → 64" if width < 64 else "") + ", and train twice as many epochs")
    return "Retrain the β-VAE on Setup: " + "; ".join(todo) + "."


ACCEPT_FLAG = "--accept-low-fidelity"


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
