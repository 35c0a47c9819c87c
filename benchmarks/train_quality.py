"""Quality kept, work saved (issue 24): the product's trainers in fp32 and in bf16 autocast + channels_last, and
the β-VAE's validation fidelity along its training, with the step where the early stop (FidelityStop) ends it.

    python benchmarks/train_quality.py --source mnist-test --max-steps 3000 --json docs/runs/X.json
    python benchmarks/train_quality.py --source fashion-mnist --precisions bf16 --max-steps 3000
    python benchmarks/train_quality.py --source colour-digits      # MNIST test digits, coloured (built here)
    python benchmarks/train_quality.py --quick                      # a check of the script (mnist-sample)

Per precision, in one process: the classifier (TrainConfig, ``--classifier-epochs``) and its test accuracy;
the β-VAE of the default recipe for the source (capped at ``--max-steps``) with the reconstructions'
accuracy on 2,000 validation images every ``--check-every`` steps, read by the fp32 classifier (one reader
for every VAE: like with like), and where :class:`defuse.nets.early_stop.FidelityStop` would stop; its
fidelity on the whole validation split at the end. Sources: mnist-test (/work/shared/data/mnist-test),
fashion-mnist (/work/shared/data/FashionMNIST/raw), colour-digits (the MNIST test digits with a random
foreground and background colour per image, independent of the class: an offline colour source), mnist-sample.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from defuse.data.datasets import DatasetSpec, load_dataset  # noqa: E402
from defuse.nets.early_stop import EarlyStop, FidelityStop  # noqa: E402
from defuse.nets.train import TrainConfig, train_classifier, train_vae, vae_fidelity  # noqa: E402
from defuse.nets.vae_recipe import default_vae_config  # noqa: E402

SHARED = Path(os.environ.get("DEFUSE_SHARED_DATA", "/work/shared/data"))


def colour_digits(out: Path) -> Path:
    """An npz of the MNIST test digits, each drawn in a random colour on a random darker background."""
    spec = load_dataset(DatasetSpec(source="mnist-idx", path=str(SHARED / "mnist-test")))
    gray = torch.cat([spec.train.images, spec.val.images, spec.test.images])[:, 0].numpy()  # (N, 32, 32)
    labels = torch.cat([spec.train.labels, spec.val.labels, spec.test.labels]).numpy()
    rng = np.random.default_rng(0)
    fg, bg = rng.uniform(0.4, 1.0, (len(gray), 3)), rng.uniform(0.0, 0.35, (len(gray), 3))
    x = gray[..., None] * fg[:, None, None] + (1 - gray[..., None]) * bg[:, None, None]
    np.savez(out, x=(x * 255).round().astype(np.uint8), y=labels.astype(np.int64))
    return out


def load(source: str, tmp: Path):
    if source == "mnist-test":
        return load_dataset(DatasetSpec(source="mnist-idx", path=str(SHARED / "mnist-test")))
    if source == "fashion-mnist":
        return load_dataset(DatasetSpec(source="fashion-mnist", root=str(SHARED)))
    if source == "colour-digits":
        return load_dataset(DatasetSpec(source="npz", path=str(colour_digits(tmp / "colour-digits.npz"))))
    return load_dataset(DatasetSpec(source=source))


def with_precision(value: str):
    os.environ["DEFUSE_TRAIN_PRECISION"] = value


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", default="mnist-test", help="mnist-test, fashion-mnist, colour-digits, mnist-sample")
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    p.add_argument("--max-steps", type=int, default=8000, help="cap on the VAE's steps (the recipe's: about 8,000)")
    p.add_argument("--check-every", type=int, default=500)
    p.add_argument("--classifier-epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="mnist-sample, 60 VAE steps: a check of the script")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.source, args.max_steps, args.check_every = "mnist-sample", 60, 20
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = load(args.source, Path(tmp))
    stop_cfg = EarlyStop(check_every=args.check_every, min_steps=min(1000, 2 * args.check_every))
    recipe = default_vae_config(data)
    steps_per_epoch = -(-len(data.train) // recipe.batch_size)
    vcfg = replace(recipe, epochs=max(1, min(recipe.epochs, args.max_steps // steps_per_epoch)))
    result = {"command": " ".join(["python benchmarks/train_quality.py", *(argv or sys.argv[1:])]),
              "source": args.source, "n_train": len(data.train),
              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
              "device": "cpu", "cpu_count": os.cpu_count(), "load_average_start": list(os.getloadavg()),
              "vae_config": {"epochs": vcfg.epochs, "batch_size": vcfg.batch_size, "steps_per_epoch": steps_per_epoch},
              "early_stop": asdict(stop_cfg), "runs": []}
    reader = None
    for precision in args.precisions:
        with_precision(precision)
        t0 = time.perf_counter()
        clf = train_classifier(data, TrainConfig(epochs=args.classifier_epochs), device="cpu")
        clf_s = time.perf_counter() - t0
        reader = reader or clf.model  # the first precision's classifier reads every VAE (fp32 when listed first)
        stop = FidelityStop(reader, data, stop_cfg, observe_only=True)
        t0 = time.perf_counter()
        def watch(model, row, stop=stop, precision=precision):  # each check printed as it happens
            done = stop(model, row)
            if "val_acc_reconstruction" in row:
                print("   check", json.dumps({"precision": precision, "step": row["step"],
                                              "val_acc_reconstruction": row["val_acc_reconstruction"],
                                              "early_stop": row.get("early_stop", False)}), flush=True)
            return done

        vae = train_vae(data, vcfg, device="cpu", stop=watch)
        vae_s = time.perf_counter() - t0
        fid = vae_fidelity(vae.model, reader, data, split="val", device="cpu")
        curve = [{k: h[k] for k in ("step", "val_acc_original", "val_acc_reconstruction", "seconds")}
                 for h in vae.history if "val_acc_reconstruction" in h]
        secs_to = sum(h["seconds"] for h in vae.history if stop.stopped_at_ is None or h["step"] <= stop.stopped_at_)
        run = {"precision": precision, "classifier_test_acc": round(clf.metrics["test_acc"], 4),
               "classifier_val_acc": round(clf.metrics["val_acc"], 4),
               "classifier_steps_per_s": round(clf.metrics["steps_per_s"], 2), "classifier_seconds": round(clf_s, 1),
               "vae_steps": vae.metrics["steps"], "vae_steps_per_s": round(vae.metrics["steps_per_s"], 2),
               "vae_seconds": round(vae_s, 1), "vae_val_acc_original": round(fid["acc_original"], 4),
               "vae_val_acc_reconstruction": round(fid["acc_reconstruction"], 4),
               "vae_fidelity_ok": fid["fidelity_ok"], "early_stop_at_step": stop.stopped_at_,
               "training_seconds_to_early_stop": round(secs_to, 1), "curve": curve,
               "load_average": list(os.getloadavg())}
        result["runs"].append(run)
        print(json.dumps({k: v for k, v in run.items() if k != "curve"}), flush=True)
        for c in curve:
            print("  ", json.dumps(c), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
