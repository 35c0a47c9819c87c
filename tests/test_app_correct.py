"""AppTest of the Correct page: guards, sweep settings and their errors, the trade-off, export and download."""

from defuse.cli.jobs import JobState
from defuse.correct.sweep import CorrectConfig
from defuse.ui.charts import tradeoff_chart
from defuse.ui.correct import parse_lambdas


def test_without_scenarios_the_page_says_what_to_do(run_page, fresh_demo):
    at = run_page("correct", fresh_demo)
    assert not at.exception and "needs failure scenarios" in at.info[0].value


def test_without_failure_labels_the_page_points_to_label(run_page, project_copy):
    root = project_copy("unlabeled")
    (root / "labels.sqlite").unlink()
    at = run_page("correct", root)
    assert not at.exception and "No scenario is labeled a failure yet" in at.warning[0].value


def test_a_finished_sweep_shows_the_trade_off_table_and_export(run_page, demo_done):
    at = run_page("correct", demo_done)
    assert not at.exception and not at.error
    assert "#0 → 6" in at.caption[1].value                                   # the failure scenarios to fix
    assert len(at.get("plotly_chart")) == 1 and len(at.dataframe) == 1
    export = next(s for s in at.selectbox if s.label == "Model to export")
    assert export.value == 0.0 and "(chosen)" in export.format_func(0.0)
    assert any(b.label.startswith("Export the model of λ=0") for b in at.button)
    assert len(at.get("download_button")) == 1                              # the export exists: zip with card


def test_quick_sweep_starts_the_job(run_page, demo_done, started, job_config):
    at = run_page("correct", demo_done)
    assert at.text_input[0].value == "0.01, 0.1, 1, 10" and at.number_input[0].value == 2
    at.checkbox(key="again-correct").check()                               # a re-run, confirmed
    next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
    assert [step for step, _ in started] == ["correct"]
    assert job_config(started[0][1], CorrectConfig) == (CorrectConfig(lambdas=(0.01, 0.1, 1, 10), epochs=2, lr=0.001),
                                                        ["--samples", "128"])


def test_per_sample_labels_use_the_automatic_reviewer(run_page, demo_done, started, job_config):
    at = run_page("correct", demo_done)
    assert at.checkbox[1].value is False and "trained first" in at.checkbox[1].label  # no reviewer yet
    at.selectbox[0].set_value("reviewer")
    at.checkbox(key="again-correct").check()                               # a re-run, confirmed
    next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
    cfg, others = job_config(started[0][1], CorrectConfig)
    assert cfg.failure_labels == "reviewer" and others[-2:] == ["--reviewer", "auto"]


def test_a_ready_reviewer_labels_the_baseline_by_default(run_page, project_copy, started):
    from defuse.label.reviewer import ReviewerConfig
    from defuse.steps.label import _reviewer_stamp
    from defuse.workspace import Workspace

    ws = Workspace.open(project_copy("reviewed"))
    ws.path("reviewer").mkdir()
    ws.path("reviewer/reviewer.json").write_text("{}")
    ws.save_json("reviewer/stamp.json", _reviewer_stamp(ws, ReviewerConfig()))
    at = run_page("correct", ws.root)
    assert at.checkbox[1].value is True and "trained first" not in at.checkbox[1].label
    at.checkbox(key="again-correct").check()                               # a re-run, confirmed
    next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
    assert started[0][1][-2:] == ["--reviewer", "auto"]


def test_the_paper_sweep_presets_17_lambdas(run_page, demo_done):
    at = run_page("correct", demo_done)
    at.radio[0].set_value(at.radio[0].options[1]).run()
    assert len(at.text_input[0].value.split(",")) == 17 and at.number_input[0].value == 3


def test_bad_lambdas_are_explained(run_page, demo_done, started):
    at = run_page("correct", demo_done)
    for text, message in (("0.1, x", "the λ values must be a non-empty list of distinct finite numbers > 0"),
                          ("0, 1", "got (0, 1)"), ("", "got ()")):
        at.text_input[0].input(text)
        next(b for b in at.button if b.label.startswith("Run the sweep")).click().run()
        assert message in at.error[0].value and not at.exception
    assert started == []


def test_the_live_chart_follows_the_job_history():
    rows = [{"kind": "defuse", "lambda": lam, "epoch": 1, "val_acc": 0.9, "test_acc": 0.9 - lam / 100,
             "failure_val_acc": 0.5 + lam / 20, "failure_test_acc": 0.5 + lam / 20, "event": "lambda"}
            for lam in (0.0, 1.0, 10.0)]
    fig = tradeoff_chart(rows, before={"lambda": None, "test_acc": 0.93, "failure_test_acc": 0.1})
    assert [t.name for t in fig.data] == ["Defuse (λ)", "control (λ=0)", "before correction"]
    assert list(fig.data[0].x) == [89.0, 80.0] and fig.data[0].text == ("λ=1", "λ=10")
    state = JobState(id="x", command=["correct"], status="running", started=0.0,
                     history=[{"step": "correct", "done": i, "total": 6, "metrics": r} for i, r in enumerate(rows)])
    from defuse.ui.jobs import history_metrics

    assert [r["lambda"] for r in history_metrics(state, "lambda")] == [0.0, 1.0, 10.0]
    assert parse_lambdas("1e-10; 2") == (1e-10, 2.0)


def test_per_sample_accuracies_are_shown_when_the_reviewer_labeled(run_page, project_copy):
    import json

    root = project_copy("per-sample")
    sweep = json.loads((root / "correct/sweep.json").read_text())
    for row in [sweep["before"], sweep["chosen"], *sweep["best_per_lambda"]]:
        row.update(failure_val_acc_reviewer=0.5, failure_test_acc_reviewer=0.75)
    sweep["config"]["failure_labels"] = "reviewer"
    (root / "correct/sweep.json").write_text(json.dumps(sweep))
    at = run_page("correct", root)
    assert not at.exception
    caption = next(c.value for c in at.caption if c.value.startswith("λ=0 was chosen"))
    assert "on the reviewer's per-sample labels" in caption
    said = [w.value for w in at.warning] + [s.value for s in at.success]
    assert any("scores 75.0% on the failure-test samples per sample (the reviewer's labels)" in t for t in said)
    assert "failure test (per sample)" in at.dataframe[0].value.columns


def test_in_per_sample_mode_the_chart_plots_the_measure_lambda_was_chosen_on():
    rows = [{"kind": "defuse", "lambda": 1.0, "test_acc": 0.9, "failure_test_acc": 0.5,
             "failure_test_acc_reviewer": 0.8}]
    fig = tradeoff_chart(rows, per_sample=True)
    assert list(fig.data[0].y) == [80.0] and "per-sample" in fig.layout.yaxis.title.text
    assert list(tradeoff_chart(rows).data[0].y) == [50.0]


def test_exporting_the_chosen_lambda_lets_the_model_card_name_the_rule(run_page, demo_done, started):
    at = run_page("correct", demo_done)
    next(b for b in at.button if b.label.startswith("Export the model of λ=")).click().run()
    assert started == [("export", [])]      # no --lambda: the export records the rule, not "chosen by the user"
