"""Scenario purity from the reviewer's per-sample labels: the arithmetic, and where the app shows it."""

from __future__ import annotations

import pytest

from defuse.label.purity import MIXED_BELOW, purity_of, purity_words, scenario_purities
from defuse.label.store import LabelStore
from defuse.steps.label import label_store
from defuse.steps.report import build_report, report_markdown
from defuse.workspace import Workspace

NAMES = [str(i) for i in range(10)]


def test_purity_and_label_mix_by_hand():
    p = purity_of([6, 6, 5, 6, 8, 6, 5, 6, 6, 6])
    assert (p.label, p.purity, p.n, p.mixed) == (6, 0.7, 10, True)
    assert p.label_mix == {6: 0.7, 5: 0.2, 8: 0.1} and list(p.label_mix) == [6, 5, 8]
    assert not purity_of([3] * 8 + [1, 2]).mixed and purity_of([3] * 8 + [1, 2]).purity == pytest.approx(MIXED_BELOW)
    assert purity_of([]) is None


def test_purity_words_flag_a_mixed_scenario_in_plain_words():
    mixed = purity_words(purity_of([6] * 6 + [5] * 4), NAMES)
    assert mixed.startswith("Mixed scenario: The reviewer reads 60% of its 10 samples as '6'")
    assert "'6' 60%, '5' 40%" in mixed and "--failure-labels reviewer" in mixed
    assert purity_words(purity_of([6] * 10), NAMES).endswith("as '6': a pure scenario.")
    assert "not reviewed sample by sample yet" in purity_words(None, NAMES)


def test_scenario_purities_read_only_labelled_per_sample_decisions(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        for i, label in enumerate([2, 2, 2, 7]):
            store.record(4, "auto-reviewer", is_failure=True, label=label, sample_index=i)
        store.record(4, "alice", is_failure=True, label=7)            # a whole-scenario decision: not a sample
        store.record(5, "auto-reviewer", is_failure=None, sample_index=0)  # skipped sample: no label
        purities = scenario_purities(store)
    assert list(purities) == [4] and purities[4].purity == 0.75 and purities[4].label_mix == {2: 0.75, 7: 0.25}


def _mixed_review(root, j: int = 0):
    """The automatic reviewer's per-sample labels on scenario j: 6 of 10 read as '6', 4 as '5'."""
    with label_store(Workspace(root)) as store:
        for i in range(10):
            store.record(j, "auto-reviewer", is_failure=True, label=6 if i < 6 else 5, sample_index=i)


def test_explore_cards_flag_the_mixed_scenario(run_page, project_copy):
    root = project_copy("purity-explore")
    _mixed_review(root)
    at = run_page("explore", root)
    assert not at.exception and not at.error
    warnings = [w.value for w in at.warning if w.value.startswith("Mixed scenario")]
    assert len(warnings) == 1 and "60% of its 10 samples as '6'" in warnings[0] and "'5' 40%" in warnings[0]
    assert any("not reviewed sample by sample yet" in c.value for c in at.caption)  # the other scenarios


def test_label_page_shows_the_reviewers_purity(run_page, project_copy):
    root = project_copy("purity-label")
    _mixed_review(root)
    at = run_page("label", root, annotator="gina")
    assert not at.exception
    assert any(w.value.startswith("Mixed scenario: The reviewer reads 60%") for w in at.warning)


def test_report_names_mixed_scenarios_and_correct_preselects_per_sample_labels(run_page, project_copy):
    root = project_copy("purity-report")
    _mixed_review(root)
    report = build_report(Workspace(root))
    assert report["reviewer_purity"]["0"]["purity"] == 0.6 and report["reviewer_purity"]["0"]["mixed"]
    assert "Mixed scenarios (purity below 80%): #0." in report_markdown(report)
    at = run_page("report", root)
    assert not at.exception and not at.error
    captions = [c for image in at.get("image") for c in image.captions]
    assert any(c.startswith("Scenario #0") and "Reviewer purity 60% — mixed: '6' 60%, '5' 40%" in c for c in captions)
    at = run_page("correct", root)
    assert not at.exception and not at.error
    assert any(w.value.startswith("Mixed failure scenarios: #0 ('6' 60%, '5' 40%)") for w in at.warning)
    # #0 was labeled by people (alice, bob): their label is kept unless per-sample labels are chosen (issue 23)
    assert next(s for s in at.selectbox if s.label == "Labels of the failure samples D_f").value == "scenario"
