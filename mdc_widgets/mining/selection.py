"""Top-k selection under switchable diversity constraints, with a report of what each removed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError

__all__ = ["Constraints", "Selection", "pool_features", "select_top_k", "thumbnail_features"]


@dataclass(frozen=True)
class Constraints:
    """Diversity constraints of the selection; ``None`` switches one off.

    Parameters
    ----------
    foreground_area : tuple of 2 float or None, optional
        (low, high) bounds on the mean predicted foreground
        fraction of the group's models; outside them an image is near-empty
        or full-frame, where a disagreement says little about the object.
    dedup_threshold : float or None, optional
        Cosine similarity of image features above which a
        lower-scored image counts as a near-duplicate of a selected one.
    max_per_class : int or None, optional
        At most this many selected images per dominant
        predicted class (with the classes of several models, per class
        predicted by any of them: the ICLR 2020 MAD cap, about 3).
    exclude : frozenset of str, optional
        Sample ids never to select (e.g. picked by another group, for
        disjoint sets).
    min_content : float or None, optional
        Minimum content fraction of *every* model's map
        (:func:`mdc_widgets.mining.protocols.content_fraction`: SS
        non-background, SOD saliency >= 0.5); below it a map is nearly empty
        and the "disagreement" is junk.
    min_confidence : float or None, optional
        Minimum mean confidence of *every* model over the
        disputed region (the ICLR 2020 MAD filter, "both models confident";
        see :func:`mdc_widgets.mining.protocols.disputed_confidence`).
    unique_class_pairs : bool, optional
        Each (class of A, class of B) pair of dominant
        predicted classes at most once (ICLR 2020 MAD).

    Raises
    ------
    MdcError
        A bound is out of range: ``foreground_area`` not ``0 <= low < high <= 1``,
        ``dedup_threshold`` outside [-1, 1], ``max_per_class`` < 1, or
        ``min_content``/``min_confidence`` outside [0, 1].
    """

    foreground_area: tuple[float, float] | None = (0.005, 0.95)
    dedup_threshold: float | None = 0.97
    max_per_class: int | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)
    min_content: float | None = None
    min_confidence: float | None = None
    unique_class_pairs: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude", frozenset(str(s) for s in self.exclude))
        if self.foreground_area is not None:
            low, high = self.foreground_area
            if not 0 <= low < high <= 1:
                raise MdcError(f"foreground_area must be 0 <= low < high <= 1; got {self.foreground_area}.")
            object.__setattr__(self, "foreground_area", (float(low), float(high)))
        if self.dedup_threshold is not None and not -1 <= self.dedup_threshold <= 1:
            raise MdcError(f"dedup_threshold is a cosine similarity in [-1, 1]; got {self.dedup_threshold}.")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise MdcError(f"max_per_class must be at least 1; got {self.max_per_class}.")
        for name in ("min_content", "min_confidence"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise MdcError(f"{name} is a fraction in [0, 1] (None switches it off); got {value}.")

    @classmethod
    def none(cls) -> Constraints:
        """No constraint at all: plain top-k."""
        return cls(foreground_area=None, dedup_threshold=None, max_per_class=None)

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, JSON-able for the result attrs.

        Returns
        -------
        dict of {str: object}
            Every field, ``exclude`` as a sorted list.
        """
        d = asdict(self)
        d["exclude"] = sorted(self.exclude)
        return d


@dataclass
class Selection:
    """The selected samples, best first, and why better-scored ones were skipped.

    Parameters
    ----------
    samples : list of str
        The selected sample ids, best first.
    indices : numpy.ndarray
        ``(len(samples),)`` int positions of the selected samples in the pool.
    scores : numpy.ndarray
        ``(len(samples),)`` their scores.
    skipped : dict of {str: list of str}
        For each constraint, the better-scored sample ids it removed.
    """

    samples: list[str]
    indices: np.ndarray
    scores: np.ndarray
    skipped: dict[str, list[str]]

    def report(self) -> dict[str, int]:
        """How many better-scored images each constraint removed."""
        return {name: len(ids) for name, ids in self.skipped.items()}

    def __len__(self) -> int:
        return len(self.samples)


def thumbnail_features(images: np.ndarray, size: int = 8) -> np.ndarray:
    """Mean-centred, L2-normalised grey thumbnails ``(n, size*size)`` for near-duplicate tests.

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, H, W, C)`` colour or ``(n, H, W)`` grey images, any numeric dtype.
    size : int, optional
        Thumbnail side in pixels.

    Returns
    -------
    numpy.ndarray
        ``(n, size * size)`` float32 rows of unit norm.

    Examples
    --------
    >>> imgs = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    >>> f = thumbnail_features(imgs)
    >>> f.shape, np.allclose(np.linalg.norm(f, axis=1), 1)
    ((3, 64), True)
    """
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(images)).float()
    if x.ndim == 4:  # (n, H, W, C) -> grey
        x = x.mean(dim=-1)
    thumbs = F.adaptive_avg_pool2d(x[:, None], size).flatten(1)
    thumbs = thumbs - thumbs.mean(dim=1, keepdim=True)
    norm = thumbs.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return (thumbs / norm).numpy()


