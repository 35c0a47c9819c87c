"""The app in a real browser: headless Chromium (Debian's `chromium`) driven by playwright.

Clicks through every page of a finished demo-like project, records a decision, runs one small job,
and saves a screenshot of each page to out/screenshots/<page>.png. Skipped when chromium or the
playwright package is missing (`.ci/run` installs chromium; playwright's own browser download is not used).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "out" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGES = ["Home", "Setup", "Identify", "Explore", "Label", "Correct", "Compare", "Report"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(project_copy):
    home = project_copy("demo").parent
    port = _free_port()
    env = {**os.environ, "DEFUSE_HOME": str(home)}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    log = open(home / "server.log", "wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", home
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _settle(page, timeout: float = 120) -> None:
    """Wait until Streamlit has finished running the script (its 'running' widget is gone)."""
    page.wait_for_timeout(700)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=timeout * 1000)
    page.wait_for_timeout(500)


def _check_clean(page, name: str) -> None:
    text = page.inner_text("body")
    assert "Traceback (most recent call last)" not in text, f"{name}: a raw traceback reached the page"
    assert page.locator("[data-testid='stException']").count() == 0, f"{name}: an uncaught exception"


def _shoot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main container, so the window grows to fit it first."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(1000, int(height)), 6000)})
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / f"{name.lower()}.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_click_through_the_demo(server):
    url, home = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/identify")   # a fresh server's first request, on a page: the router still frames it
        page.get_by_test_id("stSidebar").get_by_text("Project", exact=True).wait_for(timeout=90_000)
        _settle(page)
        assert page.get_by_test_id("stSidebarNav").get_by_role("link", name="Report", exact=True).count() == 1
        for name in PAGES:
            page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
            _settle(page)
            page.get_by_role("heading", name="Defuse" if name == "Home" else name).first.wait_for()
            if name == "Explore":
                _lasso(page)
            if name == "Label":
                page.get_by_role("textbox", name="Your name (annotator)").fill("carol")
                page.keyboard.press("Enter")
                _settle(page)
                _expand_button_clear_of_the_heading(page)
                page.get_by_test_id("stRadio").get_by_text("Not a failure", exact=True).first.click()  # the form's
                note = page.get_by_role("textbox", name="Note (optional) — Enter saves")
                note.fill("looks right to me")
                note.press("Enter")                       # keyboard-friendly: Enter saves the decision
                _settle(page)
                assert "1 of" in page.inner_text("body") and "reviewed by carol" in page.inner_text("body")
                _label_by_keyboard(page)
            if name == "Compare":  # after Label and Correct were opened and a decision saved (issue 23)
                assert "was made before" not in page.inner_text("body"), "a false 'stale' warning on Compare"
            if name == "Report":
                page.get_by_role("button", name="Build the HTML report").click()
                _settle(page)
                page.get_by_role("button", name="Download report.html").wait_for()
            _check_clean(page, name)
            _shoot(page, name)
        _run_a_small_identify(page)
        browser.close()
    assert (home / "demo" / "exports" / "report.html").exists()


def _expand_button_clear_of_the_heading(page) -> None:
    """Hovering the scenario's samples shows their expand button above them; it must not cover the heading."""
    samples = page.get_by_test_id("stElementContainer").filter(has=page.get_by_test_id("stImage")).first
    samples.hover()
    bar = samples.get_by_test_id("stElementToolbar").first
    bar.wait_for(state="visible")
    button = None
    while button != (now := bar.bounding_box()):   # the toolbar slides in: measure it where it comes to rest
        button = now
        page.wait_for_timeout(250)
    heading = page.get_by_test_id("stMarkdown").filter(has_text="· weight").first.bounding_box()
    assert button["y"] >= heading["y"] + heading["height"], f"the expand button {button} covers the heading {heading}"


