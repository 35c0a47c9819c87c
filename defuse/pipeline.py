"""The Defuse steps over a workspace: identify -> distill -> review/label (correct and export: correction.py).

Each function loads its inputs from the workspace, calls the pure step, saves the result atomically
and records the step (config + input fingerprints). The CLI and the app's jobs call these.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Optional

import numpy as np
import torch

from .devices import resolve_device
from .distill import DistillConfig, Scenarios, distill
from .identify import Failures, IdentifyConfig, identify
from .labels import LabelStore
from .limits import check_fits, identify_bytes
from .progress import ProgressFn
from .project import load_classifier, load_data, load_vae
from .reviewer import Reviewer, ReviewerConfig, load_reviewer, review_scenarios, train_reviewer
from .verdicts import Verdict, verdicts
from .workspace import Workspace

FAILURES = "identify/failures.npz"
SCENARIOS = "distill/scenarios.npz"
LABELS = "labels.sqlite"
REVIEWER_DIR = "reviewer"
# τ of §4.1: 0.5 for MNIST-like data, 0.01 for SVHN and German signs.
TAU_BY_SOURCE = {"svhn": 0.01, "gtsrb": 0.01}
DEFAULT_TAU = 0.5


def default_tau(ws: Workspace) -> float:
    return TAU_BY_SOURCE.get(ws.project["dataset"]["source"], DEFAULT_TAU)


# --- identify -------------------------------------------------------------------------------------
def save_failures(ws: Workspace, failures: Failures) -> None:
    arrays = {f.name: getattr(failures, f.name) for f in fields(Failures) if f.name != "metrics"}
    ws.save_arrays(FAILURES, **arrays)
    ws.save_json("identify/metrics.json", failures.metrics)


def load_failures(ws: Workspace) -> Failures:
    ws.verify(FAILURES, "identify")
    arrays = ws.load_arrays(FAILURES)
    metrics = ws.load_json("identify/metrics.json", default={})
    return Failures(**{f.name: arrays[f.name] for f in fields(Failures) if f.name in arrays}, metrics=metrics)


def identify_step(ws: Workspace, cfg: IdentifyConfig, *, device="auto", on_progress: ProgressFn = None,
                  reviewer: Optional[Reviewer] = None, verify: bool = False) -> dict:
    """Search the training images; resumes from ``identify/chunks`` after an interruption.

    ``verify``: keep only the UAEs ``reviewer`` reads as the source's class (:mod:`defuse.verification`).
    """
    if verify and reviewer is None:
        raise ValueError("the verification filter needs a reviewer: pass --reviewer auto (or a reviewer checkpoint)")
    data = load_data(ws)
    classifier, _ = load_classifier(ws)
    vae, _ = load_vae(ws)
    reviewer_model = _EnsembleModule(reviewer) if reviewer is not None else None
    image_numel = data.channels * data.image_size ** 2
    need = identify_bytes(batch_size=cfg.batch_size or 16384, chunk_images=cfg.chunk_images,
                          samples=cfg.samples_per_image, latent_dim=vae.latent_dim, image_numel=image_numel)
    check_fits(need, what=f"identify with Q={cfg.samples_per_image}, chunk_images={cfg.chunk_images}, "
               f"batch_size={cfg.batch_size or 'auto'}", fix="lower --batch-size, --chunk-images or "
               "--samples-per-image", device=resolve_device(device))
    failures = identify(classifier, vae, data.train.images, data.train.labels, cfg, device=device,
                        on_progress=on_progress, resume_dir=ws.path("identify/chunks"), reviewer=reviewer_model)
    if verify:
        from .verification import verify_failures

        failures = verify_failures(failures, vae, reviewer_model, device=device)
    save_failures(ws, failures)
    return ws.record_step("identify", config={**asdict(cfg), "verify": verify},
                          metrics={**failures.metrics, "n_failures": len(failures)})


class _EnsembleModule(torch.nn.Module):
    """A reviewer seen as one classifier (log of the members' mean probabilities), for identify's trust check."""

    def __init__(self, reviewer: Reviewer):
        super().__init__()
        self.members = torch.nn.ModuleList(reviewer.members)

    def forward(self, x):
        return torch.stack([m(x).softmax(1) for m in self.members]).mean(0).clamp_min(1e-12).log()


# --- distill --------------------------------------------------------------------------------------
def save_scenarios(ws: Workspace, scenarios: Scenarios) -> None:
    arrays, meta = scenarios.to_arrays()
    ws.save_arrays(SCENARIOS, **arrays)
    ws.save_json("distill/meta.json", meta)


def load_scenarios(ws: Workspace) -> Scenarios:
    ws.verify(SCENARIOS, "distill")
    return Scenarios.from_arrays(ws.load_arrays(SCENARIOS), ws.load_json("distill/meta.json"))


def distill_step(ws: Workspace, cfg: DistillConfig, *, on_progress: ProgressFn = None) -> dict:
    failures = load_failures(ws)
    if len(failures) < 2:
        raise ValueError(f"identify found {len(failures)} unrestricted adversarial examples: nothing to distill. "
                         "Search more images or raise Q (--samples-per-image), or use a weaker classifier.")
    scenarios = distill(failures, cfg, num_classes=len(ws.project["class_names"]), on_progress=on_progress)
    save_scenarios(ws, scenarios)
    metrics = {"n_scenarios": len(scenarios), "converged": scenarios.converged, "n_iter": scenarios.n_iter,
               "fit_seconds": scenarios.fit_seconds, "n_fitted": scenarios.n_fitted}
    return ws.record_step("distill", config=asdict(cfg), metrics=metrics)


# --- review and labels ----------------------------------------------------------------------------
def label_store(ws: Workspace) -> LabelStore:
    return LabelStore(ws.path(LABELS))


def get_reviewer(ws: Workspace, spec: str, *, cfg: Optional[ReviewerConfig] = None, device="auto",
                 on_progress: ProgressFn = None) -> Reviewer:
    """``spec`` "auto": the workspace's reviewer, trained on first use; else a path to a checkpoint/folder.

    ``cfg`` None reuses the workspace's reviewer whatever its settings (e.g. `run --quick`'s smaller one,
    whose verdicts are in the label store) and trains the default one where there is none.
    """
    if spec != "auto":
        return load_reviewer(spec)
    folder = ws.path(REVIEWER_DIR)
    if reviewer_ready(ws, cfg):
        return Reviewer.load(folder)
    cfg = cfg or ReviewerConfig()
    reviewer = train_reviewer(load_data(ws), cfg, device=device, on_progress=on_progress)
    reviewer.save(folder)
    ws.save_json(f"{REVIEWER_DIR}/stamp.json", _reviewer_stamp(ws, cfg))
    return reviewer


def _reviewer_stamp(ws: Workspace, cfg: ReviewerConfig) -> dict:
    # as it reads back from JSON (tuples become lists), or a saved stamp would never match
    return json.loads(json.dumps({"dataset": ws.project["dataset"], "config": asdict(cfg)}))


def reviewer_ready(ws: Workspace, cfg: Optional[ReviewerConfig] = None) -> bool:
    """Whether the workspace's automatic reviewer exists for this data (and ``cfg``, unless None)."""
    if not (ws.path(REVIEWER_DIR) / "reviewer.json").exists():
        return False
    stamp, want = ws.load_json(f"{REVIEWER_DIR}/stamp.json", default={}), _reviewer_stamp(ws, cfg or ReviewerConfig())
    return stamp == want if cfg is not None else stamp.get("dataset") == want["dataset"]


