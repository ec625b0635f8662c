"""The mini-world, file pools with bad files, and manifests with checksums."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mdc_widgets.data import (
    decode_image,
    generate_miniworld,
    load_manifest,
    miniworld_checksum,
    open_pool,
    verify_manifest,
)
from mdc_widgets.data.manifest import manifests_dir, write_file_manifest
from mdc_widgets.errors import ImageDecodeError, ManifestError, MdcError


def test_miniworld_is_deterministic_and_seeded():
    a = generate_miniworld("pool", n=20, seed=7)
    b = generate_miniworld("pool", n=20, seed=7)
    c = generate_miniworld("pool", n=20, seed=8)
    assert miniworld_checksum(a) == miniworld_checksum(b)
    assert miniworld_checksum(a) != miniworld_checksum(c)
    # splits use independent streams: same seed, different images
    assert miniworld_checksum(generate_miniworld("train", n=20, seed=7)) != miniworld_checksum(a)


def test_ground_truth_is_consistent_and_clutter_is_not_salient():
    ds = generate_miniworld("pool", n=200, seed=1)
    sem, sal = ds["semantic"].values, ds["saliency"].values
    assert set(np.unique(sal)) <= {0, 255}
    np.testing.assert_array_equal(sal > 0, sem > 0)
    assert set(np.unique(sem)) == set(range(6))
    cluttered = ds["clutter"].values >= 3
    assert cluttered.any()
    # clutter adds coloured strokes to the image but not a single labeled pixel: images with clutter
    # have no more labeled area than images without
    area = (sem > 0).mean(axis=(1, 2))
    assert area[cluttered].mean() < area[~cluttered].mean() * 1.5


def test_pool_is_harder_than_train():
    train = generate_miniworld("train", n=400, seed=0)
    pool = generate_miniworld("pool", n=400, seed=0)
    for factor in ("occlusion", "blur", "noise", "camouflage"):
        assert (pool[factor] > 0).mean() > 2 * (train[factor] > 0).mean(), factor
    assert (pool["contrast"] < 1).mean() > 2 * (train["contrast"] < 1).mean()
    assert pool["object_scale"].min() < 0.09 and pool["object_scale"].max() > 0.15


def test_shipped_manifest_matches_the_generator():
    manifest = load_manifest(manifests_dir() / "miniworld.yaml")
    spec = manifest.generator["splits"]["val"]
    ds = generate_miniworld("val", n=spec["n"], seed=manifest.generator["seed"])
    assert miniworld_checksum(ds) == spec["sha256"]


def test_miniworld_pool_serves_images_metadata_and_ground_truth(tmp_path, monkeypatch):
    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    pool = open_pool("miniworld", n=30, seed=2)
    images, valid = pool.read_images(5, 10)
    assert images.shape == (5, 64, 64, 3) and valid.all()
    assert "occlusion" in pool.metadata() and pool.ground_truth()["semantic"].shape == (30, 64, 64)
    again = open_pool("miniworld", n=30, seed=2)
    assert again.fingerprint == pool.fingerprint
    assert open_pool("miniworld", n=30, seed=3).fingerprint != pool.fingerprint
    small = open_pool("miniworld", image_size=32, n=30, seed=2)
    assert small.read_images(0, 2)[0].shape == (2, 32, 32, 3)


def write_odd_files(folder):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / "a_rgb.png")
    Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(folder / "b_grey.png")
    Image.fromarray(rng.integers(0, 255, (40, 50, 4), dtype=np.uint8)).save(folder / "c_rgba.png")
    Image.fromarray(rng.integers(0, 65535, (30, 30), dtype=np.uint16)).save(folder / "d_16bit.png")
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).convert("P").save(folder / "e_palette.png")
    (folder / "f_corrupt.jpg").write_bytes(b"not an image at all")
    good = folder / "a_rgb.png"
    (folder / "g_truncated.png").write_bytes(good.read_bytes()[:200])
    Image.fromarray(rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)).save(folder / "h_large.jpg")


def test_file_pool_converts_what_it_can_and_lists_what_it_cannot(tmp_path):
    write_odd_files(tmp_path)
    pool = open_pool(tmp_path, image_size=(32, 32))
    assert len(pool) == 8
    images, valid = pool.read_images(0, len(pool))
    assert images.shape == (8, 32, 32, 3)
    assert valid.tolist() == [True, True, True, True, True, False, False, True]
    assert set(pool.errors) == {"f_corrupt", "g_truncated"}
    assert "f_corrupt.jpg" in pool.errors["f_corrupt"] and "remove it" in pool.errors["f_corrupt"]
    grey = images[1]
    assert (grey[..., 0] == grey[..., 1]).all()


def test_decode_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageDecodeError, match="broken.png"):
        decode_image(bad)
    with pytest.raises(ImageDecodeError, match="not found"):
        decode_image(tmp_path / "missing.png")


def test_glob_list_and_errors(tmp_path):
    write_odd_files(tmp_path)
    assert len(open_pool(str(tmp_path / "*.png"))) == 6
    listing = tmp_path / "list.txt"
    listing.write_text("a_rgb.png\n# a comment\nb_grey.png\n")
    assert list(open_pool(listing).sample_ids) == ["a_rgb", "b_grey"]
    with pytest.raises(MdcError, match="No file matches"):
        open_pool(str(tmp_path / "*.tiff"))
    with pytest.raises(MdcError, match="Cannot open a pool"):
        open_pool(str(tmp_path / "nowhere"))


def test_manifest_checksum_mismatch_names_the_file(tmp_path):
    write_odd_files(tmp_path)
    manifest = write_file_manifest(
        tmp_path / "m.yaml", "odd", tmp_path, ["a_rgb.png", "b_grey.png"], source="tests", license="none"
    )
    assert len(verify_manifest(manifest).entries) == 2
    assert len(open_pool(manifest)) == 2
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(tmp_path / "b_grey.png")
    with pytest.raises(ManifestError, match="b_grey.png") as info:
        open_pool(manifest)
    assert "wrong SHA-256" in str(info.value)
    (tmp_path / "a_rgb.png").unlink()
    with pytest.raises(ManifestError, match="1 missing"):
        verify_manifest(manifest)


def test_templates_say_which_folder_is_missing_and_work_when_pointed_at_a_copy(tmp_path):
    with pytest.raises(ManifestError, match="DUTS-TE-Image") as info:
        open_pool("duts_te", root=tmp_path / "nowhere")
    assert "root=" in str(info.value)
    (tmp_path / "DUTS-TE-Image").mkdir()
    (tmp_path / "DUTS-TE-Mask").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "DUTS-TE-Image" / f"{i}.jpg")
        Image.fromarray(np.where(rng.random((20, 20)) > 0.5, 255, 0).astype(np.uint8)).save(
            tmp_path / "DUTS-TE-Mask" / f"{i}.png"
        )
    pool = open_pool("duts_te", root=tmp_path, image_size=(32, 32))
    gt = pool.ground_truth()
    assert gt["saliency"].shape == (3, 32, 32) and set(np.unique(gt["saliency"])) <= {0, 255}
    assert len(pool.warnings) == 3 and "resized the mask" in next(iter(pool.warnings.values()))


def test_skimage_pool_has_real_photographs():
    pool = open_pool("skimage")
    assert len(pool) >= 5 and "astronaut" in pool.sample_ids
    images, valid = pool.read_images(0, 2)
    assert valid.all() and images.std() > 20
