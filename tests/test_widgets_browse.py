"""SampleBrowser, ExplainPanel, PlotsPanel, LabelPanel and MadApp driven programmatically."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from _helpers import MODELS, RecordingSession

from mdc_widgets.mining import CompetitionGroup, Constraints
from mdc_widgets.widgets import ExplainPanel, LabelPanel, MadApp, PlotsPanel, SampleBrowser, static_mode


def test_browser_pages_sorts_filters_and_opens(mined_blob_session):
    session = RecordingSession(mined_blob_session)
    browser = SampleBrowser(session, page_size=8)
    opened = []
    browser.on_open(opened.append)
    browser.refresh()
    table = mined_blob_session.ranked_table()
    assert browser.page_label.value == "page 1 / 5" and browser.prev_button.disabled
    assert browser.page_samples() == list(table["sample"][:8])
    assert len(browser.grid.children) == 8
    first_button = browser.tiles[0][1]
    assert first_button.description.startswith("#1 ") and first_button.button_style == "danger"  # selected
    assert "d_ss" in browser.sort.options and "sample" not in browser.sort.options

    browser.next_button.click()
    assert browser.page == 1 and browser.page_samples() == list(table["sample"][8:16])
    browser.first_button.click()
    assert browser.page == 0

    browser.sort.value = "d_sod"
    browser.ascending.value = True
    args, kwargs = session.called("ranked_table")[-1]
    assert kwargs["sort_by"] == "d_sod" and kwargs["ascending"] is True
    assert browser.table["d_sod"].is_monotonic_increasing

    browser.filter.value = "selected"
    assert len(browser.table) == 6 and browser.page_label.value == "page 1 / 1" and browser.next_button.disabled
    assert len(browser.grid.children) == 6
    browser.filter.value = "nope > 1"
    assert "no such column" in browser.status.value and len(browser.table) == 6  # table kept
    browser.clear_button.click()
    assert len(browser.table) == 40 and browser.filter.value == ""

    sid, button = browser.tiles[2]
    button.click()
    assert opened == [sid] and browser.current_sample == sid
    assert session.called("sample_detail")[-1][0] == (sid,)
    view = browser.detail
    assert sid in view.header.value
    assert len(view.models.children) == 4 and len(view.disagreement.children) == 6
    assert "scores" in view.tables.value
    # the detail image is the sample's image, enlarged three times
    import io

    from PIL import Image

    png = view.images.children[0].children[1].value
    shown = np.asarray(Image.open(io.BytesIO(png)))
    np.testing.assert_array_equal(shown[::3, ::3], mined_blob_session.images([sid])[0])

    nxt = browser.open_next()
    assert nxt == browser.table["sample"].iloc[3] and opened[-1] == nxt


def test_explain_panel_passes_the_dropdowns_to_session_explain(gt_session):
    gt_session.mine(
        CompetitionGroup(ss=("conv_ss_1", "conv_ss_2"), sod=("conv_sod_1", "conv_sod_2")),
        k=3,
        constraints=Constraints.none(),
    )
    session = RecordingSession(gt_session)
    browser = SampleBrowser(session)
    panel = ExplainPanel(session, browser)
    panel.explain_button.click()
    assert "Open a sample" in panel.status.value and not session.called("explain")
    browser.refresh()
    sid = browser.tiles[0][0]
    browser.tiles[0][1].click()
    assert panel.sample_id == sid
    assert list(panel.model.options) == ["conv_ss_1", "conv_ss_2", "conv_sod_1", "conv_sod_2"]
    assert [label for label, _ in panel.target.options] == ["predicted class", "c1", "c2", "c3", "c4", "c5"]
    assert [value for _, value in panel.layer.options] == [None, "0", "2"]
    panel.target.value, panel.layer.value = 3, "2"
    panel.explain_button.click()
    ((args, kwargs),) = session.called("explain")
    assert args == (sid, "conv_ss_1") and kwargs == {"target_class": 3, "layer": "2"}
    assert len(panel.output.children) == 3 and panel.last["target_name"] == "c3"
    panel.model.value = "conv_sod_2"
    assert panel.target.disabled
    out = panel.explain()
    assert len(panel.output.children) == 4 and out["task"] == "sod" and out["cam"].shape == (32, 32)


def test_plots_panel_click_on_a_point_opens_that_sample(mined_blob_session):
    import plotly.graph_objects as go

    browser = SampleBrowser(mined_blob_session)
    browser.refresh()
    panel = PlotsPanel(mined_blob_session, browser, n_boot=10)
    picked = []
    panel.on_pick(picked.append)
    panel.refresh()
    assert set(panel.figures) == {"heatmap", "scatter", "histograms", "ranking"}
    assert all(isinstance(f, go.FigureWidget) for f in panel.figures.values())
    scatter = panel.figures["scatter"]
    trace = scatter.data[1]  # the selected samples
    target = trace.customdata[2]
    sid = panel._on_scatter_click(trace, SimpleNamespace(point_inds=[2]), None)
    assert sid == target and picked == [target] and browser.current_sample == target
    assert panel._on_scatter_click(trace, SimpleNamespace(point_inds=[]), None) is None
    heat_pool = np.array(panel.figures["heatmap"].data[0].z, float)
    panel.subset.value = "selected"
    heat_selected = np.array(panel.figures["heatmap"].data[0].z, float)
    chosen = mined_blob_session.result()["selected"].values
    d = mined_blob_session.discrepancy()
    np.testing.assert_allclose(heat_pool[0, 1], d.values[:, 0, 1].mean())
    np.testing.assert_allclose(heat_selected[0, 1], d.values[chosen, 0, 1].mean())


def test_label_panel_saves_each_verdict_and_updates_the_ranking(mined_blob_session, tmp_path):
    session = RecordingSession(mined_blob_session)
    browser = SampleBrowser(session)
    browser.refresh()
    panel = LabelPanel(session, browser, n_boot=20)
    assert [v for _, v in panel.pair.options][:2] == [MODELS["ss"], MODELS["sod"]]
    panel.a_button.click()
    assert "Open a sample" in panel.status.value and not session.called("label")
    first = browser.tiles[0][0]
    browser.tiles[0][1].click()
    assert panel.sample_id == first and panel.a_button.description == "A: ss_a"
    panel.a_button.click()  # advances to the next sample
    assert session.called("label")[-1][0] == (first, "ss_a", "ss_b", "a")
    second = browser.current_sample
    assert second == browser.table["sample"].iloc[1] and panel.sample_id == second
    panel.pair.value = MODELS["sod"]
    panel.advance.value = False
    panel.both_wrong_button.click()
    panel.mask_model.value = "sod_q"
    panel.accept_button.click()
    assert session.called("accept_mask")[-1][0] == (second, "sod_p", "sod_q", "sod_q")
    # saved on disk at once: a new store on the file sees every verdict
    from mdc_widgets.labeling import LabelStore

    store = LabelStore(mined_blob_session.labels.path)
    assert store.get(first, "ss_a", "ss_b").verdict == "a"
    assert store.get(second, "sod_p", "sod_q").verdict == "both_wrong"
    assert store.mask(second, "sod_p", "sod_q") is not None
    assert "ss_a" in panel.ranking_html.value and "labels" in panel.ranking_html.value
    assert "current verdict: <b>both_wrong</b>" in panel.header.value


def test_app_wires_the_panels_and_degrades_to_static_output(mined_blob_session, tmp_path, monkeypatch):
    app = MadApp(mined_blob_session, k=6, n_boot=10)
    assert [app.tabs.get_title(i) for i in range(5)] == ["Compete", "Browse", "Explain", "Plots", "Label"]
    assert len(app.browser.table) == 40 and app.plots.figures  # an existing result is shown at once
    sid = app.plots.figures["scatter"].data[0].customdata[0]
    app.plots._on_scatter_click(app.plots.figures["scatter"].data[0], SimpleNamespace(point_inds=[0]))
    assert app.tabs.selected_index == 1 and app.browser.current_sample == sid
    assert app.labels.sample_id == sid and app.explain.sample_id == sid

    monkeypatch.setenv("MDC_WIDGETS_STATIC", "1")
    assert static_mode()
    static_app = MadApp(mined_blob_session, n_boot=10)
    static_app.show()
    assert static_app._panels is None, "a static display builds no widget"
    from mdc_widgets.widgets import static_report

    report = static_report(mined_blob_session, n_boot=10)
    assert set(report["figures"]) == {"heatmap", "scatter", "histograms", "ranking"}
    assert report["panel"][:4] == b"\x89PNG" and "6 of 40 images selected" in report["summary"]
    from mdc_widgets.widgets import display_static

    display_static(mined_blob_session, output_dir=tmp_path / "static", n_boot=10)
    written = sorted(p.name for p in (tmp_path / "static").iterdir())
    assert written == [
        "heatmap.html",
        "histograms.html",
        "mad_samples.png",
        "plotly.min.js",
        "ranking.html",
        "scatter.html",
    ]
    monkeypatch.setenv("MDC_WIDGETS_STATIC", "0")
    assert not static_mode()
    monkeypatch.delenv("MDC_WIDGETS_STATIC")
    assert static_mode()  # plain pytest: no kernel, no front end
