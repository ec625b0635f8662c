"""The widgets as a daily tool (issue 15): one test per point a user hit, driven programmatically.

A kernel restart is a new Session on the same store and verdicts; real photos
are small non-square PNG files; the rest runs on the blob pool of
``tests/_helpers.py``.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from _helpers import BLOB_POOL, MODELS, RecordingSession, ThresholdCompetitor, threshold_competitors
from PIL import Image

from mdc_widgets.errors import MdcError, WeightsNotFoundError
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights
from mdc_widgets.session import Session
from mdc_widgets.state import AppState, load_app_state, missing_weights, restore_app_state, save_app_state
from mdc_widgets.widgets import CompetitionPicker, DetailView, MadApp, RunPanel, SampleBrowser
from mdc_widgets.widgets.overlays import disagreement_overlay, outline, panel_scale
from mdc_widgets.widgets.run import describe_skipped, in_ui_words


def _png_shape(png: bytes) -> tuple[int, int]:
    return np.asarray(Image.open(io.BytesIO(png))).shape[:2]


def _restarted(session: Session) -> Session:
    """What a kernel restart leaves: a new Session on the same store and the same verdict file."""
    return Session(
        BLOB_POOL,
        session.store,
        models=threshold_competitors(),
        use_registry=False,
        device="cpu",
        labels=session.labels.path,
    )


# 1 -----------------------------------------------------------------------------------------
def test_a_restart_reopens_the_result_page_sample_and_label_pair(mined_blob_session):
    app = MadApp(mined_blob_session, n_boot=10)
    assert app.restored == "" and app.notice.value == ""
    app.picker.task.value = "sod"
    app.browser.page_size.value = 8
    app.browser.next_button.click()
    sid = app.browser.tiles[1][0]
    app.browser.tiles[1][1].click()
    app.labels.pair.value = MODELS["sod"]
    saved = load_app_state(mined_blob_session.state_folder)
    assert saved.result_key == mined_blob_session.current_key and saved.page == 1 and saved.sample == sid
    assert saved.label_pair == list(MODELS["sod"]) and saved.competition["task"] == "sod"

    fresh = _restarted(mined_blob_session)
    assert fresh.current_key is None  # a bare Session knows nothing until the app (or restore) asks
    again = MadApp(fresh, n_boot=10)
    assert fresh.current_key == mined_blob_session.current_key
    assert again.browser.page == 1 and again.browser.current_sample == sid and sid in again.browser.detail.header.value
    assert again.labels.pair.value == MODELS["sod"] and again.picker.task.value == "sod"
    assert again.tabs.selected_index == 1, "the restored results are in front"
    assert again.notice.value and "Restored: the result" in again.restored and f"sample {sid} open" in again.restored


def test_an_opened_sample_is_saved_before_it_is_drawn(mined_blob_session, monkeypatch):
    # a user who stops the kernel as soon as the sample shows must get it back: the browser test once
    # shut the kernel down while the label panel was still rendering, before the state was written
    app = MadApp(mined_blob_session, n_boot=10)
    sid = app.browser.tiles[1][0]
    saved_when = {}
    draw = app.browser.detail.show

    def drawing(detail):
        saved_when["drawn"] = load_app_state(mined_blob_session.state_folder).sample
        return draw(detail)

    monkeypatch.setattr(app.browser.detail, "show", drawing)
    app.browser.on_open(
        lambda _: saved_when.setdefault("listeners", load_app_state(mined_blob_session.state_folder).sample)
    )
    app.browser.tiles[1][1].click()
    assert saved_when == {"drawn": sid, "listeners": sid}


def test_a_damaged_or_stale_state_opens_a_fresh_screen(blob_session, tmp_path):
    (blob_session.state_folder / "app_state.json").write_text("{not json")
    assert load_app_state(blob_session.state_folder) is None
    save_app_state(blob_session.state_folder, AppState(result_key="gone__k3", page=4))
    state, found = restore_app_state(blob_session)
    assert state.page == 4 and not found and blob_session.current_key is None
    app = MadApp(blob_session, n_boot=10)
    assert "no longer in the store" in app.restored and app.tabs.selected_index == 0


# 2 -----------------------------------------------------------------------------------------
def test_the_run_says_done_only_when_the_results_are_shown(blob_session):
    picker = CompetitionPicker(blob_session, task="joint", k=4)
    panel = RunPanel(blob_session, picker)
    seen = []

    def slow_render(result):  # stands in for the app drawing the grid
        seen.append((panel.status.value, panel.steps.value))
        time.sleep(0.3)

    panel.on_done(slow_render)
    panel.run(background=False)
    status_while_showing, steps_while_showing = seen[0]
    assert "Selected" not in status_while_showing and "Showing the results" in status_while_showing
    assert "&#9654; show results" in steps_while_showing  # the running step
    assert set(panel.timings) == {"predict", "score", "select", "show"} and panel.timings["show"] >= 0.3
    assert "Selected 4 of 40 images" in panel.status.value and "done in" in panel.status.value
    assert panel.steps.value.count("&#10003;") == 4


def test_the_grid_is_drawn_before_the_plots_and_thumbnails_are_read_once(mined_blob_session):
    session = RecordingSession(mined_blob_session)
    reads = []
    session_images = mined_blob_session.images
    session.images = lambda ids: reads.append(list(ids)) or session_images(ids)
    browser = SampleBrowser(session, page_size=8)
    browser.refresh()
    browser.next_button.click()
    browser.prev_button.click()
    assert reads == [browser.table["sample"][:8].tolist(), browser.table["sample"][8:16].tolist()]

    app = MadApp(mined_blob_session, n_boot=10)
    assert app.plots.stale and app.browser.grid.children, "an existing result: grid at once, plots when asked"
    assert "scatter" in app.plots.figures and not app.plots.stale
    app._after_run(mined_blob_session.result())
    assert app.plots.stale and app.browser.grid.children, "a run shows the grid; plots wait for their tab"
    app.select_tab("Plots")
    assert not app.plots.stale and "scatter" in app.plots._figures


# 3 -----------------------------------------------------------------------------------------
def test_the_detail_opens_beside_the_grid_and_the_tile_is_highlighted(mined_blob_session):
    browser = SampleBrowser(mined_blob_session)
    browser.refresh()
    beside = browser.widget.children[1]
    assert browser.detail.widget in beside.children and browser.grid in beside.children[0].children
    sid, button = browser.tiles[3]
    button.click()
    borders = {s: box.layout.border for s, box in browser._tile_boxes.items()}
    assert borders[sid].endswith("#1a5fb4") and all(b.endswith("transparent") for s, b in borders.items() if s != sid)


# 4 -----------------------------------------------------------------------------------------
@pytest.fixture
def photo_session(tmp_path):
    """Four 300x200 and 200x300 photos (letterboxed on a 96 px canvas) and two thresholded SOD models."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        h, w = (200, 300) if i % 2 == 0 else (300, 200)
        photo = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
        photo[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4, 0] = 200 + 10 * i
        Image.fromarray(photo).save(folder / f"photo_{i}.png")
    models = [ThresholdCompetitor("sod_low", "sod", 0.3), ThresholdCompetitor("sod_high", "sod", 0.75)]
    session = Session(str(folder), tmp_path / "store", models=models, use_registry=False, device="cpu",
                      image_size=(96, 96), fit="letterbox")  # fmt: skip
    session.predict(models)
    session.mine(CompetitionGroup(sod=("sod_low", "sod_high")), Weights(0, 1, 0), k=2, constraints=Constraints.none())
    return session


