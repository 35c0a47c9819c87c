"""Every step's status for `info` and the app: the recorded steps, plus the latent map and the reviewer.

The map and the reviewer are caches rather than recorded steps (the map follows the failures it was made
from; the reviewer follows the dataset), so their status is read from those.
"""

from __future__ import annotations

from ..distill.embed import PROJECTIONS
from ..workspace import Workspace
from .demo_precomputed import files_intact
from .embed import EMBEDDING, load_embedding
from .label import reviewer_ready


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
