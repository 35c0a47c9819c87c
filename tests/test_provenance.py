"""A person's decision wins over the automatic reviewer's; conflicts are listed; labels are a recorded step."""

import json
import sqlite3

import pytest

from defuse.cli.main import main
from defuse.label.provenance import HUMAN, REVIEWER, filled_by_reviewer, scenario_decisions, summary
from defuse.label.store import LEGACY_REVIEWER, LabelStore
from defuse.steps.label import label_store
from defuse.workspace import Workspace

FP = "0123abcd0123abcd"


def _review(store, j, labels, classifier_said):
    """The reviewer's per-sample decisions, as defuse.reviewer.review_scenarios records them."""
    for i, (label, said) in enumerate(zip(labels, classifier_said, strict=True)):
        store.record(j, "auto-reviewer", is_failure=label != said, label=label, sample_index=i, reviewer=FP)


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def test_a_person_wins_over_the_reviewer_and_the_conflict_is_named(store):
    store.record(0, "alice", is_failure=True, label=2, note="a 2 drawn thin")
    _review(store, 0, [7] * 10, [7] * 10)                # the reviewer: the classifier is right
    _review(store, 1, [3] * 8 + [5, 5], [8] * 10)        # nobody else decided scenario 1
    found = scenario_decisions(store.decisions())
    s0, s1 = found[0], found[1]
    assert (s0.decided_by, s0.verdict.is_failure, s0.verdict.label) == (HUMAN, True, 2)
    assert s0.reviewer.is_failure is False and s0.annotators == ("alice",)
    assert s0.conflicts == ("the automatic reviewer says not a failure; people decided failure, true label 2 — "
                            "the people's decision counts",)
    assert s0.notes == ("alice: a 2 drawn thin",)
    assert (s1.decided_by, s1.verdict.is_failure, s1.verdict.label, s1.conflicts) == (REVIEWER, True, 3, ())
    assert s1.reviewers == (f"auto-reviewer ({FP})",)
    assert filled_by_reviewer(found) == ("The automatic reviewer decided 1 scenario(s) no person had decided; it "
                                         "left the 1 that people decided as they are (it disagrees on #0).")


def test_conflicts_between_people_are_listed_and_the_vote_decides(store):
    store.record(4, "alice", is_failure=True, label=2)
    store.record(4, "bob", is_failure=False)
    store.record(4, "cy", is_failure=True, label=2)
    s = scenario_decisions(store.decisions())[4]
    assert (s.verdict.is_failure, s.verdict.label, s.decided_by) == (True, 2, HUMAN)
    assert s.conflicts == ("people disagree — alice: failure, true label 2; bob: not a failure; "
                           "cy: failure, true label 2",)


def test_a_persons_skip_leaves_the_scenario_to_the_reviewer(store):
    store.record(0, "alice", is_failure=None)
    _review(store, 0, [4] * 10, [9] * 10)
    s = scenario_decisions(store.decisions())[0]
    assert (s.decided_by, s.verdict.label, s.annotators) == (REVIEWER, 4, ())


def test_reviewer_verdict_from_its_own_records_follows_the_rho_rule_and_offers_mixed_ones(store):
    _review(store, 0, [1] * 8 + [2] * 2, [1] * 10)       # 2 of 10 disagree: not a failure
    _review(store, 1, [1] * 4 + [2] * 6, [1] * 10)       # 6 of 10 disagree: a failure, labeled 2 (6 votes)
    _review(store, 2, [1] * 5 + [2] * 5, [1] * 10)       # 5 of 10: not more than ρ=0.5, but a mixed failure
    found = scenario_decisions(store.decisions())
    assert found[0].verdict.is_failure is False
    assert (found[1].verdict.is_failure, found[1].verdict.label, found[1].verdict.mixed) == (True, 2, False)
    assert (found[2].verdict.is_failure, found[2].verdict.label, found[2].verdict.mixed) == (True, 2, True)


def test_a_schema_1_store_is_migrated_and_its_reviewer_rows_recognised(tmp_path):
    path = tmp_path / "labels.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, scenario INTEGER NOT NULL, "
                "annotator TEXT NOT NULL, is_failure INTEGER, label INTEGER, created REAL NOT NULL, note TEXT, "
                "sample_index INTEGER)")
    con.execute("INSERT INTO decisions (scenario, annotator, is_failure, label, created, sample_index) VALUES "
                "(0, 'auto-reviewer', 1, 3, 1.0, 0), (0, 'alice', 0, NULL, 2.0, NULL)")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    with LabelStore(path) as store:
        by = {d.annotator: d.reviewer for d in store.decisions()}
    assert by == {"auto-reviewer": LEGACY_REVIEWER, "alice": None}


def test_changing_a_label_records_the_label_step_and_stales_the_correction(project_copy):
    ws = Workspace(project_copy("stale"))
    assert ws.status()["label"] == "done" and ws.status()["correct"] == "done"
    with label_store(ws) as store:                       # the same answer again: nothing changes downstream
        store.record(0, "alice", is_failure=True, label=6, note="again")
    assert ws.status()["correct"] == "done"
    with label_store(ws) as store:
        store.record(0, "alice", is_failure=True, label=5)
    assert ws.status()["correct"] == "stale"


def test_cli_summary_json_names_who_decided(project_copy, tmp_path):
    root = project_copy("summary")
    with label_store(Workspace(root)) as store:
        _review(store, 0, [9] * 10, [6] * 10)            # disagrees with alice and bob (6)
        _review(store, 2, [4] * 10, [0] * 10)
    out = tmp_path / "summary.json"
    assert main(["label", "-w", str(root), "--summary-json", str(out), "--quiet"]) == 0
    rows = {r["scenario"]: r for r in json.loads(out.read_text())}
    assert (rows[0]["decided_by"], rows[0]["decision"], rows[0]["label"]) == ("human", "failure", 6)
    assert rows[0]["annotators"] == ["alice", "bob"] and rows[0]["reviewer_says"] == "failure, true label 9"
    assert "people's decision counts" in rows[0]["conflicts"][0]
    assert {v["kind"] for v in rows[0]["votes"]} == {"human", "reviewer"}
    assert (rows[2]["decided_by"], rows[2]["label"]) == ("reviewer", 4)
    assert rows[1]["decided_by"] == "human" and rows[1]["decision"] == "not a failure"


def test_summary_rows_are_json_ready(store):
    _review(store, 0, [1] * 10, [2] * 10)
    json.dumps(summary(scenario_decisions(store.decisions())))
