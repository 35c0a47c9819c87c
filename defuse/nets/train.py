"""Training the classifier and the β-VAE (paper appendix B), with progress callbacks and recorded curves."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.datasets import ImageData
from ..runtime.devices import resolve_device
from ..runtime.progress import ProgressFn, ProgressReporter
from ..runtime.train_speed import maybe_compile, resident, train_plan
from ..runtime.words import named
from .architectures import build_classifier, build_vae, is_conditional, latent_means, perturbed_dims
from .class_control import class_control
from .config import (  # noqa: F401  (re-exported: their old home)
    _LEGACY_VAE_TRAIN_SPLITS,
    FIDELITY_MAX_GAP,
    VAE_TRAIN_SPLITS,
    TrainConfig,
    VAEConfig,
)
from .vae_recipe import fidelity_gate

PROGRESS_STEPS = 10  # a progress event (and the one loss read back to the host) every this many steps
OPTIMIZERS = {
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "adadelta": lambda params, lr: torch.optim.Adadelta(params, lr=lr),  # the paper's MNIST CNN (B.2)
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
}


@dataclass
class TrainResult:
    model: nn.Module
    history: list = field(default_factory=list)  # one dict per epoch
    metrics: dict = field(default_factory=dict)
    arch_kwargs: dict = field(default_factory=dict)


def classifier_training_split(split, class_keep, seed: int):
    """The images and labels a classifier trained by :func:`train_classifier` with these ``class_keep`` and
    ``seed`` learnt from: the same draw, so that correction fine-tunes on the classifier's own D."""
    return _apply_class_keep(split.images, split.labels, tuple(tuple(p) for p in class_keep),
                             np.random.default_rng(seed))


