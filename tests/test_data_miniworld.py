"""The mini-world generator: contract, ground truth, nuisance rates per split, manifest checksums."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import ndimage

from mdc_widgets.data import (
    GENERATOR_VERSION,
    MINIWORLD_CLASSES,
    generate_miniworld,
    miniworld_checksum,
    open_pool,
    verify_manifest,
)
from mdc_widgets.data.manifest import manifests_dir
from mdc_widgets.errors import ManifestError, MdcError

FACTOR_DTYPES = {
    "object_scale": "f",
    "occlusion": "f",
    "blur": "f",
    "noise": "f",
    "contrast": "f",
    "camouflage": "f",
    "clutter": "iu",
    "num_objects": "iu",
    "dominant_class": "iu",
}


@pytest.fixture(scope="module")
def splits() -> dict:
    # big enough for rates to be stable to a few percent, small enough for ~4 s on one core
    return {
        split: generate_miniworld(split, n=n, seed=0)
        for split, n in (("train", 600), ("val", 200), ("pool", 600), ("test_hard", 300))
    }


def hard_flags(ds) -> dict[str, np.ndarray]:
    """Per image, whether each hard condition is present (thresholds are the generator's 'off' values)."""
    return {
        "small": ds["object_scale"].values < 0.09,
        "occlusion": ds["occlusion"].values > 0,
        "blur": ds["blur"].values > 0,
        "noise": ds["noise"].values > 0,
        "low_contrast": ds["contrast"].values < 1,
        "camouflage": ds["camouflage"].values > 0,
        "clutter": ds["clutter"].values >= 3,
    }


def test_dataset_follows_the_architecture_contract(splits):
    ds = splits["val"]
    assert ds["image"].dims == ("sample", "y", "x", "channel") and ds["image"].dtype == np.uint8
    assert ds["image"].shape == (200, 64, 64, 3)
    for name in ("semantic", "saliency"):
        assert ds[name].dims == ("sample", "y", "x") and ds[name].dtype == np.uint8
    for name, kinds in FACTOR_DTYPES.items():
        assert ds[name].dims == ("sample",) and ds[name].dtype.kind in kinds, name
    assert ds["sample"].values[0] == "val-000000" and ds["sample"].values[-1] == "val-000199"
    assert list(ds["channel"].values) == ["R", "G", "B"]
    assert ds.attrs["classes"] == list(MINIWORLD_CLASSES) and ds.attrs["classes"][0] == "background"
    assert len(MINIWORLD_CLASSES) >= 6
    assert ds.attrs["generator_version"] == GENERATOR_VERSION
    assert (ds.attrs["seed"], ds.attrs["split"]) == (0, "val")


def test_factors_stay_in_their_documented_ranges(splits):
    for split, ds in splits.items():
        assert ((ds["occlusion"] >= 0) & (ds["occlusion"] <= 1)).all(), split
        assert ((ds["camouflage"] >= 0) & (ds["camouflage"] <= 1)).all(), split
        assert ((ds["contrast"] > 0) & (ds["contrast"] <= 1)).all(), split
        assert ((ds["blur"] >= 0) & (ds["noise"] >= 0) & (ds["clutter"] >= 0)).all(), split
        assert ((ds["num_objects"] >= 0) & (ds["num_objects"] <= 3)).all(), split


def test_seed_split_and_size_define_the_content():
    a = generate_miniworld("val", n=12, seed=5)
    np.testing.assert_array_equal(a["image"].values, generate_miniworld("val", n=12, seed=5)["image"].values)
    assert not np.array_equal(a["image"].values, generate_miniworld("val", n=12, seed=6)["image"].values)
    # every split draws from its own stream: no image is shared between two splits of one seed
    others = np.concatenate(
        [generate_miniworld(s, n=12, seed=5)["image"].values for s in ("train", "pool", "test_hard")]
    )
    shared = (a["image"].values.reshape(12, 1, -1) == others.reshape(1, len(others), -1)).all(-1)
    assert not shared.any()
    assert generate_miniworld("val", n=3, seed=5, image_size=32)["image"].shape == (3, 32, 32, 3)


def test_ground_truth_maps_agree_exactly(splits):
    for split, ds in splits.items():
        sem, sal = ds["semantic"].values, ds["saliency"].values
        np.testing.assert_array_equal(sal, np.where(sem > 0, 255, 0).astype(np.uint8), err_msg=split)
        assert sem.max() < len(MINIWORLD_CLASSES), split


def test_dominant_class_is_the_class_with_most_pixels(splits):
    ds = splits["pool"]
    sem = ds["semantic"].values.reshape(len(ds["sample"]), -1)
    counts = np.stack([(sem == c).sum(1) for c in range(len(MINIWORLD_CLASSES))], axis=1)
    counts[:, 0] = 0
    expected = np.where(counts.sum(1) > 0, counts.argmax(1), 0)
    np.testing.assert_array_equal(ds["dominant_class"].values, expected)


def labeled_components(semantic: np.ndarray) -> np.ndarray:
    return np.array([ndimage.label(s > 0, structure=np.ones((3, 3)))[1] for s in semantic])


def test_clutter_is_drawn_but_never_labeled(splits):
    ds = splits["test_hard"]
    clutter = ds["clutter"].values
    heavy = clutter >= 6
    assert heavy.sum() >= 20
    # clutter is visible: busy images have more colour edges than clutter-free ones ...
    grad = np.abs(np.diff(ds["image"].values.astype(np.int16), axis=2)).max(-1)
    edges = (grad > 60).mean(axis=(1, 2))
    calm = (clutter == 0) & (ds["noise"].values == 0) & (ds["blur"].values == 0)
    quiet = heavy & (ds["noise"].values == 0) & (ds["blur"].values == 0)
    assert edges[quiet].mean() > 1.2 * edges[calm].mean()
    # ... but adds no labeled blob: at most 3 objects, which occlusion may cut in two
    comps = labeled_components(ds["semantic"].values)
    assert comps[heavy].max() <= 6
    assert np.corrcoef(clutter, comps)[0, 1] < 0.2


def test_every_class_appears_often_in_every_split(splits):
    for split, ds in splits.items():
        present = np.stack([(ds["semantic"].values == c).any(axis=(1, 2)) for c in range(1, len(MINIWORLD_CLASSES))])
        assert (present.mean(axis=1) > 0.2).all(), (split, present.mean(axis=1))
        dominant = np.bincount(ds["dominant_class"].values, minlength=len(MINIWORLD_CLASSES))[1:]
        assert (dominant > 0.1 * len(ds["sample"])).all(), (split, dominant)


def test_object_sizes_vary_and_include_small_objects(splits):
    for split, ds in splits.items():
        scale = ds["object_scale"].values
        assert scale.min() < 0.09 and scale.max() > 0.2 and scale.std() > 0.03, split
        # the recorded scale is what the pixels show: small-object scenes have a fraction of the labeled area
        area = (ds["semantic"].values > 0).mean(axis=(1, 2))
        clear = ds["occlusion"].values == 0
        small, large = clear & (scale < 0.09), clear & (scale > 0.18)
        assert small.sum() >= 5 and area[small].mean() < 0.3 * area[large].mean(), split


def test_train_and_val_are_mostly_easy(splits):
    for split in ("train", "val"):
        for factor, present in hard_flags(splits[split]).items():
            assert present.mean() < 0.15, (split, factor, present.mean())
        assert (splits[split]["blur"] <= 1.8).all() and (splits[split]["contrast"] >= 0.4).all()


def test_pool_has_each_hard_condition_at_a_realistic_rate(splits):
    ds = splits["pool"]
    flags = hard_flags(ds)
    for factor, present in flags.items():
        assert 0.08 <= present.mean() <= 0.35, (factor, present.mean())
        assert present.mean() > 2 * hard_flags(splits["train"])[factor].mean(), factor
    count = np.sum(list(flags.values()), axis=0)
    assert (count >= 2).mean() > 0.2  # conditions co-occur
    # some are extreme: strong blur, contrast almost gone, colour almost that of the background
    assert ds["blur"].max() > 2.0 and ds["contrast"].min() < 0.3 and ds["camouflage"].max() > 0.85


def test_test_hard_is_harder_than_the_pool(splits):
    pool, hard = hard_flags(splits["pool"]), hard_flags(splits["test_hard"])
    for factor in pool:
        assert hard[factor].mean() > 1.4 * pool[factor].mean(), factor


def test_every_unoccluded_image_has_a_labeled_object(splits):
    for split, ds in splits.items():
        clear = ds["occlusion"].values == 0
        assert ((ds["semantic"].values[clear] > 0).any(axis=(1, 2))).all(), split
        assert (ds["num_objects"].values[clear] >= 1).all(), split


def test_num_objects_counts_objects_not_classes(splits):
    # without occlusion each object is one connected region, so there are never more regions than objects
    for split, ds in splits.items():
        clear = ds["occlusion"].values == 0
        comps = labeled_components(ds["semantic"].values[clear])
        assert (ds["num_objects"].values[clear] >= comps).all(), split


def test_miniworld_pool_dispatch_by_split(tmp_path, monkeypatch):
    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    pool = open_pool("miniworld:test_hard", n=6, seed=4)
    assert list(pool.sample_ids) == [f"test_hard-{i:06d}" for i in range(6)]
    assert (tmp_path / "pools").is_dir() and len(list((tmp_path / "pools").glob("*.zarr"))) == 1
    ds = generate_miniworld("test_hard", n=6, seed=4)
    np.testing.assert_array_equal(pool.read_images(0, 6)[0], ds["image"].values)
    np.testing.assert_array_equal(pool.ground_truth()["saliency"].values, ds["saliency"].values)
    np.testing.assert_allclose(pool.metadata()["blur"].values, ds["blur"].values)
    assert open_pool("miniworld", split="test_hard", n=6, seed=4).fingerprint == pool.fingerprint


def test_unknown_split_names_the_known_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    with pytest.raises(MdcError, match="test_hard"):
        open_pool("miniworld:tset_hard")


def test_generator_rejects_an_unknown_split():
    with pytest.raises(ValueError, match="test_hard"):
        generate_miniworld("tset_hard", n=2)


def test_tiny_image_sizes_work():
    ds = generate_miniworld("pool", n=60, seed=0, image_size=16)
    assert ds["image"].shape == (60, 16, 16, 3)


def write_generated_manifest(path, splits: dict, version: str = GENERATOR_VERSION) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "name": "miniworld_small",
                "generator": {"name": "miniworld", "version": version, "seed": 0, "image_size": 64, "splits": splits},
            }
        )
    )


