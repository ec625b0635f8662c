"""Ranking models from pairwise wins: win matrices, Bradley-Terry maximum likelihood, bootstrap intervals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.errors import MdcError

__all__ = [
    "VERDICTS",
    "bootstrap_ranking",
    "bradley_terry",
    "comparisons_from_scores",
    "win_matrix",
    "win_matrix_from_labels",
]

VERDICTS = ("a", "b", "both_wrong", "both_fine")


def comparisons_from_scores(
    per_image_scores: xr.DataArray,
    higher_is_better: bool = True,
    pairs_samples: Mapping[tuple[str, str], Sequence[str]] | None = None,
    tie_tol: float = 1e-9,
) -> pd.DataFrame:
    """One row per (image, pair): who won by the per-image score (``winner`` is a, b or tie).

    ``pairs_samples`` restricts each pair to the images mined for it (MAD
    compares two models on the images chosen to separate them); by default
    every pair is compared on every image.

    Parameters
    ----------
    per_image_scores : xarray.DataArray
        ``(sample, model)`` per-image scores (e.g. mIoU against ground truth); NaN images are left out.
    higher_is_better : bool, optional
        False for errors such as MAE.
    pairs_samples : mapping of {tuple of 2 str: sequence of str} or None, optional
        Each ``(model_a, model_b)`` pair's sample ids; None: every pair on every image.
    tie_tol : float, optional
        Score differences up to this are a tie.

    Returns
    -------
    pandas.DataFrame
        Columns ``sample``, ``model_a``, ``model_b``, ``winner`` (``"a"``, ``"b"`` or ``"tie"``).
    """
    scores = per_image_scores.transpose("sample", "model")
    models = [str(m) for m in scores["model"].values]
    sample_ids = np.asarray(scores["sample"].values).astype(str)
    rows = []
    for a, b in pairs_samples.keys() if pairs_samples else combinations(models, 2):
        ids = list(pairs_samples[(a, b)]) if pairs_samples else list(sample_ids)
        sa = scores.sel(model=a, sample=ids).values.astype(float)
        sb = scores.sel(model=b, sample=ids).values.astype(float)
        diff = (sa - sb) if higher_is_better else (sb - sa)
        winner = np.where(np.abs(diff) <= tie_tol, "tie", np.where(diff > 0, "a", "b"))
        ok = np.isfinite(sa) & np.isfinite(sb)
        rows.append(pd.DataFrame({"sample": np.asarray(ids)[ok], "model_a": a, "model_b": b, "winner": winner[ok]}))
    return (
        pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["sample", "model_a", "model_b", "winner"])
    )


def _matrix(comparisons: pd.DataFrame, models: Sequence[str], ties: str) -> np.ndarray:
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    ia = comparisons["model_a"].map(index).to_numpy()
    ib = comparisons["model_b"].map(index).to_numpy()
    winner = comparisons["winner"].to_numpy()
    np.add.at(wins, (ia[winner == "a"], ib[winner == "a"]), 1.0)
    np.add.at(wins, (ib[winner == "b"], ia[winner == "b"]), 1.0)
    if ties == "split":
        tie = winner == "tie"
        np.add.at(wins, (ia[tie], ib[tie]), 0.5)
        np.add.at(wins, (ib[tie], ia[tie]), 0.5)
    return wins


def _as_dataarray(wins: np.ndarray, models: Sequence[str]) -> xr.DataArray:
    return xr.DataArray(
        wins,
        dims=("model_a", "model_b"),
        coords={"model_a": list(models), "model_b": list(models)},
        name="wins",
        attrs={"meaning": "wins[a, b] = comparisons a won against b"},
    )


def win_matrix(
    per_image_scores: xr.DataArray,
    higher_is_better: bool = True,
    pairs_samples: Mapping[tuple[str, str], Sequence[str]] | None = None,
    tie_tol: float = 1e-9,
    ties: str = "split",
) -> xr.DataArray:
    """``wins[a, b]``: images on which model a scored better than b (ties split half-half or ``"exclude"``).

    Parameters
    ----------
    per_image_scores : xarray.DataArray
        ``(sample, model)`` per-image scores (e.g. mIoU against ground truth); NaN images are left out.
    higher_is_better : bool, optional
        False for errors such as MAE.
    pairs_samples : mapping of {tuple of 2 str: sequence of str} or None, optional
        Each ``(model_a, model_b)`` pair's sample ids; None: every pair on every image.
    tie_tol : float, optional
        Score differences up to this are a tie.
    ties : {"split", "exclude"}, optional
        ``"split"``: a tie is half a win each; ``"exclude"``: ties are dropped.

    Returns
    -------
    xarray.DataArray
        ``wins (model_a, model_b)`` float64.

    Examples
    --------
    >>> s = xr.DataArray([[0.9, 0.5], [0.2, 0.4], [0.7, 0.7]], dims=("sample", "model"),
    ...                  coords={"sample": ["i", "j", "k"], "model": ["A", "B"]})
    >>> win_matrix(s).values.tolist()
    [[0.0, 1.5], [1.5, 0.0]]
    """
    if ties not in ("split", "exclude"):
        raise ValueError(f"ties={ties!r}: use 'split' (half a win each) or 'exclude'.")
    comparisons = comparisons_from_scores(per_image_scores, higher_is_better, pairs_samples, tie_tol)
    models = [str(m) for m in per_image_scores["model"].values]
    return _as_dataarray(_matrix(comparisons, models, ties), models)


def win_matrix_from_labels(labels: pd.DataFrame, models: Sequence[str] | None = None) -> xr.DataArray:
    """Win matrix from human verdicts (columns ``model_a``, ``model_b``, ``verdict`` in ``VERDICTS``).

    ``both_wrong`` and ``both_fine`` say nothing about which model is better
    and count as ties, split half-half.

    Parameters
    ----------
    labels : pandas.DataFrame
        One row per verdict, columns ``model_a``, ``model_b``, ``verdict``.
    models : sequence of str or None, optional
        Row and column order; by default the sorted models in ``labels``.

    Returns
    -------
    xarray.DataArray
        ``wins (model_a, model_b)`` float64.

    Raises
    ------
    MdcError
        A verdict is not one of ``VERDICTS``.
    """
    bad = set(labels["verdict"]) - set(VERDICTS)
    if bad:
        raise MdcError(f"Unknown verdicts {sorted(bad)}; a verdict is one of {VERDICTS}.")
    models = list(models) if models else sorted(set(labels["model_a"]) | set(labels["model_b"]))
    comparisons = labels.assign(
        winner=labels["verdict"].map({"a": "a", "b": "b", "both_wrong": "tie", "both_fine": "tie"})
    )
    return _as_dataarray(_matrix(comparisons, models, "split"), models)


def bradley_terry(
    wins: np.ndarray | xr.DataArray, max_iter: int = 10_000, tol: float = 1e-10, prior: float = 0.1
) -> np.ndarray:
    """Bradley-Terry log-strengths (mean 0) by Hunter's (2004) MM algorithm.

    ``P(i beats j) = exp(s_i) / (exp(s_i) + exp(s_j))``. A small symmetric
    pseudo-count ``prior`` is added to every pair that met, so a model that won
    (or lost) every comparison still gets a finite strength. ``wins`` may be
    ``(M, M)`` or a stack ``(..., M, M)`` (e.g. bootstrap replicates), fitted
    together.

    Parameters
    ----------
    wins : numpy.ndarray or xarray.DataArray
        ``(..., M, M)`` win counts, ``wins[i, j]`` = comparisons ``i`` won against ``j``.
    max_iter : int, optional
        Cap on MM iterations.
    tol : float, optional
        Stop when no log-strength moves by more than this.
    prior : float, optional
        Pseudo-wins added both ways to every pair that met.

    Returns
    -------
    numpy.ndarray
        ``(..., M)`` float64 log-strengths, mean 0 over the last axis.

    Examples
    --------
    >>> wins = np.array([[0, 8, 9], [2, 0, 6], [1, 4, 0]], float)
    >>> s = bradley_terry(wins)
    >>> bool(s[0] > s[1] > s[2]), round(float(s.sum()), 6)
    (True, 0.0)
    """
    w = np.asarray(wins.values if isinstance(wins, xr.DataArray) else wins, dtype=np.float64)
    games = w + np.swapaxes(w, -1, -2)
    w = w + prior * (games > 0)
    games = w + np.swapaxes(w, -1, -2)
    total_wins = w.sum(-1)
    p = np.ones(w.shape[:-1])
    for _ in range(max_iter):
        denom = (games / (p[..., :, None] + p[..., None, :])).sum(-1)
        new = np.where(denom > 0, total_wins / np.where(denom > 0, denom, 1), p)
        log_new = np.log(np.clip(new, 1e-300, None))
        log_new -= log_new.mean(-1, keepdims=True)
        done = np.max(np.abs(log_new - np.log(p))) < tol
        p = np.exp(log_new)
        if done:
            break
    log_p = np.log(np.clip(p, 1e-300, None))
    return log_p - log_p.mean(-1, keepdims=True)


def bootstrap_ranking(
    comparisons: pd.DataFrame | xr.DataArray,
    models: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    higher_is_better: bool = True,
) -> xr.Dataset:
    """Bradley-Terry strengths with bootstrap confidence intervals, beside plain win rates.

    ``comparisons`` is a table with ``model_a``, ``model_b`` and ``winner``
    (a/b/tie) or ``verdict`` (human labels), or per-image scores
    ``(sample, model)``. Comparisons are resampled with replacement.

    Parameters
    ----------
    comparisons : pandas.DataFrame or xarray.DataArray
        The comparison table, or ``(sample, model)`` per-image scores.
    models : sequence of str or None, optional
        The models in output order; by default the sorted models of the table
        (with per-image scores: their ``model`` coordinate).
    n_boot : int, optional
        Bootstrap replicates.
    seed : int, optional
        Seeds the resampling.
    ci : float, optional
        Interval coverage in (0, 1).
    higher_is_better : bool, optional
        For per-image scores only: False for errors such as MAE.

    Returns
    -------
    xarray.Dataset
        Along ``model``: ``strength``, ``ci_low``/``ci_high``, ``win_rate``
        (ties half), ``n_comparisons``, ``rank`` (1 = strongest); ``wins (model, opponent)``.

    Raises
    ------
    MdcError
        There are no comparisons.
    """
    if isinstance(comparisons, xr.DataArray):
        models = [str(m) for m in comparisons["model"].values]
        comparisons = comparisons_from_scores(comparisons, higher_is_better)
    elif "verdict" in comparisons and "winner" not in comparisons:
        comparisons = comparisons.assign(
            winner=comparisons["verdict"].map({"a": "a", "b": "b", "both_wrong": "tie", "both_fine": "tie"})
        )
    models = list(models) if models else sorted(set(comparisons["model_a"]) | set(comparisons["model_b"]))
    if comparisons.empty:
        raise MdcError("No comparisons to rank from; label some samples or evaluate against ground truth first.")
    wins = _matrix(comparisons, models, "split")
    strength = bradley_terry(wins)
    # resampling rows with replacement = a multinomial over the distinct (a, b, outcome) cells
    index = {m: i for i, m in enumerate(models)}
    m = len(models)
    ia = comparisons["model_a"].map(index).to_numpy()
    ib = comparisons["model_b"].map(index).to_numpy()
    outcome = comparisons["winner"].map({"a": 0, "b": 1, "tie": 2}).to_numpy()
    cells = np.bincount((ia * m + ib) * 3 + outcome, minlength=m * m * 3)
    draws = np.random.default_rng(seed).multinomial(len(comparisons), cells / cells.sum(), size=n_boot)
    a_won, b_won, tied = np.moveaxis(draws.reshape(n_boot, m, m, 3), -1, 0)
    boot = bradley_terry(a_won + np.swapaxes(b_won, 1, 2) + 0.5 * (tied + np.swapaxes(tied, 1, 2)))
    alpha = (1 - ci) / 2
    games = wins + wins.T
    win_rate = np.where(games.sum(1) > 0, wins.sum(1) / np.maximum(games.sum(1), 1e-12), np.nan)
    order = np.argsort(-strength)
    rank = np.empty(len(models), int)
    rank[order] = np.arange(1, len(models) + 1)
    return xr.Dataset(
        {
            "strength": ("model", strength),
            "ci_low": ("model", np.quantile(boot, alpha, axis=0)),
            "ci_high": ("model", np.quantile(boot, 1 - alpha, axis=0)),
            "win_rate": ("model", win_rate),
            "n_comparisons": ("model", games.sum(1)),
            "rank": ("model", rank),
            "wins": (("model", "opponent"), wins),
        },
        coords={"model": models, "opponent": models},
        attrs={"n_boot": n_boot, "ci": ci, "seed": seed},
    )
