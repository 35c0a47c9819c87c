"""How long a training job will take on this machine, measured before it starts (issue 24: honest waiting).

A few optimiser steps of the job's own network, at its batch size, under the trainers' plan
(:func:`defuse.runtime.train_speed.train_plan`), give steps/s here and now; times the job's step count,
an estimate of its training time (evaluations not counted; the VAE's early stop may end it sooner). The app
warns before a job estimated over :data:`LONG_JOB_S` and names the settings that would make it shorter.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import torch
from torch.nn import functional as F

from ..correct.sweep import CorrectConfig
from ..nets.architectures import build_vae, copy_model
from ..nets.train import VAEConfig, vae_architecture, vae_images, vae_loss
from ..runtime.progress import fmt_seconds
from ..runtime.train_speed import train_plan
from ..workspace import Workspace
from .project import load_classifier, load_data

LONG_JOB_S = 600  # 10 minutes: the app warns before a longer job
PROBE_STEPS = 3


@dataclass(frozen=True)
class TrainingEstimate:
    job: str
    steps: int                 # optimiser steps of the whole job
    steps_per_s: float         # measured here, just now
    shorter: tuple = ()        # settings that would make it shorter, in words

    @property
    def seconds(self) -> float:
        return self.steps / max(self.steps_per_s, 1e-9)

    def warning(self) -> Optional[str]:
        """A plain-words warning when the job would take longer than LONG_JOB_S here, else None."""
        if self.seconds <= LONG_JOB_S:
            return None
        return (f"{self.job} would take about {fmt_seconds(self.seconds)} on this machine ({self.steps:,} steps at "
                f"{self.steps_per_s:.3g} steps/s, measured just now). Shorter: " + "; ".join(self.shorter) + ".")


def _rate(step, steps: int = PROBE_STEPS) -> float:
    step()  # the first step pays one-off costs (allocation, oneDNN's kernel choice)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def estimate_vae(ws: Workspace, cfg: VAEConfig) -> TrainingEstimate:
    """The β-VAE's training with ``cfg`` on the project's data: steps, steps/s here, and what shortens it."""
    data = load_data(ws)
    plan = train_plan(torch.device("cpu"))
    extra = {"num_classes": data.num_classes} if cfg.conditional else {}
    vae = plan.model(build_vae(vae_architecture(cfg), channels=data.channels, image_size=data.image_size,
                               latent_dim=cfg.latent_dim, width=cfg.width, **extra))
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    x = plan.inputs(data.train.images[:cfg.batch_size])
    y = data.train.labels[:cfg.batch_size]

    def step():
        with plan.autocast():
            recon, mu, logvar = vae(x, y) if cfg.conditional else vae(x)
        loss = vae_loss(recon.float(), x, mu.float(), logvar.float(), beta=cfg.beta)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    per_epoch = math.ceil(len(vae_images(data, cfg.train_on)) / cfg.batch_size)
    shorter = (["the early stop ends it once the validation fidelity stops improving (on by default)"]
               if cfg.early_stop else ["turn the early stop back on"])
    shorter.append(f"fewer epochs (each is {per_epoch:,} steps; the gate usually needs 2,000-8,000 steps)")
    return TrainingEstimate("Training the β-VAE", cfg.epochs * per_epoch, _rate(step), tuple(shorter))


def estimate_correct(ws: Workspace, cfg: CorrectConfig, *, baseline: bool = True) -> TrainingEstimate:
    """The λ sweep's fine-tuning (every λ, the control, the baseline's λs) with the project's classifier."""
    data = load_data(ws)
    plan = train_plan(torch.device("cpu"))
    model = plan.model(copy_model(load_classifier(ws)[0]))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = plan.inputs(data.train.images[:cfg.batch_size])
    y = data.train.labels[:cfg.batch_size]

    def step():  # L(D) + λ·CE(D_f): two forwards
        with plan.autocast():
            a, b = model(x), model(x.flip(0))
        loss = F.cross_entropy(a.float(), y) + F.cross_entropy(b.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    trainings = len(cfg.lambdas) * (2 if baseline else 1) + cfg.include_control
    steps = trainings * cfg.epochs * math.ceil(len(data.train) / cfg.batch_size)
    shorter = [f"fewer λ ({len(cfg.lambdas)} now; e.g. 0.1, 1, 10)"]
    shorter += [f"1 epoch per λ ({cfg.epochs} now)"] if cfg.epochs > 1 else []
    shorter += ["without the baseline (it trains every λ once more)"] if baseline else []
    return TrainingEstimate("The λ sweep", steps, _rate(step), tuple(shorter))
