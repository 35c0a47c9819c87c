"""Killed jobs resume to the same result; corrupt artifacts are named with the step to re-run."""

import os
import shutil
import signal
import time

import numpy as np
import pytest

from defuse.cli import jobs
from defuse.cli.main import main
from defuse.steps.identify import load_failures
from defuse.workspace import Workspace

IDENTIFY = ["--samples-per-image", "100", "--max-per-image", "20", "--subset", "768", "--chunk-images", "128"]
CORRECT = ["--lambdas", "0.1,1,10", "--epochs", "1", "--samples", "16", "--no-baseline"]


def _kill_after(ws: Workspace, job, ready, timeout: float = 300) -> None:
    """SIGKILL the job's process group as soon as ``ready(progress_events)`` holds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = jobs.job_state(ws, job.id)
        if ready(state.history):
            os.killpg(state.pid, signal.SIGKILL)
            jobs.wait(ws, job.id, timeout=30)
            return
        assert state.running, jobs.job_log(ws, job.id)
        time.sleep(0.05)
    raise AssertionError("the job never reached the point to kill it")


def _copy(src, dest):
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("jobs"))
    return Workspace.open(dest)


def test_identify_killed_midway_resumes_to_the_uninterrupted_result(fresh_demo, tmp_path):
    killed, clean = _copy(fresh_demo, tmp_path / "killed"), _copy(fresh_demo, tmp_path / "clean")
    job = jobs.start_job(killed, "identify", IDENTIFY, threads=1)
    _kill_after(killed, job, lambda events: any(e["done"] >= 128 for e in events if e["step"] == "identify"))
    assert jobs.job_state(killed, job.id).status == "failed"           # killed, not finished
    assert any(killed.path("identify/chunks").iterdir())
    assert main(["identify", "-w", str(killed.root), *IDENTIFY, "--threads", "1", "--quiet"]) == 0
    assert main(["identify", "-w", str(clean.root), *IDENTIFY, "--threads", "1", "--quiet"]) == 0
    a, b = load_failures(killed), load_failures(clean)
    assert a.metrics["chunks_resumed"] >= 1 and b.metrics["chunks_resumed"] == 0
    for name in ("latents", "source_index", "true_label", "pred_label", "noise_norm"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_correct_killed_midway_keeps_finished_lambdas_and_matches(demo_done, tmp_path):
    killed, clean = _copy(demo_done, tmp_path / "killed"), _copy(demo_done, tmp_path / "clean")
    for ws in (killed, clean):
        shutil.rmtree(ws.path("correct"))
    job = jobs.start_job(killed, "correct", CORRECT, threads=1)
    _kill_after(killed, job, lambda events: any(e["metrics"].get("event") == "lambda" for e in events))
    finished = sorted(p.name for p in killed.path("correct/sweep").glob("lambda-*.json"))
    assert 1 <= len(finished) < 4                                         # control + 3 λ, not all done
    assert main(["correct", "-w", str(killed.root), *CORRECT, "--threads", "1", "--quiet"]) == 0
    assert main(["correct", "-w", str(clean.root), *CORRECT, "--threads", "1", "--quiet"]) == 0
    rows_a = killed.load_json("correct/sweep.json")["best_per_lambda"]
    rows_b = clean.load_json("correct/sweep.json")["best_per_lambda"]
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in rows_a]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in rows_b]


def test_a_changed_artifact_is_detected_and_names_the_step(demo_done, tmp_path):
    ws = _copy(demo_done, tmp_path / "p")
    arrays = ws.load_arrays("identify/failures.npz")
    arrays["pred_label"] = (arrays["pred_label"] + 1) % 10                # valid file, wrong content
    ws.save_arrays("identify/failures.npz", **arrays)
    assert ws.status()["identify"] == "corrupt"
    with pytest.raises(ValueError, match="does not match the checksum.*Re-run `identify`"):
        load_failures(ws)
