"""Readers of image files on disk: raw IDX, image folders, npz archives (used by :mod:`defuse.data`).

Each returns numpy arrays as stored; :func:`defuse.data.datasets.load_dataset` scales, sizes and splits them.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np


def read_idx(path: Path, magic: int, what: str) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or not): magic 0x00000803 images, 0x00000801 labels."""
    try:
        raw = path.read_bytes()
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"Could not read {what} file {str(path)!r}: {err}") from None
    ndim = magic & 0xFF
    got = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if got != magic or len(raw) < 4 + 4 * ndim:
        shown = "a file shorter than its header" if got is None or got == magic else f"magic 0x{got:08x}"
        raise ValueError(f"{str(path)!r} is not an IDX {what} file: expected magic 0x{magic:08x} and a "
                         f"{4 + 4 * ndim}-byte header, got {shown}")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(f"{str(path)!r} is truncated or padded: its header {dims} needs {expected} bytes, "
                         f"got {len(raw)}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_idx_pair(images: Path) -> tuple[np.ndarray, np.ndarray]:
    labels = images.with_name(images.name.replace("images", "labels").replace("idx3", "idx1"))
    if not labels.is_file():
        raise ValueError(f"No labels file beside {str(images)!r}: expected {str(labels)!r}")
    return read_idx(images, 0x803, "images"), read_idx(labels, 0x801, "labels")


def read_image_files(files: list[Path], size: Optional[int]) -> np.ndarray:
    """(N, H, W, 3) uint8; every image resized to ``size`` (or to 32 if sizes differ and size is None)."""
    from PIL import Image, UnidentifiedImageError

    try:
        sizes = set()
        for f in files:
            with Image.open(f) as im:  # reads the header only
                sizes.add(im.size)
        target = (size, size) if size else (next(iter(sizes)) if len(sizes) == 1 else (32, 32))
        out = np.empty((len(files), target[1], target[0], 3), dtype=np.uint8)
        for i, f in enumerate(files):
            with Image.open(f) as im:
                im = im.convert("RGB")
                out[i] = np.asarray(im if im.size == target else im.resize(target, Image.BILINEAR))
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"Could not read image {str(f)!r}: {err}; remove or fix that file") from None
    return out


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, Optional[list]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:  # ValueError: pickled or not npz
        raise ValueError(f"Could not read npz file {str(path)!r}: {err}") from None
    if "x" not in arrays or "y" not in arrays:
        raise ValueError(f"{str(path)!r} must hold arrays 'x' (images) and 'y' (labels), "
                         f"got {sorted(arrays)}")
    names = arrays["class_names"].tolist() if "class_names" in arrays else None
    return arrays["x"], arrays["y"], names
