"""A simulated annotator: verdicts from ground-truth metrics, for headless runs and teaching."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.errors import MdcError

__all__ = ["simulate_verdicts"]


def simulate_verdicts(
    scores: xr.DataArray,
    pairs_samples: Mapping[tuple[str, str], Sequence[str]],
    *,
    tie_tol: float = 0.02,
    good: float = 0.7,
    higher_is_better: bool = True,
    noise: float = 0.0,
    seed: int = 0,
) -> pd.DataFrame:
    """The verdict a careful human would give on each (image, pair), read off per-image metrics.

    A model wins when its score beats the other's by more than ``tie_tol``;
    otherwise both are ``"both_fine"`` when their mean score reaches ``good``
    and ``"both_wrong"`` below it. ``noise`` flips that fraction of the a/b
    verdicts at random, to see how a ranking copes with a sloppy annotator.

    Parameters
    ----------
    scores : xarray.DataArray
        Per-image metric ``(sample, model)``, e.g. ``evaluate(...)["miou"]``.
    pairs_samples : mapping of {tuple of 2 str: sequence of str}
        ``{(model_a, model_b): sample ids}`` to judge.
    tie_tol : float, optional
        Score difference below which neither model is better.
    good : float, optional
        Mean score from which a tie counts as both fine.
    higher_is_better : bool, optional
        False for errors such as MAE (``good`` is then an upper bound).
    noise : float, optional
        Fraction of a/b verdicts flipped.
    seed : int, optional
        Seed of the random generator that picks the flipped verdicts.

    Returns
    -------
    pandas.DataFrame
        Columns ``sample, model_a, model_b, verdict``, one row per judged
        (image, pair), pairs in the order given; images where either score is
        NaN are left out. :meth:`LabelStore.extend` takes it as it is.

    Raises
    ------
    MdcError
        When ``noise`` is not in [0, 1].

    Examples
    --------
    >>> s = xr.DataArray([[0.9, 0.5], [0.8, 0.79], [0.3, 0.31]], dims=("sample", "model"),
    ...                  coords={"sample": ["i", "j", "k"], "model": ["A", "B"]})
    >>> simulate_verdicts(s, {("A", "B"): ["i", "j", "k"]})["verdict"].tolist()
    ['a', 'both_fine', 'both_wrong']
    """
    if not 0 <= noise <= 1:
        raise MdcError(f"noise is a fraction in [0, 1]; got {noise}.")
    table = scores.transpose("sample", "model")
    rng = np.random.default_rng(seed)
    frames = []
    for (a, b), ids in pairs_samples.items():
        ids = [str(i) for i in ids]
        sa = table.sel(model=a, sample=ids).values.astype(np.float64)
        sb = table.sel(model=b, sample=ids).values.astype(np.float64)
        sign = 1.0 if higher_is_better else -1.0
        diff = sign * (sa - sb)
        mean = (sa + sb) / 2
        fine = mean >= good if higher_is_better else mean <= good
        verdict = np.where(
            diff > tie_tol, "a", np.where(diff < -tie_tol, "b", np.where(fine, "both_fine", "both_wrong"))
        )
        if noise:
            flip = rng.random(len(verdict)) < noise
            verdict = np.where(flip & (verdict == "a"), "b", np.where(flip & (verdict == "b"), "a", verdict))
        ok = np.isfinite(sa) & np.isfinite(sb)
        frames.append(
            pd.DataFrame(
                {"sample": np.asarray(ids, dtype=object)[ok], "model_a": a, "model_b": b, "verdict": verdict[ok]}
            )
        )
    if not frames:
        return pd.DataFrame(columns=["sample", "model_a", "model_b", "verdict"])
    return pd.concat(frames, ignore_index=True)
