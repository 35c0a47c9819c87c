"""Scenario purity over a project: the automatic reviewer's per-sample labels in its label store."""

from __future__ import annotations

from ..label.purity import ScenarioPurity, scenario_purities
from ..workspace import Workspace
from .label import LABELS, label_store


def workspace_purities(ws: Workspace) -> dict[int, ScenarioPurity]:
    """:func:`scenario_purities` of a workspace's label store ({} before any review)."""
    if not ws.exists(LABELS):
        return {}
    with label_store(ws) as store:
        return scenario_purities(store)


def mixed_failures(ws: Workspace, verdicts: dict) -> dict[int, ScenarioPurity]:
    """The failure scenarios (by ``verdicts``) whose reviewed samples are mixed."""
    purities = workspace_purities(ws)
    return {j: purities[j] for j, v in sorted(verdicts.items())
            if v.is_failure and j in purities and purities[j] is not None and purities[j].mixed}
