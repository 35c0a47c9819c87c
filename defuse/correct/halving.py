"""Successive halving over λ (issue 24): after each epoch, the half of the λ that score worst on the
validation measures stop, so the sweep's time goes to the λ that can still win.

Every λ of a kind trains its first epoch; after epoch e (but the last) the λ are ranked by the selection's
own measures at their best epoch so far — failure-validation accuracy among the λ whose validation accuracy
is within the tolerance of the control's (the control trains every epoch, first), then the others by
validation accuracy — and the better ``ceil(n / 2)`` go on. A stopped λ keeps its rows and kept epoch, so
the selection still sees it. Each λ keeps its own trainer, data order and D_f stream, so a λ that trains
all epochs trains as in the full sweep (exactly, for networks without random layers such as dropout).
Opt-in: ``CorrectConfig.halving``; local training only (the Ray backend trains every λ in full).
"""

from __future__ import annotations

import math
import time

import torch

from ..nets.train import shuffled_batches
from ..runtime.train_speed import resident
from .finetune import SingleTrainer
from .scoring import evaluate
from .selection import epoch_metric, failure_measure
from .training import HEARTBEAT_STEPS, _cycle


class _Run:
    """One λ mid-sweep: its trainer, data order and D_f stream, its rows and its kept epoch."""

    def __init__(self, kind, lam, template, cfg, dev):
        self.kind, self.lam, self.trainer = kind, lam, SingleTrainer(template, [lam], cfg, dev)
        self.gen = torch.Generator().manual_seed(cfg.seed)  # as run_group: the same order of D for every λ
        self.stream = _cycle_stream(cfg)
        self.rows, self.best, self.state = [], None, None


def _cycle_stream(cfg):
    return {"gen": torch.Generator().manual_seed(cfg.seed + 1), "it": None}


def _epoch(run: _Run, epoch: int, data, cfg, dev, track) -> float:
    """Train ``run`` one epoch; returns its training seconds."""
    t0 = time.perf_counter()
    (x, y), (xf, yf) = data
    if run.stream["it"] is None:
        run.stream["it"] = _cycle(len(yf), cfg.failure_batch_size or cfg.batch_size, run.stream["gen"])
    torch.manual_seed(cfg.seed + epoch)  # dropout and the like: reproducible per (λ, epoch)
    for i, idx in enumerate(shuffled_batches(len(y), cfg.batch_size, run.gen)):
        fidx = next(run.stream["it"])
        run.trainer.step(x[idx].to(dev), y[idx].to(dev), xf[fidx].to(dev), yf[fidx].to(dev))
        if (i + 1) % HEARTBEAT_STEPS == 0:
            track.heartbeat(kind=run.kind, lambdas=[run.lam], epoch=epoch, batch=i + 1)
    return time.perf_counter() - t0


def _score(row: dict, control_val: float, cfg) -> tuple:
    """Higher is better: within tolerance of the control first (by the failure measure), then the rest."""
    ok = row["val_acc"] >= control_val - cfg.tolerance
    return (1, row[failure_measure(cfg)] or 0.0, row["val_acc"]) if ok else (0, row["val_acc"], 0.0)


def train_groups_halving(groups, template, inp, cfg, dev, track):
    """Like :func:`defuse.correct.training.train_groups` (same yields), with successive halving per kind."""
    key, control_val = epoch_metric(cfg), {}  # epoch -> the control's validation accuracy
    for kind in dict.fromkeys(k for k, _ in groups):
        lams = [lam for k, lams in groups if k == kind for lam in lams]
        data = [(resident(a, dev), resident(b, dev)) for a, b in (inp.train, inp.d_f[kind])]
        runs = [_Run(kind, lam, template, cfg, dev) for lam in sorted(lams, key=lambda v: v != 0)]
        alive = list(runs)
        for epoch in range(1, cfg.epochs + 1):
            for run in alive:
                seconds = _epoch(run, epoch, data, cfg, dev, track)
                row = {"kind": kind, "lambda": run.lam, "epoch": epoch, **evaluate(run.trainer.logits, inp, dev)[0],
                       "seconds": seconds}
                run.rows.append(row)
                if run.best is None or row[key] > run.best[key]:
                    run.best, run.state = row, run.trainer.state(0)
                track.epoch(row)
                if run.lam == 0 and kind == "defuse":
                    control_val[epoch] = run.best["val_acc"]
            if epoch == cfg.epochs:
                break
            ref = control_val.get(epoch, max(r.best["val_acc"] for r in alive))
            ranked = sorted((r for r in alive if r.lam != 0), key=lambda r: _score(r.best, ref, cfg), reverse=True)
            keep = set(map(id, ranked[:math.ceil(len(ranked) / 2)])) | {id(r) for r in alive if r.lam == 0}
            for run in alive:
                if id(run) not in keep:  # stopped: its remaining epochs count as done for the progress bar
                    track.done += cfg.epochs - epoch
                    yield kind, run.lam, run.rows, run.best, run.state
            alive = [r for r in alive if id(r) in keep]
        for run in alive:
            yield kind, run.lam, run.rows, run.best, run.state
