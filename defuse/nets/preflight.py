"""A dry run of everything the pipeline will ask of a classifier, on a few images, in seconds.

A user's network can fail in any step: identify runs it copied, in channels_last and bf16 autocast under
inference mode; correction copies it, trains it (backward through it, an optimizer step) and loads
fine-tuned weights back; export writes it in its own format. Each of those is tried here, at import, so
a model that cannot go through is refused in seconds with the step that failed, not after minutes of
training the reviewer and searching.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..runtime.devices import resolve_device
from ..runtime.words import option
from .architectures import copy_model
from .inference import plan_inference, prepare_model


def bare_weights_advice() -> str:
    """What to do with a file the pipeline cannot run, in the reader's words."""
    return (f"Save its weights as safetensors and name its class ({option('architecture-class')}), or convert "
            "the file once with `python -m defuse convert`.")
# torch.export specialises every shape it is not told is dynamic; Defuse's batches vary in size.
STATIC_SHAPE_ADVICE = ("The program was exported for a fixed batch size: export it with a dynamic batch "
                       "dimension (torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("
                       "'batch')},))), or convert it to safetensors + its class with `python -m defuse convert`.")


def check_pipeline_ready(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, num_classes: int,
                         device="auto", architecture: str = "") -> list[str]:
    """Raise ValueError naming the first step the classifier cannot do; return the checks passed.

    Parameters
    ----------
    images : (n, C, H, W) floats in [0, 1], a few of the project's own images (n >= 2).
    labels : (n,) int64 their labels.
    """
    dev = resolve_device(device)
    plans = {plan_inference(dev, "fp32")}
    plans.add(plan_inference(dev, "auto"))  # the precision identify will pick on this machine
    passed = []
    for plan in sorted(plans, key=lambda p: p.precision):
        what = f"identify's forward pass on {dev.type} ({plan.precision}, channels_last={plan.channels_last})"
        _step(what, lambda plan=plan: _forward(model, images, num_classes, plan))
        passed.append(what)
    _step("fine-tuning (a backward pass and an optimizer step)", lambda: _train_step(model, images, labels, dev))
    passed.append("fine-tuning")
    _step("exporting the corrected checkpoint", lambda: _export(model, images, architecture))
    passed.append("export")
    return passed


def _step(what: str, fn) -> None:
    try:
        fn()
    except ValueError:
        raise
    except Exception as e:  # a foreign network can fail in any way; say which step and why
        first = (str(e).strip().splitlines() or [""])[0][:200]
        advice = STATIC_SHAPE_ADVICE if "Guard failed" in first else bare_weights_advice()
        raise ValueError(f"the classifier cannot go through the pipeline: {what} failed "
                         f"({type(e).__name__}: {first}). {advice}") from e


def _forward(model: nn.Module, images: torch.Tensor, num_classes: int, plan) -> None:
    net = prepare_model(model, plan)
    x = images.to(plan.device)
    if plan.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), plan.autocast():
        out = net(x)
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise ValueError(f"the classifier outputs shape {tuple(out.shape)} but the data has {num_classes} "
                         f"classes: expected (N, {num_classes}) logits")
    if not torch.isfinite(out.float()).all():
        raise ValueError(f"the classifier outputs NaN or infinite logits on this data ({plan.precision})")


def _train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, dev: torch.device) -> None:
    net = copy_model(model).to(dev)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the classifier has no trainable parameters: it cannot be corrected")
    opt = torch.optim.Adam(params, lr=1e-6)
    net.train()
    loss = F.cross_entropy(net(images.to(dev)), labels.to(dev))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if all(p.grad is None for p in params):
        raise ValueError("no gradient reaches the classifier's parameters: it cannot be corrected")
    opt.step()
    net.eval()
    # the sweep keeps fine-tuned weights as state dicts and loads the chosen one into a fresh copy
    copy_model(model).load_state_dict({k: v.detach().cpu() for k, v in net.state_dict().items()})


def _export(model: nn.Module, images: torch.Tensor, architecture: str) -> None:
    from .checkpoints import save_model
    from .code_models import WRITERS

    with tempfile.TemporaryDirectory() as tmp:
        save_model(copy_model(model).cpu().eval(), Path(tmp) / "check", kind="classifier",
                   architecture=architecture or "check", arch_kwargs={})
        if architecture in WRITERS:
            suffix, write = WRITERS[architecture]
            write(copy_model(model).cpu().eval(), Path(tmp) / f"check{suffix}", images[:1].cpu())
