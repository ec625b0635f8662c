"""The whole notebook experience in tabs, and its static stand-in where no widget can be shown."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from mdc_widgets.errors import MdcError
from mdc_widgets.state import AppState, describe_app_state, restore_app_state, save_app_state
from mdc_widgets.widgets._util import html_table, static_mode, status_html

__all__ = ["MadApp", "display_static", "static_report"]

TAB_TITLES = ("Compete", "Browse", "Explain", "Plots", "Label")


class MadApp:
    """Pick, mine, browse, explain, label: every panel wired to one session.

    Parameters
    ----------
    session : Session
        The :class:`~mdc_widgets.session.Session`.
    task : str, optional
        The picker's starting task: ``"ss"``, ``"sod"``, ``"cross"`` or ``"joint"``.
    k : int, optional
        The picker's starting number of samples to select.
    page_size : int, optional
        Thumbnails per page of the browser.
    predict_options : dict of {str: object} or None, optional
        Passed to ``predict_pool`` by the Run button.
    n_boot : int, optional
        Bootstrap resamples of the live rankings.
    start_tab : str, optional
        The tab in front when the app is first shown.
    remember : bool, optional
        Save what is on screen (competition, result, page, open sample, label pair) beside the
        session's verdicts, and reopen it when the app is created again, e.g. after a kernel restart.

    Raises
    ------
    MdcError
        When ``start_tab`` is not one of ``TAB_TITLES``.

    Examples
    --------
    In a notebook::

        app = MadApp(Session("miniworld", "runs/demo"))
        app            # the tabs (or static figures under papermill)
    """

    def __init__(
        self,
        session: Any,
        task: str = "joint",
        k: int = 20,
        page_size: int = 12,
        predict_options: dict[str, Any] | None = None,
        n_boot: int = 100,
        start_tab: str = "Compete",
        remember: bool = True,
    ):
        if start_tab not in TAB_TITLES:
            raise MdcError(f"start_tab must be one of {TAB_TITLES}; got {start_tab!r}.")
        self.session = session
        self.options = {
            "task": task,
            "k": k,
            "page_size": page_size,
            "predict_options": predict_options,
            "n_boot": n_boot,
            "start_tab": start_tab,
            "remember": remember,
        }
        # reopened at once (cheap: a small JSON and the stored result), so a static display shows it too
        self._state, self._state_found = (
            restore_app_state(session) if remember and hasattr(session, "state_folder") else (None, False)
        )
        self.restored = describe_app_state(self._state, self._state_found)
        # the panels are built on first use: a static (headless) display creates no widget at all,
        # so executed notebooks carry no widget state
        self._panels: dict[str, Any] | None = None

    def _build(self) -> dict[str, Any]:
        if self._panels is not None:
            return self._panels
        import ipywidgets as W

        from mdc_widgets.widgets.browser import SampleBrowser
        from mdc_widgets.widgets.explain import ExplainPanel
        from mdc_widgets.widgets.label import LabelPanel
        from mdc_widgets.widgets.picker import CompetitionPicker
        from mdc_widgets.widgets.plots import PlotsPanel
        from mdc_widgets.widgets.run import RunPanel

        o, session = self.options, self.session
        state, found = self._state, self._state_found
        picker = CompetitionPicker(session, task=o["task"], k=o["k"])
        run_panel = RunPanel(session, picker, predict_options=o["predict_options"])
        browser = SampleBrowser(session, page_size=o["page_size"])
        panels = {
            "picker": picker,
            "run_panel": run_panel,
            "browser": browser,
            "explain": ExplainPanel(session, browser),
            "plots": PlotsPanel(session, browser, n_boot=o["n_boot"]),
            "labels": LabelPanel(session, browser, n_boot=o["n_boot"]),
        }
        panels["notice"] = W.HTML()
        tabs = W.Tab(
            children=[
                W.VBox([picker.widget, run_panel.widget]),
                browser.widget,
                panels["explain"].widget,
                panels["plots"].widget,
                panels["labels"].widget,
            ]
        )
        for i, title in enumerate(TAB_TITLES):
            tabs.set_title(i, title)
        panels["tabs"] = tabs
        panels["app"] = W.VBox([panels["notice"], tabs])
        self._panels = panels
        run_panel.on_done(self._after_run)
        panels["plots"].on_pick(lambda _: self.select_tab("Browse"))
        tabs.observe(self._on_tab, "selected_index")
        self._restoring = True
        try:
            if state is not None:
                if state.competition:
                    picker.apply_state(state.competition)
                if state.label_pair:
                    panels["labels"].preferred_pair = tuple(state.label_pair)
            if session.current_key is not None:
                self._after_run(None)
            if state is not None and found:
                browser.restore(state)
        finally:
            self._restoring = False
        if self.restored:
            panels["notice"].value = status_html(self.restored, "info")
        browser.on_change(self.save_state)
        panels["labels"].pair.observe(lambda _: self.save_state(), "value")
        for control in (picker.task, picker.k):
            control.observe(lambda _: self.save_state(), "value")
        self.select_tab(
            o["start_tab"] if not (state is not None and found and o["start_tab"] == "Compete") else "Browse"
        )
        return panels

    picker = property(lambda self: self._build()["picker"], doc="The CompetitionPicker.")
    run_panel = property(lambda self: self._build()["run_panel"], doc="The RunPanel.")
    browser = property(lambda self: self._build()["browser"], doc="The SampleBrowser.")
    explain = property(lambda self: self._build()["explain"], doc="The ExplainPanel.")
    plots = property(lambda self: self._build()["plots"], doc="The PlotsPanel.")
    labels = property(lambda self: self._build()["labels"], doc="The LabelPanel.")
    tabs = property(lambda self: self._build()["tabs"], doc="The ipywidgets.Tab holding every panel.")
    notice = property(lambda self: self._build()["notice"], doc="The line above the tabs (what was restored).")
    widget = property(lambda self: self._build()["app"], doc="The whole app: the notice line and the tabs.")

    def state(self) -> AppState:
        """What is on screen now, as saved by :meth:`save_state`."""
        panels = self._build()
        browser = panels["browser"].state()
        pair = panels["labels"].pair.value
        return AppState(
            competition=panels["picker"].state(),
            result_key=browser["result_key"],
            page=browser["page"],
            page_size=browser["page_size"],
            sort_by=browser["sort_by"],
            ascending=browser["ascending"],
            filters=browser["filters"],
            sample=browser["sample"],
            label_pair=list(pair) if pair else None,
        )

    def save_state(self) -> None:
        """Save what is on screen beside the session's verdicts (a failing disk is shown, never raised)."""
        if not self.options["remember"] or getattr(self, "_restoring", False) or self._panels is None:
            return
        try:
            save_app_state(self.session.state_folder, self.state())
        except OSError as exc:
            self._panels["notice"].value = status_html(
                f"Could not save the app's state ({exc}); the work on screen will not be reopened after a restart.",
                "warning",
            )

    def _on_tab(self, change: dict) -> None:
        if change["new"] == TAB_TITLES.index("Plots") and self.plots.stale:
            self.plots.refresh()

    def select_tab(self, title: str) -> None:
        """Bring a tab to the front by its title.

        Parameters
        ----------
        title : str
            One of ``TAB_TITLES`` (``"Compete"``, ``"Browse"``, ``"Explain"``, ``"Plots"``, ``"Label"``).
        """
        self.tabs.selected_index = TAB_TITLES.index(title)

    def _after_run(self, result: Any) -> None:
        # the grid first: it is what the user waits for; the plots are drawn when their tab is opened
        self.browser.refresh(result if result is not None else self.session.current_key)
        if result is not None:
            self.select_tab("Browse")
        self.picker.refresh_models()
        self.explain.refresh_models()
        self.labels.refresh_pairs()
        if self.tabs.selected_index == TAB_TITLES.index("Plots"):
            self.plots.refresh()
        else:
            self.plots.invalidate()
        if result is not None:
            self.save_state()

    def show(self, static: bool | None = None) -> None:
        """Display the tabs, or static figures and PNG panels where no widget front end exists.

        Parameters
        ----------
        static : bool or None, optional
            True for the static view, False for the widgets; None decides by :func:`static_mode`.
        """
        from IPython.display import display

        if static_mode() if static is None else static:
            display_static(self.session, n_boot=self.options["n_boot"])
        else:
            display(self.widget)

    def _ipython_display_(self) -> None:
        self.show()


