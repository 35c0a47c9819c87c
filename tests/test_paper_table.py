"""benchmarks/paper_table.py: its --quick settings, and every step end to end on tiny settings (about 30 s).

The smoke run uses the embedded MNIST sample, so it needs no ../shared/data.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("test_acc_before", "test_acc_after", "failure_acc_before", "failure_acc_after", "baseline_failure_acc",
        "baseline_test_acc", "n_scenarios", "n_failure_scenarios")


@pytest.fixture(scope="module")
def paper_table():
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "benchmarks" / "paper_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_settings_record_every_deviation_from_the_paper(paper_table):
    args = paper_table.parse_args(["--dataset", "fashion-mnist", "--quick"])
    preset = paper_table.build_preset(args, n_train=54_000, n_vae=70_000)
    assert (preset.train.epochs, preset.vae.epochs, preset.reviewer.epochs) == (5, 3, 1)   # the paper's 5 epochs
    assert preset.correct.lambdas == (0.01, 1.0, 10.0)  # 54,000 images: control, Defuse, baseline at 3 λ
    assert paper_table.build_preset(args, n_train=7_000, n_vae=10_000).correct.lambdas == (0.01, 0.1, 1.0, 10.0)
    assert (preset.distill.group_by, preset.correct.fix_set) == ("none", "all")  # the paper's, the default
    words = "\n".join(paper_table.deviations(preset, args, [str(i) for i in range(10)]))
    for expected in ("identify.samples_per_image (Q): 100", "identify.max_per_image (M): 20",
                     "correct.lambdas (λ list)", "vae.epochs: 3", "10% of the training images of class 5"):
        assert expected in words
    assert "τ per scenario" not in words


def test_the_new_route_sets_issue_21s_distillation_tau_and_fix_set(paper_table):
    args = paper_table.parse_args(["--dataset", "mnist-idx", "--quick", "--new-route"])
    preset = paper_table.build_preset(args, n_train=7_000, n_vae=10_000)
    assert (preset.distill.group_by, preset.correct.fix_set) == ("confusion", "agreed")
    words = "\n".join(paper_table.deviations(preset, args, [str(i) for i in range(10)]))
    assert "distill.group_by: confusion (project default: none)" in words and "τ per scenario" in words


def test_two_sided_targets_are_graded_on_the_judges_figures(paper_table):
    r = {"real_share": 0.85, "fix_rate_after_judge": 0.95, "fix_rate_control_judge": 0.60,
         "fix_rate_baseline_judge": 0.90, "collateral_after_judge": 0.015, "collateral_control_judge": 0.01,
         "test_acc_after": 0.970, "test_acc_control": 0.975, "n_failure_scenarios": 4}
    t = paper_table.check_two_sided_targets(r)
    met = {k: v["met"] for k, v in t.items()}
    assert met["fix rate after - control >= 30 points"] and met["collateral after <= 2 %"]
    assert not met["fix rate after - baseline >= 10 points"]  # 5 points
    assert not met["test after - control >= -0.3 points"]     # -0.5 points
    assert met["confirmed failure scenarios >= 4"] and met["collateral after - control <= 1 point"]
    assert not paper_table.check_two_sided_targets({})["fix rate after >= 90 %"]["met"]


def test_conditional_design_flags_reach_the_vae_and_the_method_names_them(paper_table):
    args = paper_table.parse_args(["--dataset", "fashion-mnist", "--quick", "--conditional", "--vae-beta", "4",
                                   "--label-in", "decoder-input", "--class-adversary", "2"])
    preset = paper_table.build_preset(args, n_train=54_000, n_vae=54_000)
    assert (preset.vae.conditional, preset.vae.label_in, preset.vae.class_adversary) == (True, "decoder-input", 2.0)
    default = paper_table.build_preset(paper_table.parse_args(["--quick", "--conditional"]), 54_000, 54_000)
    assert (default.vae.label_in, default.vae.class_adversary) == ("every-layer", 0.0)
    method = paper_table.identification_method(default, vae={"conditional": True, "beta": 4.0,
                                                             "label_in": "every-layer", "class_adversary": 0.0})
    assert method.startswith("class-conditional β-VAE (β=4, label in every layer), decoded")
    old = paper_table.identification_method(default, vae={"conditional": True, "beta": 4.0})  # a pre-#21 VAE
    assert old.startswith("class-conditional β-VAE (β=4), decoded")


@pytest.mark.slow
def test_smoke_run_writes_the_figure4_json_and_markdown(paper_table, tmp_path):
    out = tmp_path / "table.json"
    assert paper_table.main(["--dataset", "mnist-sample", "--smoke", "--threads", "1", "-w", str(tmp_path / "ws"),
                             "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert all(key in result for key in KEYS)
    assert result["deviations"] and result["models"]["vae"]["active_dims"] >= 0
    assert set(result["reviewer_agreement"]["examples_same_label"]) == {"failure", "non_failure", "combined"}
    assert "| Before fine-tuning |" in out.with_suffix(".md").read_text()
    judged = ("judge_test_acc", "real_share", "purity_mean", "failure_acc_before_judge", "failure_acc_control_judge",
              "failure_acc_after_judge", "baseline_failure_acc_judge", "method")
    assert all(key in result for key in judged)
    assert 0 <= result["real_share"] <= 1 and 0 <= result["judge_test_acc"] <= 1
    assert result["judge"]["metrics"]["trained_on"] == "train" and result["method"].startswith("paper")
    assert result["environment"]["threads"] == 1
    two = ("fix_rate_after_judge", "fix_rate_control_judge", "fix_rate_baseline_judge", "collateral_after_judge",
           "collateral_control_judge", "collateral_baseline_judge", "n_real_failures_test", "n_unclear_test",
           "judge_threshold")
    assert all(key in result for key in two) and result["judge_threshold"] == 0.9
    assert set(result["targets_two_sided"]) == set(paper_table.TWO_SIDED_TARGETS)


def test_the_deviations_name_the_lambda_rule_the_run_used(paper_table):
    args = paper_table.parse_args(["--dataset", "mnist-idx", "--quick", "--selection", "two_sided"])
    preset = paper_table.build_preset(args, n_train=7_000, n_vae=10_000)
    words = "\n".join(paper_table.deviations(preset, args, [str(i) for i in range(10)]))
    assert "λ choice: two-sided" in words and "the project's tolerance rule" not in words
