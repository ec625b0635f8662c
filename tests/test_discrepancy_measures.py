"""Discrepancy measures: hand-computed cases, and the all-pairs pass against a per-image loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from mdc_widgets.discrepancy import (
    binarize_saliency,
    compute_discrepancies,
    confusion_counts,
    cross_task_discrepancy,
    sod_discrepancy,
    ss_discrepancy,
)


def test_ss_discrepancy_hand_cases():
    a = np.zeros((3, 2, 2), np.uint8)
    b = a.copy()
    b[1] = [[1, 1], [0, 0]]  # classes 0 and 1: IoU 1/2 and 0 -> mIoU 1/4
    a[2] = [[1, 1], [2, 2]]
    b[2] = [[1, 1], [2, 0]]  # class 0: 0/1, class 1: 2/2, class 2: 1/2 -> mIoU 1/2
    np.testing.assert_allclose(ss_discrepancy(a, b, 3), [0.0, 1 - 0.25, 1 - 0.5])


def test_sod_and_cross_task_hand_cases():
    s = np.zeros((2, 2, 4), np.uint8)
    t = s.copy()
    s[0, :, :2] = 255
    t[0, :, 1:3] = 255  # binarised IoU = 2 / 6
    np.testing.assert_allclose(sod_discrepancy(s, t), [1 - 2 / 6, 0.0])  # both empty -> agree
    np.testing.assert_allclose(sod_discrepancy(s, t, "mae"), [0.5, 0.0])
    labels = np.zeros((1, 2, 4), np.uint8)
    labels[0, :, :2] = [3, 5]  # any non-background class is foreground
    assert cross_task_discrepancy(labels, s[:1])[0] == pytest.approx(0.0)
    assert cross_task_discrepancy(labels, t[:1])[0] == pytest.approx(1 - 2 / 6)


def test_confusion_counts_equals_a_per_image_histogram():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, (4, 8, 8)), rng.integers(0, 5, (4, 8, 8))
    conf = confusion_counts(a, b, 5)
    for i in range(4):
        ref = np.histogram2d(a[i].ravel(), b[i].ravel(), bins=[np.arange(6)] * 2)[0]
        np.testing.assert_array_equal(conf[i], ref)


def test_torch_in_torch_out():
    s = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    assert isinstance(sod_discrepancy(s, s.flip(-1)), torch.Tensor)
    assert binarize_saliency(s).dtype == torch.bool


def random_predictions(n=40, size=16, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 4, (n, 1, size, size))
    ss = np.where(rng.random((n, 3, size, size)) < 0.8, base, rng.integers(0, 4, (n, 3, size, size)))
    sod = np.clip((base > 0) * 200 + rng.normal(20, 40, (n, 2, size, size)), 0, 255)
    maps = np.concatenate([ss, sod], axis=1).astype(np.uint8)
    models = ["s1", "s2", "s3", "p1", "p2"]
    return xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), maps), "valid": ("sample", np.ones(n, bool))},
        coords={
            "sample": [f"i{k}" for k in range(n)],
            "model": models,
            "task": ("model", ["ss", "ss", "ss", "sod", "sod"]),
        },
        attrs={"classes": {m: ["bg", "a", "b", "c"] for m in models[:3]}},
    )


@pytest.mark.parametrize("sod_measure", ["iou", "mae"])
def test_all_pairs_pass_equals_the_pairwise_functions(sod_measure):
    preds = random_predictions()
    d = compute_discrepancies(preds, sod_measure=sod_measure, chunk_size=16)
    assert d.dims == ("sample", "model_a", "model_b")
    maps = {m: preds["prediction"].sel(model=m).values for m in preds["model"].values}
    np.testing.assert_allclose(d.sel(model_a="s1", model_b="s3"), ss_discrepancy(maps["s1"], maps["s3"], 4), atol=1e-6)
    np.testing.assert_allclose(
        d.sel(model_a="p2", model_b="p1"), sod_discrepancy(maps["p1"], maps["p2"], sod_measure), atol=1e-6
    )
    np.testing.assert_allclose(
        d.sel(model_a="p1", model_b="s2"), cross_task_discrepancy(maps["s2"], maps["p1"]), atol=1e-6
    )
    assert str(d["kind"].sel(model_a="s1", model_b="p2").values) == "cross"
    assert str(d["kind"].sel(model_a="p1", model_b="p1").values) == "self"
    np.testing.assert_allclose(d.values, d.values.transpose(0, 2, 1))
    assert (np.diagonal(d.values, axis1=1, axis2=2) == 0).all()


def test_downsampled_scoring_is_close_for_smooth_maps():
    preds = random_predictions(size=32)
    preds["prediction"].values[:] = np.repeat(np.repeat(preds["prediction"].values[..., ::2, ::2], 2, -1), 2, -2)
    full = compute_discrepancies(preds)
    half = compute_discrepancies(preds, downsample=2)
    np.testing.assert_allclose(half.sel(model_a="s1", model_b="s2"), full.sel(model_a="s1", model_b="s2"), atol=1e-6)
