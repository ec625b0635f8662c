"""The joint MAD score: rank-normalised intra- and cross-task discrepancies, weighted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations, product
from typing import Any

import numpy as np
import xarray as xr
from scipy.stats import rankdata

from mdc_widgets.errors import MdcError, UnknownModelError

__all__ = [
    "FUSIONS",
    "KINDS",
    "CompetitionGroup",
    "Weights",
    "fuse",
    "group_pairs",
    "joint_score",
    "minmax_normalize",
    "rank_normalize",
]

# how each pair's discrepancy is put on a common scale before the terms are weighted
FUSIONS = ("rank", "raw", "minmax")
# the kinds of competition: one term each, or all three terms together
KINDS = ("ss", "sod", "cross", "joint")


@dataclass(frozen=True)
class CompetitionGroup:
    """The competitors of one MAD competition: any number of SS and of SOD models.

    ``ss=("a", "b")`` makes the intra-task SS term, ``sod=("p", "q")`` the SOD
    term, and every (SS model, SOD model) pair of the group the cross-task term.
    With more than two models of a task, the task's term averages the
    rank-normalised discrepancy of all its pairs (as the cross term does). A
    single-task competition leaves the other task empty.

    Parameters
    ----------
    ss : tuple of str, optional
        The SS models, distinct (any sequence is turned into a tuple).
    sod : tuple of str, optional
        The SOD models, distinct.

    Raises
    ------
    MdcError
        A model is named twice within a task, or the group has no model.

    Examples
    --------
    >>> g = CompetitionGroup(ss=("mw_unet_ss", "mw_fcn_ss"), sod=("mw_unet_sod", "mw_vst_sod"))
    >>> g.cross_pairs[0]
    ('mw_unet_ss', 'mw_unet_sod')
    >>> g.key
    'mw_unet_ss-mw_fcn_ss--mw_unet_sod-mw_vst_sod'
    """

    ss: tuple[str, ...] = ()
    sod: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ss", tuple(self.ss or ()))
        object.__setattr__(self, "sod", tuple(self.sod or ()))
        for task, names in (("ss", self.ss), ("sod", self.sod)):
            if len(set(names)) != len(names):
                raise MdcError(f"A competition group takes distinct {task.upper()} models; {names} names one twice.")
        if not self.ss and not self.sod:
            raise MdcError("A competition group needs at least one model; pass ss=(...) or sod=(...).")

    @property
    def models(self) -> tuple[str, ...]:
        """Every model of the group, SS models first."""
        return self.ss + self.sod

    @property
    def cross_pairs(self) -> list[tuple[str, str]]:
        """Every (SS model, SOD model) pair: the pairs of the cross-task term."""
        return list(product(self.ss, self.sod))

    def intra_pairs(self, task: str) -> list[tuple[str, str]]:
        """Every pair of the group's models of ``task`` (``"ss"`` or ``"sod"``), in the group's order.

        Parameters
        ----------
        task : {"ss", "sod"}
            Whose pairs.

        Returns
        -------
        list of tuple of 2 str
            ``(model_a, model_b)`` pairs; empty with fewer than two models of ``task``.
        """
        return list(combinations(self.ss if task == "ss" else self.sod, 2))

    @property
    def key(self) -> str:
        """A file-safe name of the group: its SS models, ``--``, its SOD models."""
        return "--".join("-".join(names) for names in (self.ss, self.sod) if names)


def group_pairs(group: CompetitionGroup) -> list[tuple[str, str, str]]:
    """The compared pairs of a group as ``(model_a, model_b, kind)``: SS pairs, SOD pairs, cross pairs.

    Parameters
    ----------
    group : CompetitionGroup
        The competitors.

    Returns
    -------
    list of tuple of 3 str
        ``(model_a, model_b, kind)`` with ``kind`` ``"ss"``, ``"sod"`` or ``"cross"``.

    Examples
    --------
    >>> group_pairs(CompetitionGroup(ss=("a", "b"), sod=("p",)))
    [('a', 'b', 'ss'), ('a', 'p', 'cross'), ('b', 'p', 'cross')]
    """
    pairs = [(a, b, task) for task in ("ss", "sod") for a, b in group.intra_pairs(task)]
    pairs += [(a, b, "cross") for a, b in group.cross_pairs]
    return pairs


@dataclass(frozen=True)
class Weights:
    """Weights of the SS, SOD and cross-task terms of the joint score.

    Single-task MAD is ``Weights.for_kind("ss")``, i.e. ``Weights(ss=1, sod=0,
    cross=0)`` (or the SOD twin).

    Parameters
    ----------
    ss : float, optional
        Weight of the SS term, >= 0.
    sod : float, optional
        Weight of the SOD term, >= 0.
    cross : float, optional
        Weight of the cross-task term, >= 0.

    Raises
    ------
    MdcError
        A weight is negative, or all three are zero.

    Examples
    --------
    >>> Weights.for_kind("sod")
    Weights(ss=0.0, sod=1.0, cross=0.0)
    >>> Weights.coerce([1, 1, 2]) == Weights.coerce({"ss": 1, "sod": 1, "cross": 2}) == Weights(1, 1, 2)
    True
    """

    ss: float = 1.0
    sod: float = 1.0
    cross: float = 1.0

    def __post_init__(self) -> None:
        if min(self.ss, self.sod, self.cross) < 0 or self.ss + self.sod + self.cross <= 0:
            raise MdcError(f"Weights must be non-negative and not all zero; got {asdict(self)}.")

    @classmethod
    def for_kind(cls, kind: str) -> Weights:
        """The natural weights of a kind of competition: weight 1 on its term(s), 0 on the others.

        Parameters
        ----------
        kind : {"ss", "sod", "cross", "joint"}
            ``"ss"``, ``"sod"`` or ``"cross"`` (one term), or ``"joint"`` (all three).

        Returns
        -------
        Weights
            1 on the kind's term (all three for ``"joint"``), 0 elsewhere.

        Raises
        ------
        MdcError
            ``kind`` is not one of :data:`KINDS`.
        """
        if kind not in KINDS:
            raise MdcError(f"Unknown kind of competition {kind!r}; use one of {', '.join(KINDS)}.")
        if kind == "joint":
            return cls(1.0, 1.0, 1.0)
        return cls(**{term: float(term == kind) for term in ("ss", "sod", "cross")})

    @classmethod
    def coerce(cls, weights: Weights | Mapping[str, float] | Sequence[float]) -> Weights:
        """``weights`` as :class:`Weights`: itself, a ``{ss, sod, cross}`` mapping or an ``(ss, sod, cross)`` triple.

        Parameters
        ----------
        weights : Weights or mapping of {str: float} or sequence of float
            What a caller, a notebook parameter (``-p weights "[1, 1, 2]"``) or a
            YAML file holds.

        Returns
        -------
        Weights
            ``weights`` itself or a new instance.

        Raises
        ------
        MdcError
            A mapping has keys other than ``ss``, ``sod`` and ``cross``, or a
            sequence does not hold three numbers.
        """
        if isinstance(weights, Weights):
            return weights
        if isinstance(weights, Mapping):
            unknown = set(weights) - {"ss", "sod", "cross"}
            if unknown:
                raise MdcError(f"Weights take the keys ss, sod and cross; got {sorted(map(str, unknown))}.")
            return cls(**{k: float(v) for k, v in weights.items()})
        values = list(weights)
        if len(values) != 3:
            raise MdcError(f"Weights are three numbers (ss, sod, cross); got {values!r}.")
        return cls(*(float(v) for v in values))

    @property
    def terms(self) -> tuple[str, ...]:
        """The terms with a positive weight, in the order ss, sod, cross."""
        return tuple(term for term, value in self.as_dict().items() if value > 0)

    def as_dict(self) -> dict[str, float]:
        """``{"ss": w, "sod": w, "cross": w}`` (what the result attrs store as ``weight_<term>``)."""
        return asdict(self)


def rank_normalize(values: Any, dim: str = "sample") -> Any:
    """Percentile rank of each value among all values, in (0, 1]; ties share a rank.

    Rank normalisation puts discrepancy measures with different scales (1 - mIoU,
    1 - IoU) on one footing before they are weighted. NaN (an undecodable image)
    gets rank 0, so it is never selected.

    Parameters
    ----------
    values : numpy.ndarray or xarray.DataArray
        Values to rank; NaN allowed.
    dim : str, optional
        For a DataArray of more than one dimension: rank along this one.

    Returns
    -------
    numpy.ndarray or xarray.DataArray
        float64 ranks in (0, 1], 0 for NaN, the kind and shape of ``values``.

    Examples
    --------
    >>> rank_normalize(np.array([0.1, 0.5, 0.5, 0.9]))
    array([0.25 , 0.625, 0.625, 1.   ])
    """
    if isinstance(values, xr.DataArray):
        axis = values.get_axis_num(dim)
        return values.copy(
            data=rank_normalize(values.values, dim)
            if values.ndim == 1
            else np.apply_along_axis(rank_normalize, axis, values.values)
        )
    arr = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(arr)
    out = np.zeros_like(arr)
    if finite.any():
        out[finite] = rankdata(arr[finite], method="average") / finite.sum()
    return out


def minmax_normalize(values: Any) -> np.ndarray:
    """Min-max stretch of the finite values to [0, 1] (a constant array maps to 0); NaN stays NaN.

    Parameters
    ----------
    values : array_like
        Values to stretch; NaN allowed.

    Returns
    -------
    numpy.ndarray
        float64 in [0, 1], the shape of ``values``.

    Examples
    --------
    >>> minmax_normalize(np.array([0.2, 0.4, np.nan, 0.6])).round(3).tolist()
    [0.0, 0.5, nan, 1.0]
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(arr)
    if not finite.any():
        return arr.copy()
    low, high = arr[finite].min(), arr[finite].max()
    return (arr - low) / (high - low) if high > low else np.where(finite, 0.0, np.nan)


