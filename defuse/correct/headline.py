"""The honest headline: does the chosen λ beat the λ=0 control and the baseline on the per-sample measure?

The scenario-label accuracy can be high while the model got worse on what the failure samples really show:
a scenario sampled at τ=0.5 mixes classes, and its one label is wrong for some samples. The per-sample
measure grades each failure-test sample against the automatic reviewer's own label (a model that made none
of the scenario labels). When the chosen λ does not beat both the control and the baseline there, the
Correct page, the report and the model card say so next to the chosen λ.
"""

from __future__ import annotations

from typing import Optional

PER_SAMPLE = "failure_test_acc_reviewer"


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def regression_note(chosen: Optional[dict], control: Optional[dict], baseline: Optional[dict]) -> Optional[str]:
    """A plain-words warning when the chosen λ does not beat both the control and the baseline per sample;
    None when it does, or when there is no per-sample measure to judge by."""
    if not chosen or chosen.get(PER_SAMPLE) is None:
        return None
    mine = chosen[PER_SAMPLE]
    rivals = [(f"the λ=0 control ({_pct(r[PER_SAMPLE])})", r[PER_SAMPLE]) for r in (control,)
              if r and r.get(PER_SAMPLE) is not None]
    rivals += [(f"the baseline fine-tuned on raw adversarial examples ({_pct(r[PER_SAMPLE])})", r[PER_SAMPLE])
               for r in (baseline,) if r and r.get(PER_SAMPLE) is not None]
    not_beaten = [words for words, score in rivals if mine <= score]
    if not not_beaten:
        return None
    return (f"Per sample (each failure-test sample against the automatic reviewer's own label), the chosen "
            f"λ={chosen['lambda']:g} scores {_pct(mine)}: not better than {' or '.join(not_beaten)}. On this "
            "measure Defuse did not fix these failure scenarios; the scenario-label accuracy overstates it.")
