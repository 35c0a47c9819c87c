"""The honest headline (the chosen λ against the control and baseline, per sample) and the model card's
provenance: fingerprints, who labeled each scenario, no doubled label column."""

import json

from defuse.correct.headline import regression_note
from defuse.steps.correct import SWEEP
from defuse.steps.export import export_step
from defuse.steps.report import build_report, report_markdown
from defuse.workspace import Workspace

CHOSEN = {"lambda": 1.0, "failure_test_acc": 0.987, "failure_test_acc_reviewer": 0.735}
CONTROL = {"lambda": 0.0, "failure_test_acc_reviewer": 0.759}
BASELINE = {"lambda": 1.0, "failure_test_acc_reviewer": 0.821}


def test_a_regression_per_sample_is_named_with_its_figures():
    note = regression_note(CHOSEN, CONTROL, BASELINE)
    assert "λ=1 scores 73.5%: not better than the λ=0 control (75.9%) or the baseline" in note
    assert "(82.1%)" in note and "did not fix" in note


def test_beating_both_or_no_per_sample_measure_says_nothing():
    assert regression_note({**CHOSEN, "failure_test_acc_reviewer": 0.9}, CONTROL, BASELINE) is None
    assert regression_note({"lambda": 1.0, "failure_test_acc": 0.99}, CONTROL, BASELINE) is None
    only_control = regression_note({**CHOSEN, "failure_test_acc_reviewer": 0.8}, CONTROL, BASELINE)
    assert "baseline" in only_control and "control" not in only_control.split("not better than")[1]


def _regress(ws: Workspace) -> None:
    """The finished sweep as if the reviewer had graded it per sample, with the chosen λ below both rivals."""
    sweep = ws.load_json(SWEEP)
    sweep["chosen"] = {**sweep["chosen"], "failure_test_acc_reviewer": 0.735}
    sweep["control"] = {**sweep["control"], "failure_test_acc_reviewer": 0.759}
    sweep["before"] = {**sweep["before"], "failure_test_acc_reviewer": 0.70}
    sweep["baseline_chosen"] = {**(sweep.get("baseline_chosen") or {"lambda": 1.0}), "failure_test_acc_reviewer": 0.821}
    ws.save_json(SWEEP, sweep)


def test_the_report_and_the_card_say_so_next_to_the_chosen_lambda(project_copy):
    ws = Workspace(project_copy("regress"))
    _regress(ws)
    text = report_markdown(build_report(ws))
    assert "**Warning:** Per sample" in text.split("|")[0]           # before the table, beside λ
    export_step(ws)
    card_md = ws.path("exports/model-card.md").read_text(encoding="utf-8")
    correction_part = card_md.split("## Correction")[1].split("## Results")[0]
    assert "Per sample" in correction_part and "73.5%" in correction_part


def test_correct_page_warns_beside_the_chosen_lambda(run_page, project_copy):
    root = project_copy("regress-page")
    _regress(Workspace(root))
    at = run_page("correct", root)
    assert not at.exception
    assert any("not better than the λ=0 control (75.9%)" in w.value for w in at.warning)


def test_the_card_has_fingerprints_provenance_and_one_label_column(demo_done):
    card = json.loads((demo_done / "exports" / "model-card.json").read_text())
    md = (demo_done / "exports" / "model-card.md").read_text(encoding="utf-8")
    assert "fingerprint: –" not in md and len(card["data"]["fingerprint"]) == 16
    prov = card["provenance"]
    assert prov["classifier_sha256"] and prov["vae_sha256"] and prov["labels_sha256"]
    row = next(line for line in md.splitlines() if line.startswith("| 0 |"))
    assert row.startswith("| 0 | 6 | people: alice, bob |")                 # "6", not "6 (6)"
