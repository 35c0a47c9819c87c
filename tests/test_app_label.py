"""AppTest of the Label page: guard, one scenario at a time, decisions saved at once, hints, agreement."""

from defuse.steps.label import label_store
from defuse.workspace import Workspace


def test_without_scenarios_the_page_says_what_to_do(run_page, fresh_demo):
    at = run_page("label", fresh_demo)
    assert not at.exception
    assert "needs failure scenarios" in at.info[0].value


def test_an_annotator_name_comes_first(run_page, demo_done):
    at = run_page("label", demo_done)
    assert not at.exception
    assert "Enter your name to start labeling." in [i.value for i in at.info]
    assert at.slider[0].value == 0.5                                      # τ of MNIST (§4.1)


def test_a_decision_is_saved_and_the_next_scenario_shown(run_page, project_copy):
    root = project_copy("label")
    at = run_page("label", root, annotator="dana")
    assert not at.exception and not at.error
    assert at.get("progress")[0].proto.text == f"0 of {_n(root)} reviewed by dana"
    assert at.selectbox(key="label-scenario").value == 0 and len(at.get("image")) == 1
    at.radio(key="verdict-0").set_value("Not a failure")
    at.button[-1].click().run()                                            # Save decision
    assert not at.exception
    with label_store(Workspace(root)) as store:
        (d,) = store.decisions(0, annotator="dana")
    assert d.is_failure is False and d.label is None
    assert at.get("progress")[0].proto.text == f"1 of {_n(root)} reviewed by dana"
    assert at.selectbox(key="label-scenario").value == 1                  # on to the next one
    at.radio(key="label-1").set_value(6)
    at.button[-1].click().run()                                            # Failure, true label 6
    with label_store(Workspace(root)) as store:
        assert store.decisions(1, annotator="dana")[0].label == 6


def test_a_failure_without_its_label_is_refused(run_page, project_copy):
    root = project_copy("label-bad")
    at = run_page("label", root, annotator="erin")
    at.button[-1].click().run()                                            # "Failure" preselected, no label
    assert "a failure needs its true label" in at.error[0].value
    with label_store(Workspace(root)) as store:
        assert store.decisions(annotator="erin") == []


def test_the_automatic_reviewer_gives_a_hint_and_the_agreement_table(run_page, project_copy, started):
    root = project_copy("label-hint")
    with label_store(Workspace(root)) as store:
        for i in range(10):
            store.record(0, "auto-reviewer", is_failure=i < 8, label=6, sample_index=i)
    at = run_page("label", root, annotator="frank")
    hint = next(i.value for i in at.info if "Hint" in i.value)
    assert "a failure" in hint and "**6**" in hint and "8 of 10" in hint
    assert at.radio(key="label-0").value == 6                              # the hint's label preselected
    assert "Agreement between annotators" in [s.value for s in at.subheader] and len(at.dataframe) == 1
    next(b for b in at.button if b.label == "Run auto-reviewer").click().run()
    # the slider was not moved: no --tau, so the reviewer chooses τ per scenario before it labels
    assert started == [("label", ["--reviewer", "auto"])]


def _n(root) -> int:
    return len(Workspace(root).load_arrays("distill/scenarios.npz")["weights"])


def test_the_annotator_name_survives_a_visit_to_another_page(run_page, demo_done):
    # Streamlit drops a widget's state while another page is shown; the page keeps the name in its own key
    at = run_page("label", demo_done, **{"annotator-kept": "alice"})
    assert not at.exception and at.text_input(key="annotator").value == "alice"


def test_the_agreement_table_shows_no_agreement_for_a_lone_voter_and_no_none():
    from defuse.ui.label import agreement_frame

    rows = [{"scenario": 0, "kind": "scenario", "annotators": 2, "skipped": 0, "votes": "6: 2", "majority": "6",
             "agreement": 1.0, "agreement_se": float("nan")},
            {"scenario": 1, "kind": "samples", "annotators": 1, "skipped": 0, "votes": "3: 10", "majority": "3",
             "agreement": 1.0, "agreement_se": 0.0},
            {"scenario": 2, "kind": "samples", "annotators": 3, "skipped": 0, "votes": "3: 25, 5: 5",
             "majority": "3", "agreement": 0.8333, "agreement_se": 0.05}]
    frame = agreement_frame(rows)
    assert frame["agreement"].tolist() == ["100%", "–", "83%"] and frame["± (s.e.)"].tolist() == ["–", "–", "5%"]


