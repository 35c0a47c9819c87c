"""Training steps/s (and GPU utilisation) of the VAE, the classifier, a reviewer member, the classifier's
fine-tuning and the λ sweep: the product's trainers against today's loop and against the best raw
forward+backward+step rate of the same network found in the same process.

    python benchmarks/train_speed.py --device cuda --dataset fashion-mnist --root DIR --json out.json
    python benchmarks/train_speed.py --device cpu --json docs/runs/train-speed-cpu.json   # issue 24's figures
    python benchmarks/train_speed.py --quick --device cpu          # a check of the script; what the tests run

Per network, ``networks`` in the JSON holds ``steps_per_s`` (the product's trainer), ``best_raw_steps_per_s``
(the best bare loop over one fixed batch at the product's batch size: every thread count up to the
process's, fp32 / channels_last / bf16 autocast where the CPU has native bf16, and with ``--compile``
torch.compile of the best of those), ``ratio`` (product ÷ best raw) and ``speedup`` (product ÷ "before").
On a CPU "before" is the product's own loop in fp32 (DEFUSE_TRAIN_PRECISION=fp32: the loop before issue 24);
on a GPU it is the loop before issue 16 (host batches, a sync per step). Every rate is the best of
``--rounds`` rounds that measure all variants in turn, so a busy machine's load falls on all of them alike.

"before" is the previous loop, kept here as the baseline: every batch copied from host memory and the
losses read back with ``.item()`` every step. "after" is the library's own trainer (data resident on the
device, losses read once per epoch); "after+compile" adds DEFUSE_COMPILE=reduce-overhead (torch.compile
with CUDA graphs; its first epoch, which compiles, is reported apart). Each phase trains 2 epochs on a
subset sized to ``--steps`` steps per epoch; steps/s are the second epoch's. GPU utilisation is sampled
with nvidia-smi during each phase when it is there.
"""

from __future__ import annotations

import argparse
import contextlib
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


RAW_BUDGET_S = 4.0  # each raw variant runs at most this long (after 2 warm-up steps)


def raw_rate(net: str, make, batch: tuple, dev, variant: dict, steps: int) -> float:
    """Steps/s of the bare forward+backward+step of ``make()`` on one fixed batch, under ``variant``
    (threads, channels_last, bf16, compile); at most ``steps`` steps or RAW_BUDGET_S seconds."""
    torch.set_num_threads(variant["threads"])
    torch.manual_seed(0)
    model = make().to(dev)
    x, y = (t.to(dev) for t in batch)
    if variant["channels_last"]:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = (torch.optim.Adadelta(model.parameters(), lr=1.0) if net == "classifier"
           else torch.optim.Adam(model.parameters(), lr=1e-3))
    fwd = torch.compile(model) if variant["compile"] else model
    cast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if variant["bf16"] else contextlib.nullcontext

    def step():
        with cast():
            out = fwd(x)
            extra = fwd(x.flip(0)) if net == "fine-tuning" else None  # L(D) + λ·CE(D_f): two forwards
        if net == "vae":
            loss = nets_train.vae_loss(out[0].float(), x, out[1].float(), out[2].float(), beta=0.4)[0]
        else:
            loss = F.cross_entropy(out.float(), y) + (F.cross_entropy(extra.float(), y) if extra is not None else 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2 if not variant["compile"] else 4):
        step()
    _sync(dev)
    t0, n = time.perf_counter(), 0
    while n < steps and (n < 3 or time.perf_counter() - t0 < RAW_BUDGET_S):
        step()
        n += 1
    _sync(dev)
    return n / (time.perf_counter() - t0)


def raw_variants(dev, threads: int, compile_too: bool) -> list[dict]:
    """Every layout / precision at every thread count up to ``threads`` (bf16 only where the CPU has it)."""
    from defuse.runtime.devices import cpu_has_fast_bf16

    bf16 = dev.type == "cuda" or (dev.type == "cpu" and cpu_has_fast_bf16())
    out = [{"threads": t, "channels_last": cl, "bf16": b, "compile": False}
           for t in (sorted({1, threads}) if dev.type == "cpu" else [threads])
           for cl in (False, True) for b in ((False, True) if bf16 else (False,))]
    if compile_too:
        out += [{**v, "compile": True} for v in out if v["threads"] == threads and v["channels_last"] == v["bf16"]]
    return out


