"""A screenshot of the Explore page's latent map on the demo project, in headless Chromium (issue 23).

Starts the app on a fresh demo project (its first look precomputed: 44 scenarios, the UMAP map), opens
/explore, waits for the map and saves the map's element to docs/map-confusions.png (and the whole page next to
it as map-confusions-page.png when --page is given).

    python benchmarks/map_screenshot.py [--out docs/map-confusions.png] [--page]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "map-confusions.png"))
    parser.add_argument("--page", action="store_true", help="also the whole page")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    home = Path(tempfile.mkdtemp(prefix="defuse-shot-"))
    port = _port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.headless", "true",
           "--server.port", str(port), "--server.address", "127.0.0.1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "DEFUSE_HOME": str(home), "DEFUSE_NO_WARMUP": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/explore?project=demo")
            plot = page.locator(".js-plotly-plot").first
            plot.wait_for(timeout=600_000)
            page.wait_for_timeout(4000)
            plot.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            container = page.get_by_test_id("stPlotlyChart").first
            container.screenshot(path=str(out))
            if args.page:
                page.screenshot(path=str(out.with_name(out.stem + "-page.png")), full_page=True)
            browser.close()
        print(out)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
