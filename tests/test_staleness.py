"""Staleness by content (issue 23): a step goes stale when what it was made from changed in meaning, never
because a page opened the label store or someone saved an identical answer or result again."""

from __future__ import annotations

import hashlib
import json
import time

from defuse.distill.scenarios import DistillConfig
from defuse.label.store import LabelStore
from defuse.steps.distill import distill_step
from defuse.steps.label import label_store
from defuse.steps.suite import suite_changes
from defuse.workspace import LABELS, SCENARIOS, SUITE_DIR, Workspace


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _suite_changes(ws: Workspace) -> list[str]:
    return suite_changes(ws, json.loads(ws.path(f"{SUITE_DIR}/manifest.json").read_text()))


def test_opening_and_reading_the_label_store_leaves_its_bytes_alone(project_copy):
    ws = Workspace(project_copy("open"))
    before = _sha(ws.path(LABELS))
    with LabelStore(ws.path(LABELS)) as store:
        assert len(store.decisions()) == 3
    with label_store(ws) as store:        # the workspace's store, as the Label and Correct pages open it
        store.decisions()
    assert _sha(ws.path(LABELS)) == before
    assert _suite_changes(ws) == [] and ws.status()["correct"] == "done"


def test_a_person_accepting_the_reviewers_verdict_stales_nothing(project_copy):
    ws = Workspace(project_copy("accept"))
    with label_store(ws) as store:        # the reviewer decides scenario 2: failure, label 3
        for i in range(10):
            store.record(2, "auto-reviewer", is_failure=True, label=3, sample_index=i, reviewer="beef")
    assert ws.status()["correct"] == "stale"                       # a new verdict: the correction is behind
    ws.record_step("correct", config={}, metrics={})                # as if it ran again on these verdicts
    assert ws.status()["correct"] == "done"
    with label_store(ws) as store:        # carol accepts it (the Label page's A): same verdict, another author
        store.record(2, "carol", is_failure=True, label=3)
    assert ws.status()["correct"] == "done"
    with label_store(ws) as store:        # dave says the true label is 5: two people disagree, the label is 3
        store.record(2, "dave", is_failure=True, label=5)            # (a tie goes to the smaller label)
    assert ws.status()["correct"] == "done"
    with label_store(ws) as store:
        store.record(2, "erin", is_failure=True, label=5)            # now 5 wins: the meaning changed
    assert ws.status()["correct"] == "stale"
    assert _suite_changes(ws) == ["label/verdicts.json"]


def test_an_identical_distillation_stales_nothing(project_copy):
    ws = Workspace(project_copy("redistill"))
    before = _sha(ws.path(SCENARIOS))
    time.sleep(1.1)                       # a zip timestamp would now differ
    distill_step(ws, DistillConfig(max_components=10, max_iter=100), on_progress=None)
    assert _sha(ws.path(SCENARIOS)) == before
    status = ws.status()
    assert (status["distill"], status["label"], status["correct"], status["export"]) == ("done",) * 4
    assert _suite_changes(ws) == []
    distill_step(ws, DistillConfig(max_components=10, max_iter=100, seed=1), on_progress=None)
    assert ws.status()["label"] == "stale" and _suite_changes(ws) == [SCENARIOS]


def test_an_older_suite_is_not_called_stale_for_the_label_files_bytes(project_copy):
    ws = Workspace(project_copy("old-suite"))
    manifest = json.loads(ws.path(f"{SUITE_DIR}/manifest.json").read_text())
    manifest["settings"]["fingerprints"][LABELS] = "0" * 64        # what a suite made before issue 23 holds
    assert suite_changes(ws, manifest) == []
