"""Input checks of :func:`defuse.identify.search.identify`: the labels, and one probe of both models."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..nets.architectures import latent_means
from ..runtime.limits import check_fits, identify_bytes
from ..runtime.settings import declared
from ..runtime.words import audience, named
from .config import IdentifyConfig
from .noise import MAX_LATENT_DIM

# The memory check's stand-in for an automatic batch size, which is chosen later, per device (256 on a CPU, up to
# 65,536 on a GPU): a GPU's largest fp32 batch twice over.
AUTO_BATCH_ESTIMATE = 16384


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


def check_search_fits(cfg: IdentifyConfig, *, latent_dim: int, image_numel: int, device: torch.device) -> None:
    """Refuse a search whose chunk and batch would exhaust the memory of ``device``, before it starts: the one
    check the step and the Identify page share; the settings to lower are named for the reader."""
    need = identify_bytes(batch_size=cfg.batch_size or AUTO_BATCH_ESTIMATE, chunk_images=cfg.chunk_images,
                          samples=cfg.samples_per_image, latent_dim=latent_dim, image_numel=image_numel)
    specs, app = declared(IdentifyConfig), audience() == "app"
    names = [named(IdentifyConfig, n) for n in ("batch_size", "chunk_images", "samples_per_image")
             if not app or specs[n].label]       # the app has no field for the chunk size
    batch = f"{cfg.batch_size:,}" if cfg.batch_size else "automatic"
    check_fits(need, what=f"identify with Q={cfg.samples_per_image:,}, {cfg.chunk_images:,} images per chunk and "
               f"{batch} decodes per batch", fix=f"lower {', '.join(names[:-1])} or {names[-1]}", device=device)
