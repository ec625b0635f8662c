"""A static teaching site from executed notebooks: an entry page and one page per notebook, no kernel needed.

A teacher opens ``index.html`` in any browser, offline: each notebook's page
shows its text, tables and every figure (plotly figures drawn by one
``plotly.min.js`` written once into the site folder, PNG panels embedded), and
the entry page lists the notebooks in the learning order with each one's goal
and a thumbnail of its first figure.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdc_widgets._atomic import atomic_write_text

__all__ = ["LEARNING_ORDER", "NotebookPage", "build_site", "notebook_goal", "page_figures", "write_page"]

PLOTLY_MIME = "application/vnd.plotly.v1+json"
PLOTLY_JS = "plotly.min.js"
# where a learner starts: the argument first (06), then the tools that apply it
LEARNING_ORDER = (
    "06_teaching_mad",
    "01_quickstart",
    "02_intra_task_mining",
    "03_cross_task_mining",
    "05_labeling_and_ranking",
    "04_reproduce_paper",
    "07_strategies_comparison",
    "08_real_photos",
)
_GOAL_MARKERS = ("**What this notebook teaches.**", "**Goal.**")


@dataclass
class NotebookPage:
    """One executed notebook as the site shows it.

    Parameters
    ----------
    stem : str
        The notebook's file name without ``.ipynb`` (e.g. ``"01_quickstart"``).
    title : str
        Its first ``#`` heading.
    goal : str
        The goal paragraph (see :func:`notebook_goal`).
    page : str or None, optional
        File name of the rendered page; None where the notebook failed.
    figures : int, optional
        How many figures its outputs hold.
    thumbnail : dict of {str: object} or None, optional
        Its first figure, ``{"png": base64}`` or ``{"plotly": spec}``; None without figures.
    error : str or None, optional
        The error message where the notebook failed to execute.
    seconds : float or None, optional
        Execution time in seconds, where measured.
    """

    stem: str
    title: str
    goal: str
    page: str | None = None  # file name of the page, None where the notebook failed
    figures: int = 0
    thumbnail: dict[str, Any] | None = field(default=None, repr=False)  # {"png": b64} or {"plotly": spec}
    error: str | None = None
    seconds: float | None = None


def notebook_goal(nb: Any) -> tuple[str, str]:
    """The title (first ``#`` heading) and the goal line of a notebook.

    The goal is the paragraph that starts with ``**What this notebook
    teaches.**`` (or ``**Goal.**``) in the first markdown cell, else that
    cell's first paragraph after the title.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The notebook (read with ``nbformat.read``).

    Returns
    -------
    title : str
        The heading text, ``""`` if there is none.
    goal : str
        The goal paragraph on one line, ``""`` if the first markdown cell has none.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
    ...     "# Title\\n\\n**What this notebook teaches.** Why MAD works.\\n\\nMore.")])
    >>> notebook_goal(nb)
    ('Title', 'Why MAD works.')
    """
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    title_match = re.search(r"^#\s+(.+)$", first, flags=re.M)
    title = title_match.group(1).strip() if title_match else ""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", first) if p.strip() and not p.lstrip().startswith("#")]
    for paragraph in paragraphs:
        for marker in _GOAL_MARKERS:
            if paragraph.startswith(marker):
                return title, " ".join(paragraph[len(marker) :].split())
    return title, " ".join(paragraphs[0].split()) if paragraphs else ""


def page_figures(nb: Any) -> list[dict[str, Any]]:
    """Every figure a notebook's outputs hold, in order: ``{"plotly": spec}`` or ``{"png": base64}``.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook.

    Returns
    -------
    list of dict
        One entry per plotly or PNG output (plotly preferred where a cell has both).
    """
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                found.append({"plotly": data[PLOTLY_MIME]})
            elif "image/png" in data:
                found.append({"png": data["image/png"]})
    return found


def _plotly_div(spec: Mapping[str, Any], div_id: str, *, static: bool = False, height: int | None = None) -> str:
    layout = dict(spec.get("layout", {}))
    if height is not None:
        layout.update(height=height, margin={"l": 30, "r": 10, "t": 30, "b": 30}, showlegend=False)
        layout.setdefault("title", None)
    config = {"responsive": True, "staticPlot": static, "displaylogo": False}
    payload = json.dumps([spec.get("data", []), layout, config]).replace("</", "<\\/")
    style = f"height:{height}px;" if height else ""
    return (
        f'<div class="mdc-plotly" id="{div_id}" style="{style}"></div>'
        f'<script>Plotly.newPlot("{div_id}", ...{payload});</script>'
    )


def _static_outputs(nb: Any) -> Any:
    """A copy of ``nb`` whose plotly outputs draw with the site's own plotly.js (no CDN, no require.js)."""
    import copy

    nb = copy.deepcopy(nb)
    counter = 0
    for cell in nb.cells:
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                counter += 1
                output["data"] = {"text/html": _plotly_div(data[PLOTLY_MIME], f"figure-{counter}")}
            elif "text/html" in data and "plotly.js v" in data["text/html"]:
                continue  # plotly's own copy of plotly.js per notebook: the site loads one copy for all pages
            outputs.append(output)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return nb