def finetune_rate(data: ImageData, dev, steps: int) -> float:
    """Optimiser steps/s of the product's fine-tuning (correct's SingleTrainer, L(D) + λ·CE(D_f), one λ):
    the training seconds the sweep records for its epoch (its evaluations not counted)."""
    from defuse.correct.sweep import CorrectConfig, correct
    from defuse.runtime.progress import RunOptions

    model = build_classifier("paper-cnn", channels=data.channels, image_size=data.image_size,
                             num_classes=data.num_classes)
    sets = [FailureSet(c, c, *(data.train.images[data.train.labels == c][:64],) * 3) for c in range(2)]
    sweep = correct(model, data, sets, CorrectConfig(lambdas=(1.0,), include_control=False, epochs=1,
                                                     train_eval_size=256), run=RunOptions(device=dev))
    return steps / sweep.rows[0]["seconds"]


@contextlib.contextmanager
def _precision(value: str):
    saved = os.environ.get("DEFUSE_TRAIN_PRECISION")
    os.environ["DEFUSE_TRAIN_PRECISION"] = value
    try:
        yield
    finally:
        os.environ.pop("DEFUSE_TRAIN_PRECISION") if saved is None else os.environ.update(
            DEFUSE_TRAIN_PRECISION=saved)


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


def _networks(data: ImageData, steps: int):
    """name -> (network factory, batch size, product's trainer at the process's settings, today's loop)."""
    vcfg = nets_train.VAEConfig(epochs=2, kl_anneal_steps=2 * steps, train_on="train")
    ccfg = nets_train.TrainConfig(epochs=2)
    rcfg = replace(ccfg, optimizer="adam", lr=1e-3, batch_size=128)  # a reviewer member's recipe (ReviewerConfig)
    vdata, cdata, rdata = (_subset(data, steps * b) for b in (vcfg.batch_size, ccfg.batch_size, rcfg.batch_size))
    fdata = _subset(data, steps * 256)  # CorrectConfig.batch_size
    geometry = dict(channels=data.channels, image_size=data.image_size)
    wide_base, wide_extra = ARCHITECTURES["paper-cnn-wide"]
    wide = lambda: build_classifier(wide_base, num_classes=data.num_classes, **geometry, **wide_extra)  # noqa: E731
    cnn = lambda: build_classifier("paper-cnn", num_classes=data.num_classes, **geometry)  # noqa: E731
    vae = lambda: build_vae(latent_dim=vcfg.latent_dim, width=vcfg.width, **geometry)  # noqa: E731
    return {
        "vae": (vae, vcfg.batch_size,
                lambda dev: _last_epoch_rate(nets_train.train_vae(vdata, vcfg, device=dev), steps),
                lambda dev: vae_before(vdata, vcfg, dev)),
        "classifier": (cnn, ccfg.batch_size,
                       lambda dev: _last_epoch_rate(nets_train.train_classifier(cdata, ccfg, device=dev), steps),
                       lambda dev: classifier_before(cdata, ccfg, dev)),
        "reviewer member (wide CNN, adam)": (
            wide, rcfg.batch_size,
            lambda dev: _last_epoch_rate(nets_train.train_classifier(rdata, rcfg, device=dev, model=wide()), steps),
            lambda dev: classifier_before(rdata, rcfg, dev, wide())),
        "fine-tuning (one λ)": (cnn, 256, lambda dev: finetune_rate(fdata, dev, steps), None),
    }


