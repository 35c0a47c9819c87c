"""The Label page always agrees with what was saved (issue 23, point 5): a skip stays a skip, full shortcut labels,
the annotator's name kept, mixed-scenario advice only on failures, and the Correct page never replaces a person's
label with per-sample labels unless the person chooses it."""

from defuse.steps.label import label_store
from defuse.workspace import Workspace


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def test_after_a_skip_the_page_the_form_and_the_toast_all_say_skipped(run_page, project_copy):
    root = project_copy("skip")
    at = run_page("label", root, annotator="dana")
    _button(at, "key-skip").click().run()                      # S on scenario #0
    assert not at.exception
    assert "Scenario #0: skipped (saved)" in [t.value for t in at.toast]
    with label_store(Workspace(root)) as store:
        assert store.decisions(0, annotator="dana")[0].skipped
    at.selectbox(key="label-scenario").set_value(0).run()      # back to #0
    assert any("Your decision so far: **skipped** (preselected below)" in c.value for c in at.caption)
    assert at.radio(key="verdict-0").value == "Skip"           # not "Failure" with no label
    assert _button(at, "key-accept").disabled                   # nothing to accept: no suggestion


def test_the_shortcut_buttons_have_a_row_of_their_own_with_full_labels(run_page, demo_done):
    at = run_page("label", demo_done, annotator="dana")
    rows = [c for c in at.columns if any(b.key == "key-skip" for b in c.button)]
    (column,) = rows
    assert column.weight == 1 / 5                              # one of five, not one of fourteen
    labels = {b.key: b.label for b in at.button if b.key and b.key.startswith("key-")}
    assert labels["key-not"] == "Not a failure" and labels["key-prev"] == "← Previous"


def test_the_annotators_name_is_kept_in_the_address_and_per_project(run_page, demo_done):
    at = run_page("label", demo_done, annotator="ivy")
    assert at.query_params["annotator"] in ("ivy", ["ivy"])      # a reload keeps it
    at = run_page("label", demo_done, **{"annotator-by-project": {str(demo_done): "hal"}})
    assert at.text_input(key="annotator").value == "hal"
    assert "Enter your name to start labeling." not in [i.value for i in at.info]


def test_a_reload_finds_the_name_in_the_address(demo_done, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    monkeypatch.setenv("DEFUSE_HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "pages" / "label.py"), default_timeout=120)
    at.session_state["project"] = str(demo_done)
    at.query_params["annotator"] = "jo"
    at.run()
    assert not at.exception and at.text_input(key="annotator").value == "jo"


def _reviewer(store, j, labels, failures):
    for i, (label, failure) in enumerate(zip(labels, failures, strict=True)):
        store.record(j, "auto-reviewer", is_failure=failure, label=label, sample_index=i, reviewer="beef")


def test_mixed_advice_only_where_the_scenario_is_a_failure(run_page, project_copy):
    root = project_copy("mixed-advice")
    with label_store(Workspace(root)) as store:   # #1: mixed labels, but read as the classifier reads them
        _reviewer(store, 1, [4] * 6 + [9] * 4, [False] * 10)
    at = run_page("label", root, annotator="kim")
    at.selectbox(key="label-scenario").set_value(1).run()
    assert not any("Mixed scenario" in w.value for w in at.warning)
    assert any("Mixed scenario" in c.value for c in at.caption)          # said, as a caption, not advice
    with label_store(Workspace(root)) as store:
        _reviewer(store, 1, [4] * 6 + [9] * 4, [True] * 10)
    at = run_page("label", root, annotator="kim")
    at.selectbox(key="label-scenario").set_value(1).run()
    assert any("Mixed scenario" in w.value for w in at.warning)


def test_correct_keeps_a_persons_label_on_a_mixed_scenario_unless_chosen(run_page, project_copy):
    root = project_copy("mixed-person")
    with label_store(Workspace(root)) as store:   # #0: alice and bob said 6; the reviewer reads 6 and 5
        _reviewer(store, 0, [6] * 5 + [5] * 5, [True] * 10)
    at = run_page("correct", root)
    assert not at.exception
    box = next(s for s in at.selectbox if s.label == "Labels of the failure samples D_f")
    assert box.value == "scenario"
    assert any("A person labeled #0: their label is kept" in w.value for w in at.warning)
    root = project_copy("mixed-reviewer")
    with label_store(Workspace(root)) as store:   # #2: only the reviewer decided it
        _reviewer(store, 2, [3] * 5 + [8] * 5, [True] * 10)
    at = run_page("correct", root)
    box = next(s for s in at.selectbox if s.label == "Labels of the failure samples D_f")
    assert box.value == "reviewer"
