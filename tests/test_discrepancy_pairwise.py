"""``compute_discrepancies`` against a deliberately naive per-image, per-pair numpy reference."""

from __future__ import annotations

from itertools import product

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from mdc_widgets.discrepancy import compute_discrepancies
from mdc_widgets.errors import ShapeError

MODELS = ["s1", "s2", "s3", "p1", "p2"]
TASKS = ["ss", "ss", "ss", "sod", "sod"]


def naive_discrepancy(x: np.ndarray, task_x: str, y: np.ndarray, task_y: str, sod_measure: str) -> float:
    """One image, one pair, written from the method note with no vectorisation at all."""

    def binary(m: np.ndarray, task: str) -> np.ndarray:
        if task == "ss":
            return m > 0
        s = m.astype(np.float64) / 255.0
        return (s >= min(2 * s.mean(), 1.0)) & (s > 0)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        union = np.logical_or(a, b).sum()
        return 1.0 if union == 0 else np.logical_and(a, b).sum() / union

    if task_x == task_y == "ss":
        present = np.union1d(np.unique(x), np.unique(y))
        return 1.0 - float(np.mean([iou(x == c, y == c) for c in present]))
    if task_x == task_y == "sod" and sod_measure == "mae":
        return float(np.abs(x.astype(np.float64) - y.astype(np.float64)).mean() / 255.0)
    return 1.0 - iou(binary(x, task_x), binary(y, task_y))


def make_predictions(n: int = 23, h: int = 12, w: int = 10, seed: int = 0, n_classes=(4, 4, 4)) -> xr.Dataset:
    """Three SS models and two SOD models with correlated, partly degenerate maps."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 4, (n, 1, h, w))
    ss = np.where(rng.random((n, 3, h, w)) < 0.7, base, rng.integers(0, 4, (n, 3, h, w)))
    for k, c in enumerate(n_classes):
        ss[:, k] = np.minimum(ss[:, k], c - 1)
    sod = np.clip((base > 0) * 180 + rng.normal(30, 50, (n, 2, h, w)), 0, 255)
    ss[0] = 0  # both all background: SS pairs agree
    sod[0] = 0  # both all zero: SOD pairs agree, cross pairs agree (empty vs empty)
    sod[1, 0] = 255  # constant saliency: threshold 1, everything salient
    ss[2, 1] = 2  # a single class everywhere
    maps = np.concatenate([ss, sod], axis=1).astype(np.uint8)
    return xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), maps), "valid": ("sample", np.ones(n, bool))},
        coords={"sample": [f"pool-{k:06d}" for k in range(n)], "model": MODELS, "task": ("model", TASKS)},
        attrs={"classes": {m: [f"c{i}" for i in range(c)] for m, c in zip(MODELS[:3], n_classes)}},
    )


@pytest.mark.parametrize("sod_measure", ["iou", "mae"])
def test_every_pair_and_image_matches_the_naive_reference(sod_measure):
    preds = make_predictions()
    d = compute_discrepancies(preds, sod_measure=sod_measure, chunk_size=7, device="cpu")
    maps = preds["prediction"].values
    expected = np.zeros(d.shape)
    for i, (a, b) in product(range(maps.shape[0]), product(range(5), range(5))):
        if a != b:
            expected[i, a, b] = naive_discrepancy(maps[i, a], TASKS[a], maps[i, b], TASKS[b], sod_measure)
    np.testing.assert_allclose(d.values, expected, atol=1e-6)
    assert d.values[0].max() == 0  # all-background SS maps and all-zero saliency maps agree
    assert d.attrs["sod_measure"] == sod_measure


def test_kind_coordinate_labels_every_pair():
    d = compute_discrepancies(make_predictions(n=3))
    kinds = d["kind"].values
    expected = np.array(
        [
            ["self" if a == b else (ta if ta == tb else "cross") for b, tb in zip(MODELS, TASKS)]
            for a, ta in zip(MODELS, TASKS)
        ]
    )
    np.testing.assert_array_equal(kinds.astype(str), expected)
    assert d.dims == ("sample", "model_a", "model_b")
    assert list(d["model_a"].values) == MODELS and list(d["sample"].values[:2]) == ["pool-000000", "pool-000001"]


def test_chunk_size_does_not_change_the_result():
    preds = make_predictions(n=17)
    whole = compute_discrepancies(preds, chunk_size=512)
    for chunk_size in (1, 4, 16):
        np.testing.assert_array_equal(compute_discrepancies(preds, chunk_size=chunk_size).values, whole.values)


def test_ss_models_with_different_class_lists_use_the_larger():
    preds = make_predictions(n_classes=(4, 2, 3))
    d = compute_discrepancies(preds)
    maps = preds["prediction"].values
    got = d.sel(model_a="s1", model_b="s2").values
    want = [naive_discrepancy(maps[i, 0], "ss", maps[i, 1], "ss", "iou") for i in range(maps.shape[0])]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_dask_backed_predictions_are_read_one_chunk_at_a_time():
    preds = make_predictions(n=20)
    eager = preds["prediction"].values
    reads: list[int] = []

    def load(block_info=None):
        lo, hi = block_info[None]["array-location"][0]
        reads.append(lo)
        return eager[lo:hi]

    lazy = da.map_blocks(load, dtype=np.uint8, chunks=((5,) * 4, (5,), (12,), (10,)))
    streamed = preds.assign(prediction=(("sample", "model", "y", "x"), lazy))
    d = compute_discrepancies(streamed, chunk_size=10)
    np.testing.assert_array_equal(d.values, compute_discrepancies(preds, chunk_size=10).values)
    assert sorted(reads) == [0, 5, 10, 15]  # each stored chunk read exactly once


def test_downsampling_by_two_on_block_constant_maps_is_exact():
    preds = make_predictions(h=12, w=10)
    blocky = preds["prediction"].values[..., ::2, ::2].repeat(2, -2).repeat(2, -1)
    preds["prediction"].values[:] = blocky
    np.testing.assert_allclose(
        compute_discrepancies(preds, downsample=2).values, compute_discrepancies(preds).values, atol=1e-6
    )


def test_downsampling_works_when_the_size_is_not_a_multiple_of_the_factor():
    preds = make_predictions(h=13, w=11)
    d = compute_discrepancies(preds, downsample=2)
    assert d.shape == (23, 5, 5)
    # the SOD pair sees the 6 x 5 block means of the cropped 12 x 10 maps
    sal = preds["prediction"].values[:, 3:, :12, :10].astype(np.float64)
    pooled = sal.reshape(23, 2, 6, 2, 5, 2).mean((3, 5))
    want = [naive_discrepancy(pooled[i, 0], "sod", pooled[i, 1], "sod", "iou") for i in range(23)]
    np.testing.assert_allclose(d.sel(model_a="p1", model_b="p2").values, want, atol=1e-5)


def test_labels_outside_the_declared_class_list_are_refused_naming_the_model():
    preds = make_predictions(n=4)
    preds.attrs["classes"] = {m: ["bg", "a"] for m in MODELS[:3]}  # maps hold labels up to 3
    with pytest.raises(ShapeError, match="s1"):
        compute_discrepancies(preds)
