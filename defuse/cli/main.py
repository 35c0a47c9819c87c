"""`python -m defuse <command>`: every step headless. The app runs these same commands as jobs.

Each command prints a progress bar with ETA on a terminal (stderr) and, with
``--progress-jsonl FILE``, appends JSON-lines progress events (read by the app's jobs: defuse/cli/jobs.py).
A bad input ends with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from ..runtime.progress import Cancelled
from . import commands_correct, commands_embed, commands_pipeline, commands_project, commands_suite
from .args import Failed, resolve_workspace
from .progress_sink import ProgressSink

# The command table, explicit: every command module holds its own, listed here in `--help` order.
COMMANDS: dict = {**commands_project.COMMANDS, **commands_pipeline.COMMANDS, **commands_correct.COMMANDS,
                  **commands_embed.COMMANDS, **commands_suite.COMMANDS}
DESCRIPTION = "Defuse: find, understand and fix the failure modes of an image classifier."


def _common(p: argparse.ArgumentParser, workspace: bool = True) -> None:
    if workspace:
        p.add_argument("--workspace", "-w", required=True, help="project folder, or a name under DEFUSE_HOME")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: DEFUSE_THREADS or all)")
    p.add_argument("--progress-jsonl", default=None, help="append JSON-lines progress events to this file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--trust-code", action="store_true",
                   help="you trust the model files this command loads (TorchScript, torch.export, full pickles: "
                        "loading them runs code they carry); their checksums are remembered for you")


def build_parser() -> argparse.ArgumentParser:
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
    from ..runtime.devices import configure_threads

    configure_threads(args.threads)
    signal.signal(signal.SIGTERM, _sigterm_to_cancel)
    sink = ProgressSink(jsonl=args.progress_jsonl, terminal=not args.quiet and sys.stderr.isatty())
    _help, _add, run = COMMANDS[args.command]
    sink.event({"event": "started", "command": args.command, "pid": os.getpid()})
    try:
        if args.trust_code:
            trust_command_files(args)
        result = run(args, sink)
    except Cancelled as e:
        sink.event({"event": "cancelled", "message": str(e)})
        sink.close()
        print(f"cancelled: {e}. Finished parts are kept; run the command again to continue.", file=sys.stderr)
        return 130
    except ValueError as e:
        sink.event({"event": "error", "message": _reader_words(e)})
        sink.close()
        # the printed line is the command's own transcript (a job's log): a bad setting by its flag, as typed
        print(f"error: {_reader_words(e, 'cli')}{_flag_hint(e)}", file=sys.stderr)
        return 2
    sink.event({"event": "finished", "result": result if isinstance(result, dict) else None})
    sink.close()
    if result is not None:
        print(json.dumps(result, indent=2, default=str) if getattr(args, "json", False) else _human(result))
    return 1 if isinstance(result, Failed) else 0


MODEL_ARGS = ("classifier", "vae", "reviewer", "baseline", "source")


def trust_command_files(args) -> list[str]:
    """``--trust-code``: the model files named on the command line and the workspace's code-bearing models
    become trusted by this user (by checksum; a workspace's file only when it matches its sidecar)."""
    from ..nets import trust
    from ..nets.checkpoints import trusted_workspace_files
    from ..nets.model_files import CODE_FORMATS, detect_format

    trusted = []
    for name in MODEL_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, (str, os.PathLike)) and Path(value).is_file():
            fmt = detect_format(value) if Path(value).suffix != ".json" else None
            if fmt in CODE_FORMATS:
                trusted.append(trust.trust(value, fmt))
    if getattr(args, "workspace", None) and resolve_workspace(args.workspace).is_dir():
        trusted += trusted_workspace_files(resolve_workspace(args.workspace))
    return trusted


def _reader_words(e: ValueError, where: str | None = None) -> str:
    """The message for its reader: a bad setting named by its flag, or by its page's label in a job the app
    started (:mod:`defuse.runtime.words`; every other message was already worded so when it was made).
    ``where`` fixes the reader ("cli" for the printed transcript)."""
    from ..runtime.settings import SettingError
    from ..runtime.words import audience

    return e.words(where or audience()) if isinstance(e, SettingError) else str(e)


def _flag_hint(e: ValueError) -> str:
    """The CLI's words for an opt-in the core describes in words that fit the app too."""
    from ..nets.trust import UntrustedCodeError

    return " Pass --trust-code to opt in for it." if isinstance(e, UntrustedCodeError) else ""


def _human(result) -> str:
    if isinstance(result, str):
        return result
    return json.dumps(result, indent=2, default=str)