def pool_features(pool: Pool, step: int = 1024) -> np.ndarray:
    """Thumbnail features ``(sample, d)`` float32 of the pool's images, in pool order, read block by block.

    The one computation of the near-duplicate features of a pool
    (:func:`~mdc_widgets.mining.thumbnail_features` of each image): compute
    them once and pass them as ``features`` to mine several groups of one
    pool without reading its images again (``Session`` caches them).

    Parameters
    ----------
    pool : Pool
        Any pool (:func:`mdc_widgets.data.open_pool`).
    step : int, optional
        Images read at once; memory stays about ``step`` images whatever the
        pool size.

    Examples
    --------
    >>> from mdc_widgets.data import open_pool
    >>> pool_features(open_pool("miniworld", n=3, image_size=32)).shape
    (3, 64)
    """
    features = None
    for lo in range(0, len(pool), step):
        block = thumbnail_features(pool.read_images(lo, min(lo + step, len(pool)))[0])
        if features is None:
            features = np.empty((len(pool), block.shape[1]), dtype=np.float32)
        features[lo : lo + len(block)] = block
    return features if features is not None else np.zeros((0, 64), np.float32)


def _feature_rows(features: Any) -> Callable[[Any], np.ndarray]:
    """``rows -> (len(rows), d)`` float32 from a feature matrix, or from ``features(indices)`` computed once per row.

    A callable is asked only for the candidates examined (a few times ``k``),
    so near-duplicate suppression costs O(k) memory, not O(pool).
    """
    if not callable(features):
        matrix = np.asarray(features).astype(np.float32, copy=False)
        return lambda rows: matrix[np.asarray(rows, dtype=np.int64)]
    cache: dict[int, np.ndarray] = {}

    def rows_of(rows: Any) -> np.ndarray:
        rows = [int(r) for r in np.asarray(rows, dtype=np.int64).ravel()]
        missing = sorted({r for r in rows if r not in cache})
        if missing:
            computed = np.asarray(features(np.asarray(missing, dtype=np.int64)), dtype=np.float32)
            cache.update(zip(missing, computed))
        return np.stack([cache[r] for r in rows]) if rows else np.zeros((0, 0), np.float32)

    return rows_of


