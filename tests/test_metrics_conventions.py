"""Metric conventions where references disagree or break: S-measure edge cases, per-image mIoU, max-F meanings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mdc_widgets.metrics import fbeta_adaptive, fbeta_curve, fbeta_max, mae, miou, pixel_accuracy, s_measure

py_sod_metrics = pytest.importorskip("py_sod_metrics")
EPS = np.spacing(1)


def reference_s_measure(pred: np.ndarray, gt: np.ndarray, alpha: float = 0.5) -> float:
    """Fan et al. 2017 for one image, following the MATLAB code, with two guards PySOD lacks.

    An empty quadrant (the centroid on the last row or column) has weight 0 and
    contributes 0 instead of NaN; a constant region has exactly zero variance
    instead of a rounding residue that flips SSIM's 0/0 case.
    """
    pred = pred.astype(np.float64) / 255.0
    gt = gt > 128
    y = gt.mean()
    if y == 0:
        return 1 - pred.mean()
    if y == 1:
        return pred.mean()

    def s_object(x):
        std = x.std(ddof=1) if x.size > 1 and np.ptp(x) > 0 else 0.0
        return 2 * x.mean() / (x.mean() ** 2 + 1 + std + EPS)

    obj = s_object(pred[gt]) * y + s_object(1 - pred[~gt]) * (1 - y)

    def ssim(p, g):
        if p.size == 0:
            return 0.0
        g = g.astype(np.float64)
        n = p.size
        x, yy = p.mean(), g.mean()
        dp = p - x if np.ptp(p) > 0 else np.zeros_like(p)
        dg = g - yy if np.ptp(g) > 0 else np.zeros_like(g)
        sx, sy, sxy = (dp**2).sum() / (n - 1 + EPS), (dg**2).sum() / (n - 1 + EPS), (dp * dg).sum() / (n - 1 + EPS)
        a = 4 * x * yy * sxy
        b = (x**2 + yy**2) * (sx + sy)
        if a != 0:
            return a / (b + EPS)
        return 1.0 if b == 0 else 0.0

    h, w = gt.shape
    cy, cx = (int(v) + 1 for v in np.argwhere(gt).mean(0).round())
    wlt, wrt, wlb = cx * cy / (h * w), cy * (w - cx) / (h * w), (h - cy) * cx / (h * w)
    region = (
        ssim(pred[:cy, :cx], gt[:cy, :cx]) * wlt
        + ssim(pred[:cy, cx:], gt[:cy, cx:]) * wrt
        + ssim(pred[cy:, :cx], gt[cy:, :cx]) * wlb
        + ssim(pred[cy:, cx:], gt[cy:, cx:]) * (1 - wlt - wrt - wlb)
    )
    return max(0.0, alpha * obj + (1 - alpha) * region)


def pysod_s_measure(pred: np.ndarray, gt: np.ndarray) -> float:
    metric = py_sod_metrics.Smeasure()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # PySOD takes the mean of an empty quadrant
        metric.step(pred.astype(np.float64) / 255.0, gt > 128, normalize=False)
    return float(metric.get_results()["sm"])


def structured_cases(h: int, w: int, seed: int):
    """Ground truths that touch borders or corners, or are a single pixel, and random / noisy predictions."""
    rng = np.random.default_rng(seed)
    gts = np.zeros((7, h, w), np.uint8)
    gts[0, :, -1] = 255  # right border: centroid column is the last one
    gts[1, -1, -1] = 255  # one corner pixel
    gts[2, 0, 0] = 255
    gts[3] = (rng.random((h, w)) > 0.5) * 255
    gts[4, h // 2 :] = 255
    gts[5] = 255
    gts[5, 0, 0] = 0
    gts[6, 1:-1, 1:-1] = 255  # interior object
    preds = np.clip(gts * 0.7 + rng.normal(40, 40, gts.shape), 0, 255).astype(np.uint8)
    preds[::2] = rng.integers(0, 256, preds[::2].shape)
    return preds, gts


@pytest.mark.parametrize("shape", [(7, 11), (13, 5), (16, 16), (3, 4)])
def test_s_measure_matches_the_exact_reference_where_pysod_gives_nan(shape):
    preds, gts = structured_cases(*shape, seed=sum(shape))
    ours = s_measure(preds, gts)
    exact = np.array([reference_s_measure(p, g) for p, g in zip(preds, gts)])
    np.testing.assert_allclose(ours, exact, atol=1e-6)
    assert np.isfinite(ours).all()
    pysod = np.array([pysod_s_measure(p, g) for p, g in zip(preds, gts)])
    finite = np.isfinite(pysod)
    assert (~finite).any(), "the border cases should include one where PySOD returns NaN"
    np.testing.assert_allclose(ours[finite], pysod[finite], atol=1e-4)


def test_s_measure_hand_cases():
    gt = np.zeros((1, 6, 6), np.uint8)
    gt[0, 2:4, 1:5] = 255
    assert s_measure(gt, gt)[0] == pytest.approx(1.0, abs=1e-9)  # a perfect map
    assert s_measure(255 - gt, gt)[0] < 0.1  # the inverted map
    empty = np.zeros_like(gt)
    pred = np.full_like(gt, 51)
    assert s_measure(pred, empty)[0] == pytest.approx(1 - 0.2)  # empty GT: 1 - mean(pred)
    assert s_measure(pred, np.full_like(gt, 255))[0] == pytest.approx(0.2)  # full GT: mean(pred)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_s_measure_alpha_weights_object_against_region(alpha):
    preds, gts = structured_cases(9, 9, seed=1)
    exact = [reference_s_measure(p, g, alpha) for p, g in zip(preds, gts)]
    np.testing.assert_allclose(s_measure(preds, gts, alpha=alpha), exact, atol=1e-6)


def test_per_image_miou_matches_torchmetrics_per_class_over_present_classes():
    from torchmetrics.functional.classification import multiclass_jaccard_index

    rng = np.random.default_rng(2)
    gt = rng.integers(0, 3, (6, 8, 8))
    pred = np.where(rng.random((6, 8, 8)) < 0.6, gt, rng.integers(0, 5, (6, 8, 8)))
    gt[0] = 0  # image 0: gt all background
    gt[1, :4] = 255  # image 1: half ignored
    ours = miou(pred, gt, 5)
    for i in range(6):
        per_class = multiclass_jaccard_index(
            torch.as_tensor(pred[i]), torch.as_tensor(gt[i]), num_classes=5, average="none", ignore_index=255
        ).numpy()
        keep = gt[i] != 255
        present = [c for c in range(5) if (pred[i][keep] == c).any() or (gt[i][keep] == c).any()]
        assert ours[i] == pytest.approx(per_class[present].mean(), abs=1e-6), i


def test_set_miou_accumulates_the_confusion_not_the_per_image_mean():
    gt = np.array([[[1, 1, 1, 1]], [[0, 0, 0, 1]]])
    pred = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]]])
    # per image: (0 + 1/2) / 2 = 1/4 and (3/4 + 0) / 2 = 3/8
    np.testing.assert_allclose(miou(pred, gt, 2), [0.25, 0.375])
    # set: background 3 / 6, class 1 2 / 5
    assert float(miou(pred, gt, 2, per_image=False)) == pytest.approx((3 / 6 + 2 / 5) / 2)
    np.testing.assert_allclose(pixel_accuracy(pred, gt), [0.5, 0.75])


def test_fbeta_max_is_per_image_and_never_below_the_set_level_max():
    rng = np.random.default_rng(3)
    gts = (rng.random((5, 10, 10)) > 0.6).astype(np.uint8) * 255
    preds = np.clip(gts * 0.5 + rng.normal(60, 50, gts.shape), 0, 255).astype(np.uint8)
    curves = fbeta_curve(preds, gts)
    assert curves.shape == (5, 256)
    np.testing.assert_allclose(fbeta_max(preds, gts), curves.max(1))
    # each image may pick its own threshold, the set-level PySOD "max F" picks one for all
    assert fbeta_max(preds, gts).mean() >= curves.mean(0).max()


def test_saliency_metrics_accept_float_maps_like_uint8_ones():
    rng = np.random.default_rng(5)
    gts = (rng.random((3, 9, 9)) > 0.5).astype(np.uint8) * 255
    preds = rng.integers(0, 256, (3, 9, 9)).astype(np.uint8)
    as_float = preds.astype(np.float64) / 255.0
    for fn in (mae, fbeta_max, fbeta_adaptive, s_measure):
        np.testing.assert_allclose(fn(as_float, gts), fn(preds, gts), atol=1e-9, err_msg=fn.__name__)
    np.testing.assert_allclose(mae(preds, gts > 128), mae(preds, gts))  # boolean ground truth too


def test_fbeta_adaptive_follows_pysod_not_the_discrepancy_binarisation_on_an_all_zero_map():
    # PySOD binarises with s >= 2 * mean only, so an all-zero map predicts every pixel (precision = GT share)
    gt = np.zeros((1, 2, 2), np.uint8)
    gt[0, 0, 0] = 255
    pred = np.zeros_like(gt)
    p, r = 0.25, 1.0
    assert fbeta_adaptive(pred, gt)[0] == pytest.approx(1.3 * p * r / (0.3 * p + r))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = py_sod_metrics.Fmeasure()
    metric.step(pred[0].astype(np.float64), gt[0] > 128, normalize=False)
    assert fbeta_adaptive(pred, gt)[0] == pytest.approx(metric.get_results()["fm"]["adp"])


def test_normalize_matches_pysodmetrics_default_preprocessing():
    """``normalize=True`` = PySODMetrics' ``prepare_data`` (min-max stretch), on maps that do not span 0..255."""
    py_sod_metrics = pytest.importorskip("py_sod_metrics")
    import warnings

    from mdc_widgets.metrics import fbeta_adaptive, fbeta_curve, mae, s_measure

    rng = np.random.default_rng(7)
    n, h, w = 5, 24, 20
    gt = np.zeros((n, h, w), np.uint8)
    sal = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        y, x = rng.integers(2, 12, 2)
        gt[i, y : y + 9, x : x + 7] = 255
        low, high = sorted(rng.integers(0, 200, 2))
        sal[i] = rng.integers(low, high + 30, (h, w)).astype(np.uint8)  # a narrow range: stretching matters
    sal[0] = 77  # a constant map is left as it is
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fm = py_sod_metrics.Fmeasure()
    m, sm = py_sod_metrics.MAE(), py_sod_metrics.Smeasure()
    for i in range(n):
        for metric in (fm, m, sm):
            metric.step(sal[i], gt[i], normalize=True)
    np.testing.assert_allclose(mae(sal, gt, normalize=True), m.maes, atol=1e-10)
    np.testing.assert_allclose(s_measure(sal, gt, normalize=True), sm.sms, atol=1e-8)
    np.testing.assert_allclose(fbeta_curve(sal, gt, normalize=True), np.asarray(fm.changeable_fms), atol=1e-10)
    np.testing.assert_allclose(fbeta_adaptive(sal, gt, normalize=True), fm.adaptive_fms, atol=1e-10)
    assert not np.allclose(mae(sal, gt), m.maes)  # without the switch the numbers differ


def test_evaluate_records_and_applies_normalize():
    import xarray as xr

    from mdc_widgets.metrics import evaluate

    sal = np.full((2, 1, 4, 4), 100, np.uint8)
    sal[:, 0, :2] = 120
    gt = np.zeros((2, 4, 4), np.uint8)
    gt[:, :2] = 255
    preds = xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), sal)},
        coords={"sample": ["a", "b"], "model": ["p"], "task": ("model", ["sod"])},
    )
    truth = xr.Dataset({"saliency": (("sample", "y", "x"), gt)}, coords={"sample": ["a", "b"]})
    plain, stretched = evaluate(preds, truth), evaluate(preds, truth, normalize=True)
    assert stretched.attrs["normalize"] == 1 and plain.attrs["normalize"] == 0
    np.testing.assert_allclose(stretched["mae"].values, 0.0)
    assert (plain["mae"].values > 0.3).all()
