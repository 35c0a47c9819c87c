"""Background jobs: a CLI command in a subprocess, followed through its JSON-lines progress file.

A job lives in ``<workspace>/jobs/<id>.{json,jsonl,log}``: the spec (command, pid, start time), the
progress events the CLI appends (``--progress-jsonl``) and its stdout/stderr. Because everything is
on disk, a browser refresh or a server restart finds the running or finished job again. One job
runs per workspace at a time (a lock file holds the running job's id).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..runtime import atomic, words
from ..workspace import Workspace

LOCK = "jobs/running.json"
_CHILDREN: dict[int, subprocess.Popen] = {}  # jobs this process started: poll() reaps them
REPO_ROOT = Path(__file__).resolve().parents[2]


def config_args(cfg) -> list[str]:
    """The arguments that hand a job its frozen config ``cfg``: ``--config`` and the config as JSON.

    JSON writes a float by its repr, so every value arrives exactly as the page built it (λ=12345678 stays
    12345678); the command builds the config from it once, and the config validates itself there.
    """
    return ["--config", json.dumps(asdict(cfg))]


class JobBusy(ValueError):
    """Another job runs on this workspace."""


@dataclass
class JobState:
    id: str
    command: list
    status: str                     # running, finished, failed, cancelled
    started: float
    pid: Optional[int] = None
    ended: Optional[float] = None
    progress: Optional[dict] = None  # the last progress event
    history: list = field(default_factory=list)  # every progress event (for live charts)
    error: Optional[str] = None
    result: Optional[dict] = None
    returncode: Optional[int] = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def fraction(self) -> float:
        p = self.progress or {}
        return min(1.0, p.get("done", 0) / p["total"]) if p.get("total") else 0.0


def _pid_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    if pid in _CHILDREN:
        return _CHILDREN[pid].poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _job_paths(ws: Workspace, job_id: str) -> dict[str, Path]:
    return {ext: ws.path(f"jobs/{job_id}.{ext}") for ext in ("json", "jsonl", "log")}


def running_job(ws: Workspace) -> Optional[JobState]:
    """The workspace's running job, or None (a stale lock from a dead process is cleared)."""
    lock = ws.path(LOCK)
    if not lock.exists():
        return None
    try:
        job_id = json.loads(lock.read_text())["id"]
        state = job_state(ws, job_id)
    except (ValueError, KeyError, OSError):
        lock.unlink(missing_ok=True)
        return None
    if state.running:
        return state
    lock.unlink(missing_ok=True)
    return None


