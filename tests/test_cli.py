import json
import subprocess
import sys

import pytest
import torch

from defuse.cli.main import COMMANDS, build_parser, main
from defuse.nets import checkpoints
from defuse.nets.architectures import build_classifier
from defuse.steps import project
from defuse.workspace import Workspace


def test_module_help_runs_as_a_program():
    out = subprocess.run([sys.executable, "-m", "defuse", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "init" in out.stdout and "train-vae" in out.stdout


@pytest.mark.parametrize("name", ["init", "train-classifier", "train-vae", "info", "demo"])
def test_every_subcommand_has_help(name, capsys):
    build_parser()
    assert name in COMMANDS
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0 and "--progress-jsonl" in capsys.readouterr().out


@pytest.fixture(scope="module")
def trained_ws(tmp_path_factory):
    """digits (1,258 training images) keeps this quick: init, train-classifier, train-vae."""
    root = tmp_path_factory.mktemp("cli") / "proj"
    assert main(["init", "-w", str(root), "--dataset", "digits", "--quiet"]) == 0
    events = root / "events.jsonl"
    assert main(["train-classifier", "-w", str(root), "--epochs", "2", "--optimizer", "adam", "--lr", "1e-3",
                 "--progress-jsonl", str(events), "--quiet"]) == 0
    assert main(["train-vae", "-w", str(root), "--epochs", "2", "--width", "8", "--quiet"]) == 0
    return root, events


def test_init_and_training_make_checkpoints_a_later_step_can_load(trained_ws):
    root, _ = trained_ws
    ws = Workspace.open(root)
    clf, meta = project.load_classifier(ws)
    vae, _ = project.load_vae(ws)
    x = project.load_data(ws).test.images[:4]
    assert clf(x).shape == (4, 10) and vae.decode(vae.encode(x)[0]).shape == x.shape
    assert meta["metrics"]["test_acc"] > 0.5
    status = ws.status()
    assert status["classifier"] == "done" and status["vae"] == "done" and status["identify"] == "missing"


def test_progress_jsonl_events(trained_ws):
    _, events = trained_ws
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    progress = [e for e in lines if "step" in e]
    assert lines[0]["event"] == "started" and lines[-1]["event"] == "finished"
    assert progress[-1]["done"] == progress[-1]["total"] and progress[-1]["step"] == "train-classifier"
    assert all({"time", "done", "total", "eta_s", "metrics"} <= set(e) for e in progress)


def test_info_reports_status_and_fidelity(trained_ws, capsys):
    root, _ = trained_ws
    assert main(["info", "-w", str(root), "--json", "--quiet"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["status"]["vae"] == "done" and "acc_reconstruction" in info["vae_metrics"]
    assert info["data"]["splits"]["train"]["count"] == 1258


def test_bad_input_is_one_clear_line_without_traceback(tmp_path, capsys):
    assert main(["init", "-w", str(tmp_path / "p"), "--dataset", "imagenet", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "imagenet" in err and "Traceback" not in err
    assert main(["info", "-w", str(tmp_path / "missing"), "--quiet"]) == 2
    assert "not a Defuse workspace" in capsys.readouterr().err
    assert main(["train-classifier", "-w", str(tmp_path / "missing"), "--epochs", "0", "--quiet"]) == 2
    assert "--epochs must be an integer in [1, 10000]; got 0" in capsys.readouterr().err


def test_init_refuses_a_classifier_for_other_classes(tmp_path, capsys):
    wrong = build_classifier("paper-cnn", channels=1, image_size=32, num_classes=3)
    kw = dict(channels=1, image_size=32, num_classes=3)
    checkpoints.save_model(wrong, tmp_path / "c3", kind="classifier", architecture="paper-cnn", arch_kwargs=kw)
    code = main(["init", "-w", str(tmp_path / "p"), "--dataset", "digits", "--classifier",
                 str(tmp_path / "c3.json"), "--quiet"])
    assert code == 2 and "num_classes=3 but the data has num_classes=10" in capsys.readouterr().err


def test_init_imports_a_bare_state_dict(tmp_path):
    net = build_classifier("paper-cnn", channels=1, image_size=32, num_classes=10)
    torch.save(net.state_dict(), tmp_path / "mine.pt")
    assert main(["init", "-w", str(tmp_path / "p"), "--dataset", "digits", "--classifier", str(tmp_path / "mine.pt"),
                 "--architecture", "paper-cnn", "--quiet"]) == 0
    loaded, _ = project.load_classifier(Workspace.open(tmp_path / "p"))
    x = torch.rand(2, 1, 32, 32)
    assert torch.equal(loaded(x), net.eval()(x))


def test_durations_read_as_minutes_and_seconds_or_hours():
    from defuse.runtime.progress import fmt_seconds

    assert fmt_seconds(None) == "--:--" and fmt_seconds(float("nan")) == "--:--"
    assert fmt_seconds(59.6) == "01:00" and fmt_seconds(3725) == "1:02:05"
