"""AppTest for the pages, and a smoke test that the server starts and answers its health check."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
HAVE_DEMO = (ROOT / "models" / "demo-classifier.json").exists() and (ROOT / "models" / "demo-vae.json").exists()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEFUSE_HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)
    return tmp_path


@pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built (python -m defuse demo --rebuild)")
def test_home_opens_the_demo_project(home):
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "Classifier test accuracy" in text and "VAE fidelity" in text
    assert (home / "demo" / "project.json").exists()
    assert [m.label for m in at.metric][:2] == ["classifier", "vae"]


def test_home_explains_missing_demo_models(home, monkeypatch):
    import defuse.demo as demo

    monkeypatch.setattr(demo, "DEMO_CLASSIFIER", home / "none.json")
    at = AppTest.from_file(str(ROOT / "pages" / "home.py"), default_timeout=60).run()
    assert not at.exception
    assert at.error and "demo --rebuild" in at.error[0].value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_starts_and_is_healthy(tmp_path):
    port = _free_port()
    env = {**os.environ, "DEFUSE_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, status = time.time() + 90, None
        while time.time() < deadline and status != 200:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status
            except OSError:
                time.sleep(0.5)
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
