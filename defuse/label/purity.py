"""How pure a failure scenario is, from the annotators' per-sample labels (the product's view).

A scenario sampled at τ can mix classes: the paper stamps its majority label on every D_f sample, so
the samples of the other classes teach the classifier a wrong label. The automatic reviewer (the
annotator stand-in) labels each reviewed sample; the share carrying the scenario's majority label is
its purity. Below :data:`MIXED_BELOW` the app calls the scenario mixed, in plain words, and offers
per-sample D_f labels (``--failure-labels reviewer``). The independent judge's purity, for evaluation,
is in :mod:`defuse.steps.grading`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from ..runtime.words import option

MIXED_BELOW = 0.8  # a scenario whose majority label covers less than this share of its samples is mixed


@dataclass(frozen=True)
class ScenarioPurity:
    label: int        # the majority label of the reviewed samples (a failure scenario's label)
    purity: float     # share of the reviewed samples with that label
    label_mix: dict   # {label: share}, most common first
    n: int            # reviewed samples with a label

    @property
    def mixed(self) -> bool:
        return self.purity < MIXED_BELOW


def purity_of(labels) -> ScenarioPurity | None:
    """Purity and label mix of one scenario's per-sample labels; None without any label."""
    counts = Counter(int(v) for v in labels)
    if not counts:
        return None
    n = sum(counts.values())
    mix = {label: count / n for label, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
    label = next(iter(mix))
    return ScenarioPurity(label, mix[label], mix, n)


def scenario_purities(store) -> dict[int, ScenarioPurity]:
    """{scenario: purity} from every current per-sample decision with a label in a LabelStore."""
    by_scenario = defaultdict(list)
    for d in store.decisions():
        if d.sample_index is not None and d.label is not None and not d.skipped:
            by_scenario[d.scenario].append(d.label)
    return {j: purity_of(labels) for j, labels in sorted(by_scenario.items())}


def _name(names, label: int) -> str:
    return str(names[label]) if 0 <= label < len(names) else str(label)


def mix_words(p: ScenarioPurity, names) -> str:
    """``'6' 70%, '5' 20%, '8' 10%``."""
    return ", ".join(f"'{_name(names, label)}' {share:.0%}" for label, share in p.label_mix.items())


def purity_words(p: ScenarioPurity | None, names) -> str:
    """One plain sentence for a card, the Label page or the report."""
    if p is None:
        return "Purity: not reviewed sample by sample yet (run the automatic reviewer on the Label page)."
    said = f"The reviewer reads {p.purity:.0%} of its {p.n} samples as '{_name(names, p.label)}'"
    if not p.mixed:
        return f"{said}: a pure scenario."
    return (f"Mixed scenario: {said} (label mix: {mix_words(p, names)}). One label for all of its samples would "
            f"teach the classifier wrong labels: correct with per-sample D_f labels "
            f"({option('failure-labels-reviewer')}).")
