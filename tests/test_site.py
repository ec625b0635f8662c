"""The static teaching site, and static figures in headless notebook runs without any environment variable."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import plotly.graph_objects as go
import pytest

from mdc_widgets.headless import list_notebooks, render_notebooks
from mdc_widgets.site import LEARNING_ORDER, build_site, notebook_goal, write_page
from mdc_widgets.viz import to_png

ROOT = Path(__file__).resolve().parent.parent


def _executed_notebook(path: Path, title: str, goal: str, n_plotly: int, n_png: int) -> Path:
    """A notebook with the outputs papermill would have stored: plotly figures and PNG panels."""
    cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\n**What this notebook teaches.** {goal}\n\nMore text.")]
    for i in range(n_plotly):
        cell = nbformat.v4.new_code_cell(f"fig{i}")
        spec = json.loads(go.Figure(go.Bar(x=["a", "b"], y=[i, i + 1], name=f"bars {i}")).to_json())
        cell.outputs = [nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": spec})]
        cells.append(cell)
    for i in range(n_png):
        cell = nbformat.v4.new_code_cell(f"panel{i}")
        png = base64.b64encode(to_png(np.full((8, 8, 3), 40 * i, np.uint8))).decode()
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
        cells.append(cell)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), str(path))
    return path


def test_site_pages_show_every_figure_and_the_index_links_them_in_learning_order(tmp_path):
    first = _executed_notebook(tmp_path / "01_quickstart.ipynb", "Quickstart", "Mine a joint set.", 2, 1)
    start = _executed_notebook(
        tmp_path / "06_teaching_mad.ipynb", "Teaching MAD", "Why disagreement finds errors.", 0, 2
    )
    site = tmp_path / "site"
    site.mkdir()
    pages = [write_page(nb, site / f"{nb.stem}.html") for nb in (first, start)]
    index = build_site(pages, site)
    text = index.read_text()
    # the learner starts at 06: it is listed first, with its goal and a thumbnail of its first figure
    assert text.index("06_teaching_mad.html") < text.index("01_quickstart.html")
    assert "Why disagreement finds errors." in text and "Mine a joint set." in text
    assert "data:image/png;base64," in text  # 06's first figure is a PNG panel
    assert 'Plotly.newPlot("thumb-01_quickstart"' in text  # 01's is a plotly figure, drawn statically
    assert (site / "plotly.min.js").stat().st_size > 1_000_000  # one local copy: no CDN at view time
    quick = (site / "01_quickstart.html").read_text()
    assert quick.count("Plotly.newPlot(") == 2 and quick.count('src="data:image/png;base64,') == 1
    assert quick.index('<script src="plotly.min.js">') < quick.index("require.js") if "require.js" in quick else True
    assert pages[0].figures == 3 and pages[1].figures == 2
    assert (site / "06_teaching_mad.html").read_text().count('src="data:image/png;base64,') == 2


def test_every_notebook_states_its_goal_and_prints_its_measured_takeaway():
    for path in list_notebooks():
        nb = nbformat.read(str(path), as_version=4)
        assert path.stem in LEARNING_ORDER, f"{path.name} is missing from the site's learning order"
        assert nb.cells[0].cell_type == "markdown" and "**What this notebook teaches.**" in nb.cells[0].source, (
            path.name
        )
        _, goal = notebook_goal(nb)
        assert len(goal) > 40, f"{path.name}: goal line too short: {goal!r}"
        # the takeaway is printed from the run's own numbers by a code cell, not typed into markdown
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        takeaway = [s for s in code if "What was learned" in s]
        assert takeaway, f"{path.name} has no code cell printing 'What was learned'"
        assert re.search(r"\{[^}]*:[^}]*\}", takeaway[-1]), f"{path.name}: its takeaway prints no computed number"


def _tiny_notebook(path: Path, body: str) -> Path:
    params = nbformat.v4.new_code_cell('output_dir = "."')
    params.metadata["tags"] = ["parameters"]
    cells = [
        nbformat.v4.new_markdown_cell("# Tiny\n\n**What this notebook teaches.** Nothing but the site itself."),
        params,
        nbformat.v4.new_code_cell(body),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.notebook
def test_plain_papermill_without_the_environment_variable_gets_static_figures(tmp_path):
    """The kernel papermill starts has no front end: static_mode() says so although MDC_WIDGETS_STATIC is unset."""
    source = _tiny_notebook(
        tmp_path / "probe.ipynb",
        "from mdc_widgets.headless import headless_runner\nfrom mdc_widgets.widgets import static_mode\n"
        "print('static', static_mode(), 'runner', headless_runner())",
    )
    env = {k: v for k, v in os.environ.items() if k != "MDC_WIDGETS_STATIC"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    target = tmp_path / "probe_out.ipynb"
    subprocess.run(
        [sys.executable, "-m", "papermill", str(source), str(target), "--log-level", "ERROR"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    printed = "".join(o.get("text", "") for o in nbformat.read(str(target), as_version=4).cells[-1].outputs)
    assert "static True runner papermill" in printed


@pytest.mark.notebook
def test_render_writes_a_site_whose_pages_show_the_figures(tmp_path, monkeypatch):
    from mdc_widgets.cli import main

    monkeypatch.delenv("MDC_WIDGETS_STATIC", raising=False)
    source = _tiny_notebook(
        tmp_path / "09_tiny.ipynb",
        "import plotly.graph_objects as go\nimport plotly.io as pio\npio.renderers.default = 'plotly_mimetype+notebook'\n"
        "go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))",
    )
    out = tmp_path / "site"
    assert main(["render", str(source), "--output", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert "09_tiny.html" in index and "Nothing but the site itself." in index and "1 figures" in index
    page = (out / "09_tiny.html").read_text()
    assert page.count("Plotly.newPlot(") == 1 and "plotly.js v" not in page  # one shared plotly.js, not a copy per page
    assert (out / "plotly.min.js").exists()
    with pytest.raises(Exception, match="failed"):
        render_notebooks([_tiny_notebook(tmp_path / "10_broken.ipynb", "1 / 0")], out)
    assert "failed: " in (out / "index.html").read_text()
