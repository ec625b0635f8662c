"""End to end in a real browser: JupyterLab on localhost, headless Chromium driven by Playwright.

The quickstart notebook is opened and run in JupyterLab, a sample is clicked in
the browser widget, and its overlay images must render; a k out of range and an
invalid filter are typed in, and a fresh kernel must reopen what was on screen
(the result, the open sample) with a "Restored: ..." line. Screenshots are kept in
a temporary folder, or in ``$MDC_E2E_ARTIFACTS`` (e.g. ``reports/e2e``, for the
README's pictures). Needs Debian's ``chromium`` (``make test`` installs it where
apt is available); without it the test is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
# screenshots go to a temporary folder (tests write nowhere else); MDC_E2E_ARTIFACTS=reports/e2e keeps them
ARTIFACTS = Path(os.environ.get("MDC_E2E_ARTIFACTS", Path(tempfile.gettempdir()) / "mdc-widgets-e2e"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SOD300 = REPO.parent / "shared" / "data" / "sod300"
REAL_IDS = ["181018", "2092", "43083", "8143"]  # a portrait photo among them


def _real_photo_notebook(root: Path) -> None:
    """Four SOD-300 photos with the three published maps, and a notebook that opens them in the app."""
    import nbformat

    for folder in ["images", "gt", "maps/amulet", "maps/dss", "maps/picanet"]:
        (root / "sod" / folder).mkdir(parents=True)
        for sid in REAL_IDS:
            name = f"{sid}.jpg" if folder == "images" else f"{sid}.png"
            shutil.copy(SOD300 / folder / name, root / "sod" / folder / name)
    code = """from mdc_widgets.mining import CompetitionGroup, Constraints
from mdc_widgets.session import Session
from mdc_widgets.widgets import MadApp
maps = {m: f"sod/maps/{m}" for m in ("amulet", "dss", "picanet")}
session = Session("sod/images", "store", image_size=(160, 160), fit="letterbox",
                  ground_truth={"saliency": "sod/gt"}, maps=maps, device="cpu")
session.predict(list(maps))
session.mine(CompetitionGroup(sod=tuple(maps)), k=2, constraints=Constraints.none())
MadApp(session)"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, root / "real_photos.ipynb")


def _reopen_notebook(root: Path) -> None:
    """What a user runs after a kernel restart: the quickstart's session and app, nothing mined again."""
    import nbformat

    code = """from mdc_widgets.session import Session
from mdc_widgets.widgets import MadApp
MadApp(Session("miniworld", n=300))"""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, root / "reopen.ipynb")


def _own_home(tmp_path: Path) -> Path:
    """A cache of the test's own (the trained zoo linked in): other tests running at the same time
    mine the same pools, and their sessions' stores and saved app states must not meet this one's."""
    from mdc_widgets.config import cache_dir

    home = tmp_path / "mdc_home"
    home.mkdir()
    (home / "weights").symlink_to(cache_dir() / "weights", target_is_directory=True)
    return home


