"""The demo's precomputed first look: built from the demo models, installed only when its checksums match,
recomputable when they do not, and listed done by `info`."""

import json
import shutil

import numpy as np
import pytest
from conftest import HAVE_DEMO, ROOT

from defuse.distill.scenarios import DistillConfig
from defuse.identify.search import IdentifyConfig
from defuse.label.reviewer import ReviewerConfig
from defuse.runtime.progress import RunOptions
from defuse.steps import demo_precomputed as pre
from defuse.steps.demo import DEMO_DATASET
from defuse.steps.identify import identify_step
from defuse.steps.label import reviewer_ready
from defuse.steps.project import init_project
from defuse.steps.status import full_status

# the xdist group: under pytest-xdist one worker runs this module, so its fixtures are built once
pytestmark = [pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built"),
              pytest.mark.xdist_group("test_demo_precomputed")]
FIRST_LOOK = ("identify", "distill", "map", "reviewer")
TINY_IDENTIFY = IdentifyConfig(samples_per_image=20, max_per_image=10, subset=64)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The demo models and a tiny precomputed first look made from them (PCA map, a one-member reviewer)."""
    import torch

    torch.set_num_threads(1)
    models = tmp_path_factory.mktemp("models")
    for f in (ROOT / "models").glob("demo-*.*"):
        shutil.copyfile(f, models / f.name)
    tiny = pre.FirstLook(TINY_IDENTIFY, DistillConfig(max_components=10, max_iter=100), ("pca",),
                         ReviewerConfig(members=1, epochs=1))
    pre.build_precomputed(models, first_look=tiny, device="cpu")
    return models


def _fresh(tmp_path, models):
    return init_project(tmp_path / "demo", DEMO_DATASET, classifier=models / "demo-classifier.json",
                        vae=models / "demo-vae.json")


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_fresh_demo_gets_every_first_look_step_done(built, tmp_path):
    src = built / "demo-precomputed"
    ws = _fresh(tmp_path, built)
    assert all(full_status(ws)[g] == "missing" for g in FIRST_LOOK)
    result = pre.install_precomputed(ws, src, built)
    assert result == dict.fromkeys(FIRST_LOOK, "installed")
    assert {g: full_status(ws)[g] for g in FIRST_LOOK} == dict.fromkeys(FIRST_LOOK, "done")
    shipped = np.load(src / "identify/failures.npz")["latents"]
    assert np.array_equal(ws.load_arrays("identify/failures.npz")["latents"], shipped)
    assert ws.step_record("identify")["config"]["samples_per_image"] == 20   # the settings it was made with
    assert ws.step_record("identify")["metrics"]["precomputed"] is True


def test_a_tampered_file_is_left_out_and_its_step_recomputes(built, tmp_path):
    src = tmp_path / "pre"
    shutil.copytree(built / "demo-precomputed", src)
    _flip_byte(src / "identify/failures.npz")
    ws = _fresh(tmp_path, built)
    result = pre.install_precomputed(ws, src, built)
    assert "does not match its sha256" in result["identify"]
    assert result["distill"].startswith("needs identify") and result["map"].startswith("needs identify")
    assert result["reviewer"] == "installed"
    status = full_status(ws)
    assert (status["identify"], status["distill"], status["map"], status["reviewer"]) == \
        ("missing", "missing", "missing", "done")
    assert not ws.exists("identify/failures.npz")          # nothing unverified reaches the project
    identify_step(ws, TINY_IDENTIFY, run=RunOptions(device="cpu"))         # recomputing is the ordinary step
    assert full_status(ws)["identify"] == "done"


def test_precomputed_results_of_other_models_are_not_used(built, tmp_path):
    src = tmp_path / "pre"
    shutil.copytree(built / "demo-precomputed", src)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["made_from"]["vae"] = "0" * 64
    (src / "manifest.json").write_text(json.dumps(manifest))
    result = pre.install_precomputed(_fresh(tmp_path, built), src, built)
    assert result["identify"] == "made from other demo models than those in models/"
    assert result["reviewer"] == "installed"                # the reviewer depends on the data only


def test_files_changed_after_install_show_as_corrupt_and_the_reviewer_retrains(built, tmp_path):
    ws = _fresh(tmp_path, built)
    pre.install_precomputed(ws, built / "demo-precomputed", built)
    _flip_byte(ws.path("distill/embedding-pca.npz"))
    member = next(ws.path("reviewer").glob("member-*.safetensors"))
    _flip_byte(member)
    status = full_status(ws)
    assert status["map"] == "corrupt" and status["reviewer"] == "corrupt"
    assert not reviewer_ready(ws)                           # so "Run auto-reviewer" trains a new one


def test_cli_demo_and_info_list_the_shipped_steps_done(tmp_path, monkeypatch, capsys):
    if not (pre.PRECOMPUTED_DIR / pre.MANIFEST).exists():
        pytest.skip("models/demo-precomputed not built (python -m defuse demo --rebuild)")
    from defuse.cli.main import main

    monkeypatch.setenv("DEFUSE_HOME", str(tmp_path))
    assert main(["demo", "--workspace", str(tmp_path / "demo"), "--quiet"]) == 0
    assert main(["info", "--workspace", str(tmp_path / "demo"), "--quiet"]) == 0
    out = capsys.readouterr().out
    for step in FIRST_LOOK:
        assert f"  {step:<12} done" in out, out
    assert main(["info", "--workspace", str(tmp_path / "demo"), "--json", "--quiet"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cache_status"] == {"map": "done", "reviewer": "done"}
    assert info["status"]["identify"] == info["status"]["distill"] == "done"


def test_the_app_shows_the_shipped_map_without_computing(run_page, tmp_path, started):
    if not (pre.PRECOMPUTED_DIR / pre.MANIFEST).exists():
        pytest.skip("models/demo-precomputed not built (python -m defuse demo --rebuild)")
    from defuse.steps.demo import open_demo_project

    ws = open_demo_project(tmp_path / "demo")
    at = run_page("explore", ws.root)
    assert not at.exception and not at.error
    from defuse.distill.embed import EmbedConfig

    assert at.radio(key="map-method").value == EmbedConfig().method  # the default projection, already made
    assert len(at.get("plotly_chart")) == 1
    assert started == []                                    # no job was needed


def test_rebuilding_only_the_reviewer_keeps_the_other_groups_byte_for_byte(built, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(built, models)
    out = models / "demo-precomputed"
    before = json.loads((out / "manifest.json").read_text())
    tiny = pre.FirstLook(TINY_IDENTIFY, DistillConfig(max_components=10, max_iter=100), ("pca",),
                         ReviewerConfig(members=1, epochs=1, seed=7))
    after = pre.build_precomputed(models, first_look=tiny, device="cpu", only=("reviewer",))
    for group in ("identify", "distill", "map"):
        assert after["groups"][group] == before["groups"][group]    # the same files, config and metrics
    assert after["groups"]["reviewer"]["files"] != before["groups"]["reviewer"]["files"]
    assert any("grader" in rel for rel in after["groups"]["reviewer"]["files"])
    result = pre.install_precomputed(_fresh(tmp_path, models), out, models)
    assert result == dict.fromkeys(FIRST_LOOK, "installed")
    with pytest.raises(ValueError, match="--only takes the groups"):
        pre.build_precomputed(models, first_look=tiny, device="cpu", only=("maps",))
