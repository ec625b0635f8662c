"""Browse the pool by score: a paged thumbnail grid with sort and filter, and a detail view per sample.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mdc_widgets.errors import MdcError
from mdc_widgets.widgets._util import captioned, format_value, html_table, status_html
from mdc_widgets.widgets.overlays import DISAGREEMENT_LEGEND, disagreement_overlay, panel_scale, prediction_overlay

__all__ = ["DetailView", "SampleBrowser"]

PAGE_SIZES = (8, 12, 16, 24, 48)


class DetailView:
    """Everything about one sample: image, ground truth, each model's overlay with legend, disagreements, tables.

    Parameters
    ----------
    scale : int, optional
        Largest pixel enlargement of small pictures (mini-world images stay crisp).
    panel_px : int, optional
        Largest width of one picture; photos keep their aspect ratio and panels wrap into a grid.
    opacity : float, optional
        Starting opacity of the model and ground-truth overlays (a slider changes it).
    """

    def __init__(self, scale: int = 3, panel_px: int = 300, opacity: float = 0.6):
        import ipywidgets as W

        self.scale = scale
        self.panel_px = panel_px
        self.header = W.HTML()
        self.opacity = W.FloatSlider(
            value=opacity,
            min=0.0,
            max=1.0,
            step=0.05,
            readout_format=".2f",
            description="overlay opacity",
            style={"description_width": "110px"},
            continuous_update=False,
        )
        grid = {"flex_flow": "row wrap", "align_items": "flex-start"}
        self.images = W.HBox(layout=W.Layout(**grid))
        self.models = W.HBox(layout=W.Layout(**grid))
        self.disagreement = W.HBox(layout=W.Layout(**grid))
        self.tables = W.HTML()
        self.widget = W.VBox(
            [self.header, self.opacity, self.images, self.models, self.disagreement, self.tables],
            layout=W.Layout(flex="1 1 340px", min_width="320px"),
        )
        self.detail: dict[str, Any] | None = None
        self.opacity.observe(lambda _: self.detail is not None and self._draw(), "value")

    def _panel(self, caption: str, image: np.ndarray, legend: Any = ()) -> Any:
        factor, width = panel_scale(image.shape, self.scale, self.panel_px)
        return captioned(caption, image, legend=legend, scale=factor, width=width)

    def show(self, detail: dict[str, Any]) -> None:
        """Fill the view from :meth:`Session.sample_detail`'s dict.

        Parameters
        ----------
        detail : dict of {str: object}
            The detail of one sample (image, predictions, disagreement, ground truth, scores).
        """
        self.detail = detail
        self._draw()

    def _draw(self) -> None:
        detail, alpha = self.detail, float(self.opacity.value)
        scores = detail.get("scores", {})
        rank = scores.get("rank")
        invalid = (
            ""
            if detail.get("valid", True)
            else f" <span style='color:#b00020'>(not decoded: {html.escape(str(detail.get('error')))})</span>"
        )
        self.header.value = (
            "<div style='border-left:4px solid #1a5fb4;padding-left:8px'>"
            f"<h4 style='margin:4px 0;word-break:break-all'>{html.escape(detail['sample'])}"
            f"{f' - rank {rank}' if rank else ''}"
            f"{' - selected' if scores.get('selected') else ''}</h4>{invalid}</div>"
        )
        image = detail["image"]
        gt = detail.get("ground_truth") or {}
        row = [self._panel("image", image)]
        for name in ("semantic", "saliency"):
            if name in gt:
                task = "ss" if name == "semantic" else "sod"
                row.append(
                    self._panel(
                        f"ground truth: {name}",
                        prediction_overlay(image, gt[name]["map"], task, alpha),
                        gt[name]["legend"],
                    )
                )
        self.images.children = row
        self.models.children = [
            self._panel(
                f"{model} ({view['task'].upper()})",
                prediction_overlay(image, view["map"], view["task"], alpha),
                view["legend"],
            )
            for model, view in detail["predictions"].items()
        ]
        self.disagreement.children = [
            self._panel(
                f"{d['kind']}: {d['model_a']} vs {d['model_b']} ("
                + (
                    f"mean difference {d['fraction']:.0%}, {float((d['map'] >= 0.5).mean()):.0%} of pixels differ by half"
                    if d["kind"] == "sod"
                    else f"{d['fraction']:.0%} of pixels"
                )
                + ")",
                disagreement_overlay(image, d["map"], max(alpha, 0.5)),
                DISAGREEMENT_LEGEND,
            )
            for d in detail["disagreement"].values()
        ]
        parts = []
        if scores:
            parts.append(html_table({k: v for k, v in scores.items()}, "scores"))
        metrics = gt.get("metrics") if gt else None
        if metrics:
            frame = pd.DataFrame(metrics).T.reset_index().rename(columns={"index": "model"})
            parts.append(html_table(frame, "against ground truth"))
        if detail.get("labels"):
            parts.append(html_table(detail["labels"], "verdicts"))
        if detail.get("metadata"):
            parts.append(html_table(detail["metadata"], "metadata"))
        self.tables.value = (
            "<div style='display:flex;gap:24px;flex-wrap:wrap'>" + "".join(f"<div>{p}</div>" for p in parts) + "</div>"
        )


class SampleBrowser:
    """A paged grid of thumbnails ordered by score; a thumbnail's button opens its detail view.

    Parameters
    ----------
    session : Session
        The :class:`~mdc_widgets.session.Session`.
    page_size : int, optional
        Thumbnails per page.
    columns : int, optional
        Thumbnails per row.
    thumb_width : int, optional
        Thumbnail width in pixels.
    """

    def __init__(self, session: Any, page_size: int = 12, columns: int = 4, thumb_width: int = 112):
        import ipywidgets as W

        self.session = session
        self.columns = columns
        self.thumb_width = thumb_width
        self.result_key: str | None = None
        self.table = pd.DataFrame()
        self.page = 0
        self.current_sample: str | None = None
        self._open_callbacks: list[Callable[[str], None]] = []
        self._change_callbacks: list[Callable[[], None]] = []
        self._updating = False
        # PNG bytes of thumbnails already drawn (sample id -> png): paging back and re-sorting costs nothing
        self._thumbs: dict[str, bytes] = {}
        self._tile_boxes: dict[str, Any] = {}

        self.sort = W.Dropdown(options=["score"], value="score", description="Sort by")
        self.ascending = W.ToggleButtons(
            options=[("high first", False), ("low first", True)],
            value=False,
            tooltips=["largest values first", "smallest values first"],
        )
        self.filter = W.Text(
            value="",
            placeholder="e.g. selected and occlusion > 0.3",
            description="Filter",
            continuous_update=False,
            layout=W.Layout(width="420px"),
        )
        self.apply_button = W.Button(description="Apply", icon="filter", tooltip="Apply the filter expression")
        self.clear_button = W.Button(description="Clear", icon="times", tooltip="Show every sample again")
        self.page_size = W.Dropdown(
            options=list(PAGE_SIZES) if page_size in PAGE_SIZES else sorted({*PAGE_SIZES, page_size}),
            value=page_size,
            description="Per page",
            layout=W.Layout(width="160px"),
        )
        self.first_button = W.Button(description="First", icon="step-backward", tooltip="First page")
        self.prev_button = W.Button(description="Prev", icon="chevron-left", tooltip="Previous page")
        self.next_button = W.Button(description="Next", icon="chevron-right", tooltip="Next page")
        self.page_label = W.HTML()
        self.status = W.HTML()
        self.grid = W.GridBox(
            layout=W.Layout(grid_template_columns=f"repeat({columns}, {thumb_width + 16}px)", grid_gap="6px")
        )
        self.legend = W.HTML(
            "<span style='font-size:12px'>"
            "<span style='display:inline-block;width:11px;height:11px;background:#d9534f;vertical-align:middle'>"
            "</span> selected by the competition (its top k) &nbsp; "
            "<span style='display:inline-block;width:11px;height:11px;border:3px solid #1a5fb4;vertical-align:middle'>"
            "</span> open in the detail view &nbsp; #n: rank by score over the whole pool</span>"
        )
        self.detail = DetailView()
        # hand the mined set on (Session.export): a format, a target, and where it went
        from mdc_widgets.export import EXPORTERS

        self.export_format = W.Dropdown(options=list(EXPORTERS), value="folder", description="Export as")
        self.export_target = W.Text(
            placeholder="folder to write (FiftyOne: a dataset name)", layout=W.Layout(width="320px")
        )
        self.export_selected = W.Checkbox(value=True, description="selected only", indent=False)
        self.export_button = W.Button(
            description="Export", icon="download", tooltip="Write the mined set in this format to this target"
        )
        self.export_status = W.HTML()
        self.export_button.on_click(lambda _: self.export())
        controls = W.VBox(
            [
                W.HBox([self.sort, self.ascending, self.page_size]),
                W.HBox([self.filter, self.apply_button, self.clear_button]),
                W.HBox([self.first_button, self.prev_button, self.next_button, self.page_label]),
                self.status,
                self.legend,
            ]
        )
        export = W.VBox(
            [
                W.HBox([self.export_format, self.export_target, self.export_selected, self.export_button]),
                self.export_status,
            ]
        )
        grid_width = columns * (thumb_width + 22)
        # the detail sits beside the grid (below it only where the screen is too narrow), so a click shows it
        self.widget = W.VBox(
            [
                controls,
                W.HBox(
                    [W.Box([self.grid], layout=W.Layout(width=f"{grid_width}px", flex="0 0 auto")), self.detail.widget],
                    layout=W.Layout(flex_flow="row wrap", align_items="flex-start", grid_gap="16px"),
                ),
                W.HTML("<hr>"),
                export,
            ]
        )

        self.sort.observe(self._on_control, "value")
        self.ascending.observe(self._on_control, "value")
        self.filter.observe(self._on_control, "value")
        self.page_size.observe(lambda _: self._goto(0), "value")
        self.apply_button.on_click(lambda _: self.refresh())
        self.clear_button.on_click(lambda _: self._clear_filter())
        self.first_button.on_click(lambda _: self._goto(0))
        self.prev_button.on_click(lambda _: self._goto(self.page - 1))
        self.next_button.on_click(lambda _: self._goto(self.page + 1))
        self.tiles: list[tuple[str, Any]] = []

    # -- state -----------------------------------------------------------------------------
    def on_open(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(sample_id)`` whenever a sample is opened.

        Parameters
        ----------
        callback : callable
            Called with the opened sample's id (str).
        """
        self._open_callbacks.append(callback)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when the view changes (result, page, order, filter, open sample).

        An opened sample is announced before its detail is drawn, so a state
        saved by the callback is on disk by the time the user sees the sample.

        Parameters
        ----------
        callback : callable
            Called without arguments.
        """
        self._change_callbacks.append(callback)

    def _changed(self) -> None:
        for callback in self._change_callbacks:
            callback()

    @property
    def n_pages(self) -> int:
        """Number of pages of the current table (at least 1)."""
        return max(1, -(-len(self.table) // int(self.page_size.value)))

    def page_samples(self) -> list[str]:
        """The sample ids shown on the current page, in order."""
        size = int(self.page_size.value)
        return (
            [str(s) for s in self.table["sample"].iloc[self.page * size : (self.page + 1) * size]]
            if len(self.table)
            else []
        )

    def _on_control(self, change: dict) -> None:
        if not self._updating:
            self.refresh()

    def _clear_filter(self) -> None:
        self._updating = True
        self.filter.value = ""
        self._updating = False
        self.refresh()

    def refresh(self, result: Any = None) -> None:
        """Re-query the ranked table (sort, filter) from the session and show page 1.

        Parameters
        ----------
        result : str or xarray.Dataset or None, optional
            A result (key or Dataset) to show from now on; None keeps the current one.
        """
        if result is not None:
            self.result_key = result if isinstance(result, str) else result.attrs.get("key")
        try:
            table = self.session.ranked_table(
                self.result_key,
                sort_by=self.sort.value or "score",
                filters=self.filter.value or None,
                ascending=bool(self.ascending.value),
            )
        except MdcError as exc:
            # the last good table is kept (paging back to it is one Clear away), but it is not shown
            # under an error as if it answered the filter
            self.grid.children, self.tiles, self._tile_boxes = [], [], {}
            self.page_label.value = "no page"
            self.prev_button.disabled = self.first_button.disabled = self.next_button.disabled = True
            self.status.value = status_html(
                f"{exc} Nothing is shown until the filter is fixed or cleared.",
                "error",
            )
            return
        self.table = table
        self._updating = True
        try:
            columns = [c for c in table.columns if c != "sample"]
            if list(self.sort.options) != columns:
                keep = self.sort.value
                self.sort.options = columns
                self.sort.value = keep if keep in columns else "score"
        finally:
            self._updating = False
        n_sel = int(table["selected"].sum()) if "selected" in table else 0
        self.status.value = status_html(
            f"{len(table)} samples ({n_sel} selected) match; sorted by {self.sort.value}.",
            "ok" if len(table) else "warning",
        )
        self._goto(0)

    def _goto(self, page: int) -> None:
        self.page = int(np.clip(page, 0, self.n_pages - 1))
        self._render_page()
        self._changed()

    def thumbnails(self, sample_ids: list[str]) -> list[bytes]:
        """PNG bytes of the thumbnails of some samples, drawn once per sample and kept (only this page's are read).

        Parameters
        ----------
        sample_ids : list of str
            The samples, in the order wanted.

        Returns
        -------
        list of bytes
            One PNG per sample, enlarged to about ``thumb_width`` pixels wide.
        """
        from mdc_widgets.viz import to_png

        todo = [s for s in sample_ids if s not in self._thumbs]
        if todo:
            for sid, image in zip(todo, self.session.images(todo)):
                scale = max(1, self.thumb_width // max(image.shape[1], 1))
                self._thumbs[sid] = to_png(image, scale=scale)
            if len(self._thumbs) > 4096:  # a long browse through a large pool: keep the newest
                for old in list(self._thumbs)[: len(self._thumbs) - 4096]:
                    del self._thumbs[old]
        return [self._thumbs[s] for s in sample_ids]

    def _render_page(self) -> None:
        import ipywidgets as W

        ids = self.page_samples()
        pngs = self.thumbnails(ids) if ids else []
        rows = self.table.set_index("sample").loc[ids] if ids else None
        tiles, self.tiles, self._tile_boxes = [], [], {}
        sort_col = self.sort.value
        for sid, png in zip(ids, pngs):
            row = rows.loc[sid]
            extra = f" {sort_col}={format_value(row[sort_col])}" if sort_col not in ("score", "rank") else ""
            button = W.Button(
                description=f"#{int(row['rank'])} {sid}"[:24],
                tooltip=f"Open {sid}: score {format_value(row['score'])}{extra}",
                layout=W.Layout(width=f"{self.thumb_width + 8}px"),
                button_style="danger" if bool(row.get("selected", False)) else "",
            )
            button.on_click(lambda _, s=sid: self.open(s))
            # the whole id, wrapped: long file names stay readable under the thumbnail
            caption = W.HTML(
                f"<div style='font-size:11px;line-height:1.2;word-break:break-all;text-align:center;"
                f"width:{self.thumb_width + 8}px'>{html.escape(sid)}</div>"
            )
            image = W.Image(value=png, format="png", layout=W.Layout(width=f"{self.thumb_width}px", height="auto"))
            box = W.VBox([image, button, caption], layout=W.Layout(align_items="center", padding="2px"))
            self._tile_boxes[sid] = box
            tiles.append(box)
            self.tiles.append((sid, button))
        self.grid.children = tiles
        self._highlight()
        self.page_label.value = f"page {self.page + 1} / {self.n_pages}"
        self.prev_button.disabled = self.first_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.n_pages - 1

    def _highlight(self) -> None:
        for sid, box in self._tile_boxes.items():
            box.layout.border = "3px solid #1a5fb4" if sid == self.current_sample else "3px solid transparent"

    # -- detail ----------------------------------------------------------------------------
    def open(self, sample_id: str) -> dict[str, Any] | None:
        """Show one sample in the detail view and tell the listeners (explain, label panels).

        Parameters
        ----------
        sample_id : str
            The sample to show.

        Returns
        -------
        dict of {str: object} or None
            The sample's detail, or None when the session refused it (the status shows why).
        """
        try:
            detail = self.session.sample_detail(str(sample_id), result=self.result_key)
        except MdcError as exc:
            self.status.value = status_html(str(exc), "error")
            return None
        self.current_sample = str(sample_id)
        # the change listeners (the app saves its state) before anything is drawn: a kernel stopped as soon as
        # the detail shows must reopen this sample, and the listeners of on_open (the label panel renders the
        # pair's overlays) can take a second
        self._changed()
        self.detail.show(detail)
        self._highlight()
        for callback in self._open_callbacks:
            callback(self.current_sample)
        return detail

    def open_next(self, step: int = 1) -> str | None:
        """Open the sample after (or before) the current one in the table's order; paging follows.

        Parameters
        ----------
        step : int, optional
            Rows to move in the table, negative for earlier ones.

        Returns
        -------
        str or None
            The opened sample id; None when the table is empty or the move leaves it.
        """
        if not len(self.table):
            return None
        ids = [str(s) for s in self.table["sample"]]
        position = ids.index(self.current_sample) + step if self.current_sample in ids else 0
        if not 0 <= position < len(ids):
            return None
        page = position // int(self.page_size.value)
        if page != self.page:
            self._goto(page)
        self.open(ids[position])
        return ids[position]

    # -- export and saved state ------------------------------------------------------------
    def export(self) -> Any:
        """Write the shown result with the chosen exporter (``Session.export``); the status says where."""
        from pathlib import Path

        target = self.export_target.value.strip()
        fmt = self.export_format.value
        if not target:
            self.export_status.value = status_html(
                f"Type where to write the {fmt} export (a folder; for FiftyOne a dataset name).", "warning"
            )
            return None
        key = self.result_key or getattr(self.session, "current_key", None)
        if key is None:
            self.export_status.value = status_html("Nothing mined yet: run a competition first.", "warning")
            return None
        try:
            written = self.session.export(fmt, target, result=key, selected_only=bool(self.export_selected.value))
        except MdcError as exc:
            self.export_status.value = status_html(str(exc), "error")
            return None
        except ImportError as exc:
            self.export_status.value = status_html(
                f"The {fmt} export needs a package that is not installed ({exc.name or exc}); install it and "
                "try again.",
                "error",
            )
            return None
        what = "the selected images" if self.export_selected.value else "every image"
        if isinstance(written, (str, Path)):
            where = str(Path(written).resolve())
        elif isinstance(written, dict):
            where = ", ".join(str(Path(p).resolve()) for p in written.values())
        else:
            where = f"the dataset {target!r}"
        self.export_status.value = status_html(f"Exported {what} of {key} as {fmt}: wrote {where}.", "ok")
        return written

    def state(self) -> dict[str, Any]:
        """The view as plain values (see :class:`mdc_widgets.state.AppState`)."""
        return {
            "result_key": self.result_key or getattr(self.session, "current_key", None),
            "page": int(self.page),
            "page_size": int(self.page_size.value),
            "sort_by": str(self.sort.value or "score"),
            "ascending": bool(self.ascending.value),
            "filters": str(self.filter.value or ""),
            "sample": self.current_sample,
        }

    def restore(self, state: Any) -> None:
        """Show a saved view: result, order, filter, page and open sample (each ignored if no longer valid).

        Parameters
        ----------
        state : AppState
            The saved state (``page_size``, ``ascending``, ``filters``, ``sort_by``, ``result_key``, ``page``, ``sample``).
        """
        self._updating = True
        try:
            if state.page_size and state.page_size in self.page_size.options:
                self.page_size.value = state.page_size
            self.ascending.value = bool(state.ascending)
            self.filter.value = state.filters or ""
        finally:
            self._updating = False
        self.refresh(state.result_key)
        if state.sort_by and state.sort_by in self.sort.options and state.sort_by != self.sort.value:
            self.sort.value = state.sort_by  # observed: re-sorts
        if state.page:
            self._goto(int(state.page))
        if state.sample and len(self.table) and state.sample in set(self.table["sample"].astype(str)):
            self.open(state.sample)
