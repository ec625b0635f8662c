"""Top-k selection under switchable diversity constraints, with a report of what each removed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets.errors import MdcError

__all__ = ["Constraints", "Selection", "select_top_k", "thumbnail_features"]


@dataclass(frozen=True)
class Constraints:
    """Diversity constraints of the selection; ``None`` switches one off.

    Attributes
    ----------
    foreground_area : (low, high) bounds on the mean predicted foreground
        fraction of the group's models; outside them an image is near-empty
        or full-frame, where a disagreement says little about the object.
    dedup_threshold : cosine similarity of image features above which a
        lower-scored image counts as a near-duplicate of a selected one.
    max_per_class : at most this many selected images per dominant
        predicted class.
    exclude : sample ids never to select (e.g. picked by another group, for
        disjoint sets).
    """

    foreground_area: tuple[float, float] | None = (0.005, 0.95)
    dedup_threshold: float | None = 0.97
    max_per_class: int | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)

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

    @classmethod
    def none(cls) -> "Constraints":
        """No constraint at all: plain top-k."""
        return cls(foreground_area=None, dedup_threshold=None, max_per_class=None)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exclude"] = sorted(self.exclude)
        return d


@dataclass
class Selection:
    """The selected samples, best first, and why better-scored ones were skipped."""

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


def select_top_k(
    score: xr.DataArray,
    k: int,
    constraints: Constraints = Constraints(),
    *,
    foreground_area: xr.DataArray | np.ndarray | None = None,
    features: np.ndarray | None = None,
    dominant_class: xr.DataArray | np.ndarray | None = None,
    tiebreak: xr.DataArray | np.ndarray | None = None,
) -> Selection:
    """Pick the ``k`` best-scored samples that satisfy every switched-on constraint.

    Only the best candidates are examined (a partial selection by
    ``argpartition``, widened when constraints reject many), never a full
    sort of the pool.

    Parameters
    ----------
    score : ``(sample,)`` higher is harder; NaN is never selected
    k : how many to select
    constraints : see :class:`Constraints`
    foreground_area : ``(sample,)`` fraction, needed by ``foreground_area``
    features : ``(sample, d)`` L2-normalised, needed by ``dedup_threshold``
    dominant_class : ``(sample,)`` int, needed by ``max_per_class``
    tiebreak : ``(sample,)`` secondary key for equal scores (higher first); without
        it ties keep pool order

    Examples
    --------
    >>> s = xr.DataArray([0.9, 0.8, 0.7, 0.1], dims="sample", coords={"sample": list("abcd")})
    >>> sel = select_top_k(s, 2, Constraints(foreground_area=None, dedup_threshold=None,
    ...                                     max_per_class=1),
    ...                    dominant_class=np.array([1, 1, 2, 2]))
    >>> sel.samples, sel.report()
    (['a', 'c'], {'excluded': 0, 'foreground_area': 0, 'class_quota': 1, 'near_duplicate': 0})
    """
    if k < 1:
        raise MdcError(f"k must be at least 1; got {k}.")
    values = np.asarray(score.values if isinstance(score, xr.DataArray) else score, dtype=np.float64)
    ids = (np.array([str(s) for s in score["sample"].values]) if isinstance(score, xr.DataArray)
           else np.arange(len(values)).astype(str))
    n = len(values)

    def need(name: str, arr: Any) -> np.ndarray:
        if arr is None:
            raise MdcError(f"The {name} constraint is on but no {name} values were given; pass them or switch it off.")
        arr = np.asarray(arr.values if isinstance(arr, xr.DataArray) else arr)
        if len(arr) != n:
            raise MdcError(f"{name} has {len(arr)} values for {n} samples.")
        return arr

    reasons = np.zeros(n, dtype=np.int8)  # 0 ok, else index into names below (vectorised filters)
    names = ["ok", "excluded", "foreground_area", "class_quota", "near_duplicate"]
    if constraints.exclude:
        reasons[np.isin(ids, list(constraints.exclude))] = 1
    if constraints.foreground_area is not None:
        area = need("foreground_area", foreground_area).astype(np.float64)
        low, high = constraints.foreground_area
        reasons[(reasons == 0) & ((area < low) | (area > high))] = 2
    classes = need("dominant_class", dominant_class).astype(np.int64) if constraints.max_per_class else None
    feats = need("features", features).astype(np.float32) if constraints.dedup_threshold is not None else None

    secondary = (np.nan_to_num(np.asarray(tiebreak.values if isinstance(tiebreak, xr.DataArray) else tiebreak,
                                          dtype=np.float64)) if tiebreak is not None else np.zeros(n))
    finite = np.flatnonzero(np.isfinite(values))
    skipped: dict[str, list[str]] = {name: [] for name in names[1:]}
    chosen: list[int] = []
    class_counts: dict[int, int] = {}
    examined: set[int] = set()
    width = min(len(finite), max(4 * k, 64))
    while len(chosen) < k and len(examined) < len(finite):
        # partial selection of the next block of best candidates
        top = finite[np.argpartition(-values[finite], width - 1)[:width]] if width < len(finite) else finite
        order = top[np.lexsort((top, -secondary[top], -values[top]))]
        for idx in order:
            if int(idx) in examined:
                continue
            examined.add(int(idx))
            reason = int(reasons[idx])
            if reason == 0 and classes is not None and class_counts.get(int(classes[idx]), 0) >= constraints.max_per_class:
                reason = 3
            if reason == 0 and feats is not None and chosen:
                if float((feats[chosen] @ feats[idx]).max()) > constraints.dedup_threshold:
                    reason = 4
            if reason:
                skipped[names[reason]].append(str(ids[idx]))
                continue
            chosen.append(int(idx))
            if classes is not None:
                class_counts[int(classes[idx])] = class_counts.get(int(classes[idx]), 0) + 1
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
