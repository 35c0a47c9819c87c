"""Identify: unrestricted adversarial examples from perturbed β-VAE latent codes (paper §3.2.1)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Failures:
    """Unrestricted adversarial examples found by :func:`identify` (decoded on demand, not stored)."""

    latents: np.ndarray       # (n, k) float32: the perturbed codes mu + eps whose decode was misclassified
    source_index: np.ndarray  # (n,) int64: row of the source image in the searched images
    true_label: np.ndarray    # (n,) int64: the source image's true label
    pred_label: np.ndarray    # (n,) int64: the classifier's label for the decode
    noise_norm: np.ndarray    # (n,) float32: ||eps||
    metrics: dict = field(default_factory=dict)  # trust figures (reconstruction accuracy, ...)

    def __len__(self) -> int:
        return int(self.latents.shape[0])
