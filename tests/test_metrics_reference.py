"""Metrics against hand-computed cases and independent implementations (PySODMetrics, torchmetrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdc_widgets.metrics import (
    fbeta_adaptive,
    fbeta_curve,
    fbeta_max,
    mae,
    miou,
    pixel_accuracy,
    s_measure,
)

py_sod_metrics = pytest.importorskip("py_sod_metrics")


def saliency_cases(n: int = 12, size: int = 24, seed: int = 0):
    """Random, blurred-blob and degenerate (empty / full ground truth) saliency maps."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    preds, gts = [], []
    for i in range(n):
        cy, cx, r = rng.integers(4, size - 4, 2).tolist() + [rng.integers(2, 8)]
        gt = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.uint8) * 255
        if i == 0:
            gt[:] = 0
        if i == 1:
            gt[:] = 255
        if i % 3 == 0:
            pred = rng.integers(0, 256, (size, size)).astype(np.uint8)
        else:
            shifted = ((yy - cy - rng.integers(-3, 4)) ** 2 + (xx - cx) ** 2) <= (r + 1) ** 2
            pred = np.clip(shifted * 200 + rng.normal(30, 20, (size, size)), 0, 255).astype(np.uint8)
        preds.append(pred)
        gts.append(gt)
    return np.stack(preds), np.stack(gts)


def pysod(metric_cls, preds, gts, key):
    values = []
    for p, g in zip(preds, gts):
        metric = metric_cls()
        metric.step(p.astype(np.float64) / 255.0, g > 128, normalize=False)
        values.append(metric.get_results())
    return values


def test_mae_matches_pysodmetrics():
    preds, gts = saliency_cases()
    ref = [r["mae"] for r in pysod(py_sod_metrics.MAE, preds, gts, "mae")]
    np.testing.assert_allclose(mae(preds, gts), ref, atol=1e-10)


def test_s_measure_matches_pysodmetrics():
    preds, gts = saliency_cases(n=18, seed=3)
    ref = [r["sm"] for r in pysod(py_sod_metrics.Smeasure, preds, gts, "sm")]
    np.testing.assert_allclose(s_measure(preds, gts), ref, atol=1e-4)


def test_fbeta_matches_pysodmetrics_curve_and_adaptive():
    preds, gts = saliency_cases(seed=5)
    with pytest.warns(UserWarning):
        refs = pysod(py_sod_metrics.Fmeasure, preds, gts, "fm")
    np.testing.assert_allclose(fbeta_adaptive(preds, gts), [r["fm"]["adp"] for r in refs], atol=1e-6)

    ours = fbeta_curve(preds, gts)
    np.testing.assert_allclose(ours, np.stack([r["fm"]["curve"] for r in refs]), atol=1e-8)
    np.testing.assert_allclose(fbeta_max(preds, gts), ours.max(-1))
    # the dataset-level "max F" of PySOD: the max of the mean curve
    with pytest.warns(UserWarning):
        metric = py_sod_metrics.Fmeasure()
    for p, g in zip(preds, gts):
        metric.step(p.astype(np.float64) / 255.0, g > 128, normalize=False)
    assert ours.mean(0).max() == pytest.approx(metric.get_results()["fm"]["curve"].max(), abs=1e-8)


def test_fbeta_hand_case():
    # 4 pixels: prediction 255 on two, ground truth on one of them and one other
    pred = np.array([[[255, 255, 0, 0]]], np.uint8)
    gt = np.array([[[255, 0, 255, 0]]], np.uint8)
    f = lambda p, r: 1.3 * p * r / (0.3 * p + r)  # noqa: E731
    # threshold 255: P = R = 1/2; threshold 0: everything predicted, P = 1/2, R = 1 (the best)
    assert fbeta_max(pred, gt)[0] == pytest.approx(max(f(0.5, 0.5), f(0.5, 1.0)))
    assert fbeta_adaptive(pred, gt)[0] == pytest.approx(f(0.5, 0.5))


def test_miou_matches_torchmetrics_and_hand_case():
    from torchmetrics.functional.classification import multiclass_jaccard_index

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 4, (5, 16, 16))
    pred = np.where(rng.random((5, 16, 16)) < 0.7, gt, rng.integers(0, 4, (5, 16, 16)))
    # set level: accumulate the confusion; every class is present, so torchmetrics' macro mean agrees
    ref = multiclass_jaccard_index(torch.as_tensor(pred), torch.as_tensor(gt), num_classes=4, average="macro")
    assert float(miou(pred, gt, 4, per_image=False)) == pytest.approx(float(ref), abs=1e-6)
    # per image, classes absent from both maps are left out (torchmetrics would count them as 0 or NaN)
    one = np.zeros((1, 2, 2), int)
    assert miou(one, one, 4)[0] == 1.0
    hand_pred = np.array([[[0, 1], [2, 2]]])
    hand_gt = np.array([[[0, 1], [1, 2]]])
    # background 1/1, class 1: 1/2, class 2: 1/2
    assert miou(hand_pred, hand_gt, 3)[0] == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_ignore_index_pixels_do_not_count():
    gt = np.array([[[1, 255], [0, 255]]])
    pred = np.array([[[1, 2], [0, 0]]])
    assert miou(pred, gt, 3)[0] == 1.0
    assert pixel_accuracy(pred, gt)[0] == 1.0


def test_metrics_accept_torch_and_stay_torch():
    preds, gts = saliency_cases(n=4)
    out = mae(torch.as_tensor(preds), torch.as_tensor(gts))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), mae(preds, gts))
