"""End to end: `python -m defuse run` on mnist-sample with the demo models, then export, as a user would."""

import json

import pytest

from defuse.cli.main import main
from defuse.steps.project import DEMO_CLASSIFIER

# the xdist group: under pytest-xdist one worker runs this module, so its fixtures are built once
pytestmark = [pytest.mark.skipif(not DEMO_CLASSIFIER.exists(), reason="demo models not built"),
              pytest.mark.xdist_group("test_run")]

REPORT_KEYS = {"dataset", "n_failures", "n_scenarios", "n_failure_scenarios", "best_lambda", "test_acc_before",
               "test_acc_control", "test_acc_after", "failure_acc_before", "failure_acc_control", "failure_acc_after",
               "baseline_failure_acc", "baseline_test_acc", "sweep"}


@pytest.fixture(scope="module")
def run_ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("run") / "demo-run"
    assert main(["run", "-w", str(root), "--dataset", "mnist-sample", "--preset", "smoke", "--quiet"]) == 0
    return root


def test_run_writes_a_complete_report_and_failure_accuracy_rises(run_ws):
    report = json.loads((run_ws / "report.json").read_text())
    assert REPORT_KEYS <= set(report)
    assert report["dataset"] == "mnist-sample" and report["n_failures"] > 0 and report["n_failure_scenarios"] >= 1
    assert report["failure_acc_after"] > report["failure_acc_before"] + 0.2
    assert report["test_acc_after"] > report["test_acc_before"] - 0.03
    assert {row["kind"] for row in report["sweep"]} == {"defuse", "baseline"}
    # the reviewer's grader (a member that voted on nothing) grades fixes and damage apart
    two = report["two_sided"]
    assert two["n_test"] == two["n_unclear"] + two["n_real_failures"] + two["n_right_before"] + two["n_other_misread"]
    assert set(two["models"]) == {"before", "control", "chosen", "baseline"} and "grader" in two["grader"]
    assert two["models"]["before"]["fix_rate"] in (0.0, None) and two["models"]["before"]["collateral"] in (0.0, None)
    assert report["two_sided_words"] is None or "real failures" in report["two_sided_words"]
    # the paper's D_f by default (every sample drawn); fix_set="agreed" records what it dropped (test_fix_measure)
    assert all(s["agreed"] is None and s["n_finetune"] == 64 for s in report["failure_scenarios"])


def test_run_exports_a_loadable_checkpoint_with_a_model_card(run_ws):
    from defuse.nets.checkpoints import load_model

    exports = run_ws / "exports"
    card = json.loads((exports / "model-card.json").read_text())
    model, meta = load_model(exports / "demo-run-corrected.json", kind="classifier")
    assert meta["correction"]["lambda"] in (0.1, 1.0) and "λ" in (exports / "model-card.md").read_text()
    assert card["name"] == "demo-run-corrected"
    assert "## Does it fix the failures?" in (exports / "model-card.md").read_text() and "two_sided" in card


def test_every_step_is_done_and_a_second_export_of_an_unknown_lambda_is_refused(run_ws, capsys):
    assert main(["info", "-w", str(run_ws), "--json", "--quiet"]) == 0
    status = json.loads(capsys.readouterr().out)["status"]
    assert set(status.values()) == {"done"}
    assert main(["export", "-w", str(run_ws), "--lambda", "3", "--quiet"]) == 2
    assert "was not swept" in capsys.readouterr().err


def test_steps_before_their_inputs_explain_what_to_run(tmp_path, capsys):
    assert main(["init", "-w", str(tmp_path / "p"), "--dataset", "mnist-sample", "--demo-models", "--quiet"]) == 0
    assert main(["distill", "-w", str(tmp_path / "p"), "--quiet"]) == 2
    assert "run identify first" in capsys.readouterr().err  # the missing input named by its step
    assert main(["correct", "-w", str(tmp_path / "p"), "--quiet"]) == 2
    assert "run distill first" in capsys.readouterr().err  # the first missing input, before any reviewer trains


def test_the_agreed_fix_set_records_what_it_dropped_and_the_grader_grades_it(run_ws, tmp_path):
    """`correct --fix-set agreed`: D_f keeps what every reviewer member reads confidently as the scenario's label,
    plus its verified UAEs; each set (or each scenario left out) says how many it dropped."""
    import shutil

    ws = tmp_path / "agreed"
    shutil.copytree(run_ws, ws)
    code = main(["correct", "-w", str(ws), "--fix-set", "agreed", "--reviewer", "auto", "--lambdas", "1",
                 "--epochs", "1", "--samples", "32", "--no-baseline", "--quiet"])
    assert code == 0
    record = json.loads((ws / "correct" / "sweep.json").read_text())
    counted = record["failure_sets"] + record["failure_sets_left_out"]
    assert counted and all(s["agreed"]["n_drawn_finetune"] == 32 for s in counted)
    for s in record["failure_sets"]:
        a = s["agreed"]
        assert s["n_finetune"] == 32 - a["n_dropped_finetune"] + a["n_uaes_added"]
    assert record["two_sided"] is None or set(record["two_sided"]["models"]) >= {"before", "chosen"}
