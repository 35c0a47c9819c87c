"""Resumable work: finished chunks of a long step on disk, keyed by a fingerprint of its inputs.

A re-run with the same inputs and settings loads the finished chunks instead of recomputing them;
any change (other weights, images, settings) changes the fingerprint and clears the old chunks.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..runtime.atomic import atomic_path, write_json


def inputs_fingerprint(settings: dict, tensors) -> str:
    """Hash of JSON-able ``settings`` and every tensor's shape, dtype and bytes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(settings, sort_keys=True).encode())
    for t in tensors:
        t = t.detach().contiguous().cpu()
        h.update(str((tuple(t.shape), t.dtype)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


class ChunkStore:
    """``chunk-00000.npz``, ... beside ``fingerprint.json``; a new fingerprint clears the old chunks.

    Each chunk holds the arrays named ``names``; a chunk missing one of them counts as unfinished.
    """

    def __init__(self, folder, fingerprint: str, names: tuple[str, ...]):
        self.dir, self.names = Path(folder), tuple(names)
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "fingerprint.json"
        try:
            old = json.loads(meta.read_text())["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            old = None
        if old != fingerprint:
            for p in self.dir.glob("chunk-*.npz"):
                p.unlink()
            write_json(meta, {"fingerprint": fingerprint})

    def _path(self, i: int) -> Path:
        return self.dir / f"chunk-{i:05d}.npz"

    def load(self, i: int) -> dict[str, np.ndarray] | None:
        """The chunk's arrays, or None when it is missing or unreadable (then it is recomputed)."""
        try:
            with np.load(self._path(i)) as z:
                return {name: z[name] for name in self.names}
        except (OSError, ValueError, KeyError, EOFError):
            return None

    def save(self, i: int, part: dict[str, np.ndarray]) -> None:
        with atomic_path(self._path(i)) as tmp, open(tmp, "wb") as f:
            np.savez(f, **part)
