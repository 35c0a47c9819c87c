"""The paper's full-scale identification: every training image of a real dataset x Q=500, M=100.

    python benchmarks/gpu_identify_full.py --dataset fashion-mnist --root DIR --models-from WORKSPACE

The images are the dataset's whole training set as published (for Fashion-MNIST all 60,000: Defuse's train
split plus the validation images it carves from it), not a tiled smaller set. The classifier and VAE come
from a workspace trained on that dataset (``--models-from``, e.g. the one benchmarks/paper_table.py made);
without it, the demo models (MNIST-trained: right for timing MNIST-like images, not for findings).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from defuse.cli.commands_project import add_dataset_args, dataset_spec_from_args  # noqa: E402
from defuse.data.datasets import load_dataset  # noqa: E402
from defuse.identify.search import IdentifyConfig, identify  # noqa: E402
from defuse.nets.checkpoints import load_model  # noqa: E402
from defuse.runtime.devices import configure_threads, describe_device, resolve_device  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_dataset_args(p)
    p.add_argument("--models-from", default=None, help="workspace whose classifier/ and vae/ to use")
    p.add_argument("--images", type=int, default=None, help="at most this many images (default: all)")
    p.add_argument("--samples", type=int, default=500, help="Q")
    p.add_argument("--max-per-image", type=int, default=100, help="M")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    configure_threads(args.threads)
    dev = resolve_device(args.device)
    ws = Path(args.models_from) if args.models_from else None
    clf, _ = load_model(ws / "classifier/model.json" if ws else ROOT / "models/demo-classifier.json", kind="classifier")
    vae, _ = load_model(ws / "vae/model.json" if ws else ROOT / "models/demo-vae.json", kind="vae")
    data = load_dataset(dataset_spec_from_args(args))
    images = torch.cat([data.train.images, data.val.images])[:args.images]  # the published training set
    labels = torch.cat([data.train.labels, data.val.labels])[:args.images]
    print(f"device: {describe_device(dev)}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
          f"{args.dataset}: {len(labels):,} real training images x Q={args.samples}, M={args.max_per_image}; "
          f"models: {ws or 'the demo models'}", flush=True)
    warm = identify(clf, vae, images[:2000], labels[:2000], IdentifyConfig(samples_per_image=50), device=dev)
    print(f"warm-up: {len(warm)} failures, plan {warm.metrics.get('precision')} batch {warm.metrics.get('batch_size')}")
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    cfg = IdentifyConfig(samples_per_image=args.samples, max_per_image=args.max_per_image)
    failures = identify(clf, vae, images, labels, cfg, device=dev)
    seconds = time.perf_counter() - t0
    decodes = len(labels) * args.samples
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": describe_device(dev),
              "torch": torch.__version__, "dataset": args.dataset, "images": len(labels), "samples": args.samples,
              "seconds": round(seconds, 2), "decodes_per_s": round(decodes / seconds), "failures": len(failures),
              "precision": failures.metrics.get("precision"), "batch_size": failures.metrics.get("batch_size")}
    print(json.dumps(result))
    print(f"full_identify_seconds: {seconds:.1f}")
    return result


if __name__ == "__main__":
    main()
