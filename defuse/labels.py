"""Label: the annotators' decisions on failure scenarios and the vote rules (paper §3.2.3, §4.1, §4.4).

An annotator reviews a failure scenario either as a whole (``sample_index=None``: is it a failure
scenario, and what is its true label?) or sample by sample, as in the paper's protocol (Q = 10 samples
per scenario, several annotators per sample; the scenario is a failure scenario when more than ρ of the
samples' majority labels disagree with the classifier). Each decision is one row of ``labels.sqlite``,
committed at once (WAL journal), so a crash loses at most the decision being written. A later decision
by the same annotator on the same (scenario, sample) supersedes the earlier one; history keeps both.
"""

from __future__ import annotations

import csv
import math
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's transaction
CSV_COLUMNS = ("scenario", "annotator", "is_failure", "label", "created", "note", "sample_index")
NOT_A_FAILURE = "not a failure"
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scenario INTEGER NOT NULL CHECK (scenario >= 0),
        annotator TEXT NOT NULL,
        is_failure INTEGER CHECK (is_failure IN (0, 1)),
        label INTEGER CHECK (label >= 0),
        created REAL NOT NULL,
        note TEXT,
        sample_index INTEGER CHECK (sample_index >= 0))""",
    "CREATE INDEX IF NOT EXISTS decisions_by_scenario ON decisions (scenario, annotator, sample_index)",
)
_COLUMNS = "id, " + ", ".join(CSV_COLUMNS)
_INSERT = f"INSERT INTO decisions ({', '.join(CSV_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_NEW = (f"INSERT INTO decisions ({', '.join(CSV_COLUMNS)}) SELECT ?, ?, ?, ?, ?, ?, ? "
               "WHERE NOT EXISTS "
               "(SELECT 1 FROM decisions WHERE scenario = ? AND annotator = ? AND is_failure IS ? "
               "AND label IS ? AND created = ? AND note IS ? AND sample_index IS ?)")
_TRUE, _FALSE = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}


def _index(name: str, value, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0{' or None' if optional else ''}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Decision:
    """One annotator's decision on a failure scenario, or on one reviewed sample of it."""

    scenario: int
    annotator: str
    is_failure: bool | None       # None: skipped (or "None of the above" for a sample)
    label: int | None = None      # the true label the annotator gives
    sample_index: int | None = None  # None: the whole scenario; i: the i-th reviewed sample
    note: str | None = None
    created: float = 0.0          # unix time
    id: int | None = None         # row id in the store

    def __post_init__(self):
        if not isinstance(self.annotator, str) or not 0 < len(self.annotator.strip()) <= 100:
            raise ValueError(f"annotator must be a non-empty name of <= 100 characters, "
                             f"got {self.annotator!r}")
        if self.is_failure not in (True, False, None):
            raise ValueError(f"is_failure must be True, False or None (skip), got {self.is_failure!r}")
        if self.note is not None and not isinstance(self.note, str):
            raise ValueError(f"note must be a string or None, got {self.note!r}")
        fixed = {"scenario": _index("scenario", self.scenario, optional=False),
                 "label": _index("label", self.label, optional=True),
                 "sample_index": _index("sample_index", self.sample_index, optional=True),
                 "annotator": self.annotator.strip(), "created": float(self.created),
                 "is_failure": None if self.is_failure is None else bool(self.is_failure)}
        for name, value in fixed.items():  # store plain Python values (sqlite cannot bind numpy ints)
            object.__setattr__(self, name, value)
        if self.is_failure is None and self.label is not None:
            raise ValueError(f"a skip (is_failure=None) carries no label, got label={self.label}")
        if self.is_failure and self.label is None:
            raise ValueError("a failure needs its true label: pass label=<class index>")
        if self.sample_index is not None and self.is_failure is not None and self.label is None:
            raise ValueError(f"a decision on sample {self.sample_index} needs its label; "
                             "use is_failure=None to skip the sample")

    @property
    def skipped(self) -> bool:
        return self.is_failure is None


@dataclass(frozen=True)
class Verdict:
    """The vote's outcome for one failure scenario."""

    scenario: int | None
    is_failure: bool
    label: int | None      # the failure scenario's true label; None when it is not a failure scenario
    agreement: float       # share of annotators voting for the majority (mean over samples); nan: no votes
    n_annotators: int      # annotators who voted (skips excluded)
    n_samples: int         # reviewed samples with a label; 0 for a whole-scenario verdict
    disagree_share: float  # the share compared with ρ: failure votes, or samples the classifier gets wrong
    agreement_se: float = math.nan  # standard error of the per-sample agreement (Fig. 6)


