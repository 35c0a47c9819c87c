"""What a project loads: the dataset spec (saved in project.json), and the names of the sources it may name."""

from __future__ import annotations

import numbers
import os
from dataclasses import asdict, dataclass
from typing import Optional

from ..runtime.checks import is_int

SIZES = (32, 64, 128)  # input sizes the models support
# the keys of defuse.data.sources.SOURCES (tests/test_settings.py checks they match)
SOURCE_NAMES = ("mnist-sample", "digits", "mnist", "fashion-mnist", "svhn", "gtsrb", "mnist-idx", "folder", "npz")


@dataclass(frozen=True)
class DatasetSpec:
    """What to load. Saved in a workspace's project.json, so plain values only."""

    source: str = "mnist-sample"
    root: Optional[str] = None        # torchvision sources, folder
    path: Optional[str] = None        # npz (train), mnist-idx (folder or images file)
    test_path: Optional[str] = None   # npz test file
    size: Optional[int] = None        # target H = W; None: the paper's size (28 -> 32 by padding)
    download: bool = False            # torchvision sources only, and only when asked
    val_fraction: float = 0.1         # carved from train when the source has no validation split
    test_fraction: float = 0.2        # carved when the source has no test split
    seed: int = 0

    def __post_init__(self):
        if self.source not in SOURCE_NAMES:
            raise ValueError(f"Unknown dataset source {self.source!r}; expected one of {sorted(SOURCE_NAMES)}")
        for name in ("root", "path", "test_path"):  # accept Path objects, store plain strings
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        if self.size is not None and self.size not in SIZES:
            raise ValueError(f"size must be None or one of {SIZES} (the models' input sizes), "
                             f"got {self.size!r}")
        if self.size is not None:
            object.__setattr__(self, "size", int(self.size))
        if not isinstance(self.download, bool):
            raise ValueError(f"download must be True or False, got {self.download!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < value < 1:
                raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
            object.__setattr__(self, name, float(value))  # plain JSON values, even from numpy
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction must be < 1 to leave training data, got "
                             f"{self.val_fraction} + {self.test_fraction}")
        if not is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DatasetSpec:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
