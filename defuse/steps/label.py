"""Label over a workspace: the label store, the automatic reviewer (trained once per workspace) and the
verdicts from every annotator's decisions (paper §3.2.3)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Optional

import numpy as np

from ..distill.config import DistillConfig
from ..distill.sampling import ReviewSamples
from ..distill.tau import TAU_AUTO, TauSearch
from ..label.provenance import ScenarioDecision, scenario_decisions
from ..label.reviewer import Reviewer, ReviewerConfig, load_reviewer, review_scenarios, train_reviewer
from ..label.store import LabelStore
from ..label.verdicts import PAPER_RHO, Verdict
from ..runtime.progress import ProgressFn
from ..runtime.words import named
from ..workspace import LABELS, REVIEWER_DIR, Workspace
from .distill import choose_tau_step, chosen_taus, default_tau, load_scenarios
from .label_record import WorkspaceLabelStore
from .precomputed_record import files_intact
from .project import load_classifier, load_data, load_vae


def label_store(ws: Workspace) -> LabelStore:
    """The project's decisions; a change through it records the `label` step (correction then goes stale)."""
    return WorkspaceLabelStore(ws)


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
    if not (ws.path(REVIEWER_DIR) / "reviewer.json").exists() or not files_intact(ws, "reviewer"):
        return False  # a shipped reviewer whose files changed is trained afresh
    stamp, want = ws.load_json(f"{REVIEWER_DIR}/stamp.json", default={}), _reviewer_stamp(ws, cfg or ReviewerConfig())
    return stamp == want if cfg is not None else stamp.get("dataset") == want["dataset"]


def check_review_inputs(ws: Workspace) -> None:
    """The reviewer's refusals before it trains (minutes): there must be scenarios to review."""
    if len(load_scenarios(ws)) == 0:  # a missing file is named by its step: "run distill first"
        raise ValueError(f"distillation kept no scenario above ε: nothing to review. Lower "
                         f"{named(DistillConfig, 'weight_threshold')} or find more failures first.")


def check_correct_inputs(ws: Workspace, *, tau: Optional[float] = None, seed: int = 0) -> None:
    """The correction's refusals before any reviewer trains: scenarios, and at least one labeled a failure."""
    load_scenarios(ws)
    if not any(v.is_failure for v in current_verdicts(ws, tau=tau, seed=seed, device="cpu").values()):
        raise ValueError("no scenario is labeled a failure yet: run label first (the Label page, or "
                         f"`python -m defuse label -w {ws.name} --reviewer auto`)")


def review_step(ws: Workspace, reviewer: Reviewer, *, tau: Optional[float | str] = None, seed: int = 0,
                device="auto", on_progress: ProgressFn = None) -> dict[int, Verdict]:
    """The automatic reviewer labels 10 samples per scenario (the paper's protocol) into the label store.

    ``tau``: one τ for every scenario; None: the project's (per scenario where it was chosen, else the dataset's);
    "auto": first choose τ per scenario with this reviewer (:mod:`defuse.distill.tau`), unless people have
    labelled already (their labels describe the images they saw)."""
    scenarios = load_scenarios(ws)
    if len(scenarios) == 0:
        raise ValueError(f"distillation kept no scenario above ε: nothing to review. Lower "
                         f"{named(DistillConfig, 'weight_threshold')} or find more failures first.")
    classifier, _ = load_classifier(ws)
    vae, _ = load_vae(ws)
    if tau == TAU_AUTO:
        if chosen_taus(ws) is None and not people_decided(ws):
            choose_tau_step(ws, lambda x: reviewer.predict(x, device=device).labels,
                            reader=f"{reviewer.name} ({len(reviewer)} members)", search=TauSearch(seed=seed),
                            device=device)
        tau = None
    with label_store(ws) as store:
        samples = ReviewSamples(vae, classifier, scenarios, tau=tau or default_tau(ws), seed=seed)
        return review_scenarios(reviewer, samples, store, device=device, on_progress=on_progress)


def people_decided(ws: Workspace) -> bool:
    """Whether any person has recorded a decision in the project."""
    if not ws.exists(LABELS):
        return False
    with LabelStore(ws.path(LABELS)) as store:
        return any(d.by_person for d in store.decisions())


def scenario_predictions(ws: Workspace, *, tau: Optional[float] = None, seed: int = 0, n: int = 10,
                         device="auto") -> dict[int, np.ndarray]:
    """The classifier's labels on each scenario's first ``n`` review samples (same draws the reviewer saw)."""
    samples = ReviewSamples(load_vae(ws)[0], load_classifier(ws)[0], load_scenarios(ws),
                            tau=tau or default_tau(ws), seed=seed)
    return {j: np.asarray(samples.render(j, n, device=device).predictions) for j in range(len(samples))}


def current_verdicts(ws: Workspace, *, tau: Optional[float] = None, seed: int = 0, rho: float = PAPER_RHO,
                     device="auto") -> dict[int, Verdict]:
    """The decision that counts per scenario: people's where any person voted, else the automatic reviewer's."""
    found = decided_scenarios(ws, tau=tau, seed=seed, rho=rho, device=device)
    return {j: s.verdict for j, s in found.items()}


def decided_scenarios(ws: Workspace, *, tau: Optional[float] = None, seed: int = 0, rho: float = 0.5,
                      device="auto") -> dict[int, ScenarioDecision]:
    """Each decided scenario with who decided it, the votes behind it and any conflicts (defuse.label.provenance)."""
    if not ws.exists(LABELS):
        return {}
    with LabelStore(ws.path(LABELS)) as store:
        current = store.decisions()
    # only people's per-sample decisions need the classifier's labels re-drawn; a reviewer's record them
    people_samples = any(d.sample_index is not None and d.by_person for d in current)
    preds = scenario_predictions(ws, tau=tau, seed=seed, device=device) if people_samples else None
    return scenario_decisions(current, predictions=preds, rho=rho)

