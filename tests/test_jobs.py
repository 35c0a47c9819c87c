"""The job runner: start, progress, cancel, one job per workspace, found again from a fresh session."""

import time

import pytest

from defuse.cli import jobs
from defuse.data.datasets import DatasetSpec
from defuse.runtime import words
from defuse.steps.project import init_project
from defuse.workspace import Workspace


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return init_project(tmp_path_factory.mktemp("jobs") / "proj", DatasetSpec(source="digits"))


def test_job_runs_reports_progress_and_finishes(ws):
    job = jobs.start_job(ws, "train-classifier", ["--epochs", "1", "--optimizer", "adam", "--lr", "1e-3"], threads=1)
    assert job.running and jobs.running_job(ws).id == job.id
    done = jobs.wait(ws, job.id, timeout=300)
    assert done.status == "finished", jobs.job_log(ws, job.id)
    assert done.progress["step"] == "train-classifier" and done.fraction == 1.0
    assert jobs.running_job(ws) is None
    fresh = Workspace(ws.root)                       # a new session (or a restarted server) finds it
    assert [j.id for j in jobs.list_jobs(fresh)][0] == job.id
    assert jobs.job_state(fresh, job.id).status == "finished"


def test_second_job_is_refused_and_cancel_stops_the_first(ws):
    job = jobs.start_job(ws, "train-vae", ["--epochs", "500", "--width", "8"], threads=1)
    with pytest.raises(jobs.JobBusy, match="still running on this project.*wait for it"):
        jobs.start_job(ws, "train-classifier", [])
    deadline = time.time() + 120
    while jobs.job_state(ws, job.id).progress is None and time.time() < deadline:
        time.sleep(0.5)
    assert jobs.job_state(ws, job.id).progress is not None, jobs.job_log(ws, job.id)
    jobs.cancel_job(ws, job.id)
    state = jobs.wait(ws, job.id, timeout=60)
    assert state.status == "cancelled"
    assert jobs.running_job(ws) is None


def test_a_failing_job_reports_its_error(ws, monkeypatch):
    monkeypatch.setenv(words.ENV, "app")  # started as a page starts it: the recorded error names the page's field
    job = jobs.start_job(ws, "train-classifier", ["--epochs", "0"])
    state = jobs.wait(ws, job.id, timeout=120)
    assert state.status == "failed" and "“Epochs” must be an integer in [1, 10000]; got 0" in state.error
    assert "--epochs must be an integer in [1, 10000]; got 0" in jobs.job_log(ws, job.id)


def test_an_unreadable_job_file_is_listed_as_failed_not_skipped(tmp_path):
    ws = init_project(tmp_path / "proj", DatasetSpec(source="digits"))
    folder = ws.path("jobs")
    folder.mkdir()
    (folder / "20260101-000000-a.json").write_text('{"command": ["correct"], "started": 1.0}')
    (folder / "20260101-000001-b.json").write_text('{"command": ["corr')          # damaged from outside
    newest = jobs.list_jobs(ws, steps=["correct"], limit=1)[0]
    assert newest.id.endswith("-b") and newest.status == "failed" and "unreadable" in newest.error
    assert jobs.list_jobs(ws, limit=1)[0].status == "failed"                   # the unfiltered listing agrees
