"""File pools, decoding of every image mode, fuzzed bad files, manifests and the dataset templates."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr
import yaml
from PIL import Image

from mdc_widgets.data import decode_image, decode_mask, generate_miniworld, open_pool, verify_manifest
from mdc_widgets.data.io import resize_image, resize_mask
from mdc_widgets.data.manifest import write_file_manifest
from mdc_widgets.errors import ImageDecodeError, ManifestError

RNG = np.random.default_rng(0)


def palette_image(indices: np.ndarray) -> Image.Image:
    """A palette ('P') image whose pixels are exactly ``indices`` (as VOC stores its class masks)."""
    return Image.frombytes("P", indices.shape[::-1], np.ascontiguousarray(indices).tobytes())


def rgb(h: int = 12, w: int = 16) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_every_image_mode_becomes_the_rgb_it_shows(tmp_path):
    grey = RNG.integers(0, 256, (6, 5), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "grey.png"), np.repeat(grey[..., None], 3, -1))

    rgba = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "rgba.png"), rgba[..., :3])

    Image.fromarray(np.stack([grey, grey // 2], -1)).save(tmp_path / "grey_alpha.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "grey_alpha.png"), np.repeat(grey[..., None], 3, -1))

    # 16-bit: 0 -> 0, 65535 -> 255, 32896 = 128 * 257 -> 128
    deep = np.array([[0, 65535, 32896]], np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert decode_image(tmp_path / "deep.png")[0, :, 0].tolist() == [0, 255, 128]

    palette = Image.new("P", (3, 1))
    palette.putpalette([10, 20, 30, 200, 100, 0, 0, 255, 0] + [0] * 759)
    palette.putdata([0, 1, 2])
    palette.save(tmp_path / "palette.png")
    assert decode_image(tmp_path / "palette.png")[0].tolist() == [[10, 20, 30], [200, 100, 0], [0, 255, 0]]

    Image.fromarray(np.array([[0, 255, 0]], np.uint8)).convert("1").save(tmp_path / "bilevel.png")
    assert decode_image(tmp_path / "bilevel.png")[0, :, 1].tolist() == [0, 255, 0]

    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red in CMYK
    cmyk.save(tmp_path / "cmyk.tif")
    assert decode_image(tmp_path / "cmyk.tif")[0, 0].tolist() == [255, 0, 0]


def test_resizing_is_bilinear_for_images_and_nearest_for_masks():
    # upsampling [0, 255] to 4 px with half-pixel centres: samples at x = -0.25, 0.25, 0.75, 1.25
    row = resize_image(np.repeat(np.array([[0, 255]], np.uint8)[..., None], 3, -1), (1, 4))[0, :, 0]
    expected = np.clip(np.array([-0.25, 0.25, 0.75, 1.25]), 0, 1) * 255
    np.testing.assert_allclose(row, expected, atol=1)
    flat = resize_image(np.full((7, 9, 3), 77, np.uint8), (4, 5))
    assert (flat == 77).all()
    mask = np.array([[0, 15], [255, 3]], np.uint8)
    np.testing.assert_array_equal(resize_mask(mask, (4, 4)), mask.repeat(2, 0).repeat(2, 1))
    assert set(np.unique(resize_mask(RNG.choice([0, 7, 255], (33, 47)).astype(np.uint8), (10, 10)))) <= {0, 7, 255}


def test_decode_errors_name_the_file_and_the_fix(tmp_path):
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("hello")
    for name in ("folder.png", "empty.png", "notes.jpg", "absent.png"):
        with pytest.raises(ImageDecodeError) as info:
            decode_image(tmp_path / name)
        message = str(info.value)
        assert str(tmp_path / name) in message, message
        assert "remove it" in message or "restore it" in message, message


def write_fuzzed_files(folder) -> tuple[list[str], list[str]]:
    """Good files of every mode and bad ones made from them; returns (good stems, surely-bad stems)."""
    good = {"rgb": rgb(), "grey": rgb()[..., 0], "rgba": RNG.integers(0, 256, (12, 16, 4), dtype=np.uint8)}
    for stem, array in good.items():
        Image.fromarray(array).save(folder / f"{stem}.png")
    Image.fromarray(RNG.integers(0, 65535, (9, 9), dtype=np.uint16)).save(folder / "deep.png")
    Image.fromarray(rgb()).save(folder / "photo.jpg", quality=90)
    Image.fromarray(rgb()).convert("P").save(folder / "palette.gif")
    png, jpg = (folder / "rgb.png").read_bytes(), (folder / "photo.jpg").read_bytes()
    bad = {
        "zero_bytes.png": b"",
        "text.png": b"this is not a picture\n" * 10,
        "header_only.png": png[:16],
        "cut_png.png": png[: len(png) // 2],
        "cut_jpg.jpg": jpg[:120],
        "wrong_magic.jpg": b"\x00" * 4 + jpg[4:],
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    # random byte flips may or may not stay decodable: they must simply never crash a read
    for k in range(4):
        data = bytearray(png)
        for pos in RNG.integers(8, len(data), 6):
            data[pos] ^= 0xFF
        (folder / f"flipped_{k}.png").write_bytes(bytes(data))
    return sorted([*good, "deep", "photo", "palette"]), sorted(n.split(".")[0] for n in bad)


def test_bad_files_never_stop_a_read_and_each_is_named(tmp_path):
    good, bad = write_fuzzed_files(tmp_path)
    pool = open_pool(tmp_path, image_size=(8, 10))
    ids = list(pool.sample_ids)
    assert len(pool) == len(good) + len(bad) + 4
    images, valid = pool.read_images(0, len(pool))
    assert images.shape == (len(pool), 8, 10, 3) and images.dtype == np.uint8
    by_id = dict(zip(ids, valid))
    assert all(by_id[s] for s in good) and not any(by_id[s] for s in bad)
    # exactly the invalid samples have an error, and each error names its file
    assert set(pool.errors) == {s for s, ok in by_id.items() if not ok}
    for sid, message in pool.errors.items():
        assert sid in message and str(tmp_path) in message
    assert (images[~valid] == 0).all()
    # reading in chunks gives the same pixels as one read
    chunks = np.concatenate([pool.read_images(i, min(i + 4, len(pool)))[0] for i in range(0, len(pool), 4)])
    np.testing.assert_array_equal(chunks, images)


def test_a_file_listed_but_missing_is_invalid_not_fatal(tmp_path):
    Image.fromarray(rgb()).save(tmp_path / "here.png")
    listing = tmp_path / "files.txt"
    listing.write_text(f"here.png\n{tmp_path / 'gone.png'}\n")
    pool = open_pool(listing, image_size=(12, 16))
    images, valid = pool.read_images(0, 2)
    assert valid.tolist() == [True, False]
    np.testing.assert_array_equal(images[0], np.asarray(Image.open(tmp_path / "here.png")))
    assert "gone.png" in pool.errors["gone"] and "not found" in pool.errors["gone"]


def test_folders_and_globs_recurse_and_skip_non_images(tmp_path):
    for sub in ("a", "b/c"):
        (tmp_path / sub).mkdir(parents=True)
    Image.fromarray(rgb()).save(tmp_path / "a" / "x.png")
    Image.fromarray(rgb()).save(tmp_path / "b" / "c" / "x.jpg")
    Image.fromarray(rgb()).save(tmp_path / "b" / "y.PNG")
    (tmp_path / "a" / "readme.txt").write_text("not an image")
    folder = open_pool(tmp_path)
    assert len(folder) == 3
    # ids are the paths under the folder without extension: unique, and the same wherever the folder lies
    assert list(folder.sample_ids) == ["a/x", "b/c/x", "b/y"]
    assert len(open_pool(str(tmp_path / "**" / "*.png"))) == 1  # glob is case-sensitive, like the shell
    assert len(open_pool(str(tmp_path / "**" / "x.*"))) == 2
    assert list(open_pool([tmp_path / "b" / "y.PNG"]).sample_ids) == ["y"]


def test_file_pool_fingerprint_follows_the_content(tmp_path):
    for i in range(3):
        Image.fromarray(rgb()).save(tmp_path / f"{i}.png")
    first = open_pool(tmp_path).fingerprint
    assert open_pool(tmp_path).fingerprint == first
    assert open_pool(tmp_path, image_size=(32, 32)).fingerprint != first
    Image.fromarray(rgb(20, 20)).save(tmp_path / "1.png")
    assert open_pool(tmp_path).fingerprint != first


def test_dataset_source_is_served_at_the_working_resolution():
    ds = generate_miniworld("val", n=4, seed=1, image_size=32)
    same = open_pool(ds, image_size=(32, 32))
    np.testing.assert_array_equal(same.read_images(0, 4)[0], ds["image"].values)
    bigger = open_pool(ds, image_size=(64, 48))
    images, valid = bigger.read_images(1, 3)
    assert images.shape == (2, 64, 48, 3) and valid.all()
    gt = bigger.ground_truth()
    assert gt["semantic"].shape == (4, 64, 48)
    assert set(np.unique(gt["saliency"])) <= {0, 255} and set(np.unique(gt["semantic"])) <= set(
        np.unique(ds["semantic"])
    )
    photos = xr.Dataset(
        {"image": (("sample", "y", "x", "channel"), RNG.integers(0, 256, (2, 8, 8, 3), dtype=np.uint8))},
        coords={"sample": ["p", "q"]},
    )
    assert open_pool(photos, image_size=(8, 8)).ground_truth() is None


def test_manifest_with_masks_gives_ground_truth(tmp_path):
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    (data / "sem").mkdir()
    (data / "sal").mkdir()
    for i in range(3):
        Image.fromarray(rgb(8, 8)).save(data / "img" / f"{i}.png")
        labels = palette_image(np.full((8, 8), [0, 15, 255][i], np.uint8))
        labels.putpalette([0, 0, 0] * 256)
        labels.save(data / "sem" / f"{i}.png")
        Image.fromarray(np.where(np.arange(64).reshape(8, 8) % 2, 255, 0).astype(np.uint8)).save(
            data / "sal" / f"{i}.png"
        )
    # a mask at another size is resized, and the pool says so
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(data / "sal" / "2.png")
    body = {
        "name": "tiny",
        "source": "tests",
        "license": "none",
        "root": "data",
        "classes": ["background", "thing"],
        "files": [
            {"path": f"img/{i}.png", "semantic_mask": f"sem/{i}.png", "saliency_mask": f"sal/{i}.png"} for i in range(3)
        ],
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(body))
    pool = open_pool(tmp_path / "tiny.yaml", image_size=(8, 8))
    assert pool.classes == ("background", "thing")
    gt = pool.ground_truth()
    assert gt["semantic"].values[:, 0, 0].tolist() == [0, 15, 255]  # palette indices, not colours
    assert gt["saliency"].values[0, 0, :4].tolist() == [0, 255, 0, 255]
    assert list(pool.warnings) == ["2"] and "sal/2.png" in pool.warnings["2"]
    assert (gt["saliency"].values[2] == 0).all()


def test_manifest_errors_count_and_name_the_damaged_files(tmp_path):
    for i in range(5):
        Image.fromarray(rgb()).save(tmp_path / f"{i}.png")
    manifest = write_file_manifest(
        tmp_path / "m.yaml",
        "five",
        tmp_path,
        [f"{i}.png" for i in range(5)],
        source="https://example.org/five",
        license="none",
    )
    assert len(verify_manifest(manifest).entries) == 5
    Image.fromarray(rgb()).save(tmp_path / "3.png")
    for i in (0, 1):
        (tmp_path / f"{i}.png").unlink()
    with pytest.raises(ManifestError) as info:
        verify_manifest(manifest)
    message = str(info.value)
    assert "2 missing" in message and "0.png" in message and "1.png" in message
    assert "1 with a wrong SHA-256" in message and "3.png" in message
    assert "https://example.org/five" in message and "root=" in message


def test_manifest_root_is_relative_to_it_and_can_be_overridden(tmp_path, monkeypatch):
    copy_a, copy_b = tmp_path / "a", tmp_path / "b"
    copy_a.mkdir()
    Image.fromarray(rgb()).save(copy_a / "only.png")
    shutil.copytree(copy_a, copy_b)
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"name": "rel-test", "root": "a", "files": [{"path": "only.png"}]}))
    assert str(open_pool(tmp_path / "m.yaml").paths[0]) == str(copy_a / "only.png")
    assert str(open_pool(tmp_path / "m.yaml", root=copy_b).paths[0]) == str(copy_b / "only.png")
    monkeypatch.setenv("MDC_DATA_ROOT_REL_TEST", str(copy_b))
    assert str(open_pool(tmp_path / "m.yaml").paths[0]) == str(copy_b / "only.png")


def test_malformed_manifests_are_reported(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ManifestError, match="broken.yaml"):
        open_pool(tmp_path / "broken.yaml")
    (tmp_path / "nameless.yaml").write_text("files: []\n")
    with pytest.raises(ManifestError, match="name"):
        open_pool(tmp_path / "nameless.yaml")
    with pytest.raises(ManifestError, match="absent.yaml"):
        open_pool(tmp_path / "absent.yaml")


def make_voc(root, ids: list[str], val: list[str]) -> None:
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    for i, stem in enumerate(ids):
        Image.fromarray(rgb(10, 14)).save(root / "JPEGImages" / f"{stem}.jpg")
        labels = palette_image(np.full((10, 14), i + 1, np.uint8))
        labels.putpalette(list(RNG.integers(0, 256, 768)))
        labels.save(root / "SegmentationClass" / f"{stem}.png")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(val) + "\n")


def test_voc_template_reads_only_the_val_ids_with_their_class_masks(tmp_path):
    make_voc(tmp_path, ["2007_000001", "2007_000002", "2007_000003"], val=["2007_000001", "2007_000003"])
    pool = open_pool("voc2012_val", root=tmp_path, image_size=(10, 14))
    assert list(pool.sample_ids) == ["2007_000001", "2007_000003"]
    assert len(pool.classes) == 21 and pool.classes[15] == "person"
    assert pool.ground_truth()["semantic"].values[:, 0, 0].tolist() == [1, 3]
    assert pool.read_images(0, 2)[1].all()


def test_templates_say_what_is_missing_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MDC_DATA_ROOT_ECSSD", raising=False)
    with pytest.raises(ManifestError) as info:
        open_pool("ecssd", root=tmp_path / "ECSSD")
    assert "images/*.jpg" in str(info.value) and "MDC_DATA_ROOT_ECSSD" in str(info.value)
    (tmp_path / "images").mkdir()
    for i in range(3):
        Image.fromarray(rgb()).save(tmp_path / "images" / f"{i:04d}.jpg")
    with pytest.raises(ManifestError, match=r"3 missing \(first: .*ground_truth_mask"):
        open_pool("ecssd", root=tmp_path)
    (tmp_path / "ground_truth_mask").mkdir()
    for i in range(3):
        Image.fromarray(np.full((12, 16), 255 * (i % 2), np.uint8)).save(
            tmp_path / "ground_truth_mask" / f"{i:04d}.png"
        )
    monkeypatch.setenv("MDC_DATA_ROOT_ECSSD", str(tmp_path))
    pool = open_pool("ecssd", image_size=(12, 16))
    assert pool.ground_truth()["saliency"].values[:, 0, 0].tolist() == [0, 255, 0] and not pool.warnings
    with pytest.raises(ManifestError, match="val.txt"):
        open_pool("voc2012_val", root=tmp_path)


def test_folder_template_opens_any_photo_folder(tmp_path):
    (tmp_path / "trip" / "day1").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rgb()).save(tmp_path / "trip" / "day1" / f"{i}.jpg")
    pool = open_pool("folder", root=tmp_path / "trip")
    assert len(pool) == 2 and pool.ground_truth() is None


def test_skimage_pool_is_offline_real_and_cached_by_content():
    pool = open_pool("skimage", image_size=(48, 40))
    assert len(pool) >= 8 and {"astronaut", "coffee", "chelsea"} <= set(pool.sample_ids)
    images, valid = pool.read_images(0, len(pool))
    assert images.shape == (len(pool), 48, 40, 3) and valid.all()
    # real photographs: rich colour and texture, unlike a flat test pattern
    assert np.median(images.std(axis=(1, 2, 3))) > 30
    assert open_pool("skimage", image_size=(48, 40)).fingerprint == pool.fingerprint


def test_skimage_pool_has_no_duplicate_or_blank_images():
    pool = open_pool("skimage")
    images = pool.read_images(0, len(pool))[0].reshape(len(pool), -1)
    assert len(np.unique(images, axis=0)) == len(pool)
    assert images.std(axis=1).min() > 10


def test_binary_images_are_black_and_white(tmp_path):
    from mdc_widgets.data import to_rgb_uint8

    assert to_rgb_uint8(np.array([[True, False]]))[0].tolist() == [[255, 255, 255], [0, 0, 0]]


def test_16bit_label_masks_keep_their_class_indices(tmp_path):
    Image.fromarray(np.array([[0, 1], [2, 20]], np.uint16)).save(tmp_path / "labels16.png")
    assert decode_mask(tmp_path / "labels16.png").tolist() == [[0, 1], [2, 20]]


def test_exif_rotation_is_applied(tmp_path):
    image = Image.fromarray(rgb(10, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert decode_image(tmp_path / "phone.jpg").shape == (20, 10, 3)


def test_manifest_glob_key(tmp_path):
    for i in range(2):
        Image.fromarray(rgb()).save(tmp_path / f"{i}.png")
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({"name": "g", "root": ".", "glob": "*.png"}))
    assert len(open_pool(tmp_path / "g.yaml")) == 2
