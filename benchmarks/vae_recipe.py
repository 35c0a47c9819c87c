"""Does the default β-VAE recipe of a built-in source pass the fidelity gate? (issue #17)

For each source: the default classifier (TrainConfig) and the β-VAE with the app's default recipe for that
source (defuse.vae_recipe.default_vae_config), or with ``--epochs`` given; prints one JSON line per run with
the fidelity (the classifier's accuracy on validation originals and on their reconstructions), the gate's
verdict, device, versions, threads and date.

    python benchmarks/vae_recipe.py --sources digits mnist-sample [--old-default]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from defuse.data.datasets import DatasetSpec, load_dataset  # noqa: E402
from defuse.nets.train import TrainConfig, train_classifier, train_vae, vae_fidelity  # noqa: E402
from defuse.nets.vae_recipe import default_vae_config, fidelity_gate  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sources", nargs="+", default=["digits", "mnist-sample"])
    p.add_argument("--old-default", action="store_true", help="also the app's former default: 30 epochs, batch 128")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for source in args.sources:
        data = load_dataset(DatasetSpec(source=source))
        t0 = time.perf_counter()
        clf = train_classifier(data, TrainConfig(), device="cpu").model
        clf_s = time.perf_counter() - t0
        recipe = default_vae_config(data)
        old = [replace(recipe, epochs=30, batch_size=128)] if args.old_default else []
        for cfg in [recipe, *old]:
            t0 = time.perf_counter()
            vae = train_vae(data, cfg, device="cpu").model
            fid = vae_fidelity(vae, clf, data, device="cpu")
            gate = fidelity_gate(fid)
            print(json.dumps({"source": source, "n_train": len(data.train.labels), "image_size": data.image_size,
                              "default_recipe": cfg == recipe, "epochs": cfg.epochs, "batch_size": cfg.batch_size,
                              "beta": cfg.beta,
                              "latent_dim": cfg.latent_dim, "train_on": cfg.train_on,
                              "acc_original": round(fid["acc_original"], 4),
                              "acc_reconstruction": round(fid["acc_reconstruction"], 4),
                              "active_dims": fid["active_dims"], "passes_gate": gate is None,
                              "vae_seconds": round(time.perf_counter() - t0, 1),
                              "classifier_seconds": round(clf_s, 1), "device": "cpu", "threads": args.threads,
                              "torch": torch.__version__, "python": platform.python_version(),
                              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
