"""The Correct page's and the report's one-sentence headline (issue 23): the chosen model against the λ=0 control
and the UAE-only baseline, saying plainly when Defuse ties or loses; led by the two-sided grading when present."""

import pytest

from defuse.correct.headline import beats_every_rival, headline, two_sided_headline
from defuse.steps.correct import SWEEP
from defuse.workspace import Workspace

SETS = [{"scenario_id": 0, "n_test": 512}, {"scenario_id": 1, "n_test": 512}]   # 1,024 failure-test samples


def _record(chosen, control, baseline, **extra):
    return {"chosen": {"lambda": 1.0, "test_acc": 0.958, **chosen}, "before": {"test_acc": 0.932,
            "failure_test_acc": 0.223, "failure_test_acc_reviewer": 0.40},
            "control": {"lambda": 0.0, "test_acc": 0.953, **control},
            "baseline_chosen": {"lambda": 1.0, "test_acc": 0.959, **baseline}, "failure_sets": SETS, **extra}


def test_the_issue_case_is_called_a_tie_not_a_win():
    # the issue's figures: Defuse 91.8% per sample, the baseline 90.6% — one point on 1,024 samples is noise
    text = headline(_record({"failure_test_acc": 0.66, "failure_test_acc_reviewer": 0.918},
                            {"failure_test_acc": 0.30, "failure_test_acc_reviewer": 0.75},
                            {"failure_test_acc": 0.62, "failure_test_acc_reviewer": 0.906}), n_test_images=1000)
    assert text.count(". ") == 0 and text.endswith(".")                              # one sentence
    assert "Defuse (λ=1) scores 91.8% on the failure-test samples per sample" in text and "(before 40.0%)" in text
    assert "the λ=0 control 75.0%, test 95.3%" in text and "adversarial examples 90.6%, test 95.9%" in text
    assert ": Defuse ties the baseline and beats the λ=0 control" in text


def test_losing_is_said_first_and_plainly():
    text = headline(_record({"failure_test_acc": 0.5}, {"failure_test_acc": 0.8}, {"failure_test_acc": 0.4}))
    assert "by scenario label" in text
    assert ": Defuse loses to the λ=0 control and beats the baseline" in text


def test_without_standard_errors_only_equal_figures_tie():
    record = _record({"failure_test_acc": 0.50}, {"failure_test_acc": 0.50}, {"failure_test_acc": 0.49},
                     failure_sets=[])
    assert ": Defuse ties the λ=0 control and beats the baseline" in headline(record)


def test_the_control_chosen_is_said_and_not_compared_with_itself():
    record = _record({"lambda": 0.0, "failure_test_acc": 0.5}, {"failure_test_acc": 0.5}, {"failure_test_acc": 0.5})
    text = headline(record)
    assert "that is the λ=0 control itself" in text and "ties the λ=0 control" not in text
    assert headline({}) == "No model chosen yet: the λ sweep has not run."


TWO_SIDED = {"grader": "reviewer member 'grader' (labelled no sample)", "threshold": 0.9, "n_test": 1024,
             "n_unclear": 100, "n_real_failures": 400, "n_right_before": 500,
             "models": {"before": {"fix_rate": 0.0, "collateral": 0.0},
                        "control": {"fix_rate": 0.40, "collateral": 0.01},
                        "chosen": {"fix_rate": 0.42, "collateral": 0.01},
                        "baseline": {"fix_rate": 0.60, "collateral": 0.08}},
             "per_scenario": []}


def test_two_sided_grading_leads_with_fix_rate_and_collateral():
    text = headline(_record({"failure_test_acc": 0.9}, {"failure_test_acc": 0.5}, {"failure_test_acc": 0.6},
                            two_sided=TWO_SIDED))
    lead = text.split(". ")[0]
    assert lead.startswith("Of 400 real failures and of 500 samples it got right (graded by reviewer member "
                           "'grader' (labelled no sample); 100 unclear samples left out)")
    assert "the chosen model fixes 42.0% and breaks 1.0%" in lead and "the baseline fixes 60.0% and breaks 8.0%" in lead
    # 42% vs 40% on 400: a tie; fewer fixes than the baseline, but it breaks 1% where the baseline breaks 8%
    assert lead.endswith(": Defuse fixes fewer but breaks fewer than the baseline and ties the λ=0 control")
    assert "Defuse (λ=1) scores 90.0%" in text                                        # the accuracies follow


