"""The identify step's hot path: counter-based Beta noise and batched decode + classify at speed.

Two things make the search both fast and reproducible:

* **Noise as a pure function of (seed, source row, sample, latent dim).** ε is drawn with a
  counter-based generator (SplitMix64 on int64 tensors, then Marsaglia-Tsang Gamma variates), so a
  source image's Q perturbations are the same whatever the batch size, the chunk size, the subset or
  a resume, and no Python loop per image is needed. Raising Q keeps the first Q draws.
* **An inference plan per device**: precision (fp32, or bf16 / fp16 autocast), channels_last memory
  layout and batch size. Measured for the paper's MNIST CNN + β-VAE decoder on 2 shared AMD EPYC
  cores with avx512_bf16, decodes + classifications per second: plain fp32 0.9k-3.5k; fp32
  channels_last 6-8k at batch 256; bf16 autocast + channels_last 11-14k at batch 256-512 (13.5k-27k
  on a quiet machine). fp32 vs bf16 failure sets of the demo models: Jaccard 1.0 (503 failures).
  The batch size is a fixed default per device and precision rather than a timed calibration:
  reduced-precision kernels may round differently per batch size, and a timed choice would make the
  same seed give different failures on a busy machine.

Big CPU batches churn glibc's mmap (fp32 fell from 7.7k decodes/s at batch 256 to 2.4k at 2048);
starting the process with ``MALLOC_MMAP_MAX_=0`` or a large ``MALLOC_TRIM_THRESHOLD_`` (the CLI may
set them) lifted fp32 at big batches from 3.5k to 7.5k. They are environment variables read at
process start, so they cannot be set from here. Nothing here changes torch's thread count either:
the CLI decides it (see :func:`defuse.devices.configure_threads`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .devices import resolve_device

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISION_CHOICES = ("auto", *PRECISIONS)

# Decodes per batch, per (device type, precision). On CPU, 256 was the fastest or within noise of it
# for both precisions (bigger batches leave the caches and churn mmap); GPUs want big batches.
_DEFAULT_BATCH = {("cpu", "fp32"): 256, ("cpu", "bf16"): 256, ("cpu", "fp16"): 256,
                  ("cuda", "fp32"): 8192, ("cuda", "bf16"): 65536, ("cuda", "fp16"): 65536,
                  ("mps", "fp32"): 4096, ("mps", "fp16"): 4096, ("mps", "bf16"): 4096}

# --------------------------------------------------------------------------------------------------
# Counter-based Beta(a, b) noise
# --------------------------------------------------------------------------------------------------
_MASK64 = (1 << 64) - 1
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
# counter = stream << 56 | row << 30 | sample << 10 | dim: every (stream, element) pair is a distinct
# counter, and SplitMix64 is a bijection of it, so no two draws can share their bits.
_Q_BITS, _DIM_BITS, _STREAM_SHIFT = 20, 10, 56
MAX_SAMPLES_PER_IMAGE = 1 << _Q_BITS
MAX_LATENT_DIM = 1 << _DIM_BITS
MAX_ROWS = 1 << (_STREAM_SHIFT - _Q_BITS - _DIM_BITS)      # 67,108,864 source images
_MAX_ROUNDS = 64                     # Marsaglia-Tsang accepts >= 95 % per round for shape >= 1


def _signed(c: int) -> int:
    """A 64-bit constant as the int64 torch stores (two's complement)."""
    c &= _MASK64
    return c - (1 << 64) if c >= 1 << 63 else c


def _mix64_int(x: int) -> int:
    """SplitMix64's finaliser on a Python int (turns the seed into a key)."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * _MIX1) & _MASK64
    x = ((x ^ (x >> 27)) * _MIX2) & _MASK64
    return x ^ (x >> 31)


def _srl(x: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def _stream_key(key: int, stream: int) -> int:
    """The key that makes ``counter * G + key`` equal ``(counter + stream << 56) * G + seed key``:
    the stream lives in the counter's top byte at no cost per element."""
    return (key + ((stream << _STREAM_SHIFT) * _GOLDEN)) & _MASK64


def _uniforms(counter: torch.Tensor, key: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Three independent float32 uniforms in (0, 1), 21 bits each, from one SplitMix64 hash of ``counter``.

    In-place int64 arithmetic (which wraps, as SplitMix64 wants): this runs as fast as ``torch.rand``.
    """
    x = counter * _signed(_GOLDEN)
    x.add_(_signed(key))
    x.bitwise_xor_(_srl(x, 30)).mul_(_signed(_MIX1))
    x.bitwise_xor_(_srl(x, 27)).mul_(_signed(_MIX2))
    x.bitwise_xor_(_srl(x, 31))
    mask, scale = (1 << 21) - 1, 2.0 ** -21

    def to_unit(bits: torch.Tensor) -> torch.Tensor:   # +0.5: never exactly 0 or 1 (log, pow)
        return bits.to(torch.float32).add_(0.5).mul_(scale)

    return to_unit(_srl(x, 43)), to_unit((x >> 22) & mask), to_unit(x & mask)


def _log_gamma_variates(shape: float, counter: torch.Tensor, key: int, which: int) -> torch.Tensor:
    """log of Gamma(shape, 1) variates, one per counter (Marsaglia & Tsang 2000, vectorised).

    ``which`` (0 or 1) picks the variates' streams. Rejected elements are redrawn from fresh
    streams (one per round), only those. Shapes < 1 use
    the boost Gamma(a) = Gamma(a + 1) * U^(1/a), kept in log space so tiny shapes cannot underflow.
    The test is written as 3 log1p(cx) - cx(3 + 3cx + c²x²) = log v - (v - 1), which float32 holds
    without the cancellation of the textbook d - dv + d log v.
    """
    boost = shape < 1.0
    d = (shape + 1.0 if boost else shape) - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.empty(counter.shape, dtype=torch.float32, device=counter.device)
    todo = None                                            # None: every element (round 0 skips indexing)
    for rnd in range(_MAX_ROUNDS):
        cnt = counter if todo is None else counter[todo]
        u1, u2, u3 = _uniforms(cnt, _stream_key(key, (which * _MAX_ROUNDS + rnd) * 2))
        cx = u1.log_().mul_(-2.0).sqrt_().mul_(torch.cos(u2.mul_(2.0 * math.pi))).mul_(c)  # c * N(0, 1)
        log_v = torch.log1p(cx.clamp(min=-1.0 + 1e-6)).mul_(3.0)
        excess = log_v - cx * (3.0 + cx * (3.0 + cx))            # log v - (v - 1)
        ok = (cx > -1.0) & (u3.log_() < (cx * cx).mul_(0.5 / (c * c)).add_(excess.mul_(d)))
        log_g = log_v.add_(math.log(d))
        if boost:
            u4 = _uniforms(cnt, _stream_key(key, (which * _MAX_ROUNDS + rnd) * 2 + 1))[0]
            log_g.add_(u4.log_().div_(shape))
        if todo is None:
            out.copy_(log_g)
            todo = (~ok).nonzero().squeeze(1)
        else:
            out[todo[ok]] = log_g[ok]
            todo = todo[~ok]
        if todo.numel() == 0:
            return out
    raise RuntimeError(f"Gamma sampler did not converge in {_MAX_ROUNDS} rounds (shape={shape})")


def beta_noise(seed: int, rows: torch.Tensor, samples: int, latent_dim: int, a: float, b: float,
               device: torch.device | str = "cpu") -> torch.Tensor:
    """ε with every entry ~ Beta(a, b), a pure function of (seed, row, sample, dim).

    Parameters
    ----------
    seed : int
        Non-negative seed.
    rows : (n,) int64 tensor
        The source images' rows in the caller's image array (< ``MAX_ROWS``); they key the noise.
    samples : int
        Q, perturbations per source (at most ``MAX_SAMPLES_PER_IMAGE``).
    latent_dim : int
        k (at most ``MAX_LATENT_DIM``).

    Returns
    -------
    (n, samples, latent_dim) float32 tensor on ``device``.
    """
    device = torch.device(device)
    if device.type == "mps":      # MPS's int64 bit operations are patchy: draw on the CPU, copy once
        return beta_noise(seed, rows.cpu(), samples, latent_dim, a, b, "cpu").to(device)
    rows = rows.to(device=device, dtype=torch.int64)
    counter = ((rows.view(-1, 1, 1) << (_Q_BITS + _DIM_BITS))
               + (torch.arange(samples, device=device).view(1, -1, 1) << _DIM_BITS)
               + torch.arange(latent_dim, device=device).view(1, 1, -1))
    counter = counter.reshape(-1)
    key = _mix64_int(int(seed) * 0x100000001B3 + 0x5EED)
    log_x = _log_gamma_variates(float(a), counter, key, 0)
    log_y = _log_gamma_variates(float(b), counter, key, 1)
    # X / (X + Y) = 1 / (1 + exp(log Y - log X)), which cannot overflow. Not torch.sigmoid: its
    # vectorised and scalar (tensor tail) paths round differently, so ε would depend on the chunk size.
    eps = torch.exp(log_y.sub_(log_x)).add_(1.0).reciprocal_()
    return eps.view(rows.shape[0], samples, latent_dim)


# --------------------------------------------------------------------------------------------------
# Inference plan: precision, layout, batch size
# --------------------------------------------------------------------------------------------------
def cpu_has_fast_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where bf16 autocast pays off.

    ``torch.backends.cpu.get_cpu_capability()`` often says only "AVX512", which older chips without
    bf16 units share, so on Linux the CPU flags decide; elsewhere we stay in fp32.
    """
    capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    if "BF16" in capability or "AMX" in capability:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


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
    model = copy.deepcopy(model).eval().to(plan.device)
    if plan.channels_last:
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
# Batched inference helpers other steps reuse (re-exported by defuse.identify)
# --------------------------------------------------------------------------------------------------
def decode_latents(vae: nn.Module, latents, *, device="auto", batch_size: int = 512) -> torch.Tensor:
    """Decode latent codes to images (for galleries and fine-tuning data), fp32, no grad.

    Parameters
    ----------
    latents : (n, k) array or tensor
    device : "auto" runs where the VAE's weights are; another device runs a copy of the VAE there.

    Returns
    -------
    (n, C, H, W) float32 CPU tensor in [0, 1].
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
        return torch.cat([model.decode(z[s:s + batch_size].to(dev)).float().cpu()
                          for s in range(0, len(z), batch_size)])


def classify(classifier: nn.Module, images, *, device="auto",
             batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels and softmax probabilities of ``images`` (N, C, H, W) in [0, 1]; fp32, eval mode.

    Runs under ``torch.no_grad()`` rather than ``inference_mode`` so the results may feed training.
    ``device="auto"`` runs where the classifier's weights are; another device runs a copy there.

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
    if device is None or device == "auto":
        return model, here
    dev = resolve_device(device)
    same = dev.type == here.type and (dev.index is None or dev.index == here.index)
    return (model, here) if same else (copy.deepcopy(model).to(dev), dev)


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
