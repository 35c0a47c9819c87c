"""The honest headline: does the chosen λ beat the λ=0 control and the baseline on the per-sample measure?

The scenario-label accuracy can be high while the model got worse on what the failure samples really show:
a scenario sampled at τ=0.5 mixes classes, and its one label is wrong for some samples. The per-sample
measure grades each failure-test sample against the automatic reviewer's own label (a model that made none
of the scenario labels). When the chosen λ does not beat both the control and the baseline there, the
Correct page, the report and the model card say so next to the chosen λ.
"""

from __future__ import annotations

from typing import Optional

from .selection import within_noise

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


# --- the one-sentence headline: the chosen model against the λ=0 control and the UAE-only baseline ------------

TIE_STANDARD_ERRORS = 2.0  # differences within this many standard errors are ties (as the λ choice's rule)
RIVALS = (("control", "the λ=0 control"), ("baseline", "the baseline fine-tuned on raw adversarial examples"))


def _compare(mine: float, theirs: float, n: Optional[int], *, higher_is_better: bool = True) -> str:
    """"beats", "ties" or "loses to": a difference within two standard errors of it (n samples) is a tie."""
    if not higher_is_better:
        mine, theirs = 1 - mine, 1 - theirs
    best, other = max(mine, theirs), min(mine, theirs)
    if n and within_noise(best, other, n, TIE_STANDARD_ERRORS) or abs(mine - theirs) < 1e-12:
        return "ties"
    return "beats" if mine > theirs else "loses to"


def _both_sides(mine: dict, theirs: dict, n_fail: Optional[int], n_right: Optional[int]) -> tuple[str, str]:
    """(word, why) of the chosen model against one rival, on both sides at once.

    Why both: a model that fixes more and breaks more has not beaten anything; it has traded (the Fashion-MNIST
    sweep that fixed 99.8% and broke 43.4% against the control's 53.1% / 5.4% was once headlined as a win).
    It beats a rival only when it fixes more without breaking more, or fixes as many and breaks fewer."""
    fix = _compare(mine["fix_rate"], theirs["fix_rate"], n_fail)
    hurt = "ties"
    if None not in (mine.get("collateral"), theirs.get("collateral")):
        hurt = _compare(mine["collateral"], theirs["collateral"], n_right, higher_is_better=False)
    if fix == "ties" and hurt != "ties":  # same fixes: the one that breaks less wins
        return hurt, "same fix rate, " + ("less" if hurt == "beats" else "more") + " collateral"
    if hurt in ("ties", fix):
        return fix, ""
    return ("fixes more but breaks more than" if fix == "beats" else "fixes fewer but breaks fewer than"), ""


def _verdict(outcomes: list[tuple]) -> str:
    """(word, rival[, why]) in one clause, losses first: "Defuse loses to the baseline and ties the λ=0 control"."""
    order = {"loses to": 0, "fixes more but breaks more than": 1, "fixes fewer but breaks fewer than": 1,
             "ties": 2, "beats": 3}
    parts = [f"{o[0]} {o[1]}" + (f" ({o[2]})" if len(o) > 2 and o[2] else "")
             for o in sorted(outcomes, key=lambda o: order[o[0]])]
    return "Defuse " + " and ".join(parts) if parts else ""


def _short(who: str) -> str:
    return who.split(" fine-tuned")[0]


def two_sided_headline(two_sided: Optional[dict]) -> Optional[str]:
    """The fix rate and collateral of the chosen model against the control and the baseline, graded by the
    record's two-sided grader (``correct/best.json``'s "two_sided"); None when the record has none.

    A tie on the fix rate is broken by the collateral when that differs beyond noise."""
    if not isinstance(two_sided, dict) or not isinstance(two_sided.get("models"), dict):
        return None
    models = two_sided["models"]
    chosen = models.get("chosen") or {}
    if chosen.get("fix_rate") is None:
        return None
    n_fail, n_right = two_sided.get("n_real_failures"), two_sided.get("n_right_before")

    def figures(m: dict) -> str:
        hurt = m.get("collateral")
        return f"fixes {_pct(m['fix_rate'])}" + (f" and breaks {_pct(hurt)}" if hurt is not None else "")

    said = [f"the chosen model {figures(chosen)}"]
    said += [f"{_short(who)} {figures(models[key])}" for key, who in RIVALS
             if (models.get(key) or {}).get("fix_rate") is not None]
    outcomes = two_sided_outcomes(two_sided)
    grader = two_sided.get("grader") or "an independent grader"
    unclear = two_sided.get("n_unclear")
    scope = f"{n_fail} real failures" if n_fail is not None else "the real failures"
    right = f" and of {n_right} samples it got right" if n_right is not None else ""
    about = (f"Of {scope}{right} (graded by {grader}"
             + (f"; {unclear} unclear samples left out" if unclear else "") + "), ")
    verdict = _verdict(outcomes)
    return about + ", ".join(said) + (f": {verdict}." if verdict else ".")


