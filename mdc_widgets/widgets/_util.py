"""Small helpers shared by the widgets: front-end detection, PNG image widgets, HTML tables."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["captioned", "format_value", "html_table", "image_widget", "static_mode", "status_html"]


def static_mode() -> bool:
    """True where no widget front end can show widgets: plain Python, terminal IPython, or forced.

    A kernel run by papermill, nbconvert or nbval has no front end either
    (:func:`mdc_widgets.headless.headless_runner`). ``MDC_WIDGETS_STATIC=1``
    forces static output, ``MDC_WIDGETS_STATIC=0`` forces widgets.
    """
    forced = os.environ.get("MDC_WIDGETS_STATIC", "").strip().lower()
    if forced:
        return forced not in ("0", "false", "no", "off")
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    # only a kernel (Jupyter, VS Code, Colab) talks to a front end that renders widgets
    if shell is None or type(shell).__name__ not in ("ZMQInteractiveShell", "Shell"):
        return True
    from mdc_widgets.headless import headless_runner

    return headless_runner() is not None


def image_widget(image: np.ndarray, scale: int = 1, width: int | None = None) -> Any:
    """An ``ipywidgets.Image`` holding the PNG of an RGB/grey array (enlarged ``scale`` times).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, 3|4)``; uint8, or float in [0, 1].
    scale : int, optional
        Nearest-neighbour enlargement of the PNG.
    width : int or None, optional
        Displayed width in pixels (height follows); None for the PNG's own size.

    Returns
    -------
    ipywidgets.Image
        The PNG widget.
    """
    import ipywidgets as W

    from mdc_widgets.viz import to_png

    layout = W.Layout(width=f"{width}px", height="auto") if width else W.Layout()
    return W.Image(value=to_png(image, scale=scale), format="png", layout=layout)


def captioned(
    caption: str, image: np.ndarray, *, legend: Sequence[tuple[str, str]] = (), scale: int = 3, width: int | None = None
) -> Any:
    """An image with a caption above and an optional colour legend below.

    Parameters
    ----------
    caption : str
        Bold text above the image (HTML-escaped).
    image : numpy.ndarray
        ``(H, W, 3)`` RGB uint8 (or grey, or float in [0, 1]).
    legend : sequence of (str, str), optional
        ``(name, '#rrggbb')`` swatches under the image; none when empty.
    scale : int, optional
        Nearest-neighbour enlargement of the image.
    width : int or None, optional
        Displayed width in pixels; None for ``W * scale``.

    Returns
    -------
    ipywidgets.VBox
        Caption, image and, if any, the legend.
    """
    import ipywidgets as W

    from mdc_widgets.viz import legend_html

    parts = [W.HTML(f"<b style='font-size:12px'>{html.escape(caption)}</b>"), image_widget(image, scale, width)]
    if legend:
        parts.append(
            W.HTML(legend_html(legend), layout=W.Layout(max_width=f"{(width or image.shape[1] * scale) + 40}px"))
        )
    return W.VBox(parts, layout=W.Layout(margin="0 8px 8px 0", align_items="flex-start"))


def format_value(value: Any) -> str:
    """A short human form of a table cell.

    Parameters
    ----------
    value : object
        A cell value.

    Returns
    -------
    str
        ``"yes"``/``"no"`` for booleans, 4 significant digits for floats (``"-"`` if not finite), else ``str``.
    """
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "-" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def html_table(rows: Mapping[str, Any] | Any, title: str | None = None, max_rows: int = 60) -> str:
    """A compact HTML table of a mapping (two columns) or a DataFrame.

    Parameters
    ----------
    rows : mapping or pandas.DataFrame
        A mapping gives a key and a value column; a DataFrame its own columns (no index).
    title : str or None, optional
        Bold heading above the table.
    max_rows : int, optional
        Rows shown at most (the first ones).

    Returns
    -------
    str
        The HTML snippet; every cell is HTML-escaped.
    """
    import pandas as pd

    head = f"<div style='font-weight:bold;margin-top:6px'>{html.escape(title)}</div>" if title else ""
    style = "border-collapse:collapse;font-size:12px"
    cell = "style='padding:1px 8px;border-bottom:1px solid #ddd;text-align:left'"
    if isinstance(rows, pd.DataFrame):
        frame = rows.head(max_rows)
        header = "".join(f"<th {cell}>{html.escape(str(c))}</th>" for c in frame.columns)
        body = "".join(
            "<tr>" + "".join(f"<td {cell}>{html.escape(format_value(v))}</td>" for v in row) + "</tr>"
            for row in frame.itertuples(index=False)
        )
        return f"{head}<table style='{style}'><tr>{header}</tr>{body}</table>"
    body = "".join(
        f"<tr><th {cell}>{html.escape(str(k))}</th><td {cell}>{html.escape(format_value(v))}</td></tr>"
        for k, v in list(rows.items())[:max_rows]
    )
    return f"{head}<table style='{style}'>{body}</table>"


def status_html(message: str, kind: str = "info") -> str:
    """A one-line status message coloured by kind: info, ok, warning, error.

    Parameters
    ----------
    message : str
        The text (HTML-escaped).
    kind : str, optional
        ``"info"``, ``"ok"``, ``"warning"`` or ``"error"``; an unknown kind is shown as info.

    Returns
    -------
    str
        A coloured ``<span>``.
    """
    colour = {"info": "#333", "ok": "#2a7d2a", "warning": "#a66b00", "error": "#b00020"}.get(kind, "#333")
    return f"<span style='color:{colour};font-size:12px'>{html.escape(message)}</span>"
