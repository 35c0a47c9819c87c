"""Training settings of the classifier and the β-VAE, each declared once (:mod:`defuse.runtime.settings`)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from ..runtime.settings import Setting, SettingError, check_settings, setting

OPTIMIZER_NAMES = ("adadelta", "adam", "sgd")   # the keys of defuse.nets.train.OPTIMIZERS
# The splits a VAE may train on. The test split stays unseen so its figures
# (fidelity, the judge's grades) are measured on images no model fitted.
VAE_TRAIN_SPLITS = {"train": ("train",), "train+val": ("train", "val")}
_LEGACY_VAE_TRAIN_SPLITS = {"all": ("train", "val", "test")}  # recorded by VAEs trained before issue #12
FIDELITY_MAX_GAP = 0.05  # reconstructions must be recognised within 5 points of the originals
MAX_SEED = 2**63 - 1


def _class_fraction(pair) -> bool:
    return (len(pair) == 2 and isinstance(pair[0], numbers.Integral) and not isinstance(pair[0], bool)
            and isinstance(pair[1], numbers.Real) and not isinstance(pair[1], bool) and 0.0 <= pair[1] <= 1.0)

LABEL_IN_NAMES = ("every-layer", "decoder-input")  # the keys of defuse.nets.architectures.LABEL_IN

@dataclass(frozen=True)
class TrainConfig:
    """Classifier training. Paper B.2: Adadelta lr 1.0, 5 epochs, batch 64."""

    architecture: str = setting("paper-cnn", help="the built-in network: paper-cnn (appendix B.2) or resnet18")
    epochs: int = setting(5, low=1, high=10_000, paper=5, label="“Epochs”", help="training epochs")
    batch_size: int = setting(64, low=1, high=1 << 20, paper=64, label="“Batch size”", help="images per step")
    optimizer: str = setting("adadelta", choices=OPTIMIZER_NAMES, paper="adadelta", help="the optimiser")
    lr: float = setting(1.0, low=0.0, low_open=True, high=1e3, paper=1.0, label="“Learning rate”",
                        help="learning rate")
    seed: int = setting(0, low=0, high=MAX_SEED, help="seed of the initialisation and the batches")
    # ((class, keep_fraction), ...): train on only part of some classes, to plant a realistic flaw
    # (a skewed data collection). The demo classifier uses it; see README.
    class_keep: tuple = setting((), item=Setting(kind=tuple, valid=_class_fraction, allowed="(class, fraction "
                                                 "in [0, 1])"), flag=False, label="“Plant a flaw”",
                                allowed="a list of (class, fraction in [0, 1]) pairs",
                                help="train on only this fraction of some classes, e.g. 9:0.1")

    def __post_init__(self):
        check_settings(self)


@dataclass(frozen=True)
class VAEConfig:
    """β-VAE training. Defaults: the recipe measured here to keep reconstructions recognisable
    (β=0.4, one of the two values in appendix B.2; KL annealed over 2,000 steps), on the training split."""

    beta: float = setting(0.4, low=0.0, high=1e3, label="β", help="β, the weight of the KL term (paper: 0.4 or 1)")
    latent_dim: int = setting(10, low=1, high=4096, label="“Latent dimensions”", help="latent dimensions k")
    width: int = setting(32, low=1, high=4096, label="“Width”", help="channels of the first convolution")
    epochs: int = setting(200, low=1, high=100_000, label="“Epochs”", help="training epochs")
    batch_size: int = setting(128, low=1, high=1 << 20, label="“Batch size”", help="images per step")
    lr: float = setting(1e-3, low=0.0, low_open=True, high=1e3, label="“Learning rate”", help="Adam's learning rate")
    kl_anneal_steps: int = setting(2000, low=0, high=10**9, help="steps over which the KL weight rises "
                                   "linearly from 0 to β (paper: 500 steps at batch 2048)")
    free_bits: float = setting(0.0, low=0.0, high=1e3, help="per-dimension KL floor in nats (0: a plain β-VAE)")
    train_on: str = setting("train", choices=tuple(VAE_TRAIN_SPLITS), label="“Train on”",
                            help="the splits the VAE trains on (never the test split)")
    seed: int = setting(0, low=0, high=MAX_SEED, help="seed of the initialisation and the batches")
    # The decoder also takes the label (ConditionalBetaVAE): identification then changes style, not class.
    conditional: bool = setting(False, label="“Class-conditional”", help="a class-conditional β-VAE: the decoder "
                                "takes the label, so identification changes style, not class")
    # A conditional VAE's design (issue #21): which layers take the label (a key of
    # defuse.nets.architectures.LABEL_IN), and the weight of an adversary's loss: a critic learns to read the label
    # from z, and the encoder pays for what it reads
    label_in: str = setting("every-layer", choices=LABEL_IN_NAMES, label="“The label enters”",
                            help="with conditional: the layers that take the label (every-layer; decoder-input is the "
                                 "design of issue #12)")
    class_adversary: float = setting(0.0, low=0.0, high=1e3, help="with conditional: weight of the adversary that "
                                     "reads the label from z (0: none)")
    # End before the last epoch once validation fidelity passes the gate and stops improving (train-vae with a
    # classifier: defuse.nets.early_stop.FidelityStop). The epochs are then a ceiling.
    early_stop: bool = setting(True, help="end training once the validation fidelity has passed the gate and "
                                          "stopped improving (with a classifier); the epochs are then a ceiling")

    def __post_init__(self):
        if self.train_on in _LEGACY_VAE_TRAIN_SPLITS:  # say why the old value is gone
            raise SettingError("train_on", self.train_on, f"one of {sorted(VAE_TRAIN_SPLITS)} ('all' included the "
                               "test split, which the VAE must never see)")
        check_settings(self)
