"""The identify step's settings, each declared once (:mod:`defuse.runtime.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..nets.inference import PRECISION_CHOICES
from ..runtime.settings import check_settings, setting
from .noise import MAX_SAMPLES_PER_IMAGE

SUBSET_MODES = ("first", "random")
MAX_SEED = 2**63 - 1
MAX_BATCH = 1 << 27    # decodes per batch: far beyond any memory today; the memory check refuses sooner


@dataclass(frozen=True)
class IdentifyConfig:
    """Settings of the identification step; defaults are the paper's MNIST settings (appendix B.2)."""

    samples_per_image: int = setting(500, low=1, high=MAX_SAMPLES_PER_IMAGE, paper=500, label="Q",
                                     help="Q, perturbations per image (paper: 500)")
    beta_a: float = setting(50.0, low=0.0, low_open=True, high=1e6, paper=50.0, label="a",
                            help="a of the Beta(a, b) noise (paper: 50 for MNIST, 75 for SVHN/signs)")
    beta_b: float = setting(50.0, low=0.0, low_open=True, high=1e6, paper=50.0, label="b",
                            help="b of the Beta(a, b) noise")
    max_per_image: int = setting(100, low=1, high=MAX_SAMPLES_PER_IMAGE, paper=100, label="M",
                                 help="M, failures kept per image, the nearest first (paper: 100)")
    # The paper's ε is Beta noise in (0, 1), so every dim shifts by about a/(a+b) = +0.5; centered
    # subtracts that mean. Off by default for fidelity to the paper.
    centered: bool = setting(False, paper=False, label="“Centred noise”",
                             help="subtract the Beta mean a/(a+b) from the noise (paper: off; its noise shifts "
                                  "every dim by ~+0.5)")
    # ε is multiplied by this (after centring): a style-only (conditional) VAE needs larger moves than
    # Beta noise in (0, 1) makes, a faithful unconditional one smaller. 1 is the paper's.
    noise_scale: float = setting(1.0, low=0.0, low_open=True, high=1e3, paper=1.0, label="“Noise scale”",
                                 help="multiply the noise by this, after centring (paper: 1)")
    # Search only sources whose own reconstruction the classifier labels correctly: measured on MNIST,
    # the share of real failures rose from ~31-56 % to 70-78 %, at the cost of two thirds of the finds.
    skip_misreconstructed: bool = setting(False, paper=False, help="search only images whose own "
                                          "reconstruction the classifier gets right")
    subset: int | None = setting(None, kind=int, low=1, label="“Images searched”",
                                 help="search only this many training images (default: all)")
    subset_mode: str = setting("random", choices=SUBSET_MODES,
                               help="which images a subset takes: random (seeded) or first")
    batch_size: int | None = setting(None, kind=int, low=1, high=MAX_BATCH, label="“Decodes per batch”",
                                     help="decodes per batch (default: chosen for the device)")
    precision: str = setting("auto", choices=PRECISION_CHOICES,
                             help="auto, fp32, bf16, fp16 (auto: bf16 on CPUs that have it, fp32 otherwise)")
    seed: int = setting(0, low=0, high=MAX_SEED, help="seed of the noise and of the random subset")
    chunk_images: int = setting(256, low=1, high=1 << 24, help="source images per resumable chunk")

    def __post_init__(self):
        check_settings(self)
