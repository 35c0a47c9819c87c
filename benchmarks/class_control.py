"""Class control and fidelity of conditional β-VAE designs, side by side (issue #21, point 4).

Trains one conditional VAE per design on a finished workspace's data (its training split), with that
workspace's classifier, and measures on images the VAE never trained on:

- class control (:mod:`defuse.nets.class_control`) on ``--n`` test images, read by the classifier and, when
  the workspace holds one for this data, by the independent judge (``<models-from>/judge``, never trained here);
- the product's fidelity (:func:`defuse.nets.train.vae_fidelity`: the classifier's accuracy on validation
  originals vs on their reconstructions, and the gate's verdict).

Writes one JSON per design to ``--out`` (default docs/runs/class-control-<dataset>-<design>-<steps>.json) with
device, versions, threads and date. The workspace is only read.

    python benchmarks/class_control.py --models-from /work/runs/fm-paper --designs decoder-input:0 every-layer:0 \
        every-layer:2 --epochs 4 --threads 1
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from defuse.data.datasets import DatasetSpec, load_dataset  # noqa: E402
from defuse.evaluation.judge import JUDGE_PRESETS, Judge, fingerprint  # noqa: E402
from defuse.nets import checkpoints  # noqa: E402
from defuse.nets.class_control import class_control  # noqa: E402
from defuse.nets.train import VAEConfig, train_vae, vae_fidelity  # noqa: E402
from defuse.nets.vae_recipe import fidelity_gate  # noqa: E402


def parse_design(text: str) -> tuple[str, float]:
    """"every-layer:2" -> ("every-layer", 2.0): where the label enters, and the adversary's weight."""
    label_in, _, weight = text.partition(":")
    return label_in, float(weight or 0)


def load_judge(models_from: Path, data) -> Judge | None:
    """The workspace's judge for this data (quick or full preset), or None: never trained here."""
    for cfg in (JUDGE_PRESETS["quick"], JUDGE_PRESETS["full"]):
        path = models_from / "judge" / f"judge-{fingerprint(data, cfg)}"
        if path.with_suffix(".json").is_file():
            model, meta = checkpoints.load_model(path, kind="classifier")
            return Judge(model.eval(), meta)
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-from", required=True, help="a workspace with the classifier (and judge/) for the data")
    p.add_argument("--judge-from", default=None, help="a workspace whose judge/ to read (default: --models-from)")
    p.add_argument("--root", default=None, help="the data root, if the workspace's is relative to elsewhere")
    p.add_argument("--path", default=None, help="the data path, if the workspace's is relative to elsewhere")
    p.add_argument("--designs", nargs="+", default=["decoder-input:0", "every-layer:0"],
                   help="LABEL_IN:ADVERSARY_WEIGHT, e.g. every-layer:2")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--beta", type=float, default=4.0)
    p.add_argument("--kl-anneal-steps", type=int, default=500)
    p.add_argument("--n", type=int, default=1000, help="test images for class control")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "docs/runs"))
    p.add_argument("--save", default=None, help="a folder to keep each trained VAE in; one already there is "
                   "measured again instead of retrained (e.g. once the judge exists)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    src = Path(args.models_from)
    spec = json.loads((src / "project.json").read_text())["dataset"]
    spec.update({k: v for k, v in (("root", args.root), ("path", args.path)) if v is not None})
    data = load_dataset(DatasetSpec(**spec))
    clf = checkpoints.load_model(src / "classifier/model.json", kind="classifier")[0].eval()
    judge = load_judge(Path(args.judge_from or src), data)
    pick = torch.from_numpy(np.sort(np.random.default_rng(args.seed).choice(
        len(data.test), min(args.n, len(data.test)), replace=False)))
    x, y = data.test.images[pick], data.test.labels[pick]
    for design in args.designs:
        label_in, weight = parse_design(design)
        cfg = VAEConfig(conditional=True, beta=args.beta, epochs=args.epochs, kl_anneal_steps=args.kl_anneal_steps,
                        label_in=label_in, class_adversary=weight, seed=args.seed)
        steps = cfg.epochs * -(-len(data.train) // cfg.batch_size)
        name = (f"class-control-{spec.get('source')}-{label_in}-adv{weight:g}-{steps}steps"
                + (f"-seed{args.seed}" if args.seed else ""))
        saved = Path(args.save) / name if args.save else None
        if saved is not None and saved.with_suffix(".json").is_file():
            vae, meta = checkpoints.load_model(saved, kind="vae")
            seconds = meta["metrics"]["vae_seconds"]
        else:
            t0 = time.perf_counter()
            result = train_vae(data, cfg, device="cpu")
            vae, seconds = result.model, time.perf_counter() - t0
            if saved is not None:
                checkpoints.save_model(vae, saved, kind="vae", architecture="conditional-beta-vae",
                                       arch_kwargs=result.arch_kwargs, config=asdict(cfg),
                                       metrics={"vae_seconds": seconds})
        fid = vae_fidelity(vae, clf, data, split="val", device="cpu")
        row = {"dataset": spec.get("source"), "design": design, "label_in": label_in, "class_adversary": weight,
               "steps": steps, "vae_seconds": round(seconds, 1),
               "class_control_classifier_test": class_control(vae, lambda im: clf(im).argmax(1), x, y, seed=args.seed),
               "class_control_judge_test": None if judge is None else class_control(
                   vae, lambda im: judge.labels(im, device="cpu"), x, y, seed=args.seed),
               "judge_test_acc": None if judge is None else judge.test_acc,
               "n_class_control": len(y), **fid, "passes_fidelity_gate": fidelity_gate(fid) is None,
               "config": asdict(replace(cfg)), "models_from": str(src),
               "judge_from": None if judge is None else str(args.judge_from or src), "command": " ".join(sys.argv),
               "device": "cpu", "threads": args.threads,
               "torch": torch.__version__, "python": platform.python_version(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"{name}.json").write_text(json.dumps(row, indent=1) + "\n")
        print(json.dumps({k: row[k] for k in ("design", "steps", "vae_seconds", "class_control_classifier_test",
                                              "class_control_judge_test", "acc_original", "acc_reconstruction",
                                              "active_dims")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
