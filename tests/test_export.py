"""Export of a corrected classifier: loadable checkpoint (safetensors or TorchScript) and model card."""

import json

import pytest
import torch

from defuse.correct.export import CorrectionRecord, card_markdown, export_corrected
from defuse.correct.sweep import CorrectConfig, FailureSet, correct
from defuse.nets.architectures import PaperCNN
from defuse.nets.checkpoints import import_external, load_classifier, load_model, save_model
from defuse.runtime.progress import RunOptions
from tests.toys import bar_images, tiny_image_data

ARCH_KWARGS = dict(channels=1, image_size=32, num_classes=4, width=8)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks on a shared CPU: a second thread only adds contention
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return tiny_image_data(n_train=128)


@pytest.fixture(scope="module")
def failure_sets():
    x, y = bar_images(96, seed=7)
    zeros = x[y == 0]
    return [FailureSet(4, 2, zeros[:8], zeros[8:16], zeros[16:24])]


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    torch.manual_seed(0)
    model = PaperCNN(**ARCH_KWARGS).eval()
    meta = save_model(model, tmp_path_factory.mktemp("orig") / "classifier", kind="classifier",
                      architecture="paper-cnn", arch_kwargs=ARCH_KWARGS, class_names=["a", "b", "c", "d"])
    return model, meta


def sweep_of(model, data, failure_sets):
    cfg = CorrectConfig(lambdas=(0.1, 10.0), epochs=1, batch_size=64, parallel="off")
    uae = (failure_sets[0].finetune, torch.full((8,), 2))
    return correct(model, data, failure_sets, cfg, baseline=uae, run=RunOptions(device="cpu"))


def test_export_round_trip_and_model_card(original, data, failure_sets, tmp_path):
    model, meta = original
    sweep = sweep_of(model, data, failure_sets)
    corrected = sweep.model()
    record = CorrectionRecord(sweep, [s.summary() for s in failure_sets], data)
    card = export_corrected(corrected, meta, tmp_path, record, name="demo-corrected")
    loaded, sidecar = load_model(tmp_path / "demo-corrected.json", kind="classifier")
    x = data.test.images[:16]
    assert torch.equal(loaded(x), corrected(x))
    assert sidecar["architecture"] == "paper-cnn" and sidecar["arch_kwargs"] == ARCH_KWARGS
    assert sidecar["correction"]["lambda"] == sweep.chosen["lambda"]
    assert sidecar["corrected_from"]["sha256"] == meta["sha256"]

    on_disk = json.loads((tmp_path / "model-card.json").read_text())
    assert on_disk == json.loads(json.dumps(card))
    for key in ("name", "created", "defuse_version", "data", "scenarios", "correction", "metrics", "files"):
        assert key in card
    assert card["scenarios"][0] == {"scenario_id": 4, "label": 2, "n_finetune": 8, "n_val": 8, "n_test": 8,
                                    "n_reviewed": 0, "finetune_labels": "scenario",
                                    "finetune_share_scenario_label": None, "agreed": None}
    assert card["correction"]["rule"] == "tolerance" and card["correction"]["lambda"] == sweep.chosen["lambda"]
    assert card["correction"]["failure_labels"] == "scenario" and card["correction"]["tie_standard_errors"] == 2.0
    assert "labeled with the scenario's label (the paper)" in card_markdown(card)
    assert set(card["metrics"]) == {"before", "control", "after", "baseline"}
    assert card["metrics"]["after"]["test_acc"] == sweep.chosen["test_acc"]
    assert card["metrics"]["baseline"]["lambda"] == sweep.baseline_chosen["lambda"]
    assert card["data"]["num_classes"] == 4

    md = (tmp_path / "model-card.md").read_text()
    assert f"λ = {sweep.chosen['lambda']:g}" in md
    assert f"{100 * sweep.before['test_acc']:.1f}%" in md and f"{100 * sweep.chosen['failure_test_acc']:.1f}%" in md
    assert "before correction" in md and "after correction" in md and "baseline" in md
    assert "| 4 | 2 (c) |" in md and "chosen by the rule “tolerance”" in md
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_torchscript_original_is_exported_as_torchscript_too(original, data, failure_sets, tmp_path):
    model, _ = original
    traced = torch.jit.trace(model, data.test.images[:1])
    torch.jit.save(traced, str(tmp_path / "orig.pt"))
    import_external(tmp_path / "orig.pt", tmp_path / "ts/classifier", architecture="torchscript",
                    class_names=["a", "b", "c", "d"])
    ts_model, ts_meta = load_classifier(tmp_path / "ts/classifier.json", trust_code=True)
    sweep = sweep_of(ts_model, data, failure_sets)
    corrected = sweep.model()
    # a DatasetSpec holds no image shape: tracing takes it from the sweep
    export_corrected(corrected, ts_meta, tmp_path / "out", CorrectionRecord(sweep, [s.summary() for s in failure_sets],
                                                                            data.spec), name="fixed")
    loaded, sidecar = load_classifier(tmp_path / "out/fixed.json")
    x = data.test.images[:16]
    assert sidecar["weights_file"] == "fixed.ts" and (tmp_path / "out/fixed.safetensors").exists()
    torch.testing.assert_close(loaded(x), corrected(x))


def test_bad_names_are_refused(original, data, failure_sets, tmp_path):
    model, meta = original
    sweep = sweep_of(model, data, failure_sets)
    with pytest.raises(ValueError, match="plain file name"):
        export_corrected(model, meta, tmp_path, CorrectionRecord(sweep, [], {}), name="../x")
    with pytest.raises(ValueError, match="lacks 'architecture'"):
        export_corrected(model, {}, tmp_path, CorrectionRecord(sweep, [], {}), name="x")
