"""Folder export: PNGs a person opens without Python, the ranked CSV, and the HTML contact sheet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import MODELS

from mdc_widgets.data.io import decode_image, decode_mask
from mdc_widgets.errors import MdcError
from mdc_widgets.export import export_folder, file_stem, mined_set
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights
from mdc_widgets.mining.job import ranked_table

JOINT_CONV = CompetitionGroup(ss=("conv_ss_1", "conv_ss_2"), sod=("conv_sod_1", "conv_sod_2"))


@pytest.fixture
def mined_gt_session(gt_session):
    gt_session.mine(JOINT_CONV, Weights(1, 1, 1), k=5, constraints=Constraints.none(), save=False)
    return gt_session


def test_folder_export_writes_images_maps_ground_truth_csv_and_sheet(mined_gt_session, tmp_path):
    session = mined_gt_session
    index = export_folder(session, tmp_path / "out")
    out = tmp_path / "out"
    result = session.result()
    table = ranked_table(result)
    chosen = table[table["selected"] == 1]
    ids = chosen["sample_id"].tolist()
    assert index == out / "index.html" and len(ids) == 5

    written = pd.read_csv(out / "ranked.csv")
    assert list(written.columns) == list(table.columns)
    assert written["sample_id"].tolist() == ids
    np.testing.assert_allclose(written["score"], chosen["score"])

    predictions = session.predictions
    gt = session.ground_truth()
    for sid in ids:
        stem = file_stem(sid)
        np.testing.assert_array_equal(decode_image(out / "images" / f"{stem}.png"), session.images([sid])[0])
        for model in JOINT_CONV.models:
            stored = predictions["prediction"].sel(sample=sid, model=model).values
            kind = "labels" if model in JOINT_CONV.ss else "grey"
            # SS: palette PNG whose indices are the classes; SOD: grey values as stored
            np.testing.assert_array_equal(decode_mask(out / model / f"{stem}.png", kind), stored)
            assert (out / "overlays" / model / f"{stem}.png").exists()
        np.testing.assert_array_equal(
            decode_mask(out / "ground_truth" / "semantic" / f"{stem}.png"), gt["semantic"].sel(sample=sid).values
        )
        np.testing.assert_array_equal(
            decode_mask(out / "ground_truth" / "saliency" / f"{stem}.png", "grey"),
            gt["saliency"].sel(sample=sid).values,
        )
    from PIL import Image

    with Image.open(out / "conv_ss_1" / f"{file_stem(ids[0])}.png") as im:
        assert im.mode == "P"  # opens in any viewer in class colours

    sheet = index.read_text()
    assert sheet.count("<tr>") == 1 + len(ids) and "<script" not in sheet
    for sid in ids:
        assert f'src="images/{file_stem(sid)}.png"' in sheet
        assert f'src="overlays/conv_sod_2/{file_stem(sid)}.png"' in sheet
    assert "salient (1)" in sheet and "background" in sheet  # the colour legend
    # every image the sheet links to exists
    import re

    for link in re.findall(r'src="([^"]+)"', sheet):
        assert (out / link).exists(), link


def test_folder_export_of_the_whole_pool_and_without_ground_truth(mined_blob_session, tmp_path):
    export_folder(mined_blob_session, tmp_path / "all", selected_only=False)
    written = pd.read_csv(tmp_path / "all" / "ranked.csv")
    assert len(written) == 40 and written["selected"].sum() == 6
    assert not (tmp_path / "all" / "ground_truth").exists()
    assert len(list((tmp_path / "all" / "images").glob("*.png"))) == 40
    mined = mined_set(mined_blob_session)
    assert mined.sizes["sample"] == 6 and list(mined["model"].values) == [*MODELS["ss"], *MODELS["sod"]]
    assert mined["selected"].values.all() and mined["rank"].values.tolist() == [1, 2, 3, 4, 5, 6]


def test_export_needs_a_result_and_names_the_fix(blob_session, tmp_path):
    with pytest.raises(MdcError, match="session.mine"):
        export_folder(blob_session, tmp_path / "x")
    with pytest.raises(MdcError, match="pool=... and predictions="):
        mined_set(
            blob_session.mine(
                CompetitionGroup(ss=MODELS["ss"]), Weights(1, 0, 0), k=2, constraints=Constraints.none(), save=False
            )
        )


def test_file_stem_keeps_safe_ids_and_makes_others_unique():
    assert file_stem("s0001") == "s0001"
    assert file_stem("/a/x y.jpg") != file_stem("/b/x y.jpg")


def test_session_export_is_the_widget_action(mined_blob_session, tmp_path):
    index = mined_blob_session.export("folder", tmp_path / "via_session")
    assert index == tmp_path / "via_session" / "index.html" and index.exists()
    with pytest.raises(MdcError, match="Unknown export format 'pdf'"):
        mined_blob_session.export("pdf", tmp_path / "x")


@pytest.mark.e2e
@pytest.mark.slow
def test_the_contact_sheet_of_real_photos_renders_in_a_browser(tmp_path):
    """index.html of a SOD-300 export in headless Chromium: one row per image, every picture decodes."""
    from test_export_fiftyone import FEW_PHOTOS, screenshot_script

    script = screenshot_script()
    photos = script.sample_photos(tmp_path / "photos", FEW_PHOTOS)
    session = script.mined_session(tmp_path / "work", photos, k=5)
    shot = script.contact_sheet_screenshot(session, tmp_path, tmp_path / "work")
    assert shot.exists()
    # at the photos' own size: no picture of the export is the square working canvas
    from PIL import Image

    for path in (tmp_path / "work" / "folder" / "images").iterdir():
        with Image.open(path) as picture:
            assert picture.width != picture.height