def review_step(ws: Workspace, reviewer: Reviewer, *, tau: Optional[float] = None, seed: int = 0,
                device="auto", on_progress: ProgressFn = None) -> dict[int, Verdict]:
    """The automatic reviewer labels 10 samples per scenario (the paper's protocol) into the label store."""
    scenarios = load_scenarios(ws)
    if len(scenarios) == 0:
        raise ValueError("distillation kept no scenario above ε: nothing to review. Lower --weight-threshold "
                         "or find more failures first.")
    classifier, _ = load_classifier(ws)
    vae, _ = load_vae(ws)
    with label_store(ws) as store:
        return review_scenarios(reviewer, vae, classifier, scenarios, store, tau=tau or default_tau(ws), seed=seed,
                                device=device, on_progress=on_progress)


def scenario_predictions(ws: Workspace, *, tau: Optional[float] = None, seed: int = 0, n: int = 10,
                         device="auto") -> dict[int, np.ndarray]:
    """The classifier's labels on each scenario's first ``n`` review samples (same draws the reviewer saw)."""
    from .scenarios import render_scenario, scenario_stream

    scenarios = load_scenarios(ws)
    classifier, _ = load_classifier(ws)
    vae, _ = load_vae(ws)
    out = {}
    for j in range(len(scenarios)):
        s = render_scenario(vae, classifier, scenarios.means[j], scenarios.covariances[j], n,
                            tau=tau or default_tau(ws), seed=scenario_stream(seed, j, "review"),
                            device=device)
        out[j] = np.asarray(s.predictions)
    return out


def current_verdicts(ws: Workspace, *, tau: Optional[float] = None, seed: int = 0, rho: float = 0.5,
                     device="auto") -> dict[int, Verdict]:
    """Verdicts from every annotator's decisions (whole-scenario, or per sample with the paper's ρ rule)."""
    if not ws.exists(LABELS):
        return {}
    with label_store(ws) as store:
        has_samples = any(d.sample_index is not None for d in store.decisions())
        preds = scenario_predictions(ws, tau=tau, seed=seed, device=device) if has_samples else None
        return verdicts(store, predictions=preds, rho=rho)


def verdicts_summary(found: dict[int, Verdict]) -> list[dict]:
    return [json.loads(json.dumps(asdict(v), default=float)) for v in found.values()]
