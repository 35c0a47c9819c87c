"""A user's own classifier, in every accepted format, through every step; and model files that carry code.

The network is tests/user_nets.py's SignNet (conv + batch norm + dropout, colour, 12 classes), which no
part of Defuse knows. Each format goes init → identify → distill → label → correct → export through the
CLI, as a user runs it. Malicious files are built here and must never run: a torch.export archive whose
weights config was edited to unpickle a payload, a pickle with a ``__reduce__`` payload, TorchScript.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from defuse.cli.main import main
from defuse.nets import checkpoints, trust
from tests.evil_files import malicious_pickle, tampered_pt2
from tests.toys import bar_images
from tests.user_nets import SignNet

ARCH = "tests.user_nets:SignNet"
CLASSES = 12


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The data (npz, colour 32x32, 12 classes), a shared tiny VAE, and SignNet saved in every format."""
    root = tmp_path_factory.mktemp("user")
    x, y = bar_images(288, num_classes=CLASSES, size=32, channels=3)
    np.savez(root / "signs.npz", x=(x.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8), y=y.numpy())
    torch.manual_seed(0)
    model = SignNet().eval()
    example = torch.rand(2, 3, 32, 32)
    save_file(model.state_dict(), str(root / "sign.safetensors"))
    torch.save(model.state_dict(), root / "sign-state.pt")
    torch.save(model, root / "sign-full.pt")
    torch.jit.save(torch.jit.script(model), str(root / "sign.ts"))
    batch = ({0: torch.export.Dim("batch", min=1)},)  # as a user must export it: Defuse's batches vary in size
    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=batch), str(root / "sign.pt2"))
    torch.export.save(torch.export.export(model, (example,)), str(root / "sign-static.pt2"))
    vae_ws = root / "vae-ws"
    assert main(["init", "-w", str(vae_ws), "--dataset", "npz", "--path", str(root / "signs.npz"),
                 "--classifier", str(root / "sign.safetensors"), "--architecture", ARCH, "--quiet"]) == 0
    assert main(["train-vae", "-w", str(vae_ws), "--epochs", "1", "--quiet", "--device", "cpu"]) == 0
    return {"root": root, "model": model, "vae": vae_ws / "vae" / "model.json"}