def static_report(
    session: Any,
    result: Any = None,
    n: int = 6,
    subset: str = "pool",
    n_boot: int = 100,
) -> dict[str, Any]:
    """What the static view shows, without displaying it: ``summary`` (HTML), ``figures``, ``panel`` (PNG bytes).

    Parameters
    ----------
    session : Session
        The session whose competition is shown.
    result : str or xarray.Dataset or None, optional
        Which result (key or Dataset); None for the session's latest.
    n : int, optional
        How many selected samples the panel and the table show (best first).
    subset : str, optional
        ``"pool"`` or ``"selected"``: the samples the discrepancy heatmap averages over.
    n_boot : int, optional
        Bootstrap resamples of the ranking figure.

    Returns
    -------
    dict of {str: object}
        ``figures`` (name to plotly figure), ``panel`` (PNG bytes, None without a result or a
        selected sample) and ``summary`` (HTML).
    """
    from mdc_widgets.mining import selected_samples
    from mdc_widgets.viz import detail_row, tile_panel, to_png

    figures = session.figures(result, subset=subset, n_boot=n_boot)
    try:
        res = session.result(result)
    except MdcError:
        res = None
    out: dict[str, Any] = {"figures": figures, "panel": None, "summary": ""}
    if res is None:
        out["summary"] = "<p>No competition mined yet.</p>"
        return out
    chosen = selected_samples(res)[:n]
    if chosen:
        rows = [detail_row(session.sample_detail(s, result=res)) for s in chosen]
        out["panel"] = to_png(tile_panel(rows, scale=2))
    table = session.ranked_table(res, filters="selected").head(n)
    keep = [
        c
        for c in (
            "rank",
            "sample",
            "score",
            "term_ss",
            "term_sod",
            "term_cross",
            "pred_class_name",
            "dominant_class_name",
            "occlusion",
            "blur",
            "contrast",
        )
        if c in table
    ]
    out["summary"] = (
        f"<p><b>{html.escape(res.attrs.get('key', ''))}</b>: {int(res['selected'].sum())} of "
        f"{res.sizes['sample']} images selected.</p>" + html_table(table[keep])
    )
    return out


