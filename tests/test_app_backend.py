"""AppTest of the sidebar's compute-backend setting and of the jobs it starts."""

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
HAVE_DEMO = (ROOT / "models" / "demo-classifier.json").exists() and (ROOT / "models" / "demo-vae.json").exists()


@pytest.mark.skipif(not HAVE_DEMO, reason="demo models not built (python -m defuse demo --rebuild)")
def test_choosing_ray_shows_the_cluster_and_a_dead_address_is_explained(tmp_path, monkeypatch, navigation_mode):
    monkeypatch.setenv("DEFUSE_HOME", str(tmp_path))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert at.sidebar.expander[1].label == "⚙️ Compute: This machine"
    at.sidebar.radio(key="backend-kind").set_value("ray").run()
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert f"A local Ray instance on this machine: {os.cpu_count()} CPUs" in captions
    at.sidebar.text_input(key="backend-address").input("127.0.0.1:1").run()
    assert "Ray at 127.0.0.1:1 (not checked yet)." in [c.value for c in at.sidebar.caption]
    at.sidebar.button(key="backend-check").click().run()
    assert not at.exception
    assert "no Ray cluster answers at 127.0.0.1:1" in at.sidebar.error[0].value


def test_jobs_of_the_ray_steps_carry_the_backend(run_page, fresh_demo, started):
    at = run_page("identify", fresh_demo, **{"backend-kind": "ray", "backend-address": "10.0.0.5:6379"})
    at.button[0].click().run()
    step, args = started[0]
    assert step == "identify" and args[-4:] == ["--backend", "ray", "--ray-address", "10.0.0.5:6379"]
