"""The competition's plots as live plotly figures; clicking a scatter point opens that sample."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mdc_widgets.errors import MdcError
from mdc_widgets.widgets._util import status_html

__all__ = ["PlotsPanel", "figure_widget"]


def figure_widget(figure: Any) -> Any:
    """A ``go.FigureWidget`` of ``figure`` (interactive), or an Output showing it where anywidget is missing.

    Parameters
    ----------
    figure : plotly.graph_objects.Figure
        The figure to show.

    Returns
    -------
    plotly.graph_objects.FigureWidget or ipywidgets.Output
        The interactive widget, or an Output holding the static figure.
    """
    import plotly.graph_objects as go

    try:
        return go.FigureWidget(figure)
    except ImportError:  # plotly >= 6 builds FigureWidget on anywidget
        import ipywidgets as W
        from IPython.display import display

        out = W.Output()
        with out:
            display(figure)
        return out


class PlotsPanel:
    """Heatmap of pairwise discrepancy, intra- vs cross-task scatter, score histograms, ranking.

    Parameters
    ----------
    session : Session
        The :class:`~mdc_widgets.session.Session`.
    browser : SampleBrowser or None, optional
        A :class:`~mdc_widgets.widgets.SampleBrowser`; a click on a scatter point opens it there.
    n_boot : int, optional
        Bootstrap resamples of the ranking plot.
    """

    def __init__(self, session: Any, browser: Any = None, n_boot: int = 100):
        import ipywidgets as W

        self.session = session
        self.browser = browser
        self.n_boot = n_boot
        self.subset = W.ToggleButtons(
            options=[("whole pool", "pool"), ("selected only", "selected")],
            value="pool",
            description="Heatmap over",
            tooltips=["every image", "the mined samples"],
        )
        self.refresh_button = W.Button(description="Refresh", icon="refresh", tooltip="Redraw every plot")
        self.status = W.HTML()
        self.container = W.VBox()
        self.widget = W.VBox([W.HBox([self.subset, self.refresh_button]), self.status, self.container])
        self._figures: dict[str, Any] = {}
        # figures are drawn when first looked at (the Plots tab or .figures), not by every run
        self.stale = True
        self._pick_callbacks: list[Callable[[str], None]] = []
        self.refresh_button.on_click(lambda _: self.refresh())
        self.subset.observe(lambda _: self.refresh(), "value")

    @property
    def figures(self) -> dict[str, Any]:
        """The figure widgets by name (drawn now if the session changed since they were last drawn)."""
        if self.stale:
            self.refresh()
        return self._figures

    def invalidate(self) -> None:
        """Mark the figures out of date; the next look at them redraws them."""
        self.stale = True
        self.status.value = status_html("The plots are redrawn when this tab is opened.")

    def on_pick(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(sample_id)`` after a click on a point opened a sample.

        Parameters
        ----------
        callback : callable
            Called with the sample id (str) of the clicked point.
        """
        self._pick_callbacks.append(callback)

    def refresh(self) -> None:
        """Rebuild every figure from the session's current state."""
        try:
            figures = self.session.figures(subset=self.subset.value, n_boot=self.n_boot)
        except MdcError as exc:
            self.stale = False
            self.status.value = status_html(str(exc), "warning")
            return
        for figure in figures.values():
            # long axis titles stay inside the plot: the margins grow to fit them
            figure.update_xaxes(automargin=True)
            figure.update_yaxes(automargin=True)
        self._figures = {name: figure_widget(fig) for name, fig in figures.items()}
        self.stale = False
        scatter = self._figures.get("scatter")
        if scatter is not None and hasattr(scatter, "data"):
            for trace in scatter.data:
                trace.on_click(self._on_scatter_click)
        self.container.children = list(self._figures.values())
        if scatter is not None:
            message = "Click a point of the scatter to open that sample."
        elif "histograms" in self._figures:
            message = (
                "No intra-vs-cross scatter: this competition has models of one task only, and models outside it "
                "are not drawn. Pick a joint or cross-task competition to see one."
            )
        else:
            message = "Run a competition to see its scores."
        self.status.value = status_html(message)

    def _on_scatter_click(self, trace: Any, points: Any, state: Any = None) -> str | None:
        indices = list(getattr(points, "point_inds", []) or [])
        if not indices:
            return None
        custom = trace.customdata[indices[0]]
        sample_id = str(custom[0] if not isinstance(custom, str) and hasattr(custom, "__len__") else custom)
        if self.browser is not None:
            self.browser.open(sample_id)
        for callback in self._pick_callbacks:
            callback(sample_id)
        return sample_id
