"""Identify-only variants on a finished paper_table workspace, each graded by its independent judge.

    python benchmarks/identify_variants.py WORKSPACE JUDGE_DIR '[{"centered": true}, {"beta_a": 2, "beta_b": 2}]'

For each JSON object of IdentifyConfig fields: identify on the workspace's training split (subset 1,000,
Q=100, M=20, seed 0, as paper_table --quick), then the judge reads 1,000 of the UAEs: how many there are,
from how many sources, and the share it reads as the source's class (real) or the classifier's (artefact).
A cheap way to compare noise settings for one VAE without running the whole correction.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from defuse.evaluation.judge import JUDGE_PRESETS, load_or_train_judge  # noqa: E402
from defuse.identify.search import IdentifyConfig, decode_latents, identify  # noqa: E402
from defuse.steps import project  # noqa: E402
from defuse.workspace import Workspace  # noqa: E402

QUICK = {"samples_per_image": 100, "max_per_image": 20, "subset": 1000, "seed": 0}


def grade(ws: Workspace, judge, fields: dict) -> dict:
    data = project.load_data(ws)
    clf, vae = project.load_classifier(ws)[0], project.load_vae(ws)[0]
    t = time.perf_counter()
    f = identify(clf, vae, data.train.images, data.train.labels, IdentifyConfig(**{**QUICK, **fields}), device="cpu")
    out = {**fields, "n_failures": len(f), "sources": int(len(np.unique(f.source_index))),
           "real_share": None, "artefact_share": None}
    if len(f):
        pick = np.sort(np.random.default_rng(0).choice(len(f), min(1000, len(f)), replace=False))
        read = judge.labels(decode_latents(vae, f.latents[pick], device="cpu"), device="cpu")
        out.update(real_share=float(np.mean(read == f.true_label[pick])),
                   artefact_share=float(np.mean(read == f.pred_label[pick])))
    return {**out, "seconds": time.perf_counter() - t}


def main(argv=None) -> int:
    workspace, judge_dir, variants = (argv or sys.argv[1:])[:3]
    torch.set_num_threads(1)
    ws = Workspace.open(workspace)
    meta = project.load_vae(ws)[1]
    judge = load_or_train_judge(project.load_data(ws), JUDGE_PRESETS["quick"], judge_dir, device="cpu")
    print(json.dumps({"workspace": workspace, "vae": meta.get("architecture"), "vae_beta": meta["config"].get("beta"),
                      "judge_test_acc": judge.test_acc, "torch": torch.__version__, "python": platform.python_version(),
                      "threads": torch.get_num_threads(), "device": "cpu",
                      "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}), flush=True)
    for fields in json.loads(variants):
        print(json.dumps(grade(ws, judge, fields)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
