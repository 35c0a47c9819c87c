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
from dataclasses import replace
from typing import Optional

from ..runtime.words import OPTIONS, named
from .config import FIDELITY_MAX_GAP, VAE_TRAIN_SPLITS, VAEConfig

MIN_STEPS = 8_000          # the demo recipe's steps, which keep reconstructions recognisable
SMALL_SOURCE = 5_000       # fewer images than this: batch 32, so an epoch has enough steps
SMALL_BATCH = 32


def default_vae_config(n_images, base: VAEConfig = VAEConfig()) -> VAEConfig:
    """The recipe for ``n_images`` training images (or an ImageData, counted as the VAE sees it)."""
    if not isinstance(n_images, int):  # the images the VAE trains on: the training split, or train+val
        n_images = sum(len(getattr(n_images, split).images) for split in VAE_TRAIN_SPLITS[base.train_on])
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
        todo.append(f"train on the validation images too ({named(VAEConfig, 'train_on')} train+val; never the test "
                    "split)")
    if not todo:
        dim, width = config.get("latent_dim", d.latent_dim), config.get("width", d.width)
        todo.append(f"give it more room: latent dimensions {dim} → {dim * 2}"
                    + (f", width {width} → 64" if width < 64 else "") + ", and train twice as many epochs")
    return "Retrain the β-VAE on Setup: " + "; ".join(todo) + "."


ACCEPT_FLAG = OPTIONS["accept-low-fidelity"].cli   # the option as jobs and the CLI pass it
