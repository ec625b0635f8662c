"""FiftyOne export round trip: export a mined set, reload the dataset, compare fields and masks pixel for pixel.

Skipped where fiftyone is not installed (``pip install mdc-widgets[fiftyone]``).
"""

from __future__ import annotations

import uuid

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