def test_a_fix_rate_tie_is_broken_by_collateral():
    models = {**TWO_SIDED["models"], "chosen": {"fix_rate": 0.60, "collateral": 0.01}}
    text = two_sided_headline({**TWO_SIDED, "models": models})
    assert text.endswith(": Defuse beats the λ=0 control and beats the baseline (same fix rate, less collateral).")


@pytest.mark.parametrize("chosen, verdict", [
    ({"fix_rate": 0.998, "collateral": 0.434}, "fixes more but breaks more than the λ=0 control"),  # a trade, no win
    ({"fix_rate": 0.90, "collateral": 0.01}, "beats the λ=0 control"),        # more fixes, the same damage
    ({"fix_rate": 0.20, "collateral": 0.01}, "loses to the λ=0 control"),     # fewer fixes, the same damage
    ({"fix_rate": 0.40, "collateral": 0.20}, "loses to the λ=0 control (same fix rate, more collateral)")])
def test_a_model_beats_a_rival_only_when_neither_side_is_worse(chosen, verdict):
    text = two_sided_headline({**TWO_SIDED, "models": {**TWO_SIDED["models"], "chosen": chosen}})
    assert f"Defuse {verdict}" in text or f"and {verdict}" in text


@pytest.mark.parametrize("two_sided", [None, {}, {"models": None}, {"models": {"chosen": {"fix_rate": None}}}])
def test_older_records_without_two_sided_grading_degrade_gracefully(two_sided):
    assert two_sided_headline(two_sided) is None
    text = headline(_record({"failure_test_acc": 0.9}, {"failure_test_acc": 0.5}, {"failure_test_acc": 0.6},
                            two_sided=two_sided))
    assert text.startswith("Defuse (λ=1) scores 90.0%") and "None" not in text


def test_the_correct_page_and_the_report_show_the_comparison(run_page, project_copy):
    root = project_copy("headline")
    ws = Workspace(root)
    sweep = ws.load_json(SWEEP)
    sweep["two_sided"] = TWO_SIDED
    ws.save_json(SWEEP, sweep)
    for page in ("correct", "report"):
        at = run_page(page, root)
        assert not at.exception
        shown = [w.value for w in at.warning] + [s.value for s in at.success]
        verdict = "Defuse fixes fewer but breaks fewer than the baseline"
        assert any(t.startswith("Of 400 real failures") and verdict in t for t in shown), page


@pytest.mark.parametrize("chosen, wins", [({"fix_rate": 0.998, "collateral": 0.434}, False),  # a trade with both
                                          ({"fix_rate": 0.90, "collateral": 0.01}, True),     # more fixes, no more harm
                                          ({"fix_rate": 0.30, "collateral": 0.01}, False)])   # fewer than the control
def test_a_page_shows_success_only_when_defuse_beats_both_rivals_on_both_sides(chosen, wins):
    # the rivals: the control fixes 40% and breaks 1%, the baseline 60% and 8%
    record = {"two_sided": {**TWO_SIDED, "models": {**TWO_SIDED["models"], "chosen": chosen}}}
    assert beats_every_rival(record) is wins


def test_without_two_sided_grading_success_needs_a_per_sample_win_over_both():
    win = _record({"failure_test_acc_reviewer": 0.95}, {"failure_test_acc_reviewer": 0.60},
                  {"failure_test_acc_reviewer": 0.70})
    tie = _record({"failure_test_acc_reviewer": 0.918}, {"failure_test_acc_reviewer": 0.60},
                  {"failure_test_acc_reviewer": 0.906})   # one point on the failure-test samples: noise
    assert beats_every_rival(win) and not beats_every_rival(tie) and not beats_every_rival({})
