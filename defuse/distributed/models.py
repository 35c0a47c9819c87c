"""Models on their way to Ray workers: plain modules travel as pickles through the object store;
TorchScript modules (which cannot be pickled) as their serialized bytes."""

from __future__ import annotations

import copy
import io

import torch
from torch import nn


def pack_model(model: nn.Module):
    """A CPU copy of ``model`` in a form Ray can ship (the caller's model is untouched)."""
    if isinstance(model, torch.jit.ScriptModule):
        buf = io.BytesIO()
        torch.jit.save(copy.deepcopy(model).cpu(), buf)
        return ("torchscript", buf.getvalue())
    with torch.no_grad():
        return ("module", copy.deepcopy(model).cpu())


def unpack_model(packed) -> nn.Module:
    """The module from :func:`pack_model`. The TorchScript bytes are the driver's own model, which its
    user already chose to load; they are read only inside the cluster's workers."""
    kind, payload = packed
    if kind == "torchscript":
        return torch.jit.load(io.BytesIO(payload), map_location="cpu")
    return payload
