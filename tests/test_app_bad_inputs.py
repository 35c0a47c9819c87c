"""The bad-input matrix (docs/robustness.md) in the app: each row entered on the page that takes it (AppTest).

Each case ends in an st.error or st.warning that names the problem and the fix, with no traceback, no job
started, and every file already saved in the project byte-identical afterwards. Numbers out of range (Q=0,
zero epochs, …) are typed in and answered beside their field; where a widget's choices keep the bad value out
(an unknown λ to export, an unknown source), the case checks the choices: the value cannot be entered.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from defuse.data.datasets import SOURCES
from defuse.distill.scenarios import DistillConfig
from defuse.runtime import limits
from defuse.steps.distill import distill_step, load_scenarios
from defuse.workspace import Workspace
from tests.test_bad_inputs import _checkpoint, _nan_weights, _no_failures, _npz, _resnet_weights, _snapshot

ROOT = Path(__file__).resolve().parent.parent
GiB = 2**30


@dataclass(frozen=True)
class Case:
    row: str                               # the row of the matrix in docs/robustness.md
    page: str                              # pages/<page>.py, or "app" for the router with its sidebar
    project: str                           # fresh, done, no-failures, no-scenario, unlabeled (see _project)
    enter: Callable                        # enter(at, tmp): type the bad input and submit it
    message: str                           # regex: the problem and the fix, in the error or warning shown
    free_gib: float | None = None          # pretend this much memory is free (the memory rows)


# --- entering the inputs ----------------------------------------------------------------------------------
def _click(at, label: str):
    next(b for b in at.button if b.label.startswith(label)).click().run()


def _import(make_file: Callable, *, upload: bool = False, arch: str = "paper-cnn") -> Callable:
    """The Setup page's classifier import, from a path on this machine or as an upload."""
    def enter(at, tmp):
        at.radio(key="clf-source").set_value("Upload a file" if upload else "A file on this machine").run()
        path = Path(make_file(tmp))
        if upload:
            at.file_uploader[0].set_value((path.name, path.read_bytes(), "application/octet-stream"))
        else:
            at.text_input[0].input(str(path))
        next(s for s in at.selectbox if s.label.startswith("Network of bare weights")).set_value(arch)
        _click(at, "Import the classifier")
    return enter


def _new_project(x, y, *, upload: bool = False) -> Callable:
    """The sidebar's New project form with an .npz file (as a path, or uploaded)."""
    def enter(at, tmp):
        at.sidebar.selectbox(key="new-source").set_value("npz").run()
        at.sidebar.text_input(key="new-name").input("bad-data")
        path = Path(_npz(tmp, x, y))
        if upload:
            at.sidebar.file_uploader[0].set_value(("d.npz", path.read_bytes(), "application/octet-stream"))
        else:
            next(t for t in at.sidebar.text_input if t.label.startswith("…or a path")).input(str(path))
        next(b for b in at.sidebar.button if b.label == "Create project").click().run()
    return enter


def _identify_batch(n: int) -> Callable:
    def enter(at, tmp):
        at.number_input(key="bs-CPU-friendly").set_value(n)
        _click(at, "Run identify")
    return enter


def _number(field: str, value, button: str, train: bool = False) -> Callable:
    """Type ``value`` into the number field whose label starts with ``field``, and press ``button``."""
    def enter(at, tmp):
        if train:  # the Setup page's training forms show once "Train one here" is picked
            at.radio(key="clf-source").set_value("Train one here").run()
        next(n for n in at.number_input if n.label.startswith(field)).set_value(value)
        _click(at, button)
    return enter


def _lambdas(text: str, samples: int | None = None) -> Callable:
    def enter(at, tmp):
        at.text_input[0].input(text)
        if samples is not None:
            next(n for n in at.number_input if n.label.startswith("Samples per scenario")).set_value(samples)
        _click(at, "Run the sweep")
    return enter


def _look(at, tmp):
    """Nothing to enter: the page itself meets the input (a project state) and answers it."""


def _open_missing(at, tmp):
    at.session_state["project"] = str(tmp / "gone")
    at.run()


