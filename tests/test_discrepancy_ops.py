"""The discrepancy ops on hand-computed edge cases: binarisation rule, degenerate maps, numpy/torch dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdc_widgets.discrepancy import (
    binarize_saliency,
    confusion_counts,
    cross_task_discrepancy,
    downsample_labels,
    downsample_saliency,
    iou_binary,
    mean_iou_from_confusion,
    sod_discrepancy,
    ss_discrepancy,
)
from mdc_widgets.errors import ShapeError


def test_binarize_follows_the_contract_rule_for_uint8_and_float():
    # mean 0.25 -> threshold 0.5: values >= 0.5 are salient
    s = np.array([[[0.0, 0.5], [0.49, 0.01]]])
    assert binarize_saliency(s)[0].tolist() == [[False, True], [False, False]]
    as_uint8 = np.round(s * 255).astype(np.uint8)
    assert binarize_saliency(as_uint8)[0].tolist() == [[False, True], [False, False]]


def test_binarize_degenerate_maps():
    zeros = np.zeros((1, 3, 3), np.uint8)
    assert not binarize_saliency(zeros).any()  # all-zero map: all background, not "all >= 0"
    full = np.full((1, 3, 3), 255, np.uint8)
    assert binarize_saliency(full).all()  # threshold capped at 1
    # a constant c in (0, 1) has threshold min(2c, 1) > c: nothing stands out, so nothing is salient
    assert not binarize_saliency(np.full((1, 3, 3), 3, np.uint8)).any()
    assert not binarize_saliency(np.full((1, 2, 2), 0.3)).any()


def test_binarize_is_per_image():
    # the same value 100 is salient on a dark image and background on a bright one (threshold capped at 1)
    s = np.zeros((2, 1, 4), np.uint8)
    s[0, 0] = [0, 0, 0, 100]
    s[1, 0] = [100, 255, 255, 255]
    assert binarize_saliency(s).tolist() == [[[False, False, False, True]], [[False, True, True, True]]]


def test_discrepancies_are_symmetric_and_in_unit_range():
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, 5, (2, 6, 7, 7))
    s, t = rng.integers(0, 256, (2, 6, 7, 7)).astype(np.uint8)
    for value, swapped in [
        (ss_discrepancy(a, b, 5), ss_discrepancy(b, a, 5)),
        (sod_discrepancy(s, t), sod_discrepancy(t, s)),
        (sod_discrepancy(s, t, "mae"), sod_discrepancy(t, s, "mae")),
    ]:
        np.testing.assert_allclose(value, swapped)
        assert ((value >= 0) & (value <= 1)).all()
    assert (ss_discrepancy(a, a, 5) == 0).all() and (sod_discrepancy(s, s) == 0).all()


def test_cross_task_counts_every_class_as_foreground_and_empty_agrees():
    labels = np.array([[[0, 1, 2, 7]], [[0, 0, 0, 0]]])
    sal = np.array([[[0, 255, 255, 0]], [[0, 0, 0, 0]]], np.uint8)
    np.testing.assert_allclose(cross_task_discrepancy(labels, sal), [1 - 2 / 3, 0.0])


def test_mean_iou_from_confusion_is_batched_over_images():
    conf = torch.tensor([[[2, 0], [0, 0]], [[1, 1], [1, 1]], [[0, 3], [0, 0]]])
    np.testing.assert_allclose(mean_iou_from_confusion(conf).numpy(), [1.0, 1 / 3, 0.0])


def test_iou_binary_hand_case_and_both_empty():
    x = np.array([[[1, 1, 0]], [[0, 0, 0]]], bool)
    y = np.array([[[0, 1, 1]], [[0, 0, 0]]], bool)
    np.testing.assert_allclose(iou_binary(x, y), [1 / 3, 1.0])


def test_downsample_labels_takes_block_pixels_and_saliency_takes_block_means():
    labels = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    small = downsample_labels(labels, 2)
    assert small.shape == (1, 2, 2) and set(small.ravel()) <= set(labels.ravel())
    sal = np.array([[[0, 255, 0, 0], [255, 255, 0, 0], [0, 0, 51, 51], [0, 0, 51, 51]]], np.uint8)
    pooled = np.asarray(downsample_saliency(sal, 2), dtype=np.float64)
    scale = 255.0 if pooled.max() > 1 else 1.0
    np.testing.assert_allclose(pooled[0] / scale, [[0.75, 0.0], [0.0, 0.2]], atol=2 / 255)
    assert downsample_labels(labels, 1) is labels


def test_torch_input_gives_torch_output_with_the_same_values():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, (2, 4, 5, 5)).astype(np.uint8)
    s, t = rng.integers(0, 256, (2, 4, 5, 5)).astype(np.uint8)
    pairs = [
        (ss_discrepancy, (a, b, 3)),
        (sod_discrepancy, (s, t)),
        (cross_task_discrepancy, (a, s)),
        (confusion_counts, (a, b, 3)),
        (binarize_saliency, (s,)),
    ]
    for fn, args in pairs:
        as_numpy = fn(*args)
        as_torch = fn(*[torch.as_tensor(x) if isinstance(x, np.ndarray) else x for x in args])
        assert isinstance(as_numpy, np.ndarray) and isinstance(as_torch, torch.Tensor), fn.__name__
        np.testing.assert_allclose(as_torch.numpy(), as_numpy)


def test_unknown_sod_measure_is_refused():
    s = np.zeros((1, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="iou"):
        sod_discrepancy(s, s, "dice")


def test_confusion_counts_refuses_labels_beyond_num_classes():
    # a label >= num_classes would otherwise be counted in the next image's block
    a = np.zeros((2, 2, 2), np.uint8)
    a[0, 0, 0] = 3
    with pytest.raises(ShapeError, match="num_classes=2"):
        confusion_counts(a, np.zeros_like(a), 2)
