"""Released prediction maps as competitors: matching by stem, every bad file, resizing, letterbox, ground truth.

Everything runs on tiny synthetic folders made in ``tmp_path``: PNG images of
12x20 and 20x12 (HxW), grey saliency maps, index/palette/16-bit label maps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import ThresholdCompetitor
from PIL import Image

from mdc_widgets.data import open_pool
from mdc_widgets.data.io import LETTERBOX_FILL, content_box, fit_to_canvas, from_canvas, resize_mask, resize_saliency
from mdc_widgets.errors import ImageDecodeError, MdcError
from mdc_widgets.metrics import evaluate, evaluate_native, summarize
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, mine, rank_normalize
from mdc_widgets.models import MapCompetitor, MapFolderError, get_model, list_models, register_maps
from mdc_widgets.predictions import open_predictions, predict_pool
from mdc_widgets.predictions.store import PredictionRunError

SIZES = [(12, 20), (20, 12)] * 3  # (H, W) of im0..im5: landscape and portrait
STEMS = [f"im{i}" for i in range(6)]
CLASSES = ("background", "cat", "dog", "car")


def _save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _saliency(i: int, size: tuple[int, int]) -> np.ndarray:
    """A graded map with a bright blob, different for every image."""
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    blob = ((yy - h / 2) ** 2 + (xx - w / 3 - i) ** 2) < (min(h, w) / 3) ** 2
    return np.where(blob, 200 + 9 * i, (7 * yy + 3 * xx + 11 * i) % 90).astype(np.uint8)


def _labels(i: int, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    out = np.zeros(size, np.uint8)
    out[h // 4 : 3 * h // 4, : w // 2] = 1 + i % 3
    out[: h // 3, w // 2 :] = 1 + (i + 1) % 3
    return out


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """images/, sal/ (saliency maps), lab/ (palette label maps), gt/ (binary saliency), sem/ (semantic masks)."""
    rng = np.random.default_rng(0)
    folders = {name: tmp_path / name for name in ("images", "sal", "lab", "gt", "sem")}
    for folder in folders.values():
        folder.mkdir()
    for i, (stem, size) in enumerate(zip(STEMS, SIZES)):
        _save(folders["images"] / f"{stem}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        _save(folders["sal"] / f"{stem}.png", _saliency(i, size))
        labels = Image.fromarray(_labels(i, size), mode="L").convert("P")
        labels.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0, 0, 0, 200] + [255, 255, 255] * 252)
        labels.save(folders["lab"] / f"{stem}.png")
        _save(folders["gt"] / f"{stem}.png", np.where(_saliency(i, size) >= 200, 255, 0).astype(np.uint8))
        _save(folders["sem"] / f"{stem}.png", _labels(i, size))
    return folders


def _pool(world: dict[str, Path], size=16, fit="letterbox", **kwargs):
    return open_pool(world["images"], image_size=size, fit=fit, **kwargs)


def _copy_maps(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.iterdir():
        (dst / path.name).write_bytes(path.read_bytes())
    return dst


# -- matching and reading ------------------------------------------------------------------------


def test_maps_match_images_by_stem_whatever_the_order_extension_and_extra_files(world, tmp_path):
    maps = tmp_path / "mixed"
    for i, (stem, size) in enumerate(zip(STEMS, SIZES)):
        _save(maps / f"{stem}{'.bmp' if i == 3 else '.png'}", _saliency(i, size))
    _save(maps / "not_in_pool.png", np.zeros((5, 5), np.uint8))  # a map of another image is ignored
    (maps / "README.txt").write_text("maps of some method")
    # the pool lists its images in reverse order: maps follow the stem, not the position
    pool = open_pool([world["images"] / f"{s}.png" for s in reversed(STEMS)], image_size=(16, 16), fit="stretch")
    comp = MapCompetitor("m", maps)
    assert comp.map_path("im3").suffix == ".bmp" and comp.map_path("nope") is None
    assert comp.check_pool(pool) == {}
    ds = predict_pool(pool, [comp], tmp_path / "store", chunk_size=4, progress=False)
    assert list(ds["sample"].values) == list(reversed(STEMS))
    for stem in STEMS:
        i = STEMS.index(stem)
        expected = fit_to_canvas(_saliency(i, SIZES[i]), (16, 16), "stretch", "saliency")
        np.testing.assert_array_equal(ds["prediction"].sel(sample=stem, model="m").values, expected)
    assert ds["valid"].values.all()


def test_predict_pool_reads_the_maps_without_any_network_and_records_their_folder(world, tmp_path, monkeypatch):
    import mdc_widgets.predictions._runner as runner_module

    def no_inference(*args, **kwargs):
        raise AssertionError("a folder of released maps must not run inference")

    monkeypatch.setattr(runner_module, "predict_maps", no_inference)
    monkeypatch.setattr(MapCompetitor, "predict", no_inference)
    pool = _pool(world, size=16, fit="letterbox")
    ds = predict_pool(
        pool,
        [MapCompetitor("sal", world["sal"]), MapCompetitor("lab", world["lab"], "ss", CLASSES)],
        tmp_path / "store",
        chunk_size=4,
        progress=False,
    )
    assert ds["prediction"].shape == (6, 2, 16, 16)
    assert dict(zip(ds["model"].values, ds["task"].values)) == {"sal": "sod", "lab": "ss"}
    for i, stem in enumerate(STEMS):
        sal = fit_to_canvas(_saliency(i, SIZES[i]), (16, 16), "letterbox", "saliency")
        lab = fit_to_canvas(_labels(i, SIZES[i]), (16, 16), "letterbox", "labels")
        np.testing.assert_array_equal(ds["prediction"].sel(sample=stem, model="sal").values, sal)
        np.testing.assert_array_equal(ds["prediction"].sel(sample=stem, model="lab").values, lab)
        y0, y1, x0, x1 = content_box(SIZES[i], (16, 16), "letterbox")
        pad = np.ones((16, 16), bool)
        pad[y0:y1, x0:x1] = False
        assert pad.any()  # every image here is letterboxed
        for var in ("prediction", "entropy"):
            assert not np.asarray(ds[var].sel(sample=stem).values)[:, pad].any(), (var, stem)
    sources = open_predictions(tmp_path / "store").attrs["sources"]
    recorded = json.loads(sources["sal"])
    assert {k: recorded[k] for k in ("kind", "folder", "task", "files")} == {
        "kind": "maps",
        "folder": str(world["sal"].resolve()),
        "task": "sod",
        "files": 6,
    }
    assert len(recorded["digest"]) == 16  # name, size and mtime of every map: a changed folder is not reused
    assert json.loads(sources["lab"])["task"] == "ss"


def test_map_competitor_argument_checks(world, tmp_path):
    with pytest.raises(MdcError, match="class list"):
        MapCompetitor("lab", world["lab"], "ss")
    with pytest.raises(MdcError, match="task"):
        MapCompetitor("x", world["sal"], "depth")
    with pytest.raises(MdcError, match="errors"):
        MapCompetitor("x", world["sal"], errors="ignore")
    with pytest.raises(MapFolderError, match="does not exist"):
        MapCompetitor("x", tmp_path / "no_such_folder")
    (tmp_path / "only_text").mkdir()
    (tmp_path / "only_text" / "a.txt").write_text("x")
    with pytest.raises(MapFolderError, match="no image files"):
        MapCompetitor("x", tmp_path / "only_text")
    with pytest.raises(MdcError, match="predicts nothing"):
        MapCompetitor("x", world["sal"]).predict(torch.zeros(1, 3, 4, 4))


# -- bad map folders ---------------------------------------------------------------------------------


def _break(folder: Path, stem: str, kind: str) -> str:
    """Spoil the map of ``stem``; returns the name the error must show."""
    path = folder / f"{stem}.png"
    i = STEMS.index(stem)
    if kind == "missing":
        path.unlink()
        return stem
    if kind == "swapped":
        _save(path, _saliency(i, SIZES[i][::-1]))
    elif kind == "unreadable":
        path.write_bytes(b"this is not a PNG file at all" * 4)
    elif kind == "empty":
        path.write_bytes(b"")
    return path.name


@pytest.mark.parametrize("kind", ["missing", "swapped", "unreadable", "empty"])
def test_each_bad_map_is_refused_before_anything_runs(world, tmp_path, kind):
    maps = _copy_maps(world["sal"], tmp_path / "maps")
    named = _break(maps, "im1", kind)
    pool = _pool(world)
    comp = MapCompetitor("m", maps)
    with pytest.raises(MapFolderError) as info:
        comp.check_pool(pool)
    message = str(info.value)
    assert f"1 {kind}" in message and named in message and "'m'" in message and "errors='skip'" in message
    with pytest.raises(MapFolderError, match=f"1 {kind}"):
        predict_pool(pool, [MapCompetitor("m", maps)], tmp_path / "store", progress=False)
    assert not (tmp_path / "store" / "m.zarr").exists()  # refused before a store was made
    # reading that one map directly names the file too
    error = MapFolderError if kind in ("missing", "swapped") else ImageDecodeError
    with pytest.raises(error, match=named if kind != "missing" else "im1"):
        comp.read_native("im1", SIZES[1])


def test_all_bad_kinds_together_are_counted_and_named(world, tmp_path):
    maps = _copy_maps(world["sal"], tmp_path / "maps")
    names = [
        _break(maps, "im0", "missing"),
        _break(maps, "im2", "missing"),
        _break(maps, "im1", "swapped"),
        _break(maps, "im3", "unreadable"),
        _break(maps, "im4", "empty"),
    ]
    with pytest.raises(MapFolderError) as info:
        MapCompetitor("m", maps).check_pool(_pool(world))
    message = str(info.value)
    for fragment in ("2 missing", "1 swapped", "1 unreadable", "1 empty", "of 6 images", *names):
        assert fragment in message, fragment


def test_two_maps_of_one_stem_are_refused(world, tmp_path):
    maps = _copy_maps(world["sal"], tmp_path / "maps")
    _save(maps / "im2.jpg", _saliency(2, SIZES[2]))
    with pytest.raises(MapFolderError) as info:
        MapCompetitor("m", maps)
    assert "im2.jpg" in str(info.value) and "im2.png" in str(info.value) and "'im2'" in str(info.value)


def test_a_truncated_map_passes_the_header_check_but_fails_the_run_naming_the_file(world, tmp_path):
    maps = _copy_maps(world["sal"], tmp_path / "maps")
    data = (maps / "im5.png").read_bytes()
    (maps / "im5.png").write_bytes(data[: len(data) // 2])
    pool = _pool(world)
    assert MapCompetitor("m", maps).check_pool(pool) == {}
    with pytest.raises(PredictionRunError, match="im5.png"):
        predict_pool(pool, [MapCompetitor("m", maps)], tmp_path / "store", progress=False)
    skipping = MapCompetitor("m", maps, errors="skip")
    ds = predict_pool(pool, [skipping], tmp_path / "store2", progress=False)
    assert ds["valid"].values.tolist() == [True] * 5 + [False]
    assert "im5.png" in skipping.errors["im5"]


def test_errors_skip_lists_the_bad_maps_and_stores_the_rest_invalid(world, tmp_path):
    maps = _copy_maps(world["sal"], tmp_path / "maps")
    for stem, kind in (("im0", "missing"), ("im1", "swapped"), ("im3", "unreadable"), ("im4", "empty")):
        _break(maps, stem, kind)
    pool = _pool(world)
    comp = MapCompetitor("m", maps, errors="skip")
    bad = comp.check_pool(pool)
    assert sorted(bad) == ["im0", "im1", "im3", "im4"]
    assert "swapped" in bad["im1"] and "0 bytes" in bad["im4"] and "cannot be read" in bad["im3"]
    ds = predict_pool(
        pool, [comp, MapCompetitor("good", world["sal"])], tmp_path / "store", chunk_size=4, progress=False
    )
    assert sorted(comp.errors) == ["im0", "im1", "im3", "im4"]
    # valid is the AND over models: the good folder cannot make those images valid
    assert ds["valid"].values.tolist() == [False, False, True, False, False, True]
    for i in (2, 5):
        expected = fit_to_canvas(_saliency(i, SIZES[i]), (16, 16), "letterbox", "saliency")
        np.testing.assert_array_equal(ds["prediction"].sel(sample=STEMS[i], model="m").values, expected)
    assert not ds["prediction"].sel(sample=["im0", "im1", "im3", "im4"], model="m").values.any()
    # the good model's own store keeps its images valid; only the combined view drops them
    alone = open_predictions(tmp_path / "store", ["good"])
    assert alone["valid"].values.all()


def test_an_exif_rotated_photo_is_compared_upright(tmp_path):
    """A JPEG stored 20x12 (WxH) with EXIF orientation 6 is a 20x12 (HxW) portrait photo; its map is upright."""
    images, maps = tmp_path / "images", tmp_path / "maps"
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(images / "phone.jpg", np.full((12, 20, 3), 90, np.uint8), exif=exif.tobytes())
    _save(maps / "phone.png", np.full((20, 12), 255, np.uint8))  # upright: 20 high, 12 wide
    pool = open_pool(images, image_size=16, fit="letterbox")
    assert pool.native_size(0) == (20, 12)
    assert MapCompetitor("m", maps).check_pool(pool) == {}
    _save(maps / "phone.png", np.full((12, 20), 255, np.uint8))  # made on the sideways pixels
    with pytest.raises(MapFolderError, match="1 swapped"):
        MapCompetitor("m", maps).check_pool(pool)


# -- resizing and values -----------------------------------------------------------------------------


def test_a_map_of_another_size_is_resized_bilinear_for_saliency_nearest_for_labels(world, tmp_path):
    sal, lab = tmp_path / "sal_small", tmp_path / "lab_big"
    small = _saliency(0, (6, 10))
    _save(sal / "im0.png", small)
    big = _labels(0, (24, 40))
    big[0, 0] = 255  # VOC "void" in a released prediction means no class: background
    _save(lab / "im0.png", big)
    sal_comp, lab_comp = MapCompetitor("s", sal), MapCompetitor("l", lab, "ss", CLASSES)
    out = sal_comp.read_native("im0", (12, 20))
    np.testing.assert_array_equal(out, resize_saliency(small, (12, 20)))
    np.testing.assert_array_equal(out, np.asarray(Image.fromarray(small).resize((20, 12), Image.BILINEAR)))
    assert set(np.unique(out)) - set(np.unique(small))  # graded: new values in between
    assert "resized" in sal_comp.warnings["im0"]
    labels = lab_comp.read_native("im0", (12, 20))
    np.testing.assert_array_equal(labels, np.where(resize_mask(big, (12, 20)) == 255, 0, resize_mask(big, (12, 20))))
    assert set(np.unique(labels)) <= set(np.unique(big)) - {255} | {0}  # nearest: no new labels
    assert labels.shape == (12, 20) and labels.dtype == np.uint8


def test_palette_and_16bit_label_maps_are_read_as_class_indices(world, tmp_path):
    comp = MapCompetitor("lab", world["lab"], "ss", CLASSES)
    assert Image.open(world["lab"] / "im0.png").mode == "P"
    for i, stem in enumerate(STEMS):
        np.testing.assert_array_equal(comp.read_native(stem, SIZES[i]), _labels(i, SIZES[i]))
    wide = tmp_path / "lab16"
    _save(wide / "im0.png", _labels(0, SIZES[0]).astype(np.uint16))
    assert Image.open(wide / "im0.png").mode.startswith("I")
    np.testing.assert_array_equal(
        MapCompetitor("l16", wide, "ss", CLASSES).read_native("im0", SIZES[0]), _labels(0, SIZES[0])
    )


def test_labels_outside_the_class_list_are_refused(world, tmp_path):
    lab = _copy_maps(world["lab"], tmp_path / "lab")
    _save(lab / "im4.png", np.full(SIZES[4], 7, np.uint8))
    comp = MapCompetitor("lab", lab, "ss", CLASSES)
    with pytest.raises(MapFolderError, match=r"im4\.png.*label 7.*4 classes"):
        comp.read_native("im4", SIZES[4])
    with pytest.raises(PredictionRunError, match="label 7"):
        predict_pool(_pool(world), [MapCompetitor("lab", lab, "ss", CLASSES)], tmp_path / "store", progress=False)
    skipping = MapCompetitor("lab", lab, "ss", CLASSES, errors="skip")
    ds = predict_pool(_pool(world), [skipping], tmp_path / "store2", progress=False)
    assert ds["valid"].values.tolist() == [True] * 4 + [False, True] and "label 7" in skipping.errors["im4"]


def test_16bit_grey_saliency_maps_use_the_full_16bit_range(tmp_path):
    ramp = np.linspace(0, 65535, 12 * 20).reshape(12, 20).round().astype(np.uint16)
    _save(tmp_path / "full" / "a.png", ramp)
    got = MapCompetitor("m", tmp_path / "full").read_native("a", (12, 20))
    np.testing.assert_allclose(got, ramp / 257.0, atol=0.51)


def test_16bit_grey_saliency_maps_are_not_stretched_to_their_own_maximum(tmp_path):
    _save(tmp_path / "half" / "a.png", np.full((12, 20), 32768, np.uint16))
    _save(tmp_path / "half" / "b.png", np.full((12, 20), 200, np.uint16))
    comp = MapCompetitor("m", tmp_path / "half")
    assert comp.read_native("a", (12, 20)).max() == 128  # 32768 / 65535 * 255
    assert comp.read_native("b", (12, 20)).max() <= 1  # 200 / 65535 * 255


def test_a_palette_saliency_map_is_read_as_its_grey_values(tmp_path):
    grey = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (2, 1))
    image = Image.new("P", (8, 2))
    image.putpalette([v for i in range(256) for v in (255 - i,) * 3])  # index i shows grey 255 - i
    image.putdata(list((255 - grey).ravel()))
    (tmp_path / "pal").mkdir()
    image.save(tmp_path / "pal" / "a.png")
    np.testing.assert_array_equal(MapCompetitor("m", tmp_path / "pal").read_native("a", (2, 8)), grey)


# -- registry -----------------------------------------------------------------------------------------


def test_register_maps_makes_a_named_competitor(world, tmp_path, monkeypatch):
    from mdc_widgets.models import registry

    list_models()  # built-ins first, then a private copy of the registry for this test
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_maps("test_released_sal", world["sal"], description="published maps")
    register_maps("test_released_lab", world["lab"], "ss", CLASSES)
    assert {"test_released_sal", "test_released_lab"} <= set(list_models(tag="maps"))
    assert "test_released_sal" in list_models("sod") and "test_released_lab" in list_models("ss")
    comp = get_model("test_released_sal")
    assert isinstance(comp, MapCompetitor) and comp.task == "sod" and comp.folder == world["sal"].resolve()
    assert comp.description == "published maps"
    assert get_model("test_released_lab").classes == CLASSES
    with pytest.raises(MdcError, match="takes no weights"):
        get_model("test_released_sal", checkpoint=tmp_path / "w.pth")
    ds = predict_pool(_pool(world), ["test_released_sal", "test_released_lab"], tmp_path / "store", progress=False)
    assert list(ds["model"].values) == ["test_released_sal", "test_released_lab"]
    np.testing.assert_array_equal(
        ds["prediction"].sel(sample="im2", model="test_released_lab").values,
        fit_to_canvas(_labels(2, SIZES[2]), (16, 16), "letterbox", "labels"),
    )
    with pytest.raises(MapFolderError):
        register_maps("test_released_bad", tmp_path / "missing")


# -- letterbox ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("native", [(12, 20), (20, 12), (7, 13), (321, 481), (481, 321), (16, 16)])
@pytest.mark.parametrize("canvas", [(16, 16), (24, 40), (64, 48)])
def test_fit_to_canvas_and_back_round_trips_the_shape(native, canvas):
    labels = (np.arange(native[0] * native[1]).reshape(native) % 5).astype(np.uint8)
    for fit in ("letterbox", "stretch"):
        for kind in ("labels", "saliency"):
            on_canvas = fit_to_canvas(labels, canvas, fit, kind)
            assert on_canvas.shape == canvas
            back = from_canvas(on_canvas, native, fit, kind)
            assert back.shape == native and back.dtype == np.uint8
        if fit == "letterbox":
            y0, y1, x0, x1 = content_box(native, canvas, fit)
            # the content keeps the aspect ratio and touches two opposite sides of the canvas
            assert (y1 - y0 == canvas[0]) or (x1 - x0 == canvas[1])
            assert abs((y1 - y0) / (x1 - x0) - native[0] / native[1]) < 2 / min(y1 - y0, x1 - x0) + 1e-9
            pad = np.ones(canvas, bool)
            pad[y0:y1, x0:x1] = False
            assert not fit_to_canvas(labels + 1, canvas, fit, "labels")[pad].any()
            image = fit_to_canvas(np.full((*native, 3), 9, np.uint8), canvas, fit, "image")
            assert (image[pad] == LETTERBOX_FILL).all() and (image[~pad] == 9).all()
    constant = np.full(native, 3, np.uint8)
    np.testing.assert_array_equal(
        from_canvas(fit_to_canvas(constant, canvas, "letterbox", "labels"), native, "letterbox", "labels"), constant
    )


def test_letterbox_pads_are_background_in_ground_truth_and_network_maps(world, tmp_path):
    pool = _pool(
        world,
        size=(16, 16),
        fit="letterbox",
        ground_truth={"saliency": world["gt"], "semantic": world["sem"]},
        classes=CLASSES,
    )
    boxes = pool.content_boxes(0, 6)
    assert boxes.tolist() == [list(content_box(s, (16, 16), "letterbox")) for s in SIZES]
    images, valid = pool.read_images(0, 6)
    assert valid.all()
    # threshold 0: a network that calls every pixel (pads too) foreground, 0.9 saliency
    net_sod, net_ss = ThresholdCompetitor("net_sod", "sod", 0.0), ThresholdCompetitor("net_ss", "ss", 0.0, 4)
    ds = predict_pool(pool, [net_sod, net_ss], tmp_path / "store", progress=False)
    gt = pool.ground_truth()
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        pad = np.ones((16, 16), bool)
        pad[y0:y1, x0:x1] = False
        assert (images[i][pad] == LETTERBOX_FILL).all()
        for var in ("saliency", "semantic"):
            assert not gt[var].values[i][pad].any()
        sod = ds["prediction"].isel(sample=i).sel(model="net_sod").values
        assert not sod[pad].any() and (sod[~pad] == 230).all()
        ss = ds["prediction"].isel(sample=i).sel(model="net_ss").values
        assert not ss[pad].any() and ss[~pad].all()
        assert not ds["entropy"].isel(sample=i).values[:, pad].any()
    # a stretched pool has no pads: the same network covers the whole canvas
    stretched = _pool(world, size=(16, 16), fit="stretch")
    ds = predict_pool(stretched, [net_sod], tmp_path / "store_stretch", progress=False)
    assert (ds["prediction"].values == 230).all()


# -- ground truth by stem ------------------------------------------------------------------------------


def test_ground_truth_folders_are_matched_by_stem_and_read_at_native_size(world, tmp_path):
    gt = _copy_maps(world["gt"], tmp_path / "gt")
    _save(gt / "other_image.png", np.zeros((3, 3), np.uint8))  # a mask of no pool image is ignored
    (gt / "im3.png").rename(gt / "im3.bmp")  # any image extension
    order = [world["images"] / f"{s}.png" for s in ("im4", "im3", "im0", "im5", "im1", "im2")]
    pool = open_pool(
        order, image_size=16, fit="letterbox", ground_truth={"saliency": gt, "semantic": world["sem"]}, classes=CLASSES
    )
    assert pool.classes == CLASSES
    for index, path in enumerate(order):
        i = STEMS.index(path.stem)
        truth = pool.native_ground_truth(index)
        assert pool.native_size(index) == SIZES[i]
        assert truth["saliency"].shape == SIZES[i] and truth["semantic"].shape == SIZES[i]
        np.testing.assert_array_equal(truth["saliency"], np.where(_saliency(i, SIZES[i]) >= 200, 255, 0))
        np.testing.assert_array_equal(truth["semantic"], _labels(i, SIZES[i]))
        on_canvas = pool.ground_truth()["saliency"].sel(sample=path.stem).values
        np.testing.assert_array_equal(on_canvas, fit_to_canvas(truth["saliency"], (16, 16), "letterbox", "labels"))


def test_bad_ground_truth_folders_raise(world, tmp_path):
    with pytest.raises(MdcError, match="does not exist"):
        _pool(world, ground_truth={"saliency": tmp_path / "nowhere"})
    unrelated = tmp_path / "unrelated"
    _save(unrelated / "zebra.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(MdcError, match=r"No file .* stem of a pool image"):
        _pool(world, ground_truth={"saliency": unrelated})
    twice = _copy_maps(world["gt"], tmp_path / "twice")
    _save(twice / "im1.jpg", np.zeros(SIZES[1], np.uint8))
    with pytest.raises(MdcError, match="two files for 'im1'"):
        _pool(world, ground_truth={"saliency": twice})
    with pytest.raises(MdcError, match="depth"):
        _pool(world, ground_truth={"depth": world["gt"]})
    with pytest.raises(MdcError, match="fit"):
        _pool(world, fit="crop")


def test_partly_labeled_pool_leaves_unlabeled_images_out_of_native_metrics(world, tmp_path):
    gt = _copy_maps(world["gt"], tmp_path / "gt")
    (gt / "im2.png").unlink()
    pool = _pool(world, ground_truth={"saliency": gt})
    assert pool.native_ground_truth(2) == {}
    ds = predict_pool(pool, [MapCompetitor("m", world["sal"])], tmp_path / "store", progress=False)
    native = evaluate_native(ds, pool)
    assert np.isnan(native["mae"].sel(sample="im2").values).all()
    assert np.isfinite(native["mae"].drop_sel(sample="im2").values).all()


def test_partly_labeled_pool_leaves_unlabeled_images_out_of_working_metrics(world, tmp_path):
    gt = _copy_maps(world["gt"], tmp_path / "gt")
    (gt / "im2.png").unlink()
    pool = _pool(world, ground_truth={"saliency": gt})
    ds = predict_pool(pool, [MapCompetitor("m", world["sal"])], tmp_path / "store", progress=False)
    truth = pool.ground_truth()
    if "im2" in set(truth["sample"].values):  # kept: then it must score NaN, not against an empty mask
        assert np.isnan(evaluate(ds, truth)["mae"].sel(sample="im2").values).all()


# -- native-resolution metrics of released maps ----------------------------------------------------------


def test_native_metrics_read_released_maps_at_full_resolution(world, tmp_path):
    """Fine stripes vanish on a 16x16 canvas; native metrics must still see them (read from the file)."""
    maps, perfect = tmp_path / "stripes", tmp_path / "perfect"
    for i, (stem, size) in enumerate(zip(STEMS, SIZES)):
        stripes = np.zeros(size, np.uint8)
        stripes[:, ::2] = 255
        _save(maps / f"{stem}.png", stripes)
        _save(perfect / f"{stem}.png", np.where(_saliency(i, size) >= 200, 255, 0).astype(np.uint8))
    pool = _pool(world, ground_truth={"saliency": world["gt"]})
    ds = predict_pool(
        pool, [MapCompetitor("stripes", maps), MapCompetitor("perfect", perfect)], tmp_path / "store", progress=False
    )
    native = evaluate_native(ds, pool)
    assert native.attrs["resolution"] == "native"
    for i, stem in enumerate(STEMS):
        gt = np.where(_saliency(i, SIZES[i]) >= 200, 1.0, 0.0)
        stripes = np.zeros(SIZES[i])
        stripes[:, ::2] = 1.0
        assert float(native["mae"].sel(sample=stem, model="stripes")) == pytest.approx(
            np.abs(stripes - gt).mean(), abs=1e-12
        )
    summary = summarize(native)
    assert float(summary["mae"].sel(model="perfect")) == 0.0
    assert float(summary["fbeta_max"].sel(model="perfect")) == pytest.approx(1.0)
    assert float(summary["s_measure"].sel(model="perfect")) == pytest.approx(1.0)


# -- mining with more than two models of a task ------------------------------------------------------------


def test_mining_three_released_sod_maps_averages_the_three_pairs(world, tmp_path):
    from mdc_widgets.discrepancy import compute_discrepancies

    folders = {}
    for shift, name in enumerate(("a", "b", "c")):
        folders[name] = tmp_path / name
        for i, (stem, size) in enumerate(zip(STEMS, SIZES)):
            _save(folders[name] / f"{stem}.png", np.roll(_saliency(i, size), shift * (i + 1), axis=1))
    pool = _pool(world)
    ds = predict_pool(pool, [MapCompetitor(n, f) for n, f in folders.items()], tmp_path / "store", progress=False)
    group = CompetitionGroup(sod=("a", "b", "c"))
    assert group.intra_pairs("sod") == [("a", "b"), ("a", "c"), ("b", "c")] and group.intra_pairs("ss") == []
    result = mine(ds, group, Weights(ss=0, sod=1, cross=0), k=2, constraints=Constraints.none(), pool=pool, save=False)
    d = compute_discrepancies(ds, device="cpu")
    pairs = [d.sel(model_a=a, model_b=b).values for a, b in group.intra_pairs("sod")]
    np.testing.assert_allclose(result["d_sod"].values, np.mean(pairs, axis=0), rtol=1e-6)
    expected = np.mean([rank_normalize(p) for p in pairs], axis=0)
    np.testing.assert_allclose(result["term_sod"].values, expected, rtol=1e-9)
    np.testing.assert_allclose(result["score"].values, expected, rtol=1e-9)
    assert (result["term_ss"].values == 0).all() and (result["term_cross"].values == 0).all()
    assert int(result["selected"].values.sum()) == 2
    picked = set(result["sample"].values[result["selected"].values])
    assert picked == set(result["sample"].values[np.argsort(-result["score"].values, kind="stable")[:2]])


# -- pool fingerprints and stores -----------------------------------------------------------------------


def test_miniworld_fingerprint_covers_the_working_size_and_stores_are_not_shared(tmp_path, monkeypatch):
    from mdc_widgets.session import Session

    square = open_pool("miniworld", n=10, seed=1, image_size=(64, 64))
    wide = open_pool("miniworld", n=10, seed=1, image_size=(64, 96))
    assert square.fingerprint != wide.fingerprint
    assert open_pool("miniworld", n=10, seed=1, image_size=(64, 64)).fingerprint == square.fingerprint
    assert wide.read_images(0, 2)[0].shape == (2, 64, 96, 3)
    net = ThresholdCompetitor("net", "sod", 0.5)
    store = tmp_path / "store"
    predict_pool(square, [net], store, chunk_size=5, progress=False)
    with pytest.raises(MdcError, match=r"another pool or setting.*pool_fingerprint"):
        predict_pool(wide, [net], store, chunk_size=5, progress=False)
    # a session on the other size sees nothing of this store and refuses to reuse it
    session = Session(wide, store=store, use_registry=False)
    assert session.predicted_models() == []
    with pytest.raises(MdcError, match="No predictions"):
        _ = session.predictions
    with pytest.raises(MdcError, match="another pool"):
        session.predict([net])
    assert Session(square, store=store, use_registry=False).predicted_models() == ["net"]
    # without a store, sessions of the two sizes get different default stores
    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path / "home"))
    assert Session(square, use_registry=False).store != Session(wide, use_registry=False).store


def test_file_pool_fingerprint_covers_size_and_fit(world):
    prints = {
        (size, fit): _pool(world, size=size, fit=fit).fingerprint
        for size in (16, (16, 24))
        for fit in ("letterbox", "stretch")
    }
    assert len(set(prints.values())) == 4
    assert _pool(world, size=16, fit="letterbox").fingerprint == prints[(16, "letterbox")]


def test_released_maps_on_a_dask_client_keep_their_source(world, tmp_path):
    distributed = pytest.importorskip("distributed")
    pool = _pool(world)
    predict_pool(pool, [MapCompetitor("m", world["sal"])], tmp_path / "local", progress=False)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ds = predict_pool(pool, [MapCompetitor("m", world["sal"])], tmp_path / "remote", progress=False, client=client)
        assert json.loads(ds.attrs["sources"]["m"])["kind"] == "maps"
        predict_pool(pool, [MapCompetitor("m", world["sal"])], tmp_path / "local", progress=False, client=client)
