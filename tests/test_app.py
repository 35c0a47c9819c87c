"""AppTest of the router and its shared frame (sidebar: project picker and creator, device, jobs), and a smoke
test that `streamlit run` starts and answers its health check."""

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
def home(tmp_path, monkeypatch, navigation_mode):
    monkeypatch.setenv("DEFUSE_HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)
    return tmp_path


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)


@pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built (python -m defuse demo --rebuild)")
def test_with_no_arguments_the_app_opens_the_demo_project(home):
    at = _app().run()
    assert not at.exception and not at.error
    assert (home / "demo" / "project.json").exists()
    assert "Project: demo" in [s.value for s in at.subheader]
    assert at.sidebar.selectbox(key="project-picker").value == home / "demo"
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "Device: **CPU" in sidebar or "Device: **GPU" in sidebar
    assert "No job running." in sidebar
    assert at.query_params["project"] in ("demo", ["demo"])                 # a browser refresh finds it again


@pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built")
def test_creating_a_project_from_the_sidebar(home):
    at = _app().run()
    at.sidebar.selectbox(key="new-source").set_value("digits").run()
    at.sidebar.text_input(key="new-name").input("../evil")
    next(b for b in at.sidebar.button if b.label == "Create project").click().run()
    assert "Give the project a name" in at.sidebar.error[0].value and not (home.parent / "evil").exists()
    at.sidebar.text_input(key="new-name").input("digits-1")
    at.sidebar.checkbox[0].uncheck()
    next(b for b in at.sidebar.button if b.label == "Create project").click().run()
    assert not at.exception
    assert (home / "digits-1" / "project.json").exists()
    assert at.title[0].value == "Setup"              # a new project lands on Setup: its models come first
    at.run()                                         # the next rerun (any click) stays on the new project
    assert at.sidebar.selectbox(key="project-picker").value.name == "digits-1"
    assert at.sidebar.selectbox(key="project-picker").value.name == "digits-1"
    at.sidebar.text_input(key="new-name").input("digits-1")
    next(b for b in at.sidebar.button if b.label == "Create project").click().run()
    assert "exists already" in at.sidebar.error[0].value


def test_the_demo_models_missing_is_explained(home, monkeypatch):
    import defuse.steps.demo as demo

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
