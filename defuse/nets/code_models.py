"""Classifiers that carry their own code: TorchScript and torch.export files, and how to write them back.

Only :mod:`defuse.nets.checkpoints` calls the loaders here, after :func:`defuse.nets.trust.require` has allowed the
file. Both formats are then used as the networks they are:

* TorchScript modules train like any module (a *traced* one keeps the train/eval behaviour it was traced
  in: batch-norm statistics and dropout as captured).
* A torch.export program cannot be put in training mode at all (``train()`` raises), so it is wrapped in
  :class:`CapturedProgram`, which fine-tunes it in the mode it was exported in: gradients flow through
  the graph, batch-norm statistics stay frozen, dropout stays as captured. Converting the file to
  safetensors + its architecture (``python -m defuse convert``) restores ordinary training.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..runtime import atomic
from .model_files import TORCH_EXPORT, TORCHSCRIPT


class CapturedProgram(nn.Module):
    """A torch.export program as a module whose ``train()``/``eval()`` leave the program's captured mode alone."""

    captured_mode_note = ("a torch.export program runs in the mode it was exported in: fine-tuning keeps its "
                          "batch-norm statistics frozen and its dropout as captured")

    def __init__(self, program_module: nn.Module):
        super().__init__()
        self.program = program_module

    def train(self, mode: bool = True):
        self.training = mode  # not passed on: the exported graph refuses train() and has its mode baked in
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)


def load_torch_export(path: Path) -> nn.Module:
    """Call only for a trusted file: ``torch.export.load`` unpickles parts of it."""
    try:
        return CapturedProgram(torch.export.load(str(path)).module()).eval()
    except Exception as e:  # a broken or foreign archive fails in many ways inside torch
        raise ValueError(f"{path} is not a loadable torch.export program ({type(e).__name__}: {e})") from e


def load_torchscript(path: Path) -> nn.Module:
    """Call only for a trusted file: TorchScript compiles and runs the code it carries."""
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:
        raise ValueError(f"{path} is not a loadable TorchScript file ({type(e).__name__}: {e})") from e


LOADERS = {TORCH_EXPORT: load_torch_export, TORCHSCRIPT: load_torchscript}


def weights_of(model: nn.Module) -> dict:
    """The state dict under the names of the network that was scripted or exported (for conversion)."""
    inner = model.program if isinstance(model, CapturedProgram) else model
    return {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()}


def save_torchscript(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    model = model.eval()
    script = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.trace(model, example)
    with atomic.atomic_path(path) as tmp:
        torch.jit.save(script, str(tmp))


def save_torch_export(model: nn.Module, path: Path, example: torch.Tensor) -> None:
    # a dynamic batch dimension, or the program only takes the example's batch size; an example of two
    # images, since export specialises dimensions of size 1
    example = example[:1].expand(2, *example.shape[1:]).contiguous()
    batch = ({0: torch.export.Dim("batch", min=1)},)
    program = torch.export.export(model.eval(), (example,), dynamic_shapes=batch)
    with atomic.atomic_path(path) as tmp:
        torch.export.save(program, str(tmp))


# how a fine-tuned network of each format is written back (the suffix and the writer)
WRITERS = {TORCHSCRIPT: (".ts", save_torchscript), TORCH_EXPORT: (".pt2", save_torch_export)}
