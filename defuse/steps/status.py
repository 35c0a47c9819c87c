"""Every step's status for `info` and the app: the recorded steps, plus the latent map and the reviewer; and
what a project holds (:func:`project_info`, the Home page's and `info`'s summary).

The map and the reviewer are caches rather than recorded steps (the map follows the failures it was made
from; the reviewer follows the dataset), so their status is read from those.
"""

from __future__ import annotations

from ..data.datasets import describe
from ..distill.embed import PROJECTIONS
from ..nets.train import fidelity_warning
from ..workspace import Workspace
from .embed import EMBEDDING, load_embedding
from .label import reviewer_ready
from .precomputed_record import files_intact
from .project import load_data


def map_status(ws: Workspace) -> str:
    """'done' when a map of the current failures exists, 'stale' when only older ones, 'corrupt', 'missing'."""
    made = [m for m in PROJECTIONS if ws.exists(EMBEDDING.format(method=m))]
    if not made:
        return "missing"
    if not files_intact(ws, "map"):
        return "corrupt"
    try:
        return "done" if any(load_embedding(ws, m)[1] for m in made) else "stale"
    except ValueError:  # an unreadable map file
        return "corrupt"


def reviewer_status(ws: Workspace) -> str:
    if not files_intact(ws, "reviewer"):
        return "corrupt"
    return "done" if reviewer_ready(ws) else "missing"


def cache_status(ws: Workspace) -> dict[str, str]:
    return {"map": map_status(ws), "reviewer": reviewer_status(ws)}


def full_status(ws: Workspace) -> dict[str, str]:
    """The recorded steps in pipeline order, with the map and the reviewer after distill (for `info`)."""
    out = {}
    for step, status in ws.status().items():
        out[step] = status
        if step == "distill":
            out.update(cache_status(ws))
    return out


def project_info(ws: Workspace) -> dict:
    """What the workspace holds: dataset, models and their metrics, step status, warnings."""
    # "status": the recorded pipeline steps (the Home page walks them); the map and the reviewer are caches
    info = {"workspace": str(ws.root), "dataset": ws.project.get("dataset"), "status": ws.status(),
            "cache_status": cache_status(ws)}
    try:
        info["data"] = describe(load_data(ws))
    except ValueError as e:
        info["data_error"] = str(e)
    for step in ("classifier", "vae"):
        rec = ws.step_record(step)
        if rec:
            info[f"{step}_metrics"] = rec.get("metrics", {})
    warning = fidelity_warning(info.get("vae_metrics", {}), (ws.step_record("vae") or {}).get("config"))
    info["warnings"] = [warning] if warning else []
    return info
