"""AppTest of the Home page: pipeline status, the next step, recent jobs."""

from defuse.cli.jobs import start_job, wait
from defuse.runtime import words
from defuse.workspace import Workspace


def _text(at) -> str:
    return " ".join(str(m.value) for m in (*at.markdown, *at.caption, *at.info, *at.error, *at.warning))


def test_empty_project_shows_missing_steps_and_points_to_setup(run_page, empty_project):
    at = run_page("home", empty_project)
    assert not at.exception
    text = _text(at)
    assert "Project: empty" in [s.value for s in at.subheader]
    assert "**Classifier**  \n⬜ missing" in text and "**Export**  \n⬜ missing" in text
    assert "Next: Classifier" in text  # outside the navigation the link is a caption


def test_finished_demo_shows_done_and_the_report(run_page, demo_done):
    at = run_page("home", demo_done)
    assert not at.exception
    text = _text(at)
    assert text.count("✅ done") == 7 and "Everything is done: read the report" in text
    assert "**Label**  \n✅ done" in text                                   # every step has its card
    assert "Classifier test accuracy" in text and "VAE fidelity" in text


def test_fresh_demo_points_to_identify(run_page, fresh_demo):
    at = run_page("home", fresh_demo)
    assert "Next: Identify" in _text(at)


def test_a_project_that_cannot_be_opened_falls_back_to_the_demo(run_page, tmp_path):
    at = run_page("home", tmp_path / "not-a-project")
    assert not at.exception
    assert "could not be opened" in at.warning[0].value
    assert (tmp_path / "home" / "demo" / "project.json").exists()
    assert "Project: demo" in [s.value for s in at.subheader]


def test_a_failed_job_is_listed_with_its_log(run_page, project_copy, monkeypatch):
    root = project_copy("home-jobs")
    ws = Workspace(root)
    monkeypatch.setenv(words.ENV, "app")  # started as a page starts it: the job speaks the app's words
    job = start_job(ws, "identify", ["--samples-per-image", "0"], threads=1)
    assert wait(ws, job.id, timeout=120).status == "failed"
    at = run_page("home", root)
    assert "Recent jobs" in [s.value for s in at.subheader]
    assert any("Identify — failed" in e.label for e in at.expander)
    assert any("Q must be an integer in [1, 1048576]; got 0" in e.value for e in at.error)


def test_with_no_scenario_above_epsilon_distilling_again_is_next_not_labeling():
    from defuse.ui.home import next_step

    status = {"classifier": "done", "vae": "done", "identify": "done", "distill": "done", "label": "missing",
              "correct": "missing", "export": "missing"}
    assert next_step(status, n_scenarios=12) == "label" and next_step(status) == "label"
    assert next_step(status, n_scenarios=0) == "distill"
    assert next_step({**status, "label": "done"}, n_scenarios=12) == "correct"
    assert next_step({**status, "label": "done"}, n_scenarios=0) == "distill"