def _reviewed_copy(project_copy, name: str, scenario: int, label: int, is_failure: bool = True):
    """A copy of the demo project where the automatic reviewer (fingerprint f00d) labeled 10 samples of one
    scenario ``label``, each a failure or not."""
    root = project_copy(name)
    with label_store(Workspace(root)) as store:
        for i in range(10):
            store.record(scenario, "auto-reviewer", is_failure=is_failure, label=label, sample_index=i,
                         reviewer="f00d")
    return root


def test_conflicts_with_the_reviewer_are_listed_and_the_person_decides(run_page, project_copy):
    root = _reviewed_copy(project_copy, "label-conflict", 0, 3, is_failure=False)  # alice, bob: failure, 6
    at = run_page("label", root, annotator="gina")
    assert not at.exception
    assert "Conflicts (1)" in [s.value for s in at.subheader]
    conflict = next(m.value for m in at.markdown if "#0" in m.value and "reviewer says" in m.value)
    assert "people decided failure, true label 6" in conflict and "people's decision counts" in conflict
    caption = next(c.value for c in at.caption if c.value.startswith("Decided by people"))
    assert "alice, bob" in caption and "failure, true label 6" in caption


def test_a_scenario_only_the_reviewer_decided_says_so(run_page, project_copy):
    root = _reviewed_copy(project_copy, "label-filled", 2, 4)
    at = run_page("label", root, annotator="hal", **{"label-scenario": 2})
    caption = next(c.value for c in at.caption if c.value.startswith("Decided by the automatic reviewer"))
    assert "auto-reviewer (f00d)" in caption and "only fills scenarios no person has decided" in caption


def test_the_reviewers_name_is_refused_for_a_person(run_page, demo_done):
    at = run_page("label", demo_done, annotator="auto-reviewer")
    assert "the automatic reviewer's name" in at.error[0].value and not at.get("image")


def test_a_revisited_scenario_preselects_the_earlier_answer(run_page, project_copy):
    root = project_copy("label-again")
    at = run_page("label", root, annotator="alice", **{"label-scenario": 0})   # alice said failure, 6
    assert at.radio(key="verdict-0").value == "Failure" and at.radio(key="label-0").value == 6
    at = run_page("label", root, annotator="alice", **{"label-scenario": 1})   # alice said not a failure
    assert at.radio(key="verdict-1").value == "Not a failure"


def test_one_key_per_label_and_decision_records_and_moves_on(run_page, project_copy):
    root = project_copy("label-keys")
    at = run_page("label", root, annotator="ivy")
    keys = {b.key: b.proto.shortcut.lower() for b in at.button if (b.key or "").startswith("key-")}
    assert keys["key-label-6"] == "6" and keys["key-not"] == "n" and keys["key-skip"] == "s"
    assert keys["key-accept"] == "a" and keys["key-prev"] == "left" and keys["key-next"] == "right"
    at.button(key="key-label-6").click().run()                          # key 6: failure, true label 6
    with label_store(Workspace(root)) as store:
        (d,) = store.decisions(0, annotator="ivy")
    assert (d.is_failure, d.label) == (True, 6)
    assert at.selectbox(key="label-scenario").value == 1
    at.button(key="key-not").click().run()                              # N on scenario 1
    with label_store(Workspace(root)) as store:
        assert store.decisions(1, annotator="ivy")[0].is_failure is False
    at.button(key="key-prev").click().run()                             # ← back to scenario 1
    assert at.selectbox(key="label-scenario").value == 1


def test_accept_saves_the_suggestion(run_page, project_copy):
    root = _reviewed_copy(project_copy, "label-accept", 0, 5)
    at = run_page("label", root, annotator="jo", **{"label-scenario": 0})
    at.button(key="key-accept").click().run()
    with label_store(Workspace(root)) as store:
        (d,) = store.decisions(0, annotator="jo")
    assert (d.is_failure, d.label) == (True, 5)


def test_the_samples_leave_room_for_their_expand_button_under_the_scenario_heading(run_page, demo_done):
    """st.image's hover toolbar (the expand button) sits above the image: a space between it and the heading
    keeps the heading readable (tests/test_browser.py measures the two boxes in a real browser)."""
    at = run_page("label", demo_done, annotator="dana")
    assert not at.exception
    kids = list(at.main.children.values())
    image = next(i for i, k in enumerate(kids) if k.type == "image")
    assert [k.type for k in kids[image - 2:image + 1]] == ["markdown", "space", "image"]
    assert kids[image - 2].value.startswith("**Scenario #0**")
