"""Score stored predictions against ground truth: per image, then per set."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from mdc_widgets.errors import MdcError

from mdc_widgets.metrics.functional import (
    fbeta_adaptive,
    fbeta_curve,
    mae,
    miou_from_confusion,
    s_measure,
    segmentation_confusion,
)

__all__ = ["evaluate", "summarize", "SS_METRICS", "SOD_METRICS"]

SS_METRICS = ("miou",)
SOD_METRICS = ("fbeta_max", "fbeta_adaptive", "mae", "s_measure")


def evaluate(
    predictions: xr.Dataset,
    ground_truth: xr.Dataset,
    samples: Sequence[str] | None = None,
    chunk_size: int = 512,
) -> xr.Dataset:
    """Per-image metrics of every model, ``(sample, model)``.

    SS models get ``miou`` (against ``semantic``) and their per-image confusion
    (so a set's mIoU can be accumulated); every model gets the saliency
    metrics (against ``saliency``): SOD models on their saliency map, SS
    models on their foreground, which is what the cross-task term compares.
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
    classes = predictions.attrs.get("classes") or {}
    num_classes = max([len(classes.get(m, [])) for m, t in zip(models, tasks) if t == "ss"] or [1])
    n, m = predictions.sizes["sample"], len(models)
    out = {k: np.full((n, m), np.nan) for k in (*SS_METRICS, *SOD_METRICS)}
    confusion = np.zeros((n, m, num_classes, num_classes), np.int64)
    curves = np.zeros((n, m, 256))
    has_semantic = "semantic" in ground_truth
    pred_all = predictions["prediction"].transpose("sample", "model", "y", "x")
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        maps = np.asarray(pred_all.isel(sample=slice(lo, hi)).values)
        sal_gt = np.asarray(ground_truth["saliency"].isel(sample=slice(lo, hi)).values)
        sem_gt = np.asarray(ground_truth["semantic"].isel(sample=slice(lo, hi)).values) if has_semantic else None
        for j, task in enumerate(tasks):
            if task == "ss":
                if sem_gt is not None:
                    conf = segmentation_confusion(maps[:, j], sem_gt, num_classes)
                    confusion[lo:hi, j] = conf
                    out["miou"][lo:hi, j] = miou_from_confusion(conf)
                saliency = np.where(maps[:, j] > 0, 255, 0).astype(np.uint8)
            else:
                saliency = maps[:, j]
            curves[lo:hi, j] = fbeta_curve(saliency, sal_gt)
            out["fbeta_max"][lo:hi, j] = curves[lo:hi, j].max(-1)
            out["fbeta_adaptive"][lo:hi, j] = fbeta_adaptive(saliency, sal_gt)
            out["mae"][lo:hi, j] = mae(saliency, sal_gt)
            out["s_measure"][lo:hi, j] = s_measure(saliency, sal_gt)
    coords = {"sample": predictions["sample"].values, "model": models, "task": ("model", tasks)}
    return xr.Dataset(
        {
            **{k: (("sample", "model"), v) for k, v in out.items()},
            "confusion": (("sample", "model", "gt_class", "pred_class"), confusion),
            "fbeta_curve": (("sample", "model", "threshold"), curves),
        },
        coords={**coords, "threshold": np.arange(255, -1, -1)},
    )


def summarize(evaluation: xr.Dataset, samples: Sequence[str] | None = None) -> xr.Dataset:
    """Set-level scores per model, the way benchmarks report them.

    - ``miou``: from the confusion accumulated over the set (VOC convention),
    - ``miou_image``: the mean of per-image mIoU,
    - ``fbeta_max``: the maximum of the set's mean F-beta curve (one threshold
      for the whole set, as PySODMetrics reports "max F"),
    - ``fbeta_max_image``, ``fbeta_adaptive``, ``mae``, ``s_measure``: means
      over images.
    """
    ev = evaluation if samples is None else evaluation.sel(sample=list(samples))
    conf = ev["confusion"].sum("sample").values
    set_miou = np.array([float(miou_from_confusion(c)) if c.sum() else np.nan for c in conf])
    set_miou = np.where(ev["task"].values == "ss", set_miou, np.nan)
    return xr.Dataset(
        {
            "miou": ("model", set_miou),
            "miou_image": ev["miou"].mean("sample"),
            "fbeta_max": ev["fbeta_curve"].mean("sample").max("threshold"),
            "fbeta_max_image": ev["fbeta_max"].mean("sample"),
            "fbeta_adaptive": ev["fbeta_adaptive"].mean("sample"),
            "mae": ev["mae"].mean("sample"),
            "s_measure": ev["s_measure"].mean("sample"),
        },
        coords={"model": ev["model"].values, "task": ("model", ev["task"].values)},
        attrs={"n_images": int(ev.sizes["sample"])},
    )
