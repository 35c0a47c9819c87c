"""Image data sources: every loader returns :class:`ImageData`.

Images are float32 tensors in [0, 1] of shape (N, C, H, W), labels int64 in 0..C-1.
``load_dataset`` validates the spec, asks one loader from ``SOURCES`` (:mod:`defuse.data.sources`) for raw parts
(``train`` and optionally ``val``/``test``), then checks, scales, sizes and splits them
the same way for every source.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .config import SIZES, DatasetSpec  # noqa: F401  (re-exported: their old home)

# the sources and their class names, re-exported: callers import them from here
from .sources import DIGIT_NAMES, FASHION_NAMES, IMAGE_SUFFIXES, SOURCES  # noqa: F401

_VAL_FROM_TEST = {"svhn", "gtsrb"}  # the paper halves these test sets into val/test


@dataclass
class Split:
    """One split of a dataset: its images and their labels, row by row."""

    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageData:
    """A loaded dataset: its three splits, its class names and the spec it was loaded from."""

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


# ------------------------------------------------------------------ public API

def load_dataset(spec: DatasetSpec) -> ImageData:
    """Load ``spec.source`` as train/val/test splits of float32 (N, C, H, W) images in [0, 1].

    Sources without a test split get ``test_fraction`` of their images carved off, sources
    without a validation split ``val_fraction`` (SVHN and GTSRB: half the test set, as in the
    paper). Carving is stratified by class and fixed by ``spec.seed``.
    28x28 images are zero-padded to 32x32 (the paper's models); other sizes stay when they
    are 32, 64 or 128 and are resized to 32 otherwise; ``spec.size`` forces a size. GTSRB
    defaults to 32x32 to stay fast on CPU (the paper uses 128: pass size=128).
    """
    if not isinstance(spec, DatasetSpec):
        raise ValueError(f"spec must be a DatasetSpec, got {type(spec).__name__}")
    parts, names = SOURCES[spec.source](spec)
    images, labels = {}, {}
    for k, (x, y) in parts.items():
        images[k] = _fit_size(_as_images(x, f"{spec.source} {k} images"), spec.size)
        labels[k] = _as_labels(y, len(images[k]), f"{spec.source} {k} labels")
    labels, class_names = _remap_labels(labels, names, spec.source)
    splits = _split({k: (images[k], labels[k]) for k in parts}, spec)
    total = sum(len(y) for y in labels.values())
    for name, (_, y) in splits.items():
        if len(y) == 0:
            raise ValueError(f"The {name} split of {spec.source!r} is empty ({total} images in all); "
                             f"provide more images or raise val_fraction/test_fraction")
    made = {k: Split(x.contiguous(), torch.from_numpy(y).to(torch.int64)) for k, (x, y) in splits.items()}
    return ImageData(made["train"], made["val"], made["test"], class_names, spec)


def dataset_fingerprint(spec: DatasetSpec) -> str:
    """First 16 hex characters of the sha256 of the spec's canonical JSON."""
    text = json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(data: ImageData) -> dict:
    """A JSON-ready summary: counts per split and class, channels, size, class names."""
    splits = {}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        per_class = torch.bincount(split.labels, minlength=data.num_classes).tolist()
        splits[name] = {"count": len(split), "per_class": per_class}
    return {"source": data.spec.source, "fingerprint": dataset_fingerprint(data.spec),
            "channels": data.channels, "image_size": data.image_size,
            "num_classes": data.num_classes, "class_names": list(data.class_names), "splits": splits}


# ------------------------------------------------------------------ shared checks and transforms

def _as_images(x, what: str) -> torch.Tensor:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) images -> (N, C, H, W) float32 in [0, 1].

    uint8 is divided by 255; other numbers must lie in [0, 1] (kept) or [0, 255] (divided by 255).
    """
    try:
        if not isinstance(x, torch.Tensor):
            x = np.asarray(x)
            x = torch.as_tensor(x if x.flags.writeable else x.copy())  # torch wants writable memory
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{what} must be a uint8 or float array, got {type(x).__name__}: {err}") from None
    if x.ndim not in (3, 4) or x.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty (N, H, W) or (N, H, W, C) array, "
                         f"got shape {tuple(x.shape)}")
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.shape[-1] in (1, 2, 3, 4) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)  # channels last -> channels first
    if x.shape[1] not in (1, 2, 3, 4):
        raise ValueError(f"{what} must have 1 (grey) or 3 (RGB) channels, got shape {tuple(x.shape)}")
    x = x[:, :1] if x.shape[1] == 2 else x[:, :3]  # drop alpha
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255)
    x = x.to(torch.float32)
    if torch.isnan(x).any():
        raise ValueError(f"{what} contain NaN values; clean or drop those images first")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"{what} must be in [0, 1] or [0, 255], got values in [{lo}, {hi}]")
    return x.div_(255) if hi > 1 else x


def _fit_size(x: torch.Tensor, size: Optional[int]) -> torch.Tensor:
    """Pad 28x28 to 32x32 (the paper's models), keep supported sizes, resize the rest (bilinear).

    Non-square images are stretched to a square.
    """
    h, w = x.shape[-2:]
    if (h, w) == (28, 28) and size in (None, 32):
        return F.pad(x, (2, 2, 2, 2))
    target = size if size is not None else (h if h == w and h in SIZES else 32)
    if (h, w) == (target, target):
        return x
    x = F.interpolate(x, size=(target, target), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0, 1)  # antialiasing can overshoot


def _as_labels(y, n: int, what: str) -> np.ndarray:
    y = np.asarray(y.numpy() if isinstance(y, torch.Tensor) else y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{what} must be a 1-D array with one label per image: "
                         f"got shape {y.shape} for {n} images")
    if y.dtype.kind == "f":
        if np.isnan(y).any() or not np.array_equal(y, np.round(y)):
            raise ValueError(f"{what} must be integers or strings, got non-integral floats or NaN")
        y = y.astype(np.int64)
    return y


def _remap_labels(labels: dict, names: Optional[list], source: str) -> tuple[dict, list[str]]:
    """Map arbitrary label values to 0..C-1 across all parts, keeping their class names."""
    values, inverse = np.unique(np.concatenate(list(labels.values())), return_inverse=True)
    if len(values) < 2:
        raise ValueError(f"{source!r} has only one class ({values.tolist()}); "
                         f"a classifier needs at least two")
    if names is None:
        class_names = [str(v) for v in values]
    elif values.dtype.kind in "iu" and values.min() >= 0 and values.max() < len(names):
        class_names = [str(names[v]) for v in values]
    else:
        raise ValueError(f"{source!r} labels {values.tolist()[:20]} do not index its {len(names)} "
                         f"class names; labels must be integers 0..{len(names) - 1}")
    out, start = {}, 0
    for k, y in labels.items():
        out[k], start = inverse[start:start + len(y)].astype(np.int64), start + len(y)
    return out, class_names


def _carve(y: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, carved) with exactly k carved, stratified by class.

    Shuffle, sort by class (stable), then take every (n/k)-th position: each class gets its
    proportional share (to within one) and the seed decides which of its images.
    """
    n = len(y)
    order = rng.permutation(n)
    order = order[np.argsort(y[order], kind="stable")]
    pos = np.arange(n)
    carved = (pos + 1) * k // n > pos * k // n
    return np.sort(order[~carved]), np.sort(order[carved])


def _split(parts: dict, spec: DatasetSpec) -> dict:
    """Fill in missing val/test parts by carving, seeded by ``spec.seed``."""
    rng = np.random.default_rng(spec.seed)
    x, y = parts["train"]
    n = len(y)
    out = dict(parts)

    def take(pair, idx):
        return pair[0][torch.from_numpy(idx)], pair[1][idx]

    if "test" not in out:
        keep, test = _carve(y, round(spec.test_fraction * n), rng)
        out["test"], (x, y) = take((x, y), test), take((x, y), keep)
    if "val" not in out and spec.source in _VAL_FROM_TEST:
        keep, val = _carve(out["test"][1], len(out["test"][1]) // 2, rng)
        out["val"], out["test"] = take(out["test"], val), take(out["test"], keep)
    elif "val" not in out:
        keep, val = _carve(y, round(spec.val_fraction * n), rng)
        out["val"], (x, y) = take((x, y), val), take((x, y), keep)
    out["train"] = (x, y)
    return out
