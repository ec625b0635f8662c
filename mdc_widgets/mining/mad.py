"""MAD mining in one call: score a whole pool for a competition group and store it beside the predictions.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets._atomic import atomic_write_dir
from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError
from mdc_widgets.mining.protocols import (
    DEGENERATE_CONTENT,
    IJCV2021_BAND,
    _check_protocol,
    class_fractions,
    content_fraction,
    disputed_confidence,
    disputed_mask,
    foreground_mask,
    select_by_defender,
)
from mdc_widgets.mining.results import mining_path, result_key, selected_samples
from mdc_widgets.mining.score import CompetitionGroup, Weights, joint_score
from mdc_widgets.mining.selection import Constraints, pool_features, select_top_k, thumbnail_features

__all__ = [
    "dominant_class",
    "foreground_fraction",
    "group_statistics",
    "mine",
    "mine_groups",
]


# a block of maps read at once by the pool-wide helpers; memory stays about this whatever the pool size
_BLOCK_BYTES = 8 * 2**20


def _map_blocks(
    predictions: xr.Dataset, models: Sequence[str], block_size: int | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """``(samples, maps (n, M, H, W))`` block by block over the pool, never the whole pool at once.

    Blocks are whole multiples of the store's chunks, so a dask-backed
    (``open_predictions``) pool reads each stored chunk exactly once.
    """
    maps = predictions["prediction"].sel(model=list(models)).transpose("sample", "model", "y", "x")
    n = maps.sizes["sample"]
    if block_size is None:
        per_sample = max(1, int(np.prod(maps.shape[1:])) * maps.dtype.itemsize)
        block_size = max(1, _BLOCK_BYTES // per_sample)
        stored = maps.chunksizes.get("sample") if maps.chunks else None
        if stored:
            block_size = max(1, block_size // stored[0]) * stored[0]
    for lo in range(0, n, block_size):
        samples = slice(lo, min(lo + block_size, n))
        yield samples, np.asarray(maps.isel(sample=samples).values)


def _tasks(predictions: xr.Dataset, models: Sequence[str]) -> list[str]:
    return [str(predictions["task"].sel(model=m).values) for m in models]


def foreground_fraction(predictions: xr.Dataset, models: Sequence[str]) -> xr.DataArray:
    """Mean predicted foreground fraction ``(sample,)`` over ``models``.

    SS foreground is every non-background class; SOD foreground is the
    adaptively binarised saliency map. Streams the maps block by block.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``prediction (sample, model, y, x)`` uint8 with coord ``task (model)``.
    models : sequence of str
        The models to average over.

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 in [0, 1], named ``foreground_fraction``.

    Examples
    --------
    >>> maps = np.zeros((2, 2, 2, 2), np.uint8)  # (sample, model, y, x)
    >>> maps[0, 0, 0] = 3          # SS: half the pixels are foreground
    >>> maps[:, 1, 0, 0] = 255     # SOD: one salient pixel of four
    >>> ds = xr.Dataset({"prediction": (("sample", "model", "y", "x"), maps)},
    ...                 coords={"model": ["a", "p"], "task": ("model", ["ss", "sod"])})
    >>> foreground_fraction(ds, ["a", "p"]).values.tolist()
    [0.375, 0.125]
    """
    from mdc_widgets.discrepancy import binarize_saliency

    tasks = _tasks(predictions, models)
    ss = [i for i, t in enumerate(tasks) if t == "ss"]
    sod = [i for i, t in enumerate(tasks) if t == "sod"]
    fraction = np.zeros(predictions.sizes["sample"], dtype=np.float64)
    for samples, maps in _map_blocks(predictions, models):
        n, _, h, w = maps.shape
        total = np.zeros(n, dtype=np.float64)
        if ss:
            total += (maps[:, ss] > 0).mean(axis=(2, 3)).sum(axis=1)
        if sod:
            binary = binarize_saliency(maps[:, sod].reshape(n * len(sod), h, w))
            total += binary.reshape(n, len(sod), h * w).mean(axis=2).sum(axis=1)
        fraction[samples] = total / len(models)
    return xr.DataArray(
        fraction, dims="sample", coords={"sample": predictions["sample"].values}, name="foreground_fraction"
    )


def dominant_class(predictions: xr.Dataset, model: str) -> xr.DataArray:
    """Most frequent non-background class ``(sample,)`` of an SS model's maps (0 if none).

    Vectorised per block: one ``bincount`` over ``sample * C + label``.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``prediction (sample, model, y, x)`` uint8 labels.
    model : str
        An SS model of ``predictions``.

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` int64 class index, named ``dominant_class``.

    Examples
    --------
    >>> maps = np.array([[[[0, 2], [2, 1]]], [[[0, 0], [0, 0]]]], np.uint8)
    >>> ds = xr.Dataset({"prediction": (("sample", "model", "y", "x"), maps)},
    ...                 coords={"model": ["a"], "task": ("model", ["ss"])})
    >>> dominant_class(ds, "a").values.tolist()
    [2, 0]
    """
    dominant = np.zeros(predictions.sizes["sample"], dtype=np.int64)
    for samples, maps in _map_blocks(predictions, [model]):
        labels = maps[:, 0].reshape(maps.shape[0], -1)
        n_cls = int(labels.max()) + 1 if labels.size else 1
        # bincount needs intp indices (8 bytes a pixel): build them for ~1M pixels at a time
        rows = max(1, 2**20 // max(1, labels.shape[1]))
        for lo in range(0, len(labels), rows):
            part = labels[lo : lo + rows]
            index = part.astype(np.intp)
            index += (np.arange(len(part)) * n_cls)[:, None]
            counts = np.bincount(index.ravel(), minlength=len(part) * n_cls).reshape(len(part), n_cls)
            counts[:, 0] = 0
            dominant[samples.start + lo : samples.start + lo + len(part)] = np.where(
                counts.max(axis=1) > 0, counts.argmax(axis=1), 0
            )
    return xr.DataArray(dominant, dims="sample", coords={"sample": predictions["sample"].values}, name="dominant_class")


def _fused_area(fused: xr.Dataset, group: CompetitionGroup) -> xr.DataArray:
    """``foreground_fraction`` from ``pairwise_statistics``, summed in the same order (SS models, then SOD)."""
    fg = fused["foreground"].sel(model=list(group.models)).values
    tasks = [str(t) for t in fused["task"].sel(model=list(group.models)).values]
    ss = [j for j, t in enumerate(tasks) if t == "ss"]
    sod = [j for j, t in enumerate(tasks) if t == "sod"]
    total = np.zeros(len(fg), np.float64)
    if ss:
        total += fg[:, ss].sum(axis=1)
    if sod:
        total += fg[:, sod].sum(axis=1)
    return xr.DataArray(
        total / len(group.models),
        dims="sample",
        coords={"sample": fused["sample"].values},
        name="foreground_fraction",
    )


def _dominant_of(predictions: xr.Dataset, fused: xr.Dataset | None, model: str) -> xr.DataArray:
    """``dominant_class`` of one SS model, from ``pairwise_statistics`` when it ran."""
    if fused is None:
        return dominant_class(predictions, model)
    values = fused["dominant_class"].sel(model=model).values.astype(np.int64)
    return xr.DataArray(values, dims="sample", coords={"sample": fused["sample"].values}, name="dominant_class")


def _num_classes(predictions: xr.Dataset, model: str) -> int:
    from mdc_widgets.predictions.store import model_classes

    names = model_classes(predictions).get(model)
    return len(names) if names else 256


def group_statistics(
    predictions: xr.Dataset,
    models: Sequence[str],
    *,
    confidence: bool = False,
    class_areas: bool = False,
) -> dict[str, np.ndarray]:
    """Per-image content, disputed area, confidence and class areas of a group's maps, streamed block by block.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``prediction (sample, model, y, x)`` with coord ``task (model)``; with
        ``confidence`` and SS models, its ``entropy`` is read too.
    models : sequence of str
        The group's models ``M``.
    confidence : bool, optional
        Also compute ``confidence``.
    class_areas : bool, optional
        Also compute ``areas``.

    Returns
    -------
    dict
        ``content`` ``(sample, M)`` (:func:`~mdc_widgets.mining.protocols.content_fraction`),
        ``disputed_area`` ``(sample,)`` the mean over the models' pairs of the
        fraction of pixels they dispute, with ``confidence`` ``(sample, M)`` the
        mean confidence over the union of the disputed pixels
        (:func:`~mdc_widgets.mining.protocols.disputed_confidence`), and with
        ``class_areas`` ``areas``, a list of ``(sample, C)`` per model (SS: the
        pixel fraction of each class; SOD: background and the binarised
        salient area).
    """
    models = list(models)
    tasks = _tasks(predictions, models)
    n, m = predictions.sizes["sample"], len(models)
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    out: dict[str, Any] = {"content": np.zeros((n, m)), "disputed_area": np.zeros(n)}
    entropy = None
    if confidence:
        out["confidence"] = np.zeros((n, m))
        if "ss" in tasks and "entropy" in predictions:
            entropy = predictions["entropy"].sel(model=models).transpose("sample", "model", "y", "x")
    if class_areas:
        sizes = [_num_classes(predictions, name) if task == "ss" else 2 for name, task in zip(models, tasks)]
        out["areas"] = [np.zeros((n, c)) for c in sizes]
    for samples, maps in _map_blocks(predictions, models):
        rows = len(maps)
        for j, task in enumerate(tasks):
            out["content"][samples, j] = content_fraction(maps[:, j], task)
        masks = [disputed_mask(maps[:, i], maps[:, j], tasks[i], tasks[j]) for i, j in pairs]
        if masks:
            out["disputed_area"][samples] = np.mean([mask.reshape(rows, -1).mean(axis=1) for mask in masks], axis=0)
        if confidence:
            region = np.logical_or.reduce(masks) if masks else np.ones(maps[:, 0].shape, bool)
            block = None if entropy is None else np.asarray(entropy.isel(sample=samples).values)
            out["confidence"][samples] = disputed_confidence(maps, tasks, region, block)
        if class_areas:
            for j, task in enumerate(tasks):
                if task == "ss":
                    out["areas"][j][samples] = class_fractions(maps[:, j], out["areas"][j].shape[1])
                else:
                    salient = foreground_mask(maps[:, j], "sod").reshape(rows, -1).mean(axis=1)
                    out["areas"][j][samples] = np.stack([1 - salient, salient], axis=1)
    return out


def mine(
    predictions: xr.Dataset,
    group: CompetitionGroup,
    weights: Weights = Weights(),
    k: int = 50,
    constraints: Constraints = Constraints(),
    *,
    discrepancy: xr.DataArray | None = None,
    features: np.ndarray | None = None,
    pool: Pool | None = None,
    sod_measure: str = "iou",
    key: str | None = None,
    store: str | Path | None = None,
    save: bool = True,
    protocol: str = "mdc",
    fusion: str = "rank",
    n_per_class: int | None = None,
) -> xr.Dataset:
    """Score every image of the pool for ``group`` and select the top ``k``.

    Two protocols choose the images (see :mod:`mdc_widgets.mining.protocols`):
    ``"mdc"`` (ours, the default) takes the top ``k`` of the joint score under
    ``constraints``; ``"ijcv2021"`` is the published MAD rule for one SS pair
    (each model in turn the defender, per-class candidates in the defender's
    25th-75th percentile area band, ``n_per_class`` per class per defender),
    and our analogue of it for one SOD pair. Under ``"ijcv2021"`` only the
    ``exclude``, ``min_content`` and ``min_confidence`` constraints apply (the
    rule has its own size band and per-class quota), and ``min_content``
    applies to the defender's map only (the attacker missing the object is the
    failure MAD looks for) and defaults to ``DEGENERATE_CONTENT`` (0.005);
    pass 0 to switch it off.

    Equal scores go to the larger raw disagreement, then to the larger
    disputed area (never to the sample id), so near-empty maps that "disagree
    completely" on a few pixels come last; such picks are flagged in
    ``degenerate``.

    Parameters
    ----------
    predictions : xarray.Dataset
        From :func:`mdc_widgets.predictions.open_predictions`.
    group : CompetitionGroup
        The competitors (:func:`mdc_widgets.mining.competition_group`).
    weights : Weights, optional
        The weights of the SS, SOD and cross terms of the joint score.
    k : int, optional
        How many images to select.
    constraints : Constraints, optional
        Diversity constraints (each switchable).
    discrepancy : xarray.DataArray or None, optional
        Reuse a precomputed ``compute_discrepancies`` matrix.
    features : numpy.ndarray or None, optional
        ``(sample, d)`` for near-duplicate suppression; by default
        thumbnails of the pool's images (``pool``) or of the predictions.
    pool : Pool or None, optional
        The pool the predictions were made on; its images give the
        near-duplicate features when ``features`` is None.
    sod_measure : str, optional
        ``"iou"`` or ``"mae"`` for the SOD-vs-SOD term.
    key : str or None, optional
        Name of the stored result (default: group key and weights).
    store : str or pathlib.Path or None, optional
        Where to store it (default: the predictions' store).
    save : bool, optional
        Write ``<store>/mining/<key>.zarr`` atomically.
    protocol : str, optional
        ``"mdc"`` or ``"ijcv2021"``.
    fusion : str, optional
        How the joint score puts pairs on one scale, ``"rank"``
        (default), ``"raw"`` or ``"minmax"`` (:func:`mdc_widgets.mining.fuse`).
    n_per_class : int or None, optional
        ``"ijcv2021"`` only: images per class per defender; by
        default scaled to ``k`` (:func:`mdc_widgets.mining.per_class_quota`).

    Returns
    -------
    xr.Dataset
        Along ``sample``: ``score``, the fused ``term_*``, the raw
        ``d_*``, ``foreground_area``, ``dominant_class``, ``content_min`` (the
        smaller content fraction of the maps), ``disputed_area``,
        ``confidence_min`` (NaN unless the confidence filter is on),
        ``degenerate`` (a map is nearly empty), ``selected`` (bool),
        ``selection_rank`` (0 best, -1 not selected), ``pick_defender`` (the
        defender model of an ``"ijcv2021"`` pick, else ``""``) and
        ``pick_class`` (its class, else -1). Attrs hold the protocol, group,
        weights, k, constraints and the constraint report (JSON).

    Raises
    ------
    MdcError
        ``protocol="ijcv2021"`` with a group that is not one pair of one task.

    References
    ----------
    .. [1] Z. Wang and E. P. Simoncelli, "Maximum differentiation (MAD) competition: A methodology for
           comparing computational models of perceptual quantities," Journal of Vision, 8(12):8, 2008.
           https://doi.org/10.1167/8.12.8
    """
    protocol = _check_protocol(protocol)
    if protocol == "ijcv2021":
        pair = group.ss if group.ss else group.sod
        if len(pair) != 2 or (group.ss and group.sod):
            raise MdcError(
                f"The ijcv2021 protocol mines one pair of one task (ss=(a, b) or sod=(p, q)); "
                f"got {group.key!r}. Use protocol='mdc' for joint or cross-task groups."
            )
        if constraints.min_content is None:
            constraints = replace(constraints, min_content=DEGENERATE_CONTENT)
    fused = None
    if discrepancy is None:
        from mdc_widgets.discrepancy import pairwise_statistics

        # foreground areas and dominant classes come from the same read as the discrepancies
        fused = pairwise_statistics(predictions.sel(model=list(group.models)), sod_measure=sod_measure)
        discrepancy = fused["discrepancy"]
    valid = predictions["valid"].values if "valid" in predictions else None
    result = joint_score(discrepancy, group, weights, valid=valid, fusion=fusion)

    area = foreground_fraction(predictions, group.models) if fused is None else _fused_area(fused, group)
    dom = _dominant_of(predictions, fused, group.ss[0]) if group.ss else xr.zeros_like(area, dtype=np.int64)
    stats = group_statistics(
        predictions, group.models, confidence=constraints.min_confidence is not None, class_areas=protocol == "ijcv2021"
    )
    content_min = stats["content"].min(axis=1)
    confidence_min = stats["confidence"].min(axis=1) if "confidence" in stats else np.full(len(content_min), np.nan)
    n = result.sizes["sample"]
    defender = np.full(n, "", dtype=object)  # variable-length strings: a stable zarr dtype
    pick_class = np.full(n, -1, np.int64)
    if protocol == "ijcv2021":
        indices, report, skipped, n_per_class = _select_ijcv2021(
            result, group, k, constraints, stats, content_min, confidence_min, n_per_class, defender, pick_class
        )
    else:
        if not group.ss and (constraints.max_per_class is not None or constraints.unique_class_pairs):
            # class rules are over predicted classes, which only SS models give
            constraints = replace(constraints, max_per_class=None, unique_class_pairs=False)
        if constraints.dedup_threshold is not None and features is None:
            features = _candidate_features(predictions, group, pool)
        # the ICLR class rules count the predicted class of every SS model, not only the first one's
        by_class = constraints.max_per_class is not None or constraints.unique_class_pairs
        classes = (
            np.stack([dom.values] + [_dominant_of(predictions, fused, m).values for m in group.ss[1:]], axis=1)
            if group.ss and by_class
            else dom.values
        )
        selection = select_top_k(
            result["score"],
            k,
            constraints,
            foreground_area=area,
            features=features,
            dominant_class=classes,
            content=content_min,
            confidence=confidence_min,
            # equal joint scores (ties of percentile ranks) go to the larger raw disagreement, then to the
            # larger disputed area: two near-empty maps "disagree completely" on a few pixels
            tiebreak=[
                sum(np.nan_to_num(result[f"d_{t}"].values) for t in ("ss", "sod", "cross")),
                stats["disputed_area"],
            ],
        )
        indices, report, skipped = selection.indices, selection.report(), selection.skipped
    selected = np.zeros(n, bool)
    selected[indices] = True
    rank = np.full(n, -1, np.int64)
    rank[indices] = np.arange(len(indices))
    result = result.assign(
        foreground_area=area.reset_coords(drop=True),
        dominant_class=dom.reset_coords(drop=True),
        content_min=("sample", content_min),
        disputed_area=("sample", stats["disputed_area"]),
        confidence_min=("sample", confidence_min),
        degenerate=("sample", content_min < DEGENERATE_CONTENT),
        selected=("sample", selected),
        selection_rank=("sample", rank),
        pick_defender=("sample", defender),
        pick_class=("sample", pick_class),
    )
    if key is None:
        key = result_key(group, weights, k, protocol, fusion)
    result.attrs.update(
        key=key,
        k=int(k),
        protocol=protocol,
        fusion=fusion,
        n_per_class=-1 if n_per_class is None else int(n_per_class),
        sod_measure=sod_measure,
        constraints=json.dumps(constraints.as_dict()),
        report=json.dumps(report),
        skipped=json.dumps(skipped),
        pool_fingerprint=predictions.attrs.get("pool_fingerprint", ""),
    )
    store = store or predictions.attrs.get("store")
    if save and store:
        atomic_write_dir(mining_path(store, key), lambda tmp: result.to_zarr(str(tmp), mode="w", consolidated=False))
    return result


def _select_ijcv2021(
    result: xr.Dataset,
    group: CompetitionGroup,
    k: int,
    constraints: Constraints,
    stats: dict[str, Any],
    content_min: np.ndarray,
    confidence_min: np.ndarray,
    n_per_class: int | None,
    defender: np.ndarray,
    pick_class: np.ndarray,
) -> tuple[np.ndarray, dict[str, int], dict[str, list[str]], int]:
    """The IJCV 2021 picks of a one-pair group and their ``N``; fills ``defender`` and ``pick_class`` in place."""
    ids = np.asarray(result["sample"].values).astype(str)
    task = "ss" if group.ss else "sod"
    pair = group.ss or group.sod
    discrepancy = result[f"d_{task}"].values
    # the published rule asks the defender to see an object; the attacker may miss it (that is its failure)
    defender_sees = stats["content"] >= (constraints.min_content or 0.0)
    filters = {
        "excluded": np.isin(ids, list(constraints.exclude)),
        "min_confidence": (
            confidence_min < constraints.min_confidence
            if constraints.min_confidence is not None
            else np.zeros(len(ids), bool)
        ),
        "min_content": ~defender_sees.any(axis=1),
    }
    eligible = np.isfinite(discrepancy)
    skipped: dict[str, list[str]] = {}
    for name, removed in filters.items():
        # like select_top_k's report: images a filter removed that an earlier one had not
        skipped[name] = ids[eligible & removed].tolist()
        eligible &= ~removed
    picks = select_by_defender(
        stats["areas"][0],
        stats["areas"][1],
        discrepancy,
        n_per_class,
        k=int(k),
        band=IJCV2021_BAND,
        eligible=eligible[:, None] & defender_sees,
        secondary=stats["disputed_area"],
    )
    indices = picks["index"].to_numpy(np.int64)
    defender[indices] = np.asarray(pair)[picks["defender"].to_numpy()]
    pick_class[indices] = picks["class"].to_numpy()
    report: dict[str, int] = {name: len(values) for name, values in skipped.items()}
    return indices, report, skipped, int(picks.attrs["n_per_class"])


def _candidate_features(predictions: xr.Dataset, group: CompetitionGroup, pool: Pool | None) -> Any:
    """What ``mine`` hands ``select_top_k`` for de-duplication: the pool's image features, or a callable
    ``indices -> (len(indices), d)`` equal to those rows of :func:`_default_features`, read for the candidates only
    (memory O(k), not O(pool))."""
    if pool is not None:
        return pool_features(pool)
    return lambda indices: _map_features(predictions, group, indices)


def _map_features(predictions: xr.Dataset, group: CompetitionGroup, indices: np.ndarray) -> np.ndarray:
    """The rows ``indices`` of :func:`_default_features`, reading only those images' maps."""
    models = list(group.models)
    scale = np.float32(1.0 / np.sqrt(len(models)))
    maps = predictions["prediction"].sel(model=models).transpose("sample", "model", "y", "x")
    block = np.asarray(maps.isel(sample=np.asarray(indices, dtype=np.int64)).values)
    return np.concatenate([thumbnail_features(block[:, i]) * scale for i in range(len(models))], axis=1)


def _default_features(predictions: xr.Dataset, group: CompetitionGroup, pool: Pool | None) -> np.ndarray:
    """Thumbnail features ``(sample, d)`` float32 for near-duplicate suppression, filled block by block."""
    if pool is not None:
        return pool_features(pool)
    # without the pool, near-identical images still give near-identical maps
    models = list(group.models)
    scale = np.float32(1.0 / np.sqrt(len(models)))
    features = None
    for samples, maps in _map_blocks(predictions, models):
        for i in range(len(models)):
            block = thumbnail_features(maps[:, i])
            if features is None:
                d = block.shape[1]
                features = np.empty((predictions.sizes["sample"], d * len(models)), dtype=np.float32)
            features[samples, i * d : (i + 1) * d] = block * scale
    return features if features is not None else np.zeros((0, 64 * len(models)), np.float32)


def mine_groups(
    predictions: xr.Dataset,
    groups: Sequence[CompetitionGroup],
    weights: Weights = Weights(),
    k: int = 50,
    constraints: Constraints = Constraints(),
    *,
    disjoint: bool = True,
    **kwargs: Any,
) -> dict[str, xr.Dataset]:
    """Mine several competition groups; with ``disjoint`` no image is picked twice.

    Parameters
    ----------
    predictions : xarray.Dataset
        From :func:`mdc_widgets.predictions.open_predictions`, holding every group's models.
    groups : sequence of CompetitionGroup
        The competitions, mined in this order (earlier groups pick first).
    weights : Weights, optional
        The weights of the joint score, for every group.
    k : int, optional
        How many images to select per group.
    constraints : Constraints, optional
        Diversity constraints, for every group.
    disjoint : bool, optional
        Add each group's picks to the next groups' ``exclude``.
    **kwargs : object
        Passed to :func:`mine` (``discrepancy``, ``sod_measure``, ``pool``, ...);
        the discrepancies are computed once over all groups' models.

    Returns
    -------
    dict of {str: xarray.Dataset}
        The results by their ``key`` attribute.
    """
    from mdc_widgets.discrepancy import compute_discrepancies

    models = sorted({m for g in groups for m in g.models})
    discrepancy = kwargs.pop("discrepancy", None)
    if discrepancy is None:
        discrepancy = compute_discrepancies(predictions.sel(model=models), sod_measure=kwargs.get("sod_measure", "iou"))
    results: dict[str, xr.Dataset] = {}
    taken: set[str] = set(constraints.exclude)
    for group in groups:
        current = replace(constraints, exclude=frozenset(taken)) if disjoint else constraints
        result = mine(predictions, group, weights, k, current, discrepancy=discrepancy, **kwargs)
        results[result.attrs["key"]] = result
        if disjoint:
            taken |= set(selected_samples(result))
    return results