def test_real_photos_keep_their_aspect_in_sized_panels_with_an_opacity_control(photo_session):
    view = DetailView(panel_px=80)
    view.show(photo_session.sample_detail("photo_0"))
    image_panel, gt_less = view.images.children[0], len(view.images.children)
    assert gt_less == 1
    png = image_panel.children[1].value
    assert _png_shape(png) == (64, 96), "landscape 3:2, not squashed to the square canvas"
    assert image_panel.children[1].layout.width == "80px", "a panel is never wider than panel_px"
    model_panel = view.models.children[0]
    assert "salient" in model_panel.children[2].value, "every overlay has its legend"
    before = model_panel.children[1].value
    view.opacity.value = 0.0
    after = view.models.children[0].children[1].value
    assert after != before and after == view.images.children[0].children[1].value, "opacity 0 shows the photo"
    assert panel_scale((16, 16, 3), 3, 300) == (3, 48) and panel_scale((200, 300, 3), 3, 300) == (1, 300)


# 5 -----------------------------------------------------------------------------------------
def test_models_without_weights_are_marked_and_get_a_checkpoint_or_random_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("MDC_WIDGETS_WEIGHTS", raising=False)
    absent = "espnetv2_s0.5_voc256"
    assert "espnetv2_s_0.5_pascal_256x256.pth" in missing_weights(absent)
    assert missing_weights("mw_unet_ss") is None and missing_weights("spectral_residual_sod") is None
    session = Session(BLOB_POOL, tmp_path / "store", models=threshold_competitors(), device="cpu")
    picker = CompetitionPicker(session, task="ss", k=3)
    labels = dict((value, label) for label, value in picker.ss_b.options)
    assert labels[absent] == f"{absent} (no weights)" and labels["ss_a"] == "ss_a"
    assert picker.checkpoint_box.layout.display == "none"
    picker.ss_b.value = absent
    assert picker.checkpoint_box.layout.display == "flex" and absent in picker.weights_note.value
    with pytest.raises(MdcError, match="random weights for a dry run"):
        picker.spec()
    picker.checkpoint_path.value = str(tmp_path / "nowhere.pth")
    picker.checkpoint_button.click()
    assert "No checkpoint file at" in picker.note.value and picker.missing() == {absent: missing_weights(absent)}
    picker.random_button.click()
    assert picker.missing() == {} and picker.checkpoint_box.layout.display == "none"
    assert "random weights" in picker.note.value and picker.spec()["group"].ss == ("ss_a", absent)
    assert session.competitor(absent).task == "ss"
    message = in_ui_words(WeightsNotFoundError("No x.pth in /w, or pass weights='/p/x.pth', or weights=None."))
    assert "weights=" not in message and "Compete tab" in message


