"""Annotation round trip: models' masks out as COCO / Label Studio pre-annotations, corrected masks back as ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mdc_widgets.data import open_pool
from mdc_widgets.errors import MdcError
from mdc_widgets.export import (
    brush_decode,
    brush_encode,
    export_coco,
    export_folder,
    export_label_studio,
    file_stem,
    import_coco,
    import_label_studio,
    mined_set,
    write_mask_folder,
)
from mdc_widgets.export.coco import mask_annotations
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights

pytest.importorskip("pycocotools")

JOINT_CONV = CompetitionGroup(ss=("conv_ss_1", "conv_ss_2"), sod=("conv_sod_1", "conv_sod_2"))


@pytest.fixture
def mined_gt_session(gt_session):
    gt_session.mine(JOINT_CONV, Weights(1, 1, 1), k=5, constraints=Constraints.none(), save=False)
    return gt_session


def _prediction(session, sample, model):
    return np.asarray(session.predictions["prediction"].sel(sample=sample, model=model).values)


def test_coco_round_trip_changes_the_evaluation_as_the_correction_says(mined_gt_session, tmp_path):
    session = mined_gt_session
    files = export_coco(session, tmp_path / "coco")
    assert set(files) == set(JOINT_CONV.models)
    ids = [str(s) for s in mined_set(session)["sample"].values]
    assert sorted(p.name for p in (tmp_path / "coco" / "images").iterdir()) == sorted(f"{s}.png" for s in ids)

    # an annotator starts from conv_ss_1's masks and redraws the first image as conv_ss_2 sees it
    document = json.loads(files["conv_ss_1"].read_text())
    assert {c["name"] for c in document["categories"]} == {f"c{i}" for i in range(1, 6)}
    first = next(im for im in document["images"] if im["file_name"] == f"{ids[0]}.png")
    corrected = _prediction(session, ids[0], "conv_ss_2")
    kept = [a for a in document["annotations"] if a["image_id"] != first["id"]]
    document["annotations"] = kept + mask_annotations(corrected, first["id"], first_id=10_000)
    # CVAT renumbers categories from 1 in its own order: labels are matched by name
    document["categories"] = [{**c, "id": 100 + c["id"]} for c in document["categories"]]
    for annotation in document["annotations"]:
        annotation["category_id"] += 100
    edited = tmp_path / "cvat_export.json"
    edited.write_text(json.dumps(document))

    classes = ["background"] + [f"c{i}" for i in range(1, 6)]
    masks = import_coco(edited, classes=classes, sample_ids=session.pool.sample_ids)
    assert list(masks["sample"].values) == ids and "semantic" in masks
    np.testing.assert_array_equal(masks["semantic"].sel(sample=ids[0]).values, corrected)
    for sid in ids[1:]:
        np.testing.assert_array_equal(masks["semantic"].sel(sample=sid).values, _prediction(session, sid, "conv_ss_1"))

    before = session.evaluation(ids)["miou"].sel(model="conv_ss_1").values
    session.set_ground_truth(masks)
    after = session.evaluation(ids)["miou"]
    # each model is perfect exactly where the corrected masks are its own
    assert after.sel(model="conv_ss_2", sample=ids[0]).item() == pytest.approx(1.0)
    np.testing.assert_allclose(after.sel(model="conv_ss_1", sample=ids[1:]).values, 1.0)
    assert not np.allclose(before, after.sel(model="conv_ss_1").values)
    # samples outside the export keep the pool's own masks
    others = [s for s in map(str, session.pool.sample_ids) if s not in ids]
    np.testing.assert_array_equal(
        session.ground_truth()["semantic"].sel(sample=others).values,
        session.pool.ground_truth()["semantic"].sel(sample=others).values,
    )
    ranking = session.ranking(n_boot=20, ground_truth="selected")
    assert "ground truth" in set(ranking["source"])
    session.set_ground_truth(None)
    np.testing.assert_allclose(session.evaluation(ids)["miou"].sel(model="conv_ss_1").values, before)


def test_coco_saliency_round_trip_scores_the_corrected_image_against_its_new_mask(mined_gt_session, tmp_path):
    session = mined_gt_session
    files = export_coco(session, tmp_path / "coco")
    ids = [str(s) for s in mined_set(session)["sample"].values]
    pool_truth = session.pool.ground_truth()["saliency"].sel(sample=ids[0]).values
    document = json.loads(files["conv_sod_1"].read_text())
    assert [c["name"] for c in document["categories"]] == ["salient"]
    first = next(im for im in document["images"] if im["file_name"] == f"{ids[0]}.png")
    document["annotations"] = [a for a in document["annotations"] if a["image_id"] != first["id"]]
    document["annotations"] += mask_annotations((pool_truth > 0).astype(np.uint8), first["id"], first_id=9_999)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document))

    reference = session.evaluation(ids)  # against the pool's masks
    masks = import_coco(edited)
    assert set(np.unique(masks["saliency"].values)) <= {0, 255}
    session.set_ground_truth(masks)
    after = session.evaluation(ids)
    # the corrected image is scored exactly as against the pool's own mask
    for metric in ("fbeta_max", "mae", "s_measure"):
        np.testing.assert_allclose(after[metric].sel(sample=ids[0]).values, reference[metric].sel(sample=ids[0]).values)
    # the uncorrected ones are conv_sod_1's own binarised map: its foreground matches exactly (NaN: both empty)
    iou = after["foreground_iou"].sel(model="conv_sod_1", sample=ids[1:]).values
    assert np.all(np.isnan(iou) | (iou == 1.0))
    from mdc_widgets.discrepancy import binarize_saliency

    for sid in ids[1:]:
        expected = np.asarray(binarize_saliency(_prediction(session, sid, "conv_sod_1")[None]))[0] * 255
        np.testing.assert_array_equal(masks["saliency"].sel(sample=sid).values, expected)


def test_label_studio_round_trip_with_brush_masks(mined_gt_session, tmp_path):
    session = mined_gt_session
    tasks_path = export_label_studio(session, tmp_path / "ls")
    config = (tmp_path / "ls" / "label_config.xml").read_text()
    assert '<BrushLabels name="semantic"' in config and '<BrushLabels name="saliency"' in config
    tasks = json.loads(tasks_path.read_text())
    ids = [t["data"]["mdc_sample"] for t in tasks]
    assert ids == [str(s) for s in mined_set(session)["sample"].values]
    assert tasks[0]["data"]["image"] == f"/data/local-files/?d=images/{file_stem(ids[0])}.png"
    assert [p["model_version"] for p in tasks[0]["predictions"]] == list(JOINT_CONV.models)

    # the annotator accepts conv_ss_2 and conv_sod_1 everywhere, but repaints the first image's semantic mask
    truth = np.asarray(session.pool.ground_truth()["semantic"].sel(sample=ids[0]).values)
    for task in tasks:
        by_model = {p["model_version"]: p["result"] for p in task["predictions"]}
        results = by_model["conv_ss_2"] + by_model["conv_sod_1"]
        if task["data"]["mdc_sample"] == ids[0]:
            results = [r for r in results if r["from_name"] != "semantic"]
            results += [
                {
                    "from_name": "semantic",
                    "to_name": "image",
                    "type": "brushlabels",
                    "original_width": 32,
                    "original_height": 32,
                    "value": {"format": "rle", "rle": brush_encode(truth == c), "brushlabels": [f"c{c}"]},
                }
                for c in np.unique(truth)
                if c > 0
            ]
        task["annotations"] = [{"result": [], "was_cancelled": True}, {"result": results, "was_cancelled": False}]
    exported = tmp_path / "ls" / "project-export.json"
    exported.write_text(json.dumps(tasks))

    masks = import_label_studio(exported)  # classes from label_config.xml beside it
    np.testing.assert_array_equal(masks["semantic"].sel(sample=ids[0]).values, truth)
    for sid in ids[1:]:
        np.testing.assert_array_equal(masks["semantic"].sel(sample=sid).values, _prediction(session, sid, "conv_ss_2"))
    from mdc_widgets.discrepancy import binarize_saliency

    for sid in ids:
        expected = np.asarray(binarize_saliency(_prediction(session, sid, "conv_sod_1")[None]))[0] * 255
        np.testing.assert_array_equal(masks["saliency"].sel(sample=sid).values, expected)

    session.set_ground_truth(masks)
    ev = session.evaluation(ids)
    np.testing.assert_allclose(ev["miou"].sel(model="conv_ss_2", sample=ids[1:]).values, 1.0)
    assert ev["miou"].sel(model="conv_ss_2", sample=ids[0]).item() == pytest.approx(
        _miou(_prediction(session, ids[0], "conv_ss_2"), truth)
    )

    # the same masks as a folder that open_pool reads beside the exported images
    export_folder(session, tmp_path / "folder")
    folders = write_mask_folder(masks, tmp_path / "corrected")
    pool = open_pool(
        str(tmp_path / "folder" / "images"), image_size=(32, 32), ground_truth=folders, classes=masks.attrs["classes"]
    )
    gt = pool.ground_truth()
    for sid in ids:
        np.testing.assert_array_equal(gt["semantic"].sel(sample=sid).values, masks["semantic"].sel(sample=sid).values)
        np.testing.assert_array_equal(gt["saliency"].sel(sample=sid).values, masks["saliency"].sel(sample=sid).values)


def _miou(prediction: np.ndarray, truth: np.ndarray) -> float:
    from mdc_widgets.metrics.functional import miou_from_confusion, segmentation_confusion

    return float(miou_from_confusion(segmentation_confusion(prediction[None], truth[None], 6))[0])


def test_label_studio_polygons_and_bad_labels(tmp_path):
    tasks = [
        {
            "data": {"mdc_sample": "img"},
            "annotations": [
                {
                    "result": [
                        {
                            "from_name": "saliency",
                            "type": "polygonlabels",
                            "original_width": 4,
                            "original_height": 4,
                            "value": {"points": [[0, 0], [50, 0], [50, 100], [0, 100]], "polygonlabels": ["salient"]},
                        }
                    ]
                }
            ],
        }
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    masks = import_label_studio(path)
    assert masks["saliency"].sel(sample="img").values[:, :2].min() == 255
    assert masks["saliency"].sel(sample="img").values[:, 3].max() == 0
    tasks[0]["annotations"][0]["result"][0]["from_name"] = "semantic"
    path.write_text(json.dumps(tasks))
    with pytest.raises(MdcError, match="label 'salient'.*classes"):
        import_label_studio(path, classes=["background", "cat"])


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (200, 100)])
def test_brush_rle_round_trips_any_mask(shape):
    rng = np.random.default_rng(shape[0])
    for mask in (rng.random(shape) > 0.5, np.ones(shape, bool), np.zeros(shape, bool)):
        np.testing.assert_array_equal(brush_decode(brush_encode(mask), *shape), np.where(mask, 255, 0))
    with pytest.raises(MdcError, match="original_width"):
        brush_decode(brush_encode(np.ones(shape, bool)), shape[0] + 1, shape[1])


def test_brush_decode_reads_label_studios_literal_blocks():
    # header: 4 values, word 8 bits, run fields 3/4/8/16; then one literal block of 4 values 0, 0, 0, 255
    bits = f"{4:032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))
    bits += "0" + "00" + f"{3:03b}" + "".join(f"{v:08b}" for v in (0, 0, 0, 255))
    bits += "0" * (-len(bits) % 8)
    rle = [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]
    assert brush_decode(rle, 1, 1).tolist() == [[255]]


def test_brush_decode_reads_label_studio_converters_own_encoding():
    # label_studio_converter 0.0.59 brush.mask2rle([[0, 255, 255], [255, 0, 0]]); our encoder was also checked
    # against its decode_rle both ways when this was written
    rle = [0, 0, 0, 24, 57, 27, 252, 96, 22, 255, 231, 0, 0]
    assert brush_decode(rle, 2, 3).tolist() == [[0, 255, 255], [255, 0, 0]]