def _label_by_keyboard(page) -> None:
    """One key per decision: "6" saves "failure, true label 6" for the next scenario and moves on; "Left" goes back."""
    page.get_by_role("heading", name="Label").first.click()   # out of the note field: keys go to the page
    page.keyboard.press("6")
    _settle(page)
    body = page.inner_text("body")
    if "Technical details" in body:
        page.get_by_text("Technical details").click()
        _settle(page)
        body = page.inner_text("body")
    assert "2 of" in body, f"key 6 saved a decision: {body[-3000:]}"
    page.keyboard.press("ArrowLeft")
    _settle(page)


def _lasso(page) -> None:
    """Lasso a region of the latent map: the selected points' images appear below it."""
    thumbs = page.get_by_text("Thumbnails on hover", exact=True)
    if thumbs.count():  # small maps open as the thumbnail chart (box select); the lasso is on the WebGL map
        thumbs.first.click()
        _settle(page)
    plot = page.locator(".js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    _legend_clear_of_the_toolbar(page, plot)
    box = plot.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + 0.1 * w, y0 + 0.1 * h)
    page.mouse.down()
    for fx, fy in ((0.9, 0.1), (0.9, 0.9), (0.1, 0.9), (0.1, 0.12)):
        page.mouse.move(x0 + fx * w, y0 + fy * h, steps=8)
    page.mouse.up()
    _settle(page)
    assert "Selected:" in page.inner_text("body"), "a lasso on the map shows the selected points' images"


def _overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def _legend_clear_of_the_toolbar(page, plot) -> None:
    """The map's legend (one entry per scenario, training images their own) is not under plotly's toolbar."""
    plot.hover()
    bar = plot.locator(".modebar").first
    bar.wait_for(state="visible")
    entries = plot.locator(".legend .traces")
    assert entries.count() >= 2, "the map has a legend with its scenarios"
    names = [entries.nth(i).text_content() or "" for i in range(entries.count())]
    assert any(n.startswith("training images") for n in names), names
    for i in range(min(entries.count(), 5)):
        assert not _overlap(bar.bounding_box(), entries.nth(i).bounding_box()), f"the toolbar covers {names[i]}"


def test_a_cold_deep_link_shows_something_at_once_and_never_the_file_menu(server):
    """A fresh server, /explore first: within 3 s a spinner or the page; the pages/ folder's raw file-name
    menu ("streamlit app, compare, …") should never show (still seen on a loaded machine: xfail)."""
    url, _ = server
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.monotonic()
        page.goto(f"{url}/explore", wait_until="commit")
        first_sign, usable, raw_menu_seen = None, None, []
        while time.monotonic() - start < 120 and usable is None:
            body = page.inner_text("body") if page.locator("body").count() else ""
            if "streamlit app" in body.lower():
                raw_menu_seen.append(round(time.monotonic() - start, 2))
            if first_sign is None and ("Opening Defuse" in body or "Explore" in body
                                       or page.get_by_test_id("stSpinner").count()):
                first_sign = time.monotonic() - start
            if page.get_by_role("heading", name="Explore").count():
                usable = time.monotonic() - start
            page.wait_for_timeout(100)
        browser.close()
    print(f"cold deep link: first sign {first_sign:.2f} s, Explore's heading {usable:.2f} s, "
          f"raw menu seen at {raw_menu_seen}")
    assert first_sign is not None and first_sign <= 3.0, f"nothing shown for {first_sign} s"
    assert usable is not None
    if raw_menu_seen:  # known, not fixed yet (issue 23, point 7): see the report; the spinner comes at once
        pytest.xfail(f"the pages/ folder's file-name menu showed from {raw_menu_seen[0]} to {raw_menu_seen[-1]} s")


def _run_a_small_identify(page) -> None:
    """Start a real (small) identify job from the page and follow it to its end."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Identify", exact=True).click()
    _settle(page)
    for label, value in (("Q — perturbations per image", "20"), ("Images searched", "64")):
        box = page.get_by_role("spinbutton", name=label)
        box.fill(value)
        box.press("Tab")
    page.get_by_text("Replace the current identify results", exact=False).click()   # identify was done: confirm
    page.get_by_role("button", name="Run identify again").click()
    page.get_by_text("Identify finished").wait_for(timeout=180_000)
    _settle(page)
    _check_clean(page, "identify job")
    _shoot(page, "identify-job")