def fuse(values: np.ndarray, fusion: str = "rank") -> np.ndarray:
    """Put one pair's discrepancies ``(sample,)`` on the scale of the joint score.

    ``"rank"`` (ours, the default): percentile rank over the pool
    (:func:`rank_normalize`; NaN -> 0), so measures of different scales weigh
    alike but large raw gaps are flattened; ``"raw"``: the discrepancy itself
    (as the published single-task MAD sorts, NaN -> 0); ``"minmax"``: stretched
    to [0, 1] over the pool (NaN -> 0).

    Parameters
    ----------
    values : numpy.ndarray
        ``(sample,)`` raw discrepancies; NaN for an invalid image.
    fusion : {"rank", "raw", "minmax"}, optional
        The scale.

    Returns
    -------
    numpy.ndarray
        ``(sample,)`` float64 without NaN.

    Raises
    ------
    MdcError
        ``fusion`` is not one of :data:`FUSIONS`.

    Examples
    --------
    >>> v = np.array([0.1, 0.2, 0.9])
    >>> fuse(v, "rank").round(3).tolist(), fuse(v, "minmax").round(3).tolist()
    ([0.333, 0.667, 1.0], [0.0, 0.125, 1.0])
    """
    if fusion == "rank":
        return rank_normalize(values)
    if fusion == "raw":
        return np.nan_to_num(np.asarray(values, dtype=np.float64))
    if fusion == "minmax":
        return np.nan_to_num(minmax_normalize(values))
    raise MdcError(f"Unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}.")


