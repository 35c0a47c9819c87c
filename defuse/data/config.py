"""What a project loads: the dataset spec (saved in project.json), and the names of the sources it may name."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Optional

from ..runtime.settings import check_settings, setting

SIZES = (32, 64, 128)  # input sizes the models support
# the keys of defuse.data.sources.SOURCES (tests/test_settings.py checks they match)
SOURCE_NAMES = ("mnist-sample", "digits", "mnist", "fashion-mnist", "svhn", "gtsrb", "mnist-idx", "folder", "npz")


def _path_text(help: str, **declared):
    return setting(None, kind=str, help=help, **declared)


@dataclass(frozen=True)
class DatasetSpec:
    """What to load. Saved in a workspace's project.json, so plain values only."""

    source: str = setting("mnist-sample", choices=SOURCE_NAMES, cli="dataset", label="“Dataset”",
                          help="where the images come from (mnist-sample is embedded)")
    root: Optional[str] = _path_text("folder for torchvision sources and `folder`",
                                     label="“Data folder on this machine”")
    path: Optional[str] = _path_text("npz train file, or IDX folder/images file", label="“IDX folder or images file”")
    test_path: Optional[str] = _path_text("npz test file")
    # target H = W; None: the paper's size (28 -> 32 by padding)
    size: Optional[int] = setting(None, kind=int, choices=SIZES, label="“Image size”",
                                  allowed=f"None or one of {SIZES} (the models' input sizes)",
                                  help="image height and width (default: the paper's)")
    download: bool = setting(False, help="let torchvision download the data (needs network; torchvision sources only)")
    val_fraction: float = setting(0.1, low=0.0, high=1.0, low_open=True, high_open=True, flag=False,
                                  help="carved from train when the source has no validation split")
    test_fraction: float = setting(0.2, low=0.0, high=1.0, low_open=True, high_open=True, flag=False,
                                   help="carved from train when the source has no test split")
    seed: int = setting(0, low=0, high=2**63 - 1, cli="data_seed", help="seed of the train/val/test split")

    def __post_init__(self):
        for name in ("root", "path", "test_path"):  # accept Path objects, store plain strings
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                object.__setattr__(self, name, os.fspath(value))
        check_settings(self)   # numbers stored as plain JSON values, even from numpy
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction must be < 1 to leave training data, got "
                             f"{self.val_fraction} + {self.test_fraction}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DatasetSpec:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
