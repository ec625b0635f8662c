"""Browse the pool by score: a paged thumbnail grid with sort and filter, and a detail view per sample."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mdc_widgets.errors import MdcError
from mdc_widgets.widgets._util import captioned, format_value, html_table, image_widget, status_html

__all__ = ["DetailView", "SampleBrowser"]

PAGE_SIZES = (8, 12, 16, 24, 48)


class DetailView:
    """Everything about one sample: image, ground truth, each model's overlay with legend, disagreements, tables."""

    def __init__(self, scale: int = 3):
        import ipywidgets as W

        self.scale = scale
        self.header = W.HTML()
        self.images = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.models = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.disagreement = W.HBox(layout=W.Layout(flex_flow="row wrap"))
        self.tables = W.HTML()
        self.widget = W.VBox([self.header, self.images, self.models, self.disagreement, self.tables])
        self.detail: dict[str, Any] | None = None

    def show(self, detail: dict[str, Any]) -> None:
        """Fill the view from :meth:`Session.sample_detail`'s dict."""
        self.detail = detail
        scores = detail.get("scores", {})
        rank = scores.get("rank")
        invalid = (
            ""
            if detail.get("valid", True)
            else f" <span style='color:#b00020'>(not decoded: {html.escape(str(detail.get('error')))})</span>"
        )
        self.header.value = (
            f"<h4 style='margin:4px 0'>{html.escape(detail['sample'])}"
            f"{f' - rank {rank}' if rank else ''}"
            f"{' - selected' if scores.get('selected') else ''}</h4>{invalid}"
        )
        gt = detail.get("ground_truth") or {}
        row = [captioned("image", detail["image"], scale=self.scale)]
        for name in ("semantic", "saliency"):
            if name in gt:
                row.append(
                    captioned(f"ground truth: {name}", gt[name]["overlay"], legend=gt[name]["legend"], scale=self.scale)
                )
        self.images.children = row
        self.models.children = [
            captioned(f"{model} ({view['task'].upper()})", view["overlay"], legend=view["legend"], scale=self.scale)
            for model, view in detail["predictions"].items()
        ]
        self.disagreement.children = [
            captioned(
                f"{d['kind']}: {d['model_a']} vs {d['model_b']} ({d['fraction']:.0%} of pixels)",
                d["overlay"],
                scale=self.scale,
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
    session : the :class:`~mdc_widgets.session.Session`
    page_size : thumbnails per page
    columns : thumbnails per row
    thumb_width : thumbnail width in pixels
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
        self._updating = False

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
        self.detail = DetailView()
        controls = W.VBox(
            [
                W.HBox([self.sort, self.ascending, self.page_size]),
                W.HBox([self.filter, self.apply_button, self.clear_button]),
                W.HBox([self.first_button, self.prev_button, self.next_button, self.page_label]),
                self.status,
            ]
        )
        self.widget = W.VBox([controls, self.grid, W.HTML("<hr>"), self.detail.widget])

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
        """Call ``callback(sample_id)`` whenever a sample is opened."""
        self._open_callbacks.append(callback)

    @property
    def n_pages(self) -> int:
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
        """Re-query the ranked table (sort, filter) from the session and show page 1."""
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
            self.status.value = status_html(str(exc), "error")
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

    def _render_page(self) -> None:
        import ipywidgets as W

        ids = self.page_samples()
        images = self.session.images(ids) if ids else []
        rows = self.table.set_index("sample").loc[ids] if ids else None
        tiles, self.tiles = [], []
        sort_col = self.sort.value
        for sid, image in zip(ids, images):
            row = rows.loc[sid]
            extra = f" {sort_col}={format_value(row[sort_col])}" if sort_col not in ("score", "rank") else ""
            button = W.Button(
                description=f"#{int(row['rank'])} {sid}"[:24],
                tooltip=f"Open {sid}: score {format_value(row['score'])}{extra}",
                layout=W.Layout(width=f"{self.thumb_width + 8}px"),
                button_style="danger" if bool(row.get("selected", False)) else "",
            )
            button.on_click(lambda _, s=sid: self.open(s))
            scale = max(1, self.thumb_width // max(image.shape[1], 1))
            tiles.append(
                W.VBox(
                    [image_widget(image, scale=scale, width=self.thumb_width), button],
                    layout=W.Layout(align_items="center"),
                )
            )
            self.tiles.append((sid, button))
        self.grid.children = tiles
        self.page_label.value = f"page {self.page + 1} / {self.n_pages}"
        self.prev_button.disabled = self.first_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.n_pages - 1

    # -- detail ----------------------------------------------------------------------------
    def open(self, sample_id: str) -> dict[str, Any] | None:
        """Show one sample in the detail view and tell the listeners (explain, label panels)."""
        try:
            detail = self.session.sample_detail(str(sample_id), result=self.result_key)
        except MdcError as exc:
            self.status.value = status_html(str(exc), "error")
            return None
        self.current_sample = str(sample_id)
        self.detail.show(detail)
        for callback in self._open_callbacks:
            callback(self.current_sample)
        return detail

    def open_next(self, step: int = 1) -> str | None:
        """Open the sample after (or before) the current one in the table's order; paging follows."""
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
