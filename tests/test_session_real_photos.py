"""The Session and the widgets on real photos: released maps, letterbox, native aspect, explanations.

Uses six SOD-300 photos (both orientations) copied into ``tmp_path``; skips
when ``../shared`` is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from mdc_widgets.mining import CompetitionGroup, Constraints
from mdc_widgets.session import Session

SOD300 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sod300"
IDS = ["2092", "8143", "12003", "181018", "301007", "43083"]  # 301007 and 181018 are portrait
METHODS = ("amulet", "dss", "picanet")

pytestmark = pytest.mark.skipif(
    not SOD300.exists(),
    reason=f"the SOD-300 photos are not at {SOD300} (../shared is absent outside the development machines)",
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sod300")
    for folder in ["images", "gt", *(f"maps/{m}" for m in METHODS)]:
        (root / folder).mkdir(parents=True)
        suffix = ".jpg" if folder == "images" else ".png"
        for sid in IDS:
            shutil.copy(SOD300 / folder / f"{sid}{suffix}", root / folder / f"{sid}{suffix}")
    return root


@pytest.fixture(scope="module")
def session(photos, tmp_path_factory) -> Session:
    session = Session(
        str(photos / "images"),
        tmp_path_factory.mktemp("store"),
        image_size=(96, 96),
        fit="letterbox",
        ground_truth={"saliency": str(photos / "gt")},
        maps={m: str(photos / "maps" / m) for m in METHODS},
        device="cpu",
    )
    session.predict(list(METHODS))
    session.mine(CompetitionGroup(sod=METHODS), k=3, constraints=Constraints.none())
    return session


def test_released_maps_are_offered_predicted_and_mined(session):
    assert set(METHODS) <= set(session.available_models("sod"))
    assert "espnetv2_s2.0_voc384" in session.available_models("ss")
    assert session.predicted_models("sod") == sorted(METHODS)
    table = session.ranked_table()
    assert int(table["selected"].sum()) == 3


def test_sample_detail_is_shown_at_the_photos_own_aspect_ratio(session):
    for sid, shape in (("181018", (96, 64)), ("2092", (64, 96))):  # portrait 481x321, landscape 321x481
        detail = session.sample_detail(sid)
        assert detail["image"].shape[:2] == shape
        for view in detail["predictions"].values():
            assert view["map"].shape == shape and view["overlay"].shape[:2] == shape
        for view in detail["disagreement"].values():
            assert view["map"].shape == shape
        assert detail["ground_truth"]["saliency"]["map"].shape == shape
        # the letterbox pad is gone: the shown photo has no rows of the fill colour
        assert not np.all(detail["image"][0] == detail["image"][0, 0])


def test_explaining_released_maps_shows_the_map_and_says_why_there_is_no_cam(session):
    from mdc_widgets.widgets.browser import SampleBrowser
    from mdc_widgets.widgets.explain import ExplainPanel

    out = session.explain("181018", "picanet")
    assert out["cam"] is None and "released maps" in out["note"]
    assert out["prediction_overlay"].shape == (96, 96, 3)
    browser = SampleBrowser(session)
    panel = ExplainPanel(session, browser)
    browser.refresh()
    browser.tiles[0][1].click()
    panel.model.value = "dss"
    result = panel.explain()
    assert result["cam"] is None and "no class activation map" in panel.status.value
    assert len(panel.output.children) >= 2


def test_the_picker_adds_a_folder_of_released_maps(photos, tmp_path):
    from mdc_widgets.widgets.picker import CompetitionPicker

    session = Session(
        str(photos / "images"),
        tmp_path / "store",
        image_size=(64, 64),
        fit="letterbox",
        use_registry=False,
        device="cpu",
    )
    picker = CompetitionPicker(session, task="sod")
    picker.maps_name.value, picker.maps_folder.value = "dss", str(photos / "maps" / "dss")
    assert picker.add_maps() and "dss" in picker.sod_p.options
    picker.maps_name.value, picker.maps_folder.value = "nothing", str(tmp_path / "absent")
    assert not picker.add_maps() and "does not exist" in picker.maps_status.value
    picker.maps_name.value, picker.maps_folder.value = "dss", str(photos / "maps" / "amulet")
    assert not picker.add_maps() and "exists already" in picker.maps_status.value
