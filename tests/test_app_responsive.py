"""While a job runs, every page renders within AppTest's default timeout (3 s) and shows the job.

Behaviour, not timing: the job is a stand-in (a sleeping process holding the project's job lock, with a
progress event on disk) so the test is deterministic; `benchmarks/page_render.py` measures render times
with a real job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from defuse.cli import jobs
from defuse.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
JOB_ID = "20260101-000000-abcdef"
# What each page shows of a running identify job, besides the sidebar's list of running jobs.
PAGES = {
    "home": "⏳ Identify — running",                                  # recent jobs
    "setup": "Identify is running on this project",                   # next to its Start buttons
    "identify": "Identify: 40 of 100",                                # the job's own progress bar
    "explore": "Identify is running on this project",
    "label": None,
    "correct": "Identify is running on this project",
    "report": None,
}


@pytest.fixture()
def running(demo_done, tmp_path, monkeypatch, navigation_mode):
    """A finished project under DEFUSE_HOME with an identify job running on it (40 of 100 images done)."""
    home = tmp_path / "home"
    root = home / "demo"
    shutil.copytree(demo_done, root, ignore=shutil.ignore_patterns("jobs"))
    monkeypatch.setenv("DEFUSE_HOME", str(home))
    monkeypatch.chdir(ROOT)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    ws = Workspace(root)
    started = time.time() - 30
    ws.path("jobs").mkdir()
    ws.save_json(f"jobs/{JOB_ID}.json", {"id": JOB_ID, "command": ["identify", "--workspace", str(root)],
                                          "pid": proc.pid, "started": started})
    event = {"time": started + 29, "step": "identify", "done": 40, "total": 100, "eta_s": 45.0,
             "metrics": {"found": 7, "images_per_s": 1.3}}
    ws.path(f"jobs/{JOB_ID}.jsonl").write_text(json.dumps(event) + "\n")
    ws.path(f"jobs/{JOB_ID}.log").write_text("")
    ws.save_json(jobs.LOCK, {"id": JOB_ID})
    assert jobs.running_job(ws).id == JOB_ID
    yield root
    proc.kill()
    proc.wait()


def _texts(at) -> str:
    parts = [e.value for kind in ("caption", "markdown", "info", "warning", "success") for e in getattr(at, kind)]
    parts += [p.proto.text for p in at.get("progress")] + [e.label for e in at.expander]
    return "\n".join(parts)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_and_shows_the_running_job(running, page):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state["project"] = str(running)
    at.session_state["annotator"] = "carol"  # the Label page draws a scenario's samples
    at.run()
    at.switch_page(f"pages/{page}.py").run()  # first visit: models and data into the caches
    at.default_timeout = 3                    # AppTest's own default: a rerun must not block
    at.run()

    assert not at.exception and not at.error
    sidebar = at.sidebar.get("progress")
    assert [p.proto.text for p in sidebar] == ["demo: Identify · ETA 00:45"] and sidebar[0].value == 40  # percent
    if PAGES[page]:
        assert PAGES[page] in _texts(at)
    if page == "identify":  # the results it is about to replace are hidden; it can be cancelled
        assert "Results appear here when the job has finished." in _texts(at)
        assert at.button(key="cancel-identify")
    assert jobs.job_state(Workspace(running), JOB_ID).running  # rendering did not disturb the job


def test_a_rerun_reads_only_the_jobs_it_shows(running, monkeypatch):
    """A long history of finished jobs is not read again on every rerun (it grew each page by a second)."""
    ws = Workspace(running)
    old = [f"20250101-0000{i:02d}-{i:06x}" for i in range(20)]
    for job_id in old:
        ws.save_json(f"jobs/{job_id}.json", {"id": job_id, "command": ["train-vae", "--workspace", str(running)],
                                              "pid": None, "started": 0.0})
        ws.path(f"jobs/{job_id}.jsonl").write_text(json.dumps({"time": 1.0, "event": "finished"}) + "\n")
    read = []
    job_state = jobs.job_state
    monkeypatch.setattr(jobs, "job_state", lambda ws, job_id: read.append(job_id) or job_state(ws, job_id))
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state["project"] = str(running)
    at.run()                                               # Home: its 5 recent jobs
    assert set(read) == {JOB_ID, *old[-4:]}
    read.clear()
    at.switch_page("pages/identify.py").run()
    assert not at.exception
    assert read and set(read) == {JOB_ID}                  # the running identify job, never the 20 earlier ones
    assert [j.id for j in jobs.list_jobs(ws, limit=3)] == [JOB_ID, old[-1], old[-2]]
    assert [j.id for j in jobs.list_jobs(ws, steps=["train-vae"], limit=1)] == [old[-1]]


def test_checksums_are_kept_across_reruns_but_a_change_is_seen(run_page, project_copy, monkeypatch):
    """Every rerun checks each step's artifacts; unchanged (settled) files are not hashed again."""
    from defuse.runtime import atomic

    root = project_copy("checksums")
    for f in root.rglob("*"):  # settled: written a minute ago (a file written within 2 s is hashed each time)
        os.utime(f, (time.time() - 60, time.time() - 60))
    hashed = []
    sha256_file = atomic.sha256_file
    monkeypatch.setattr(atomic, "sha256_file", lambda path, **kw: hashed.append(path) or sha256_file(path, **kw))
    at = run_page("home", root)
    assert hashed and "✅ done" in " ".join(m.value for m in at.markdown)
    hashed.clear()
    at.run()
    assert hashed == []                                                    # the second rerun reuses them
    path = root / "identify" / "failures.npz"
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))                                          # the same size, in place
    at.run()
    assert path in hashed and "**Identify**  \n❌ corrupt" in " ".join(m.value for m in at.markdown)


def test_starting_another_job_is_refused_in_the_pages_words(running):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state["project"] = str(running)
    at.run()
    at.switch_page("pages/correct.py").run()
    at.checkbox(key="again-correct").check()                 # the sweep was done: a confirmed re-run
    next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
    warning = next(w.value for w in at.warning if "still running" in w.value)
    assert warning.startswith("Identify is still running on this project") and "λ sweep job again" in warning
    assert not at.exception and jobs.job_state(Workspace(running), JOB_ID).running

