"""The published MAD rankings: the ICLR 2020 eigenvector ranking and gMAD's aggressiveness and resistance.

Every pair is judged on **its own** mined set (the images chosen to separate
those two models), and bootstrap intervals resample **images**, not
comparisons: a replicate draws the mined images with replacement and every
pair's numbers are recomputed from the images it drew.

References
----------
.. [1] Z. Wang and E. P. Simoncelli, "Maximum differentiation (MAD) competition: A methodology for
       comparing computational models of perceptual quantities," Journal of Vision, 8(12):8, 2008.
       https://doi.org/10.1167/8.12.8
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from mdc_widgets.errors import MdcError

__all__ = [
    "attack_success",
    "bootstrap_mad_ranking",
    "gmad_scores",
    "mad_eigenvector",
    "pair_accuracy",
    "role_sets",
]


def mad_eigenvector(accuracy: np.ndarray, max_iter: int = 10_000, tol: float = 1e-12) -> np.ndarray:
    """Global MAD ranking scores from pairwise accuracies (ICLR 2020, "I am going MAD").

    ``B[i, j] = A[i, j] / A[j, i]`` with ``A[i, j]`` the accuracy of model
    ``i`` on the MAD set of the pair ``(i, j)``; the scores are the principal
    eigenvector of ``B`` by power iteration, normalised to sum to 1 (higher =
    better). Pairs that were not compared (NaN) and the diagonal count as
    ``B = 1`` (no evidence either way); a zero accuracy is clipped to 1e-6 so
    the ratio stays finite. ``accuracy`` may be ``(M, M)`` or a stack
    ``(..., M, M)`` (bootstrap replicates).

    Parameters
    ----------
    accuracy : numpy.ndarray
        ``(..., M, M)`` accuracies in [0, 1] (:func:`pair_accuracy`), NaN where not compared.
    max_iter : int, optional
        Cap on power iterations.
    tol : float, optional
        Stop when no score moves by more than this between iterations.

    Returns
    -------
    numpy.ndarray
        ``(..., M)`` float64 scores summing to 1 over the last axis.

    Raises
    ------
    MdcError
        ``accuracy`` is not square in its last two axes.

    References
    ----------
    .. [1] H. Wang, T. Chen, Z. Wang and K. Ma, "I Am Going MAD: Maximum Discrepancy Competition for
           Comparing Classifiers Adaptively," ICLR 2020. arXiv:2002.10648

    Examples
    --------
    Consistent ratios ``B[i, j] = r_i / r_j`` with ``r = (4, 2, 1)`` give the
    eigenvector ``r / 7`` (``B r = 3 r``):

    >>> A = np.array([[np.nan, 0.8, 0.8], [0.4, np.nan, 0.6], [0.2, 0.3, np.nan]])
    >>> (mad_eigenvector(A) * 7).round(6).tolist()
    [4.0, 2.0, 1.0]
    """
    a = np.asarray(accuracy, dtype=np.float64)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise MdcError(f"accuracy must be a square (M, M) matrix (or a stack of them); got shape {a.shape}.")
    a = np.clip(a, 1e-6, None)
    b = a / np.swapaxes(a, -1, -2)
    b = np.where(np.isfinite(b), b, 1.0)
    m = a.shape[-1]
    v = np.full(a.shape[:-1], 1.0 / m)
    for _ in range(max_iter):
        new = np.einsum("...ij,...j->...i", b, v)
        new /= new.sum(-1, keepdims=True)
        done = np.max(np.abs(new - v)) < tol
        v = new
        if done:
            break
    return v


def gmad_scores(attack_wins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """gMAD's aggressiveness and resistance of every model from attack outcomes (Ma et al., TPAMI 2020).

    ``attack_wins[i, j]`` is the fraction of the images mined with ``j`` as the
    defender and ``i`` as the attacker on which the attacker was right (it
    scored better against the ground truth than the defender). A model's
    **aggressiveness** is its mean success as an attacker over the defenders
    it met, ``mean_j attack_wins[i, j]``; its **resistance** is how often it
    held as a defender, ``mean_i (1 - attack_wins[i, j])``. NaN (pairs that did
    not meet, the diagonal) are left out of the means. Stacks ``(..., M, M)``
    work the same.

    Parameters
    ----------
    attack_wins : numpy.ndarray
        ``(..., M, M)`` attacker success fractions in [0, 1] (:func:`attack_success`),
        NaN where the pair did not meet.

    Returns
    -------
    aggressiveness : numpy.ndarray
        ``(..., M)`` float64 in [0, 1], NaN for a model that attacked nobody.
    resistance : numpy.ndarray
        ``(..., M)`` float64 in [0, 1], NaN for a model that defended against nobody.

    References
    ----------
    .. [1] K. Ma, Q. Wu, Z. Wang, Z. Duanmu, H. Yong, H. Li and L. Zhang, "Group MAD competition - a new
           methodology to compare objective image quality models," CVPR 2016, pp. 1664-1673.

    Examples
    --------
    >>> wins = np.array([[np.nan, 0.75, 1.0], [0.25, np.nan, 0.5], [0.0, 0.5, np.nan]])
    >>> aggressiveness, resistance = gmad_scores(wins)
    >>> aggressiveness.tolist(), resistance.tolist()
    ([0.875, 0.375, 0.25], [0.875, 0.375, 0.25])
    """
    w = np.asarray(attack_wins, dtype=np.float64)
    eye = np.eye(w.shape[-1], dtype=bool)
    w = np.where(eye, np.nan, w)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model that met nobody: NaN
        return np.nanmean(w, axis=-1), np.nanmean(1 - w, axis=-2)


def _index(models: Sequence[str], sample_ids: Sequence[str], sets: Mapping[tuple[str, str], Sequence[str]]):
    model_at = {m: i for i, m in enumerate(models)}
    sample_at = {s: i for i, s in enumerate(sample_ids)}
    out = []
    for (first, second), ids in sets.items():
        for name in (first, second):
            if name not in model_at:
                raise MdcError(f"Model {name!r} of a MAD set has no per-image scores (models: {list(models)}).")
        missing = [s for s in ids if str(s) not in sample_at]
        if missing:
            raise MdcError(
                f"{len(missing)} images of the MAD set of {(first, second)} have no per-image scores, "
                f"e.g. {missing[0]!r}; evaluate them first."
            )
        out.append((model_at[first], model_at[second], np.array([sample_at[str(s)] for s in ids], dtype=np.intp)))
    return out


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    total = weights.sum(-1)
    return np.where(total > 0, (weights * values).sum(-1) / np.where(total > 0, total, 1), np.nan)


def pair_accuracy(
    per_image_scores: xr.DataArray,
    pair_sets: Mapping[tuple[str, str], Sequence[str]],
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """``A[i, j]``: mean per-image score of model ``i`` on the MAD set of the pair ``(i, j)``; NaN if not met.

    ``per_image_scores`` is ``(sample, model)`` (e.g. per-image mIoU against
    ground truth); ``pair_sets`` maps a pair (either order) to its mined sample
    ids; ``counts`` ``(..., sample)`` weighs the images (bootstrap draws).

    Parameters
    ----------
    per_image_scores : xarray.DataArray
        ``(sample, model)`` per-image scores, higher is better; NaN images are left out.
    pair_sets : mapping of {tuple of 2 str: sequence of str}
        Each pair's mined sample ids.
    counts : numpy.ndarray or None, optional
        ``(..., sample)`` image weights; None weighs every image 1.

    Returns
    -------
    numpy.ndarray
        ``(..., M, M)`` float64 accuracies, NaN off the met pairs and on the diagonal.

    References
    ----------
    .. [1] H. Wang, T. Chen, Z. Wang and K. Ma, "I Am Going MAD: Maximum Discrepancy Competition for
           Comparing Classifiers Adaptively," ICLR 2020. arXiv:2002.10648
    """
    scores = per_image_scores.transpose("sample", "model")
    models = [str(m) for m in scores["model"].values]
    values = np.asarray(scores.values, dtype=np.float64)
    weights = np.ones(len(values)) if counts is None else np.asarray(counts, dtype=np.float64)
    out = np.full(weights.shape[:-1] + (len(models), len(models)), np.nan)
    for i, j, idx in _index(models, list(scores["sample"].values.astype(str)), pair_sets):
        w = weights[..., idx]
        for first, second in ((i, j), (j, i)):
            finite = np.isfinite(values[idx, first])
            out[..., first, second] = _weighted_mean(np.nan_to_num(values[idx, first]), w * finite)
    return out


def attack_success(
    per_image_scores: xr.DataArray,
    role_sets: Mapping[tuple[str, str], Sequence[str]],
    counts: np.ndarray | None = None,
    tie_tol: float = 1e-9,
) -> np.ndarray:
    """``wins[i, j]``: fraction of the images with attacker ``i`` and defender ``j`` on which ``i`` scored better.

    ``role_sets`` maps ``(attacker, defender)`` to the sample ids mined with
    that role (see :func:`role_sets`); ties count half.

    Parameters
    ----------
    per_image_scores : xarray.DataArray
        ``(sample, model)`` per-image scores, higher is better.
    role_sets : mapping of {tuple of 2 str: sequence of str}
        ``(attacker, defender)`` to sample ids.
    counts : numpy.ndarray or None, optional
        ``(..., sample)`` image weights; None weighs every image 1.
    tie_tol : float, optional
        Score differences up to this count as a tie.

    Returns
    -------
    numpy.ndarray
        ``(..., M, M)`` float64 in [0, 1], rows attackers, columns defenders; NaN where not met.

    References
    ----------
    .. [1] H. Wang, T. Chen, Z. Wang and K. Ma, "I Am Going MAD: Maximum Discrepancy Competition for
           Comparing Classifiers Adaptively," ICLR 2020. arXiv:2002.10648
    """
    scores = per_image_scores.transpose("sample", "model")
    models = [str(m) for m in scores["model"].values]
    values = np.asarray(scores.values, dtype=np.float64)
    weights = np.ones(len(values)) if counts is None else np.asarray(counts, dtype=np.float64)
    out = np.full(weights.shape[:-1] + (len(models), len(models)), np.nan)
    for attacker, defender, idx in _index(models, list(scores["sample"].values.astype(str)), role_sets):
        diff = values[idx, attacker] - values[idx, defender]
        outcome = np.where(np.abs(diff) <= tie_tol, 0.5, (diff > 0).astype(np.float64))
        finite = np.isfinite(diff)
        out[..., attacker, defender] = _weighted_mean(np.where(finite, outcome, 0.0), weights[..., idx] * finite)
    return out


def role_sets(result: xr.Dataset) -> dict[tuple[str, str], list[str]]:
    """``{(attacker, defender): sample ids}`` of an ``ijcv2021`` mining result (its ``pick_defender``).

    Parameters
    ----------
    result : xarray.Dataset
        A mining result of two models mined with ``protocol="ijcv2021"``.

    Returns
    -------
    dict of {tuple of 2 str: list of str}
        Selected sample ids per ``(attacker, defender)``.

    Raises
    ------
    MdcError
        ``result`` has no ``pick_defender`` (it was not mined with ``ijcv2021``).
    """
    if "pick_defender" not in result:
        raise MdcError("This mining result records no defenders; mine it with protocol='ijcv2021'.")
    models = list(result.attrs.get("group_ss") or result.attrs.get("group_sod") or [])
    selected = result["selected"].values.astype(bool)
    defenders = result["pick_defender"].values.astype(str)
    ids = result["sample"].values.astype(str)
    out: dict[tuple[str, str], list[str]] = {}
    for defender in models:
        attacker = [m for m in models if m != defender]
        if len(attacker) == 1:
            out[(attacker[0], defender)] = ids[selected & (defenders == defender)].tolist()
    return out


def bootstrap_mad_ranking(
    per_image_scores: xr.DataArray,
    pair_sets: Mapping[tuple[str, str], Sequence[str]],
    role_sets: Mapping[tuple[str, str], Sequence[str]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
) -> xr.Dataset:
    """The MAD eigenvector ranking (and gMAD's two, with ``role_sets``), with intervals over resampled images.

    Each replicate draws the union of the mined images with replacement (a
    multinomial count per image) and recomputes every pair's accuracy, and
    attack outcome, on the images of its own set that were drawn.

    Parameters
    ----------
    per_image_scores : xarray.DataArray
        ``(sample, model)`` per-image scores against ground truth, higher is better.
    pair_sets : mapping of {tuple of 2 str: sequence of str}
        Each pair's mined sample ids (:func:`pair_accuracy`).
    role_sets : mapping of {tuple of 2 str: sequence of str} or None, optional
        ``(attacker, defender)`` sample ids (:func:`role_sets`); adds the gMAD scores.
    n_boot : int, optional
        Bootstrap replicates.
    seed : int, optional
        Seeds the resampling.
    ci : float, optional
        Interval coverage in (0, 1).

    Returns
    -------
    xr.Dataset
        Along ``model``: ``mad_score`` (eigenvector, sums to 1), ``rank``,
        ``mad_ci_low``/``mad_ci_high``, and with ``role_sets``
        ``aggressiveness``, ``resistance`` and their intervals; ``accuracy``
        ``(model, opponent)`` is ``A``.

    Raises
    ------
    MdcError
        ``pair_sets`` is empty, or a set names a model or image without per-image scores.
    """
    if not pair_sets:
        raise MdcError("No MAD sets to rank from; mine each pair first and pass {(a, b): sample ids}.")
    scores = per_image_scores.transpose("sample", "model")
    models = [str(m) for m in scores["model"].values]
    all_sets = [pair_sets] + ([role_sets] if role_sets else [])
    used = sorted({str(s) for sets in all_sets for ids in sets.values() for s in ids})
    for sets in all_sets:
        _index(models, list(scores["sample"].values.astype(str)), sets)  # names what is missing
    scores = scores.sel(sample=used)
    accuracy = pair_accuracy(scores, pair_sets)
    score = mad_eigenvector(accuracy)
    counts = np.random.default_rng(seed).multinomial(len(used), np.full(len(used), 1 / len(used)), size=n_boot)
    boot = mad_eigenvector(pair_accuracy(scores, pair_sets, counts))
    alpha = (1 - ci) / 2
    order = np.argsort(-score, kind="stable")
    rank = np.empty(len(models), int)
    rank[order] = np.arange(1, len(models) + 1)
    data = {
        "mad_score": ("model", score),
        "mad_ci_low": ("model", np.nanquantile(boot, alpha, axis=0)),
        "mad_ci_high": ("model", np.nanquantile(boot, 1 - alpha, axis=0)),
        "rank": ("model", rank),
        "accuracy": (("model", "opponent"), accuracy),
    }
    if role_sets:
        aggressiveness, resistance = gmad_scores(attack_success(scores, role_sets))
        boot_a, boot_r = gmad_scores(attack_success(scores, role_sets, counts))
        for name, value, replicates in (("aggressiveness", aggressiveness, boot_a), ("resistance", resistance, boot_r)):
            data[name] = ("model", value)
            data[f"{name}_ci_low"] = ("model", np.nanquantile(replicates, alpha, axis=0))
            data[f"{name}_ci_high"] = ("model", np.nanquantile(replicates, 1 - alpha, axis=0))
    return xr.Dataset(
        data,
        coords={"model": models, "opponent": models},
        attrs={"n_boot": n_boot, "ci": ci, "seed": seed, "n_images": len(used), "resampled": "images"},
    )