# 6 -----------------------------------------------------------------------------------------
def test_an_invalid_filter_empties_the_grid_under_its_error(mined_blob_session):
    browser = SampleBrowser(mined_blob_session, page_size=8)
    browser.refresh()
    assert len(browser.grid.children) == 8
    browser.filter.value = "nope > 1"
    assert "no such column" in browser.status.value and "Nothing is shown" in browser.status.value
    assert browser.grid.children == () and browser.page_label.value == "no page" and browser.next_button.disabled
    browser.filter.value = "selected"
    assert len(browser.grid.children) == 6 and browser.page_label.value == "page 1 / 1"


# 7 -----------------------------------------------------------------------------------------
def test_faint_disagreement_is_visible_and_outlined():
    image = np.full((20, 20, 3), 128, np.uint8)
    d = np.zeros((20, 20), np.float32)
    d[:4, :8] = 0.08  # a faint SOD difference on 8 % of the pixels
    d[10:16, 10:16] = 1.0
    out = disagreement_overlay(image, d).astype(int)
    agree = out[19, 0]
    faint = out[0, 0]
    assert np.abs(faint - agree).max() >= 60, "a faint disagreement must stand out from agreement"
    edge = outline(d >= 0.5)
    assert edge.sum() == 20 and (out[edge] == [255, 230, 0]).all()
    marked = np.abs(out - agree).max(-1) > 30
    assert marked.sum() == int((d > 0.02).sum()), "the coloured pixels are exactly the disputed ones"


def test_the_detail_shows_disagreement_with_its_legend(mined_blob_session):
    browser = SampleBrowser(mined_blob_session)
    browser.refresh()
    browser.tiles[0][1].click()
    panel = browser.detail.disagreement.children[0]
    assert "models disagree" in panel.children[2].value and "edge of the disputed region" in panel.children[2].value


