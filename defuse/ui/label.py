"""The Label page: one failure scenario at a time, the decision form, hints, progress, agreement."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import streamlit as st

from ..data.render import prediction_captions
from ..distill.sampling import tau_of
from ..label.provenance import reviewer_verdict
from ..label.purity import purity_of, purity_words
from ..label.verdicts import MIXED_FAILURE_SHARE, PAPER_RHO, agreement_table
from ..steps.label import label_store
from ..workspace import LABELS, Workspace
from . import cache
from .gallery import show_grid
from .ranking import top_counts

VERDICTS = ("Failure", "Not a failure", "Skip")


def annotator_name(ws: Workspace) -> str:
    """The annotator's name, kept for the session per project and in the address bar (a reload keeps it)."""
    # Streamlit drops a widget's state when another page is shown: keep the name in keys of our own.
    kept = st.session_state.setdefault("annotator-by-project", {})
    if "annotator" not in st.session_state:
        from_url = st.query_params.get("annotator", "")
        st.session_state["annotator"] = (kept.get(str(ws.root)) or st.session_state.get("annotator-kept")
                                         or (from_url if isinstance(from_url, str) else ""))
    name = st.text_input("Your name (annotator)", key="annotator", placeholder="e.g. alice",
                         help="Decisions are stored per annotator; several annotators give an agreement table. "
                         "Your name is kept while you work on this project, and in the page's address.")
    st.session_state["annotator-kept"] = name
    kept[str(ws.root)] = name
    if name.strip():
        st.query_params["annotator"] = name.strip()
    elif "annotator" in st.query_params:
        del st.query_params["annotator"]
    return name.strip()


def reviewed(ws: Workspace, annotator: str) -> set:
    if not ws.exists(LABELS):
        return set()
    with label_store(ws) as store:
        return set(store.reviewed_scenarios(annotator=annotator))


def pick_scenario(n: int, done: set) -> int:
    """The scenario to show: kept in the session, else the first one this annotator has not reviewed."""
    todo = [j for j in range(n) if j not in done]
    if "label-next" in st.session_state:  # set after a decision: the widget's own key is taken by then
        st.session_state["label-scenario"] = st.session_state.pop("label-next")
    current = st.session_state.get("label-scenario")
    # not an index (a browser run once sent one back as text after a shortcut): start from the first to do
    if not isinstance(current, int) or current >= n:
        st.session_state["label-scenario"] = todo[0] if todo else 0
    return st.selectbox("Scenario", range(n), key="label-scenario",
                        format_func=lambda j: f"#{j}{' ✓' if j in done else ''}")


def hint(ws: Workspace, j: int, preds, annotator: str) -> tuple[int | None, bool | None, str]:
    """What to preselect: (label, whether a failure, the decision's radio choice). Your earlier decision wins,
    then the automatic reviewer's suggestion; (None, None, "Failure") without either."""
    said = Counter(int(p) for p in preds).most_common(1)[0]
    st.caption(f"The classifier labels {said[1]} of these {len(preds)} samples as **{said[0]}**.")
    if not ws.exists(LABELS):
        return None, None, VERDICTS[0]
    with label_store(ws) as store:
        auto = [d for d in store.decisions(j) if not d.by_person and not d.skipped]
        mine = [d for d in store.decisions(j, annotator=annotator) if d.sample_index is None]
    earlier, skipped = None, bool(mine) and mine[0].skipped
    if mine:
        d = mine[0]
        said_before = "skipped" if d.skipped else f"failure, true label {d.label}" if d.is_failure else "not a failure"
        st.caption(f"Your decision so far: **{said_before}** (preselected below). Saving again replaces it "
                   "(the history keeps both).")
        earlier = None if skipped else (d.label, d.is_failure, _choice(d.is_failure))
    if not auto:  # after a skip, "Skip" stays preselected; A (accept) then has nothing to accept
        return earlier or (None, None, VERDICTS[2] if skipped else VERDICTS[0])
    labels = Counter(d.label for d in auto if d.label is not None)
    disagree = sum(bool(d.is_failure) for d in auto)
    v = reviewer_verdict(auto, PAPER_RHO)
    failure = bool(v and v.is_failure)
    label = v.label if failure else labels.most_common(1)[0][0] if labels else None
    why = (f" — a mixed scenario: {disagree} of {len(auto)} samples misread ({v.disagree_share:.0%}), not a majority, "
           f"but at least {MIXED_FAILURE_SHARE:.0%} is offered as a failure") if v is not None and v.mixed else ""
    st.info(f"Hint — the automatic reviewer sees **{'a failure' if failure else 'not a failure'}**{why}: it "
            f"labels the misread samples **{label}** and disagrees with the classifier on {disagree} of {len(auto)}."
            if failure else f"Hint — the automatic reviewer sees **not a failure**: it labels most samples **{label}** "
            f"and disagrees with the classifier on {disagree} of {len(auto)}.", icon="🤖")
    purity = purity_of(d.label for d in auto if d.sample_index is not None and d.label is not None)
    counts = (earlier[1] if earlier else failure) is True  # mixed-scenario advice only where it is a failure
    if purity is not None and purity.mixed and counts:
        st.warning(purity_words(purity, ws.project["class_names"]))
    elif purity is not None:
        st.caption(purity_words(purity, ws.project["class_names"]))
    return earlier or (label, failure, VERDICTS[2] if skipped else _choice(failure))