FORMATS = {  # file, extra init flags
    "safetensors + module:Class": ("sign.safetensors", ["--architecture", ARCH]),
    "state-dict .pt + module:Class": ("sign-state.pt", ["--architecture", ARCH]),
    "full pickle (trusted)": ("sign-full.pt", ["--architecture", ARCH, "--trust-code"]),
    "TorchScript (trusted)": ("sign.ts", ["--trust-code"]),
    "torch.export (trusted)": ("sign.pt2", ["--trust-code"]),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_accepted_format_goes_through_every_step(files, fmt, tmp_path, capsys):
    name, flags = FORMATS[fmt]
    ws = str(tmp_path / "ws")
    steps = [
        ["init", "-w", ws, "--dataset", "npz", "--path", str(files["root"] / "signs.npz"),
         "--classifier", str(files["root"] / name), "--vae", str(files["vae"]), *flags],
        ["identify", "-w", ws, "--samples-per-image", "8", "--max-per-image", "4", "--subset", "48"],
        ["distill", "-w", ws, "--max-components", "4"],
        ["label", "-w", ws, "--scenario", "0", "--failure", "3"],
        ["correct", "-w", ws, "--lambdas", "1", "--epochs", "1", "--samples", "16", "--no-baseline"],
        ["export", "-w", ws],
    ]
    for argv in steps:
        assert main([*argv, "--quiet", "--device", "cpu"]) == 0, (argv[0], capsys.readouterr().err)
    card = json.loads((tmp_path / "ws" / "exports" / "model-card.json").read_text())
    exported = tmp_path / "ws" / "exports" / f"{card['name']}.json"
    corrected, meta = checkpoints.load_model(exported, kind="classifier")  # trusted: this user exported it
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert corrected.eval()(x).shape == (4, CLASSES)
        assert not torch.allclose(corrected(x), files["model"](x)), "fine-tuning changed nothing"
    sidecar = json.loads((tmp_path / "ws" / "classifier" / "model.json").read_text())
    assert "fine-tuning" in sidecar["pipeline_checks"] and "export" in sidecar["pipeline_checks"]


def test_a_program_exported_for_a_fixed_batch_is_refused_at_init_with_the_fix(files, tmp_path, capsys):
    assert main(["init", "-w", str(tmp_path / "w"), "--dataset", "npz", "--path", str(files["root"] / "signs.npz"),
                 "--classifier", str(files["root"] / "sign-static.pt2"), "--trust-code", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "identify's forward pass" in err and "dynamic batch dimension" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()


def test_the_safe_path_records_the_users_class_and_its_arguments(files, tmp_path):
    assert main(["init", "-w", str(tmp_path / "w"), "--dataset", "npz", "--path", str(files["root"] / "signs.npz"),
                 "--classifier", str(files["root"] / "sign.safetensors"), "--architecture", ARCH,
                 "--arch-kwargs", '{"width": 8}', "--quiet"]) == 0
    meta = json.loads((tmp_path / "w" / "classifier" / "model.json").read_text())
    assert meta["architecture"] == ARCH
    assert meta["arch_kwargs"] == {"in_channels": 3, "n_classes": CLASSES, "width": 8}
    assert not Path(trust.store_path()).exists(), "the safe path needs no trust"


@pytest.mark.parametrize("name", ["sign.ts", "sign.pt2", "sign-full.pt"])
def test_convert_makes_a_code_bearing_file_safe_and_equal(files, tmp_path, name, capsys):
    out = tmp_path / "converted"
    argv = ["convert", str(files["root"] / name), "--architecture", ARCH, "--out", str(out),
            "--input-shape", "3,32,32", "--quiet"]
    assert main(argv) == 2 and "opt in" in capsys.readouterr().err
    assert main([*argv, "--trust-code"]) == 0, capsys.readouterr().err
    model, meta = checkpoints.load_model(out.with_suffix(".json"))
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), files["model"](x), atol=1e-5)
    assert meta["architecture"] == ARCH and meta["converted_from"]["file"] == name


def test_convert_refuses_an_architecture_that_computes_something_else(files, tmp_path, capsys):
    class_file = tmp_path / "other_nets.py"
    class_file.write_text("from tests.user_nets import SignNet\n\n"
                          "class HalvedInputNet(SignNet):\n"
                          "    def forward(self, x):\n"
                          "        return self.head(self.features(x * 0.5))\n")
    import sys
    sys.path.insert(0, str(tmp_path))
    try:
        assert main(["convert", str(files["root"] / "sign.ts"), "--architecture", "other_nets:HalvedInputNet",
                     "--out", str(tmp_path / "c"), "--input-shape", "3,32,32", "--trust-code", "--quiet"]) == 2
    finally:
        sys.path.remove(str(tmp_path))
    assert "is not the network that was saved" in capsys.readouterr().err
    assert not (tmp_path / "c.safetensors").exists()


def test_convert_in_place_makes_a_project_safe(files, tmp_path, capsys):
    ws = tmp_path / "w"
    assert main(["init", "-w", str(ws), "--dataset", "npz", "--path", str(files["root"] / "signs.npz"),
                 "--classifier", str(files["root"] / "sign.pt2"), "--trust-code", "--quiet"]) == 0
    assert main(["convert", "-w", str(ws), "--architecture", ARCH, "--quiet"]) == 0, capsys.readouterr().err
    meta = json.loads((ws / "classifier" / "model.json").read_text())
    assert meta["architecture"] == ARCH and meta["weights_file"] == "model.safetensors"
    assert sorted(p.name for p in (ws / "classifier").iterdir() if p.suffix in (".pt2", ".ts")) == []


def test_a_user_class_that_is_not_a_network_is_never_called(files, tmp_path, capsys):
    assert main(["init", "-w", str(tmp_path / "w"), "--dataset", "npz", "--path", str(files["root"] / "signs.npz"),
                 "--classifier", str(files["root"] / "sign.safetensors"), "--architecture", "os:system",
                 "--quiet"]) == 2
    assert "does not name an nn.Module subclass" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- malicious files
def test_the_tampered_files_really_run_their_payload_when_loaded_unguarded(files, tmp_path):
    """The control: without Defuse's guard these files do run code, so the refusals below mean something."""
    marker = tmp_path / "ran"
    evil = tampered_pt2(files["root"] / "sign.pt2", tmp_path / "evil.pt2", marker)
    with pytest.raises(Exception):  # noqa: B017  (torch fails after the payload ran; what matters is the marker)
        torch.export.load(str(evil))
    assert marker.exists()
    marker.unlink()
    with pytest.raises(Exception):  # noqa: B017  (the payload is not a checkpoint; it ran before torch noticed)
        torch.load(malicious_pickle(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("kind", ["pt2", "pickle", "torchscript"])
def test_code_bearing_files_are_refused_before_loading_through_the_cli(files, tmp_path, kind, capsys, monkeypatch):
    marker = tmp_path / "ran"
    evil = {"pt2": lambda: tampered_pt2(files["root"] / "sign.pt2", tmp_path / "evil.pt2", marker),
            "pickle": lambda: malicious_pickle(tmp_path / "evil.pt", marker),
            "torchscript": lambda: shutil.copy(files["root"] / "sign.ts", tmp_path / "evil.bin")}[kind]()
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: pytest.fail("torch.jit.load was called"))
    ws = tmp_path / "w"
    code = main(["init", "-w", str(ws), "--dataset", "npz", "--path", str(files["root"] / "signs.npz"),
                 "--classifier", str(evil), "--architecture", ARCH, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists() and not ws.exists()
    assert "Traceback" not in err and "refused it and read nothing" in err and "--trust-code" in err
    assert "safetensors" in err and "sha256" in err


def test_a_copied_workspace_never_loads_a_file_this_user_did_not_trust(files, tmp_path, monkeypatch, capsys):
    """Made and trusted by someone else; the sidecar, checksum included, names the swapped file honestly."""
    ws = tmp_path / "theirs"
    assert main(["init", "-w", str(ws), "--dataset", "npz", "--path", str(files["root"] / "signs.npz"),
                 "--classifier", str(files["root"] / "sign.pt2"), "--trust-code", "--quiet"]) == 0
    marker = tmp_path / "ran"
    evil = tampered_pt2(files["root"] / "sign.pt2", tmp_path / "evil.pt2", marker)
    sidecar = json.loads((ws / "classifier" / "model.json").read_text())
    shutil.copy(evil, ws / "classifier" / sidecar["weights_file"])
    sidecar["sha256"] = checkpoints.atomic.sha256_file(evil)
    (ws / "classifier" / "model.json").write_text(json.dumps(sidecar))
    monkeypatch.setenv(trust.STORE_ENV, str(tmp_path / "my-trust.json"))  # another user, or another machine
    for argv in (["identify", "-w", str(ws)], ["info", "-w", str(ws)], ["train-vae", "-w", str(ws)]):
        main([*argv, "--quiet", "--device", "cpu"])
        assert not marker.exists(), argv
    assert main(["identify", "-w", str(ws), "--quiet"]) == 2
    assert "refused it and read nothing" in capsys.readouterr().err
    assert not marker.exists()


def test_a_trusted_file_swapped_afterwards_is_refused(files, tmp_path):
    path = tmp_path / "m.pt2"
    shutil.copy(files["root"] / "sign.pt2", path)
    checkpoints.load_classifier(path, trust_code=True)
    checkpoints.load_classifier(path)  # trusted now: no opt-in needed again
    marker = tmp_path / "ran"
    tampered_pt2(files["root"] / "sign.pt2", path, marker)
    with pytest.raises(trust.UntrustedCodeError, match="refused it and read nothing"):
        checkpoints.load_classifier(path)
    assert not marker.exists()


@pytest.mark.parametrize("content,why", [(b"hello", "not a model file"), (b"PK\x03\x04broken", "broken archive")])
def test_format_detection_reads_content_not_names(tmp_path, content, why):
    from defuse.nets.model_files import detect_format

    (tmp_path / "x.safetensors").write_bytes(content)
    with pytest.raises(ValueError, match=why):
        detect_format(tmp_path / "x.safetensors")
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(SignNet()), buffer)
    (tmp_path / "renamed.safetensors").write_bytes(buffer.getvalue())
    assert detect_format(tmp_path / "renamed.safetensors") == "torchscript"
