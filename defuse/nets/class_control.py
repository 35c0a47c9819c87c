"""Class control of a conditional VAE: does the label it decodes with decide the class a reader sees?

Each image is encoded with its own label, and its z is decoded with another label (its label plus a
seeded offset in 1..C-1, modulo C). The share a reader (the classifier, or the independent judge)
gives that other label is the class control: 1.0 means z holds no class at all, so identification's
perturbations of z change style only; near the chance level means z still carries the class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .architectures import is_conditional


@torch.no_grad()
def swap_labels(vae: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0,
                batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """(decodes of each image's z under another label, that label), both on the CPU."""
    if not is_conditional(vae):
        raise ValueError("class control is a measure of a class-conditional VAE; this VAE takes no label")
    c, k = vae.num_classes, vae.style_dim
    rng = np.random.default_rng(seed)
    other = (labels.long() + torch.from_numpy(rng.integers(1, c, size=len(labels)))) % c
    dev = next(vae.parameters()).device
    out = []
    for s in range(0, len(labels), batch_size):
        x, y = images[s:s + batch_size].to(dev), labels[s:s + batch_size].to(dev)
        code = vae.encode(x, y)[0]
        code[:, k:] = vae.label_code(other[s:s + batch_size], code)
        out.append(vae.decode(code).float().cpu())
    return (torch.cat(out) if out else images[:0].float()), other


@torch.no_grad()
def class_control(vae: nn.Module, reader, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0) -> float | None:
    """Share of label-swapped decodes ``reader`` (images -> labels, a numpy or torch 1-D array) gives the
    swapped-in label; None for an empty set."""
    if len(labels) == 0:
        return None
    decodes, other = swap_labels(vae, images, labels, seed=seed)
    read = torch.as_tensor(np.asarray(reader(decodes)))
    return float((read.long() == other).float().mean())
