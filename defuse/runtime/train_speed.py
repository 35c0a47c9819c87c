"""Training loops that keep a GPU busy: data resident on the device, no per-step host syncs, an opt-in compile.

Measured on an H200 (issue 16): the VAE trained at about 200 steps/s, because every step copied its batch
from host memory and read three losses back with ``.item()`` (each a device sync), so Python, not the
GPU, set the pace. The trainers in :mod:`defuse.nets.train` and :mod:`defuse.correct.sweep` use these
helpers instead; on a CPU they change nothing (the tensors already live there).

``DEFUSE_COMPILE`` opts in to ``torch.compile`` on CUDA: "1" or "default" compiles the model,
"reduce-overhead" also captures CUDA graphs. Off by default: compiling costs tens of seconds per model,
which pays only for long runs (benchmarks/train_speed.py measures both).

On a CPU with native bf16 (AVX512-BF16 or AMX), :func:`train_plan` trains in bf16 autocast with
channels_last weights and batches (issue 24): measured on 2 shared Xeon cores, one thread, the β-VAE's
forward+backward+step ran 4.4 steps/s in fp32 and 11.1 in bf16 + channels_last (fp32 + channels_last
alone: 4.8). The losses, the optimiser's state and every evaluation stay fp32. ``DEFUSE_TRAIN_PRECISION``
chooses: "auto" (default: bf16 where the CPU computes it natively, else as before), "fp32" (the loop
exactly as before issue 24) or "bf16".
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
from torch import nn

from .devices import cpu_has_fast_bf16

# Keep at most this share of the free device memory for resident training data.
RESIDENT_SHARE = 0.25
COMPILE_MODES = {"1": "default", "default": "default", "reduce-overhead": "reduce-overhead"}
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")


def resident(t: torch.Tensor, dev: torch.device) -> torch.Tensor:
    """``t`` moved to ``dev`` once when it is a GPU with room for it, else ``t`` unchanged."""
    if dev.type != "cuda" or t.device == dev:
        return t
    free, _ = torch.cuda.mem_get_info(dev)
    return t.to(dev, non_blocking=True) if t.numel() * t.element_size() <= RESIDENT_SHARE * free else t


def compile_mode() -> str | None:
    """The torch.compile mode DEFUSE_COMPILE asks for, or None."""
    value = os.environ.get("DEFUSE_COMPILE", "").strip().lower()
    if value in ("", "0", "off", "no"):
        return None
    if value not in COMPILE_MODES:
        raise ValueError(f"DEFUSE_COMPILE must be one of 0, {', '.join(COMPILE_MODES)}; got {value!r}")
    return COMPILE_MODES[value]


def maybe_compile(model: nn.Module, dev: torch.device) -> nn.Module:
    """The module to call in the training loop: compiled on CUDA when DEFUSE_COMPILE asks, else ``model``.

    The compiled wrapper shares ``model``'s parameters, so the optimiser and the saved weights are the same."""
    mode = compile_mode()
    if mode is None or dev.type != "cuda":
        return model
    return torch.compile(model, mode=mode)


@dataclass(frozen=True)
class TrainPlan:
    """How a trainer runs its forward and backward passes on one device: precision and memory layout.

    The loss is computed in fp32 from the outputs (``.float()``), so only the network's own ops run in bf16."""

    device: torch.device
    precision: str = "fp32"          # "fp32" | "bf16" (autocast)
    channels_last: bool = False

    def model(self, model: nn.Module) -> nn.Module:
        """``model`` moved to the device, in this plan's memory layout (in place, like ``.to``)."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (B, C, H, W) in this plan's layout."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def autocast(self):
        """The context of the forward pass: bf16 autocast, or nothing."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @staticmethod
    def release(model: nn.Module) -> nn.Module:
        """``model`` back in the default layout, as checkpoints and every other step expect it."""
        return model.to(memory_format=torch.contiguous_format)

    def describe(self) -> str:
        return self.precision + (" channels_last" if self.channels_last else "")


def train_precision() -> str:
    """The precision DEFUSE_TRAIN_PRECISION asks for ("auto" when unset)."""
    value = os.environ.get("DEFUSE_TRAIN_PRECISION", "auto").strip().lower() or "auto"
    if value not in TRAIN_PRECISIONS:
        raise ValueError(f"DEFUSE_TRAIN_PRECISION must be one of {', '.join(TRAIN_PRECISIONS)}; got {value!r}")
    return value


def train_plan(dev: torch.device) -> TrainPlan:
    """The plan for training on ``dev``: bf16 autocast + channels_last on a CPU with native bf16 (unless
    DEFUSE_TRAIN_PRECISION says fp32); on other devices fp32 as before, or bf16 when asked for explicitly."""
    precision = train_precision()
    if precision == "auto":
        precision = "bf16" if dev.type == "cpu" and cpu_has_fast_bf16() else "fp32"
    return TrainPlan(dev, precision, channels_last=precision == "bf16" and dev.type == "cpu")
