"""The paper's full MNIST identification on a GPU: 60,000 images x Q=500, M=100 (issue 5's H200 check).

Uses the demo classifier and VAE and the MNIST test images (IDX files in --idx) tiled to 60,000.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from defuse.identify.search import IdentifyConfig, identify  # noqa: E402
from defuse.nets.checkpoints import load_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def load_idx(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    raw = np.frombuffer((folder / "t10k-images-idx3-ubyte").read_bytes()[16:], np.uint8).reshape(-1, 1, 28, 28)
    labels = np.frombuffer((folder / "t10k-labels-idx1-ubyte").read_bytes()[8:], np.uint8)
    images = torch.nn.functional.pad(torch.from_numpy(raw.astype(np.float32) / 255), (2, 2, 2, 2))
    return images, torch.from_numpy(labels.astype(np.int64))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--idx", default=str(ROOT / ".gpu" / "mnist-test"))
    p.add_argument("--images", type=int, default=60_000)
    p.add_argument("--samples", type=int, default=500)
    args = p.parse_args()
    clf, _ = load_model(ROOT / "models/demo-classifier.json", kind="classifier")
    vae, _ = load_model(ROOT / "models/demo-vae.json", kind="vae")
    images, labels = load_idx(Path(args.idx))
    reps = -(-args.images // len(labels))
    images, labels = images.repeat(reps, 1, 1, 1)[:args.images], labels.repeat(reps)[:args.images]
    print(f"device: {torch.cuda.get_device_name()}; {len(labels)} images x Q={args.samples}", flush=True)
    warm = identify(clf, vae, images[:2000], labels[:2000], IdentifyConfig(samples_per_image=50), device="cuda")
    print(f"warm-up: {len(warm)} failures, plan {warm.metrics.get('precision')} batch {warm.metrics.get('batch_size')}")
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    failures = identify(clf, vae, images, labels, IdentifyConfig(samples_per_image=args.samples), device="cuda")
    seconds = time.perf_counter() - t0
    decodes = len(labels) * args.samples
    print(f"identify: {seconds:.1f} s for {decodes:,} decodes = {decodes / seconds:,.0f} images/s; "
          f"{len(failures):,} failures kept; precision {failures.metrics.get('precision')}, "
          f"batch {failures.metrics.get('batch_size')}")
    print(f"full_mnist_identify_seconds: {seconds:.1f}")


if __name__ == "__main__":
    main()
