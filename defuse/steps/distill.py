"""Distill over a workspace: cluster the UAEs into failure scenarios and keep them (paper §3.2.2); τ per
scenario (chosen by the automatic reviewer, :mod:`defuse.distill.tau`) or per source."""

from __future__ import annotations

from dataclasses import asdict
from typing import Optional

from ..distill.sampling import PAPER_TAU
from ..distill.scenarios import DistillConfig, Scenarios, distill
from ..distill.tau import TauSearch, choose_taus
from ..identify.config import IdentifyConfig
from ..runtime.progress import ProgressFn
from ..runtime.words import named
from ..workspace import SCENARIOS, SCENARIOS_META, TAUS, Workspace
from .identify import load_failures
from .project import load_vae


def dataset_tau(ws: Workspace) -> float:
    """τ of §4.1 for the workspace's data: the paper's value for its source, MNIST's for other data."""
    return PAPER_TAU.get(ws.project["dataset"]["source"], PAPER_TAU["mnist"])


def chosen_taus(ws: Workspace) -> Optional[dict]:
    """The saved τ choice when it was made for the current scenarios, else None."""
    record = ws.load_json(TAUS) if ws.exists(TAUS) else None
    if record is None or record.get("scenarios") != ws.fingerprint(SCENARIOS):
        return None
    return record


def default_tau(ws: Workspace) -> float | tuple:
    """The project's τ: one per scenario row where the reviewer chose them for the current scenarios
    (:func:`choose_tau_step`), else the dataset's (:func:`dataset_tau`)."""
    record = chosen_taus(ws)
    return tuple(c["tau"] for c in record["choices"]) if record else dataset_tau(ws)


def choose_tau_step(ws: Workspace, read, *, reader: str, search: TauSearch = TauSearch(), device="auto") -> dict:
    """Choose every scenario's τ with ``read`` (images -> labels, the reviewer's vote) and save it."""
    choices = choose_taus(load_vae(ws)[0], read, load_scenarios(ws), search, device=device)
    record = {"scenarios": ws.fingerprint(SCENARIOS), "reader": reader, "search": asdict(search),
              "choices": [c.to_dict() for c in choices]}
    ws.save_json(TAUS, record)
    return record


def save_scenarios(ws: Workspace, scenarios: Scenarios) -> None:
    arrays, meta = scenarios.to_arrays()
    ws.save_arrays(SCENARIOS, **arrays)
    ws.save_json(SCENARIOS_META, meta)


def load_scenarios(ws: Workspace) -> Scenarios:
    ws.verify(SCENARIOS, "distill")
    return Scenarios.from_arrays(ws.load_arrays(SCENARIOS), ws.load_json(SCENARIOS_META))


def distill_step(ws: Workspace, cfg: DistillConfig, *, on_progress: ProgressFn = None) -> dict:
    failures = load_failures(ws)
    if len(failures) < 2:
        raise ValueError(f"identify found {len(failures)} unrestricted adversarial examples: nothing to distill. "
                         f"Search more images or raise {named(IdentifyConfig, 'samples_per_image')}, or use a weaker "
                         "classifier.")
    scenarios = distill(failures, cfg, num_classes=len(ws.project["class_names"]), on_progress=on_progress)
    save_scenarios(ws, scenarios)
    metrics = {"n_scenarios": len(scenarios), "converged": scenarios.converged, "n_iter": scenarios.n_iter,
               "fit_seconds": scenarios.fit_seconds, "n_fitted": scenarios.n_fitted, "reg_covar": scenarios.reg_covar}
    return ws.record_step("distill", config=asdict(cfg), metrics=metrics)