def run_phases(data: ImageData, dev, steps: int, compile_too: tuple, only=None, rounds: int = 1,
               raw_steps: int = 50) -> list[dict]:
    """Rows (training, variant, steps_per_s, ...): per network "after" (the product), "before" and the raw
    variants, every one measured ``rounds`` times in turn; the sweep's before/after once.
    ``compile_too``: (raw variants under torch.compile, the VAE's trainer under DEFUSE_COMPILE on CUDA)."""
    threads, rows = torch.get_num_threads(), []
    wanted = lambda what: not only or what.split()[0] in only  # noqa: E731
    nets = {k: v for k, v in _networks(data, steps).items() if wanted(k)}
    best: dict = {}
    for _ in range(rounds):
        for what, (make, batch_size, product, before) in nets.items():
            raw_batch = (data.train.images[:batch_size], data.train.labels[:batch_size])
            phases = [("after", lambda product=product: product(dev))]
            if dev.type == "cpu":  # today's loop on a CPU: the product's own loop in fp32
                phases.append(("before", lambda product=product: _in_fp32(product, dev)))
            elif before is not None:
                phases.append(("before", lambda before=before: before(dev)))
            for v in raw_variants(dev, threads, compile_too[0]):
                name = "raw " + ", ".join([f"{v['threads']} thread{'s' * (v['threads'] > 1)}",
                                           "bf16" if v["bf16"] else "fp32"]
                                          + ["channels_last"] * v["channels_last"] + ["compile"] * v["compile"])
                net = what.split()[0]
                phases.append((name, lambda v=v, make=make, b=raw_batch, net=net:
                               raw_rate(net, make, b, dev, v, raw_steps)))
            for variant, fn in phases:
                torch.set_num_threads(threads)
                with GpuUtil(dev) as util:
                    t0 = time.perf_counter()
                    rate = fn()
                torch.set_num_threads(threads)
                row = {"training": what, "variant": variant, "steps_per_s": round(rate, 2),
                       "gpu_util_percent": util.mean, "wall_s": round(time.perf_counter() - t0, 1)}
                if rate >= best.get((what, variant), {"steps_per_s": -1})["steps_per_s"]:
                    best[(what, variant)] = row
                print(json.dumps(row), flush=True)
    rows = list(best.values())
    if wanted("sweep"):
        for variant, on in (("before", False), ("after", True)):
            t0 = time.perf_counter()
            rate = sweep_rate(_subset(data, steps * 128), dev, steps, on)
            rows.append({"training": "sweep (4 λ + control)", "variant": variant, "steps_per_s": round(rate, 2),
                         "gpu_util_percent": None, "wall_s": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    if compile_too[1] and dev.type == "cuda" and wanted("vae"):
        vcfg = nets_train.VAEConfig(epochs=2, kl_anneal_steps=2 * steps, train_on="train")
        rate = _compiled_vae(_subset(data, steps * vcfg.batch_size), vcfg, dev, steps)
        rows.append({"training": "vae", "variant": "after+compile", "steps_per_s": round(rate, 2),
                     "gpu_util_percent": None, "wall_s": None})
    return rows


def _in_fp32(product, dev) -> float:
    with _precision("fp32"):
        return product(dev)


def summarise(rows: list[dict]) -> dict:
    """Per network: the product's steps/s, the best raw one (and its variant), ratio and speedup."""
    out = {}
    for what in dict.fromkeys(r["training"] for r in rows):
        mine = {r["variant"]: r["steps_per_s"] for r in rows if r["training"] == what}
        raw = {v: s for v, s in mine.items() if v.startswith("raw ")}
        entry = {"steps_per_s": mine.get("after"), "before_steps_per_s": mine.get("before")}
        if raw:
            top = max(raw, key=raw.get)
            entry.update(best_raw_steps_per_s=raw[top], best_raw_variant=top[4:],
                         ratio=round(mine["after"] / raw[top], 2) if mine.get("after") else None)
        if mine.get("before") and mine.get("after"):
            entry["speedup"] = round(mine["after"] / mine["before"], 2)
        out[what] = entry
    return out


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
    p.add_argument("--quick", action="store_true", help="4 steps per epoch (a check of the script, not figures)")
    p.add_argument("--rounds", type=int, default=2, help="measure every variant this many times in turn; keep the best")
    p.add_argument("--compile", action="store_true", help="also the VAE's trainer with DEFUSE_COMPILE=reduce-overhead "
                   "(CUDA)")
    p.add_argument("--raw-compile", action="store_true", help="also raw variants under torch.compile (each compiles "
                   "first: tens of seconds per network)")
    p.add_argument("--json", default=None, help="also write the result here")
    p.add_argument("--only", nargs="+", default=None, choices=["vae", "classifier", "reviewer", "fine-tuning", "sweep"],
                   help="measure only these trainings")
    args = p.parse_args(argv)
    configure_threads(args.threads)
    dev = resolve_device(args.device)
    data = load_dataset(dataset_spec_from_args(args))
    steps = 4 if args.quick else args.steps
    rounds = 1 if args.quick else args.rounds
    result = {"command": " ".join(["python benchmarks/train_speed.py", *(argv if argv is not None else sys.argv[1:])]),
              "device": describe_device(dev), "torch": torch.__version__, "python": platform.python_version(),
              "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(),
              "dataset": args.dataset, "steps_per_epoch": steps, "rounds": rounds,
              "phases": run_phases(data, dev, steps, (args.raw_compile, args.compile), args.only,
                                       rounds, raw_steps=6 if args.quick else 50)}   # --quick checks the script
    result["networks"] = summarise(result["phases"])
    result["load_average_after"] = list(os.getloadavg())
    by = {(r["training"], r["variant"]): r["steps_per_s"] for r in result["phases"]}
    result["after_over_before"] = {what: round(by[(what, "after")] / by[(what, "before")], 2)
                                   for what, variant in by if variant == "before"}
    print(json.dumps(result["networks"], ensure_ascii=False, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
