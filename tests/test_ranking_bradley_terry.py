"""Bradley-Terry recovers known strengths; win matrices count what they should."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.ranking import bootstrap_ranking, bradley_terry, win_matrix, win_matrix_from_labels


def simulate(strengths, n_per_pair, seed):
    rng = np.random.default_rng(seed)
    rows = []
    m = len(strengths)
    for i in range(m):
        for j in range(i + 1, m):
            p = 1 / (1 + np.exp(strengths[j] - strengths[i]))
            won = rng.random(n_per_pair) < p
            rows += [{"model_a": f"m{i}", "model_b": f"m{j}", "winner": "a" if w else "b"} for w in won]
    return pd.DataFrame(rows)


def test_bradley_terry_recovers_simulated_strengths():
    truth = np.array([1.0, 0.3, -0.2, -1.1])
    comparisons = simulate(truth, 4000, seed=0)
    wins = np.zeros((4, 4))
    for r in comparisons.itertuples():
        i, j = int(r.model_a[1]), int(r.model_b[1])
        wins[(i, j) if r.winner == "a" else (j, i)] += 1
    np.testing.assert_allclose(bradley_terry(wins, prior=0), truth - truth.mean(), atol=0.06)


def test_bootstrap_interval_covers_the_truth_and_ranks_correctly():
    truth = np.array([0.8, 0.0, -0.8])
    result = bootstrap_ranking(simulate(truth, 300, seed=1), n_boot=200, seed=0)
    centred = truth - truth.mean()
    assert ((result["ci_low"].values <= centred) & (centred <= result["ci_high"].values)).all()
    assert result["rank"].values.tolist() == [1, 2, 3]
    assert result["win_rate"].values[0] > 0.5 > result["win_rate"].values[2]


def test_perfect_record_stays_finite():
    s = bradley_terry(np.array([[0, 5], [0, 0]], float))
    assert np.isfinite(s).all() and s[0] > s[1]


def test_win_matrix_from_scores_and_pairs():
    scores = xr.DataArray(
        [[0.9, 0.5, 0.1], [0.2, 0.4, 0.3], [0.7, 0.7, 0.9]],
        dims=("sample", "model"),
        coords={"sample": ["i", "j", "k"], "model": ["A", "B", "C"]},
    )
    w = win_matrix(scores, ties="exclude")
    assert w.sel(model_a="A", model_b="B") == 1 and w.sel(model_a="B", model_b="A") == 1
    assert w.sel(model_a="C", model_b="A") == 2
    lower = win_matrix(scores, higher_is_better=False, pairs_samples={("A", "C"): ["i"]})
    assert lower.sel(model_a="C", model_b="A") == 1 and float(lower.sum()) == 1


def test_human_verdicts_count_ties_half():
    labels = pd.DataFrame({"model_a": ["A", "A", "A"], "model_b": ["B", "B", "B"], "verdict": ["a", "both_wrong", "b"]})
    w = win_matrix_from_labels(labels)
    assert w.sel(model_a="A", model_b="B") == 1.5
    with pytest.raises(MdcError, match="Unknown verdicts"):
        win_matrix_from_labels(labels.assign(verdict=["a", "maybe", "b"]))
