"""FiftyOne export round trip: export a mined set, reload the dataset, compare fields and masks pixel for pixel.

Skipped where fiftyone is not installed (``pip install mdc-widgets[fiftyone]``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from mdc_widgets.export import mined_set
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights

JOINT_CONV = CompetitionGroup(ss=("conv_ss_1", "conv_ss_2"), sod=("conv_sod_1", "conv_sod_2"))


def test_fiftyone_round_trip_keeps_fields_and_masks(gt_session, tmp_path):
    import os

    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    fo = pytest.importorskip("fiftyone")
    from mdc_widgets.export import export_fiftyone

    session = gt_session
    session.mine(JOINT_CONV, Weights(1, 1, 1), k=4, constraints=Constraints.none(), save=False)
    mined = mined_set(session)
    ids = [str(s) for s in mined["sample"].values]
    session.label(ids[0], "conv_ss_1", "conv_ss_2", "a")
    name = f"mdc-test-{uuid.uuid4().hex[:8]}"
    try:
        export_fiftyone(session, name, image_dir=tmp_path / "images")
        dataset = fo.load_dataset(name)
        assert len(dataset) == 4
        assert dataset.mask_targets["pred_conv_ss_1"][1] == "c1"
        assert dataset.mask_targets["gt_saliency"] == {0: "background", 255: "salient"}
        rows = sorted(dataset, key=lambda s: s["rank"])
        assert [s["mdc_sample"] for s in rows] == ids
        gt = session.ground_truth()
        for position, sample in enumerate(rows):
            sid = ids[position]
            assert sample["selected"] is True and sample["score"] == pytest.approx(
                float(mined["score"].values[position])
            )
            for factor in ("occlusion", "blur", "camouflage"):  # nuisance factors of the mini-world
                assert sample[factor] == pytest.approx(float(mined[factor].values[position]))
            for model in JOINT_CONV.ss:
                np.testing.assert_array_equal(
                    sample[f"pred_{model}"].mask, session.predictions["prediction"].sel(sample=sid, model=model).values
                )
            for model in JOINT_CONV.sod:
                heat = sample[f"pred_{model}"]
                assert list(heat.range) == [0, 255]
                np.testing.assert_array_equal(
                    heat.map, session.predictions["prediction"].sel(sample=sid, model=model).values
                )
            np.testing.assert_array_equal(sample["gt_semantic"].mask, gt["semantic"].sel(sample=sid).values)
            np.testing.assert_array_equal(sample["gt_saliency"].mask, gt["saliency"].sel(sample=sid).values)
        assert rows[0]["verdicts"] == ["conv_ss_1|conv_ss_2:conv_ss_1"] and rows[1]["verdicts"] == []
        assert dataset.info["mdc_models"]["pred_conv_sod_2"] == {"model": "conv_sod_2", "task": "sod"}
        # sorting in FiftyOne reproduces the mined order
        assert dataset.sort_by("rank").values("mdc_sample") == ids
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


SCREENSHOT_SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "screenshots" / "fiftyone_app.py"
# ten SOD-300 photos, portrait ones among them (181018, 301007)
FEW_PHOTOS = ["2092", "8049", "8143", "12003", "12074", "181018", "301007", "43083", "55067", "22013"]


def screenshot_script():
    """``docs/screenshots/fiftyone_app.py`` as a module, or a skip saying what the run lacks."""
    import importlib.util
    import shutil

    pytest.importorskip("playwright.sync_api")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    spec = importlib.util.spec_from_file_location("fiftyone_app", SCREENSHOT_SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    if not script.SOD300.exists():
        pytest.skip(f"the SOD-300 photos are not at {script.SOD300} (../shared is absent)")
    return script


@pytest.mark.e2e
@pytest.mark.slow
def test_the_app_shows_the_mined_set(tmp_path):
    """The FiftyOne App, in headless Chromium, lists the mined SOD-300 photos and their fields (the README's picture)."""
    import os

    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    pytest.importorskip("fiftyone")
    script = screenshot_script()
    photos = script.sample_photos(tmp_path / "photos", FEW_PHOTOS)
    # the script waits for the sample count and the exported fields on the page, else it raises
    shots = script.take_screenshots(tmp_path / "shots", photos, k=6)
    from PIL import Image

    assert set(shots) == {"contact_sheet", "grid", "sample"}
    for what in ("grid", "sample"):
        with Image.open(shots[what]) as picture:
            assert picture.size == (1500, 1000)
            # photos were drawn: an App without its images is a few flat UI colours
            assert len(picture.convert("RGB").getcolors(maxcolors=1 << 24)) > 5000
