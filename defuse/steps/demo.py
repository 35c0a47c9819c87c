"""The embedded demo: mnist-sample with a classifier that has a planted, documented flaw.

`python -m defuse demo --rebuild` retrains both models and writes them into ``models/``
(committed, a few MB), so `make run` opens a ready project without training anything.

The flaw: the demo classifier saw only DEMO_KEEP_FRACTION of the training images of class
DEMO_WEAK_CLASS — as in a skewed data collection — and is trained briefly. Defuse should find
failure scenarios around that class. The VAE uses the fidelity recipe measured here (β=0.4, KL
annealed over 2,000 steps), which keeps reconstructions recognisable, and sees the training split
only: the validation images that measure its fidelity and the test images stay unseen.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional

from ..data.datasets import load_dataset
from ..nets import checkpoints
from ..nets.train import TrainConfig, VAEConfig, train_classifier, train_vae
from ..runtime.progress import ProgressFn
from ..workspace import Workspace
from .project import DEMO_CLASSIFIER, DEMO_DATASET, DEMO_VAE, MODELS_DIR, init_project

DEMO_WEAK_CLASS = 6
DEMO_KEEP_FRACTION = 0.15
DEMO_CLASSIFIER_CONFIG = TrainConfig(epochs=5, class_keep=((DEMO_WEAK_CLASS, DEMO_KEEP_FRACTION),), seed=0)
DEMO_VAE_CONFIG = VAEConfig(beta=0.4, epochs=200, batch_size=128, kl_anneal_steps=2000, train_on="train", seed=0)


def rebuild_demo_models(*, out=None, vae_epochs: Optional[int] = None, classifier_epochs: Optional[int] = None,
                        device="auto", on_progress: ProgressFn = None) -> dict:
    """Train the demo classifier and VAE and save them (safetensors + JSON) into ``out``."""
    out = Path(out) if out else MODELS_DIR
    data = load_dataset(DEMO_DATASET)
    ccfg = DEMO_CLASSIFIER_CONFIG if classifier_epochs is None else replace(DEMO_CLASSIFIER_CONFIG,
                                                                           epochs=classifier_epochs)
    vcfg = DEMO_VAE_CONFIG if vae_epochs is None else replace(DEMO_VAE_CONFIG, epochs=vae_epochs)
    t0 = time.perf_counter()
    clf = train_classifier(data, ccfg, device=device, on_progress=on_progress)
    flaw = {"weak_class": DEMO_WEAK_CLASS, "keep_fraction": DEMO_KEEP_FRACTION,
            "note": f"trained on {DEMO_KEEP_FRACTION:.0%} of the class-{DEMO_WEAK_CLASS} images (planted flaw)"}
    per_class = _per_class_accuracy(clf.model, data)
    checkpoints.save_model(clf.model, out / DEMO_CLASSIFIER.stem, kind="classifier", architecture=ccfg.architecture,
                           arch_kwargs=clf.arch_kwargs, class_names=data.class_names, config=asdict(ccfg),
                           metrics={**clf.metrics, "per_class_test_acc": per_class},
                           extra={"demo_flaw": flaw, "dataset": DEMO_DATASET.to_dict()})
    t1 = time.perf_counter()
    vae = train_vae(data, vcfg, device=device, on_progress=on_progress, classifier=clf.model)
    checkpoints.save_model(vae.model, out / DEMO_VAE.stem, kind="vae", architecture="beta-vae",
                           arch_kwargs=vae.arch_kwargs, config=asdict(vcfg), metrics=vae.metrics,
                           extra={"dataset": DEMO_DATASET.to_dict(),
                                  "training_data": f"the {vae.metrics['trained_on']} split(s) of mnist-sample"})
    summary = {"classifier": {**clf.metrics, "per_class_test_acc": per_class, "seconds": t1 - t0},
               "vae": {**vae.metrics, "seconds": time.perf_counter() - t1}, "flaw": flaw}
    (out / "demo-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _per_class_accuracy(model, data) -> dict:
    import torch

    with torch.no_grad():
        preds = model(data.test.images).argmax(1)
    out = {}
    for c, name in enumerate(data.class_names):
        mask = data.test.labels == c
        out[name] = float((preds[mask] == c).float().mean()) if mask.any() else float("nan")
    return out


def open_demo_project(root, *, precomputed: bool = True) -> Workspace:
    """The demo workspace, created from ``models/`` on first use; with ``precomputed``, its first-look steps
    (identify, distill, the maps, the reviewer) come verified from ``models/demo-precomputed``."""
    root = Path(root)
    if (root / "project.json").exists():
        return Workspace.open(root)
    if not DEMO_CLASSIFIER.exists() or not DEMO_VAE.exists():
        raise ValueError(f"the demo models are missing from {MODELS_DIR}: run `python -m defuse demo --rebuild`")
    ws = init_project(root, DEMO_DATASET, classifier=DEMO_CLASSIFIER, vae=DEMO_VAE)
    if precomputed:
        from .demo_precomputed import install_precomputed  # late: it imports every first-look step

        install_precomputed(ws)
    return ws
