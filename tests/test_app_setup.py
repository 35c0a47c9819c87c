"""AppTest of the Setup page: data, classifier (demo, path, upload safety, train) and VAE."""

import json

import pytest
import torch

from defuse.data.datasets import DatasetSpec
from defuse.nets.architectures import PaperCNN
from defuse.nets.train import VAEConfig
from defuse.runtime.atomic import sha256_file
from defuse.steps.project import import_classifier, init_project
from defuse.ui.sidebar import safe_file_name
from defuse.workspace import Workspace
from tests.evil_files import malicious_pickle, tampered_pt2


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


def _upload(at, path):
    at.radio(key="clf-source").set_value("Upload a file").run()
    at.file_uploader[0].set_value((path.name, path.read_bytes(), "application/octet-stream"))
    return next(b for b in at.button if b.label == "Import the classifier").click().run()


@pytest.mark.parametrize("kind", ["pickle", "pt2"])
def test_an_uploaded_file_that_would_run_code_is_refused_before_loading(run_page, blank, kind, tmp_path):
    marker = tmp_path / "ran"
    if kind == "pickle":
        evil = malicious_pickle(tmp_path / "evil.pt", marker)
    else:
        torch.export.save(torch.export.export(PaperCNN(), (torch.rand(2, 1, 32, 32),)), str(tmp_path / "ok.pt2"))
        evil = tampered_pt2(tmp_path / "ok.pt2", tmp_path / "evil.pt2", marker)
    at = _upload(run_page("setup", blank), evil)
    assert not at.exception and not marker.exists()
    warning = " ".join(w.value for w in at.warning)
    assert evil.name in warning and "read nothing from it" in warning and ".safetensors" in warning
    box = next(c for c in at.checkbox if c.label.startswith(f"I trust {evil.name}"))
    assert sha256_file(evil) in box.label
    assert not (blank / "classifier" / "model.json").exists() and not list((blank / "uploads").glob("*"))


def test_a_benign_torchscript_upload_imports_once_the_user_trusts_it(run_page, blank, tmp_path):
    path = tmp_path / "cnn.ts"
    torch.jit.save(torch.jit.script(PaperCNN()), str(path))
    at = _upload(run_page("setup", blank), path)
    assert not (blank / "classifier" / "model.json").exists()
    go = next(b for b in at.button if b.label == "Import it, trusting this file")
    assert go.disabled
    next(c for c in at.checkbox if c.label.startswith("I trust cnn.ts")).check().run()
    next(b for b in at.button if b.label == "Import it, trusting this file").click().run()
    assert not at.exception and not at.error
    assert json.loads((blank / "classifier" / "model.json").read_text())["architecture"] == "torchscript"
    assert any(w.value.startswith("Imported") for w in at.success)


def test_a_copied_project_asks_this_user_to_trust_its_code_bearing_classifier(run_page, blank, tmp_path, monkeypatch):
    from defuse.nets import trust

    torch.jit.save(torch.jit.script(PaperCNN()), str(tmp_path / "cnn.ts"))
    import_classifier(Workspace.open(blank), tmp_path / "cnn.ts", trust_code=True)  # trusted by its maker
    monkeypatch.setenv(trust.STORE_ENV, str(tmp_path / "another-user.json"))
    at = run_page("setup", blank)
    assert not at.exception
    assert any("refused it and read nothing" in e.value for e in at.error)
    box = next(c for c in at.checkbox if c.label.startswith("I trust model.ts"))
    box.check().run()
    next(b for b in at.button if b.label == "Trust this file").click().run()
    assert trust.is_trusted(sha256_file(blank / "classifier" / "model.ts"))


def test_training_the_vae_runs_as_a_job(run_page, blank, started, job_config):
    at = run_page("setup", blank)
    at.radio[1].set_value("Train one here").run()
    next(b for b in at.button if b.label == "Train the β-VAE").click().run()
    # mnist-sample's default recipe (defuse.nets.vae_recipe): its 3,500 training images at batch 32 (a small
    # source), 73 epochs = 8,030 steps
    assert [step for step, _ in started] == ["train-vae"]
    assert job_config(started[0][1], VAEConfig) == (VAEConfig(beta=0.4, latent_dim=10, epochs=73, width=32,
                                                              batch_size=32), [])


def test_upload_names_are_sanitised():
    assert safe_file_name("../../etc/evil name!.PT", (".pt",)) == "evil_name.pt"
    assert safe_file_name(".hidden.safetensors", (".safetensors",)) == "hidden.safetensors"
    with pytest.raises(ValueError, match="wrong type; expected one of .pt"):
        safe_file_name("model.exe", (".pt",))


def test_the_vae_form_trains_a_class_conditional_vae_when_ticked(run_page, blank, started, job_config):
    at = run_page("setup", blank)
    at.radio[1].set_value("Train one here").run()
    next(c for c in at.checkbox if c.label.startswith("Class-conditional")).check()  # a form sends it on submit
    next(b for b in at.button if b.label == "Train the β-VAE").click().run()
    assert [step for step, _ in started] == ["train-vae"]
    assert job_config(started[0][1], VAEConfig)[0].conditional is True
