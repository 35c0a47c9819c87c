"""Image data sources: every loader returns :class:`ImageData`.

Images are float32 tensors in [0, 1] of shape (N, C, H, W), labels int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Optional

import torch


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

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetSpec":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class Split:
    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class ImageData:
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    spec: DatasetSpec = field(default_factory=DatasetSpec)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])


def load_dataset(spec: DatasetSpec) -> ImageData:
    raise NotImplementedError  # filled in by the data loaders below
