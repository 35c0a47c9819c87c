"""Training steps/s (and GPU utilisation) of the VAE, the classifier, a reviewer member and the λ sweep,
before and after the GPU-friendly loops of defuse/runtime/train_speed.py, in one process.

    python benchmarks/train_speed.py --device cuda --dataset fashion-mnist --root DIR --json out.json
    python benchmarks/train_speed.py --quick --device cpu          # seconds; what the tests run

"before" is the previous loop, kept here as the baseline: every batch copied from host memory and the
losses read back with ``.item()`` every step. "after" is the library's own trainer (data resident on the
device, losses read once per epoch); "after+compile" adds DEFUSE_COMPILE=reduce-overhead (torch.compile
with CUDA graphs; its first epoch, which compiles, is reported apart). Each phase trains 2 epochs on a
subset sized to ``--steps`` steps per epoch; steps/s are the second epoch's. GPU utilisation is sampled
with nvidia-smi during each phase when it is there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from defuse.cli.commands_project import add_dataset_args, dataset_spec_from_args  # noqa: E402
from defuse.correct import training as sweep_training  # noqa: E402  (where the sweep's trainer reads `resident`)
from defuse.correct.failure_sets import FailureSet  # noqa: E402
from defuse.data.datasets import ImageData, Split, load_dataset  # noqa: E402
from defuse.label.reviewer import ARCHITECTURES  # noqa: E402
from defuse.nets import train as nets_train  # noqa: E402
from defuse.nets.architectures import build_classifier, build_vae  # noqa: E402
from defuse.runtime.devices import configure_threads, describe_device, resolve_device  # noqa: E402


class GpuUtil:
    """Mean GPU utilisation (%) while the block runs, from `nvidia-smi -lms 100`; None without a GPU."""

    def __init__(self, dev: torch.device):
        self.on, self.proc, self.mean = dev.type == "cuda" and shutil.which("nvidia-smi"), None, None

    def __enter__(self):
        if self.on:
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "100", "-i", "0"], stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.terminate()
            values = [float(v) for v in self.proc.communicate()[0].split() if v.replace(".", "").isdigit()]
            self.mean = round(sum(values) / len(values), 1) if values else None


def _subset(data: ImageData, n: int) -> ImageData:
    keep = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:n]
    return ImageData(Split(data.train.images[keep], data.train.labels[keep]), data.val, data.test, data.class_names,
                     data.spec)


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def vae_before(data: ImageData, cfg: nets_train.VAEConfig, dev) -> float:
    """The previous VAE loop: host batches, three syncs a step. Returns steps/s of its second epoch."""
    torch.manual_seed(cfg.seed)
    vae = build_vae(channels=data.channels, image_size=data.image_size, latent_dim=cfg.latent_dim,
                    width=cfg.width).to(dev)
    opt, gen, images, step, rate = torch.optim.Adam(vae.parameters(), lr=cfg.lr), torch.Generator(), \
        data.train.images, 0, 0.0
    for _ in range(2):
        t0, n = time.perf_counter(), 0
        for idx in nets_train.shuffled_batches(len(images), cfg.batch_size, gen):
            x = images[idx].to(dev)
            recon, mu, logvar = vae(x)
            beta = cfg.beta * min(1.0, (step + 1) / cfg.kl_anneal_steps)
            loss, rec, kl = nets_train.vae_loss(recon, x, mu, logvar, beta=beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _ = [loss.item(), rec.item(), kl.item()]
            step, n = step + 1, n + 1
        _sync(dev)
        rate = n / (time.perf_counter() - t0)
    return rate


def classifier_before(data: ImageData, cfg: nets_train.TrainConfig, dev, model=None) -> float:
    """The previous classifier loop: host batches, a sync per step. Returns steps/s of its second epoch."""
    model = (model or build_classifier(cfg.architecture, channels=data.channels, image_size=data.image_size,
                                       num_classes=data.num_classes)).to(dev)
    opt, gen, rate = nets_train.OPTIMIZERS[cfg.optimizer](model.parameters(), cfg.lr), torch.Generator(), 0.0
    images, labels = data.train.images, data.train.labels
    for _ in range(2):
        model.train()
        t0, n = time.perf_counter(), 0
        for idx in nets_train.shuffled_batches(len(labels), cfg.batch_size, gen):
            loss = F.cross_entropy(model(images[idx].to(dev)), labels[idx].to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _ = loss.item()
            n += 1
        _sync(dev)
        rate = n / (time.perf_counter() - t0)
    return rate


def _last_epoch_rate(result, steps: int) -> float:
    return steps / result.history[-1]["seconds"]


def sweep_rate(data: ImageData, dev, steps: int, resident_on: bool) -> float:
    """Optimiser steps/s of a 4-λ sweep (+ control), 1 epoch; ``resident_on`` False restores host batches."""
    from defuse.correct.sweep import CorrectConfig, correct
    from defuse.runtime.progress import RunOptions

    model = build_classifier("paper-cnn", channels=data.channels, image_size=data.image_size,
                             num_classes=data.num_classes)
    sets = [FailureSet(c, c, *(data.train.images[data.train.labels == c][:64],) * 3) for c in range(2)]
    cfg = CorrectConfig(lambdas=(0.1, 1.0, 10.0, 100.0), epochs=1)
    saved = sweep_training.resident
    if not resident_on:
        sweep_training.resident = lambda t, d: t
    try:
        t0 = time.perf_counter()
        correct(model, data, sets, cfg, run=RunOptions(device=dev))
        _sync(dev)
    finally:
        sweep_training.resident = saved
    return 5 * steps / (time.perf_counter() - t0)  # 5 trainings (4 λ + control) of `steps` steps each


def run_phases(data: ImageData, dev, steps: int, compile_too: bool, only=None) -> list[dict]:
    vcfg = nets_train.VAEConfig(epochs=2, kl_anneal_steps=2 * steps, train_on="train")
    ccfg = nets_train.TrainConfig(epochs=2)
    rcfg = replace(ccfg, optimizer="adam", lr=1e-3)  # a reviewer member's recipe (ReviewerConfig)
    vdata, cdata = _subset(data, steps * vcfg.batch_size), _subset(data, steps * ccfg.batch_size)
    wide_base, wide_extra = ARCHITECTURES["paper-cnn-wide"]
    wide = lambda: build_classifier(wide_base, channels=data.channels, image_size=data.image_size,  # noqa: E731
                                    num_classes=data.num_classes, **wide_extra)
    phases = [("vae", "before", lambda: vae_before(vdata, vcfg, dev)),
              ("vae", "after", lambda: _last_epoch_rate(nets_train.train_vae(vdata, vcfg, device=dev), steps)),
              ("classifier", "before", lambda: classifier_before(cdata, ccfg, dev)),
              ("classifier", "after",
               lambda: _last_epoch_rate(nets_train.train_classifier(cdata, ccfg, device=dev), steps)),
              ("reviewer member (wide CNN, adam)", "before",
               lambda: classifier_before(cdata, rcfg, dev, wide())),
              ("reviewer member (wide CNN, adam)", "after",
               lambda: _last_epoch_rate(nets_train.train_classifier(cdata, rcfg, device=dev, model=wide()), steps)),
              ("sweep (4 λ + control)", "before", lambda: sweep_rate(_subset(data, steps * 128), dev, steps, False)),
              ("sweep (4 λ + control)", "after", lambda: sweep_rate(_subset(data, steps * 128), dev, steps, True))]
    if compile_too and dev.type == "cuda":
        phases.append(("vae", "after+compile", lambda: _compiled_vae(vdata, vcfg, dev, steps)))
    rows = []
    for what, variant, fn in phases:
        if only and what.split()[0] not in only:
            continue
        with GpuUtil(dev) as util:
            t0 = time.perf_counter()
            rate = fn()
        rows.append({"training": what, "variant": variant, "steps_per_s": round(rate, 1),
                     "gpu_util_percent": util.mean, "wall_s": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def _compiled_vae(data, cfg, dev, steps) -> float:
    os.environ["DEFUSE_COMPILE"] = "reduce-overhead"
    try:
        return _last_epoch_rate(nets_train.train_vae(data, cfg, device=dev), steps)
    finally:
        os.environ.pop("DEFUSE_COMPILE")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--steps", type=int, default=300, help="optimiser steps per epoch in each phase")
    p.add_argument("--quick", action="store_true", help="10 steps per epoch (a check of the script, not figures)")
    p.add_argument("--compile", action="store_true", help="also the VAE with DEFUSE_COMPILE=reduce-overhead (CUDA)")
    p.add_argument("--json", default=None, help="also write the result here")
    p.add_argument("--only", nargs="+", default=None, choices=["vae", "classifier", "reviewer", "sweep"],
                   help="measure only these trainings")
    args = p.parse_args(argv)
    configure_threads(args.threads)
    dev = resolve_device(args.device)
    data = load_dataset(dataset_spec_from_args(args))
    steps = 10 if args.quick else args.steps
    result = {"command": " ".join(["python benchmarks/train_speed.py", *(argv if argv is not None else sys.argv[1:])]),
              "device": describe_device(dev), "torch": torch.__version__, "python": platform.python_version(),
              "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "dataset": args.dataset, "steps_per_epoch": steps,
              "phases": run_phases(data, dev, steps, args.compile, args.only)}
    by = {(r["training"], r["variant"]): r["steps_per_s"] for r in result["phases"]}
    result["after_over_before"] = {what: round(by[(what, "after")] / by[(what, "before")], 2)
                                   for what, variant in by if variant == "before"}
    print(json.dumps(result["after_over_before"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
