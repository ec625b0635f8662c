"""Probability-based strategies against hand-computed answers: entropy, U2PL, BALD, loss, focal, random."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.strategies import (
    normalized_entropy,
    percentile_from_histogram,
    pixel_cross_entropy,
    pixel_focal_loss,
    score_pool,
    top_fraction_mean,
    u2pl_alpha,
)
from mdc_widgets.strategies.ops import entropy_histogram


def constant_probs(rows: list[list[float]], size: int = 4) -> np.ndarray:
    """``(n, C, size, size)`` where image i has the class distribution rows[i] at every pixel."""
    p = np.asarray(rows, np.float32)
    return np.broadcast_to(p[:, :, None, None], (*p.shape, size, size)).copy()


def predictions_dataset(
    prediction: np.ndarray,
    tasks: list[str],
    entropy: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    classes: dict | None = None,
) -> xr.Dataset:
    n, m = prediction.shape[:2]
    names = [f"m{i}" for i in range(m)]
    data = {
        "prediction": (("sample", "model", "y", "x"), prediction.astype(np.uint8)),
        "valid": ("sample", np.ones(n, bool) if valid is None else valid),
    }
    if entropy is not None:
        data["entropy"] = (("sample", "model", "y", "x"), entropy.astype(np.float16))
    classes = classes or {
        name: (["background", "a", "b"] if t == "ss" else ["background", "salient"]) for name, t in zip(names, tasks)
    }
    return xr.Dataset(
        data,
        coords={"sample": [f"s{i}" for i in range(n)], "model": names, "task": ("model", tasks)},
        attrs={"classes": classes},
    )


# ---- entropy --------------------------------------------------------------------------------------


def test_entropy_ranks_uniform_above_medium_above_confident():
    probs = constant_probs([[0.98, 0.01, 0.01], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]])
    scores = score_pool("entropy", probabilities={"m": probs})
    assert scores.dims == ("sample",) and scores.name == "entropy"

    def h(p):
        return -sum(v * math.log(v) for v in p) / math.log(3)

    np.testing.assert_allclose(scores.values, [h([0.98, 0.01, 0.01]), 1.0, h([0.6, 0.3, 0.1])], rtol=1e-5)
    assert scores.values[1] > scores.values[2] > scores.values[0]


def test_entropy_reads_the_stored_maps_and_marks_invalid_images():
    rng = np.random.default_rng(0)
    entropy = rng.random((4, 2, 5, 5)).astype(np.float16)
    preds = predictions_dataset(np.zeros((4, 2, 5, 5)), ["ss", "sod"], entropy, valid=np.array([1, 1, 0, 1], bool))
    scores = score_pool("entropy", predictions=preds, model="m1")
    expected = entropy[:, 1].astype(np.float64).mean(axis=(1, 2))
    np.testing.assert_allclose(scores.values[[0, 1, 3]], expected[[0, 1, 3]], rtol=1e-6)
    assert np.isnan(scores.values[2])
    assert list(scores["sample"].values) == ["s0", "s1", "s2", "s3"]


def test_normalized_entropy_of_saliency_is_the_bernoulli_entropy():
    s = torch.tensor([0.5, 0.9, 0.0]).view(3, 1, 1, 1)
    h = normalized_entropy(s).flatten()
    expected = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(2)
    np.testing.assert_allclose(h.numpy(), [1.0, expected, 0.0], atol=1e-5)


# ---- U2PL -----------------------------------------------------------------------------------------


def test_u2pl_ratio_equals_the_hand_computed_fraction():
    entropy = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[0.5, 0.6], [0.7, 0.8]])
    entropy = np.stack(entropy)[:, None]  # (2 samples, 1 model, 2, 2)
    preds = predictions_dataset(np.zeros((2, 1, 2, 2)), ["ss"], entropy)
    # alpha 25 %: threshold = 75th percentile of the 8 values (between 0.6 and 0.7): 0.7 and 0.8 are unreliable
    at_start = score_pool("u2pl_unreliable", predictions=preds, alpha_0=25.0, step=0, total_steps=10)
    assert at_start.values.tolist() == [0.0, 0.5]
    assert 0.6 < at_start.attrs["threshold"] < 0.7
    # half-way the share halves to 12.5 %: only 0.8 is above the 87.5th percentile
    halfway = score_pool("u2pl_unreliable", predictions=preds, alpha_0=25.0, step=5, total_steps=10)
    assert halfway.values.tolist() == [0.0, 0.25]
    assert halfway.attrs["alpha_t"] == 12.5
    at_end = score_pool("u2pl_unreliable", predictions=preds, alpha_0=25.0, step=10, total_steps=10)
    assert at_end.values.tolist() == [0.0, 0.0]


def test_u2pl_percentile_is_exact_over_the_pool_and_skips_invalid_images():
    rng = np.random.default_rng(3)
    entropy = rng.random((7, 1, 6, 6)).astype(np.float16)
    entropy[4] = 1.0  # an invalid image's maps must not move the threshold
    valid = np.ones(7, bool)
    valid[4] = False
    preds = predictions_dataset(np.zeros((7, 1, 6, 6)), ["ss"], entropy, valid)
    scores = score_pool("u2pl_unreliable", predictions=preds, alpha_0=20.0, step=3, total_steps=10, batch_size=3)
    alpha = u2pl_alpha(20.0, 3, 10)
    values = entropy[valid, 0].astype(np.float64)
    threshold = np.percentile(values, 100 - alpha)
    expected = (entropy[:, 0].astype(np.float64) >= threshold).mean(axis=(1, 2))
    np.testing.assert_array_equal(scores.values[valid], expected[valid])
    assert np.isnan(scores.values[4])
    assert scores.attrs["threshold"] == pytest.approx(threshold, abs=1e-12)


@pytest.mark.parametrize("percent", [0, 13.7, 50, 86, 100])
def test_histogram_percentile_matches_numpy(percent):
    values = torch.rand(1000, generator=torch.Generator().manual_seed(1)).half()
    expected = np.percentile(values.numpy().astype(np.float64), percent)
    assert percentile_from_histogram(entropy_histogram(values), percent) == pytest.approx(expected, abs=1e-12)


# ---- ensemble mutual information -----------------------------------------------------------------


def test_mutual_information_is_zero_when_models_agree_and_positive_when_they_disagree():
    a = constant_probs([[0.9, 0.05, 0.05], [0.98, 0.01, 0.01], [1 / 3, 1 / 3, 1 / 3]])
    b = constant_probs([[0.9, 0.05, 0.05], [0.01, 0.98, 0.01], [1 / 3, 1 / 3, 1 / 3]])
    scores = score_pool("ensemble_mutual_information", probabilities={"a": a, "b": b}).values
    assert scores[0] == pytest.approx(0.0, abs=1e-6) and scores[2] == pytest.approx(0.0, abs=1e-6)

    def h(p):
        p = np.asarray(p)
        return -(p * np.log(p)).sum()

    expected = (h([0.495, 0.495, 0.01]) - h([0.98, 0.01, 0.01])) / math.log(3)
    assert scores[1] == pytest.approx(expected, rel=1e-4) and scores[1] > 0.5


def test_mutual_information_of_stored_saliency_as_bernoulli():
    pred = np.zeros((2, 2, 3, 3), np.uint8)
    pred[:, 0] = 255
    pred[0, 1] = 255  # image 0: both certain it is salient
    pred[1, 1] = 0  # image 1: certain and opposite
    scores = score_pool("ensemble_mutual_information", predictions=predictions_dataset(pred, ["sod", "sod"]))
    assert scores.values[0] == pytest.approx(0.0, abs=1e-5)
    assert scores.values[1] == pytest.approx(1.0, abs=1e-4)  # H(0.5) - 0 = log 2, normalised


def test_mutual_information_refuses_mixed_tasks_and_class_lists():
    with pytest.raises(MdcError, match="one task"):
        score_pool(
            "ensemble_mutual_information",
            probabilities={"a": constant_probs([[0.5, 0.5, 0.0]]), "b": np.zeros((1, 4, 4))},
            members=["a", "b"],
        )
    pred = np.zeros((1, 2, 2, 2))
    preds = predictions_dataset(pred, ["ss", "ss"], classes={"m0": ["bg", "a"], "m1": ["bg", "b"]})
    with pytest.raises(MdcError):
        score_pool("ensemble_mutual_information", predictions=preds)


# ---- loss and focal -------------------------------------------------------------------------------


def ground_truth(
    semantic: np.ndarray | None = None, saliency: np.ndarray | None = None, prefix: str = "sample-"
) -> xr.Dataset:
    data = {}
    if semantic is not None:
        data["semantic"] = (("sample", "y", "x"), semantic.astype(np.uint8))
    if saliency is not None:
        data["saliency"] = (("sample", "y", "x"), saliency.astype(np.uint8))
    n = len(next(iter(data.values()))[1])
    ids = [f"s{i}" if prefix == "s" else f"{prefix}{i:06d}" for i in range(n)]
    return xr.Dataset(data, coords={"sample": ids})


def test_loss_ranks_a_wrong_prediction_above_a_right_one_with_the_cross_entropy_value():
    probs = constant_probs([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]])
    gt = np.ones((3, 4, 4), np.uint8)  # class 1 everywhere: images 0 and 2 are right, image 1 wrong
    gt[2, 0, :] = 255  # VOC ignore label: skipped
    scores = score_pool("loss", probabilities={"m": probs}, ground_truth=ground_truth(gt)).values
    np.testing.assert_allclose(scores, [-math.log(0.8), -math.log(0.1), -math.log(0.8)], rtol=1e-5)
    assert scores[1] > scores[0]


def test_binary_cross_entropy_of_stored_saliency():
    pred = np.zeros((2, 1, 2, 2), np.uint8)
    pred[0, 0] = [[204, 204], [51, 51]]  # 0.8 on the salient half, 0.2 elsewhere: right
    pred[1, 0] = [[51, 51], [204, 204]]  # the opposite: wrong
    sal = np.zeros((2, 2, 2), np.uint8)
    sal[:, 0] = 255
    scores = score_pool(
        "loss", predictions=predictions_dataset(pred, ["sod"]), ground_truth=ground_truth(saliency=sal, prefix="s")
    )
    np.testing.assert_allclose(scores.values, [-math.log(0.8), -math.log(0.2)], rtol=1e-5)


def test_top_fraction_averages_the_hardest_pixels_only():
    losses = torch.tensor([[0.1, 0.2, 0.3, 4.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    # the masked-out 4.0 never counts; ceil(0.3 * 3) = 1 and ceil(0.5 * 3) = 2 pixels are kept
    np.testing.assert_allclose(top_fraction_mean(losses, mask, 0.3).numpy(), [0.3, 1.0])
    np.testing.assert_allclose(top_fraction_mean(losses, mask, 0.5).numpy(), [0.25, 1.0])
    probs = constant_probs([[0.5, 0.5, 0.0]], size=2)
    probs[0, :, 0, 0] = [0.99, 0.01, 0.0]
    gt = np.zeros((1, 2, 2), np.uint8)
    ohem = score_pool("loss", probabilities={"m": probs}, ground_truth=ground_truth(gt), top_fraction=0.75)
    assert ohem.values[0] == pytest.approx(-math.log(0.5), rel=1e-5)


def test_focal_weight_is_below_cross_entropy_for_confident_correct_pixels():
    probs = torch.tensor([0.95, 0.7, 0.2]).view(3, 1, 1, 1)  # saliency, all labelled salient
    labels = torch.ones(3, 1, 1, dtype=torch.long)
    ce, _ = pixel_cross_entropy(probs, labels)
    focal, _ = pixel_focal_loss(probs, labels, alpha=1.0, gamma=2.0)
    assert (focal < ce).all()
    ratio = (focal / ce).flatten().numpy()
    np.testing.assert_allclose(ratio, [0.05**2, 0.3**2, 0.8**2], rtol=1e-5)
    plain, _ = pixel_focal_loss(probs, labels, alpha=1.0, gamma=0.0)
    torch.testing.assert_close(plain, ce)


def test_focal_strategy_ranks_wrong_above_right_and_uses_alpha():
    probs = constant_probs([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    gt = ground_truth(np.ones((2, 4, 4), np.uint8))
    scores = score_pool("focal", probabilities={"m": probs}, ground_truth=gt, alpha=0.5, gamma=2.0).values
    np.testing.assert_allclose(scores, [0.5 * 0.2**2 * -math.log(0.8), 0.5 * 0.9**2 * -math.log(0.1)], rtol=1e-5)


def test_loss_from_a_live_model_equals_the_loss_from_its_probabilities(blob_pool, threshold_models):
    model = threshold_models[0]
    images = torch.as_tensor(blob_pool.images).permute(0, 3, 1, 2).float() / 255
    probs = model.predict(images).numpy()
    gt = ground_truth(np.asarray(blob_pool.images[..., 0] > 128, np.uint8))
    gt = gt.assign_coords(sample=blob_pool.sample_ids)
    live = score_pool("loss", pool=blob_pool, models=[model], ground_truth=gt, batch_size=16, device="cpu")
    given = score_pool("loss", probabilities={model.name: probs}, ground_truth=gt)
    np.testing.assert_allclose(live.values, given.values, rtol=1e-5)
    assert live.attrs["model"] == "ss_a"


def test_loss_needs_labels_and_refuses_other_resolutions():
    probs = constant_probs([[0.5, 0.5, 0.0]])
    with pytest.raises(MdcError, match="needs labels"):
        score_pool("loss", probabilities={"m": probs})
    with pytest.raises(MdcError, match="resolution"):
        score_pool("loss", probabilities={"m": probs}, ground_truth=ground_truth(np.zeros((1, 8, 8))))


# ---- random --------------------------------------------------------------------------------------


def test_random_is_seeded_and_skips_invalid_images():
    preds = predictions_dataset(np.zeros((50, 1, 2, 2)), ["ss"], valid=np.arange(50) != 7)
    a = score_pool("random", predictions=preds, seed=4)
    b = score_pool("random", predictions=preds, seed=4)
    c = score_pool("random", predictions=preds, seed=5)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(np.nan_to_num(a.values), np.nan_to_num(c.values))
    assert np.isnan(a.values[7]) and np.nanmin(a.values) >= 0 and np.nanmax(a.values) < 1
