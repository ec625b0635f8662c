"""The CPU scoring kernels equal the simple reference formulas on random maps, ties and empty maps included."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
import torch
import xarray as xr

from mdc_widgets.discrepancy import binarize_saliency, compute_discrepancies, pairwise_statistics
from mdc_widgets.discrepancy.kernels import (
    joint_bincount,
    map_statistics,
    pack_binary,
    packed_counts,
    per_image_bincount,
)
from mdc_widgets.discrepancy.pairwise import _chunk_matrix
from mdc_widgets.errors import ShapeError


def reference_binary(s: np.ndarray) -> np.ndarray:
    """``s / 255 >= min(2 mean, 1)`` and ``s > 0`` in exact rational arithmetic, one image."""
    mean = Fraction(int(s.astype(np.int64).sum()), s.size * 255)
    threshold = min(2 * mean, Fraction(1))
    return np.array([Fraction(int(v), 255) >= threshold and v > 0 for v in s.ravel()]).reshape(s.shape)


def reference_pair(x: np.ndarray, tx: str, y: np.ndarray, ty: str, c: int, measure: str) -> float:
    if tx == ty == "ss":
        ious = []
        for k in range(c):
            inter = np.sum((x == k) & (y == k))
            union = np.sum((x == k) | (y == k))
            if union:
                ious.append(inter / union)
        return 1.0 - (np.mean(ious) if ious else 1.0)
    if tx == ty == "sod" and measure == "mae":
        return float(np.abs(x.astype(float) - y.astype(float)).mean() / 255)
    bx = x > 0 if tx == "ss" else reference_binary(x)
    by = y > 0 if ty == "ss" else reference_binary(y)
    union = np.sum(bx | by)
    return 1.0 - (np.sum(bx & by) / union if union else 1.0)


def random_maps(rng: np.random.Generator, n: int, tasks: list[str], c: int, h: int, w: int) -> np.ndarray:
    maps = np.empty((n, len(tasks), h, w), np.uint8)
    for j, task in enumerate(tasks):
        top = c if task == "ss" else 256
        maps[:, j] = rng.integers(0, top, (n, h, w))
        # sparse maps (few classes, many zeros) as real predictions are
        maps[: n // 2, j] *= rng.random((n // 2, h, w)) < 0.3
    maps[0] = 0  # every model empty on the first image
    same = [j for j, task in enumerate(tasks) if task == tasks[0]]
    maps[1, same] = maps[1, same[0]]  # identical maps of one task on the second image
    maps[2, :, 0, 0] = c - 1  # the largest class id
    return maps


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("measure", ["iou", "mae"])
def test_map_statistics_equals_the_reference_formulas(seed, measure):
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 30))
    tasks = list(rng.choice(["ss", "sod"], size=int(rng.integers(2, 5))))
    h, w = int(rng.integers(1, 9)), int(rng.integers(1, 11))  # odd sizes: packed words are padded
    maps = random_maps(rng, 7, tasks, c, h, w)
    stats = map_statistics(maps, tasks, c, sod_measure=measure)
    for i in range(len(maps)):
        for a, b in combinations(range(len(tasks)), 2):
            expected = reference_pair(maps[i, a], tasks[a], maps[i, b], tasks[b], c, measure)
            assert stats["discrepancy"][i, a, b] == pytest.approx(expected, abs=1e-12)
            assert stats["discrepancy"][i, b, a] == stats["discrepancy"][i, a, b]
        for j, task in enumerate(tasks):
            binary = maps[i, j] > 0 if task == "ss" else reference_binary(maps[i, j])
            assert stats["foreground"][i, j] == binary.mean()
            if task == "ss":
                counts = np.bincount(maps[i, j].ravel(), minlength=c)
                counts[0] = 0
                assert stats["dominant"][i, j] == (counts.argmax() if counts.max() else 0)
            else:
                assert stats["dominant"][i, j] == -1
    assert np.all(np.diagonal(stats["discrepancy"], axis1=1, axis2=2) == 0)


def test_ties_at_the_adaptive_threshold_are_salient_in_every_path():
    # mean 0.25 exactly: threshold 0.5, i.e. ceil(2 * 510 / 4) = 255; and a map whose 2 S / P is a whole number
    tie = np.array([[[0, 0], [255, 255]], [[60, 60], [0, 0]]], np.uint8)  # second: 2 * 120 / 4 = 60
    expected = np.stack([reference_binary(s) for s in tie])
    assert expected[1].sum() == 2
    assert np.array_equal(np.asarray(binarize_saliency(tie)), expected)
    assert np.array_equal(binarize_saliency(torch.from_numpy(tie)).numpy(), expected)
    stats = map_statistics(np.stack([tie, tie[:, ::-1]], 1), ["sod", "sod"], 2)
    assert stats["foreground"][:, 0].tolist() == [0.5, 0.5]


def maps_dataset(maps: np.ndarray, tasks: list[str], num_classes: int = 21) -> xr.Dataset:
    """A prediction store in memory: ``maps (n, M, H, W)`` with models m0..m{M-1} of ``tasks``."""
    models = [f"m{j}" for j in range(len(tasks))]
    return xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), maps)},
        coords={"model": models, "task": ("model", tasks)},
        attrs={"classes": {m: [str(k) for k in range(num_classes)] for m, t in zip(models, tasks) if t == "ss"}},
    )


def test_fast_cpu_path_equals_the_torch_reference_path_on_a_store():
    rng = np.random.default_rng(5)
    tasks = ["ss", "ss", "sod", "ss", "sod"]
    maps = random_maps(rng, 40, tasks, 21, 16, 24)
    ds = maps_dataset(maps, tasks)
    fast = compute_discrepancies(ds, device="cpu", chunk_size=16).values
    reference = _chunk_matrix(torch.from_numpy(maps), tasks, 21, "iou").numpy()
    np.testing.assert_allclose(fast, reference, atol=1e-6)
    stats = pairwise_statistics(ds, device="cpu", chunk_size=7)
    np.testing.assert_array_equal(stats["foreground"].values[:, 0], (maps[:, 0] > 0).mean(axis=(1, 2)))


def test_labels_at_or_past_the_class_count_are_refused_by_the_fast_path():
    maps = np.zeros((3, 2, 4, 4), np.uint8)
    maps[2, 1, 0, 0] = 4
    ds = maps_dataset(maps, ["ss", "ss"], num_classes=4)
    with pytest.raises(ShapeError, match="'m1' predicted label 4"):
        compute_discrepancies(ds, device="cpu")


def test_bit_packing_and_per_image_bincount_count_exactly():
    rng = np.random.default_rng(1)
    binary = rng.random((5, 131)) < 0.4
    assert packed_counts(pack_binary(binary)).tolist() == binary.sum(axis=1).tolist()
    values = rng.integers(0, 300, (4, 57)).astype(np.uint16)
    hist = per_image_bincount(values, 300)
    assert all(np.array_equal(hist[i], np.bincount(values[i], minlength=300)) for i in range(4))


def test_mine_takes_areas_and_classes_from_the_fused_pass_equal_to_the_streamed_helpers():
    from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, dominant_class, foreground_fraction, mine

    rng = np.random.default_rng(9)
    tasks = ["ss", "sod", "ss", "sod"]
    maps = random_maps(rng, 30, tasks, 6, 12, 12)
    models = ["a", "p", "b", "q"]
    ds = xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), maps)},
        coords={"sample": [f"s{i}" for i in range(30)], "model": models, "task": ("model", tasks)},
        attrs={"classes": {"a": list("012345"), "b": list("012345")}},
    )
    group = CompetitionGroup(ss=("b", "a"), sod=("q", "p"))
    result = mine(ds, group, Weights(), k=5, constraints=Constraints(max_per_class=2, dedup_threshold=None), save=False)
    np.testing.assert_array_equal(result["foreground_area"].values, foreground_fraction(ds, group.models).values)
    np.testing.assert_array_equal(result["dominant_class"].values, dominant_class(ds, "b").values)


def test_candidate_features_equal_the_pool_wide_features_and_select_the_same_images():
    from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, mad, mine, select_top_k

    rng = np.random.default_rng(3)
    tasks = ["ss", "ss", "sod"]
    maps = random_maps(rng, 40, tasks, 4, 16, 16)
    maps[5:10] = maps[4]  # near-duplicates for the suppression to remove
    models = ["a", "b", "p"]
    ds = xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), maps)},
        coords={"sample": [f"s{i:02d}" for i in range(40)], "model": models, "task": ("model", tasks)},
        attrs={"classes": {"a": list("0123"), "b": list("0123")}},
    )
    group = CompetitionGroup(ss=("a", "b"), sod=("p",))
    full = mad._default_features(ds, group, None)
    lazy = mad._candidate_features(ds, group, None)
    rows = np.array([3, 17, 39])
    np.testing.assert_array_equal(lazy(rows), full[rows])
    constraints = Constraints(dedup_threshold=0.9, foreground_area=None)
    result = mine(ds, group, Weights(), k=36, constraints=constraints, save=False)
    asked: list[int] = []

    def counting(indices):
        asked.extend(indices.tolist())
        return full[indices]

    eager = select_top_k(result["score"], 36, constraints, features=full)
    on_demand = select_top_k(result["score"], 36, constraints, features=counting)
    assert on_demand.samples == eager.samples
    explicit = mine(ds, group, Weights(), k=36, constraints=constraints, features=full, save=False)
    np.testing.assert_array_equal(result["selection_rank"].values, explicit["selection_rank"].values)
    assert eager.skipped["near_duplicate"] == on_demand.skipped["near_duplicate"] != []
    assert len(set(asked)) == len(asked) <= 40  # each candidate once


def test_joint_bincount_is_the_confusion_matrix():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (3, 50)).astype(np.uint8)
    b = rng.integers(0, 256, (3, 50)).astype(np.uint8)
    conf = joint_bincount(a, b, 256)  # the largest class count: a * 256 + b fills uint16 exactly
    for i in range(3):
        expected = np.zeros((256, 256), np.int64)
        np.add.at(expected, (a[i], b[i]), 1)
        np.testing.assert_array_equal(conf[i], expected)


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("chunk_size", [5, 64])
def test_threaded_scoring_equals_one_thread(threads, chunk_size):
    rng = np.random.default_rng(11)
    tasks = ["ss", "sod", "ss", "sod"]
    maps = random_maps(rng, 37, tasks, 21, 12, 10)
    ds = maps_dataset(maps, tasks)
    one = pairwise_statistics(ds, device="cpu", chunk_size=chunk_size, threads=1)
    many = pairwise_statistics(ds, device="cpu", chunk_size=chunk_size, threads=threads)
    for name in ("discrepancy", "foreground", "dominant_class"):
        np.testing.assert_array_equal(many[name].values, one[name].values)


def test_threaded_scoring_still_refuses_a_label_past_the_class_count():
    maps = np.zeros((16, 2, 4, 4), np.uint8)
    maps[13, 1, 0, 0] = 4  # in the last thread's slice
    ds = maps_dataset(maps, ["ss", "ss"], num_classes=4)
    with pytest.raises(ShapeError, match="'m1' predicted label 4"):
        compute_discrepancies(ds, device="cpu", threads=4)
