"""The record a demo workspace keeps of the precomputed artifacts installed into it
(:mod:`defuse.steps.demo_precomputed` writes it), and whether those files are still the bytes installed.

Its own module because the steps that read it (the reviewer's readiness in :mod:`defuse.steps.label`, the map's
status in :mod:`defuse.steps.status`) are the very steps that :mod:`defuse.steps.demo_precomputed` runs.
"""

from __future__ import annotations

from ..workspace import Workspace

INSTALLED = "precomputed.json"  # in the workspace: what was installed, with sha256s (corruption shows later)


def files_intact(ws: Workspace, group: str) -> bool:
    """False when a precomputed file of ``group`` no longer matches the sha256 it was installed with."""
    if not ws.exists(INSTALLED):
        return True
    files = ws.load_json(INSTALLED).get("installed", {}).get(group, {})
    return all(ws.fingerprint(rel) in (digest, None) for rel, digest in files.items())
