"""Score stored predictions against ground truth: per image, then per set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets.discrepancy.ops import binarize_saliency
from mdc_widgets.errors import MdcError
from mdc_widgets.metrics.functional import (
    fbeta_adaptive,
    fbeta_curve,
    foreground_iou,
    mae,
    miou_from_confusion,
    s_measure,
    segmentation_confusion,
)

__all__ = ["SOD_METRICS", "SS_METRICS", "evaluate", "evaluate_native", "map_at_native_size", "summarize"]

SS_METRICS = ("miou",)
SOD_METRICS = ("fbeta_max", "fbeta_adaptive", "mae", "s_measure", "foreground_iou")


def _score_block(
    maps: np.ndarray,
    tasks: Sequence[str],
    sal_gt: np.ndarray | None,
    sem_gt: np.ndarray | None,
    num_classes: int,
    normalize: bool = False,
) -> dict[str, np.ndarray]:
    """Per-image metrics of one block of maps ``(n, M, H, W)`` against ``(n, H, W)`` ground truth.

    SS models are scored against ``sem_gt`` (mIoU and confusion) and, on their
    foreground, against ``sal_gt``; SOD models on their saliency map. Missing
    ground truth leaves NaN (and zero confusion).
    """
    n, m = maps.shape[:2]
    out = {k: np.full((n, m), np.nan) for k in (*SS_METRICS, *SOD_METRICS)}
    out["confusion"] = np.zeros((n, m, num_classes, num_classes), np.int64)
    out["fbeta_curve"] = np.full((n, m, 256), np.nan)
    for j, task in enumerate(tasks):
        if task == "ss":
            if sem_gt is not None:
                conf = segmentation_confusion(maps[:, j], sem_gt, num_classes)
                out["confusion"][:, j] = conf
                out["miou"][:, j] = miou_from_confusion(conf)
            saliency = np.where(maps[:, j] > 0, 255, 0).astype(np.uint8)
        else:
            saliency = maps[:, j]
        if sal_gt is None:
            continue
        curve = fbeta_curve(saliency, sal_gt, normalize=normalize)
        if task == "ss":
            # a foreground mask is binary: only its own F-beta means anything. Threshold 0 (every pixel
            # foreground) would score the same for every model and win the max on hard images.
            curve = np.repeat(curve[:, :1], curve.shape[1], axis=1)
        out["fbeta_curve"][:, j] = curve
        out["fbeta_max"][:, j] = out["fbeta_curve"][:, j].max(-1)
        out["fbeta_adaptive"][:, j] = fbeta_adaptive(saliency, sal_gt, normalize=normalize)
        out["mae"][:, j] = mae(saliency, sal_gt, normalize=normalize)
        out["s_measure"][:, j] = s_measure(saliency, sal_gt, normalize=normalize)
        out["foreground_iou"][:, j] = foreground_iou(
            saliency > 0 if task == "ss" else binarize_saliency(saliency), sal_gt
        )
    return out


def _evaluation_dataset(
    scores: dict[str, np.ndarray],
    samples: np.ndarray,
    models: Sequence[str],
    tasks: Sequence[str],
    attrs: dict | None = None,
) -> xr.Dataset:
    coords = {"sample": samples, "model": list(models), "task": ("model", list(tasks))}
    return xr.Dataset(
        {
            **{k: (("sample", "model"), scores[k]) for k in (*SS_METRICS, *SOD_METRICS)},
            "confusion": (("sample", "model", "gt_class", "pred_class"), scores["confusion"]),
            "fbeta_curve": (("sample", "model", "threshold"), scores["fbeta_curve"]),
        },
        coords={**coords, "threshold": np.arange(255, -1, -1)},
        attrs=attrs or {},
    )


def _num_classes(predictions: xr.Dataset, models: Sequence[str], tasks: Sequence[str]) -> int:
    classes = predictions.attrs.get("classes") or {}
    return max([len(classes.get(m, [])) for m, t in zip(models, tasks) if t == "ss"] or [1])


def evaluate(
    predictions: xr.Dataset,
    ground_truth: xr.Dataset,
    samples: Sequence[str] | None = None,
    chunk_size: int = 512,
    normalize: bool = False,
) -> xr.Dataset:
    """Per-image metrics of every model at the working resolution, ``(sample, model)``.

    ``normalize=True`` min-max stretches each saliency map first, as
    PySODMetrics does by default (see :mod:`mdc_widgets.metrics.functional`);
    the choice is recorded in the attrs.

    SS models get ``miou`` (against ``semantic``) and their per-image confusion
    (so a set's mIoU can be accumulated); every model gets the saliency
    metrics (against ``saliency``): SOD models on their saliency map, SS
    models on their foreground, which is what the cross-task term compares.
    :func:`evaluate_native` scores at each image's own size instead.

    Parameters
    ----------
    predictions : xarray.Dataset
        From ``open_predictions``: ``prediction (sample, model, y, x)`` uint8,
        coord ``task (model)``, attrs ``classes`` (``{model: [names]}``, which
        sets the number of SS classes).
    ground_truth : xarray.Dataset
        ``semantic`` and/or ``saliency (sample, y, x)`` uint8 at the same
        working size (e.g. ``pool.ground_truth()``); optional
        ``saliency_labeled (sample)`` leaves unlabeled images NaN. Aligned by
        sample id.
    samples : sequence of str or None, optional
        Sample ids to score; default every sample of ``predictions``.
    chunk_size : int, optional
        Images scored at once (bounds memory).
    normalize : bool, optional
        Min-max stretch each saliency map first (PySODMetrics' default).

    Returns
    -------
    xarray.Dataset
        Dims ``(sample, model)``: ``miou`` (SS models), ``fbeta_max``,
        ``fbeta_adaptive``, ``mae``, ``s_measure``, ``foreground_iou`` (float64,
        NaN where not defined); ``confusion (sample, model, gt_class,
        pred_class)`` int64; ``fbeta_curve (sample, model, threshold)`` with
        thresholds 255..0; coord ``task (model)``; attrs ``resolution``
        (``"working"``) and ``normalize`` (0 or 1).

    Raises
    ------
    MdcError
        When some predicted samples have no ground truth (pass ``samples``).
    """
    if samples is not None:
        predictions = predictions.sel(sample=list(samples))
    ids = np.asarray(predictions["sample"].values)
    missing = np.setdiff1d(ids, np.asarray(ground_truth["sample"].values))
    if missing.size:
        raise MdcError(
            f"The ground truth has no labels for {missing.size} predicted samples (e.g. {missing[:3].tolist()}); "
            "evaluate on labeled samples only (pass samples=...)."
        )
    ground_truth = ground_truth.sel(sample=ids)  # align by id, never by position
    models = [str(m) for m in predictions["model"].values]
    tasks = [str(t) for t in predictions["task"].values]
    num_classes = _num_classes(predictions, models, tasks)
    n = predictions.sizes["sample"]
    pred_all = predictions["prediction"].transpose("sample", "model", "y", "x")
    blocks = [_score_block(np.zeros((0, len(models), 1, 1), np.uint8), tasks, None, None, num_classes)]
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        maps = np.asarray(pred_all.isel(sample=slice(lo, hi)).values)
        sal_gt, sem_gt = (
            np.asarray(ground_truth[v].isel(sample=slice(lo, hi)).values) if v in ground_truth else None
            for v in ("saliency", "semantic")
        )
        block = _score_block(maps, tasks, sal_gt, sem_gt, num_classes, normalize)
        if "saliency_labeled" in ground_truth:
            # images without a saliency mask have no saliency score, rather than one against an empty mask
            unlabeled = ~np.asarray(ground_truth["saliency_labeled"].isel(sample=slice(lo, hi)).values, bool)
            for key in (*SOD_METRICS, "fbeta_curve"):
                block[key][unlabeled] = np.nan
        blocks.append(block)
    scores = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
    return _evaluation_dataset(
        scores, predictions["sample"].values, models, tasks, {"resolution": "working", "normalize": int(normalize)}
    )


def map_at_native_size(
    stored: np.ndarray,
    task: str,
    native: tuple[int, int],
    fit: str = "stretch",
    released: Any = None,
    stem: str | None = None,
) -> np.ndarray:
    """One model's map of one image at the image's own size ``native = (H, W)``.

    A released-map competitor's file is read at full resolution; a network's
    stored canvas map is cropped (letterbox) and resized back, nearest for
    labels, bilinear for saliency.

    Parameters
    ----------
    stored : numpy.ndarray
        ``(h, w)`` uint8: the model's map on the working canvas.
    task : {"ss", "sod"}
        The model's task (labels are resized nearest, saliency bilinear).
    native : tuple of 2 int
        The image's own ``(H, W)``.
    fit : {"stretch", "letterbox"}, optional
        How the pool fitted the image to the canvas.
    released : MapCompetitor or None, optional
        The released-map competitor of this model, whose file is read
        instead of ``stored``; None for a network.
    stem : str or None, optional
        The image's sample id, needed with ``released``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8.
    """
    from mdc_widgets.data.io import from_canvas

    if released is not None:
        return released.read_native(stem, native)
    return from_canvas(stored, native, fit, "labels" if task == "ss" else "saliency")


def evaluate_native(
    predictions: xr.Dataset,
    pool: Any,
    samples: Sequence[str] | None = None,
    progress: bool = False,
    batch_size: int = 16,
    normalize: bool = False,
) -> xr.Dataset:
    """Per-image metrics of every model at each image's own size, as SOD benchmarks report them.

    Ground truth is read at the image's own size. A network's stored map is
    cropped to the image's content (letterbox) and resized back (nearest for
    labels, bilinear for saliency); released maps are read from their folder
    at full resolution, so their scores equal those of the published maps.
    Images without ground truth of a kind get NaN for its metrics.
    The layout is that of :func:`evaluate`, so :func:`summarize` works on it.

    Parameters
    ----------
    predictions : xarray.Dataset
        From ``open_predictions`` (its ``sources`` attr names the released-map folders).
    pool : object
        The pool the predictions were made on (same fingerprint).
    samples : sequence of str or None, optional
        A subset of sample ids (default: every valid image).
    progress : bool, optional
        Show a tqdm bar.
    batch_size : int, optional
        Images of one size scored at once.
    normalize : bool, optional
        Min-max stretch each saliency map first (PySODMetrics' default).

    Returns
    -------
    xarray.Dataset
        Dims ``(sample, model)``: ``miou`` (SS models), ``fbeta_max``,
        ``fbeta_adaptive``, ``mae``, ``s_measure``, ``foreground_iou`` (float64,
        NaN where not defined); ``confusion (sample, model, gt_class,
        pred_class)`` int64; ``fbeta_curve (sample, model, threshold)`` with
        thresholds 255..0; coord ``task (model)``; attrs ``resolution``
        (``"native"``) and ``normalize`` (0 or 1).

    Raises
    ------
    MdcError
        When the predictions were made for another pool (fingerprints differ),
        or a sample id is not in the pool.
    """
    from mdc_widgets.models.released_maps import pool_stems, released_competitors

    fingerprint = predictions.attrs.get("pool_fingerprint")
    if fingerprint and fingerprint != pool.fingerprint:
        raise MdcError(
            f"These predictions were made for another pool (fingerprint {fingerprint}, this pool "
            f"{pool.fingerprint}); open the pool they were made on."
        )
    models = [str(m) for m in predictions["model"].values]
    tasks = [str(t) for t in predictions["task"].values]
    num_classes = _num_classes(predictions, models, tasks)
    if samples is None:
        valid = predictions["valid"].values if "valid" in predictions else np.ones(len(pool), bool)
        samples = [str(s) for s, ok in zip(predictions["sample"].values, valid) if ok]
    samples = [str(s) for s in samples]
    released = released_competitors(predictions)
    stems = pool_stems(pool)
    fit = getattr(pool, "fit", "stretch")
    m = len(models)
    maps_all = predictions["prediction"].transpose("sample", "model", "y", "x")
    indices = [pool.index_of(sid) for sid in samples]
    # images of one size are scored together: the metrics are batched, and photo sets have few sizes
    by_size: dict[tuple[int, int], list[int]] = {}
    for position, index in enumerate(indices):
        by_size.setdefault(tuple(pool.native_size(index)), []).append(position)
    scores = _score_block(np.zeros((0, m, 1, 1), np.uint8), tasks, None, None, num_classes)
    scores = {
        k: np.full((len(samples), *v.shape[1:]), np.nan if v.dtype.kind == "f" else 0, v.dtype)
        for k, v in scores.items()
    }
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(samples), desc="evaluate (native size)", unit="image")
    for native, positions in by_size.items():
        for lo in range(0, len(positions), batch_size):
            batch = positions[lo : lo + batch_size]
            stored = np.asarray(maps_all.sel(sample=[samples[p] for p in batch]).values)
            maps = np.zeros((len(batch), m, *native), np.uint8)
            truth = [pool.native_ground_truth(indices[p]) for p in batch]
            for i, position in enumerate(batch):
                for j, (model, task) in enumerate(zip(models, tasks)):
                    maps[i, j] = map_at_native_size(
                        stored[i, j], task, native, fit, released.get(model), stems[indices[position]]
                    )
            # images lacking a kind of ground truth are scored apart, so they get NaN for it
            kinds = [(("saliency" in t), ("semantic" in t)) for t in truth]
            for has_sal, has_sem in set(kinds):
                rows = [i for i, kind in enumerate(kinds) if kind == (has_sal, has_sem)]
                sal = np.stack([truth[i]["saliency"] for i in rows]) if has_sal else None
                sem = np.stack([truth[i]["semantic"] for i in rows]) if has_sem else None
                for key, values in _score_block(maps[rows], tasks, sal, sem, num_classes, normalize).items():
                    scores[key][[batch[i] for i in rows]] = values
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    return _evaluation_dataset(
        scores, np.asarray(samples, dtype=object), models, tasks, {"resolution": "native", "normalize": int(normalize)}
    )


def summarize(evaluation: xr.Dataset, samples: Sequence[str] | None = None) -> xr.Dataset:
    """Set-level scores per model, the way benchmarks report them.

    - ``miou``: from the confusion accumulated over the set (VOC convention),
    - ``miou_image``: the mean of per-image mIoU,
    - ``fbeta_max``: the maximum of the set's mean F-beta curve (one threshold
      for the whole set, as PySODMetrics reports "max F"),
    - ``fbeta_max_image``, ``fbeta_adaptive``, ``mae``, ``s_measure``,
      ``foreground_iou``: means over images.

    Images without a score (NaN) are left out of every mean.

    Parameters
    ----------
    evaluation : xarray.Dataset
        From :func:`evaluate` or :func:`evaluate_native`.
    samples : sequence of str or None, optional
        The set to summarise (e.g. a mined set); default every sample.

    Returns
    -------
    xarray.Dataset
        One float per model (dim ``model``, coord ``task``): the variables
        above, NaN where a metric does not apply (``miou`` of SOD models);
        attr ``n_images``.
    """
    ev = evaluation if samples is None else evaluation.sel(sample=list(samples))
    if "foreground_iou" not in ev:  # evaluations saved before the metric existed
        ev = ev.assign(foreground_iou=xr.full_like(ev["mae"], np.nan))
    conf = ev["confusion"].sum("sample").values
    # images without saliency ground truth (NaN curves) are left out of the set's mean curve
    curve = ev["fbeta_curve"].mean("sample", skipna=True)
    set_miou = np.array([float(miou_from_confusion(c)) if c.sum() else np.nan for c in conf])
    set_miou = np.where(ev["task"].values == "ss", set_miou, np.nan)
    return xr.Dataset(
        {
            "miou": ("model", set_miou),
            "miou_image": ev["miou"].mean("sample"),
            "fbeta_max": curve.max("threshold"),
            "fbeta_max_image": ev["fbeta_max"].mean("sample"),
            "fbeta_adaptive": ev["fbeta_adaptive"].mean("sample"),
            "mae": ev["mae"].mean("sample"),
            "s_measure": ev["s_measure"].mean("sample"),
            "foreground_iou": ev["foreground_iou"].mean("sample"),
        },
        coords={"model": ev["model"].values, "task": ("model", ev["task"].values)},
        attrs={"n_images": int(ev.sizes["sample"])},
    )
