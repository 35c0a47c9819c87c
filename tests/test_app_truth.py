"""Issue 23, across pages: opening a page never writes to the project, and no page shows "None", "nan" or "null"
(a fresh project and a finished one, every page)."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGES = ("home", "setup", "identify", "explore", "label", "correct", "compare", "report")
NO_SHOW = re.compile(r"\b(None|nan|NaN|null)\b")


def _snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file of the project (jobs/ holds the app's job logs, not the project's state)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "jobs" not in p.relative_to(root).parts}


def visible_text(at) -> list[str]:
    """Every string a user can read on the page: texts, labels, options, captions, table cells."""
    out: list[str] = []

    def walk(node):
        for attr in ("value", "label", "body", "caption", "help", "placeholder"):
            try:
                v = getattr(node, attr)
            except Exception:  # noqa: BLE001 — some elements raise for attributes they lack
                continue
            if isinstance(v, str):
                out.append(v)
        try:
            options = node.options
        except Exception:  # noqa: BLE001
            options = None
        if options:
            out.extend(str(o) for o in options)
        if type(node).__name__ == "Dataframe":
            frame = node.value
            out.extend(str(c) for c in frame.columns)
            out.extend(str(v) for v in frame.astype(object).where(frame.notna(), "–").to_numpy().ravel())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


@pytest.mark.parametrize("page", PAGES)
def test_opening_a_page_of_a_finished_project_writes_nothing(run_page, project_copy, page):
    root = project_copy(f"open-{page}")
    before = _snapshot(root)
    at = run_page(page, root)
    assert not at.exception
    after = _snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"opening {page} changed {changed}"


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("state", ["fresh", "before-the-sweep", "finished"])
def test_no_page_shows_none_nan_or_null(run_page, project_copy, fresh_demo, page, state):
    root = fresh_demo if state == "fresh" else project_copy(f"words-{page}")
    if state == "before-the-sweep":  # scenarios labeled, no correction yet
        for rel in ("correct/sweep.json", "correct/best.json", "correct/step.json"):
            (root / rel).unlink()
    at = run_page(page, root)
    assert not at.exception
    text = visible_text(at)
    assert len(text) > 3, "the walk found no text: it would pass on anything"
    bad = [t for t in text if NO_SHOW.search(t)]
    assert bad == [], f"{page} ({state}) shows {bad}"


def test_a_cold_deep_link_gets_the_menu_and_a_spinner_before_the_slow_imports():
    """Point 7: the router calls st.navigation, then imports torch and the core under a spinner. (The timing itself
    is measured in a real browser: tests/test_browser.py, the cold deep link test.)"""
    import ast

    source_dir = Path(__file__).resolve().parent.parent
    source = (source_dir / "streamlit_app.py").read_text(encoding="utf-8")
    body = ast.parse(source).body
    top_imports = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = [n.module if isinstance(n, ast.ImportFrom) else a.name for n in top_imports for a in n.names]
    assert modules == ["streamlit", "defuse.ui.boot"]                             # nothing slow before the menu
    loaded = subprocess.run([sys.executable, "-c", "import sys, defuse.ui.boot; print(' '.join(sys.modules))"],
                            capture_output=True, text=True, check=True, cwd=source_dir).stdout.split()
    # the boot module stays light: besides itself only the words of the app's messages (defuse.runtime.words and
    # the declarations' module it reads, plain Python), never torch or a step
    light = ("defuse.ui", "defuse.ui.boot", "defuse.runtime", "defuse.runtime.words", "defuse.runtime.settings")
    assert "torch" not in loaded and not [m for m in loaded if m.startswith("defuse.") and m not in light]
    nav = next(i for i, n in enumerate(body) if "st.navigation(" in ast.unparse(n))
    spin = next(i for i, n in enumerate(body) if isinstance(n, ast.With) and "st.spinner" in ast.unparse(n))
    assert nav < spin and "import torch" in ast.unparse(body[spin])


def test_the_router_still_frames_every_page(tmp_path, monkeypatch, navigation_mode, demo_done):
    from streamlit.testing.v1 import AppTest

    root = Path(__file__).resolve().parent.parent
    monkeypatch.setenv("DEFUSE_HOME", str(tmp_path))
    monkeypatch.chdir(root)
    at = AppTest.from_file(str(root / "streamlit_app.py"), default_timeout=120)
    at.session_state["project"] = str(demo_done)
    at.run()
    assert not at.exception and at.title[0].value == "Defuse"
    at.switch_page("pages/explore.py").run()
    assert not at.exception and at.title[0].value == "Explore"
