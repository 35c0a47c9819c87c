"""Who decided each failure scenario: a person's decision always wins over the automatic reviewer's.

The label store holds every annotator's decisions; a decision made by an automatic reviewer carries the
reviewer's fingerprint (:attr:`defuse.label.store.Decision.reviewer`). Per scenario, the decision that counts is
the people's vote (the paper's rules, :mod:`defuse.label.verdicts`) whenever at least one person voted; the
reviewer's vote only fills scenarios no person has decided. Disagreements between people, and between the
people's decision and the reviewer's, are kept as plain-words conflicts for the Label page and the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .store import Decision
from .verdicts import Verdict, offer_mixed, sample_verdict, verdicts_from_decisions

HUMAN, REVIEWER = "human", "reviewer"


@dataclass(frozen=True)
class ScenarioDecision:
    """The decision that counts for one scenario, who made it, and the votes behind it."""

    scenario: int
    verdict: Verdict                 # the decision that counts
    decided_by: str                  # HUMAN or REVIEWER
    people: Verdict | None           # the people's vote; None when no person voted
    reviewer: Verdict | None         # the automatic reviewer's vote; None when it did not review
    annotators: tuple[str, ...]      # people who voted (skips excluded)
    reviewers: tuple[str, ...]       # "name (fingerprint)" of each reviewer that voted
    notes: tuple[str, ...]           # people's notes, "name: note"
    conflicts: tuple[str, ...]       # one sentence per disagreement
    votes: tuple[Decision, ...]      # the current decisions behind it, skips included


def reviewer_fingerprint(reviewer) -> str:
    """A short sha256 of a reviewer's name and its members' weights: which reviewer made a decision."""
    h = hashlib.sha256(reviewer.name.encode())
    for member in reviewer.members:
        for name, tensor in sorted(member.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def describe(v: Verdict | None) -> str:
    """A verdict in words: "failure, true label 2", "failure, true label 6 (mixed: 50% of the samples misread)"
    or "not a failure"."""
    if v is None:
        return "undecided"
    if not v.is_failure:
        return "not a failure"
    return f"failure, true label {v.label}" + (f" ({mixed_words(v)})" if v.mixed else "")


def mixed_words(v: Verdict) -> str:
    """The share behind a mixed failure: "mixed: 50% of the 10 samples misread"."""
    return f"mixed: {v.disagree_share:.0%} of the {v.n_samples} samples misread"


def _said(d: Decision) -> str:
    return "skipped" if d.skipped else f"failure, true label {d.label}" if d.is_failure else "not a failure"


def _flag_verdict(decisions: Sequence[Decision], rho: float) -> Verdict | None:
    """The per-sample rule (§4.1) over reviewer decisions, using each decision's own record of whether its
    label differs from the classifier's (``is_failure``) instead of re-drawing the classifier's predictions."""
    votes = [d for d in decisions if d.sample_index is not None and not d.skipped]
    if not votes:
        return None
    labels: dict[int, list[int]] = {}
    for d in votes:
        labels.setdefault(d.sample_index, []).append(d.label)
    preds = np.full(max(labels) + 1, -1, dtype=np.int64)  # -1: the classifier said something else
    for i, ls in labels.items():
        winner = min(set(ls), key=lambda v: (-ls.count(v), v))  # the vote rules' tie-break: smallest label
        agreeing = [d for d in votes if d.sample_index == i and d.label == winner]
        if not any(d.is_failure for d in agreeing):
            preds[i] = winner
    return offer_mixed(sample_verdict(labels, preds, rho=rho, scenario=votes[0].scenario), labels, preds)


reviewer_verdict = _flag_verdict  # the automatic reviewer's verdict from its recorded decisions (the Label page's hint)


def _people_conflict(whole: Sequence[Decision]) -> str | None:
    answers = {(d.is_failure, d.label) for d in whole if not d.skipped}
    if len(answers) < 2:
        return None
    said = "; ".join(f"{d.annotator}: {_said(d)}" for d in whole if not d.skipped)
    return f"people disagree — {said}"


def _one(scenario: int, ds: Sequence[Decision], people_verdict: Verdict | None, rho: float) -> ScenarioDecision | None:
    people = [d for d in ds if d.by_person]
    machine = [d for d in ds if not d.by_person]
    if people_verdict is not None and people_verdict.n_annotators == 0:  # people only skipped it
        people_verdict = None
    reviewer_verdict = _flag_verdict(machine, rho)
    voters = tuple(sorted({d.annotator for d in people if not d.skipped}))
    if people_verdict is None and reviewer_verdict is None:
        return None
    conflicts = [c for c in (_people_conflict([d for d in people if d.sample_index is None]),) if c]
    reviewers = tuple(sorted({f"{d.annotator} ({d.reviewer})" for d in machine if not d.skipped}))
    if people_verdict is not None and reviewer_verdict is not None and \
            (people_verdict.is_failure, people_verdict.label) != (reviewer_verdict.is_failure, reviewer_verdict.label):
        conflicts.append(f"the automatic reviewer says {describe(reviewer_verdict)}; people decided "
                         f"{describe(people_verdict)} — the people's decision counts")
    decided_by = HUMAN if people_verdict is not None else REVIEWER
    return ScenarioDecision(scenario, people_verdict or reviewer_verdict, decided_by, people_verdict, reviewer_verdict,
                            voters, reviewers, tuple(f"{d.annotator}: {d.note}" for d in people if d.note),
                            tuple(conflicts), tuple(ds))


def scenario_decisions(decisions: Iterable[Decision], *, predictions: Mapping[int, Sequence[int]] | None = None,
                       rho: float = 0.5) -> dict[int, ScenarioDecision]:
    """The decision that counts for every scenario anyone has voted on, from current decisions.

    ``predictions`` (scenario → the classifier's labels on its reviewed samples) are needed only for people's
    per-sample decisions, as in :func:`defuse.label.verdicts.verdicts`.
    """
    current = list(decisions)
    people = verdicts_from_decisions([d for d in current if d.by_person], predictions=predictions, rho=rho)
    groups: dict[int, list[Decision]] = {}
    for d in current:
        groups.setdefault(d.scenario, []).append(d)
    out = {}
    for j, ds in sorted(groups.items()):
        found = _one(j, ds, people.get(j), rho)
        if found is not None:
            out[j] = found
    return out


def summary(found: Mapping[int, ScenarioDecision]) -> list[dict]:
    """JSON rows (``label --summary-json``): each scenario's decision, label, who decided, and the votes."""
    def vote(d: Decision) -> dict:
        return {"annotator": d.annotator, "kind": HUMAN if d.by_person else REVIEWER, "reviewer": d.reviewer,
                "sample_index": d.sample_index, "decision": _said(d).split(",")[0], "label": d.label,
                "note": d.note, "created": d.created}

    return [{"scenario": j, "decision": "failure" if s.verdict.is_failure else "not a failure",
             "label": s.verdict.label, "decided_by": s.decided_by, "annotators": list(s.annotators),
             "reviewers": list(s.reviewers), "people": describe(s.people) if s.people else None,
             "reviewer_says": describe(s.reviewer) if s.reviewer else None, "conflicts": list(s.conflicts),
             "notes": list(s.notes), "votes": [vote(d) for d in s.votes]} for j, s in sorted(found.items())]


def filled_by_reviewer(found: Mapping[int, ScenarioDecision]) -> str:
    """One sentence on what the reviewer decided and what it left to people."""
    mine = sum(s.decided_by == REVIEWER for s in found.values())
    kept = [j for j, s in found.items() if s.decided_by == HUMAN and s.reviewer is not None]
    against = [j for j in kept if any("automatic reviewer" in c for c in found[j].conflicts)]
    text = f"The automatic reviewer decided {mine} scenario(s) no person had decided"
    if kept:
        text += (f"; it left the {len(kept)} that people decided as they are"
                 + (f" (it disagrees on #{', #'.join(map(str, against))})" if against else ""))
    return text + "."


def table_rows(found: Mapping[int, ScenarioDecision], class_names: Sequence | None = None) -> list[dict]:
    """One row per decided scenario for the report: decision, who decided, annotators or reviewer, notes,
    conflicts."""
    names = list(class_names or [])

    def said(v: Verdict) -> str:
        if not v.is_failure:
            return "not a failure"
        name = names[v.label] if v.label is not None and v.label < len(names) else v.label
        return (f"failure, true label {v.label}" + (f" ({name})" if str(name) != str(v.label) else "")
                + (f" ({mixed_words(v)})" if v.mixed else ""))

    return [{"scenario": j, "decision": said(s.verdict),
             "decided by": "people" if s.decided_by == HUMAN else "automatic reviewer",
             "annotators": ", ".join(s.annotators) or "–", "reviewer": ", ".join(s.reviewers) or "–",
             "notes": "; ".join(s.notes) or "–", "conflicts": "; ".join(s.conflicts) or "–"}
            for j, s in sorted(found.items())]