EMPTY = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, int))
ONE_CLASS = (np.zeros((20, 28, 28), np.uint8), np.ones(20, int))
FIX_CLASSIFIER = r"Use a classifier trained on this data"
CASES = [
    Case("checkpoint for another architecture", "setup", "fresh", _import(_resnet_weights),
         r"do not fit this architecture \(\d+ missing tensor.*Check “Network of bare weights”"),
    Case("checkpoint for another architecture (upload)", "setup", "fresh", _import(_resnet_weights, upload=True),
         r"do not fit this architecture \(\d+ missing tensor.*Check “Network of bare weights”"),
    Case("wrong number of classes", "setup", "fresh", _import(lambda t: _checkpoint(t, num_classes=3)),
         r"expects num_classes=3 but the data has num_classes=10\. " + FIX_CLASSIFIER),
    Case("colour classifier on grey data", "setup", "fresh", _import(lambda t: _checkpoint(t, channels=3)),
         r"expects channels=3 but the data has channels=1\. " + FIX_CLASSIFIER),
    Case("wrong image size", "setup", "fresh", _import(lambda t: _checkpoint(t, image_size=64)),
         r"expects image_size=64 but the data has image_size=32\. " + FIX_CLASSIFIER + r".*“Image size”"),
    Case("NaN weights", "setup", "fresh", _import(_nan_weights), r"NaN or infinite weights; .*retrain it"),
    Case("NaN weights (upload)", "setup", "fresh", _import(_nan_weights, upload=True),
         r"NaN or infinite weights; .*retrain it"),
    Case("empty dataset", "app", "fresh", _new_project(*EMPTY), r"create the project: .*non-empty.*\(0, 28, 28\)"),
    Case("empty dataset (upload)", "app", "fresh", _new_project(*EMPTY, upload=True),
         r"create the project: .*non-empty.*\(0, 28, 28\)"),
    Case("a single class", "app", "fresh", _new_project(*ONE_CLASS), r"only one class .*needs at least two"),
    Case("memory-exhausting batch", "identify", "fresh", _identify_batch(1 << 20),
         r"1,048,576 decodes per batch would need about [\d.]+ GiB of memory, but only 4\.0 GiB are free: "
         r"lower “Decodes per batch”", 4),
    Case("a VAE that yields no failures", "explore", "no-failures", _look,
         r"Identify found 0 unrestricted adversarial example.*nothing to distill.*raise Q"),
    Case("a VAE that yields no failures (its results)", "identify", "no-failures", _look,
         r"No unrestricted adversarial examples were found.*raise Q"),
    Case("no scenario above ε", "explore", "no-scenario", _look,
         r"No mixture component weighs more than ε=0\.99.*lower ε"),
    Case("no scenario above ε (labeling)", "label", "no-scenario", _look, r"kept no scenario above ε.*Lower ε"),
    Case("nothing labeled yet", "correct", "unlabeled", _look, r"No scenario is labeled a failure yet.*label some"),
    Case("empty λ list", "correct", "done", _lambdas(" , "), r"the λ values must be a non-empty list .*; got \(\)"),
    Case("negative λ", "correct", "done", _lambdas("1, -1"), r"finite numbers > 0, .*; got \(1, -1\)"),
    Case("memory-exhausting samples", "correct", "done", _lambdas("1", samples=4096),
         r"GiB of memory, but only 0\.0 GiB are free: lower “Samples per scenario and split”", 0.04),
    Case("Q = 0", "identify", "fresh", _number("Q — perturbations", 0, "Run identify"),
         r"Q must be a whole number from 1 to 1,048,576; you typed 0\. Type a value from 1 to 1,048,576"),
    Case("samples beyond the cap", "correct", "done", _number("Samples per scenario", 100_000_000, "Run the sweep"),
         r"Samples per scenario and split must be a whole number from 1 to 1,048,576; you typed 100,000,000"),
    Case("zero epochs", "setup", "fresh", _number("Epochs", 0, "Train the classifier", train=True),
         r"Epochs must be a whole number from 1 to 10,000; you typed 0"),
    Case("missing workspace", "app", "fresh", _open_missing,
         r"could not be opened \(.*is not a Defuse workspace.*create one in the sidebar"),
]


