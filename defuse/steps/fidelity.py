"""The fidelity gate over a project: its VAE's recorded fidelity and training settings, judged by
:func:`defuse.nets.vae_recipe.fidelity_gate` before a search spends minutes on blurry decodes."""

from __future__ import annotations

from typing import Optional

from ..nets.vae_recipe import fidelity_gate
from ..runtime.words import option
from ..workspace import Workspace


def workspace_gate(ws: Workspace) -> Optional[str]:
    """:func:`fidelity_gate` for a project's VAE: its recorded fidelity (re-measured figures in
    ``vae/fidelity.json`` win) and the settings it was trained with."""
    record = ws.step_record("vae") or {}
    metrics = {**(record.get("metrics") or {}), **ws.load_json("vae/fidelity.json", default={"": None})}
    return fidelity_gate(metrics, record.get("config") or {})


def check_fidelity(ws: Workspace, *, accept_low_fidelity: bool) -> None:
    """Refuse to search with a VAE that fails the gate, unless the user accepted it explicitly."""
    problem = workspace_gate(ws)
    if problem and not accept_low_fidelity:
        raise ValueError(f"{problem} To search with this VAE anyway, use {option('accept-low-fidelity')}.")