# 8 -----------------------------------------------------------------------------------------
def test_out_of_range_inputs_are_corrected_with_a_visible_note(blob_session):
    picker = CompetitionPicker(blob_session, task="joint", k=5000)
    assert picker.k.value == 40 and "k = 5000 is not possible" in picker.note.value and "40" in picker.note.value
    picker.k.value = 0
    assert picker.k.value == 1 and "k = 0 is not possible" in picker.note.value
    picker.k.value = 7
    assert picker.spec()["k"] == 7
    picker.ss_b.value = "ss_a"
    assert (picker.ss_a.value, picker.ss_b.value) == ("ss_b", "ss_a")
    assert "ss_a was already chosen as SS model A" in picker.note.value and "now ss_b" in picker.note.value


# 9 -----------------------------------------------------------------------------------------
def test_tiles_show_whole_ids_and_every_colour_has_a_legend(mined_blob_session):
    browser = SampleBrowser(mined_blob_session)
    browser.refresh()
    sid, _ = browser.tiles[0]
    caption = browser._tile_boxes[sid].children[2].value
    assert sid in caption and "break-all" in caption
    assert "selected by the competition" in browser.legend.value and "open in the detail view" in browser.legend.value
    from mdc_widgets.widgets import PlotsPanel

    plots = PlotsPanel(mined_blob_session, browser, n_boot=10)
    scatter = plots.figures["scatter"]
    assert scatter.layout.yaxis.automargin is True and scatter.layout.xaxis.automargin is True


# 10 ----------------------------------------------------------------------------------------
def test_statuses_speak_words_not_code(blob_session):
    assert describe_skipped({"near_duplicate": 2, "class_quota": 0}) == "2 near-duplicates"
    picker = CompetitionPicker(blob_session, task="joint", k=30)
    picker.use_area.value, picker.area.value = True, (0.3, 0.4)
    panel = RunPanel(blob_session, picker)
    panel.run(background=False)
    status = panel.status.value
    assert "Selected" in status and "{" not in status and "Skipped for diversity:" in status
    assert "foreground area out of bounds" in status


def test_a_cancelled_run_says_how_to_go_on_in_words(blob_session):
    class Cancelling(RecordingSession):
        def predict(self, *args, **kwargs):
            from mdc_widgets.predictions import RunCancelled

            raise RunCancelled("Prediction cancelled; 1 of 5 chunks were stored in x. Run predict_pool again.")

    panel = RunPanel(Cancelling(blob_session), CompetitionPicker(blob_session, task="ss", k=3))
    panel.run(background=False)
    assert "Cancelled" in panel.status.value and "press Run to go on" in panel.status.value
    assert "predict_pool" not in panel.status.value


# issue 16 ----------------------------------------------------------------------------------
def test_the_export_button_writes_the_mined_set_and_says_where(mined_blob_session, tmp_path):
    browser = SampleBrowser(mined_blob_session)
    browser.refresh()
    browser.export_button.click()
    assert "Type where to write" in browser.export_status.value
    target = tmp_path / "handed_on"
    browser.export_target.value = str(target)
    browser.export_button.click()
    assert (target / "index.html").exists(), browser.export_status.value
    assert len(list((target / "images").iterdir())) == 6
    assert str((target / "index.html").resolve()) in browser.export_status.value
    assert "Exported the selected images" in browser.export_status.value


def test_a_single_task_competition_draws_no_models_outside_it(mined_blob_session):
    from mdc_widgets.widgets import PlotsPanel

    mined_blob_session.mine(CompetitionGroup(sod=MODELS["sod"]), Weights(0, 1, 0), k=4, constraints=Constraints.none())
    plots = PlotsPanel(mined_blob_session, SampleBrowser(mined_blob_session), n_boot=10)
    assert "scatter" not in plots.figures and "histograms" in plots.figures
    assert "models of one task only" in plots.status.value
    drawn = {name for figure in plots.figures.values() for trace in figure.data for name in [trace.name or ""]}
    assert not any(ss in name for ss in MODELS["ss"] for name in drawn if "vs" in name)
