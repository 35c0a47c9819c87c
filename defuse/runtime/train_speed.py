"""Training loops that keep a GPU busy: data resident on the device, no per-step host syncs, an opt-in compile.

Measured on an H200 (issue 16): the VAE trained at about 200 steps/s, because every step copied its batch
from host memory and read three losses back with ``.item()`` (each a device sync), so Python, not the
GPU, set the pace. The trainers in :mod:`defuse.nets.train` and :mod:`defuse.correct.sweep` use these
helpers instead; on a CPU they change nothing (the tensors already live there).

``DEFUSE_COMPILE`` opts in to ``torch.compile`` on CUDA: "1" or "default" compiles the model,
"reduce-overhead" also captures CUDA graphs. Off by default: compiling costs tens of seconds per model,
which pays only for long runs (benchmarks/train_speed.py measures both).
"""

from __future__ import annotations

import os

import torch
from torch import nn

# Keep at most this share of the free device memory for resident training data.
RESIDENT_SHARE = 0.25
COMPILE_MODES = {"1": "default", "default": "default", "reduce-overhead": "reduce-overhead"}


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
