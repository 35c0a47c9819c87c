"""`python -m defuse <command>`: every step headless. The app runs these same commands as jobs.

Each command prints a progress bar with ETA on a terminal (stderr) and, with
``--progress-jsonl FILE``, appends JSON-lines progress events (DESIGN.md, Jobs).
A bad input ends with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from .progress import Cancelled
from .reporting import ProgressSink

COMMANDS: dict = {}
DESCRIPTION = "Defuse: find, understand and fix the failure modes of an image classifier."


class Failed(str):
    """A command's printed result that ends with exit status 1 (a check that missed a threshold: CI fails)."""


def register(name: str, help: str, add_args, run) -> None:
    """Register a subcommand: ``add_args(parser)`` defines its options, ``run(args, sink)`` runs it."""
    COMMANDS[name] = (help, add_args, run)


def resolve_workspace(name: str) -> Path:
    """A path when it looks like one (or exists), else a project name under DEFUSE_HOME."""
    from .workspace import default_home

    p = Path(name)
    if p.is_absolute() or os.sep in name or p.exists():
        return p
    return default_home() / name


def _common(p: argparse.ArgumentParser, workspace: bool = True) -> None:
    if workspace:
        p.add_argument("--workspace", "-w", required=True, help="project folder, or a name under DEFUSE_HOME")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: DEFUSE_THREADS or all)")
    p.add_argument("--progress-jsonl", default=None, help="append JSON-lines progress events to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from . import commands, commands_correct, commands_embed, commands_pipeline, commands_suite  # noqa: F401

    parser = argparse.ArgumentParser(prog="python -m defuse", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add_args, _run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        _common(p, workspace=getattr(add_args, "needs_workspace", True))
    return parser


def _sigterm_to_cancel(signum, frame):
    raise Cancelled("stopped by SIGTERM")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    from .devices import configure_threads

    configure_threads(args.threads)
    signal.signal(signal.SIGTERM, _sigterm_to_cancel)
    sink = ProgressSink(jsonl=args.progress_jsonl, terminal=not args.quiet and sys.stderr.isatty())
    _help, _add, run = COMMANDS[args.command]
    sink.event({"event": "started", "command": args.command, "pid": os.getpid()})
    try:
        result = run(args, sink)
    except Cancelled as e:
        sink.event({"event": "cancelled", "message": str(e)})
        sink.close()
        print(f"cancelled: {e}. Finished parts are kept; run the command again to continue.", file=sys.stderr)
        return 130
    except ValueError as e:
        sink.event({"event": "error", "message": str(e)})
        sink.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    sink.event({"event": "finished", "result": result if isinstance(result, dict) else None})
    sink.close()
    if result is not None:
        print(json.dumps(result, indent=2, default=str) if getattr(args, "json", False) else _human(result))
    return 1 if isinstance(result, Failed) else 0


def _human(result) -> str:
    if isinstance(result, str):
        return result
    return json.dumps(result, indent=2, default=str)
