"""Export over a workspace: the corrected classifier (the chosen λ, or the user's) and its model card."""

from __future__ import annotations

from typing import Optional

from ..correct.export import CorrectionRecord, export_corrected
from ..data.datasets import dataset_fingerprint
from ..workspace import EXPORTS, SWEEP, VAE, Workspace
from .correct import load_sweep
from .project import load_classifier


def export_step(ws: Workspace, *, lam: Optional[float] = None, name: Optional[str] = None) -> dict:
    """Write the corrected classifier (chosen λ unless ``lam``) and its model card into ``exports/``."""
    if not ws.exists(SWEEP):
        raise ValueError("nothing to export yet: run the correction first (`python -m defuse correct`)")
    sweep, record = load_sweep(ws), ws.load_json(SWEEP)
    swept = sorted({float(r["lambda"]) for r in sweep.best_per_lambda if r["kind"] == "defuse"})
    if lam is not None and float(lam) not in swept:
        raise ValueError(f"λ={lam} was not swept; choose one of {swept}")
    if lam is not None:
        sweep.chosen = next(r for r in sweep.best_per_lambda if r["kind"] == "defuse" and r["lambda"] == float(lam))
        sweep.chosen = {**sweep.chosen, "rule": "chosen by the user"}
    _, meta = load_classifier(ws)
    dataset = {**ws.project["dataset"], "fingerprint": dataset_fingerprint(ws.dataset)}
    provenance = {"classifier_sha256": meta.get("sha256"), "vae_sha256": ws.load_json(VAE).get("sha256"),
                  "labels_sha256": record.get("labels_fingerprint"), "dataset_fingerprint": dataset["fingerprint"]}
    card = export_corrected(sweep.model(lam), meta, ws.path(EXPORTS),
                            CorrectionRecord(sweep, record.get("failure_sets", []), dataset, provenance,
                                             two_sided=record.get("two_sided") if lam is None
                                             or float(lam) == float(record["chosen"]["lambda"]) else None),
                            name=name or f"{ws.name}-corrected")
    ws.record_step("export", config={"lambda": sweep.chosen["lambda"], "name": name})
    from .suite import export_suite  # the bundle carries the regression suite (exports/suite)

    try:
        export_suite(ws)
    except ValueError as e:  # e.g. the labels changed since the sweep: the model is exported all the same
        card = {**card, "suite_not_written": str(e)}
    return card
