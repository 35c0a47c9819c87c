"""AppTest of the Identify page: guards, the settings form, results, job panel (running, cancelled, failed)."""

import time

from defuse.cli import jobs
from defuse.identify.search import IdentifyConfig
from defuse.runtime import words
from defuse.workspace import Workspace


def test_without_models_the_page_says_what_to_do(run_page, empty_project):
    at = run_page("identify", empty_project)
    assert not at.exception
    said = at.info[0].value
    assert "needs a classifier" in said and "run train-classifier first (on the Setup page)" in said
    assert not at.button  # nothing to run yet


def test_results_of_a_finished_search(run_page, demo_done):
    at = run_page("identify", demo_done)
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    n = len(Workspace(demo_done).load_arrays("identify/failures.npz")["true_label"])
    assert metrics["Unrestricted adversarial examples"] == f"{n:,}" and metrics["Images searched"] == "64"
    assert len(at.get("plotly_chart")) == 1 and len(at.get("image")) == 1   # heatmap, gallery
    at.selectbox(key="gallery-pred").set_value(3).run()                     # a filter with no example
    assert not at.exception


def test_cpu_friendly_defaults_start_the_job(run_page, fresh_demo, started, job_config):
    at = run_page("identify", fresh_demo)
    assert "paper: 500" in at.number_input[0].label and at.number_input[0].value == 100
    at.button[0].click().run()
    step, args = started[0]
    assert step == "identify"
    cfg, others = job_config(args, IdentifyConfig)
    assert (cfg.samples_per_image, cfg.max_per_image, cfg.subset) == (100, 20, 1500) and others == []


def test_centred_scaled_noise_reaches_the_job(run_page, fresh_demo, started, job_config):
    """The class-conditional route's search settings (README, 'Side by side') can be set on the page."""
    at = run_page("identify", fresh_demo)
    next(c for c in at.checkbox if c.label.startswith("Centred noise")).check()
    next(n for n in at.number_input if n.label.startswith("Noise scale")).set_value(4.0)
    next(n for n in at.number_input if n.label.startswith("a of Beta")).set_value(2.0)
    next(n for n in at.number_input if n.label.startswith("b of Beta")).set_value(2.0)
    next(b for b in at.button if b.label.startswith("Run identify")).click().run()
    cfg, others = job_config(started[0][1], IdentifyConfig)
    assert (cfg.centered, cfg.noise_scale, cfg.beta_a, cfg.beta_b) == (True, 4.0, 2.0, 2.0) and others == []


def test_the_verification_filter_runs_with_the_automatic_reviewer(run_page, fresh_demo, started, job_config):
    at = run_page("identify", fresh_demo)
    next(c for c in at.checkbox if c.label.startswith("Keep only finds")).check()
    next(b for b in at.button if b.label.startswith("Run identify")).click().run()
    _, others = job_config(started[0][1], IdentifyConfig)
    assert others == ["--reviewer", "auto", "--verify"]


def test_the_strict_verification_rule_reaches_the_job(run_page, fresh_demo, started, job_config):
    at = run_page("identify", fresh_demo)
    next(c for c in at.checkbox if c.label.startswith("…only where every reviewer member")).check()
    next(b for b in at.button if b.label.startswith("Run identify")).click().run()
    _, others = job_config(started[0][1], IdentifyConfig)
    assert others == ["--reviewer", "auto", "--verify", "clear"]


def test_a_second_job_waits_with_an_explanation(run_page, fresh_demo, monkeypatch):
    def busy(*a, **k):
        raise jobs.JobBusy("'correct' is still running on this project (job x); wait for it to finish or cancel it")
    monkeypatch.setattr(jobs, "start_job", busy)
    at = run_page("identify", fresh_demo)
    at.button[0].click().run()
    assert not at.exception
    assert "One job runs per project at a time" in at.warning[0].value and "wait for it" in at.warning[0].value


def test_a_running_job_shows_progress_and_cancel_stops_it(run_page, project_copy):
    root = project_copy("running")
    ws = Workspace(root)
    job = jobs.start_job(ws, "identify", ["--samples-per-image", "4000", "--subset", "3000"], threads=1)
    try:
        deadline = time.time() + 120
        while jobs.job_state(ws, job.id).progress is None and time.time() < deadline:
            time.sleep(0.5)
        at = run_page("identify", root)
        assert not at.exception
        assert "is running on this project" in at.caption[-1].value or any(
            "is running on this project" in c.value for c in at.caption)
        cancel = at.button(key="cancel-identify")
        cancel.click().run()
        assert jobs.wait(ws, job.id, timeout=60).status == "cancelled"
        at = run_page("identify", Workspace(root).root)  # a fresh session finds it again
        assert "was cancelled" in at.warning[-1].value and "start it again to continue" in at.warning[-1].value
    finally:
        jobs.cancel_job(ws, job.id)


def test_a_failed_job_shows_its_error_and_log(run_page, project_copy, monkeypatch):
    root = project_copy("failing")
    ws = Workspace(root)
    monkeypatch.setenv(words.ENV, "app")  # started as a page starts it: the job speaks the app's words
    job = jobs.start_job(ws, "identify", ["--batch-size", "-5"], threads=1)
    jobs.wait(ws, job.id, timeout=120)
    at = run_page("identify", root)
    assert "Identify failed: “Decodes per batch” must be" in at.error[0].value and "the log below" in at.error[0].value
    log = next(e for e in at.expander if e.label.startswith("Log of job"))
    assert "batch-size" in " ".join(c.value for c in log.code)