# --- projects ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def no_scenario(demo_done, tmp_path_factory) -> Path:
    """The finished demo-like project distilled again with ε=0.99: no mixture component weighs more."""
    root = tmp_path_factory.mktemp("eps") / "demo"
    shutil.copytree(demo_done, root, ignore=shutil.ignore_patterns("jobs"))
    ws = Workspace(root)
    distill_step(ws, DistillConfig(max_components=10, weight_threshold=0.99, max_iter=10))
    assert len(load_scenarios(ws)) == 0
    return root


def _project(kind: str, dest: Path, request) -> Path:
    source = {"fresh": "fresh_demo", "no-failures": "fresh_demo", "done": "demo_done", "unlabeled": "demo_done",
              "no-scenario": "no_scenario"}[kind]
    shutil.copytree(request.getfixturevalue(source), dest, ignore=shutil.ignore_patterns("jobs"))
    if kind == "no-failures":
        _no_failures(Workspace(dest))
    if kind == "unlabeled":
        (dest / "labels.sqlite").unlink()
    return dest


@pytest.fixture()
def app_home(tmp_path, monkeypatch, navigation_mode):
    """DEFUSE_HOME for a run of the whole app (router and sidebar), in navigation mode as after a server's first
    run (see tests/conftest.py)."""
    home = tmp_path / "home"
    monkeypatch.setenv("DEFUSE_HOME", str(home))
    monkeypatch.chdir(ROOT)
    return home


def _run_app(root: Path) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=180)
    at.session_state["project"] = str(root)
    return at.run()


def _shown(at) -> list[str]:
    """Every error and warning on the page, the sidebar's included."""
    return [e.value for e in at.error] + [w.value for w in at.warning]


@pytest.mark.parametrize("case", CASES, ids=[c.row for c in CASES])
def test_bad_input_is_answered_on_its_page_and_changes_nothing(case, request, tmp_path, monkeypatch, started):
    if case.page == "app":  # the project in the demo's slot of DEFUSE_HOME: the app makes no other one
        root = _project(case.project, request.getfixturevalue("app_home") / "demo", request)
    else:
        root = _project(case.project, tmp_path / "proj", request)
    if case.free_gib is not None:  # after the project: a session fixture built here must not see the small memory
        monkeypatch.setattr(limits, "available_bytes", lambda device=None: int(case.free_gib * GiB))
    (tmp_path / "inputs").mkdir()
    projects_before = sorted(p.name for p in root.parent.iterdir())
    before = _snapshot(root)
    at = _run_app(root) if case.page == "app" else request.getfixturevalue("run_page")(case.page, root)
    case.enter(at, tmp_path / "inputs")

    assert not at.exception
    shown = _shown(at)
    assert any(re.search(case.message, s, flags=re.S) for s in shown), shown
    assert not any("Something went wrong" in s or "Traceback" in s for s in shown), shown
    assert all(len(s) < 800 for s in shown), shown                           # a message, not a dump
    assert started == []                                                     # no job set off
    assert _snapshot(root) == before
    assert sorted(p.name for p in root.parent.iterdir()) == projects_before  # no half-made project


# --- inputs the widgets keep out ----------------------------------------------------------------------------
def test_only_swept_lambdas_can_be_exported(run_page, demo_done):
    at = run_page("correct", demo_done)
    swept = Workspace(demo_done).load_json("correct/sweep.json")["best_per_lambda"]
    lams = sorted({float(r["lambda"]) for r in swept if r["kind"] == "defuse"})
    export = next(s for s in at.selectbox if s.label == "Model to export")
    assert [float(re.search(r"λ=([\d.e+-]+)", o).group(1)) for o in export.options] == lams
    with pytest.raises(ValueError, match="'λ=7' is not in list"):                 # AppTest cannot even send it
        export.set_value(7.0).run()


def test_an_unknown_source_cannot_be_entered(app_home, fresh_demo):
    shutil.copytree(fresh_demo, app_home / "demo", ignore=shutil.ignore_patterns("jobs"))
    at = _run_app(app_home / "demo")
    assert [o.split(" — ")[0] for o in at.sidebar.selectbox(key="new-source").options] == sorted(SOURCES)


def test_with_no_scenario_the_explore_page_does_not_send_you_to_label(run_page, no_scenario):
    at = run_page("explore", no_scenario)
    assert not at.exception and not any("Next: label" in c.value for c in at.caption)
