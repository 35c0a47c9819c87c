"""How long `defuse check` takes on a suite of 10,000 images, against a bare forward pass over the same images.

    python benchmarks/check_speed.py [--quick] [--images 10000] [--out docs/runs/check-speed-cpu.json]

Writes a suite of the demo classifier's data (the bundled MNIST sample, tiled to ``--images``; random
images where it is missing) and times, in one process: the bare forward pass of the classifier over
the images in batches of 1,024 (the baseline), ``check_model`` with ``--baseline`` another model
(two forward passes), and the whole CLI (`python -m defuse check`: start-up, sha256 of the files,
loading, both models) as a subprocess. Prints ``ratio_check_vs_forward`` (check_model with a baseline
over one bare forward: about 2 when it adds nothing but the second model).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from defuse.nets.architectures import PaperCNN  # noqa: E402
from defuse.nets.checkpoints import load_model, save_model  # noqa: E402
from defuse.runtime.devices import configure_threads  # noqa: E402
from defuse.suite.check import check_model  # noqa: E402
from defuse.suite.regression_suite import RegressionSuite, SuiteScenario, as_float, predict, to_uint8, write_suite  # noqa: E402

DEMO = ROOT / "models" / "demo-classifier.json"


def _images(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    try:
        from defuse.data.datasets import DatasetSpec, load_dataset

        d = load_dataset(DatasetSpec())
        images, labels, source = d.train.images, d.train.labels, "mnist-sample train split"
    except (ImportError, ValueError, OSError):
        gen = torch.Generator().manual_seed(0)
        images, labels, source = torch.rand(n, 1, 32, 32, generator=gen), torch.randint(0, 10, (n,)), "random"
    reps = -(-n // len(images))
    return to_uint8(images.repeat(reps, 1, 1, 1)[:n]), labels.repeat(reps)[:n].numpy(), source


def _suite(n: int, model) -> tuple[RegressionSuite, str]:
    images, labels, source = _images(n)
    ids = np.arange(n) % 10  # ten stand-in scenarios, one per class
    preds, conf = predict(model, images)
    scenarios = tuple(SuiteScenario(j, j, f"stand-in {j}", int((ids == j).sum())) for j in range(10))
    return RegressionSuite(images=images, labels=labels.astype(np.int64), sample_labels=np.full(n, -1),
                           scenario_ids=ids, original_predictions=preds, original_confidence=conf,
                           scenarios=scenarios, class_names=tuple(str(i) for i in range(10))), source


def _bare_forward(model, images: np.ndarray) -> None:
    with torch.no_grad():
        for i in range(0, len(images), 1024):
            model(as_float(images[i:i + 1024]))


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 images, one repeat")
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args()
    configure_threads(args.threads)
    n, repeats = (2_000, 1) if args.quick else (args.images, 3)
    model, what = (load_model(DEMO, kind="classifier")[0], "demo classifier") if DEMO.exists() else \
        (PaperCNN().eval(), "random PaperCNN")
    suite, source = _suite(n, model)
    with tempfile.TemporaryDirectory() as tmp:
        out, other = Path(tmp) / "suite", Path(tmp) / "other"
        write_suite(suite, out)
        torch.manual_seed(1)
        save_model(PaperCNN().eval(), other, kind="classifier", architecture="paper-cnn",
                   arch_kwargs={"channels": 1, "image_size": 32, "num_classes": 10})
        baseline = load_model(other.with_suffix(".json"))[0]
        forward = _best(lambda: _bare_forward(model, suite.images), repeats)
        check = _best(lambda: check_model(suite, model, baseline=baseline), repeats)
        cmd = [sys.executable, "-m", "defuse", "check", "--suite", str(out), "--classifier", str(DEMO),
               "--baseline", str(other.with_suffix(".json")), "--threads", str(args.threads), "--quiet"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        cli = time.perf_counter() - t
    result = {"images": n, "source": f"{what} on {source}", "threads": args.threads, "repeats": repeats,
              "bare_forward_s": round(forward, 3), "check_model_with_baseline_s": round(check, 3),
              "cli_check_with_baseline_s": round(cli, 2), "cli_exit_status": proc.returncode,
              "ratio_check_vs_forward": round(check / forward, 2), "torch": torch.__version__,
              "python": platform.python_version(), "machine": platform.processor() or platform.machine(),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    print(json.dumps(result, indent=2))
    print(f"ratio_check_vs_forward: {result['ratio_check_vs_forward']}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if proc.returncode in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
