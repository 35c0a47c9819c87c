"""The independent judge: a classifier that grades Defuse's per-sample figures and made none of its labels.

The automatic reviewer labels the review samples, D_f and the baseline's examples, so grading those
figures with it would measure its agreement with itself. The judge is a different network (a small
ResNet trained with augmentation, :class:`defuse.nets.SmallResNet`), with its own seed, trained on the
training split only and reported with its own test accuracy. No pipeline step uses it: it exists for
evaluation (``benchmarks/paper_table.py``, :mod:`defuse.grading`). It is saved as safetensors + JSON
sidecar under a name keyed by the fingerprint of its data and settings, so a second run reuses it.

The grading arithmetic is here as plain functions over label arrays, so it can be checked by hand.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..data.datasets import ImageData
from ..nets import checkpoints
from ..nets.architectures import build_classifier
from ..nets.train import evaluate_accuracy
from ..runtime.devices import resolve_device
from ..runtime.progress import ProgressFn, ProgressReporter

ARCHITECTURE = "small-resnet"


@dataclass(frozen=True)
class JudgeConfig:
    """The judge's network and training; ``seed`` stays away from the classifier's (0) and reviewers' (1000+)."""

    width: int = 16
    blocks: int = 1
    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    shift: int = 2                # augmentation: random translation by up to this many pixels
    rotate: float = 8.0           # and random rotation by up to this many degrees (no flips: digits)
    seed: int = 3000

    def __post_init__(self):
        for name in ("width", "blocks", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
        for name in ("lr", "weight_decay", "shift", "rotate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < math.inf or (name == "lr" and value == 0):
                raise ValueError(f"{name} must be a finite number {'> 0' if name == 'lr' else '>= 0'}; got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0; got {self.seed!r}")


# Quick: CPU minutes. Full: the paper's-settings runs (a GPU), a wider, deeper net trained longer.
JUDGE_PRESETS = {"quick": JudgeConfig(), "full": JudgeConfig(width=32, blocks=2, epochs=30)}


@dataclass
class Judge:
    model: nn.Module   # images (N, C, H, W) in [0, 1] -> logits (N, classes)
    meta: dict         # the sidecar: config, metrics (test_acc, val_acc, n_train), fingerprint

    @property
    def test_acc(self) -> float:
        return float(self.meta["metrics"]["test_acc"])

    @torch.no_grad()
    def read(self, images, *, device="auto", batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """The judge's label (n,) int64 and its confidence (n,) float32 (top softmax probability)."""
        x, dev = torch.as_tensor(images).float(), resolve_device(device)
        model = self.model.to(dev).eval()
        out = [torch.softmax(model(x[i:i + batch_size].to(dev)).float(), 1).cpu() for i in range(0, len(x), batch_size)]
        self.model.cpu()
        if not out:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        conf, labels = torch.cat(out).max(1)
        return labels.numpy().astype(np.int64), conf.numpy().astype(np.float32)

    def labels(self, images, *, device="auto", batch_size: int = 512) -> np.ndarray:
        """The judge's label (n,) int64 for images (n, C, H, W) in [0, 1]."""
        return self.read(images, device=device, batch_size=batch_size)[0]


def judge_training_set(data: ImageData) -> tuple[torch.Tensor, torch.Tensor]:
    """What the judge learns from: the training split, every class. Validation and test only measure it."""
    return data.train.images, data.train.labels


def fingerprint(data: ImageData, cfg: JudgeConfig) -> str:
    """sha256 (16 hex digits) over the settings and every split's images and labels."""
    h = hashlib.sha256(json.dumps({"config": asdict(cfg), "architecture": ARCHITECTURE,
                                   "class_names": list(data.class_names)}, sort_keys=True).encode())
    for split in ("train", "val", "test"):
        for t in (getattr(data, split).images, getattr(data, split).labels):
            h.update(str((tuple(t.shape), t.dtype)).encode())
            h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _augment(x: torch.Tensor, cfg: JudgeConfig, gen: torch.Generator) -> torch.Tensor:
    """Random small rotation and translation per image (one affine grid per batch, bilinear)."""
    n, size = len(x), x.shape[-1]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(cfg.rotate)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 * cfg.shift / size)  # grid units: 2 = the image
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False).clamp(0, 1)


def train_judge(data: ImageData, cfg: JudgeConfig = JudgeConfig(), *, device="auto",
                on_progress: ProgressFn = None) -> Judge:
    """Train the judge on :func:`judge_training_set` (AdamW, one-cycle learning rate, augmentation)."""
    dev = resolve_device(device)
    images, labels = judge_training_set(data)
    kwargs = dict(channels=data.channels, image_size=data.image_size, num_classes=data.num_classes,
                  mean=images.mean(dim=(0, 2, 3)).tolist(), std=images.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist(),
                  width=cfg.width, blocks=cfg.blocks)
    torch.manual_seed(cfg.seed)
    model = build_classifier(ARCHITECTURE, **kwargs).to(dev)
    steps = cfg.epochs * -(-len(labels) // cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    gen, report, step = torch.Generator().manual_seed(cfg.seed), ProgressReporter("train-judge", steps, on_progress), 0
    for epoch in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(labels), generator=gen).split(cfg.batch_size):
            x = _augment(images[idx], cfg, gen).to(dev) if cfg.shift or cfg.rotate else images[idx].to(dev)
            loss = F.cross_entropy(model(x), labels[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            step += 1
            if step % 20 == 0 or step == steps:
                report(step, epoch=epoch + 1, loss=loss.item())
    model.eval()
    metrics = {"test_acc": evaluate_accuracy(model, data.test.images, data.test.labels, dev),
               "val_acc": evaluate_accuracy(model, data.val.images, data.val.labels, dev),
               "n_train": len(labels), "trained_on": "train"}
    meta = {"architecture": ARCHITECTURE, "arch_kwargs": kwargs, "config": asdict(cfg), "metrics": metrics,
            "fingerprint": fingerprint(data, cfg)}
    return Judge(model.cpu(), meta)


def load_or_train_judge(data: ImageData, cfg: JudgeConfig, folder, *, device="auto",
                        on_progress: ProgressFn = None) -> Judge:
    """The judge for ``data`` and ``cfg`` saved in ``folder`` (``judge-<fingerprint>``), trained if missing."""
    path = Path(folder) / f"judge-{fingerprint(data, cfg)}"
    if path.with_suffix(".json").is_file():
        model, meta = checkpoints.load_model(path, kind="classifier")
        return Judge(model.eval(), meta)
    judge = train_judge(data, cfg, device=device, on_progress=on_progress)
    Path(folder).mkdir(parents=True, exist_ok=True)
    judge.meta = checkpoints.save_model(
        judge.model, path, kind="classifier", architecture=ARCHITECTURE, arch_kwargs=judge.meta["arch_kwargs"],
        class_names=data.class_names, config=judge.meta["config"], metrics=judge.meta["metrics"],
        extra={"fingerprint": judge.meta["fingerprint"], "role": "independent judge: grades, labels nothing"})
    return judge


# ------------------------------------------------------------------ grading arithmetic

def _labels(name: str, values, n: Optional[int] = None) -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)) or (n is not None and a.size != n):
        raise ValueError(f"{name} must be a 1-D array of class indices{'' if n is None else f' of length {n}'}; "
                         f"got shape {a.shape}, dtype {a.dtype}")
    return a.astype(np.int64)


def uae_shares(judge_labels, source_labels, classifier_labels) -> dict:
    """How real the unrestricted adversarial examples are, by the judge.

    ``real_share``: the judge reads the source's class (the classifier really fails); ``artefact_share``:
    it reads the classifier's label (the decode changed class); ``other_share``: neither. nan when n = 0.
    """
    judge = _labels("judge_labels", judge_labels)
    source, said = _labels("source_labels", source_labels, judge.size), _labels("classifier_labels",
                                                                               classifier_labels, judge.size)
    n = judge.size
    real, artefact = (judge == source), (judge == said) & (judge != source)
    share = (lambda m: float(m.mean())) if n else (lambda m: math.nan)
    return {"real_share": share(real), "artefact_share": share(artefact), "other_share": share(~real & ~artefact),
            "n": int(n)}


def scenario_purity(judge_labels, scenario_ids, scenario_labels: dict) -> dict:
    """Per scenario: the share of its samples the judge gives the scenario's label, and the label mix.

    Parameters
    ----------
    judge_labels : (n,) the judge's label for each sample.
    scenario_ids : (n,) the scenario each sample was drawn from.
    scenario_labels : {scenario id: its label (the annotators' majority)}; every id in ``scenario_ids``.

    Returns
    -------
    {scenario id: {"label", "purity", "label_mix": {label: share, most common first}, "n"}}
    """
    judge = _labels("judge_labels", judge_labels)
    ids = _labels("scenario_ids", scenario_ids, judge.size)
    missing = sorted(set(ids.tolist()) - set(scenario_labels))
    if missing:
        raise ValueError(f"scenario_labels has no label for scenarios {missing}")
    out = {}
    for j in sorted(set(ids.tolist())):
        got = judge[ids == j]
        values, counts = np.unique(got, return_counts=True)
        order = np.argsort(-counts, kind="stable")
        out[int(j)] = {"label": int(scenario_labels[j]), "purity": float(np.mean(got == int(scenario_labels[j]))),
                       "label_mix": {int(values[k]): float(counts[k] / got.size) for k in order}, "n": int(got.size)}
    return out


def per_sample_accuracy(predictions, judge_labels) -> float:
    """Share of samples on which a model's prediction equals the judge's label (nan when there are none)."""
    judge = _labels("judge_labels", judge_labels)
    pred = _labels("predictions", predictions, judge.size)
    return float(np.mean(pred == judge)) if judge.size else math.nan