def start_job(ws: Workspace, step: str, args: list[str], *, threads: Optional[int] = None) -> JobState:
    """Start ``python -m defuse <step> --workspace W <args>`` in the background; refuse if one runs."""
    busy = running_job(ws)
    if busy is not None:
        raise JobBusy(f"'{' '.join(busy.command[:1])}' is still running on this project (job {busy.id}); "
                      "wait for it to finish or cancel it first")
    job_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    paths = _job_paths(ws, job_id)
    paths["json"].parent.mkdir(parents=True, exist_ok=True)
    command = [step, "--workspace", str(ws.root.resolve()), *args, "--progress-jsonl", str(paths["jsonl"]), "--quiet"]
    # the job speaks its starter's words: an error shown on a page names the page's fields (defuse.runtime.words)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO_ROOT), words.ENV: words.audience()}
    if threads:
        env["DEFUSE_THREADS"] = str(threads)
    with open(paths["log"], "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "defuse", *command], cwd=REPO_ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # survives a Streamlit restart; own process group
    _CHILDREN[proc.pid] = proc
    spec = {"id": job_id, "command": command, "pid": proc.pid, "started": time.time()}
    atomic.write_json(paths["json"], spec)
    atomic.write_json(ws.path(LOCK), {"id": job_id})
    return job_state(ws, job_id)


def _read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written right now
    return events


def job_state(ws: Workspace, job_id: str) -> JobState:
    """Read a job's state from disk: spec, progress events, and whether its process still lives."""
    paths = _job_paths(ws, job_id)
    try:
        spec = json.loads(paths["json"].read_text())
        spec["command"], spec["started"]
    except (ValueError, KeyError, TypeError, OSError) as err:  # written atomically: only outside damage
        return JobState(id=job_id, command=["unknown"], status="failed", started=0.0,
                        error=f"its job file {paths['json'].name} is unreadable ({err}); start the step again")
    events = _read_events(paths["jsonl"])
    progress = [e for e in events if "step" in e]
    final = next((e for e in reversed(events) if e.get("event") in ("finished", "error", "cancelled")), None)
    state = JobState(id=job_id, command=spec["command"], status="running", started=spec["started"],
                     pid=spec.get("pid"), progress=progress[-1] if progress else None, history=progress,
                     returncode=spec.get("returncode"))
    if final is not None:
        state.status = {"finished": "finished", "error": "failed", "cancelled": "cancelled"}[final["event"]]
        state.ended, state.result = final["time"], final.get("result")
        # the job's own words (a job of the app speaks the app's); "app_message": a job recorded before that
        state.error = final.get("app_message", final.get("message"))
    elif spec.get("cancel_requested") and not _pid_alive(state.pid):
        state.status, state.ended = "cancelled", spec.get("cancel_requested")
    elif not _pid_alive(state.pid):
        state.status, state.error = "failed", _crash_message(paths["log"])
    return state


def _crash_message(log: Path) -> str:
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
    last = tail[-1] if tail else "no output"
    return f"the job stopped unexpectedly ({last}). See its log for details."


def cancel_job(ws: Workspace, job_id: str) -> None:
    """Ask the job to stop (SIGTERM: the step stops cleanly and keeps what it finished)."""
    paths = _job_paths(ws, job_id)
    spec = json.loads(paths["json"].read_text())
    atomic.write_json(paths["json"], {**spec, "cancel_requested": time.time()})
    if _pid_alive(spec.get("pid")):
        try:
            os.killpg(spec["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass


def list_jobs(ws: Workspace, *, steps: Optional[Sequence[str]] = None, limit: Optional[int] = None) -> list[JobState]:
    """The jobs of the workspace, newest first: of ``steps`` only and at most ``limit`` when given.

    A job's progress file is read only when the job is listed: the app asks for one job on every rerun, and
    reading every earlier job's events each time grew with the project's history (a second for 30 long jobs).
    """
    folder = ws.path("jobs")
    if not folder.exists():
        return []
    ids = sorted((p.stem for p in folder.glob("*.json") if p.name != "running.json"), reverse=True)
    listed = []
    for job_id in ids:
        if limit is not None and len(listed) >= limit:
            break
        if steps is not None:
            try:
                command = json.loads(_job_paths(ws, job_id)["json"].read_text())["command"]
            except (ValueError, KeyError, TypeError, OSError):
                command = None  # unreadable: listed (as failed) for every step, never skipped silently
            if command and command[0] not in steps:
                continue
        listed.append(job_state(ws, job_id))
    return listed


def job_log(ws: Workspace, job_id: str, max_chars: int = 20_000) -> str:
    """The end of the job's log (only the end is read: the app shows it every second while the job runs)."""
    log = _job_paths(ws, job_id)["log"]
    if not log.exists():
        return ""
    with open(log, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 4 * max_chars))  # UTF-8: at most 4 bytes a character
        return f.read().decode("utf-8", errors="replace")[-max_chars:]


def wait(ws: Workspace, job_id: str, timeout: float = 600, poll: float = 0.2) -> JobState:
    """Block until the job ends (tests and scripts; the app polls instead)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = job_state(ws, job_id)
        if not state.running:
            return state
        time.sleep(poll)
    raise TimeoutError(f"job {job_id} still running after {timeout} s")
