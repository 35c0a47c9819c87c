"""The Ray backend against the local one, in one process (a script, not a test).

For identify (the demo classifier + β-VAE on mnist-sample, as ``identify_speed.py`` sets them up) and
for a small λ sweep, it times the local backend, Ray with 1 worker and Ray with 2 workers on a local
Ray instance, alternately, best of ``--rounds``. Reported per run: wall-clock seconds of the whole
call (Ray's actor / worker start included) and, for identify, the compute rate: decodes per second of
chunk search alone (the local loop's time, or the sum of the actors' times, per worker). Ratios
compare runs of this process only; every Ray result is checked equal to the local one.

    python benchmarks/ray_scaling.py [--sources 200] [--samples 100] [--rounds 2] [--out docs/runs/X.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.identify_speed import setup  # noqa: E402
from defuse.correct.sweep import CorrectConfig, FailureSet, correct  # noqa: E402
from defuse.data.datasets import ImageData, Split  # noqa: E402
from defuse.distributed.backend import RayBackend  # noqa: E402
from defuse.distributed.cluster import connect  # noqa: E402
from defuse.identify.search import IdentifyConfig, identify  # noqa: E402
from defuse.runtime.devices import describe_device  # noqa: E402
from defuse.runtime.progress import RunOptions  # noqa: E402

BACKENDS = {"local": None, "ray-1": RayBackend(workers=1), "ray-2": RayBackend(workers=2)}


def time_identify(inputs, cfg, backend) -> dict:
    t0 = time.perf_counter()
    failures = identify(*inputs, cfg, device="cpu", backend=backend)
    wall = time.perf_counter() - t0
    decodes, m = len(inputs[2]) * cfg.samples_per_image, failures.metrics
    compute_s = m["worker_seconds"] / m["ray_workers"] if backend is not None else m["search_seconds"]
    return {"wall_s": wall, "decodes_per_s_wall": decodes / wall, "decodes_per_s_compute_per_worker":
            decodes / m.get("worker_seconds", m["search_seconds"]), "compute_s_per_worker": compute_s,
            "n_failures": len(failures), "_failures": failures}


def time_sweep(inputs, cfg, backend) -> dict:
    t0 = time.perf_counter()
    sweep = correct(*inputs, cfg, run=RunOptions(device="cpu", backend=backend))
    wall = time.perf_counter() - t0
    n_models = len(cfg.lambdas) + cfg.include_control
    return {"wall_s": wall, "lambdas_per_min": n_models * 60 / wall, "chosen_lambda": sweep.chosen["lambda"],
            "_rows": [{k: v for k, v in r.items() if k != "seconds"} for r in sweep.rows]}


def sweep_inputs(clf, images, labels, n_train: int):
    """D: the first n_train images; a made-up failure scenario: class-0 images carrying label 1."""
    x, y = images.float(), labels.long()
    data = ImageData(Split(x[:n_train], y[:n_train]), Split(x[n_train:n_train + 200], y[n_train:n_train + 200]),
                     Split(x[n_train + 200:n_train + 400], y[n_train + 200:n_train + 400]),
                     class_names=[str(c) for c in range(10)])
    zeros = x[n_train + 400:][y[n_train + 400:] == 0]
    third = len(zeros) // 3
    return clf, data, [FailureSet(0, 1, zeros[:third], zeros[third:2 * third], zeros[2 * third:3 * third])]


def best_of(runs: list[dict], key: str) -> dict:
    return min(runs, key=lambda r: r[key])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sources", type=int, default=200, help="source images searched by identify")
    p.add_argument("--samples", type=int, default=100, help="Q")
    p.add_argument("--chunk-images", type=int, default=10)
    p.add_argument("--sweep-train", type=int, default=2000, help="training images of the sweep")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", default=None, help="write the raw JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(1)        # the local backend's one core; each Ray worker also runs one thread
    clf, vae, images, labels, words = setup(args.sources + args.sweep_train + 1000)
    ray = connect(None)             # a local instance with every core of this machine
    ident_inputs = (clf, vae, images[:args.sources], labels[:args.sources])
    icfg = IdentifyConfig(samples_per_image=args.samples, max_per_image=20, chunk_images=args.chunk_images,
                          precision="fp32", seed=0, subset=None)
    scfg = CorrectConfig(lambdas=(0.1, 1.0, 10.0), epochs=1, batch_size=128, parallel="off")
    s_inputs = sweep_inputs(clf, images[args.sources:], labels[args.sources:], args.sweep_train)
    ident = {name: [] for name in BACKENDS}
    sweep = {name: [] for name in BACKENDS}
    for _ in range(args.rounds):    # alternately, so a neighbour's load hits every backend alike
        for name, backend in BACKENDS.items():
            ident[name].append(time_identify(ident_inputs, icfg, backend))
            sweep[name].append(time_sweep(s_inputs, scfg, backend))
    ident = {name: best_of(runs, "wall_s") for name, runs in ident.items()}
    sweep = {name: best_of(runs, "wall_s") for name, runs in sweep.items()}
    same_failures = all(np.array_equal(a, ident[name]["_failures"].to_arrays()[k])
                        for name in ("ray-1", "ray-2") for k, a in ident["local"]["_failures"].to_arrays().items())
    same_sweep = all(sweep[name]["_rows"] == sweep["local"]["_rows"] for name in ("ray-1", "ray-2"))
    report = {
        "command": "python benchmarks/ray_scaling.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": describe_device("cpu"), "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "ray_cluster_cpus":
        ray.cluster_resources().get("CPU"), "python": platform.python_version(), "torch": torch.__version__,
        "ray": ray.__version__, "models": words, "load_average_1_5_15_min_at_end": os.getloadavg(),
        "identify_settings": {"sources": args.sources, "Q": args.samples, "chunk_images": args.chunk_images,
                              "precision": "fp32"},
        "sweep_settings": {"lambdas": list(scfg.lambdas), "control": True, "epochs": 1,
                           "train_images": args.sweep_train},
        "identify": {n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in ident.items()},
        "sweep": {n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in sweep.items()},
        "ray_failures_equal_local": same_failures, "ray_sweep_rows_equal_local": same_sweep,
        "ratios": _ratios(ident, sweep),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def _ratios(ident: dict, sweep: dict) -> dict:
    def rate(name):
        return ident[name]["decodes_per_s_compute_per_worker"]
    return {
        "identify_wall_ray1_over_local": ident["ray-1"]["wall_s"] / ident["local"]["wall_s"],
        "identify_wall_ray2_over_local": ident["ray-2"]["wall_s"] / ident["local"]["wall_s"],
        "identify_speedup_ray2_over_ray1": ident["ray-1"]["wall_s"] / ident["ray-2"]["wall_s"],
        "identify_compute_rate_per_worker_ray1_over_local": rate("ray-1") / rate("local"),
        "identify_compute_rate_per_worker_ray2_over_ray1": rate("ray-2") / rate("ray-1"),
        "sweep_wall_ray1_over_local": sweep["ray-1"]["wall_s"] / sweep["local"]["wall_s"],
        "sweep_wall_ray2_over_local": sweep["ray-2"]["wall_s"] / sweep["local"]["wall_s"],
        "sweep_speedup_ray2_over_ray1": sweep["ray-1"]["wall_s"] / sweep["ray-2"]["wall_s"],
    }


if __name__ == "__main__":
    main()
