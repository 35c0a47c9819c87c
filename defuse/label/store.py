"""Label: the annotators' decisions on failure scenarios and the vote rules (paper §3.2.3, §4.1, §4.4).

An annotator reviews a failure scenario either as a whole (``sample_index=None``: is it a failure
scenario, and what is its true label?) or sample by sample, as in the paper's protocol (Q = 10 samples
per scenario, several annotators per sample; the scenario is a failure scenario when more than ρ of the
samples' majority labels disagree with the classifier). Each decision is one row of ``labels.sqlite``,
committed at once (WAL journal), so a crash loses at most the decision being written. A later decision
by the same annotator on the same (scenario, sample) supersedes the earlier one; history keeps both.
A decision made by an automatic reviewer carries that reviewer's fingerprint (``reviewer``); a person's
carries none, and a person's decision always wins over a reviewer's (:mod:`defuse.label.provenance`).
"""

from __future__ import annotations

import csv
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace

from ..runtime.checks import is_int

SCHEMA_VERSION = 2  # 2: the `reviewer` column (fingerprint of the automatic reviewer that decided)
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's transaction
CSV_COLUMNS = ("scenario", "annotator", "is_failure", "label", "created", "note", "sample_index", "reviewer")
OPTIONAL_CSV_COLUMNS = ("reviewer",)  # absent from CSVs written before schema 2: a person decided
NOT_A_FAILURE = "not a failure"
AUTO_REVIEWER = "auto-reviewer"  # the workspace reviewer's annotator name (ReviewerConfig.name)
LEGACY_REVIEWER = "unrecorded"   # the fingerprint of reviewer rows written before schema 2 recorded it
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scenario INTEGER NOT NULL CHECK (scenario >= 0),
        annotator TEXT NOT NULL,
        is_failure INTEGER CHECK (is_failure IN (0, 1)),
        label INTEGER CHECK (label >= 0),
        created REAL NOT NULL,
        note TEXT,
        sample_index INTEGER CHECK (sample_index >= 0),
        reviewer TEXT)""",
    "CREATE INDEX IF NOT EXISTS decisions_by_scenario ON decisions (scenario, annotator, sample_index)",
)
_COLUMNS = "id, " + ", ".join(CSV_COLUMNS)
_INSERT = f"INSERT INTO decisions ({', '.join(CSV_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_NEW = (f"INSERT INTO decisions ({', '.join(CSV_COLUMNS)}) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
               "WHERE NOT EXISTS "
               "(SELECT 1 FROM decisions WHERE scenario = ? AND annotator = ? AND is_failure IS ? "
               "AND label IS ? AND created = ? AND note IS ? AND sample_index IS ? AND reviewer IS ?)")
_TRUE, _FALSE = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}


def index_value(name: str, value, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if not is_int(value) or value < 0:
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
    reviewer: str | None = None   # the automatic reviewer's fingerprint; None: a person decided

    def __post_init__(self):
        if not isinstance(self.annotator, str) or not 0 < len(self.annotator.strip()) <= 100:
            raise ValueError(f"annotator must be a non-empty name of <= 100 characters, "
                             f"got {self.annotator!r}")
        if self.is_failure not in (True, False, None):
            raise ValueError(f"is_failure must be True, False or None (skip), got {self.is_failure!r}")
        if self.reviewer is not None and (not isinstance(self.reviewer, str) or not self.reviewer.strip()):
            raise ValueError(f"reviewer must be a non-empty fingerprint or None (a person), got {self.reviewer!r}")
        if self.note is not None and not isinstance(self.note, str):
            raise ValueError(f"note must be a string or None, got {self.note!r}")
        fixed = {"scenario": index_value("scenario", self.scenario, optional=False),
                 "label": index_value("label", self.label, optional=True),
                 "sample_index": index_value("sample_index", self.sample_index, optional=True),
                 "annotator": self.annotator.strip(), "created": float(self.created),
                 "is_failure": None if self.is_failure is None else bool(self.is_failure)}
        if fixed["annotator"] == AUTO_REVIEWER and self.reviewer is None:  # the reviewer's name is reserved
            fixed["reviewer"] = LEGACY_REVIEWER
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

    @property
    def by_person(self) -> bool:
        return self.reviewer is None


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
        if c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # up to date: opening writes nothing (a page that only reads leaves the file's bytes alone)
        with self._transaction():
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ValueError(f"{self.path} has label schema version {version}, newer than this "
                                 f"Defuse understands ({SCHEMA_VERSION}); upgrade Defuse")
            for statement in _SCHEMA:
                c.execute(statement)
            if version == 1:  # schema 1 had no reviewer column; its reviewer rows are recognised by name
                c.execute("ALTER TABLE decisions ADD COLUMN reviewer TEXT")
                c.execute("UPDATE decisions SET reviewer = ? WHERE annotator = ?", (LEGACY_REVIEWER, AUTO_REVIEWER))
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
               sample_index: int | None = None, note: str | None = None, reviewer: str | None = None) -> Decision:
        """Save one decision and commit it; ``is_failure=None`` records a skip.

        ``reviewer``: the fingerprint of the automatic reviewer deciding; None when a person decides.
        """
        d = Decision(scenario, annotator, is_failure, label, sample_index, note, created=time.time(),
                     reviewer=reviewer)
        with self._transaction() as c:
            row_id = c.execute(_INSERT, _row(d)).lastrowid
        return replace(d, id=row_id)

    def history(self) -> list[Decision]:
        """Every decision ever recorded, superseded ones included, in recording order."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM decisions ORDER BY id").fetchall()
        return [Decision(s, a, None if f is None else bool(f), lab, i, n, t, id=k, reviewer=r)
                for k, s, a, f, lab, t, n, i, r in rows]

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
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or []) and c not in OPTIONAL_CSV_COLUMNS]
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
            d.created, d.note, d.sample_index, d.reviewer)


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
                        float(created) if created else time.time(), reviewer=value("reviewer"))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
