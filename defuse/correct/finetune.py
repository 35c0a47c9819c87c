"""Fine-tuning engines of the λ sweep: one classifier copy per λ, or all λ at once through vmap,
and the on-disk store of finished λs that makes a sweep resumable (used by :mod:`defuse.correct`)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from ..nets.architectures import copy_model
from ..runtime import atomic
from ..runtime.train_speed import train_plan

# ------------------------------------------------------------------ trainers: one λ, or a stack of λ

class SingleTrainer:
    """One fresh copy of the classifier, trained the ordinary way (works for TorchScript too)."""

    def __init__(self, template: nn.Module, lams: list, cfg, dev: torch.device):
        self.plan = train_plan(dev)  # bf16 autocast + channels_last on a CPU with native bf16
        self.lams, self.model = list(lams), self.plan.model(copy_model(template))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)

    def step(self, x, y, xf, yf) -> None:
        self.model.train()
        plan = self.plan
        with plan.autocast():
            logits = self.model(plan.inputs(x))
            # the control never sees D_f, not even through batch-norm statistics
            logits_f = self.model(plan.inputs(xf)) if self.lams[0] > 0 else None
        loss = F.cross_entropy(logits.float(), y)
        if logits_f is not None:
            loss = loss + self.lams[0] * F.cross_entropy(logits_f.float(), yf)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def logits(self, x) -> torch.Tensor:
        """(B, C, H, W) -> (1, B, classes)."""
        self.model.eval()
        return self.model(x).unsqueeze(0)

    def state(self, k: int) -> dict:
        # contiguous: a channels_last weight would save (and load) in another memory layout
        return {n: v.detach().cpu().clone(memory_format=torch.contiguous_format)
                for n, v in self.model.state_dict().items()}


class StackedTrainer:
    """K copies of the classifier, one per λ, trained at once: parameters stacked along a new first
    dimension and the network run through ``torch.func.vmap``. Adam works element by element, so
    one Adam over the stacked tensors is exactly K independent Adams; the summed loss gives each
    copy its own gradient since the copies share no parameter."""

    def __init__(self, template: nn.Module, lams: list, cfg, dev: torch.device):
        self.lams = list(lams)
        self.params, self.buffers = stack_module_state([copy_model(template).to(dev) for _ in lams])
        self.base = copy_model(template).to("meta")  # structure only; the weights live in params
        self.keys = list(template.state_dict())
        self.lam = torch.tensor(self.lams, dtype=torch.float32, device=dev)
        self.opt = torch.optim.Adam(list(self.params.values()), lr=cfg.lr)

    def _forward(self, x):
        call = lambda p, b, inp: functional_call(self.base, (p, b), (inp,))  # noqa: E731
        return vmap(call, in_dims=(0, 0, None))(self.params, self.buffers, x)

    def step(self, x, y, xf, yf) -> None:
        self.base.train()
        loss = stacked_cross_entropy(self._forward(x), y) + self.lam * stacked_cross_entropy(self._forward(xf), yf)
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt.step()

    def logits(self, x) -> torch.Tensor:
        """(B, C, H, W) -> (K, B, classes)."""
        self.base.eval()
        return self._forward(x)

    def state(self, k: int) -> dict:
        return {n: (self.params[n] if n in self.params else self.buffers[n])[k].detach().cpu().clone()
                for n in self.keys}


def stacked_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross entropy per model: logits (K, B, classes), y (B,) -> (K,)."""
    k, b, c = logits.shape
    return F.cross_entropy(logits.reshape(k * b, c), y.repeat(k), reduction="none").view(k, b).mean(1)


def vmap_works(template: nn.Module, example: torch.Tensor) -> bool:
    if isinstance(template, torch.jit.ScriptModule):
        return False
    try:  # a user's network may hold ops vmap cannot batch; probe once on two CPU copies
        with torch.no_grad():
            StackedTrainer(template, [1.0, 1.0], SimpleNamespace(lr=1e-3), torch.device("cpu")).logits(example)
        return True
    except Exception:
        return False


class SweepStore:
    """Finished λs in ``root``: ``[baseline-]lambda-<λ>.safetensors``, then its ``.json``, which marks it done
    and carries the sweep's fingerprint: results of other inputs or settings are ignored and overwritten."""

    def __init__(self, root, fingerprint: str):
        self.root, self.fingerprint = (Path(root) if root is not None else None), fingerprint

    def _path(self, kind: str, lam: float, suffix: str) -> Path:
        # built by hand: Path.with_suffix would eat the ".0" of "lambda-0.0"
        return self.root / f"{'baseline-' if kind == 'baseline' else ''}lambda-{float(lam)!r}{suffix}"

    def load(self, kind: str, lam: float) -> Optional[tuple]:
        if self.root is None:
            return None
        weights = self._path(kind, lam, ".safetensors")
        try:
            record = json.loads(self._path(kind, lam, ".json").read_text())
        except (OSError, json.JSONDecodeError):
            return None  # not finished (or never written): train it
        if (record.get("fingerprint") != self.fingerprint or not weights.exists()
                or atomic.sha256_file(weights) != record.get("weights_sha256")):
            return None
        return record["rows"], record["best"]

    def save(self, kind: str, lam: float, rows: list, best: dict, state: dict) -> None:
        if self.root is None:
            return
        weights = self._path(kind, lam, ".safetensors")
        with atomic.atomic_path(weights) as tmp:
            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
        atomic.write_json(self._path(kind, lam, ".json"), {
            "fingerprint": self.fingerprint, "kind": kind, "lambda": lam, "rows": rows, "best": best,
            "weights_sha256": atomic.sha256_file(weights)})

    def state(self, kind: str, lam: float) -> dict:
        return load_file(str(self._path(kind, lam, ".safetensors")))