def current_decisions(decisions: Iterable[Decision]) -> list[Decision]:
    """The latest decision (by ``created``, then ``id``) per (scenario, annotator, sample_index)."""
    ordered = sorted(decisions, key=lambda d: (d.created, d.id if d.id is not None else -1))
    latest = {(d.scenario, d.annotator, d.sample_index): d for d in ordered}
    return sorted(latest.values(), key=lambda d: (d.scenario, d.sample_index is not None,
                                                  d.sample_index or 0, d.annotator))


class LabelStore:
    """Annotations of one project, in a SQLite file (``<workspace>/labels.sqlite``).

    Safe for several threads (one lock per store) and several processes (SQLite locking with a
    busy timeout). Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"workspace folder {folder} does not exist; create the project first")
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     check_same_thread=False)
        try:
            self._open()
        except BaseException:
            self._conn.close()
            raise

    def _open(self) -> None:
        c = self._conn
        c.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        mode = self._switch_to_wal()
        if mode.lower() != "wal":
            raise OSError(f"{self.path}: SQLite refused WAL journal mode (got {mode!r}); "
                          "keep the workspace on a local disk")
        c.execute("PRAGMA synchronous = FULL")  # each committed decision survives a crash
        with self._transaction():
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ValueError(f"{self.path} has label schema version {version}, newer than this "
                                 f"Defuse understands ({SCHEMA_VERSION}); upgrade Defuse")
            for statement in _SCHEMA:
                c.execute(statement)
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _switch_to_wal(self) -> str:
        # Changing the journal mode ignores the busy timeout: a process creating the same file at the
        # same moment makes it fail with "database is locked", so retry until the timeout.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                return self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _transaction(self):
        # BEGIN IMMEDIATE takes the write lock up front, so the busy timeout applies (no upgrade deadlock).
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def record(self, scenario: int, annotator: str, *, is_failure: bool | None, label: int | None = None,
               sample_index: int | None = None, note: str | None = None) -> Decision:
        """Save one decision and commit it; ``is_failure=None`` records a skip."""
        d = Decision(scenario, annotator, is_failure, label, sample_index, note, created=time.time())
        with self._transaction() as c:
            row_id = c.execute(_INSERT, _row(d)).lastrowid
        return replace(d, id=row_id)

    def history(self) -> list[Decision]:
        """Every decision ever recorded, superseded ones included, in recording order."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM decisions ORDER BY id").fetchall()
        return [Decision(s, a, None if f is None else bool(f), lab, i, n, t, id=k)
                for k, s, a, f, lab, t, n, i in rows]

    def decisions(self, scenario: int | None = None, *, annotator: str | None = None) -> list[Decision]:
        """The current decisions (latest per annotator and sample), optionally of one scenario/annotator."""
        return [d for d in current_decisions(self.history())
                if (scenario is None or d.scenario == scenario) and annotator in (None, d.annotator)]

    def annotators(self) -> list[str]:
        return sorted({d.annotator for d in self.history()})

    def reviewed_scenarios(self, *, annotator: str | None = None) -> list[int]:
        """Scenarios with at least one current decision that is not a skip."""
        return sorted({d.scenario for d in self.decisions(annotator=annotator) if not d.skipped})

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the full history (columns ``id`` + :data:`CSV_COLUMNS`), atomically."""
        tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
        try:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(("id",) + CSV_COLUMNS)
                writer.writerows([d.id, *("" if v is None else v for v in _row(d))] for d in self.history())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def from_csv(self, path: str | os.PathLike) -> int:
        """Import decisions from a CSV; all rows or none. Rows already present are skipped.

        Returns the number of rows added.
        """
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path} lacks column(s) {missing}; expected columns {list(CSV_COLUMNS)} "
                                 "(an 'id' column is ignored)")
            decisions = [_parse_row(row, f"{path} line {reader.line_num}") for row in reader]
        with self._transaction() as c:
            return sum(c.execute(_INSERT_NEW, _row(d) * 2).rowcount for d in decisions)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _row(d: Decision) -> tuple:
    return (d.scenario, d.annotator, None if d.is_failure is None else int(d.is_failure), d.label,
            d.created, d.note, d.sample_index)


def _parse_row(row: dict, where: str) -> Decision:
    def value(name):
        text = (row.get(name) or "").strip()
        return text or None

    def integer(name):
        text = value(name)
        if text is None:
            return None
        number = float(text)
        if not number.is_integer():
            raise ValueError(f"{name} must be an integer, got {text!r}")
        return int(number)

    try:
        flag = (value("is_failure") or "").lower()
        if flag and flag not in _TRUE | _FALSE:
            raise ValueError(f"is_failure must be 1, 0 or empty (skip), got {flag!r}")
        created = value("created")
        return Decision(integer("scenario"), row.get("annotator") or "", flag in _TRUE if flag else None,
                        integer("label"), integer("sample_index"), value("note"),
                        float(created) if created else time.time())
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _check_rho(rho: float) -> float:
    if not isinstance(rho, (int, float, np.floating)) or not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be a share in [0, 1), got {rho!r}; the paper uses 0.5")
    return float(rho)


def _majority(votes: Iterable[int]) -> tuple[int, int, int]:
    """(most common vote, its count, number of votes); a tie goes to the smallest label."""
    counts = Counter(votes)
    winner = min(counts, key=lambda v: (-counts[v], v))
    return winner, counts[winner], sum(counts.values())


def _sample_majorities(labels: Mapping[int, Sequence[int]]) -> dict[int, tuple[int, int, int]]:
    """{sample index: (its majority label, that label's votes, all votes)}."""
    return {i: _majority(votes) for i, votes in labels.items()}


def _mean_se(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    se = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else math.nan
    return float(a.mean()), se


def scenario_verdict(decisions: Sequence[Decision], *, rho: float = 0.5) -> Verdict:
    """Vote on whole-scenario decisions of one failure scenario.

    It is a failure scenario when more than ``rho`` of the voting annotators (skips excluded) say so;
    at rho=0.5 a tie is *not* a failure. Its label is the most common label among those who said
    failure, a tie going to the smallest label. ``agreement`` is the share of voting annotators whose
    vote matches the verdict: the majority label, or "not a failure".
    """
    rho = _check_rho(rho)
    scenarios = {d.scenario for d in decisions}
    if len(scenarios) != 1 or any(d.sample_index is not None for d in decisions):
        raise ValueError(f"scenario_verdict needs whole-scenario decisions (sample_index=None) of one "
                         f"scenario, got scenarios {sorted(scenarios)}; use sample_verdict for samples")
    votes = [d for d in current_decisions(decisions) if not d.skipped]
    scenario = scenarios.pop()
    if not votes:
        return Verdict(scenario, False, None, math.nan, 0, 0, math.nan)
    failures = [d.label for d in votes if d.is_failure]
    share = len(failures) / len(votes)
    if share <= rho:
        return Verdict(scenario, False, None, 1.0 - share, len(votes), 0, share)
    label, count, _ = _majority(failures)
    return Verdict(scenario, True, label, count / len(votes), len(votes), 0, share)


def sample_verdict(sample_labels: Mapping[int, Sequence[int]] | Sequence[Sequence[int]],
                   classifier_preds: Sequence[int] | np.ndarray, *, rho: float = 0.5,
                   scenario: int | None = None) -> Verdict:
    """The paper's rule (§4.1) for a failure scenario reviewed sample by sample.

    Parameters
    ----------
    sample_labels : {sample_index: labels}, or a list indexed by sample; one label per annotator.
        Samples without labels ("None of the above" for everyone) are discarded.
    classifier_preds : (n_generated,) ints, the classifier's prediction on each sample.

    Each sample's label is its annotators' majority (a tie goes to the smallest label). The scenario
    is a failure scenario when more than ``rho`` of those labels differ from the classifier's
    predictions; its label is the majority of the samples' labels. ``agreement`` is the mean over
    samples of the share of annotators who voted for the sample's majority label (Fig. 6), with its
    standard error in ``agreement_se``. ``n_annotators`` is the most labels any sample got.
    """
    rho = _check_rho(rho)
    preds = np.asarray(classifier_preds)
    if preds.ndim != 1 or not np.issubdtype(preds.dtype, np.integer):
        raise ValueError(f"classifier_preds must be a 1-D array of class indices, got shape {preds.shape}, "
                         f"dtype {preds.dtype}")
    items = sample_labels.items() if isinstance(sample_labels, Mapping) else enumerate(sample_labels)
    labels = {_index("sample index", i, optional=False): [_index("label", v, optional=False) for v in votes]
              for i, votes in items if len(votes)}
    unpredicted = sorted(i for i in labels if i >= len(preds))
    if unpredicted:
        where = "" if scenario is None else f" of scenario {scenario}"
        raise ValueError(f"sample indices {unpredicted}{where} have no classifier prediction (got "
                         f"{len(preds)} predictions); pass one prediction per reviewed sample")
    if not labels:
        return Verdict(scenario, False, None, math.nan, 0, 0, math.nan)
    majorities = _sample_majorities(labels)
    share = sum(m != preds[i] for i, (m, _, _) in majorities.items()) / len(majorities)
    agreement, se = _mean_se([count / n for _, count, n in majorities.values()])
    label = _majority(m for m, _, _ in majorities.values())[0] if share > rho else None
    return Verdict(scenario, share > rho, label, agreement, max(map(len, labels.values())), len(labels),
                   float(share), se)


def _sample_labels(decisions: Iterable[Decision]) -> dict[int, list[int]]:
    labels: dict[int, list[int]] = {}
    for d in decisions:
        if d.sample_index is not None and not d.skipped:
            labels.setdefault(d.sample_index, []).append(d.label)
    return labels


def _by_scenario(decisions: Iterable[Decision]) -> dict[int, list[Decision]]:
    groups: dict[int, list[Decision]] = {}
    for d in decisions:
        groups.setdefault(d.scenario, []).append(d)
    return groups


def verdicts(store: LabelStore, *, predictions: Mapping[int, Sequence[int] | np.ndarray] | None = None,
             rho: float = 0.5) -> dict[int, Verdict]:
    """Verdict per reviewed failure scenario, from the store's current decisions.

    A scenario with per-sample decisions and an entry in ``predictions`` (scenario → the classifier's
    predictions on its reviewed samples) follows the paper's per-sample rule; otherwise its
    whole-scenario decisions are used. A scenario with neither is left out.
    """
    out = {}
    for scenario, ds in _by_scenario(store.decisions()).items():
        whole = [d for d in ds if d.sample_index is None]
        samples = [d for d in ds if d.sample_index is not None and not d.skipped]
        if samples and predictions is not None and scenario in predictions:
            v = sample_verdict(_sample_labels(samples), predictions[scenario], rho=rho, scenario=scenario)
            out[scenario] = replace(v, n_annotators=len({d.annotator for d in samples}))
        elif whole:
            out[scenario] = scenario_verdict(whole, rho=rho)
    return out


def agreement_table(store: LabelStore, *, rho: float = 0.5) -> list[dict]:
    """Rows for the app's agreement table: one per scenario and kind of review ("scenario"/"samples").

    Columns: scenario, kind, annotators, skipped, votes (e.g. "4: 2, not a failure: 1"), majority,
    agreement, agreement_se. Per-sample votes are pooled over samples; their majority and agreement
    are over the samples' majority labels, as in :func:`sample_verdict`.
    """
    rows = []
    for scenario, ds in sorted(_by_scenario(store.decisions()).items()):
        for kind in ("scenario", "samples"):
            group = [d for d in ds if (d.sample_index is None) == (kind == "scenario")]
            if not group:
                continue
            votes = [d for d in group if not d.skipped]
            if kind == "scenario":
                v = scenario_verdict(group, rho=rho)
                counts = Counter(str(d.label) if d.is_failure else NOT_A_FAILURE for d in votes)
                majority = "" if not votes else str(v.label) if v.is_failure else NOT_A_FAILURE
                agreement, se = v.agreement, math.nan
            else:
                majorities = _sample_majorities(_sample_labels(votes)).values()
                counts = Counter(str(d.label) for d in votes)
                majority = str(_majority(m for m, _, _ in majorities)[0]) if majorities else ""
                agreement, se = _mean_se([c / n for _, c, n in majorities])
            rows.append({"scenario": scenario, "kind": kind, "annotators": len({d.annotator for d in votes}),
                         "skipped": len(group) - len(votes),
                         "votes": ", ".join(f"{k}: {n}" for k, n in counts.most_common()),
                         "majority": majority, "agreement": agreement, "agreement_se": se})
    return rows
