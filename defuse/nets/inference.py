"""Batched inference with the models, shared by every package that decodes or classifies: identify's hot
path (:func:`plan_inference`, :func:`prepare_model`, :func:`decode_classify`), the steps' and the reviewer's
:func:`decode_latents`, :func:`classify` and :func:`on_device`, and the import dry run (:mod:`defuse.nets.preflight`).

With the noise as a pure function of (seed, source row, sample, latent dim) (:mod:`defuse.identify.noise`),
what makes identify's search fast is:

* **An inference plan per device**: precision (fp32, or bf16 / fp16 autocast), channels_last memory
  layout and batch size. Measured for the paper's MNIST CNN + β-VAE decoder on 2 shared AMD EPYC
  cores with avx512_bf16, decodes + classifications per second: plain fp32 0.9k-3.5k; fp32
  channels_last 6-8k at batch 256; bf16 autocast + channels_last 11-14k at batch 256-512 (13.5k-27k
  on a quiet machine). fp32 vs bf16 failure sets of the demo models: Jaccard 1.0 (503 failures).
  The batch size has a default per device and precision; on a CPU identify tunes it online between
  256 and 1,024 (:mod:`defuse.identify.autotune`), as the best one moves with the machine's load. Measured
  here, the labels of 102,400 decodes were identical at batch 256, 1,000 and 1,024 in bf16 and fp32;
  ``--batch-size`` pins it where bit-exact reruns on other hardware matter.

Big CPU batches churn glibc's mmap (fp32 fell from 7.7k decodes/s at batch 256 to 2.4k at 2048);
starting the process with ``MALLOC_MMAP_MAX_=0`` or a large ``MALLOC_TRIM_THRESHOLD_`` (the CLI may
set them) lifted fp32 at big batches from 3.5k to 7.5k. They are environment variables read at
process start, so they cannot be set from here. Nothing here changes torch's thread count either:
the CLI decides it (see :func:`defuse.runtime.devices.configure_threads`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..nets.architectures import copy_model
from ..runtime.devices import cpu_has_fast_bf16, resolve_device  # noqa: F401  (re-exported)

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_CHOICES = ("auto", *PRECISIONS)

# Decodes per batch, per (device type, precision). On CPU, 256 was the fastest or within noise of it
# for both precisions (bigger batches leave the caches and churn mmap); GPUs want big batches.
_DEFAULT_BATCH = {("cpu", "fp32"): 256, ("cpu", "bf16"): 256, ("cpu", "fp16"): 256,
                  ("cuda", "fp32"): 8192, ("cuda", "bf16"): 65536, ("cuda", "fp16"): 65536,
                  ("mps", "fp32"): 4096, ("mps", "fp16"): 4096, ("mps", "bf16"): 4096}

# --------------------------------------------------------------------------------------------------
# Inference plan: precision, layout, batch size
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InferencePlan:
    """How the hot loop runs on one device."""

    device: torch.device
    precision: str          # "fp32" | "bf16" | "fp16"
    channels_last: bool
    batch_size: int         # decodes per batch

    def autocast(self):
        """The autocast context for this plan (a no-op context for fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def describe(self) -> dict:
        return {"device": str(self.device), "precision": self.precision,
                "channels_last": self.channels_last, "batch_size": self.batch_size}


def _auto_precision(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"            # MPS autocast coverage is patchy; fp32 is the safe default


def plan_inference(device: torch.device, precision: str = "auto",
                   batch_size: int | None = None) -> InferencePlan:
    """Choose precision, memory layout and batch size for ``device``.

    ``precision="auto"``: CUDA → bf16 (fp16 where bf16 is unsupported); CPU → bf16 on chips with
    native bf16, else fp32; MPS → fp32. channels_last is used on CPU and CUDA, where oneDNN / cuDNN
    run NHWC convolutions faster (on CPU, measured here: about 1.5-2x for fp32, and bf16 only pays
    off with it).
    """
    if precision not in PRECISION_CHOICES:
        raise ValueError(f"precision must be one of {sorted(PRECISION_CHOICES)}; got {precision!r}")
    resolved = _auto_precision(device) if precision == "auto" else precision
    if batch_size is None:
        batch_size = _DEFAULT_BATCH.get((device.type, resolved), 1024)
    return InferencePlan(device, resolved, device.type in ("cpu", "cuda"), int(batch_size))


def prepare_model(model: nn.Module, plan: InferencePlan) -> nn.Module:
    """A copy of ``model`` in eval mode on the plan's device and layout (the caller's model is untouched)."""
    model = copy_model(model).eval().to(plan.device)
    if plan.channels_last:
        with torch.no_grad():  # keeps a TorchScript module's parameters leaves (see copy_model)
            model = model.to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def decode_classify(vae: nn.Module, classifier: nn.Module, z: torch.Tensor,
                    plan: InferencePlan) -> torch.Tensor:
    """The classifier's labels (B,) int64, on the device, for the decodes of ``z`` (B, k).

    Call under ``torch.inference_mode()`` with models from :func:`prepare_model`.
    """
    with plan.autocast():
        x = vae.decode(z)
        if plan.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return classifier(x).argmax(1)


# --------------------------------------------------------------------------------------------------
# Batched inference helpers the other packages reuse
# --------------------------------------------------------------------------------------------------
# ``device=MODEL_DEVICE``: run where the model's weights already are. Its own word: "auto" means what it means
# everywhere else (defuse.runtime.devices.resolve_device: CUDA, then MPS, then the CPU).
MODEL_DEVICE = "model"


def decode_latents(vae: nn.Module, latents, *, device=MODEL_DEVICE, batch_size: int = 512) -> torch.Tensor:
    """Decode latent codes to images (for galleries and fine-tuning data), fp32, no grad.

    Parameters
    ----------
    latents : (n, k) array or tensor
    device : "model" (:data:`MODEL_DEVICE`) runs where the VAE's weights are; another device ("auto" included,
        resolved by ``resolve_device``) runs a copy of the VAE there.

    Returns
    -------
    (n, C, H, W) float32 CPU tensor in [0, 1] (clamped: a decoder's rounding never leaves that range).
    """
    z = latents if isinstance(latents, torch.Tensor) else torch.as_tensor(np.asarray(latents))
    k = getattr(vae, "latent_dim", None)
    if z.dim() != 2 or (k is not None and z.shape[1] != k):
        raise ValueError(f"latents must be (n, latent_dim={k}); got shape {tuple(z.shape)}")
    model, dev = _on_device(vae, device)
    z = z.to(torch.float32)
    # no_grad, not inference_mode: the images may become training data (inference tensors cannot).
    with _eval_mode(model), torch.no_grad():
        if len(z) == 0:
            return model.decode(torch.zeros(1, z.shape[1], device=dev))[:0].float().cpu()
        return torch.cat([model.decode(z[s:s + batch_size].to(dev)).clamp(0, 1).float().cpu()
                          for s in range(0, len(z), batch_size)])


def classify(classifier: nn.Module, images, *, device=MODEL_DEVICE,
             batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and softmax probabilities of ``images`` (N, C, H, W) in [0, 1]; fp32, eval mode.

    Runs under ``torch.no_grad()`` rather than ``inference_mode`` so the results may feed training.
    ``device="model"`` runs where the classifier's weights are; another device ("auto": the best one) runs a copy.

    Returns
    -------
    preds : (N,) int64 CPU tensor
    probs : (N, n_classes) float32 CPU tensor
    """
    x = check_images(images, allow_empty=True)
    model, dev = _on_device(classifier, device)
    with _eval_mode(model), torch.no_grad():
        probs = [model(x[s:s + batch_size].to(dev, torch.float32)).float().softmax(1).cpu()
                 for s in range(0, len(x), batch_size)]
    if not probs:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, 0)
    probs = torch.cat(probs)
    return probs.argmax(1), probs


def check_images(images, *, allow_empty: bool = False) -> torch.Tensor:
    """``images`` as a tensor, or a ValueError that says what is wrong: (N, C, H, W) floats in [0, 1]."""
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError("images must be (N, C, H, W) floats in [0, 1]; "
                         f"got shape {tuple(x.shape)}, dtype {x.dtype}")
    if len(x) == 0:
        if allow_empty:
            return x
        raise ValueError("images is empty: there is nothing to search")
    lo, hi = torch.aminmax(x)
    if not (lo >= 0 and hi <= 1):
        raise ValueError(f"images must be (N, C, H, W) floats in [0, 1]; got values in [{float(lo):.4g}, "
                         f"{float(hi):.4g}] (divide 8-bit images by 255; NaN is not allowed)")
    return x


def _on_device(model: nn.Module, device) -> tuple[nn.Module, torch.device]:
    """The model and its device; an explicit other device gets a copy (the caller's model stays put)."""
    param = next(iter(model.parameters()), None)
    here = param.device if param is not None else torch.device("cpu")
    if device is None or device == MODEL_DEVICE:
        return model, here
    dev = resolve_device(device)
    same = dev.type == here.type and (dev.index is None or dev.index == here.index)
    return (model, here) if same else (copy_model(model).to(dev), dev)


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """Eval mode for the duration; each submodule's own train/eval flag is restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


@contextlib.contextmanager
def on_device(model: nn.Module, device: torch.device) -> Iterator[nn.Module]:
    """Use ``model`` on ``device`` in eval mode, then restore its device and mode (callers may cache it)."""
    first = next(iter(model.parameters()), None)
    home, was_training = (first.device if first is not None else None), model.training
    model.to(device).eval()
    try:
        yield model
    finally:
        model.train(was_training)
        if home is not None:
            model.to(home)