def _pair(discrepancy: xr.DataArray, a: str, b: str) -> xr.DataArray:
    known = [str(m) for m in discrepancy["model_a"].values]
    for name in (a, b):
        if name not in known:
            raise UnknownModelError(
                f"Model {name!r} has no predictions in this discrepancy matrix (it has {known}); "
                "run predict_pool with it first."
            )
    return discrepancy.sel(model_a=a, model_b=b, drop=True)


def joint_score(
    discrepancy: xr.DataArray,
    group: CompetitionGroup,
    weights: Weights = Weights(),
    valid: xr.DataArray | None = None,
    fusion: str = "rank",
) -> xr.Dataset:
    """Score every image of the pool for one competition group.

    ``score = w_ss * mean_pairs r(d_ss) + w_sod * mean_pairs r(d_sod) + w_x * mean_pairs r(d_x)``
    with ``r`` the percentile rank over the pool (one pair per task in the
    classic two-model competition), or another scale (``fusion``, see
    :func:`fuse`). Terms of a task the group does not have contribute nothing.
    The raw ``d_*`` are the means over the term's pairs.

    Parameters
    ----------
    discrepancy : xarray.DataArray
        ``(sample, model_a, model_b)`` from
        :func:`mdc_widgets.discrepancy.compute_discrepancies`.
    group : CompetitionGroup
        The competitors.
    weights : Weights, optional
        The user's weights.
    valid : xarray.DataArray or None, optional
        Optional ``(sample,)`` bool; invalid images score NaN.
    fusion : str, optional
        ``"rank"`` (default), ``"raw"`` or ``"minmax"`` (:func:`fuse`).

    Returns
    -------
    xr.Dataset
        ``score``, ``term_ss``, ``term_sod``, ``term_cross`` (rank-normalised)
        and the raw ``d_ss``, ``d_sod``, ``d_cross`` (mean over cross pairs),
        all along ``sample``.

    Raises
    ------
    MdcError
        ``fusion`` is not one of :data:`FUSIONS`.
    UnknownModelError
        A model of ``group`` is not in ``discrepancy``.
    """
    if fusion not in FUSIONS:
        raise MdcError(f"Unknown fusion {fusion!r}; use one of {', '.join(FUSIONS)}.")
    n = discrepancy.sizes["sample"]
    nan = np.full(n, np.nan)
    mask = np.ones(n, bool) if valid is None else np.asarray(valid, bool)

    def masked(arr: np.ndarray) -> np.ndarray:
        return np.where(mask, arr, np.nan)

    raw = {"ss": nan, "sod": nan, "cross": nan}
    terms = {"ss": np.zeros(n), "sod": np.zeros(n), "cross": np.zeros(n)}
    pairs = {"ss": group.intra_pairs("ss"), "sod": group.intra_pairs("sod"), "cross": group.cross_pairs}
    for term, term_pairs in pairs.items():
        if not term_pairs:
            continue
        values = np.stack([masked(_pair(discrepancy, a, b).values) for a, b in term_pairs])
        raw[term] = values.mean(axis=0)
        terms[term] = np.stack([fuse(v, fusion) for v in values]).mean(axis=0)
    w = weights.as_dict()
    score = sum(w[t] * terms[t] for t in terms)
    score = np.where(mask, score, np.nan)
    sample = discrepancy["sample"]
    return xr.Dataset(
        {
            "score": ("sample", score),
            **{f"term_{t}": ("sample", np.where(mask, terms[t], np.nan)) for t in terms},
            **{f"d_{t}": ("sample", raw[t]) for t in raw},
        },
        coords={"sample": sample},
        attrs={
            "group_ss": list(group.ss),
            "group_sod": list(group.sod),
            "fusion": fusion,
            **{f"weight_{k}": v for k, v in w.items()},
        },
    )