def _choice(is_failure: bool | None) -> str:
    """The decision radio's option for an answer: skipped (None), failure or not."""
    return VERDICTS[2] if is_failure is None else VERDICTS[0] if is_failure else VERDICTS[1]


def decision_form(names: list, default_label: int | None, j: int, default_choice: str = VERDICTS[0]) -> tuple | None:
    """(is_failure or None for skip, label, note) when submitted. Enter in the note field submits too.

    ``default_choice``: the decision preselected (your earlier one, else the automatic reviewer's; else "Failure").
    """
    with st.form(f"decision-{j}", clear_on_submit=True):
        verdict = st.radio("Decision", VERDICTS, horizontal=True, key=f"verdict-{j}",
                           index=VERDICTS.index(default_choice))
        label = st.radio("True label (for a failure)", range(len(names)), horizontal=True, key=f"label-{j}",
                         index=default_label, help="Preselected: the automatic reviewer's label, if it ran.",
                         format_func=lambda c: str(names[c]))
        note = st.text_input("Note (optional) — Enter saves", key=f"note-{j}")
        go = st.form_submit_button("Save decision", type="primary")
    if not go:
        return None
    if verdict == "Skip":
        return None, None, note
    if verdict == "Failure" and label is None:
        raise ValueError("a failure needs its true label: pick it under 'True label', then save again")
    return verdict == "Failure", (int(label) if verdict == "Failure" else None), note


def record(ws: Workspace, j: int, annotator: str, is_failure, label, note) -> str:
    """Save a decision; returns what was saved, in words (for the toast)."""
    with label_store(ws) as store:
        store.record(j, annotator, is_failure=is_failure, label=label, note=note or None)
    said = "skipped" if is_failure is None else f"failure, true label {label}" if is_failure else "not a failure"
    return f"Scenario #{j}: {said} (saved)"


def tau_control(where, ws: Workspace, tau) -> tuple:
    """τ as the page uses it, and the flags for the reviewer's job. Per-scenario τ (chosen by the reviewer)
    is shown, not asked; one τ for every scenario is a slider, passed on only when it was moved (else the
    reviewer chooses τ per scenario before it labels)."""
    if isinstance(tau, tuple):
        where.caption(f"τ per scenario, chosen by the reviewer so that 90% of a scenario's samples carry its label "
                      f"({min(tau):g} to {max(tau):g})")
        return tau, []
    picked = where.slider("τ — sample diversity (paper: 0.5 for MNIST, 0.01 for SVHN/signs)", 0.01, 1.0,
                          float(tau), 0.01)
    return picked, ([] if picked == float(tau) else ["--tau", str(picked)])


def show_samples(ws: Workspace, j: int, n: int, tau):
    sc = cache.scenarios(ws)
    true, pred = sc.true_label_mix[j], sc.pred_label_mix[j]
    st.markdown(f"**Scenario #{j}** · weight {sc.weights[j]:.3f} · {int(sc.sizes[j]):,} failures · their source "
                f"images' labels: {_top(true)} · the classifier said: {_top(pred)}")
    images, preds, conf = cache.scenario_samples(ws, j, n, tau)
    show_grid(images, captions=prediction_captions(preds, conf), ncol=8, scale=3, toolbar_room=True,
              caption=f"{n} samples of scenario #{j} at τ={tau_of(tau, j):g}; the classifier's label and confidence "
                      "on each")
    return preds


def _top(counts, k: int = 2) -> str:
    return top_counts(counts, k)


def render_agreement(ws: Workspace) -> None:
    if not ws.exists(LABELS):
        return
    with label_store(ws) as store:
        people = store.annotators()
        if len(people) < 2:
            return
        rows = agreement_table(store)
        csv = _csv(store)
    st.subheader("Agreement between annotators")
    st.caption(f"Annotators: {', '.join(people)}. 'samples' rows are the automatic reviewer's per-sample labels.")
    st.dataframe(agreement_frame(rows), hide_index=True, width="stretch")
    st.download_button("Download all decisions (CSV)", csv, file_name=f"{ws.name}-labels.csv", mime="text/csv")


def agreement_frame(rows: list[dict]) -> pd.DataFrame:
    """The table as shown: agreement only where two or more annotators voted (one always 'agrees'), and
    its standard error only where there is one (per-sample rows), "–" elsewhere."""
    def pct(v, row):
        return "–" if row["annotators"] < 2 or v is None or v != v else f"{v:.0%}"
    shown = [{**r, "agreement": pct(r["agreement"], r), "agreement_se": pct(r["agreement_se"], r)} for r in rows]
    return pd.DataFrame(shown).rename(columns={"agreement_se": "± (s.e.)"})


def _csv(store) -> str:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "labels.csv")
        store.to_csv(path)
        with open(path, encoding="utf-8") as f:
            return f.read()