def write_page(executed: str | Path, target: str | Path) -> NotebookPage:
    """Convert one executed notebook into a static page beside the site's ``plotly.min.js``.

    Parameters
    ----------
    executed : str or Path
        An executed ``.ipynb`` (papermill's output).
    target : str or Path
        The ``.html`` file to write.

    Returns
    -------
    NotebookPage
        Its title, goal, figure count and first figure.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed), as_version=4)
    title, goal = notebook_goal(nb)
    figures = page_figures(nb)
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(_static_outputs(nb))
    # plotly.js first: loaded after the template's require.js it would register as a module, not as window.Plotly
    back = '<p><a href="index.html">&larr; all notebooks</a></p>'
    body = body.replace("<head>", f'<head>\n<script src="{PLOTLY_JS}"></script>', 1)
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + back, body, count=1)
    target = Path(target)
    atomic_write_text(target, body)
    return NotebookPage(
        stem=Path(executed).stem,
        title=title or Path(executed).stem,
        goal=goal,
        page=target.name,
        figures=len(figures),
        thumbnail=figures[0] if figures else None,
    )


def _thumbnail_html(page: NotebookPage) -> str:
    if page.thumbnail is None:
        return "<div class='thumb empty'>no figure</div>"
    if "png" in page.thumbnail:
        data = page.thumbnail["png"]
        if isinstance(data, bytes):
            data = base64.b64encode(data).decode()
        return f"<img class='thumb' alt='first figure of {html.escape(page.stem)}' src='data:image/png;base64,{data}'>"
    return _plotly_div(page.thumbnail["plotly"], f"thumb-{page.stem}", static=True, height=200)


def build_site(
    pages: Sequence[NotebookPage],
    output_dir: str | Path,
    *,
    extra_html: str = "",
    title: str = "Learn MAD: the mdc-widgets notebooks",
) -> Path:
    """Write ``index.html`` (the entry page) and ``plotly.min.js`` for pages already written by :func:`write_page`.

    Notebooks are listed in :data:`LEARNING_ORDER` (unknown ones after, by
    name), each with its goal, a thumbnail of its first figure, its figure
    count and, where it failed, the error.

    Parameters
    ----------
    pages : sequence of NotebookPage
        The pages (failed notebooks with ``page=None`` and ``error``).
    output_dir : str or Path
        The site folder; pages already lie in it.
    extra_html : str, optional
        Appended below the list (the report tables).
    title : str, optional
        The entry page's heading.

    Returns
    -------
    Path
        The entry page, ``output_dir/index.html``.
    """
    from plotly.offline import get_plotlyjs

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    script = output_dir / PLOTLY_JS
    if not script.exists():
        atomic_write_text(script, get_plotlyjs())
    order = {stem: i for i, stem in enumerate(LEARNING_ORDER)}
    items = []
    for position, page in enumerate(sorted(pages, key=lambda p: (order.get(p.stem, len(order)), p.stem)), 1):
        name = html.escape(f"{position}. {page.title}")
        heading = f"<a href='{html.escape(page.page)}'>{name}</a>" if page.page else name
        status = (
            f"<p class='error'>failed: {html.escape(page.error[:500])}</p>"
            if page.error
            else f"<p class='meta'>{page.figures} figures"
            + (f", ran in {page.seconds:.0f} s" if page.seconds is not None else "")
            + f" &middot; <code>{html.escape(page.stem)}</code></p>"
        )
        items.append(
            f"<li class='card'><div class='text'><h2>{heading}</h2><p>{html.escape(page.goal)}</p>{status}</div>"
            f"{_thumbnail_html(page) if page.page else ''}</li>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "ul{list-style:none;padding:0}.card{display:flex;gap:1.5em;align-items:center;border-bottom:1px solid #ddd;"
        "padding:1em 0}.text{flex:1}.thumb{width:320px;max-height:220px;object-fit:contain;flex:none}"
        ".mdc-plotly{width:320px;flex:none}.meta{color:#666;font-size:90%}.error{color:#b00}"
    )
    intro = (
        "<p>Maximum discrepancy (MAD) competition finds the images on which vision models fail without labels: "
        "two models that disagree cannot both be right. Start with the first notebook (why disagreement certifies "
        "an error), then follow the list. Every page opens without Python or a kernel.</p>"
    )
    atomic_write_text(
        output_dir / "index.html",
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><script src='{PLOTLY_JS}'></script><style>{style}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{intro}<ul>{''.join(items)}</ul>{extra_html}</body></html>",
    )
    return output_dir / "index.html"