@pytest.fixture
def jupyterlab(tmp_path, trained_zoo):
    """A JupyterLab server on loopback, serving a copy of the quickstart (the original keeps no outputs)."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "01_quickstart.ipynb", root / "01_quickstart.ipynb")
    _reopen_notebook(root)
    if SOD300.exists():
        _real_photo_notebook(root)
    port, token = _free_port(), "mdc-e2e"
    log = open(tmp_path / "jupyterlab.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.open_browser=False",
            # a fresh workspace: JupyterLab would otherwise reopen the notebooks of the previous test's server
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MDC_WIDGETS_STATIC": "0", "MDC_WIDGETS_HOME": str(_own_home(tmp_path))},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((tmp_path / "jupyterlab.log").read_text()) from None
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


@contextmanager
def _browser_page(last_state: str) -> Iterator[Any]:
    """A Chromium page driven by Playwright; a screenshot of its last state is kept whatever happens."""
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        try:
            yield page
        finally:
            page.screenshot(path=str(ARTIFACTS / last_state))
            browser.close()


def _run_all_cells(page: Any, url: str, token: str, notebook: str, navigate: bool = True) -> None:
    if navigate:
        page.goto(f"{url}/lab/tree/{notebook}?token={token}")
    else:  # open it beside the others, as a user does from the file browser (no page reload)
        page.evaluate(f"() => {{ window.jupyterapp.commands.execute('docmanager:open', {{path: '{notebook}'}}); }}")
        page.wait_for_function(
            f"() => window.jupyterapp.shell.currentWidget && window.jupyterapp.shell.currentWidget.context"
            f" && window.jupyterapp.shell.currentWidget.context.path === '{notebook}'",
            timeout=120_000,
        )
    if navigate:  # (an opened notebook is the current widget already; the others stay in hidden tabs)
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
    # wait until the kernel is connected, then run every cell through JupyterLab's own command
    page.wait_for_function(
        "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
        " && window.jupyterapp.shell.currentWidget.sessionContext"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus === 'connected'",
        timeout=120_000,
    )
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    news = page.get_by_role("button", name="No")  # JupyterLab's news prompt would cover the screenshot
    if news.count():
        news.first.click()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(not SOD300.exists(), reason=f"the SOD-300 photos are not at {SOD300} (../shared is absent)")
def test_real_photos_open_in_the_browser_at_their_own_aspect_ratio(jupyterlab):
    url, token = jupyterlab
    with _browser_page("real_photos_last_state.png") as page:
        _run_all_cells(page, url, token, "real_photos.ipynb")
        browse_tab = page.locator(".lm-TabBar-tab", has_text="Browse").first
        browse_tab.wait_for(timeout=300_000)
        browse_tab.click()
        first_sample = page.locator(".jupyter-widgets button", has_text="#1 ").first
        first_sample.wait_for(timeout=60_000)
        first_sample.click()
        caption = page.locator(".jp-OutputArea-output").get_by_text("amulet (SOD)").first
        caption.wait_for(timeout=60_000)
        # the detail's pictures decode, and none is squashed to the square working canvas
        shapes = page.wait_for_function(
            "() => { const imgs = [...document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets img')]"
            ".filter(i => i.offsetParent !== null && i.naturalWidth > 0 && i.naturalWidth !== i.naturalHeight);"
            " return imgs.length >= 4 ? imgs.map(i => [i.naturalWidth, i.naturalHeight]) : 0; }",
            timeout=60_000,
        ).json_value()
        assert all(abs(w / h - 481 / 321) < 0.05 or abs(h / w - 481 / 321) < 0.05 for w, h in shapes), shapes
        # panels sized to the screen: several photos side by side, none drawn wider than its panel
        widths = page.evaluate(
            "() => [...document.querySelectorAll('.jp-OutputArea-output .jupyter-widgets img')]"
            ".filter(i => i.offsetParent !== null && i.naturalWidth !== i.naturalHeight)"
            ".map(i => i.getBoundingClientRect().width)"
        )
        assert max(widths) <= 320, widths
        # the overlays' opacity control and the disagreement legend are there
        page.locator(".jp-OutputArea-output").get_by_text("overlay opacity").first.wait_for(timeout=30_000)
        page.locator(".jp-OutputArea-output").get_by_text("edge of the disputed region").first.wait_for(timeout=30_000)
        caption.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "real_photos_browser.png"))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_quickstart_runs_in_jupyterlab_and_a_clicked_sample_shows_its_overlays(jupyterlab):
    url, token = jupyterlab
    with _browser_page("last_state.png") as page:
        _run_all_cells(page, url, token, "01_quickstart.ipynb")
        # the app's tabs appear when the last cell has run
        browse_tab = page.locator(".lm-TabBar-tab", has_text="Browse").first
        browse_tab.wait_for(timeout=420_000)
        browse_tab.click()
        first_sample = page.locator(".jupyter-widgets button", has_text="#1 ").first
        first_sample.wait_for(timeout=60_000)
        first_sample.click()
        # the clicked sample's detail (a restored one may be open already: wait for this one's header)
        first_id = page.locator(".jp-OutputArea-output .jupyter-widgets button", has_text="#1 ").first.get_attribute(
            "title"
        )
        first_id = first_id.split("Open ", 1)[1].split(":", 1)[0] if first_id else ""
        page.locator(".jp-OutputArea-output h4", has_text=f"{first_id} - rank 1").first.wait_for(timeout=60_000)
        # a model's caption in the detail view (outputs only: the notebook's code mentions "(SS)" too)
        caption = page.locator(".jp-OutputArea-output").get_by_text("(SS)").first
        caption.wait_for(timeout=60_000)
        # every overlay image in the detail view has decoded pixels
        loaded = page.wait_for_function(
            "() => { const imgs = [...document.querySelectorAll('.jupyter-widgets img')]"
            ".filter(i => i.offsetParent !== null);"
            " return imgs.length >= 4 && imgs.every(i => i.complete && i.naturalWidth > 0) ? imgs.length : 0; }",
            timeout=60_000,
        )
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
        # k out of range is corrected, and the picker says so
        k_box = page.locator(".jupyter-widgets.widget-text", has_text="k (samples)").locator("input").first
        k_box.fill("5000")
        k_box.press("Enter")
        output = page.locator(".jp-OutputArea-output")
        output.get_by_text("k = 5000 is not possible").first.wait_for(timeout=30_000)
        assert k_box.input_value() == "300"
        page.locator(".lm-TabBar-tab", has_text="Compete").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "quickstart_picker.png"))
        # an invalid filter says why and leaves no stale thumbnails under its error
        tabs.filter(has_text="Browse").first.click()
        filter_box = page.locator(".jupyter-widgets.widget-text", has_text="Filter").locator("input").first
        filter_box.fill("nope > 1")
        filter_box.press("Enter")
        output.get_by_text("Nothing is shown until the filter is fixed").first.wait_for(timeout=30_000)
        assert output.locator(".jupyter-widgets button", has_text="#1 ").count() == 0
        page.screenshot(path=str(ARTIFACTS / "quickstart_invalid_filter.png"))
        filter_box.fill("")
        filter_box.press("Enter")
        output.locator(".jupyter-widgets button", has_text="#1 ").first.wait_for(timeout=30_000)
        # open the second sample: that is what a restarted kernel must bring back
        second = output.locator(".jupyter-widgets button", has_text="#2 ").first
        second.click()
        opened = second.inner_text().split(" ", 1)[1].strip()
        output.locator("h4", has_text=opened).first.wait_for(timeout=30_000)
        # a kernel restart: a fresh kernel opens the same session and the app reopens what was on screen
        page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }")
        _run_all_cells(page, url, token, "reopen.ipynb", navigate=False)
        reopened = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output")
        restored = reopened.get_by_text("Restored: the result")
        restored.first.wait_for(timeout=300_000)
        reopened.locator(".jupyter-widgets button", has_text="#1 ").first.wait_for(timeout=60_000)
        reopened.locator("h4", has_text=opened).first.wait_for(timeout=60_000)
        restored.first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "quickstart_restored.png"))