def two_sided_outcomes(two_sided: Optional[dict]) -> list[tuple]:
    """(word, rival, why) of the chosen model against each rival the two-sided grading measured ([] without it)."""
    if not isinstance(two_sided, dict) or not isinstance(two_sided.get("models"), dict):
        return []
    models = two_sided["models"]
    chosen = models.get("chosen") or {}
    if chosen.get("fix_rate") is None:
        return []
    outcomes = []
    for key, who in RIVALS:
        m = models.get(key) or {}
        if m.get("fix_rate") is not None:
            word, why = _both_sides(chosen, m, two_sided.get("n_real_failures"), two_sided.get("n_right_before"))
            outcomes.append((word, _short(who), why))
    return outcomes


def beats_every_rival(record: dict) -> bool:
    """Whether the chosen model beats the control and the baseline on both sides (the two-sided grading), or,
    for a record without it, on the per-sample failure accuracy; what decides a page's success or warning."""
    outcomes = two_sided_outcomes(record.get("two_sided"))
    if outcomes:
        return all(word == "beats" for word, _, _ in outcomes)
    outcomes = _per_sample(record)[1]
    return bool(outcomes) and all(word == "beats" for word, _ in outcomes)


def _measure(chosen: dict) -> str:
    """The failure-test accuracy a record compares by: per sample where measured, else by scenario label."""
    return PER_SAMPLE if chosen.get(PER_SAMPLE) is not None else "failure_test_acc"


def _per_sample(record: dict) -> tuple[list[str], list[tuple]]:
    """(what each rival scored, (word, rival) of the chosen model against it) on the failure-test accuracy."""
    chosen = record.get("chosen") or {}
    lam, key = chosen.get("lambda"), _measure(chosen)
    n_fail = sum(int(s.get("n_test") or 0) for s in record.get("failure_sets") or []) or None
    rivals = {"control": record.get("control"), "baseline": record.get("baseline_chosen")}
    said, outcomes = [], []
    for name, who in RIVALS:
        r = rivals[name]
        if not r or r.get(key) is None or chosen.get(key) is None or (name == "control" and lam == 0):
            continue
        test = f", test {_pct(r['test_acc'])}" if r.get("test_acc") is not None else ""
        said.append(f"{who} {_pct(r[key])}{test}")
        outcomes.append((_compare(chosen[key], r[key], n_fail), _short(who)))
    return said, outcomes


def headline(record: dict, *, n_test_images: Optional[int] = None) -> str:
    """One sentence: the chosen model against the λ=0 control and the UAE-only baseline, saying plainly when
    Defuse ties or loses. ``record``: ``correct/best.json`` or ``correct/sweep.json``. The two-sided grading
    leads when the record has it; else the per-sample failure accuracy (the reviewer's labels) when measured,
    else the scenario-label accuracy; ties are differences within two standard errors."""
    chosen, before = record.get("chosen") or {}, record.get("before") or {}
    lam = chosen.get("lambda")
    lead = two_sided_headline(record.get("two_sided"))
    key = _measure(chosen)
    what = "per sample (the reviewer's labels)" if key == PER_SAMPLE else "by scenario label"
    rivals = {"control": record.get("control"), "baseline": record.get("baseline_chosen")}
    said, outcomes = _per_sample(record)
    mine = (f"Defuse (λ={lam:g}) scores {_pct(chosen[key])} on the failure-test samples {what}"
            + (f" (before {_pct(before[key])})" if before.get(key) is not None else "")
            + (f", test {_pct(chosen['test_acc'])}" if chosen.get("test_acc") is not None else "")
            if lam is not None and chosen.get(key) is not None else "")
    if not mine:
        return lead or "No model chosen yet: the λ sweep has not run."
    if lam == 0:  # the rule kept the control: no λ > 0 did better on the failure validation samples
        mine += ", and that is the λ=0 control itself: no λ > 0 improved on fine-tuning without failure samples"
    text = mine + ("; " + " and ".join(said) if said else "")
    verdict = _verdict(outcomes)
    if verdict:
        test_word = ""
        if n_test_images and rivals["control"] and rivals["control"].get("test_acc") is not None \
                and chosen.get("test_acc") is not None:
            if _compare(chosen["test_acc"], rivals["control"]["test_acc"], n_test_images) == "loses to":
                test_word = ", at a cost in test accuracy against the control"
        text += f": {verdict}{test_word} (ties: within two standard errors)"
    text += "."
    return f"{lead} {text}" if lead else text