def select_top_k(
    score: xr.DataArray,
    k: int,
    constraints: Constraints = Constraints(),
    *,
    foreground_area: xr.DataArray | np.ndarray | None = None,
    features: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    dominant_class: xr.DataArray | np.ndarray | None = None,
    tiebreak: xr.DataArray | np.ndarray | Sequence[Any] | None = None,
    content: xr.DataArray | np.ndarray | None = None,
    confidence: xr.DataArray | np.ndarray | None = None,
) -> Selection:
    """Pick the ``k`` best-scored samples that satisfy every switched-on constraint.

    Only the best candidates are examined (a partial selection by
    ``argpartition``, widened when constraints reject many), never a full
    sort of the pool.

    Parameters
    ----------
    score : xarray.DataArray
        ``(sample,)`` higher is harder; NaN is never selected.
    k : int
        How many to select.
    constraints : Constraints, optional
        See :class:`Constraints`.
    foreground_area : xarray.DataArray or numpy.ndarray or None, optional
        ``(sample,)`` fraction, needed by ``foreground_area``.
    features : numpy.ndarray or callable or None, optional
        ``(sample, d)`` L2-normalised, needed by ``dedup_threshold``; or a
        callable ``features(indices) -> (len(indices), d)``, asked only for the
        candidates examined (memory O(k) instead of O(pool)).
    dominant_class : xarray.DataArray or numpy.ndarray or None, optional
        ``(sample,)`` int, or ``(sample, m)`` the classes of m
        models; needed by ``max_per_class`` and ``unique_class_pairs``.
    tiebreak : xarray.DataArray or numpy.ndarray or sequence of object or None, optional
        ``(sample,)`` secondary key for equal scores (higher first), or a
        list of such keys, most significant first; then pool order.
    content : xarray.DataArray or numpy.ndarray or None, optional
        ``(sample,)`` the smallest content fraction over the models,
        needed by ``min_content``.
    confidence : xarray.DataArray or numpy.ndarray or None, optional
        ``(sample,)`` the smallest disputed-region confidence over the
        models, needed by ``min_confidence``.

    Raises
    ------
    MdcError
        ``k`` < 1, a switched-on constraint lacks its values (e.g. ``features``
        for ``dedup_threshold``), or a value array does not have one entry per sample.

    Examples
    --------
    >>> s = xr.DataArray([0.9, 0.8, 0.7, 0.1], dims="sample", coords={"sample": list("abcd")})
    >>> sel = select_top_k(s, 2, Constraints(foreground_area=None, dedup_threshold=None,
    ...                                     max_per_class=1),
    ...                    dominant_class=np.array([1, 1, 2, 2]))
    >>> sel.samples, sel.report()["class_quota"]
    (['a', 'c'], 1)
    """
    if k < 1:
        raise MdcError(f"k must be at least 1; got {k}.")
    values = np.asarray(score.values if isinstance(score, xr.DataArray) else score, dtype=np.float64)
    ids = (
        np.array([str(s) for s in score["sample"].values])
        if isinstance(score, xr.DataArray)
        else np.arange(len(values)).astype(str)
    )
    n = len(values)

    def need(name: str, arr: Any) -> np.ndarray:
        if arr is None:
            raise MdcError(f"The {name} constraint is on but no {name} values were given; pass them or switch it off.")
        arr = np.asarray(arr.values if isinstance(arr, xr.DataArray) else arr)
        if len(arr) != n:
            raise MdcError(f"{name} has {len(arr)} values for {n} samples.")
        return arr

    reasons = np.zeros(n, dtype=np.int8)  # 0 ok, else index into names below (vectorised filters)
    names = [
        "ok",
        "excluded",
        "foreground_area",
        "min_content",
        "min_confidence",
        "class_quota",
        "class_pair",
        "near_duplicate",
    ]
    if constraints.exclude:
        reasons[np.isin(ids, list(constraints.exclude))] = 1
    if constraints.foreground_area is not None:
        area = need("foreground_area", foreground_area).astype(np.float64)
        low, high = constraints.foreground_area
        reasons[(reasons == 0) & ((area < low) | (area > high))] = 2
    if constraints.min_content is not None:
        reasons[(reasons == 0) & (need("content", content).astype(np.float64) < constraints.min_content)] = 3
    if constraints.min_confidence is not None:
        low_confidence = need("confidence", confidence).astype(np.float64) < constraints.min_confidence
        reasons[(reasons == 0) & low_confidence] = 4
    classes = (
        need("dominant_class", dominant_class).astype(np.int64).reshape(n, -1)
        if constraints.max_per_class or constraints.unique_class_pairs
        else None
    )
    feature_rows = (
        _feature_rows(features if callable(features) else need("features", features))
        if constraints.dedup_threshold is not None
        else None
    )

    keys = (
        []
        if tiebreak is None
        else ([tiebreak] if np.ndim(getattr(tiebreak, "values", tiebreak)) == 1 else list(tiebreak))
    )
    secondary = [
        np.nan_to_num(np.asarray(key.values if isinstance(key, xr.DataArray) else key, dtype=np.float64))
        for key in keys
    ]
    finite = np.flatnonzero(np.isfinite(values))
    skipped: dict[str, list[str]] = {name: [] for name in names[1:]}
    chosen: list[int] = []
    class_counts: dict[int, int] = {}
    pairs_seen: set[tuple[int, ...]] = set()
    examined: set[int] = set()
    width = min(len(finite), max(4 * k, 64))
    while len(chosen) < k and len(examined) < len(finite):
        # partial selection of the next block of best candidates
        top = finite[np.argpartition(-values[finite], width - 1)[:width]] if width < len(finite) else finite
        # lexsort: the last key is the most significant
        order = top[np.lexsort((top, *[-key[top] for key in reversed(secondary)], -values[top]))]
        if feature_rows is not None:
            feature_rows(order[reasons[order] == 0])  # one read for the block's eligible candidates
        for idx in order:
            if int(idx) in examined:
                continue
            examined.add(int(idx))
            reason = int(reasons[idx])
            own = sorted({int(c) for c in classes[idx]}) if classes is not None else []
            if (
                reason == 0
                and constraints.max_per_class
                and any(class_counts.get(c, 0) >= constraints.max_per_class for c in own)
            ):
                reason = 5
            pair = tuple(sorted(int(c) for c in classes[idx])) if classes is not None else ()
            if reason == 0 and constraints.unique_class_pairs and pair in pairs_seen:
                reason = 6
            if reason == 0 and feature_rows is not None and chosen:
                if float((feature_rows(chosen) @ feature_rows([int(idx)])[0]).max()) > constraints.dedup_threshold:
                    reason = 7
            if reason:
                skipped[names[reason]].append(str(ids[idx]))
                continue
            chosen.append(int(idx))
            pairs_seen.add(pair)
            for c in own:
                class_counts[c] = class_counts.get(c, 0) + 1
            if len(chosen) == k:
                break
        width = min(len(finite), width * 2)
    chosen_arr = np.asarray(chosen, dtype=np.int64)
    return Selection(
        samples=[str(ids[i]) for i in chosen_arr],
        indices=chosen_arr,
        scores=values[chosen_arr],
        skipped=skipped,
    )
