"""Labeling as a recorded workspace step: every change to the decisions rewrites ``label/decisions.json``.

The correction reads the labels, so it lists that file among its inputs: changing a label makes the correction
stale, as changing the classifier does. The file holds the current decisions without their times and notes,
so saving the same answer again changes nothing downstream. The correction's input is ``label/verdicts.json``,
what the answers mean per scenario (failure or not, its label, people's per-sample labels): another person
accepting the reviewer's verdict changes who decided, not the verdict, and stales nothing. (The SQLite file
itself cannot be fingerprinted: in WAL mode its bytes change on checkpoints, not on commits.)
"""

from __future__ import annotations

from ..label.provenance import scenario_decisions
from ..label.store import Decision, LabelStore
from ..workspace import DECISIONS, LABELS, VERDICTS, Workspace


def _answer(d: Decision) -> dict:
    return {"scenario": d.scenario, "annotator": d.annotator, "sample_index": d.sample_index,
            "is_failure": d.is_failure, "label": d.label, "reviewer": d.reviewer}


def verdict_record(current: list[Decision]) -> list[dict]:
    """What the current answers mean, per scenario, without who gave them or when.

    People's per-sample answers enter as each sample's majority label (their verdict also needs the classifier's
    labels on the samples, which are fixed by the scenarios and the classifier: both are inputs of the correction).
    """
    out = []
    for j, s in sorted(scenario_decisions(current).items()):
        samples: dict[int, list[int]] = {}
        for d in current:
            if d.scenario == j and d.by_person and d.sample_index is not None and not d.skipped:
                samples.setdefault(d.sample_index, []).append(d.label)
        majority = {str(i): min(set(v), key=lambda x: (-v.count(x), x)) for i, v in sorted(samples.items())}
        out.append({"scenario": j, "is_failure": s.verdict.is_failure, "label": s.verdict.label,
                    **({"sample_labels": majority} if majority else {})})
    return out


def save_label_record(ws: Workspace, store: LabelStore) -> dict:
    """Write the current answers and what they mean, and record the `label` step (what correction's staleness
    compares)."""
    current = store.decisions()
    ws.save_json(DECISIONS, [_answer(d) for d in current])
    ws.save_json(VERDICTS, verdict_record(current))
    people = sorted({d.annotator for d in current if d.by_person})
    return ws.record_step("label", config={}, metrics={"decisions": len(current), "annotators": people,
                                                       "reviewed_scenarios": len({d.scenario for d in current})})


class WorkspaceLabelStore(LabelStore):
    """The project's label store; closing it after a change records the `label` step."""

    def __init__(self, ws: Workspace):
        super().__init__(ws.path(LABELS))
        self._ws, self._changed = ws, False

    def record(self, *args, **kwargs) -> Decision:
        d = super().record(*args, **kwargs)
        self._changed = True
        return d

    def from_csv(self, path) -> int:
        added = super().from_csv(path)
        self._changed = self._changed or added > 0
        return added

    def close(self) -> None:
        try:
            if self._changed:
                save_label_record(self._ws, self)
                self._changed = False
        finally:
            super().close()
