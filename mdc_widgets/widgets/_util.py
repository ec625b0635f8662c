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
    """An ``ipywidgets.Image`` holding the PNG of an RGB/grey array (enlarged ``scale`` times)."""
    import ipywidgets as W

    from mdc_widgets.viz import to_png

    layout = W.Layout(width=f"{width}px", height="auto") if width else W.Layout()
    return W.Image(value=to_png(image, scale=scale), format="png", layout=layout)


def captioned(
    caption: str, image: np.ndarray, *, legend: Sequence[tuple[str, str]] = (), scale: int = 3, width: int | None = None
) -> Any:
    """An image with a caption above and an optional colour legend below."""
    import ipywidgets as W

    from mdc_widgets.viz import legend_html

    parts = [W.HTML(f"<b style='font-size:12px'>{html.escape(caption)}</b>"), image_widget(image, scale, width)]
    if legend:
        parts.append(
            W.HTML(legend_html(legend), layout=W.Layout(max_width=f"{(width or image.shape[1] * scale) + 40}px"))
        )
    return W.VBox(parts, layout=W.Layout(margin="0 8px 8px 0", align_items="flex-start"))


def format_value(value: Any) -> str:
    """A short human form of a table cell."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return "-" if not np.isfinite(value) else f"{value:.4g}"
    return str(value)


def html_table(rows: Mapping[str, Any] | Any, title: str | None = None, max_rows: int = 60) -> str:
    """A compact HTML table of a mapping (two columns) or a DataFrame."""
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
    """A one-line status message coloured by kind: info, ok, warning, error."""
    colour = {"info": "#333", "ok": "#2a7d2a", "warning": "#a66b00", "error": "#b00020"}.get(kind, "#333")
    return f"<span style='color:{colour};font-size:12px'>{html.escape(message)}</span>"
