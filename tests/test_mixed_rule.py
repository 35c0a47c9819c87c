"""A vote rule sound on mixed scenarios (issue 23, point 11): the automatic reviewer offers a scenario as a failure
when a large share of its samples (at least 40%) are misread, not only a majority, and the share is shown."""

import numpy as np
import pytest

from defuse.label.provenance import describe, scenario_decisions, table_rows
from defuse.label.store import LabelStore
from defuse.label.verdicts import MIXED_FAILURE_SHARE, offer_mixed, sample_verdict
from defuse.steps.label import label_store
from defuse.workspace import Workspace

SIXES = {i: [6] for i in range(10)}                       # the reviewer reads every sample as a 6
HALF_MISREAD = np.array([6, 6, 6, 6, 6, 5, 5, 5, 0, 0])     # the classifier reads half of them as 5 or 0


def test_half_a_scenario_misread_is_offered_as_a_failure_with_its_share():
    paper = sample_verdict(SIXES, HALF_MISREAD)
    assert not paper.is_failure and paper.disagree_share == 0.5               # ρ=0.5 needs more than half
    offered = offer_mixed(paper, SIXES, HALF_MISREAD)
    assert (offered.is_failure, offered.label, offered.mixed, offered.disagree_share) == (True, 6, True, 0.5)
    assert describe(offered) == "failure, true label 6 (mixed: 50% of the 10 samples misread)"


@pytest.mark.parametrize("misread, offered", [(3, False), (4, True), (6, False)])
def test_the_share_threshold(misread, offered):
    preds = np.array([5] * misread + [6] * (10 - misread))
    v = offer_mixed(sample_verdict(SIXES, preds), SIXES, preds)
    assert MIXED_FAILURE_SHARE == 0.4
    assert v.is_failure == (misread >= 4) and v.mixed == offered             # 6 of 10: a majority, not "mixed"


def test_the_misread_samples_give_the_label_not_the_classifiers_own_class():
    labels = {i: [6] if i < 4 else [5] for i in range(10)}                    # 4 sixes, 6 fives
    preds = np.array([5] * 10)                                                # the classifier says 5 throughout
    v = offer_mixed(sample_verdict(labels, preds), labels, preds)
    assert (v.is_failure, v.label, v.mixed) == (True, 6, True)               # the fives are read right


def _review(store, j):
    for i, (label, said) in enumerate(zip([6] * 10, HALF_MISREAD, strict=True)):
        store.record(j, "auto-reviewer", is_failure=bool(label != said), label=label, sample_index=i, reviewer="beef")


def test_the_reviewers_recorded_decisions_give_the_mixed_failure(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        _review(store, 4)
        found = scenario_decisions(store.decisions())
    assert found[4].verdict.is_failure and found[4].verdict.mixed and found[4].decided_by == "reviewer"
    row = table_rows(found, [str(c) for c in range(10)])[0]
    assert row["decision"] == "failure, true label 6 (mixed: 50% of the 10 samples misread)"


def test_a_person_still_decides(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        _review(store, 4)
        store.record(4, "alice", is_failure=False)
        found = scenario_decisions(store.decisions())
    assert not found[4].verdict.is_failure and found[4].decided_by == "human"


def test_the_label_page_and_the_report_show_the_share(run_page, project_copy):
    root = project_copy("mixed-rule")
    with label_store(Workspace(root)) as store:
        _review(store, 2)
    at = run_page("label", root, annotator="lee")
    at.selectbox(key="label-scenario").set_value(2).run()
    hint = next(i.value for i in at.info if "Hint" in i.value)
    assert "sees **a failure** — a mixed scenario: 5 of 10 samples misread (50%)" in hint
    assert at.radio(key="verdict-2").value == "Failure" and at.radio(key="label-2").value == 6
    at = run_page("report", root)
    rows = {r["scenario"]: r for r in at.dataframe[0].value.to_dict("records")}
    assert rows[2]["decision"] == "failure, true label 6 (mixed: 50% of the 10 samples misread)"
