"""The verification filter: keep only the unrestricted adversarial examples a reviewer confirms.

With the paper's unconditional VAE most UAEs are artefacts: the perturbed decode shows another class,
which the classifier then reads correctly (measured: reviewer A reads 62–75 % of them as the classifier
does). The filter decodes every UAE and keeps those the reviewer (the annotator stand-in) reads as the
source's class, so distillation only sees decodes that still show their class and the classifier gets
wrong. It costs finds; :func:`verify_failures` reports how many. The paper's method is the default;
this is an option (``identify_step(..., verify="reviewer")``, ``benchmarks/paper_table.py --verify``).

Two rules (``VERIFY_RULES``): "reviewer" keeps a UAE the reviewer's vote reads as the source's class;
"clear" keeps it only where every member reads it so with a top probability >= 0.9 (the reviewer's
``clear_labels``). Why the second: on boundary decodes two strong readers disagree (reviewer A kept
74% of MNIST's UAEs, the independent judge read 43% of those as the source's class), and a decode
that only a vote calls real teaches the correction a label the image does not carry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import numpy as np
import torch
from torch import nn

from ..nets.inference import on_device
from ..runtime.devices import resolve_device
from .search import Failures, decode_latents

VERIFY_RULES = ("reviewer", "clear")


@torch.no_grad()
def reviewer_labels(reviewer: nn.Module, vae: nn.Module, latents: np.ndarray, *, device="auto",
                    batch_size: int = 2048) -> np.ndarray:
    """The reviewer's label (n,) int64 for the decode of each latent code (n, k), batch by batch."""
    dev = resolve_device(device)
    with on_device(reviewer, dev):
        return decoded_labels(lambda x: reviewer(x.to(dev).float()).argmax(1).cpu().numpy(), vae, latents,
                              device=dev, batch_size=batch_size)


@torch.no_grad()
def decoded_labels(read: Callable[[torch.Tensor], np.ndarray], vae: nn.Module, latents: np.ndarray, *,
                   device="auto", batch_size: int = 2048) -> np.ndarray:
    """``read``'s label (n,) int64 for the decode of each latent code (n, k), batch by batch (-1: unclear)."""
    out = [np.asarray(read(decode_latents(vae, latents[i:i + batch_size], device=device)), np.int64)
           for i in range(0, len(latents), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def keep_verified(failures: Failures, labels: np.ndarray) -> Failures:
    """The rows of ``failures`` whose ``labels`` (n,) equal the source's true label, with the cost in metrics."""
    labels = np.asarray(labels)
    if labels.shape != (len(failures),):
        raise ValueError(f"labels must have one entry per failure, shape ({len(failures)},); got {labels.shape}")
    keep = labels == failures.true_label
    kept = {f.name: getattr(failures, f.name)[keep] for f in fields(Failures) if f.name != "metrics"}
    cost = {"verified": True, "n_before_verification": len(failures), "n_verified": int(keep.sum()),
            "verified_share": float(keep.mean()) if len(failures) else None,
            "sources_before_verification": int(np.unique(failures.source_index).size),
            "sources_verified": int(np.unique(failures.source_index[keep]).size)}
    return Failures(**kept, metrics={**failures.metrics, **cost})


def verify_failures(failures: Failures, vae: nn.Module, reviewer: nn.Module, *, device="auto",
                    read: Callable[[torch.Tensor], np.ndarray] | None = None, rule: str = "reviewer") -> Failures:
    """Keep the UAEs whose decode ``reviewer`` reads as the source's class (a real classifier failure).

    ``read`` (images -> labels, -1 where unclear) replaces the reviewer's vote, e.g. the members' clear
    labels; ``rule`` names it in the metrics."""
    labels = (reviewer_labels(reviewer, vae, failures.latents, device=device) if read is None
              else decoded_labels(read, vae, failures.latents, device=device))
    kept = keep_verified(failures, labels)
    kept.metrics["verify_rule"] = rule
    return kept
