"""The regression suite (`defuse suite`) and the check of a classifier against it (`defuse check`)."""

import json
import shutil

import numpy as np
import pytest
import torch

from defuse.cli.main import main
from defuse.distill.sampling import ReviewSamples, ScenarioDraw
from defuse.nets import checkpoints
from defuse.steps.correct import failure_sets
from defuse.steps.distill import load_scenarios
from defuse.steps.project import load_classifier
from defuse.suite.check import SuitePredictions, Thresholds, check_predictions, count_flips
from defuse.suite.regression_suite import RegressionSuite, SuiteScenario, predict, read_suite, to_uint8, write_suite
from defuse.workspace import Workspace


def _cli(capsys, *argv):
    code = main([*map(str, argv), "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def built(demo_done, tmp_path_factory):
    """A suite of the demo-like project with 24 samples per scenario and its test split, and the project copy."""
    root = tmp_path_factory.mktemp("suite") / "demo"
    shutil.copytree(demo_done, root, ignore=shutil.ignore_patterns("jobs"))
    out = root.parent / "suite"
    assert main(["suite", "-w", str(root), "--out", str(out), "--samples", "24", "--with-test", "--device", "cpu",
                 "--quiet"]) == 0
    return root, out


def _variant(root, dest, label: int, shift: float) -> str:
    """The project's classifier with the last layer's bias of ``label`` moved by ``shift``, saved as a checkpoint."""
    model, meta = load_classifier(Workspace(root))
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.bias[label] += shift
    checkpoints.save_model(model, dest, kind="classifier", architecture=meta["architecture"],
                           arch_kwargs=meta["arch_kwargs"], class_names=meta.get("class_names"))
    return str(dest.with_suffix(".json"))


def test_suite_freezes_the_confirmed_scenarios_with_their_predictions(built):
    root, out = built
    suite, manifest = read_suite(out), json.loads((out / "manifest.json").read_text())
    assert [(s.id, s.label, s.n) for s in suite.scenarios] == [(0, 6, 24)]  # the conftest labels: only #0, as 6
    assert "images of 6" in suite.scenarios[0].description and "2 annotator(s)" in suite.scenarios[0].description
    assert suite.images.shape == (24, 1, 32, 32) and suite.images.dtype == np.uint8
    assert (suite.labels == 6).all() and (suite.sample_labels == -1).all()   # the demo has no automatic reviewer
    classifier, _ = load_classifier(Workspace(root))
    preds, conf = predict(classifier, suite.images)
    assert (preds == suite.original_predictions).all() and np.allclose(conf, suite.original_confidence)
    assert suite.has_test and len(suite.test_images) == manifest["n_test"] > 0
    assert manifest["format_version"] == 1 and set(manifest["files"]) == {"scenarios.npz", "scenarios.json",
                                                                           "test.npz"}
    settings = manifest["settings"]
    assert settings["n_per_scenario"] == 24 and settings["stream"] == "scenario_stream(seed, j, 'suite')"
    assert settings["fingerprints"]["classifier/model.json"] == Workspace(root).fingerprint("classifier/model.json")


def test_suite_samples_are_none_of_the_review_finetune_val_or_test_draws(built):
    root, out = built
    suite, ws = read_suite(out), Workspace(root)
    (fs,) = failure_sets(ws, ScenarioDraw(24), device="cpu")
    sc, vae = load_scenarios(ws), checkpoints.load_model(ws.path("vae/model.json"))[0]
    review = ReviewSamples(vae, load_classifier(ws)[0], sc, tau=0.5, seed=0).render(0, 10, device="cpu").images
    others = np.concatenate([to_uint8(x) for x in (fs.finetune, fs.val, fs.test, review)]).reshape(82, -1)
    mine = suite.images.reshape(len(suite), -1)
    distance = np.abs(mine[:, None, :].astype(int) - others[None, :, :].astype(int)).sum(-1)
    assert distance.min() > 0                         # not one suite image equals an image drawn for anything else


def test_check_the_original_the_corrected_and_a_worse_model(built, tmp_path, capsys):
    root, out = built
    suite = read_suite(out)
    original = str(root / "classifier" / "model.json")
    code, text, _ = _cli(capsys, "check", "--suite", out, "--classifier", original, "--baseline", "original",
                         "--json", tmp_path / "orig.json")
    report = json.loads((tmp_path / "orig.json").read_text())
    assert code == 0 and text.strip().endswith("PASSED")
    assert report["scenarios"][0]["accuracy"] == pytest.approx(np.mean(suite.original_predictions == 6))
    assert report["negative_flips"] == 0 and report["positive_flips"] == 0 and report["passed"] is True

    corrected = str(root / "exports" / "demo-corrected.json")
    code, text, _ = _cli(capsys, "check", "--suite", out, "--classifier", corrected, "--baseline", original,
                         "--json", tmp_path / "corr.json")
    report = json.loads((tmp_path / "corr.json").read_text())
    model = checkpoints.load_model(corrected)[0]
    mine, theirs = predict(model, suite.test_images)[0], suite.test_original_predictions
    assert report["test_accuracy"] == pytest.approx(np.mean(mine == suite.test_labels))
    scenario_preds = predict(model, suite.images)[0]
    assert report["negative_flips"] == count_flips(suite.test_labels, theirs, mine)[0] + count_flips(
        suite.labels, suite.original_predictions, scenario_preds)[0]

    fixed = _variant(root, tmp_path / "fixed", label=6, shift=1000.0)     # says 6 whatever it sees
    worse = _variant(root, tmp_path / "worse", label=6, shift=-1000.0)    # never says 6
    code, text, _ = _cli(capsys, "check", "--suite", out, "--classifier", fixed, "--min-accuracy", "0.9")
    assert code == 0 and "#0" in text and "100.0%" in text
    code, text, _ = _cli(capsys, "check", "--suite", out, "--classifier", worse, "--baseline", fixed,
                         "--min-accuracy", "0.9", "--json", tmp_path / "worse.json")
    report = json.loads((tmp_path / "worse.json").read_text())
    assert code == 1 and report["passed"] is False
    assert "FAILED: scenario #0 (label 6): accuracy 0.0% < 90.0%" in text
    n_test6 = int((suite.test_labels == 6).sum())           # the fixed model gets exactly the test 6s right
    assert report["negative_flips"] == 24 + n_test6 and report["scenarios"][0]["negative_flips"] == 24


def test_a_tampered_or_foreign_suite_is_refused(built, tmp_path, capsys):
    _, out = built
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    data = bytearray((bad / "scenarios.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "scenarios.npz").write_bytes(bytes(data))
    code, _, err = _cli(capsys, "check", "--suite", bad, "--classifier", "unused.json")
    assert code == 2 and "scenarios.npz does not match the sha256 in manifest.json" in err
    assert "Traceback" not in err
    (bad / "manifest.json").unlink()
    code, _, err = _cli(capsys, "check", "--suite", bad, "--classifier", "unused.json")
    assert code == 2 and "is not a Defuse suite (no manifest.json)" in err


def _hand_made(n_test: int = 0) -> RegressionSuite:
    ids = np.array([0, 0, 0, 0, 2, 2])
    test = {}
    if n_test:
        test = {"test_images": np.zeros((n_test, 1, 2, 2), np.uint8), "test_labels": np.array([1, 1, 0]),
                "test_original_predictions": np.array([1, 0, 0])}
    return RegressionSuite(images=np.zeros((6, 1, 2, 2), np.uint8), labels=np.array([1, 1, 1, 1, 0, 0]),
                           sample_labels=np.array([1, 2, -1, 1, 0, -1]), scenario_ids=ids,
                           original_predictions=np.array([0, 0, 0, 0, 1, 1]),
                           original_confidence=np.ones(6, np.float32),
                           scenarios=(SuiteScenario(0, 1, "a", 4), SuiteScenario(2, 0, "b", 2)),
                           class_names=("a", "b", "c"), **test)


def test_flips_and_thresholds_on_a_hand_made_case():
    suite = _hand_made(n_test=3)
    baseline = np.array([1, 1, 0, 0, 0, 1])   # right on samples 0, 1, 4
    model = np.array([1, 0, 1, 0, 1, 0])      # right on 0, 2, 5: negative flips 1 and 4, positive 2 and 5
    r = check_predictions(suite, SuitePredictions(model, np.array([0, 1, 0])),
                          baseline=SuitePredictions(baseline, np.array([1, 1, 1])),
                          thresholds=Thresholds(min_accuracy=0.6))
    assert [(s.id, s.n, s.accuracy, s.negative_flips, s.positive_flips) for s in r.scenarios] == \
        [(0, 4, 0.5, 1, 1), (2, 2, 0.5, 1, 1)]
    assert r.test_accuracy == pytest.approx(2 / 3) and r.baseline_test_accuracy == pytest.approx(2 / 3)
    assert (r.negative_flips, r.positive_flips) == (2 + 1, 2 + 1)   # test: sample 0 lost, sample 2 gained
    assert not r.passed and [f.split(":")[0] for f in r.failures] == ["scenario #0 (label 1)", "scenario #2 (label 0)"]
    per_sample = check_predictions(suite, SuitePredictions(model), labels="sample")   # -1 samples left out
    assert [(s.n, s.accuracy) for s in per_sample.scenarios] == [(3, 1 / 3), (1, 0.0)]
    assert count_flips(np.array([0, 1]), np.array([0, 1]), np.array([1, 0])) == (2, 0)
    with pytest.raises(ValueError, match="min-accuracy must be a share in"):
        Thresholds(min_accuracy=90)


def test_writing_a_suite_never_clobbers_other_folders(tmp_path):
    suite = _hand_made()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not a Defuse suite"):
        write_suite(suite, other)
    assert (other / "keep.txt").read_text() == "mine"
    write_suite(suite, tmp_path / "s")
    write_suite(suite, tmp_path / "s")                       # replacing a suite is fine, and leaves no temp folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "s"]
    back = read_suite(tmp_path / "s")
    assert (back.images == suite.images).all() and (back.sample_labels == suite.sample_labels).all()
    assert back.scenarios == suite.scenarios and back.class_names == suite.class_names


def test_the_export_bundle_carries_the_suite(demo_done):
    from defuse.ui.correct import bundle_files

    ws = Workspace(demo_done)
    names = [name for _, name in bundle_files(ws, ws.load_json("exports/model-card.json"))]
    assert {"suite/manifest.json", "suite/scenarios.npz", "suite/scenarios.json"} <= set(names)
    assert "demo-corrected.safetensors" in names
    read_suite(ws.path("exports/suite"))                    # and it verifies