def _apply_class_keep(images, labels, class_keep, rng):
    if not class_keep:
        return images, labels
    keep = np.ones(len(labels), dtype=bool)
    lab = labels.numpy()
    for cls, frac in class_keep:
        idx = np.flatnonzero(lab == int(cls))
        drop = rng.permutation(idx)[int(round(frac * len(idx))):]
        keep[drop] = False
    mask = torch.from_numpy(keep)
    return images[mask], labels[mask]


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      device: torch.device, batch_size: int = 1024) -> float:
    """Share of ``images`` (N, C, H, W) that ``model`` labels as ``labels``."""
    if len(labels) == 0:
        return float("nan")
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch_size):
        logits = model(images[i:i + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == labels[i:i + batch_size]).sum().item()
    return correct / len(labels)


def _steps_per_s(steps_per_epoch: int, history: list) -> float:
    """Optimiser steps per second of the training loops (evaluation not counted; each epoch ends on a sync)."""
    return steps_per_epoch * len(history) / max(1e-9, sum(h["seconds"] for h in history))


def shuffled_batches(n: int, batch_size: int, gen: torch.Generator):
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def train_classifier(data: ImageData, cfg: TrainConfig = TrainConfig(), *, device="auto",
                     on_progress: ProgressFn = None, model: Optional[nn.Module] = None) -> TrainResult:
    """Train (or continue training ``model``) on ``data.train``; accuracy per epoch on train/val/test."""
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    images, labels = _apply_class_keep(data.train.images, data.train.labels, cfg.class_keep,
                                       np.random.default_rng(cfg.seed))
    mean = images.mean(dim=(0, 2, 3)).tolist()
    std = images.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
    arch_kwargs = dict(channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                       mean=mean, std=std)
    plan = train_plan(dev)  # bf16 autocast + channels_last on a CPU with native bf16 (runtime.train_speed)
    model = plan.model(model or build_classifier(cfg.architecture, **arch_kwargs))
    opt = OPTIMIZERS[cfg.optimizer](model.parameters(), cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = -(-len(labels) // cfg.batch_size)
    report = ProgressReporter("train-classifier", cfg.epochs * steps_per_epoch, on_progress)
    history, step = [], 0
    # On a GPU: the data stays there and the loss is read back once per epoch (see runtime.train_speed).
    x_all, y_all, net = resident(images, dev), resident(labels, dev), maybe_compile(model, dev)
    for epoch in range(cfg.epochs):
        model.train()
        t0, total_loss = time.perf_counter(), torch.zeros((), dtype=torch.float64, device=dev)
        for idx in shuffled_batches(len(labels), cfg.batch_size, gen):
            idx = idx.to(x_all.device)
            x, y = plan.inputs(x_all[idx].to(dev)), y_all[idx].to(dev)
            with plan.autocast():
                logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total_loss += loss.detach().double() * len(idx)
            step += 1
            if step % PROGRESS_STEPS == 0:
                report(step, epoch=epoch + 1, loss=loss.item())
        row = {"epoch": epoch + 1, "loss": total_loss.item() / len(labels), "seconds": time.perf_counter() - t0,
               "train_acc": evaluate_accuracy(model, images, labels, dev),
               "val_acc": evaluate_accuracy(model, data.val.images, data.val.labels, dev)}
        history.append(row)
        report(step, **row)
    metrics = {"test_acc": evaluate_accuracy(model, data.test.images, data.test.labels, dev),
               "val_acc": history[-1]["val_acc"], "train_acc": history[-1]["train_acc"],
               "n_train": len(labels), "seconds_per_epoch": float(np.mean([h["seconds"] for h in history])),
               "steps_per_s": _steps_per_s(steps_per_epoch, history), "train_precision": plan.describe()}
    return TrainResult(plan.release(model).cpu().eval(), history, metrics, arch_kwargs)


def vae_loss(recon, x, mu, logvar, beta: float, free_bits: float = 0.0):
    """Bernoulli reconstruction (summed over pixels) + β·KL, both averaged over the batch."""
    rec = F.binary_cross_entropy(recon, x, reduction="sum") / x.shape[0]
    kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(0)
    kl = kl_per_dim.clamp_min(free_bits).sum() if free_bits > 0 else kl_per_dim.sum()
    return rec + beta * kl, rec, kl


class LabelCritic:
    """The adversary of a conditional VAE's z (issue #21): an MLP learns to read the label from μ, and
    :meth:`leak` is what the encoder pays for what it reads, KL(class prior ‖ critic's posterior) in nats:
    zero exactly when the critic can do no better than the class frequencies, i.e. z tells it nothing
    of the class. (A reversed gradient of the critic's own loss has no floor: the encoder could push the
    critic to be confidently wrong, which is class information too.)"""

    def __init__(self, vae: nn.Module, labels: torch.Tensor, cfg: VAEConfig, dev: torch.device):
        c = vae.num_classes
        self.net = nn.Sequential(nn.Linear(vae.style_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, c)).to(dev)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        prior = torch.bincount(labels.long(), minlength=c).double().clamp_min(1)
        self.prior = (prior / prior.sum()).float().to(dev)

    def leak(self, mu: torch.Tensor) -> torch.Tensor:
        log_q = F.log_softmax(self.net(mu), 1)
        return (self.prior * (self.prior.log() - log_q)).sum(1).mean()

    def learn(self, mu: torch.Tensor, labels: torch.Tensor) -> None:
        loss = F.cross_entropy(self.net(mu), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def vae_images(data: ImageData, train_on: str) -> torch.Tensor:
    """The images (N, C, H, W) a VAE with ``train_on`` trains on: never the test split."""
    return torch.cat([getattr(data, split).images for split in VAE_TRAIN_SPLITS[train_on]])


def vae_labels(data: ImageData, train_on: str) -> torch.Tensor:
    """The labels (N,) of :func:`vae_images` (a conditional VAE trains on both)."""
    return torch.cat([getattr(data, split).labels for split in VAE_TRAIN_SPLITS[train_on]])


def vae_architecture(cfg: VAEConfig) -> str:
    return "conditional-beta-vae" if cfg.conditional else "beta-vae"


def fidelity_split(train_on: Optional[str]) -> tuple[str, Optional[bool]]:
    """(split to measure a VAE's fidelity on, whether the VAE never trained on it; None: unknown).

    ``train_on`` is the VAE's recorded setting; "all" is what VAEs trained before issue #12 record
    (train, validation and test), None an imported VAE whose training data is unknown.
    """
    seen = {**VAE_TRAIN_SPLITS, **_LEGACY_VAE_TRAIN_SPLITS}.get(train_on)
    if seen is None:
        return "val", None
    unseen = [split for split in ("val", "test") if split not in seen]
    return (unseen[0], True) if unseen else ("val", False)


def train_vae(data: ImageData, cfg: VAEConfig = VAEConfig(), *, device="auto", on_progress: ProgressFn = None,
              classifier: Optional[nn.Module] = None,
              stop: Optional[Callable[[nn.Module, dict], bool]] = None) -> TrainResult:
    """Train a β-VAE; with ``classifier``, also measure fidelity (see :func:`vae_fidelity`).

    ``stop(vae, row)``, when given, is called after every epoch with the VAE (in eval mode) and the epoch's
    history row, which it may add figures to; True ends the training there (e.g.
    :class:`defuse.nets.early_stop.FidelityStop`: when the validation fidelity stops improving)."""
    dev = resolve_device(device)
    torch.manual_seed(cfg.seed)
    images, labels = vae_images(data, cfg.train_on), vae_labels(data, cfg.train_on)
    arch_kwargs = dict(channels=data.channels, image_size=data.image_size, latent_dim=cfg.latent_dim, width=cfg.width,
                       **({"num_classes": data.num_classes, "label_in": cfg.label_in} if cfg.conditional else {}))
    plan = train_plan(dev)  # bf16 autocast + channels_last on a CPU with native bf16 (runtime.train_speed)
    vae = plan.model(build_vae(vae_architecture(cfg), **arch_kwargs))
    opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
    critic = LabelCritic(vae, labels, cfg, dev) if cfg.conditional and cfg.class_adversary > 0 else None
    gen = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = -(-len(images) // cfg.batch_size)
    report = ProgressReporter("train-vae", cfg.epochs * steps_per_epoch, on_progress)
    history, step = [], 0
    x_all, y_all, net = resident(images, dev), resident(labels, dev), maybe_compile(vae, dev)  # runtime.train_speed
    for epoch in range(cfg.epochs):
        vae.train()
        t0, sums = time.perf_counter(), torch.zeros(3, dtype=torch.float64, device=dev)
        for idx in shuffled_batches(len(images), cfg.batch_size, gen):
            x = plan.inputs(x_all[idx.to(x_all.device)].to(dev))
            beta = cfg.beta * min(1.0, (step + 1) / cfg.kl_anneal_steps) if cfg.kl_anneal_steps else cfg.beta
            with plan.autocast():
                recon, mu, logvar = net(x, y_all[idx.to(y_all.device)].to(dev)) if cfg.conditional else net(x)
            loss, rec, kl = vae_loss(recon.float(), x, mu.float(), logvar.float(), beta=beta, free_bits=cfg.free_bits)
            if critic is not None:
                loss = loss + cfg.class_adversary * critic.leak(mu.float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if critic is not None:
                critic.learn(mu.detach().float(), y_all[idx.to(y_all.device)].to(dev))  # fp32 under bf16 autocast
            sums += torch.stack([loss, rec, kl]).detach().double() * len(idx)  # no host sync per step
            step += 1
            if step % PROGRESS_STEPS == 0:  # steps/s and an ETA from the first steps; no loss read back (no sync)
                report(step, epoch=epoch + 1)
        loss_m, rec_m, kl_m = (sums / len(images)).tolist()
        row = {"epoch": epoch + 1, "step": step, "loss": loss_m, "recon": rec_m, "kl": kl_m,
               "seconds": time.perf_counter() - t0}
        done = stop is not None and bool(stop(vae.eval(), row))
        history.append(row)
        report(step, **row)
        if done:
            break
    vae = plan.release(vae).cpu().eval()
    metrics = {"loss": history[-1]["loss"], "recon": history[-1]["recon"], "kl": history[-1]["kl"],
               "n_images": len(images), "trained_on": "+".join(VAE_TRAIN_SPLITS[cfg.train_on]),
               "steps": step, "stopped_early": len(history) < cfg.epochs,
               "seconds_per_epoch": float(np.mean([h["seconds"] for h in history])),
               "steps_per_s": _steps_per_s(steps_per_epoch, history), "train_precision": plan.describe()}
    if classifier is not None:
        metrics.update(vae_fidelity(vae, classifier, data, split=fidelity_split(cfg.train_on)[0]))
    return TrainResult(vae, history, metrics, arch_kwargs)


@torch.no_grad()
def vae_fidelity(vae: nn.Module, classifier: nn.Module, data: ImageData, *, split: str = "val", device="auto",
                 batch_size: int = 512) -> dict:
    """How faithful the VAE is, which bounds how real identify's finds can be.

    Returns the classifier's accuracy on the ``split``'s originals (pick one the VAE did not train on:
    :func:`fidelity_split`) and on their reconstructions (decoded latent means), the gap, the number of
    active latent dimensions (std of mu over those images > 0.1), and ``fidelity_ok`` (gap within
    FIDELITY_MAX_GAP). A conditional VAE reconstructs with each image's own label, and adds
    ``class_control_classifier`` (:mod:`defuse.nets.class_control`, read by the classifier).
    """
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test'; got {split!r}")
    dev = resolve_device(device)
    vae, classifier = vae.to(dev).eval(), classifier.to(dev).eval()
    images, labels = getattr(data, split).images, getattr(data, split).labels
    recon_correct, mus = 0, []
    for i in range(0, len(labels), batch_size):
        mu = latent_means(vae, images[i:i + batch_size].to(dev), labels[i:i + batch_size])
        mus.append(mu.cpu())
        preds = classifier(vae.decode(mu)).argmax(1).cpu()
        recon_correct += (preds == labels[i:i + batch_size]).sum().item()
    acc_orig = evaluate_accuracy(classifier, images, labels, dev, batch_size)
    acc_recon = recon_correct / max(1, len(labels))
    style = perturbed_dims(vae, int(vae.latent_dim))       # a conditional VAE's label dims are not latent
    active = int((torch.cat(mus)[:, :style].std(0) > 0.1).sum().item()) if mus else 0
    out = {"acc_original": acc_orig, "acc_reconstruction": acc_recon, "fidelity_gap": acc_orig - acc_recon,
           "active_dims": active, "latent_dim": style, "fidelity_split": split,
           "fidelity_ok": bool(acc_orig - acc_recon <= FIDELITY_MAX_GAP)}
    if is_conditional(vae):
        out["class_control_classifier"] = class_control(
            vae, lambda x: classifier(x.to(dev)).argmax(1).cpu(), images, labels)
    vae.cpu(), classifier.cpu()
    return out


def fidelity_warning(metrics: dict, config: Optional[dict] = None) -> Optional[str]:
    """A plain-words warning when the VAE's reconstructions are not recognisable enough, else None; its advice
    fits the training ``config`` used (see defuse.nets.vae_recipe.fidelity_gate)."""
    return fidelity_gate(metrics, config)


def parse_class_keep(text: str) -> tuple:
    """TrainConfig.class_keep from text such as "9:0.1, 3:0.5" (the CLI's --class-keep, the Setup page's field)."""
    pairs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        try:
            cls, frac = item.split(":")
            pairs.append((int(cls), float(frac)))
        except ValueError:
            raise ValueError(f"each entry of {named(TrainConfig, 'class_keep')} looks like CLASS:FRACTION "
                             f"(e.g. 9:0.1); got {item!r}") from None
    return tuple(pairs)
