"""Bradley-Terry closed forms and likelihood equations, win-matrix rules, bootstrap interval coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mdc_widgets.ranking import bootstrap_ranking, bradley_terry, win_matrix, win_matrix_from_labels


def test_two_models_have_the_closed_form_log_odds():
    for w01, w10, prior in [(7.0, 3.0, 0.0), (7.0, 3.0, 0.5), (10.0, 0.0, 0.1)]:
        s = bradley_terry(np.array([[0, w01], [w10, 0]]), prior=prior)
        assert s[0] - s[1] == pytest.approx(np.log((w01 + prior) / (w10 + prior)), abs=1e-8)
        assert s.sum() == pytest.approx(0.0, abs=1e-12)


def test_fit_solves_the_likelihood_equations():
    rng = np.random.default_rng(0)
    wins = rng.integers(1, 30, (5, 5)).astype(float)
    np.fill_diagonal(wins, 0)
    s = bradley_terry(wins, prior=0.0)
    p = np.exp(s)
    games = wins + wins.T
    expected_wins = (games * p[:, None] / (p[:, None] + p[None, :])).sum(1)
    np.testing.assert_allclose(expected_wins, wins.sum(1), rtol=1e-7)  # d logL / d s_i = 0
    np.testing.assert_allclose(bradley_terry(3 * wins, prior=0.0), s, atol=1e-8)  # only ratios matter


def test_win_matrix_ties_split_or_excluded_and_direction():
    scores = xr.DataArray(
        [[0.9, 0.5], [0.2, 0.4], [0.7, 0.7 + 1e-12], [np.nan, 0.1]],
        dims=("sample", "model"),
        coords={"sample": list("ijkl"), "model": ["A", "B"]},
    )
    # i: A wins, j: B wins, k: a tie within tie_tol, l: A has no score so the image does not count
    assert win_matrix(scores).values.tolist() == [[0, 1.5], [1.5, 0]]
    assert win_matrix(scores, ties="exclude").values.tolist() == [[0, 1], [1, 0]]
    assert win_matrix(scores, tie_tol=0.0, ties="exclude").values.tolist() == [[0, 1], [2, 0]]
    lower = win_matrix(scores, higher_is_better=False, ties="exclude")  # e.g. MAE
    assert lower.values.tolist() == [[0, 1], [1, 0]]
    only_i = win_matrix(scores, pairs_samples={("A", "B"): ["i"]})
    assert only_i.values.tolist() == [[0, 1], [0, 0]]
    assert only_i.dims == ("model_a", "model_b")


def test_human_verdicts_both_fine_and_order_of_columns():
    labels = pd.DataFrame(
        {"model_a": ["A", "B", "A", "C"], "model_b": ["B", "A", "C", "A"], "verdict": ["a", "a", "both_fine", "b"]}
    )
    w = win_matrix_from_labels(labels, models=["A", "B", "C"])
    # A beat B, then B beat A (B listed first); A-C a tie; A beat C (C listed first, verdict b)
    assert w.values.tolist() == [[0, 1, 1.5], [1, 0, 0], [0.5, 0, 0]]


def simulate(strengths: np.ndarray, n_per_pair: int, rng: np.random.Generator) -> pd.DataFrame:
    m = len(strengths)
    a, b = np.triu_indices(m, 1)
    a, b = np.repeat(a, n_per_pair), np.repeat(b, n_per_pair)
    p_a = 1 / (1 + np.exp(strengths[b] - strengths[a]))
    winner = np.where(rng.random(len(a)) < p_a, "a", "b")
    return pd.DataFrame({"model_a": [f"m{i}" for i in a], "model_b": [f"m{j}" for j in b], "winner": winner})


def test_bootstrap_intervals_cover_the_truth_at_about_the_nominal_rate():
    truth = np.array([0.5, 0.0, -0.5])
    centred = truth - truth.mean()
    rng = np.random.default_rng(11)
    inside = []
    for trial in range(10):
        result = bootstrap_ranking(simulate(truth, 80, rng), n_boot=50, seed=trial, ci=0.9)
        inside.append((result["ci_low"].values <= centred) & (centred <= result["ci_high"].values))
    # 30 intervals at 90%: fewer than 23 covered has probability < 1% (over 40 trials this measured 89%)
    assert np.mean(inside) >= 0.75, np.mean(inside)


def test_bootstrap_is_reproducible_and_interval_contains_the_estimate():
    comparisons = simulate(np.array([1.0, 0.0, -1.0]), 40, np.random.default_rng(0))
    one = bootstrap_ranking(comparisons, n_boot=100, seed=3)
    two = bootstrap_ranking(comparisons, n_boot=100, seed=3)
    xr.testing.assert_identical(one, two)
    assert ((one["ci_low"] <= one["strength"]) & (one["strength"] <= one["ci_high"])).all()
    assert sorted(one["rank"].values.tolist()) == [1, 2, 3]


def test_bootstrap_from_per_image_scores_reports_plain_win_rates():
    scores = xr.DataArray(
        [[0.9, 0.5, 0.1], [0.8, 0.6, 0.7], [0.3, 0.4, 0.2], [0.9, 0.1, 0.2]],
        dims=("sample", "model"),
        coords={"sample": list("ijkl"), "model": ["A", "B", "C"]},
    )
    result = bootstrap_ranking(scores, n_boot=50)
    wins = win_matrix(scores).values
    np.testing.assert_allclose(result["win_rate"].values, wins.sum(1) / (wins + wins.T).sum(1))
    assert result["rank"].sel(model="A") == 1


def test_unknown_tie_rule_is_refused():
    scores = xr.DataArray([[1.0, 1.0]], dims=("sample", "model"), coords={"sample": ["i"], "model": ["A", "B"]})
    with pytest.raises(ValueError):
        win_matrix(scores, ties="half")
