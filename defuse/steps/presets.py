"""Settings bundles for `run` and the app: the paper's (appendix B) and a quick CPU-friendly one.

Every deviation of "quick" from "paper" is listed in its ``deviations`` so reports can print it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..correct.sweep import CorrectConfig
from ..distill.scenarios import DistillConfig
from ..identify.search import IdentifyConfig
from ..label.reviewer import ReviewerConfig
from ..nets.train import TrainConfig, VAEConfig


@dataclass(frozen=True)
class Preset:
    name: str
    train: TrainConfig
    vae: VAEConfig
    identify: IdentifyConfig
    distill: DistillConfig
    reviewer: ReviewerConfig
    correct: CorrectConfig
    n_samples: int = 256          # per failure scenario: D_f, failure validation, failure test (§4.1)
    deviations: tuple = ()
    accept_low_fidelity: bool = False  # search even with a VAE that fails the fidelity gate


PAPER = Preset("paper", TrainConfig(), VAEConfig(), IdentifyConfig(), DistillConfig(), ReviewerConfig(),
               CorrectConfig())

QUICK = Preset(
    "quick",
    train=TrainConfig(),
    vae=VAEConfig(epochs=60),
    identify=IdentifyConfig(samples_per_image=100, max_per_image=20, subset=1500),
    distill=DistillConfig(),
    reviewer=ReviewerConfig(members=2, epochs=4),
    correct=CorrectConfig(lambdas=(0.01, 0.1, 1.0, 10.0), epochs=2),
    deviations=("identify: 1,500 of the training images, Q=100 (paper 500), M=20 (paper 100)",
                "reviewer: 2 members x 4 epochs (default 3 x 8)",
                "correct: λ in {0.01, 0.1, 1, 10} (paper: 17 values), 2 epochs (paper: 3)",
                "VAE (only when trained by run): 60 epochs (default 200)"),
)

# For the end-to-end test: every step runs, in well under a minute; not for results.
SMOKE = Preset(
    "smoke",
    train=TrainConfig(epochs=1),
    vae=VAEConfig(epochs=5),
    identify=IdentifyConfig(samples_per_image=50, max_per_image=10, subset=400),
    distill=DistillConfig(max_components=30),
    reviewer=ReviewerConfig(members=1, epochs=2),
    correct=CorrectConfig(lambdas=(0.1, 1.0), epochs=1, tolerance=0.02),
    n_samples=64,
    accept_low_fidelity=True,  # a 5-epoch VAE is blurry; the smoke test checks the plumbing, not results
    deviations=("a smoke test of every step: tiny settings, not for results",
                "its 5-epoch VAE fails the fidelity gate and is used anyway",
                "correct: 1 epoch, so the λ tolerance is loosened to 2 points"),
)

PRESETS = {p.name: p for p in (PAPER, QUICK, SMOKE)}
