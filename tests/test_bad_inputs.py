"""The bad-input matrix (docs/robustness.md): each case exits with one clear line naming the problem and
the fix, no traceback, and leaves every file already saved in the workspace unchanged."""

import hashlib
import re
import shutil

import numpy as np
import pytest
from safetensors.torch import save_file

from defuse.cli.main import main
from defuse.label.store import LabelStore
from defuse.nets import checkpoints
from defuse.nets.architectures import build_classifier
from defuse.workspace import Workspace


def _snapshot(root):
    """Every saved file's checksum; the label store by its decisions (SQLite rewrites pages on open)."""
    if not root.exists():
        return None
    files = {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
             if p.is_file() and "jobs" not in p.parts and "labels.sqlite" not in p.name}
    if (root / "labels.sqlite").exists():
        with LabelStore(root / "labels.sqlite") as store:
            files["decisions"] = [(d.scenario, d.annotator, d.is_failure, d.label) for d in store.history()]
    return files


def _checkpoint(tmp, **kw):
    geometry = {"channels": 1, "image_size": 32, "num_classes": 10, **kw}
    net = build_classifier("paper-cnn", **geometry)
    checkpoints.save_model(net, tmp / "clf", kind="classifier", architecture="paper-cnn", arch_kwargs=geometry)
    return str(tmp / "clf.json")


def _npz(tmp, x, y):
    np.savez(tmp / "d.npz", x=x, y=y)
    return str(tmp / "d.npz")


def _resnet_weights(tmp):
    save_file(build_classifier("resnet18", channels=1, image_size=32, num_classes=10).state_dict(),
              str(tmp / "r.safetensors"))
    return str(tmp / "r.safetensors")


def _nan_weights(tmp):
    state = build_classifier("paper-cnn", channels=1, image_size=32, num_classes=10).state_dict()
    state["head.1.weight"][0, 0] = float("nan")
    save_file(state, str(tmp / "nan.safetensors"))
    return str(tmp / "nan.safetensors")


def _no_failures(ws):
    none = np.zeros(0, np.int64)
    ws.save_arrays("identify/failures.npz", latents=np.zeros((0, 10), np.float32), source_index=none,
                   true_label=none, pred_label=none, noise_norm=np.zeros(0, np.float32))
    ws.record_step("identify", config={})


INIT = ["init", "--dataset", "mnist-sample"]
# (case, how the project starts, setup(tmp) -> extra argv or None, argv, expected message)
CASES = [
    ("checkpoint for another architecture", None, lambda t: ["--classifier", _resnet_weights(t), "--architecture",
                                                             "paper-cnn"], INIT, "do not fit this architecture"),
    ("wrong number of classes", None, lambda t: ["--classifier", _checkpoint(t, num_classes=3)], INIT,
     "num_classes=3 but the data has num_classes=10"),
    ("colour classifier on grey data", None, lambda t: ["--classifier", _checkpoint(t, channels=3)], INIT,
     "channels=3 but the data has channels=1"),
    ("wrong image size", None, lambda t: ["--classifier", _checkpoint(t, image_size=64)], INIT,
     "image_size=64 but the data has image_size=32"),
    ("NaN weights", None, lambda t: ["--classifier", _nan_weights(t), "--architecture", "paper-cnn"], INIT,
     "NaN or infinite"),
    ("empty dataset", None, lambda t: ["--path", _npz(t, np.zeros((0, 28, 28), np.uint8), np.zeros(0, int))],
     ["init", "--dataset", "npz"], "empty|no images"),
    ("a single class", None, lambda t: ["--path", _npz(t, np.zeros((20, 28, 28), np.uint8), np.ones(20, int))],
     ["init", "--dataset", "npz"], "one class|single class|only one"),
    ("Q=0", "fresh", None, ["identify", "--samples-per-image", "0"], "--samples-per-image must be"),
    ("memory-exhausting batch", "fresh", None, ["identify", "--batch-size", "1000000"],
     "GiB of memory.*lower --batch-size"),
    ("a VAE that yields no failures", "no-failures", None, ["distill"], "nothing to distill"),
    ("nothing labeled yet", "unlabeled", None, ["correct", "--lambdas", "1"], "no scenario is labeled a failure"),
    ("empty λ list", "done", None, ["correct", "--lambdas", ""], r"--lambdas must be .*; got \(\)"),
    ("negative λ", "done", None, ["correct", "--lambdas", "-1"], "lambda"),
    ("memory-exhausting samples", "done", None, ["correct", "--lambdas", "1", "--samples", "1000000"],
     "GiB of memory.*lower --samples"),
    ("unknown λ to export", "done", None, ["export", "--lambda", "7"], "was not swept"),
    ("per-sample D_f labels without a reviewer", "done", None,
     ["correct", "--lambdas", "1", "--failure-labels", "reviewer"], "need the automatic reviewer.*--reviewer auto"),
]


def _project(kind, tmp, fresh_demo, demo_done):
    root = tmp / "proj"
    if kind is None:
        return root
    src = fresh_demo if kind in ("fresh", "no-failures") else demo_done
    shutil.copytree(src, root, ignore=shutil.ignore_patterns("jobs"))
    ws = Workspace.open(root)
    if kind == "no-failures":
        _no_failures(ws)
    if kind == "unlabeled":
        ws.path("labels.sqlite").unlink()
    return root


@pytest.mark.parametrize("case,kind,setup,argv,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_answered_clearly_and_changes_nothing(case, kind, setup, argv, message, tmp_path, capsys,
                                                             fresh_demo, demo_done):
    root = _project(kind, tmp_path, fresh_demo, demo_done)
    extra = setup(tmp_path) if setup else []
    before = _snapshot(root)
    code = main([argv[0], "-w", str(root), *argv[1:], *extra, "--quiet", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert re.search(message, err, flags=re.I), err
    assert _snapshot(root) == before  # for a failed init: no half-made project left behind


def test_no_scenario_above_epsilon_says_what_to_do(demo_done, tmp_path, capsys):
    root = tmp_path / "p"
    shutil.copytree(demo_done, root, ignore=shutil.ignore_patterns("jobs"))
    assert main(["distill", "-w", str(root), "--weight-threshold", "0.99", "--quiet", "--threads", "1"]) == 0
    assert "no mixture component weighs more than ε=0.99" in capsys.readouterr().out
    before = _snapshot(root)
    assert main(["label", "-w", str(root), "--reviewer", "models/demo-classifier.json", "--quiet"]) == 2
    assert "kept no scenario above ε" in capsys.readouterr().err
    assert _snapshot(root) == before
