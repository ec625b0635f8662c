"""Published MAD selection rules as pure functions on arrays: defender roles, per-class area bands, confidence.

Two protocols choose the images of a MAD competition (``mine(protocol=...)``):

- ``"mdc"`` (ours, the default): one joint score per image, top-k under
  switchable diversity constraints (:func:`mdc_widgets.mining.select_top_k`).
- ``"ijcv2021"``: the rule of Yan et al., "Exposing semantic segmentation
  failures via maximum discrepancy competition", IJCV 129, 2021 (the SS-C
  set, code ``QTJiebin/MAD_Segmentation``). Each pair is mined twice, once
  with each model as the *defender*. For every object class ``c`` the
  candidates are the images whose defender map contains ``c``; an image stays
  only if the defender's pixel fraction of ``c`` lies within the 25th-75th
  percentile of that fraction over the pool's images that contain ``c`` (per
  class, per defender). Candidates are sorted by discrepancy, largest first,
  and the first ``N`` per class per defender are selected (``N = 20`` for
  PASCAL VOC). For SOD pairs, where no MAD rule is published, the same rule
  runs with one object class, the adaptively binarised salient area (ours).

Picks from the ICLR 2020 MAD ("I am going MAD") are available for every
protocol as options: both models confident on the disputed region
(:func:`disputed_confidence`), a cap per predicted class and each
(class of A, class of B) pair once (see :class:`mdc_widgets.mining.Constraints`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from mdc_widgets.errors import MdcError

__all__ = [
    "DEGENERATE_CONTENT",
    "IJCV2021_BAND",
    "PROTOCOLS",
    "class_fractions",
    "content_fraction",
    "disputed_confidence",
    "disputed_mask",
    "foreground_mask",
    "per_class_quota",
    "select_by_defender",
    "select_ijcv2021",
]

PROTOCOLS = ("mdc", "ijcv2021")
# the IJCV 2021 size band: the defender's class area between these percentiles of the pool
IJCV2021_BAND = (25.0, 75.0)
# a map whose object content (SS non-background, SOD saliency >= 0.5) is below this fraction is "nearly empty"
DEGENERATE_CONTENT = 0.005


def class_fractions(labels: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Pixel fraction of every class in each label map, ``(n, C)`` (rows sum to 1).

    One ``bincount`` over ``sample * C + label`` for the whole batch.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(n, H, W)`` integer label maps.
    num_classes : int or None, optional
        ``C``; None: the largest label plus one.

    Returns
    -------
    numpy.ndarray
        ``(n, C)`` float64 fractions in [0, 1].

    Raises
    ------
    MdcError
        A label is ``num_classes`` or larger.

    Examples
    --------
    >>> labels = np.array([[[0, 1], [1, 2]], [[0, 0], [0, 0]]], np.uint8)
    >>> class_fractions(labels, 3).tolist()
    [[0.25, 0.5, 0.25], [1.0, 0.0, 0.0]]
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    flat = labels.reshape(n, -1).astype(np.intp)
    c = int(num_classes) if num_classes is not None else (int(flat.max()) + 1 if flat.size else 1)
    if flat.size and int(flat.max()) >= c:
        raise MdcError(
            f"A label map holds class {int(flat.max())} but num_classes is {c}; pass the model's class count."
        )
    counts = np.bincount((flat + (np.arange(n) * c)[:, None]).ravel(), minlength=n * c).reshape(n, c)
    return counts / max(1, flat.shape[1])


def foreground_mask(maps: np.ndarray, task: str) -> np.ndarray:
    """Object pixels of ``(n, H, W)`` maps: SS non-background; SOD the adaptively binarised saliency.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(n, H, W)`` uint8 maps: SS labels or SOD saliency 0..255.
    task : {"ss", "sod"}
        What the maps are.

    Returns
    -------
    numpy.ndarray
        ``(n, H, W)`` bool.
    """
    maps = np.asarray(maps)
    if task == "ss":
        return maps > 0
    if maps.dtype == np.uint8:
        # exact integer binarisation: the float path (binarize_saliency) was 60 % of mine() at 320 px
        from mdc_widgets.discrepancy.kernels import binarize_uint8

        return binarize_uint8(maps)
    from mdc_widgets.discrepancy import binarize_saliency

    return np.asarray(binarize_saliency(maps))


def content_fraction(maps: np.ndarray, task: str) -> np.ndarray:
    """How much of each map is confidently an object, ``(n,)``: SS non-background, SOD saliency >= 0.5.

    Unlike the adaptive binarisation (``2 * mean``), the SOD part uses a fixed
    threshold, so an almost black map (faint noise only) has content ~0 and is
    recognised as nearly empty.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(n, H, W)`` uint8 maps: SS labels or SOD saliency 0..255.
    task : {"ss", "sod"}
        What the maps are.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64 fractions in [0, 1].

    Examples
    --------
    >>> sod = np.array([[[3, 5], [0, 250]], [[9, 0], [4, 2]]], np.uint8)
    >>> content_fraction(sod, "sod").tolist()
    [0.25, 0.0]
    """
    maps = np.asarray(maps)
    return ((maps > 0) if task == "ss" else (maps >= 128)).reshape(len(maps), -1).mean(axis=1)


def disputed_mask(a: np.ndarray, b: np.ndarray, task_a: str, task_b: str | None = None) -> np.ndarray:
    """Pixels on which two maps disagree, ``(n, H, W)`` bool.

    Two SS maps disagree where their labels differ; otherwise (SOD pairs,
    cross-task pairs) where their foregrounds (:func:`foreground_mask`) differ.

    Parameters
    ----------
    a : numpy.ndarray
        ``(n, H, W)`` uint8 maps of the first model.
    b : numpy.ndarray
        ``(n, H, W)`` uint8 maps of the second model.
    task_a : {"ss", "sod"}
        The first model's task.
    task_b : {"ss", "sod"} or None, optional
        The second model's task; None: the same as ``task_a``.

    Returns
    -------
    numpy.ndarray
        ``(n, H, W)`` bool.

    Examples
    --------
    >>> a = np.array([[[0, 1], [2, 2]]], np.uint8); b = np.array([[[0, 2], [2, 0]]], np.uint8)
    >>> disputed_mask(a, b, "ss")[0].tolist()
    [[False, True], [False, True]]
    """
    task_b = task_b or task_a
    if task_a == task_b == "ss":
        return np.asarray(a) != np.asarray(b)
    return foreground_mask(a, task_a) != foreground_mask(b, task_b)


def disputed_confidence(
    maps: np.ndarray, tasks: list[str], region: np.ndarray, entropy: np.ndarray | None = None
) -> np.ndarray:
    """Each model's mean confidence over the disputed region, ``(n, M)`` in [0, 1].

    The confidence of a pixel is its saliency confidence ``|2 s - 1|`` for SOD
    maps, and ``1 - entropy`` (the stored, normalised prediction entropy) for SS
    maps, whose class probabilities are not stored; both are 0 for a uniform
    guess and 1 for a certain one. Where the maps do not disagree at all, the
    whole image is the region. This is the ICLR 2020 MAD filter ("both models
    confident") for dense predictions.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(n, M, H, W)`` uint8 predictions (SS labels, SOD saliency 0..255).
    tasks : list of str
        The task of each of the ``M`` models.
    region : numpy.ndarray
        ``(n, H, W)`` bool, the disputed pixels.
    entropy : numpy.ndarray or None, optional
        ``(n, M, H, W)`` normalised entropy; needed for SS models.

    Returns
    -------
    numpy.ndarray
        ``(n, M)`` float64 in [0, 1].

    Raises
    ------
    MdcError
        An SS model is among ``tasks`` and ``entropy`` is None.

    Examples
    --------
    >>> sal = np.array([[[[255, 128], [0, 0]]]], np.uint8)   # one SOD model
    >>> region = np.array([[[True, True], [False, False]]])
    >>> disputed_confidence(sal, ["sod"], region).round(3).tolist()
    [[0.502]]
    """
    maps = np.asarray(maps)
    n, m = maps.shape[:2]
    region = np.asarray(region, bool).reshape(n, -1)
    region = np.where(region.any(axis=1, keepdims=True), region, True)
    weight = region / region.sum(axis=1, keepdims=True)
    out = np.zeros((n, m))
    for j, task in enumerate(tasks):
        if task == "sod":
            conf = np.abs(2 * maps[:, j].reshape(n, -1).astype(np.float32) / 255 - 1)
        else:
            if entropy is None:
                raise MdcError(
                    "The confidence filter needs the SS models' entropy; "
                    "predict with predict_pool(..., RunOptions(entropy=True)) or switch min_confidence off."
                )
            conf = 1 - np.asarray(entropy[:, j], dtype=np.float32).reshape(n, -1)
        out[:, j] = (conf * weight).sum(axis=1)
    return out


def per_class_quota(k: int, n_cells: int) -> int:
    """The IJCV 2021 ``N`` (images per class per defender) scaled to a budget of ``k`` images.

    The paper takes ``N = 20`` for 20 PASCAL classes and two defenders. A small
    pool or a small budget gets ``N = max(1, round(k / n_cells))``, with
    ``n_cells`` the number of (defender, class) cells that have candidates
    (``2 * n_classes_present`` when both defenders see the same classes).

    Parameters
    ----------
    k : int
        The budget of images.
    n_cells : int
        The (defender, class) cells that have candidates.

    Returns
    -------
    int
        ``N``, at least 1.

    References
    ----------
    .. [1] J. Yan, Y. Zhong, Y. Fang, Z. Wang and K. Ma, "Exposing semantic segmentation failures via
           maximum discrepancy competition," International Journal of Computer Vision, 129(5):1768-1786,
           2021. arXiv:2103.00259

    Examples
    --------
    >>> per_class_quota(800, 40), per_class_quota(10, 8), per_class_quota(3, 40)
    (20, 1, 1)
    """
    return max(1, round(k / max(1, n_cells)))


def select_by_defender(
    area_a: np.ndarray,
    area_b: np.ndarray,
    discrepancy: np.ndarray,
    n_per_class: int | None = None,
    *,
    k: int | None = None,
    band: tuple[float, float] | None = IJCV2021_BAND,
    eligible: np.ndarray | None = None,
    secondary: np.ndarray | None = None,
    unique: bool = True,
) -> pd.DataFrame:
    """The role-and-size-band rule on per-class areas: the core of :func:`select_ijcv2021`.

    Parameters
    ----------
    area_a : numpy.ndarray
        ``(n, C)`` pixel fraction of each class in model A's maps; column 0
        (background) is never a candidate class.
    area_b : numpy.ndarray
        ``(n, C)`` the same for model B's maps.
    discrepancy : numpy.ndarray
        ``(n,)`` higher = the models disagree more; NaN never picked.
    n_per_class : int or None, optional
        ``N``, images per class per defender; by default
        :func:`per_class_quota` of ``k``.
    k : int or None, optional
        The budget (needed without ``n_per_class``); the picks are cut to ``k``.
    band : tuple of 2 float or None, optional
        Percentiles ``(low, high)`` of the defender's class area over the
        pool's images that contain the class, inclusive; ``None`` keeps every
        size.
    eligible : numpy.ndarray or None, optional
        ``(n,)`` bool, images allowed at all (other filters), or
        ``(n, 2)``, images allowed with A (column 0) or B (column 1) as the
        defender; the percentiles are still taken over the whole pool.
    secondary : numpy.ndarray or None, optional
        ``(n,)`` tie-break for equal discrepancies, larger first (e.g.
        the disputed area); then pool order.
    unique : bool, optional
        An image is picked once, for its first cell; later cells take
        their next candidate instead (the published code may list an image
        under several classes).

    Returns
    -------
    pandas.DataFrame
        One row per pick in selection order (round-robin over the cells:
        every cell's best, then every cell's second, ...): ``index`` (row of
        the inputs), ``defender`` (0 = A, 1 = B), ``class``, ``discrepancy``,
        ``rank_in_cell`` (0 best). Its ``attrs`` hold ``n_per_class`` and the
        per-cell bands ``bands`` ``{(defender, class): (low, high)}``.

    Raises
    ------
    MdcError
        The areas are not both ``(n, C)``, ``discrepancy`` is not ``(n,)``,
        neither ``n_per_class`` nor ``k`` is given, or ``n_per_class`` < 1.

    References
    ----------
    .. [1] J. Yan, Y. Zhong, Y. Fang, Z. Wang and K. Ma, "Exposing semantic segmentation failures via
           maximum discrepancy competition," International Journal of Computer Vision, 129(5):1768-1786,
           2021. arXiv:2103.00259
    """
    areas = [np.asarray(area_a, np.float64), np.asarray(area_b, np.float64)]
    if areas[0].shape != areas[1].shape or areas[0].ndim != 2:
        raise MdcError(f"area_a and area_b must both be (n, C); got {areas[0].shape} and {areas[1].shape}.")
    n, c = areas[0].shape
    disc = np.asarray(discrepancy, np.float64)
    if disc.shape != (n,):
        raise MdcError(f"discrepancy has shape {disc.shape}; the areas have {n} images.")
    allowed = np.ones((n, 2), bool) if eligible is None else np.asarray(eligible, bool).reshape(n, -1)
    ok = np.isfinite(disc)[:, None] & np.broadcast_to(allowed, (n, 2))
    second = np.zeros(n) if secondary is None else np.nan_to_num(np.asarray(secondary, np.float64))
    # one global order by (discrepancy desc, secondary desc, pool order); each cell keeps its members in it
    order = np.lexsort((np.arange(n), -second, -np.nan_to_num(disc, nan=-np.inf)))

    cells: list[tuple[int, int, np.ndarray]] = []
    bands: dict[tuple[int, int], tuple[float, float]] = {}
    for defender, area in enumerate(areas):
        present = area[:, 1:] > 0
        if band is not None:
            masked = np.where(present, area[:, 1:], np.nan)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # classes nobody predicts: all-NaN columns
                low, high = np.nanpercentile(masked, band, axis=0)
            inside = present & (area[:, 1:] >= low) & (area[:, 1:] <= high)
        else:
            inside = present
        for cls in range(1, c):
            members = inside[order, cls - 1] & ok[order, defender]
            if members.any():
                cells.append((defender, cls, order[members]))
                if band is not None:
                    bands[(defender, cls)] = (float(low[cls - 1]), float(high[cls - 1]))
    if n_per_class is None:
        if k is None:
            raise MdcError("Give n_per_class (N images per class per defender) or a budget k to derive it from.")
        n_per_class = per_class_quota(k, len(cells))
    if n_per_class < 1:
        raise MdcError(f"n_per_class must be at least 1; got {n_per_class}.")

    rows: list[tuple[int, int, int, float, int]] = []
    taken: set[int] = set()
    cursor = [0] * len(cells)
    for rank in range(int(n_per_class)):
        for i, (defender, cls, members) in enumerate(cells):
            while cursor[i] < len(members) and unique and int(members[cursor[i]]) in taken:
                cursor[i] += 1
            if cursor[i] < len(members):
                idx = int(members[cursor[i]])
                cursor[i] += 1
                taken.add(idx)
                rows.append((idx, defender, cls, float(disc[idx]), rank))
    if k is not None:
        rows = rows[: int(k)]
    picks = pd.DataFrame(rows, columns=["index", "defender", "class", "discrepancy", "rank_in_cell"])
    picks.attrs.update(n_per_class=int(n_per_class), bands=bands)
    return picks


def select_ijcv2021(
    maps_a: np.ndarray,
    maps_b: np.ndarray,
    discrepancy: np.ndarray,
    n_per_class: int | None = None,
    *,
    task: str = "ss",
    num_classes: int | None = None,
    k: int | None = None,
    band: tuple[float, float] | None = IJCV2021_BAND,
    eligible: np.ndarray | None = None,
    secondary: np.ndarray | None = None,
    unique: bool = True,
) -> pd.DataFrame:
    """The IJCV 2021 MAD selection of one pair: defender roles, per-class area bands, ``N`` per class per defender.

    ``task="ss"``: the maps are label maps and every non-background class is a
    candidate class (the published rule). ``task="sod"``: the maps are saliency
    maps, and the one "class" is the adaptively binarised salient area (our
    analogue; no SOD MAD rule is published). See :func:`select_by_defender`
    for the other parameters and the returned picks.

    Parameters
    ----------
    maps_a : numpy.ndarray
        ``(n, H, W)`` uint8 maps of model A (labels for ``"ss"``, saliency for ``"sod"``).
    maps_b : numpy.ndarray
        ``(n, H, W)`` uint8 maps of model B.
    discrepancy : numpy.ndarray
        ``(n,)`` higher = the models disagree more; NaN never picked.
    n_per_class : int or None, optional
        ``N``, images per class per defender; by default :func:`per_class_quota` of ``k``.
    task : {"ss", "sod"}, optional
        What the maps are.
    num_classes : int or None, optional
        SS only: ``C``; None: the largest label in either map plus one.
    k : int or None, optional
        The budget (needed without ``n_per_class``); the picks are cut to ``k``.
    band : tuple of 2 float or None, optional
        Percentiles of the defender's class area (:func:`select_by_defender`); None keeps every size.
    eligible : numpy.ndarray or None, optional
        ``(n,)`` or ``(n, 2)`` bool, images allowed (per defender), as for :func:`select_by_defender`.
    secondary : numpy.ndarray or None, optional
        ``(n,)`` tie-break for equal discrepancies, larger first.
    unique : bool, optional
        An image is picked at most once.

    Returns
    -------
    pandas.DataFrame
        The picks, as :func:`select_by_defender` returns them.

    Raises
    ------
    MdcError
        ``task`` is not ``"ss"`` or ``"sod"`` (and as :func:`select_by_defender`
        and :func:`class_fractions`).

    References
    ----------
    .. [1] J. Yan, Y. Zhong, Y. Fang, Z. Wang and K. Ma, "Exposing semantic segmentation failures via
           maximum discrepancy competition," International Journal of Computer Vision, 129(5):1768-1786,
           2021. arXiv:2103.00259

    Examples
    --------
    Roles matter: image 0 is picked because model B sees a mid-sized object
    there, although model A sees nothing.

    >>> a = np.zeros((3, 4, 4), np.uint8); b = np.zeros((3, 4, 4), np.uint8)
    >>> b[0, :2, :2] = 1; a[1, :2, :2] = 1; a[2, :2, :2] = 1; b[2, :2, :2] = 1
    >>> d = np.array([1.0, 0.9, 0.0])
    >>> picks = select_ijcv2021(a, b, d, n_per_class=1, num_classes=2)
    >>> picks[["index", "defender", "class"]].values.tolist()
    [[1, 0, 1], [0, 1, 1]]
    """
    if task not in ("ss", "sod"):
        raise MdcError(f"task must be 'ss' or 'sod'; got {task!r}.")
    if task == "ss":
        if num_classes is None:
            num_classes = int(max(np.max(maps_a, initial=0), np.max(maps_b, initial=0))) + 1
        area_a, area_b = class_fractions(maps_a, num_classes), class_fractions(maps_b, num_classes)
    else:
        salient = [foreground_mask(m, "sod").reshape(len(m), -1).mean(axis=1) for m in (maps_a, maps_b)]
        area_a, area_b = (np.stack([1 - f, f], axis=1) for f in salient)
    return select_by_defender(
        area_a, area_b, discrepancy, n_per_class, k=k, band=band, eligible=eligible, secondary=secondary, unique=unique
    )


def _check_protocol(protocol: Any) -> str:
    if protocol not in PROTOCOLS:
        raise MdcError(f"Unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}.")
    return str(protocol)
