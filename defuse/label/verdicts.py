"""The vote rules over annotators' decisions (paper §3.2.3, §4.1, §4.4): a scenario's verdict by the ρ rule,
per-sample majorities, and the annotators' agreement (Figure 6). Decisions live in :mod:`defuse.label.store`.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .store import NOT_A_FAILURE, Decision, LabelStore, current_decisions, index_value

PAPER_RHO = 0.5  # ρ: a failure scenario when more than this share of votes (or samples) disagree (§4.1)
# The automatic reviewer also offers a scenario as a failure when at least this share of its samples are misread,
# though not a majority: half a scenario of real failures is worth fixing (a mixed scenario; its share is shown).
MIXED_FAILURE_SHARE = 0.4  # 4 of the paper's 10 samples: beyond what a 10-sample draw shows by chance (s.e. 0.15)


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
    mixed: bool = False    # a failure offered on a large share of misread samples (>= MIXED_FAILURE_SHARE), not ρ


def check_rho(rho: float) -> float:
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not 0.0 <= rho < 1.0:
        raise ValueError(f"rho must be a share in [0, 1) (the paper: {PAPER_RHO}); got {rho!r}")
    return float(rho)


def _majority(votes: Iterable[int]) -> tuple[int, int, int]:
    """(most common vote, its count, number of votes); a tie goes to the smallest label."""
    counts = Counter(votes)
    winner = min(counts, key=lambda v: (-counts[v], v))
    return winner, counts[winner], sum(counts.values())


def _sample_majorities(labels: Mapping[int, Sequence[int]]) -> dict[int, tuple[int, int, int]]:
    """{sample index: (its majority label, that label's votes, all votes)}."""
    return {i: _majority(votes) for i, votes in labels.items()}


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return math.nan, math.nan
    se = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else math.nan
    return float(a.mean()), se


def scenario_verdict(decisions: Sequence[Decision], *, rho: float = PAPER_RHO) -> Verdict:
    """Vote on whole-scenario decisions of one failure scenario.

    It is a failure scenario when more than ``rho`` of the voting annotators (skips excluded) say so;
    at rho=0.5 a tie is *not* a failure. Its label is the most common label among those who said
    failure, a tie going to the smallest label. ``agreement`` is the share of voting annotators whose
    vote matches the verdict: the majority label, or "not a failure".
    """
    rho = check_rho(rho)
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
                   classifier_preds: Sequence[int] | np.ndarray, *, rho: float = PAPER_RHO,
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
    rho = check_rho(rho)
    preds = np.asarray(classifier_preds)
    if preds.ndim != 1 or not np.issubdtype(preds.dtype, np.integer):
        raise ValueError(f"classifier_preds must be a 1-D array of class indices, got shape {preds.shape}, "
                         f"dtype {preds.dtype}")
    items = sample_labels.items() if isinstance(sample_labels, Mapping) else enumerate(sample_labels)
    labels = {index_value("sample index", i, optional=False): [index_value("label", v, optional=False) for v in votes]
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
    agreement, se = mean_se([count / n for _, count, n in majorities.values()])
    label = _majority(m for m, _, _ in majorities.values())[0] if share > rho else None
    return Verdict(scenario, bool(share > rho), label, agreement, max(map(len, labels.values())), len(labels),
                   float(share), se)


def offer_mixed(v: Verdict, sample_labels: Mapping[int, Sequence[int]], classifier_preds,
                share: float = MIXED_FAILURE_SHARE) -> Verdict:
    """``v`` (a per-sample verdict) as a failure when at least ``share`` of its samples are misread though not
    more than ρ: labelled with the majority of the misread samples' labels, ``mixed`` set. Else ``v``."""
    if v.is_failure or not v.n_samples or not v.disagree_share >= share:
        return v
    preds = np.asarray(classifier_preds)
    misread = [m for i, (m, _, _) in _sample_majorities(sample_labels).items() if m != preds[i]]
    return replace(v, is_failure=True, label=_majority(misread)[0], mixed=True)


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
             rho: float = PAPER_RHO) -> dict[int, Verdict]:
    """Verdict per reviewed failure scenario, from the store's current decisions.

    A scenario with per-sample decisions and an entry in ``predictions`` (scenario → the classifier's
    predictions on its reviewed samples) follows the paper's per-sample rule; otherwise its
    whole-scenario decisions are used. A scenario with neither is left out.
    """
    return verdicts_from_decisions(store.decisions(), predictions=predictions, rho=rho)


def verdicts_from_decisions(decisions: Iterable[Decision], *,
                            predictions: Mapping[int, Sequence[int] | np.ndarray] | None = None,
                            rho: float = 0.5) -> dict[int, Verdict]:
    """:func:`verdicts` over the decisions given instead of a store's (e.g. only people's, or only a reviewer's)."""
    out = {}
    for scenario, ds in _by_scenario(decisions).items():
        whole = [d for d in ds if d.sample_index is None]
        samples = [d for d in ds if d.sample_index is not None and not d.skipped]
        if samples and predictions is not None and scenario in predictions:
            v = sample_verdict(_sample_labels(samples), predictions[scenario], rho=rho, scenario=scenario)
            out[scenario] = replace(v, n_annotators=len({d.annotator for d in samples}))
        elif whole:
            out[scenario] = scenario_verdict(whole, rho=rho)
    return out


def agreement_table(store: LabelStore, *, rho: float = PAPER_RHO) -> list[dict]:
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
                agreement, se = mean_se([c / n for _, c, n in majorities])
            rows.append({"scenario": scenario, "kind": kind, "annotators": len({d.annotator for d in votes}),
                         "skipped": len(group) - len(votes),
                         "votes": ", ".join(f"{k}: {n}" for k, n in counts.most_common()),
                         "majority": majority, "agreement": agreement, "agreement_se": se})
    return rows
