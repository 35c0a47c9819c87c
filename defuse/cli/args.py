"""What every command module shares: its table of commands and how a ``--workspace`` value names a folder."""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, fields
from pathlib import Path

from ..runtime.settings import SettingError, declared, flag_of, parse_text


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


def open_workspace(args):
    """The existing workspace that ``--workspace`` names (ValueError when it is none)."""
    from ..workspace import Workspace

    return Workspace.open(resolve_workspace(args.workspace))


def status_lines(ws) -> str:
    """Each step's status (the map and the reviewer too), one indented line per step, for the CLI's output."""
    from ..steps.status import full_status

    return "\n".join(f"  {step:<12} {status}" for step, status in full_status(ws).items())


# --- a step's settings as one JSON object: what the app's jobs pass, and what people may pass too ----------
def add_config_option(p, cls) -> None:
    """``--config FILE_OR_JSON``: the fields of ``cls`` as one JSON object, inline or in a file."""
    p.add_argument("--config", default=None, metavar="FILE_OR_JSON",
                   help=f"{cls.__name__} fields as a JSON object, or a file holding one (e.g. '{{\"seed\": 1}}'); "
                        "its fields replace the matching flags")


def read_config(text: str, cls) -> dict:
    """The fields a ``--config`` value sets: only the names of ``cls``'s fields, no value checked here
    (the config checks its values once, in ``__post_init__``)."""
    source, path = "--config", Path(text)
    if not text.lstrip().startswith(("{", "[")) and path.is_file():
        text, source = path.read_text(encoding="utf-8"), f"--config file {path}"
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        if source == "--config" and not text.lstrip().startswith(("{", "[")):
            raise ValueError(f"--config must be a JSON object or the path of a file holding one; "
                             f"{text!r} is neither") from None
        raise ValueError(f"{source} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{source} must be a JSON object of {cls.__name__} fields; got {type(values).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{source} has unknown {cls.__name__} fields {unknown}; valid fields: {sorted(names)}")
    return values


def add_setting_flags(p, cls, *, skip=(), config: bool = True) -> None:
    """``--config`` (unless ``config`` is False) and one ``--flag`` per declared field of ``cls``
    (:mod:`defuse.runtime.settings`): its name, help and default from the declaration. Flags read text (left unset:
    the config's default), which :func:`config_from_args` turns into the field's kind; the config's check then names
    a bad one. A flag's value lands in ``args.<flag with _>``, the field's name unless the declaration names the
    flag otherwise (``cli``)."""
    if config:
        add_config_option(p, cls)
    defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    for name, spec in declared(cls).items():
        if name in skip or not spec.flag:
            continue
        flag, default = flag_of(name, spec), defaults.get(name)
        dest = flag.replace("-", "_")
        paper = f"; paper: {spec.paper}" if spec.paper is not None and spec.paper != default else ""
        if spec.kind is bool:
            negate = bool(default)
            p.add_argument(f"--no-{flag}" if negate else f"--{flag}", dest=dest, action="store_const", default=None,
                           const=not negate, help=f"{spec.help}{paper}")
        else:
            shown = ",".join(f"{v:g}" for v in default) if spec.kind is tuple and default else default
            choices = f"; one of {', '.join(map(str, spec.choices))}" if spec.choices else ""
            p.add_argument(f"--{flag}", dest=dest, default=None, metavar=dest.upper(),
                           help=f"{spec.help} (default: {shown}{paper}{choices})")


def setting_values(args, cls, *, skip=()) -> dict:
    """The fields of ``cls`` that the command's flags set, each read in its declared kind (unset flags: none)."""
    specs, out = declared(cls), {}
    for f in fields(cls):
        spec = specs.get(f.name)
        value = getattr(args, flag_of(f.name, spec).replace("-", "_"), None) if f.name not in skip else None
        if value is None:
            continue
        out[f.name] = parse_text(value, spec) if spec is not None and isinstance(value, str) else value
    return out


def config_from_args(args, cls, *, flags: dict | None = None, **overrides):
    """``cls`` from the command's flags (``flags``, default: :func:`setting_values`), ``--config``'s fields on top,
    then ``overrides``; built once, so validated once."""
    if flags is None:
        flags = setting_values(args, cls)
    given = read_config(args.config, cls) if getattr(args, "config", None) else {}
    try:
        return cls(**{**flags, **given, **overrides})
    except SettingError as e:
        e.in_config = e.name in given and e.name not in overrides
        raise


class Failed(str):
    """A command's printed result that ends with exit status 1 (a check that missed a threshold: CI fails)."""
