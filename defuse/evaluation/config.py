"""The independent judge's settings, each declared once (:mod:`defuse.runtime.settings`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.settings import check_settings, setting


@dataclass(frozen=True)
class JudgeConfig:
    """The judge's network and training; ``seed`` stays away from the classifier's (0) and reviewers' (1000+)."""

    width: int = setting(16, low=1, high=4096, help="channels of the first block")
    blocks: int = setting(1, low=1, high=64, help="residual blocks per stage")
    epochs: int = setting(10, low=1, high=10_000, help="training epochs")
    batch_size: int = setting(128, low=1, high=1 << 20, help="images per step")
    lr: float = setting(3e-3, low=0.0, low_open=True, high=1e3, help="learning rate")
    weight_decay: float = setting(5e-4, low=0.0, high=1e3, help="weight decay")
    shift: int = setting(2, low=0, high=64, help="augmentation: random translation by up to this many pixels")
    rotate: float = setting(8.0, low=0.0, high=360.0, help="and random rotation by up to this many degrees "
                            "(no flips: digits)")
    seed: int = setting(3000, low=0, high=2**63 - 1, help="seed of the initialisation and the augmentation")

    def __post_init__(self):
        check_settings(self)
