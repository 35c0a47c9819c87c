"""UMAP's numba compile is started in the background when the app starts, into the cache the map jobs use."""

import importlib.util
import subprocess
from importlib.metadata import version

import pytest

from defuse.distill import umap_warmup
from defuse.ui import warmup


@pytest.fixture()
def popen_calls(monkeypatch, tmp_path):
    monkeypatch.delenv("DEFUSE_NO_WARMUP", raising=False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    calls = []

    class FakePopen:
        def __init__(self, command, **kwargs):
            calls.append((command, kwargs))
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    warmup.start_umap_warmup.clear()
    yield calls
    warmup.start_umap_warmup.clear()


def test_the_app_starts_one_warmup_into_the_cache_the_jobs_use(popen_calls, tmp_path):
    if importlib.util.find_spec("umap") is None:   # not imported: that alone compiles for a minute
        pytest.skip("umap is not installed")
    assert warmup.start_umap_warmup() is not None
    warmup.start_umap_warmup()                                   # a rerun does not start a second one
    assert len(popen_calls) == 1
    command, kwargs = popen_calls[0]
    assert command[1:] == ["-m", "defuse.distill.umap_warmup"]
    assert kwargs["env"]["NUMBA_CACHE_DIR"] == str(tmp_path / "numba")
    assert umap_warmup.use_numba_cache() == tmp_path / "numba"   # where embed (and its jobs) look


def test_a_warm_cache_or_the_opt_out_starts_nothing(popen_calls, monkeypatch):
    marker = umap_warmup.marker_path()
    marker.parent.mkdir(parents=True)
    marker.write_text("warm")
    assert warmup.start_umap_warmup() is None
    marker.unlink()
    warmup.start_umap_warmup.clear()
    monkeypatch.setenv("DEFUSE_NO_WARMUP", "1")
    assert warmup.start_umap_warmup() is None
    assert popen_calls == []


def test_the_marker_names_the_compiled_versions(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    name = umap_warmup.marker_path().name
    assert name.startswith("warm-") and umap_warmup.marker_path().parent == tmp_path
    if importlib.util.find_spec("numba") is not None:
        assert f"numba-{version('numba')}" in name
