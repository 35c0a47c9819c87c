"""Background steps on a page: start one, follow it (progress, ETA, live metrics, Cancel, log), show its end.

Everything is read from the workspace's ``jobs/`` folder, so a browser refresh or a server restart finds
the running or finished job again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Optional

import streamlit as st

from ..cli import jobs
from ..cli.jobs import JobState
from ..runtime.progress import fmt_seconds
from ..workspace import Workspace
from .backend import backend_args
from .errors import guard
from .nav import JOB_WORDS

POLL_S = 1.0
# Progress metrics whose raw key would mislead on a page (identify's "images_per_s" counts decodes).
METRIC_WORDS = {"images_per_s": "decodes per s", "sources_per_s": "images per s"}


def app_threads() -> int:
    """Torch threads for a job started from the app.

    Measured on 2 shared cores: a job with 2 torch threads beside a busy Streamlit server ran up to 20x
    slower than with 1. So small machines give a job one thread; larger ones keep one core for the server.
    """
    n = os.cpu_count() or 1
    return 1 if n <= 2 else n - 1


def start(ws: Workspace, step: str, args: Sequence[str]) -> None:
    """Start ``python -m defuse <step>`` for the project and rerun the page to follow it.

    Refused (another job runs, a bad argument): the message is shown and the rest of the page still draws,
    with the running job's progress.
    """
    busy = jobs.running_job(ws)
    if busy is not None:  # the core refuses it too; here in the page's words
        name = JOB_WORDS.get(busy.command[0], busy.command[0])
        st.warning(f"{name} is still running on this project: wait for it to finish, or cancel it, then start "
                   f"the {JOB_WORDS.get(step, step)} job again.")
        return
    with guard(f"start the {JOB_WORDS.get(step, step)} job", stop=False):
        jobs.start_job(ws, step, [str(a) for a in args] + backend_args(step), threads=app_threads())
        st.rerun()


def latest(ws: Workspace, steps: Sequence[str]) -> Optional[JobState]:
    """The newest job of one of ``steps`` (jobs are listed newest first)."""
    return next(iter(jobs.list_jobs(ws, steps=steps, limit=1)), None)


def busy_note(ws: Workspace) -> Optional[JobState]:
    """The running job of the project, if any (shown next to Start buttons so the wait is explained)."""
    running = jobs.running_job(ws)
    if running is not None:
        st.caption(f"⏳ {JOB_WORDS.get(running.command[0], running.command[0])} is running on this project; "
                   "a new job can start when it has finished or been cancelled.")
    return running


def panel(ws: Workspace, steps: Sequence[str], *, live: Optional[Callable[[JobState], None]] = None,
          key: str = "job") -> Optional[JobState]:
    """Follow the newest job of ``steps``: live while it runs, its outcome once it ended."""
    job = latest(ws, steps)
    if job is None:
        return None
    if job.running:
        st.fragment(_follow, run_every=POLL_S)(str(ws.root), job.id, live, key)
    else:
        _outcome(ws, job)
    return job


def _follow(root: str, job_id: str, live, key: str) -> None:
    ws = Workspace(root)
    state = jobs.job_state(ws, job_id)
    if not state.running:
        st.rerun(scope="app")  # show the results with the whole page
    p = state.progress or {}
    name = JOB_WORDS.get(p.get("step") or state.command[0], p.get("step") or state.command[0])
    elapsed = time.time() - state.started
    if p.get("total"):
        rate = f" · {p['rate']:.3g}/s" if p.get("rate") else ""  # steps/s of a training, from its first steps
        text = (f"{name}: {p['done']:,} of {p['total']:,} · elapsed {fmt_seconds(elapsed)}{rate} · "
                f"ETA {fmt_seconds(p.get('eta_s'))}")
    else:
        text = f"{name}: starting… · elapsed {fmt_seconds(elapsed)}"
    st.progress(state.fraction, text=text)
    shown = {k: v for k, v in (p.get("metrics") or {}).items() if isinstance(v, (int, float)) and k != "epoch"}
    if shown:
        cols = st.columns(min(4, len(shown)))
        for col, (k, v) in zip(cols, list(shown.items())[:4], strict=False):
            col.metric(METRIC_WORDS.get(k, k.replace("_", " ")), f"{v:.4g}" if isinstance(v, float) else f"{v:,}")
    if live is not None:
        live(state)
    if st.button("Cancel", key=f"cancel-{key}", help="Stops the job cleanly; finished parts are kept"):
        jobs.cancel_job(ws, job_id)
        st.toast("Cancelling… the job stops at its next progress step.")
    _log(ws, state, expanded=False)


def _outcome(ws: Workspace, job: JobState) -> None:
    name = JOB_WORDS.get(job.command[0], job.command[0])
    took = f" in {fmt_seconds((job.ended or job.started) - job.started)}" if job.ended else ""
    when = time.strftime("%H:%M", time.localtime(job.ended or job.started))
    if job.status == "finished":
        st.success(f"{name} finished at {when}{took}.", icon="✅")
    elif job.status == "cancelled":
        st.warning(f"{name} was cancelled at {when}. What it finished is kept: start it again to continue.")
    else:
        st.error(f"{name} failed: {job.error or 'no message'}\n\nCheck the settings above and start it "
                 "again; the log below tells more.")
    _log(ws, job, expanded=job.status == "failed")


def _log(ws: Workspace, job: JobState, *, expanded: bool) -> None:
    with st.expander(f"Log of job {job.id}", expanded=expanded):
        st.caption("python -m defuse " + " ".join(job.command))
        st.code(jobs.job_log(ws, job.id, max_chars=8000) or "(empty)", language="text")


def running(job: Optional[JobState]) -> bool:
    """True (with a note) while ``job`` runs: the page then hides results the job is about to replace."""
    if job is not None and job.running:
        st.caption("Results appear here when the job has finished.")
        return True
    return False


def history_metrics(job: Optional[JobState], event: Optional[str] = None) -> list[dict]:
    """The metrics of every progress event of ``job`` (of one metrics['event'] kind when given)."""
    if job is None:
        return []
    return [e["metrics"] for e in job.history if e.get("metrics") and event in (None, e["metrics"].get("event"))]
