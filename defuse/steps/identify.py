"""Identify over a workspace: search the project's training images for UAEs and keep them (paper §3.2.1)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Optional

import torch

from ..identify.checks import check_search_fits
from ..identify.search import Failures, IdentifyConfig, identify
from ..identify.verification import VERIFY_RULES, verify_failures
from ..label.reviewer import Reviewer
from ..runtime.devices import resolve_device
from ..runtime.progress import RunOptions
from ..runtime.words import option
from ..workspace import CLASSIFIER, FAILURES, IDENTIFY_CHUNKS, IDENTIFY_METRICS, VAE, Workspace
from .fidelity import check_fidelity
from .project import load_classifier, load_data, load_vae


def save_failures(ws: Workspace, failures: Failures) -> None:
    arrays = {f.name: getattr(failures, f.name) for f in fields(Failures) if f.name != "metrics"}
    ws.save_arrays(FAILURES, **arrays)
    ws.save_json(IDENTIFY_METRICS, failures.metrics)


def load_failures(ws: Workspace) -> Failures:
    ws.verify(FAILURES, "identify")
    arrays = ws.load_arrays(FAILURES)
    metrics = ws.load_json(IDENTIFY_METRICS, default={})
    return Failures(**{f.name: arrays[f.name] for f in fields(Failures) if f.name in arrays}, metrics=metrics)


def check_identify_inputs(ws: Workspace, *, verify: bool, has_reviewer: bool, accept_low_fidelity: bool) -> None:
    """Every refusal of a search, before any work (the CLI calls it before it trains a reviewer): the models
    exist, the VAE passes the fidelity gate, the verification filter has a reviewer."""
    if verify and not has_reviewer:
        raise ValueError(f"the verification filter needs a reviewer: use {option('reviewer-auto')}")
    for rel, cmd in ((CLASSIFIER, "train-classifier"), (VAE, "train-vae")):
        if not ws.exists(rel):
            raise ValueError(f"identify needs the project's {'classifier' if rel == CLASSIFIER else 'VAE'}: "
                             f"run {cmd} first (or import one on the Setup page)")
    check_fidelity(ws, accept_low_fidelity=accept_low_fidelity)


def identify_step(ws: Workspace, cfg: IdentifyConfig, *, run: RunOptions = RunOptions(),
                  reviewer: Optional[Reviewer] = None, accept_low_fidelity: bool = False,
                  verify: bool | str = False) -> dict:
    """Search the training images; resumes from ``identify/chunks`` after an interruption.

    ``run``: the device, progress callback and backend (None: here; a
    :class:`defuse.distributed.backend.RayBackend`: a Ray cluster, same failures); its ``resume_dir`` is
    ignored (the workspace's ``identify/chunks`` is always used).
    A VAE whose reconstructions the classifier recognises far less often than the originals is refused
    (its blur would be reported as failures) unless ``accept_low_fidelity``.
    ``verify``: keep only the UAEs ``reviewer`` reads as the source's class (:mod:`defuse.identify.verification`):
    "reviewer" (or True) by its vote, "clear" where every member reads it so confidently; False: keep all.
    """
    check_identify_inputs(ws, verify=verify, has_reviewer=reviewer is not None,
                          accept_low_fidelity=accept_low_fidelity)
    data = load_data(ws)
    classifier, _ = load_classifier(ws)
    vae, _ = load_vae(ws)
    reviewer_model = _EnsembleModule(reviewer) if reviewer is not None else None
    check_search_fits(cfg, latent_dim=vae.latent_dim, image_numel=data.channels * data.image_size ** 2,
                      device=resolve_device(run.device))
    failures = identify(classifier, vae, data.train.images, data.train.labels, cfg, device=run.device,
                        on_progress=run.on_progress, resume_dir=ws.path(IDENTIFY_CHUNKS), reviewer=reviewer_model,
                        backend=run.backend)
    rule = verify_rule(verify)
    if rule == "clear":
        failures = verify_failures(failures, vae, reviewer_model, device=run.device, rule=rule,
                                   read=lambda x: reviewer.clear_labels(x, device=run.device))
    elif rule:
        failures = verify_failures(failures, vae, reviewer_model, device=run.device, rule=rule)
    save_failures(ws, failures)
    return ws.record_step("identify", config={**asdict(cfg), "verify": rule or False},
                          metrics={**failures.metrics, "n_failures": len(failures)})


def verify_rule(verify: bool | str) -> str:
    """"" (no verification), "reviewer" or "clear" from the step's ``verify`` (True is "reviewer")."""
    rule = "reviewer" if verify is True else (verify or "")
    if rule and rule not in VERIFY_RULES:
        raise ValueError(f"verify must be one of {list(VERIFY_RULES)} (or True / False); got {verify!r}")
    return rule


class _EnsembleModule(torch.nn.Module):
    """A reviewer seen as one classifier (log of the members' mean probabilities), for identify's trust check."""

    def __init__(self, reviewer: Reviewer):
        super().__init__()
        self.members = torch.nn.ModuleList(reviewer.members)

    def forward(self, x):
        return torch.stack([m(x).softmax(1) for m in self.members]).mean(0).clamp_min(1e-12).log()
