"""Tests for defuse.label.store: the annotation store (durability, concurrency, CSV) and the vote rules."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from defuse.label.store import CSV_COLUMNS, NOT_A_FAILURE, SCHEMA_VERSION, Decision, LabelStore, current_decisions
from defuse.label.verdicts import Verdict, agreement_table, sample_verdict, scenario_verdict, verdicts

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

# A writer process: waits for a shared start time, then records n decisions (note = their number).
# The short pause between decisions lets the writers interleave instead of one taking the lock in turns.
WRITER = """
import sys, time
from defuse.label.store import LabelStore
path, name, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
time.sleep(max(0.0, start - time.time()))
with LabelStore(path) as store:
    for i in range(n):
        store.record(i % 7, name, is_failure=bool(i % 2), label=i % 10, note=str(i))
        time.sleep(0.001)
"""
# A writer that never stops and reports each committed decision on stdout, to be killed mid-write.
ENDLESS_WRITER = """
import sys
from defuse.label.store import LabelStore
store = LabelStore(sys.argv[1])
i = 0
while True:
    store.record(i % 5, "crash", is_failure=True, label=i % 10, sample_index=i % 10, note=str(i))
    print(i, flush=True)
    i += 1
"""


@pytest.fixture
def store(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as s:
        yield s


def _d(annotator, is_failure, label=None, *, scenario=0, sample_index=None, created=0.0):
    return Decision(scenario, annotator, is_failure, label, sample_index, created=created)


# --- the store ---------------------------------------------------------------------------------------

def test_round_trip_survives_reopening(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelStore(path) as store:
        first = store.record(3, "ana", is_failure=True, label=4, note="looks like a 4")
        store.record(3, "bo", is_failure=False)
        store.record(5, "ana", is_failure=True, label=2, sample_index=7)
    with LabelStore(path) as store:
        got = store.decisions()
        assert [(d.scenario, d.annotator, d.is_failure, d.label, d.sample_index) for d in got] == [
            (3, "ana", True, 4, None), (3, "bo", False, None, None), (5, "ana", True, 2, 7)]
        assert got[0] == first and first.id is not None and first.created > 0
        assert store.decisions(5) == got[2:] and store.decisions(annotator="bo") == [got[1]]
        assert store.annotators() == ["ana", "bo"] and store.reviewed_scenarios() == [3, 5]
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_later_decision_supersedes_and_history_keeps_both(store):
    store.record(1, "ana", is_failure=True, label=4)
    store.record(1, "ana", is_failure=True, label=4, sample_index=0)  # another sample: not superseded
    store.record(1, "ana", is_failure=False)
    current = store.decisions(1)
    assert [(d.is_failure, d.sample_index) for d in current] == [(False, None), (True, 0)]
    assert [d.is_failure for d in store.history()] == [True, True, False]
    assert store.reviewed_scenarios(annotator="ana") == [1] and store.reviewed_scenarios(annotator="x") == []


def test_skip_is_recorded_but_not_reviewed(store):
    store.record(2, "ana", is_failure=True, label=1)
    store.record(2, "ana", is_failure=None, note="unsure")
    (d,) = store.decisions(2)
    assert d.skipped and d.label is None and d.note == "unsure"
    assert store.reviewed_scenarios() == [] and store.annotators() == ["ana"]
    v = verdicts(store)[2]
    assert (v.is_failure, v.label, v.n_annotators) == (False, None, 0) and math.isnan(v.agreement)


@pytest.mark.parametrize("kwargs, match", [
    ({"annotator": ""}, "annotator must be a non-empty name"),
    ({"annotator": "   "}, "annotator must be a non-empty name"),
    ({"annotator": "x" * 101}, "annotator must be a non-empty name"),
    ({"annotator": 7}, "annotator must be"),
    ({"scenario": -1}, r"scenario must be an integer >= 0, got -1"),
    ({"scenario": 1.5}, "scenario must be an integer"),
    ({"scenario": True}, "scenario must be an integer"),
    ({"label": -2}, r"label must be an integer >= 0 or None, got -2"),
    ({"label": "3"}, "label must be an integer"),
    ({"is_failure": "yes"}, "is_failure must be True, False or None"),
    ({"label": None}, "a failure needs its true label"),
    ({"is_failure": None}, "a skip .* carries no label"),
    ({"is_failure": False, "label": None, "sample_index": 3}, "decision on sample 3 needs its label"),
    ({"sample_index": -1}, "sample_index must be an integer >= 0"),
    ({"note": 5}, "note must be a string"),
])
def test_record_rejects_bad_input(store, kwargs, match):
    args = {"scenario": 0, "annotator": "ana", "is_failure": True, "label": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        store.record(args.pop("scenario"), args.pop("annotator"), **args)
    assert store.history() == []


def test_numpy_values_are_stored_as_python_ints(store):
    d = store.record(np.int64(4), "ana", is_failure=np.bool_(True), label=np.int32(9))
    assert type(d.scenario) is int and type(d.label) is int and d.is_failure is True
    assert store.decisions() == [d]


def test_refuses_newer_schema_and_missing_folder(tmp_path):
    path = tmp_path / "labels.sqlite"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(ValueError, match="newer than this Defuse understands"):
        LabelStore(path)
    with pytest.raises(FileNotFoundError, match="create the project first"):
        LabelStore(tmp_path / "nowhere" / "labels.sqlite")


def _count_by_annotator(path):
    """{annotator: rows}, and how often the writer changes from one row to the next (> 1: interleaved)."""
    con = sqlite3.connect(path)
    names = [row[0] for row in con.execute("SELECT annotator FROM decisions ORDER BY id")]
    con.close()
    return {n: names.count(n) for n in set(names)}, sum(a != b for a, b in zip(names[:-1], names[1:], strict=True))


def test_concurrent_threads_all_decisions_kept(tmp_path):
    path = tmp_path / "labels.sqlite"
    shared = LabelStore(path)  # one store used by two threads, and two threads with their own store
    barrier = threading.Barrier(4, timeout=30)
    errors = []

    def write(name, own):
        try:
            store = LabelStore(path) if own else shared
            barrier.wait()
            for i in range(200):
                store.record(i % 7, name, is_failure=bool(i % 2), label=i % 10, note=str(i))
                time.sleep(0.001)
            if own:
                store.close()
        except Exception as e:  # surfaced below; a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=write, args=(f"t{k}", k < 2)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.close()
    assert errors == []
    counts, switches = _count_by_annotator(path)
    assert counts == {"t0": 200, "t1": 200, "t2": 200, "t3": 200} and switches > 3


def test_concurrent_processes_all_decisions_kept(tmp_path):
    path = tmp_path / "labels.sqlite"  # not created yet: both processes also race to create the schema
    start = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "200", str(start)],
                              env=ENV, stderr=subprocess.PIPE, text=True) for name in ("p1", "p2")]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    counts, switches = _count_by_annotator(path)
    assert counts == {"p1": 200, "p2": 200} and switches > 1
    with LabelStore(path) as store:
        notes = [int(d.note) for d in store.history() if d.annotator == "p1"]
    assert notes == list(range(200))


def test_killed_writer_loses_nothing_committed(tmp_path):
    path = tmp_path / "labels.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", ENDLESS_WRITER, str(path)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported = [proc.stdout.readline() for _ in range(30)]
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    committed = len([line for line in reported + out.splitlines() if line.strip()])
    assert committed >= 30
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with LabelStore(path) as store:
        notes = [int(d.note) for d in store.history()]
        assert notes == list(range(len(notes))) and len(notes) >= committed
        store.record(0, "after", is_failure=False)  # the store still takes decisions
        assert store.annotators() == ["after", "crash"]


# --- CSV ---------------------------------------------------------------------------------------------

def test_csv_round_trip_and_reimport_adds_nothing(store, tmp_path):
    store.record(0, "ana", is_failure=True, label=4, note='comma, "quote"\nnewline')
    store.record(0, "ana", is_failure=False)
    store.record(1, "bo", is_failure=None)
    store.record(2, "bo", is_failure=True, label=0, sample_index=9)
    csv_path = tmp_path / "labels.csv"
    store.to_csv(csv_path)
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    assert csv_path.read_text().splitlines()[0] == ",".join(("id",) + CSV_COLUMNS)
    with LabelStore(tmp_path / "other.sqlite") as other:
        assert other.from_csv(csv_path) == 4
        assert other.from_csv(csv_path) == 0  # same rows again: nothing added

        def strip_id(ds):
            return [(d.scenario, d.annotator, d.is_failure, d.label, d.sample_index, d.note, d.created)
                    for d in ds]

        assert strip_id(other.history()) == strip_id(store.history())
        assert strip_id(other.decisions()) == strip_id(store.decisions())


def test_csv_without_expected_columns_is_refused(store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("scenario,who,is_failure\n0,ana,1\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['annotator', 'label'.*expected columns"):
        store.from_csv(bad)


def test_csv_with_a_bad_row_imports_nothing(store, tmp_path):
    bad = tmp_path / "bad.csv"
    header = ",".join(CSV_COLUMNS)
    bad.write_text(f"{header}\n0,ana,1,4,1.0,,\n1,bo,0,,,,\n2,cy,maybe,1,,,\n")
    with pytest.raises(ValueError, match=r"bad.csv line 4: is_failure must be 1, 0 or empty"):
        store.from_csv(bad)
    bad.write_text(f"{header}\n0,ana,1,4,1.0,,\n1,bo,1,,2.0,,\n")
    with pytest.raises(ValueError, match="line 3: a failure needs its true label"):
        store.from_csv(bad)
    assert store.history() == []
    bad.write_text(f"{header}\n0,ana,True,4.0,1.0,,\n1,bo,,,,,3\n")  # pandas-style values are accepted
    assert store.from_csv(bad) == 2
    got = [(d.is_failure, d.label, d.sample_index) for d in store.history()]
    assert got == [(True, 4, None), (None, None, 3)]


# --- vote rules --------------------------------------------------------------------------------------

def test_scenario_verdict_majority_label_and_agreement():
    ds = [_d("a", True, 4), _d("b", True, 4), _d("c", True, 7), _d("d", False), _d("e", None)]
    # 3 of 4 voters say failure; label 4 has 2 of the 4 votes; the skip does not count.
    assert scenario_verdict(ds) == Verdict(0, True, 4, 0.5, 4, 0, 0.75)


def test_scenario_verdict_ties():
    tie = [_d("a", True, 4), _d("b", True, 4), _d("c", False), _d("d", False)]
    assert scenario_verdict(tie) == Verdict(0, False, None, 0.5, 4, 0, 0.5)  # tie: not a failure
    labels_tie = [_d("a", True, 7), _d("b", True, 7), _d("c", True, 3), _d("d", True, 3), _d("e", False)]
    assert scenario_verdict(labels_tie) == Verdict(0, True, 3, 0.4, 5, 0, 0.8)  # smallest label wins


def test_scenario_verdict_rho_latest_and_no_votes():
    two_of_five = [_d("a", True, 1), _d("b", True, 1)] + [_d(x, False) for x in "cde"]
    assert not scenario_verdict(two_of_five).is_failure
    assert scenario_verdict(two_of_five, rho=0.3) == Verdict(0, True, 1, 0.4, 5, 0, 0.4)
    changed = [_d("a", True, 1, created=1.0), _d("a", False, created=2.0)]
    assert scenario_verdict(changed) == Verdict(0, False, None, 1.0, 1, 0, 0.0)
    empty = scenario_verdict([_d("a", None)])
    assert (empty.is_failure, empty.label, empty.n_annotators) == (False, None, 0)
    assert math.isnan(empty.agreement)


@pytest.mark.parametrize("rho", [-0.1, 1.0, 1.5, "0.5", None])
def test_rho_must_be_a_share(rho):
    with pytest.raises(ValueError, match=r"rho must be a share in \[0, 1\)"):
        scenario_verdict([_d("a", False)], rho=rho)
    with pytest.raises(ValueError, match=r"rho must be a share in \[0, 1\)"):
        sample_verdict({0: [1]}, [1], rho=rho)


def test_scenario_verdict_rejects_mixed_input():
    with pytest.raises(ValueError, match=r"one scenario, got scenarios \[0, 1\]"):
        scenario_verdict([_d("a", False), _d("b", False, scenario=1)])
    with pytest.raises(ValueError, match="use sample_verdict"):
        scenario_verdict([_d("a", True, 1, sample_index=0)])
    with pytest.raises(ValueError, match=r"got scenarios \[\]"):
        scenario_verdict([])


def test_sample_verdict_rho_boundary():
    preds = np.ones(10, dtype=int)
    half = {i: [4, 4, 1] if i < 5 else [1, 1, 1] for i in range(10)}
    v = sample_verdict(half, preds)
    assert (v.is_failure, v.label, v.disagree_share) == (False, None, 0.5)  # exactly rho: not a failure
    assert sample_verdict(half, preds, rho=0.4).label == 1  # 5 samples say 4, 5 say 1: smallest wins
    six = {i: [4, 4, 1] if i < 6 else [1, 1, 1] for i in range(10)}
    v = sample_verdict(six, preds, scenario=3)
    assert (v.scenario, v.is_failure, v.label, v.disagree_share, v.n_samples, v.n_annotators) == \
        (3, True, 4, 0.6, 10, 3)


def test_sample_verdict_agreement_mean_and_standard_error():
    labels = [[4, 4, 4], [4, 4, 4], [4, 4, 2], [2, 4, 4], []]  # the last sample: "None of the above"
    v = sample_verdict(labels, np.array([1, 1, 1, 1, 1]))
    assert v.n_samples == 4 and v.label == 4 and v.is_failure
    assert v.agreement == pytest.approx(5 / 6)
    assert v.agreement_se == pytest.approx(math.sqrt(1 / 27) / 2)  # sd of (1, 1, 2/3, 2/3) / sqrt(4)
    tie = sample_verdict({0: [5, 2]}, [2])
    assert (tie.is_failure, tie.agreement, tie.disagree_share) == (False, 0.5, 0.0)  # sample label: 2
    assert math.isnan(tie.agreement_se)


def test_sample_verdict_rejects_bad_predictions():
    with pytest.raises(ValueError, match=r"1-D array of class indices, got shape \(2, 1\)"):
        sample_verdict({0: [1]}, np.zeros((2, 1), dtype=int))
    with pytest.raises(ValueError, match="dtype float64"):
        sample_verdict({0: [1]}, np.zeros(2))
    with pytest.raises(ValueError, match=r"sample indices \[5\] have no classifier prediction \(got 2"):
        sample_verdict({0: [1], 5: [2]}, [1, 1])
    with pytest.raises(ValueError, match=r"sample indices \[5\] of scenario 8 have no classifier"):
        sample_verdict({5: [2]}, [1], scenario=8)
    with pytest.raises(ValueError, match="label must be an integer >= 0"):
        sample_verdict({0: [-1]}, [1])


def test_current_decisions_prefers_latest_created_then_id():
    old, new = _d("a", True, 1, created=5.0), _d("a", False, created=9.0)
    assert current_decisions([new, old]) == [new]
    same_time = [replace(old, created=1.0, id=2), replace(new, created=1.0, id=1)]
    assert current_decisions(same_time) == same_time[:1]


@pytest.fixture
def reviewed(store):
    # scenario 0: whole-scenario votes only. scenario 1: per-sample labels by two annotators, plus a
    # whole-scenario vote. scenario 2: per-sample labels only.
    store.record(0, "ana", is_failure=True, label=6)
    store.record(0, "bo", is_failure=True, label=6)
    store.record(0, "cy", is_failure=False)
    store.record(1, "ana", is_failure=False)
    for i, (a, b) in enumerate([(8, 8), (8, 3), (3, 3), (8, 8)]):
        store.record(1, "ana", is_failure=a != 3, label=a, sample_index=i)
        store.record(1, "bo", is_failure=b != 3, label=b, sample_index=i)
    store.record(1, "cy", is_failure=None, sample_index=0)
    store.record(2, "bo", is_failure=True, label=5, sample_index=0)
    return store


def test_verdicts_combine_both_kinds_of_review(reviewed):
    without = verdicts(reviewed)
    assert sorted(without) == [0, 1]  # scenario 2 has only samples and no predictions
    assert without[0] == Verdict(0, True, 6, 2 / 3, 3, 0, 2 / 3)
    assert without[1] == Verdict(1, False, None, 1.0, 1, 0, 0.0)
    got = verdicts(reviewed, predictions={1: np.full(10, 3), 2: [5]})
    # scenario 1's sample labels: 8, 3 (tie -> 3), 3, 8; 2 of 4 disagree with the prediction 3.
    v1 = got[1]
    assert (v1.is_failure, v1.disagree_share, v1.n_samples, v1.n_annotators) == (False, 0.5, 4, 2)
    assert v1.agreement == pytest.approx(0.875)
    assert got[2] == Verdict(2, False, None, 1.0, 1, 1, 0.0)
    assert verdicts(reviewed, predictions={1: np.full(10, 2)}, rho=0.5)[1].label == 3  # 4 samples: 8,3,3,8


def test_agreement_table_rows(reviewed):
    rows = agreement_table(reviewed)
    assert [(r["scenario"], r["kind"]) for r in rows] == [(0, "scenario"), (1, "scenario"), (1, "samples"),
                                                          (2, "samples")]
    assert rows[0] == {"scenario": 0, "kind": "scenario", "annotators": 3, "skipped": 0,
                       "votes": f"6: 2, {NOT_A_FAILURE}: 1", "majority": "6",
                       "agreement": pytest.approx(2 / 3),
                       "agreement_se": pytest.approx(math.nan, nan_ok=True)}
    assert rows[1]["majority"] == NOT_A_FAILURE and rows[1]["agreement"] == 1.0
    samples = rows[2]
    assert (samples["annotators"], samples["skipped"], samples["votes"], samples["majority"]) == \
        (2, 1, "8: 5, 3: 3", "3")
    assert samples["agreement"] == pytest.approx(0.875)
    assert samples["agreement_se"] == pytest.approx(np.std([1, 0.5, 1, 1], ddof=1) / 2)
