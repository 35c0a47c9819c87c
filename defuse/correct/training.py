"""Training the λ groups: every λ of a group fine-tuned for the configured epochs, the kept epoch per λ.

:func:`plan_groups` packs the (kind, λ) jobs into groups trained together (stacked under vmap, or one
by one); :func:`train_groups` trains them here, and the Ray backend runs it on one group per task.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from ..nets.train import shuffled_batches
from ..runtime.progress import ProgressFn, ProgressReporter
from ..runtime.train_speed import resident
from .config import CorrectConfig
from .finetune import SingleTrainer, StackedTrainer, vmap_works
from .scoring import SweepInputs, evaluate
from .selection import epoch_metric

HEARTBEAT_STEPS = 50  # a progress event every 50 batches, so Cancel answers within an epoch


def _cycle(n: int, size: int, gen: torch.Generator):
    """Endless minibatches of D_f indices: reshuffled permutations, back to back."""
    size, buf = min(size, n), torch.empty(0, dtype=torch.int64)
    while True:
        while len(buf) < size:
            buf = torch.cat([buf, torch.randperm(n, generator=gen)])
        yield buf[:size]
        buf = buf[size:]


_CHART_KEYS = ("kind", "lambda", "epoch", "train_acc", "val_acc", "test_acc", "failure_val_acc", "failure_test_acc")


class Tracker:
    """Progress events: done = finished (λ, epoch) pairs, one event per epoch and per finished λ."""

    def __init__(self, total: int, done: int, on_progress: ProgressFn):
        self.done, self.report = done, ProgressReporter("correct", total, on_progress, start_done=done)

    def epoch(self, row: dict) -> None:
        self.done += 1
        self.report(self.done, event="epoch", **{k: row[k] for k in _CHART_KEYS})

    def finished(self, best: dict) -> None:
        self.report(self.done, event="lambda", **{k: best[k] for k in _CHART_KEYS})

    def before(self, row: dict) -> None:
        """The unmodified classifier, so a live trade-off chart can mark it from the start."""
        self.report(self.done, event="before", **{k: row.get(k) for k in _CHART_KEYS})

    def heartbeat(self, *, share: float = 0.0, **metrics) -> None:
        """A batch event; ``share``: the (λ, epoch) pairs the running epoch has done so far (fractional), so
        the rate and the ETA are known from the first batches, not only after a whole epoch."""
        self.report(self.done + share, event="batch", **metrics)


def run_group(kind: str, trainer, inp: SweepInputs, cfg: CorrectConfig, dev: torch.device, track: Tracker):
    """Fine-tune every λ of ``trainer`` for cfg.epochs; returns (rows, kept row, kept state) per λ."""
    # On a GPU the training data and D_f stay there for the whole group (runtime.train_speed.resident).
    (x, y), (xf, yf) = [(resident(a, dev), resident(b, dev)) for a, b in (inp.train, inp.d_f[kind])]
    torch.manual_seed(cfg.seed)  # for any random layers (dropout) of the user's network
    gen = torch.Generator().manual_seed(cfg.seed)  # the same order of D for every λ: λ is the only difference
    stream = _cycle(len(yf), cfg.failure_batch_size or cfg.batch_size, torch.Generator().manual_seed(cfg.seed + 1))
    key, n = epoch_metric(cfg), len(trainer.lams)
    rows, best, states = [[] for _ in range(n)], [None] * n, [None] * n
    batches = -(-len(y) // cfg.batch_size)
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        for i, idx in enumerate(shuffled_batches(len(y), cfg.batch_size, gen)):
            idx, fidx = idx.to(x.device), next(stream).to(xf.device)
            trainer.step(x[idx].to(dev), y[idx].to(dev), xf[fidx].to(dev), yf[fidx].to(dev))
            if (i + 1) % HEARTBEAT_STEPS == 0:
                track.heartbeat(kind=kind, lambdas=trainer.lams, epoch=epoch, batch=i + 1,
                                steps_per_s=round((i + 1) / (time.perf_counter() - t0), 2),
                                share=n * (i + 1) / batches)
        seconds = (time.perf_counter() - t0) / n  # a vmap group shares its time among its λ
        for k, metrics in enumerate(evaluate(trainer.logits, inp, dev)):
            row = {"kind": kind, "lambda": trainer.lams[k], "epoch": epoch, **metrics, "seconds": seconds}
            rows[k].append(row)
            if best[k] is None or row[key] > best[k][key]:  # ties keep the earlier epoch
                best[k], states[k] = row, trainer.state(k)
            track.epoch(row)
    return [(rows[k], best[k], states[k]) for k in range(n)]


def train_groups(groups, template, inp, cfg, dev, track):
    """Fine-tune the (kind, [λ...]) groups one after another here; yields (kind, λ, rows, best, state).

    The Ray backend runs this same function on one group per task."""
    for kind, lams in groups:
        trainer = (StackedTrainer if len(lams) > 1 else SingleTrainer)(template, lams, cfg, dev)
        yield from ((kind, lam, rows, best, state) for lam, (rows, best, state)
                    in zip(lams, run_group(kind, trainer, inp, cfg, dev, track), strict=True))
        del trainer  # free the group's copies before the next group


def plan_groups(jobs: list, mode: str, cfg: CorrectConfig, template: nn.Module) -> list:
    """Groups of (kind, [λ...]) trained together.

    In a stack, the control's 0·CE(D_f) adds exact zeros to its gradient, so it joins the stack unless the
    network keeps running statistics (batch norm), which the D_f forward would shift: then it trains alone.
    """
    if mode == "off":
        return [(kind, [lam]) for kind, lam in jobs]
    stats = any(getattr(m, "track_running_stats", False) for m in template.modules())
    groups = [(kind, [lam]) for kind, lam in jobs if lam == 0 and stats]
    for kind in ("defuse", "baseline"):
        lams = [lam for k, lam in jobs if k == kind and (lam > 0 or not stats)]
        groups += [(kind, lams[i:i + cfg.max_parallel]) for i in range(0, len(lams), cfg.max_parallel)]
    return groups


def parallel_mode(cfg: CorrectConfig, template: nn.Module, example: torch.Tensor, dev: torch.device) -> str:
    if cfg.parallel == "off" or (cfg.parallel == "auto" and dev.type != "cuda"):
        return "off"  # on a CPU, stacking saves nothing: the work is the same
    if vmap_works(template, example):
        return "vmap"
    if cfg.parallel == "vmap":
        raise ValueError("parallel='vmap' cannot batch this classifier (TorchScript, or an op vmap does not "
                         "support); use parallel='off'")
    return "off"
