"""AppTest of the Setup page: data, classifier (demo, path, upload safety, train) and VAE."""

import collections

import pytest
import torch

from defuse.data import DatasetSpec
from defuse.project import init_project
from defuse.ui.sidebar import safe_file_name


@pytest.fixture()
def blank(tmp_path):
    return init_project(tmp_path / "blank", DatasetSpec(source="mnist-sample")).root


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_a_project_without_models(run_page, empty_project):
    at = run_page("setup", empty_project)
    assert not at.exception and not at.error
    assert "3,500 training, 500 validation, 1,000 test images · 10 classes" in " ".join(m.value for m in at.markdown)
    assert _captions(at).count("None yet.") == 2
    assert at.radio(key="clf-source").options[0] == "Demo classifier"


def test_the_demo_models_with_their_figures_and_reconstructions(run_page, demo_done):
    at = run_page("setup", demo_done)
    assert not at.exception and not at.error
    assert "test accuracy 93.2%" in _captions(at) and "classifier accuracy on reconstructions" in _captions(at)
    assert any("their reconstructions" in c for image in at.get("image") for c in image.captions)


def test_importing_the_demo_classifier(run_page, blank):
    at = run_page("setup", blank)
    next(b for b in at.button if b.label.startswith("Use the demo classifier")).click().run()
    assert not at.exception and not at.error
    assert (blank / "classifier" / "model.json").exists()
    assert "Imported the demo classifier." in [s.value for s in at.success]


def test_a_missing_file_is_explained(run_page, blank):
    at = run_page("setup", blank)
    at.radio(key="clf-source").set_value("A file on this machine").run()
    at.text_input[0].input(str(blank / "nope.pt"))
    next(b for b in at.button if b.label == "Import the classifier").click().run()
    assert not at.exception
    assert "Could not set up the classifier" in at.error[0].value and "does not exist" in at.error[0].value


def test_an_unsafe_pickle_is_refused_unless_trusted(run_page, blank):
    path = blank.parent / "model.pt"
    torch.save({"weights": collections.OrderedDict(), "optimizer": object.__new__(_Custom)}, path)
    at = run_page("setup", blank)
    at.radio(key="clf-source").set_value("A file on this machine").run()
    at.text_input[0].input(str(path))
    next(b for b in at.button if b.label == "Import the classifier").click().run()
    assert "unpickling it could run code" in at.error[0].value and "refused" in at.error[0].value
    assert not (blank / "classifier" / "model.json").exists()


def test_training_the_vae_runs_as_a_job(run_page, blank, started):
    at = run_page("setup", blank)
    at.radio[1].set_value("Train one here").run()
    next(b for b in at.button if b.label == "Train the β-VAE").click().run()
    # mnist-sample's default recipe (defuse.vae_recipe): 5,000 images at batch 128, 200 epochs = 8,000 steps
    assert started == [("train-vae", ["--beta", "0.4", "--latent-dim", "10", "--epochs", "200", "--width", "32",
                                      "--batch-size", "128"])]


def test_upload_names_are_sanitised():
    assert safe_file_name("../../etc/evil name!.PT", (".pt",)) == "evil_name.pt"
    assert safe_file_name(".hidden.safetensors", (".safetensors",)) == "hidden.safetensors"
    with pytest.raises(ValueError, match="wrong type; expected one of .pt"):
        safe_file_name("model.exe", (".pt",))


class _Custom:
    """Not a tensor: torch.load(weights_only=True) refuses to unpickle it."""
