import os

import numpy as np
import pytest

from defuse.runtime import atomic
from defuse.workspace import STEPS, Workspace, list_workspaces


@pytest.fixture()
def ws(tmp_path):
    return Workspace.create(tmp_path / "proj", {"dataset": {"source": "mnist-sample"}})


def _fake_step(ws, step, payload="x"):
    for rel in STEPS[step].outputs:
        ws.path(rel).parent.mkdir(parents=True, exist_ok=True)
        ws.path(rel).write_text(payload)
    return ws.record_step(step, config={"payload": payload})


def test_status_done_stale_corrupt_missing(ws):
    assert set(ws.status().values()) == {"missing"}
    _fake_step(ws, "classifier")
    _fake_step(ws, "vae")
    _fake_step(ws, "identify")
    assert ws.status()["identify"] == "done"
    _fake_step(ws, "classifier", payload="retrained")          # an input of identify changed
    assert ws.status()["identify"] == "stale" and ws.status()["classifier"] == "done"
    _fake_step(ws, "identify")
    _fake_step(ws, "distill")
    assert ws.status()["distill"] == "done"
    ws.path("identify/failures.npz").write_text("tampered")       # output no longer matches its record
    st = ws.status()
    assert st["identify"] == "corrupt" and st["distill"] == "stale"


def test_changing_the_dataset_makes_models_stale(ws):
    _fake_step(ws, "classifier")
    ws.update_project(dataset={"source": "digits"})
    assert ws.status()["classifier"] == "stale"


def test_arrays_and_json_round_trip(ws):
    ws.save_arrays("identify/failures.npz", latents=np.arange(6.0).reshape(3, 2), idx=np.arange(3))
    arrays = ws.load_arrays("identify/failures.npz")
    assert np.array_equal(arrays["latents"], np.arange(6.0).reshape(3, 2))
    ws.save_json("a/b.json", {"x": np.float32(1.5)})
    assert ws.load_json("a/b.json") == {"x": 1.5}


def test_corrupt_artifacts_name_the_fix(ws):
    ws.path("identify").mkdir()
    ws.path("identify/failures.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt.*re-run the step"):
        ws.load_arrays("identify/failures.npz")
    with pytest.raises(ValueError, match="has no distill/none.json yet: run the step that makes it"):
        ws.load_json("distill/none.json")


def test_paths_cannot_escape_the_workspace(ws):
    with pytest.raises(ValueError, match="outside the workspace"):
        ws.path("../../etc/passwd")


def test_create_refuses_to_overwrite_and_open_needs_a_project(tmp_path, ws):
    with pytest.raises(ValueError, match="already holds a project.*--force"):
        Workspace.create(ws.root, {"dataset": {}})
    with pytest.raises(ValueError, match="not a Defuse workspace"):
        Workspace.open(tmp_path / "nothing")
    assert list_workspaces(tmp_path) == [ws.root]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "f.json"
    atomic.write_json(target, {"v": 1})
    with pytest.raises(TypeError):
        atomic.write_json(target, {"v": object()})
    assert target.read_text().strip().startswith("{") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left behind
    assert os.stat(target).st_size > 0