def test_generated_manifest_detects_a_changed_generator(tmp_path):
    good = miniworld_checksum(generate_miniworld("val", n=5, seed=0))
    write_generated_manifest(tmp_path / "ok.yaml", {"val": {"n": 5, "sha256": good}})
    assert verify_manifest(tmp_path / "ok.yaml").name == "miniworld_small"
    write_generated_manifest(
        tmp_path / "bad.yaml", {"val": {"n": 5, "sha256": good}, "train": {"n": 5, "sha256": "0" * 64}}
    )
    with pytest.raises(ManifestError, match=r"\['train'\]") as info:
        verify_manifest(tmp_path / "bad.yaml")
    assert "GENERATOR_VERSION" in str(info.value)
    write_generated_manifest(tmp_path / "old.yaml", {"val": {"n": 5, "sha256": good}}, version="0.0")
    with pytest.raises(ManifestError, match="--write-miniworld"):
        verify_manifest(tmp_path / "old.yaml")


@pytest.mark.slow
def test_shipped_manifest_matches_every_regenerated_split():
    # all four splits at their default sizes (7,000 images): about 10 s on one core
    manifest = verify_manifest(manifests_dir() / "miniworld.yaml")
    splits = manifest.generator["splits"]
    assert {s: spec["n"] for s, spec in splits.items()} == {"train": 2000, "val": 400, "pool": 4000, "test_hard": 600}
    assert manifest.generator["version"] == GENERATOR_VERSION
