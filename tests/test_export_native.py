"""Exports of a letterboxed photo pool at each photo's own size, and corrected native-size masks back.

Synthetic non-square photos (landscape, portrait, square) with saliency and
semantic masks and two folders of released saliency maps at the photos' own
size; two tiny conv segmenters predict on the 32x32 letterbox canvas.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _helpers import tiny_conv_competitor
from PIL import Image

from mdc_widgets.data.io import decode_image, decode_mask, fit_to_canvas, from_canvas
from mdc_widgets.errors import MdcError
from mdc_widgets.export import (
    export_coco,
    export_folder,
    export_label_studio,
    import_coco,
    import_label_studio,
    mined_set,
    write_mask_folder,
)
from mdc_widgets.export.coco import mask_annotations
from mdc_widgets.export.label_studio import brush_encode
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights
from mdc_widgets.session import Session

SIZES = [(30, 48), (48, 30), (36, 36), (24, 40), (40, 26), (28, 44)]  # (H, W)
CLASSES = ["background"] + [f"c{i}" for i in range(1, 6)]
GROUP = CompetitionGroup(ss=("conv_ss_1", "conv_ss_2"), sod=("map_a", "map_b"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("photos")
    folders = {name: root / name for name in ("images", "saliency", "semantic", "map_a", "map_b")}
    for folder in folders.values():
        folder.mkdir()
    for i, (h, w) in enumerate(SIZES):
        yy, xx = np.mgrid[:h, :w]
        disk = (yy - h // 2) ** 2 + (xx - rng.integers(w // 3, 2 * w // 3)) ** 2 <= (min(h, w) // 3) ** 2
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folders["images"] / f"p{i}.png")
        Image.fromarray(np.where(disk, 255, 0).astype(np.uint8)).save(folders["saliency"] / f"p{i}.png")
        Image.fromarray((disk * (1 + i % 5)).astype(np.uint8)).save(folders["semantic"] / f"p{i}.png")
        for name, noise in (("map_a", 40), ("map_b", 140)):
            soft = np.clip(disk * 190 + rng.integers(0, noise, (h, w)), 0, 255).astype(np.uint8)
            Image.fromarray(soft).save(folders[name] / f"p{i}.png")
    return folders


@pytest.fixture
def session(photos, tmp_path):
    session = Session(
        str(photos["images"]),
        tmp_path / "store",
        image_size=(32, 32),
        fit="letterbox",
        ground_truth={"saliency": str(photos["saliency"]), "semantic": str(photos["semantic"])},
        classes=CLASSES,
        maps={"map_a": str(photos["map_a"]), "map_b": str(photos["map_b"])},
        models=[tiny_conv_competitor("conv_ss_1", "ss", seed=1), tiny_conv_competitor("conv_ss_2", "ss", seed=2)],
        use_registry=False,
        device="cpu",
    )
    session.predict(list(GROUP.models))
    session.mine(GROUP, Weights(1, 1, 1), k=4, constraints=Constraints.none(), save=False)
    return session


def _native(session, sid):
    return tuple(session.pool.native_size(session.index_of(sid)))


def test_folder_export_writes_each_photo_and_its_maps_at_the_photo_size(session, photos, tmp_path):
    export_folder(session, tmp_path / "out")
    out = tmp_path / "out"
    mined = mined_set(session)
    ids = [str(s) for s in mined["sample"].values]
    assert mined.attrs["size"] == "native" and len(ids) == 4
    assert {_native(session, s) for s in ids} != {(32, 32)}  # the photos really are not the canvas
    for sid in ids:
        native = _native(session, sid)
        # the photo as it is on disk: its own size, no letterbox pad
        np.testing.assert_array_equal(
            decode_image(out / "images" / f"{sid}.png"), decode_image(photos["images"] / f"{sid}.png")
        )
        # released maps at full resolution, byte for byte the published values
        for model in ("map_a", "map_b"):
            np.testing.assert_array_equal(
                decode_mask(out / model / f"{sid}.png", "grey"), decode_mask(photos[model] / f"{sid}.png", "grey")
            )
        # network maps: cropped out of the letterbox and resized back (nearest for labels)
        stored = session.predictions["prediction"].sel(sample=sid, model="conv_ss_1").values
        np.testing.assert_array_equal(
            decode_mask(out / "conv_ss_1" / f"{sid}.png"), from_canvas(stored, native, "letterbox", "labels")
        )
        np.testing.assert_array_equal(
            decode_mask(out / "ground_truth" / "saliency" / f"{sid}.png", "grey"),
            decode_mask(photos["saliency"] / f"{sid}.png", "grey"),
        )
        np.testing.assert_array_equal(
            decode_mask(out / "ground_truth" / "semantic" / f"{sid}.png"),
            decode_mask(photos["semantic"] / f"{sid}.png"),
        )
        assert Image.open(out / "overlays" / "map_a" / f"{sid}.png").size == (native[1], native[0])


def test_working_size_keeps_the_canvas_with_its_pad(session, tmp_path):
    export_folder(session, tmp_path / "working", size="working")
    mined = mined_set(session, size="working")
    assert mined.attrs["size"] == "working" and "image_height" not in mined
    sid = str(mined["sample"].values[0])
    np.testing.assert_array_equal(
        decode_image(tmp_path / "working" / "images" / f"{sid}.png"), session.images([sid])[0]
    )
    with pytest.raises(MdcError, match="size must be one of"):
        mined_set(session, size="thumbnail")


def test_coco_native_round_trip_moves_the_evaluation_as_the_correction_says(session, photos, tmp_path):
    files = export_coco(session, tmp_path / "coco")
    document = json.loads(files["map_a"].read_text())
    ids = [str(s) for s in mined_set(session)["sample"].values]
    by_name = {im["file_name"]: im for im in document["images"]}
    for sid in ids:
        h, w = _native(session, sid)
        assert (by_name[f"{sid}.png"]["height"], by_name[f"{sid}.png"]["width"]) == (h, w)
        assert Image.open(tmp_path / "coco" / "images" / f"{sid}.png").size == (w, h)
    # the annotator replaces every pre-annotation by the true mask, drawn on the full-size photo
    document["annotations"] = []
    for sid in ids:
        truth = decode_mask(photos["saliency"] / f"{sid}.png", "grey") > 127
        first = len(document["annotations"]) + 1
        document["annotations"] += mask_annotations(truth.astype(np.uint8), by_name[f"{sid}.png"]["id"], first)
    edited = tmp_path / "cvat.json"
    edited.write_text(json.dumps(document))

    with pytest.raises(MdcError, match="pass pool="):
        import_coco(edited)  # photos of different sizes cannot share one array without the pool's canvas
    masks = import_coco(edited, pool=session)
    assert (masks.sizes["y"], masks.sizes["x"]) == (32, 32)
    pool_truth = session.pool.ground_truth()["saliency"].sel(sample=ids).values
    # fitted onto the canvas exactly as the pool fits its own masks
    np.testing.assert_array_equal(masks["saliency"].sel(sample=ids).values, pool_truth)
    reference = session.evaluation(ids)
    session.set_ground_truth(masks)
    after = session.evaluation(ids)
    for metric in ("fbeta_max", "mae"):
        np.testing.assert_allclose(after[metric].values, reference[metric].values)

    # now a real correction: the first photo's mask is emptied; map_a is then judged against nothing salient
    document["annotations"] = [a for a in document["annotations"] if a["image_id"] != by_name[f"{ids[0]}.png"]["id"]]
    edited.write_text(json.dumps(document))
    session.set_ground_truth(import_coco(edited, pool=session))
    moved = session.evaluation(ids)
    assert moved["mae"].sel(model="map_a", sample=ids[0]).item() != pytest.approx(
        reference["mae"].sel(model="map_a", sample=ids[0]).item()
    )
    np.testing.assert_allclose(moved["mae"].sel(sample=ids[1:]).values, reference["mae"].sel(sample=ids[1:]).values)


def test_label_studio_native_round_trip_and_mask_folder_at_the_photo_size(session, photos, tmp_path):
    tasks_path = export_label_studio(session, tmp_path / "ls")
    tasks = json.loads(tasks_path.read_text())
    ids = [t["data"]["mdc_sample"] for t in tasks]
    for task in tasks:
        sid = task["data"]["mdc_sample"]
        h, w = _native(session, sid)
        results = [r for p in task["predictions"] for r in p["result"]]
        assert results and {(r["original_height"], r["original_width"]) for r in results} == {(h, w)}
        truth = decode_mask(photos["semantic"] / f"{sid}.png")
        task["annotations"] = [
            {
                "result": [
                    {
                        "from_name": "semantic",
                        "to_name": "image",
                        "type": "brushlabels",
                        "original_width": w,
                        "original_height": h,
                        "value": {"format": "rle", "rle": brush_encode(truth == c), "brushlabels": [CLASSES[c]]},
                    }
                    for c in np.unique(truth)
                    if c > 0
                ]
            }
        ]
    exported = tmp_path / "ls" / "export.json"
    exported.write_text(json.dumps(tasks))
    masks = import_label_studio(exported, pool=session.pool)
    np.testing.assert_array_equal(
        masks["semantic"].sel(sample=ids).values, session.pool.ground_truth()["semantic"].sel(sample=ids).values
    )
    # written back at each photo's own size, as a pool's mask folder holds them
    folders = write_mask_folder(masks, tmp_path / "corrected", pool=session)
    for sid in ids:
        np.testing.assert_array_equal(
            decode_mask(folders["semantic"] / f"{sid}.png"),
            from_canvas(masks["semantic"].sel(sample=sid).values, _native(session, sid), "letterbox", "labels"),
        )


def test_a_single_native_size_mask_goes_through_set_ground_truth(session, photos):
    from mdc_widgets.export import masks_dataset

    sid = next(s for s in map(str, session.pool.sample_ids) if _native(session, s) == (30, 48))
    truth = decode_mask(photos["saliency"] / f"{sid}.png", "grey")
    session.set_ground_truth(masks_dataset({"saliency": {sid: truth}}))
    np.testing.assert_array_equal(
        session.ground_truth()["saliency"].sel(sample=sid).values, fit_to_canvas(truth, (32, 32), "letterbox", "labels")
    )
    with pytest.raises(MdcError, match="its image is 48x30"):
        session.set_ground_truth(masks_dataset({"saliency": {sid: np.zeros((10, 10), np.uint8)}}))


def test_fiftyone_native_export_holds_the_photos_and_their_masks_at_full_size(session, photos, tmp_path):
    import os
    import uuid

    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    fo = pytest.importorskip("fiftyone")
    from mdc_widgets.export import export_fiftyone

    name = f"mdc-native-{uuid.uuid4().hex[:8]}"
    try:
        export_fiftyone(session, name, image_dir=tmp_path / "images")
        dataset = fo.load_dataset(name)
        ids = [str(s) for s in mined_set(session)["sample"].values]
        assert dataset.sort_by("rank").values("mdc_sample") == ids
        for sample in dataset:
            sid = sample["mdc_sample"]
            h, w = _native(session, sid)
            assert (sample.metadata.height, sample.metadata.width) == (h, w)
            np.testing.assert_array_equal(decode_image(sample.filepath), decode_image(photos["images"] / f"{sid}.png"))
            np.testing.assert_array_equal(sample["pred_map_a"].map, decode_mask(photos["map_a"] / f"{sid}.png", "grey"))
            np.testing.assert_array_equal(
                sample["gt_saliency"].mask, decode_mask(photos["saliency"] / f"{sid}.png", "grey")
            )
            np.testing.assert_array_equal(sample["gt_semantic"].mask, decode_mask(photos["semantic"] / f"{sid}.png"))
    finally:
        if fo.dataset_exists(name):
            fo.delete_dataset(name)


def test_whole_pool_export_falls_back_to_the_stored_map_of_a_map_gone_since(photos, tmp_path):
    import shutil

    from mdc_widgets.export import sample_array

    root = tmp_path / "copy"
    for name, folder in photos.items():
        shutil.copytree(folder, root / name)
    session = Session(
        str(root / "images"),
        tmp_path / "store",
        image_size=(32, 32),
        fit="letterbox",
        ground_truth={"saliency": str(root / "saliency")},
        maps={"map_a": str(root / "map_a"), "map_b": str(root / "map_b")},
        use_registry=False,
        device="cpu",
    )
    session.predict(["map_a", "map_b"])
    session.mine(CompetitionGroup(sod=("map_a", "map_b")), k=2, constraints=Constraints.none(), save=False)
    (root / "map_a" / "p0.png").unlink()
    with pytest.warns(UserWarning, match="map_a"):
        mined = mined_set(session, selected_only=False)
    ids = [str(s) for s in mined["sample"].values]
    assert sorted(ids) == sorted(map(str, session.pool.sample_ids)) and int(mined["selected"].sum()) == 2
    position = ids.index("p0")
    stored = session.predictions["prediction"].sel(sample="p0", model="map_a").values
    np.testing.assert_array_equal(
        sample_array(mined, "prediction", position, 0),
        from_canvas(stored, _native(session, "p0"), "letterbox", "saliency"),
    )
    for i, sid in enumerate(ids):
        assert sample_array(mined, "image", i).shape[:2] == _native(session, sid)
        if sid != "p0":
            np.testing.assert_array_equal(
                sample_array(mined, "prediction", i, 0), decode_mask(root / "map_a" / f"{sid}.png", "grey")
            )
