"""AppTest of the Compare page: checkpoints side by side on the regression suite, flips, and its guards."""

import numpy as np
from safetensors.torch import save_file

from defuse.steps.project import load_classifier
from defuse.suite.regression_suite import predict, read_suite
from defuse.workspace import Workspace


def test_compares_the_original_the_chosen_lambda_and_the_export(run_page, demo_done):
    at = run_page("compare", demo_done)
    assert not at.exception and not at.error
    chosen = Workspace(demo_done).load_json("correct/sweep.json")["chosen"]["lambda"]
    tag = "control, chosen" if chosen == 0 else "chosen"
    assert at.multiselect(key="compare-models").value == ["original", f"λ={chosen:g} ({tag})",
                                                          "exported: demo-corrected"]
    options = at.multiselect(key="compare-models").options
    assert any(o.startswith("λ=1") for o in options) and any(o.startswith("λ=0 (control") for o in options)
    assert len(at.get("plotly_chart")) == 2                       # accuracy bars and the flip matrix
    table = at.dataframe[0].value
    assert list(table["on"]) == ["#0", "mean over scenarios", "test set"]
    suite, ws = read_suite(Workspace(demo_done).path("exports/suite")), Workspace(demo_done)
    original = predict(load_classifier(ws)[0], suite.images)[0]
    assert table["original"][0] == np.mean(original == suite.labels)
    assert any("negative flips: original right" in m.value for m in at.markdown)
    at.radio(key="compare-on").set_value("test set").run()
    assert not at.exception and any("Flip matrix on the test set" in c.value for c in at.caption)


def test_one_checkpoint_asks_for_another(run_page, demo_done):
    at = run_page("compare", demo_done)
    at.multiselect(key="compare-models").set_value(["original"]).run()
    assert "Pick at least two checkpoints" in at.info[0].value


def test_without_a_suite_the_page_offers_to_make_it(run_page, project_copy, started):
    root = project_copy("no-suite")
    for f in (root / "exports" / "suite").iterdir():
        f.unlink()
    at = run_page("compare", root)
    assert "needs the regression suite" in at.info[0].value
    at.button(key="make-suite").click().run()
    assert started == [("suite", [])]


def test_a_tampered_suite_is_refused_in_words(run_page, project_copy):
    root = project_copy("tampered")
    npz = root / "exports" / "suite" / "scenarios.npz"
    npz.write_bytes(npz.read_bytes()[:-8] + b"tampered")
    at = run_page("compare", root)
    assert not at.exception
    assert any("was changed or damaged" in e.value for e in at.error)


def test_uploaded_safetensors_weights_run_like_the_original(demo_done, tmp_path):
    from defuse.ui import compare

    ws = Workspace(demo_done)
    model = load_classifier(ws)[0]
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    out = compare.uploaded_outputs(ws, (tmp_path / "w.safetensors").read_bytes())
    assert (out.predictions == compare.outputs(ws, "original", None).predictions).all()


def test_a_suite_older_than_the_labels_is_flagged(run_page, project_copy, started):
    from defuse.steps.label import label_store

    root = project_copy("relabeled")
    with label_store(Workspace(root)) as store:
        store.record(0, "carol", is_failure=True, label=6)     # the same verdict again: the suite is current
    assert not run_page("compare", root).warning
    with label_store(Workspace(root)) as store:
        store.record(0, "alice", is_failure=True, label=5)
        store.record(0, "bob", is_failure=True, label=5)       # now 5 wins: the verdict changed
    at = run_page("compare", root)
    assert not at.exception
    assert any("made before the labels changed" in w.value for w in at.warning)
    at.button(key="remake-suite").click().run()
    assert started == [("suite", [])]
