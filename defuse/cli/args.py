"""What every command module shares: its table of commands and how a ``--workspace`` value names a folder."""

from __future__ import annotations

import os
from pathlib import Path


class CommandTable(dict):
    """``name -> (help, add_args, run)`` in the order ``--help`` lists them; :mod:`defuse.cli.main` joins the tables.

    ``add_args(parser)`` defines a command's options, ``run(args, sink)`` runs it.
    """

    def register(self, name: str, help: str, add_args, run) -> None:
        self[name] = (help, add_args, run)


def resolve_workspace(name: str) -> Path:
    """A path when it looks like one (or exists), else a project name under DEFUSE_HOME."""
    from ..workspace import default_home

    p = Path(name)
    if p.is_absolute() or os.sep in name or p.exists():
        return p
    return default_home() / name


class Failed(str):
    """A command's printed result that ends with exit status 1 (a check that missed a threshold: CI fails)."""
