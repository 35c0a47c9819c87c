import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from defuse.nets import checkpoints
from defuse.nets.architectures import build_classifier, build_vae

GEOMETRY = dict(channels=1, image_size=32, num_classes=4)


@pytest.fixture()
def cnn():
    torch.manual_seed(0)
    return build_classifier("paper-cnn", **GEOMETRY).eval()


def test_round_trip_gives_identical_outputs(tmp_path, cnn):
    meta = checkpoints.save_model(cnn, tmp_path / "clf", kind="classifier", architecture="paper-cnn",
                                  arch_kwargs=GEOMETRY, class_names=list("abcd"), metrics={"test_acc": 0.5})
    assert (tmp_path / "clf.safetensors").exists() and (tmp_path / "clf.json").exists()
    loaded, meta2 = checkpoints.load_model(tmp_path / "clf.json", kind="classifier")
    x = torch.rand(5, 1, 32, 32)
    assert torch.equal(cnn(x), loaded(x))
    assert meta2["sha256"] == meta["sha256"] and meta2["class_names"] == list("abcd")


def test_vae_round_trip(tmp_path):
    vae = build_vae(channels=1, image_size=32, latent_dim=3, width=8).eval()
    kw = dict(channels=1, image_size=32, latent_dim=3, width=8)
    checkpoints.save_model(vae, tmp_path / "vae", kind="vae", architecture="beta-vae", arch_kwargs=kw)
    loaded, _ = checkpoints.load_model(tmp_path / "vae.safetensors", kind="vae")
    z = torch.randn(4, 3)
    assert torch.equal(vae.decode(z), loaded.decode(z))


def test_corrupt_weights_are_detected_by_checksum(tmp_path, cnn):
    checkpoints.save_model(cnn, tmp_path / "clf", kind="classifier", architecture="paper-cnn", arch_kwargs=GEOMETRY)
    data = bytearray((tmp_path / "clf.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "clf.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the checksum.*Re-run"):
        checkpoints.load_model(tmp_path / "clf.json")


def test_wrong_kind_and_missing_sidecar(tmp_path, cnn):
    checkpoints.save_model(cnn, tmp_path / "clf", kind="classifier", architecture="paper-cnn", arch_kwargs=GEOMETRY)
    with pytest.raises(ValueError, match="holds a classifier, not a vae"):
        checkpoints.load_model(tmp_path / "clf.json", kind="vae")
    (tmp_path / "clf.json").unlink()
    with pytest.raises(ValueError, match="needs its JSON sidecar"):
        checkpoints.load_model(tmp_path / "clf.safetensors")


def test_state_dict_for_another_architecture_is_explained(tmp_path, cnn):
    save_file(cnn.state_dict(), str(tmp_path / "w.safetensors"))
    with pytest.raises(ValueError, match="do not fit this architecture"):
        checkpoints.load_classifier(tmp_path / "w.safetensors", architecture="paper-cnn",
                                    arch_kwargs={**GEOMETRY, "num_classes": 7})
    with pytest.raises(ValueError, match="--architecture"):
        checkpoints.load_classifier(tmp_path / "w.safetensors")


def test_bare_state_dicts_load_safely(tmp_path, cnn):
    torch.save(cnn.state_dict(), tmp_path / "w.pt")
    model, meta = checkpoints.load_classifier(tmp_path / "w.pt", architecture="paper-cnn", geometry=GEOMETRY)
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(model(x), cnn(x)) and meta["architecture"] == "paper-cnn"


class _Boom:
    """Unpickling this object would create a file: the test proves it never happens by default."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    target = tmp_path / "pwned.txt"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"weight": _Boom(str(target))}, f)
    with pytest.raises(ValueError, match="unpickling it can run any code.*refused it.*safetensors.*opt in"):
        checkpoints.load_classifier(tmp_path / "evil.pt", architecture="paper-cnn", geometry=GEOMETRY)
    assert not target.exists()


@pytest.mark.parametrize("content", [b"hello, not a model\n", b"PK\x03\x04 a broken zip"])
def test_a_file_that_is_no_checkpoint_is_called_that_not_a_dangerous_pickle(tmp_path, content):
    (tmp_path / "notes.pt").write_bytes(content)
    with pytest.raises(ValueError, match=r"is not a model file Defuse can read|is a broken archive") as err:
        checkpoints.load_classifier(tmp_path / "notes.pt", architecture="paper-cnn", geometry=GEOMETRY)
    assert "pickle" not in str(err.value) and len(str(err.value)) < 300


def test_nan_weights_are_refused(tmp_path, cnn):
    state = {k: v.clone() for k, v in cnn.state_dict().items()}
    state["head.1.weight"][0, 0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"))
    with pytest.raises(ValueError, match="NaN or infinite"):
        checkpoints.load_classifier(tmp_path / "nan.safetensors", architecture="paper-cnn", geometry=GEOMETRY)


def test_torchscript_classifier_loads_once_trusted(tmp_path, cnn):
    torch.jit.trace(cnn, torch.rand(1, 1, 32, 32)).save(str(tmp_path / "m.ts"))
    with pytest.raises(ValueError, match="TorchScript file.*refused it"):
        checkpoints.load_classifier(tmp_path / "m.ts")
    model, meta = checkpoints.load_classifier(tmp_path / "m.ts", trust_code=True)
    x = torch.rand(3, 1, 32, 32)
    assert meta["architecture"] == "torchscript" and torch.allclose(model(x), cnn(x), atol=1e-6)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "junk.json").write_text(json.dumps({"kind": "classifier", "architecture": "paper-cnn",
                                                    "arch_kwargs": GEOMETRY, "weights_file": "junk.safetensors"}))
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        checkpoints.load_model(tmp_path / "junk.json")
    with pytest.raises(ValueError, match="does not exist"):
        checkpoints.load_classifier(tmp_path / "nowhere.pt")


def test_check_compatible_names_the_mismatch():
    meta = {"arch_kwargs": GEOMETRY}
    with pytest.raises(ValueError, match="expects num_classes=4 but the data has num_classes=10"):
        checkpoints.check_compatible(meta, channels=1, image_size=32, num_classes=10, what="classifier")
    with pytest.raises(ValueError, match="expects channels=1 but the data has channels=3"):
        checkpoints.check_compatible(meta, channels=3, image_size=32, num_classes=4, what="classifier")