def display_static(
    session: Any,
    result: Any = None,
    n: int = 6,
    output_dir: str | Path | None = None,
    subset: str = "pool",
    n_boot: int = 100,
) -> dict[str, Any]:
    """Show a competition without widgets: the plotly figures and a PNG panel of the top samples.

    For headless runs (papermill, nbconvert, plain scripts). With
    ``output_dir`` the panel is saved as ``mad_samples.png`` and each figure as
    ``<name>.html`` (plotly.js written once beside them, so they open offline).

    Parameters
    ----------
    session : Session
        The session whose competition is shown.
    result : str or xarray.Dataset or None, optional
        Which result (key or Dataset); None for the session's latest.
    n : int, optional
        How many selected samples the panel and the table show (best first).
    output_dir : str or pathlib.Path or None, optional
        Folder (created) for ``mad_samples.png`` and the figures' HTML; None writes nothing.
    subset : str, optional
        ``"pool"`` or ``"selected"``: the samples the discrepancy heatmap averages over.
    n_boot : int, optional
        Bootstrap resamples of the ranking figure.

    Returns
    -------
    dict of {str: object}
        :func:`static_report`'s dict.
    """
    from IPython.display import HTML, Image, display

    report = static_report(session, result, n=n, subset=subset, n_boot=n_boot)
    display(HTML(report["summary"]))
    for figure in report["figures"].values():
        display(figure)
    if report["panel"] is not None:
        display(Image(data=report["panel"], format="png"))
    if output_dir is not None:
        from mdc_widgets._atomic import atomic_write_bytes, atomic_write_text

        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        if report["panel"] is not None:
            atomic_write_bytes(folder / "mad_samples.png", report["panel"])
        for name, figure in report["figures"].items():
            atomic_write_text(folder / f"{name}.html", figure.to_html(include_plotlyjs="directory", full_html=True))
            if not (folder / "plotly.min.js").exists():
                from plotly.offline import get_plotlyjs

                atomic_write_text(folder / "plotly.min.js", get_plotlyjs())
    return report
