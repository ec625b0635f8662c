"""Joint scores and constrained selection on hand-made discrepancies."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError, UnknownModelError
from mdc_widgets.mining import (
    CompetitionGroup,
    Constraints,
    Weights,
    joint_score,
    rank_normalize,
    select_top_k,
    thumbnail_features,
)

MODELS = ["a", "b", "p", "q"]
TASKS = {"a": "ss", "b": "ss", "p": "sod", "q": "sod"}


def make_discrepancy(pairs: dict[tuple[str, str], np.ndarray]) -> xr.DataArray:
    n = len(next(iter(pairs.values())))
    data = np.zeros((n, 4, 4))
    for (m1, m2), values in pairs.items():
        i, j = MODELS.index(m1), MODELS.index(m2)
        data[:, i, j] = data[:, j, i] = values
    kind = [["self" if x == y else ("cross" if TASKS[x] != TASKS[y] else TASKS[x]) for y in MODELS] for x in MODELS]
    return xr.DataArray(
        data,
        dims=("sample", "model_a", "model_b"),
        coords={
            "sample": [f"s{i}" for i in range(n)],
            "model_a": MODELS,
            "model_b": MODELS,
            "kind": (("model_a", "model_b"), np.array(kind)),
        },
    )


def test_rank_normalize_is_a_percentile_with_shared_ties_and_nan_last():
    np.testing.assert_allclose(rank_normalize(np.array([3.0, 1.0, 2.0])), [1.0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(rank_normalize(np.array([np.nan, 5.0, 5.0])), [0.0, 0.75, 0.75])


def test_joint_score_weights_the_rank_normalised_terms():
    d_ss = np.array([0.9, 0.1, 0.5, 0.2])
    d_sod = np.array([0.0, 0.8, 0.4, 0.1])
    cross = {
        ("a", "p"): np.array([0.1, 0.2, 0.9, 0.3]),
        ("a", "q"): np.array([0.4, 0.3, 0.2, 0.1]),
        ("b", "p"): np.array([0.1, 0.2, 0.3, 0.4]),
        ("b", "q"): np.array([0.4, 0.1, 0.2, 0.3]),
    }
    disc = make_discrepancy({("a", "b"): d_ss, ("p", "q"): d_sod, **cross})
    group = CompetitionGroup(ss=("a", "b"), sod=("p", "q"))
    out = joint_score(disc, group, Weights(ss=2.0, sod=0.5, cross=1.0))
    r = rank_normalize
    expected_cross = np.mean([r(v) for v in cross.values()], axis=0)
    np.testing.assert_allclose(out["term_ss"], r(d_ss))
    np.testing.assert_allclose(out["term_cross"], expected_cross)
    np.testing.assert_allclose(out["score"], 2.0 * r(d_ss) + 0.5 * r(d_sod) + expected_cross)
    np.testing.assert_allclose(out["d_cross"], np.mean(list(cross.values()), axis=0))


def test_single_task_mad_is_the_special_case_with_one_weight():
    d_ss = np.array([0.3, 0.9, 0.1])
    disc = make_discrepancy({("a", "b"): d_ss, ("p", "q"): np.array([0.9, 0.0, 0.5])})
    out = joint_score(disc, CompetitionGroup(ss=("a", "b")), Weights(ss=1, sod=0, cross=0))
    assert np.argmax(out["score"].values) == 1
    np.testing.assert_allclose(out["term_sod"], 0)
    assert np.isnan(out["d_sod"]).all()


def test_invalid_images_never_score_and_unknown_models_are_named():
    disc = make_discrepancy({("a", "b"): np.array([0.9, 0.1, 0.5])})
    out = joint_score(disc, CompetitionGroup(ss=("a", "b")), Weights(1, 0, 0), valid=np.array([False, True, True]))
    assert np.isnan(out["score"].values[0])
    assert select_top_k(out["score"], 1, Constraints.none()).samples == ["s2"]
    with pytest.raises(UnknownModelError, match="'zz'"):
        joint_score(disc, CompetitionGroup(ss=("a", "zz")))


def test_group_and_weights_validate_their_input():
    with pytest.raises(MdcError, match="names one twice"):
        CompetitionGroup(ss=("a", "b", "a"))
    with pytest.raises(MdcError, match="at least one model"):
        CompetitionGroup()
    # three models of a task are three pairs, averaged in the task's term
    assert CompetitionGroup(ss=("a", "b", "c")).intra_pairs("ss") == [("a", "b"), ("a", "c"), ("b", "c")]
    with pytest.raises(MdcError, match="non-negative"):
        Weights(ss=-1)


def _scores(values):
    return xr.DataArray(
        np.asarray(values, float), dims="sample", coords={"sample": [f"s{i}" for i in range(len(values))]}
    )


def test_plain_top_k_is_sorted_and_stable_under_ties():
    sel = select_top_k(_scores([0.2, 0.9, 0.5, 0.9, 0.1]), 3, Constraints.none())
    assert sel.samples == ["s1", "s3", "s2"]
    np.testing.assert_allclose(sel.scores, [0.9, 0.9, 0.5])


def test_each_constraint_removes_what_it_should_and_reports_it():
    scores = _scores([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    area = np.array([0.5, 0.001, 0.5, 0.99, 0.5, 0.5, 0.5])
    classes = np.array([1, 1, 1, 2, 1, 2, 3])
    feats = np.eye(7)
    feats[4] = feats[0]  # s4 is a duplicate of s0
    sel = select_top_k(
        scores,
        3,
        Constraints(foreground_area=(0.01, 0.95), dedup_threshold=0.9, max_per_class=2, exclude={"s2"}),
        foreground_area=area,
        features=feats,
        dominant_class=classes,
    )
    assert sel.samples == ["s0", "s5", "s6"]
    assert sel.skipped == {
        "excluded": ["s2"],
        "foreground_area": ["s1", "s3"],
        "min_content": [],
        "min_confidence": [],
        "class_quota": [],
        "class_pair": [],
        "near_duplicate": ["s4"],
    }
    sel = select_top_k(
        scores, 3, Constraints(foreground_area=None, dedup_threshold=None, max_per_class=1), dominant_class=classes
    )
    assert sel.samples == ["s0", "s3", "s6"]
    assert sel.report()["class_quota"] == 4


def test_selection_widens_its_partial_window_when_constraints_reject_many():
    rng = np.random.default_rng(0)
    scores = _scores(rng.random(5000))
    area = np.where(np.arange(5000) % 50 == 0, 0.5, 0.0)  # only 100 images are allowed
    sel = select_top_k(scores, 80, Constraints(foreground_area=(0.1, 0.9), dedup_threshold=None), foreground_area=area)
    allowed = np.flatnonzero(area > 0)
    best = allowed[np.argsort(-scores.values[allowed])][:80]
    assert sel.indices.tolist() == best.tolist()


def test_missing_constraint_input_is_a_clear_error():
    with pytest.raises(MdcError, match="foreground_area"):
        select_top_k(_scores([1, 2]), 1, Constraints(dedup_threshold=None))


def test_thumbnails_find_near_duplicates():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    noisy = np.clip(img[0].astype(int) + rng.integers(-3, 4, img[0].shape), 0, 255).astype(np.uint8)
    f = thumbnail_features(np.stack([img[0], noisy, img[1]]))
    assert f[0] @ f[1] > 0.99 and f[0] @ f[2] < 0.5


def test_ties_are_broken_by_the_secondary_key():
    sel = select_top_k(_scores([0.5, 0.9, 0.9, 0.9]), 2, Constraints.none(), tiebreak=np.array([0, 0.1, 0.7, 0.3]))
    assert sel.samples == ["s2", "s3"]
