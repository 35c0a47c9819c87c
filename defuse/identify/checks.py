"""Input checks of :func:`defuse.identify.search.identify`: the labels, and one probe of both models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..nets.architectures import latent_means
from .noise import MAX_LATENT_DIM


def check_labels(labels) -> torch.Tensor:
    y = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer array; got shape {tuple(y.shape)}, dtype {y.dtype}")
    if len(y) and int(y.min()) < 0:
        raise ValueError(f"labels must be >= 0; got a minimum of {int(y.min())}")
    return y.long().cpu()


def check_models(clf: nn.Module, dec: nn.Module, images: torch.Tensor, labels: torch.Tensor, plan) -> None:
    """Probe both models on one image: the latent width, the decode's shape and the number of classes."""
    if not (callable(getattr(dec, "encode", None)) and callable(getattr(dec, "decode", None))):
        raise ValueError("vae must have encode(x) -> (mu, logvar) and decode(z) -> images")
    x = images[:1].to(plan.device, torch.float32)
    with torch.inference_mode():
        mu = latent_means(dec, x, labels[:1].to(plan.device))
        k = getattr(dec, "latent_dim", mu.shape[-1])
        if mu.dim() != 2 or mu.shape[1] != k:
            raise ValueError("latent_dim mismatch: the VAE's encoder returns codes of shape "
                             f"{tuple(mu.shape)} for one image but vae.latent_dim is {k}")
        if k > MAX_LATENT_DIM:
            raise ValueError(f"latent_dim must be <= {MAX_LATENT_DIM}; got {k}")
        recon = dec.decode(mu.float())
        if tuple(recon.shape[1:]) != tuple(images.shape[1:]):
            raise ValueError(f"the VAE decodes to images of shape {tuple(recon.shape[1:])} but the images "
                             f"are {tuple(images.shape[1:])}; load the data at the VAE's training size")
        logits = clf(recon.float())
    if logits.dim() != 2:
        raise ValueError(f"the classifier must return logits (B, n_classes); got shape {tuple(logits.shape)}")
    if int(labels.max()) >= logits.shape[1]:
        raise ValueError(f"labels go up to {int(labels.max())} but the classifier has "
                         f"{logits.shape[1]} outputs")
