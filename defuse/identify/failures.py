"""Failures: the unrestricted adversarial examples one search found, as arrays (decoded on demand)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class Failures:
    """Unrestricted adversarial examples found by :func:`identify` (decoded on demand, not stored).

    Rows are grouped by source (in search order), each source's rows by ascending ``noise_norm``.
    """

    latents: np.ndarray       # (n, k) float32: the perturbed codes mu + eps whose decode was misclassified
    source_index: np.ndarray  # (n,) int64: row of the source image in the images passed to identify
    true_label: np.ndarray    # (n,) int64: the source image's true label
    pred_label: np.ndarray    # (n,) int64: the classifier's label for the decode
    noise_norm: np.ndarray    # (n,) float32: ||eps||
    metrics: dict = field(default_factory=dict)  # trust figures (reconstruction accuracy, ...)

    def __len__(self) -> int:
        return int(self.latents.shape[0])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays (not the metrics) by field name, for ``np.savez``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "metrics"}

    @classmethod
    def from_arrays(cls, arrays, metrics: dict | None = None) -> Failures:
        return cls(**{f.name: np.asarray(arrays[f.name]) for f in fields(cls) if f.name != "metrics"},
                   metrics=dict(metrics or {}))

    @classmethod
    def concatenate(cls, parts: list[dict], latent_dim: int) -> Failures:
        """The chunks' rows in order. Each chunk array is popped from its dict once copied, so the rows
        are held about once, not twice (1M failures of k=10: ~70 MB, not ~140 MB); ``parts`` ends empty."""
        if not parts:
            return cls(np.zeros((0, latent_dim), np.float32), *(np.zeros(0, np.int64) for _ in range(3)),
                       np.zeros(0, np.float32))
        return cls.from_arrays({f.name: np.concatenate([p.pop(f.name) for p in parts])
                                for f in fields(cls) if f.name != "metrics"})


FAILURE_ARRAYS = tuple(f.name for f in fields(Failures) if f.name != "metrics")  # what a chunk on disk holds
