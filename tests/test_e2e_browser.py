"""End to end in a real browser: JupyterLab on localhost, headless Chromium driven by Playwright.

The quickstart notebook is opened and run in JupyterLab, a sample is clicked in
the browser widget, and its overlay images must render. A screenshot is kept
in ``reports/e2e/`` (the CI artifact). Needs Debian's ``chromium`` (``make
test`` installs it where apt is available); without it the test is skipped
with that reason.
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

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MDC_E2E_ARTIFACTS", REPO / "reports" / "e2e"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path, trained_zoo):
    """A JupyterLab server on loopback, serving a copy of the quickstart (the original keeps no outputs)."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "01_quickstart.ipynb", root / "01_quickstart.ipynb")
    port, token = _free_port(), "mdc-e2e"
    log = open(tmp_path / "jupyterlab.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MDC_WIDGETS_STATIC": "0"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((tmp_path / "jupyterlab.log").read_text())
            time.sleep(1)
    else:
        process.kill()
        raise RuntimeError("JupyterLab did not start in 120 s:\n" + (tmp_path / "jupyterlab.log").read_text())
    yield url, token
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_quickstart_runs_in_jupyterlab_and_a_clicked_sample_shows_its_overlays(jupyterlab):
    playwright = pytest.importorskip("playwright.sync_api")
    url, token = jupyterlab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            page.goto(f"{url}/lab/tree/01_quickstart.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=120_000)
            # wait until the kernel is connected, then run every cell through JupyterLab's own command
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected'",
                timeout=120_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            news = page.get_by_role("button", name="No")  # JupyterLab's news prompt would cover the screenshot
            if news.count():
                news.first.click()
            # the app's tabs appear when the last cell has run
            browse_tab = page.locator(".lm-TabBar-tab", has_text="Browse").first
            browse_tab.wait_for(timeout=420_000)
            browse_tab.click()
            first_sample = page.locator(".jupyter-widgets button", has_text="#1 ").first
            first_sample.wait_for(timeout=60_000)
            first_sample.click()
            # a model's caption in the detail view (outputs only: the notebook's code mentions "(SS)" too)
            caption = page.locator(".jp-OutputArea-output").get_by_text("(SS)").first
            caption.wait_for(timeout=60_000)
            # every overlay image in the detail view has decoded pixels
            loaded = page.wait_for_function(
                "() => { const imgs = [...document.querySelectorAll('.jupyter-widgets img')]"
                ".filter(i => i.offsetParent !== null);"
                " return imgs.length >= 4 && imgs.every(i => i.complete && i.naturalWidth > 0) ? imgs.length : 0; }",
                timeout=60_000)
            assert loaded.json_value() >= 4
            caption.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "quickstart_browser.png"))
            # the other tabs, as a user sees them: Grad-CAM of the opened sample, the plots, the picker
            tabs = page.locator(".lm-TabBar-tab")
            tabs.filter(has_text="Explain").first.click()
            page.locator(".jupyter-widgets button", has_text="Explain").last.click()
            page.locator(".jp-OutputArea-output").get_by_text("Grad-CAM").first.wait_for(timeout=120_000)
            page.locator(".jp-OutputArea-output").get_by_text("Grad-CAM").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "quickstart_explain.png"))
            tabs.filter(has_text="Plots").first.click()
            page.locator(".jp-OutputArea-output .js-plotly-plot").first.wait_for(timeout=60_000)
            page.locator(".jp-OutputArea-output .js-plotly-plot").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "quickstart_plots.png"))
            tabs.filter(has_text="Compete").first.click()
            page.locator(".lm-TabBar-tab", has_text="Compete").first.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "quickstart_picker.png"))
        finally:
            page.screenshot(path=str(ARTIFACTS / "last_state.png"))
            browser.close()
