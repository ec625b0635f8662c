"""The MAD eigenvector ranking and gMAD's aggressiveness/resistance on hand-computed 3-model examples."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.ranking import (
    attack_success,
    bootstrap_mad_ranking,
    gmad_scores,
    mad_eigenvector,
    pair_accuracy,
    role_sets,
)


def test_eigenvector_ranking_on_a_hand_computed_3_model_matrix():
    # accuracies on the MAD sets: B = A / A.T = [[1, 2, 4], [1/2, 1, 2], [1/4, 1/2, 1]] = r_i / r_j, r = (4, 2, 1)
    a = np.array([[np.nan, 0.8, 0.8], [0.4, np.nan, 0.6], [0.2, 0.3, np.nan]])
    np.testing.assert_allclose(mad_eigenvector(a), [4 / 7, 2 / 7, 1 / 7], atol=1e-9)


def test_eigenvector_of_an_inconsistent_matrix_is_the_principal_one():
    a = np.array([[np.nan, 0.9, 0.5], [0.3, np.nan, 0.7], [0.6, 0.2, np.nan]])
    b = a / a.T
    np.fill_diagonal(b, 1.0)
    values, vectors = np.linalg.eig(b)
    principal = np.abs(np.real(vectors[:, np.argmax(np.real(values))]))
    np.testing.assert_allclose(mad_eigenvector(a), principal / principal.sum(), atol=1e-8)
    # stacked replicates are ranked independently
    np.testing.assert_allclose(mad_eigenvector(np.stack([a, a]))[1], mad_eigenvector(a))


def test_gmad_aggressiveness_and_resistance_by_hand():
    wins = np.array([[np.nan, 0.75, 1.0], [0.25, np.nan, 0.5], [0.0, 0.5, np.nan]])
    aggressiveness, resistance = gmad_scores(wins)
    np.testing.assert_allclose(aggressiveness, [0.875, 0.375, 0.25])
    np.testing.assert_allclose(resistance, [(0.75 + 1.0) / 2, (0.25 + 0.5) / 2, (0.0 + 0.5) / 2])


def scores_3_models() -> xr.DataArray:
    # per-image mIoU of models A, B, C on 6 images; each pair has its own MAD set
    values = np.array(
        [[0.9, 0.1, 0.5], [0.8, 0.4, 0.5], [0.7, 0.5, 0.2], [0.2, 0.6, 0.1], [0.5, 0.5, 0.9], [0.6, 0.3, 0.3]]
    )
    return xr.DataArray(
        values, dims=("sample", "model"), coords={"sample": [f"s{i}" for i in range(6)], "model": ["A", "B", "C"]}
    )


PAIR_SETS = {("A", "B"): ["s0", "s1"], ("A", "C"): ["s2", "s3"], ("B", "C"): ["s4", "s5"]}


def test_each_pair_is_judged_on_its_own_set():
    acc = pair_accuracy(scores_3_models(), PAIR_SETS)
    assert acc[0, 1] == pytest.approx(0.85) and acc[1, 0] == pytest.approx(0.25)
    assert acc[0, 2] == pytest.approx(0.45) and acc[2, 0] == pytest.approx(0.15)
    assert acc[1, 2] == pytest.approx(0.4) and acc[2, 1] == pytest.approx(0.6)
    assert np.isnan(np.diag(acc)).all()


def test_attack_success_uses_the_role_sets():
    roles = {("B", "A"): ["s0", "s1"], ("A", "B"): ["s3"], ("C", "B"): ["s4", "s5"]}
    wins = attack_success(scores_3_models(), roles)
    assert wins[1, 0] == 0.0 and wins[0, 1] == 0.0 and wins[2, 1] == pytest.approx(0.75)  # s5 ties: half
    assert np.isnan(wins[0, 2])


def test_bootstrap_resamples_images_and_is_reproducible():
    scores = scores_3_models()
    roles = {
        ("B", "A"): ["s0"],
        ("A", "B"): ["s1"],
        ("C", "A"): ["s2"],
        ("A", "C"): ["s3"],
        ("C", "B"): ["s4"],
        ("B", "C"): ["s5"],
    }
    out = bootstrap_mad_ranking(scores, PAIR_SETS, roles, n_boot=200, seed=3)
    assert out.attrs["resampled"] == "images" and out.attrs["n_images"] == 6
    np.testing.assert_allclose(out["mad_score"], mad_eigenvector(pair_accuracy(scores, PAIR_SETS)))
    assert out["rank"].sel(model="A") == 1
    assert (out["mad_ci_low"] <= out["mad_score"] + 1e-12).all() and (
        out["mad_score"] <= out["mad_ci_high"] + 1e-12
    ).all()
    again = bootstrap_mad_ranking(scores, PAIR_SETS, roles, n_boot=200, seed=3)
    np.testing.assert_array_equal(out["mad_ci_low"], again["mad_ci_low"])
    assert {"aggressiveness", "resistance", "resistance_ci_high"} <= set(out.data_vars)
    with pytest.raises(MdcError, match="no per-image scores"):
        bootstrap_mad_ranking(scores, {("A", "B"): ["nope"]}, n_boot=2)


def test_role_sets_from_an_ijcv2021_result():
    result = xr.Dataset(
        {"selected": ("sample", [True, True, False]), "pick_defender": ("sample", ["a", "b", ""])},
        coords={"sample": ["x", "y", "z"]},
        attrs={"group_ss": ["a", "b"], "group_sod": []},
    )
    assert role_sets(result) == {("b", "a"): ["x"], ("a", "b"): ["y"]}
