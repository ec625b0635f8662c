"""All pairwise discrepancies of M models over a pool, one vectorised pass per chunk of images."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import torch
import xarray as xr

from mdc_widgets.config import resolve_device
from mdc_widgets.discrepancy.ops import (
    binarize_saliency,
    confusion_counts,
    downsample_labels,
    downsample_saliency,
    mean_iou_from_confusion,
    saliency_to_float,
)
from mdc_widgets.errors import OptionError, ShapeError

__all__ = ["compute_discrepancies", "pair_kind"]


def pair_kind(task_a: str, task_b: str, same: bool = False) -> str:
    """``"self"``, ``"ss"``, ``"sod"`` or ``"cross"`` for a pair of tasks."""
    if same:
        return "self"
    return task_a if task_a == task_b else "cross"


def _num_classes(predictions: xr.Dataset, ss_models: Sequence[str]) -> int:
    classes = predictions.attrs.get("classes") or {}
    sizes = [len(classes[m]) for m in ss_models if m in classes]
    return max(sizes) if sizes else 256


def _chunk_matrix(
    maps: torch.Tensor, tasks: list[str], num_classes: int, sod_measure: str, models: Sequence[str] | None = None
) -> torch.Tensor:
    """``(n, M, M)`` discrepancies of one chunk ``maps (n, M, H, W)`` uint8."""
    n, m = maps.shape[:2]
    out = torch.zeros((n, m, m), dtype=torch.float64, device=maps.device)
    ss = [i for i, t in enumerate(tasks) if t == "ss"]
    sod = [i for i, t in enumerate(tasks) if t == "sod"]
    # SS vs SS: every pair's confusion counts in one bincount over (pair, image, a, b)
    for i in ss:
        if maps.shape[0] and int(maps[:, i].max()) >= num_classes:
            raise ShapeError(
                f"SS model {models[i] if models else i!r} predicted label {int(maps[:, i].max())} but the store "
                f"declares num_classes={num_classes}; check that model's class list."
            )
    pairs = list(combinations(ss, 2))
    if pairs:
        a = torch.stack([maps[:, i] for i, _ in pairs])  # (P, n, H, W)
        b = torch.stack([maps[:, j] for _, j in pairs])
        conf = confusion_counts(a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:]), num_classes)
        d = (1.0 - mean_iou_from_confusion(conf)).reshape(len(pairs), n)
        for p, (i, j) in enumerate(pairs):
            out[:, i, j] = out[:, j, i] = d[p]
    # binary maps once per model: SS foreground, SOD adaptive binarisation
    flat = maps.reshape(n, m, -1)
    binary = torch.zeros_like(flat, dtype=torch.float32)
    if ss:
        binary[:, ss] = (flat[:, ss] > 0).float()
    if sod:
        binary[:, sod] = binarize_saliency(flat[:, sod].reshape(n * len(sod), -1)).reshape(n, len(sod), -1).float()
    # every pairwise intersection at once: (n, M, P) @ (n, P, M)
    inter = torch.bmm(binary, binary.transpose(1, 2)).double()
    area = binary.sum(-1).double()
    union = area[:, :, None] + area[:, None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
    for i, j in combinations(range(m), 2):
        kind = pair_kind(tasks[i], tasks[j])
        if kind == "cross" or (kind == "sod" and sod_measure == "iou"):
            out[:, i, j] = out[:, j, i] = 1.0 - iou[:, i, j]
        elif kind == "sod":
            d = (saliency_to_float(flat[:, i]) - saliency_to_float(flat[:, j])).abs().mean(-1).double()
            out[:, i, j] = out[:, j, i] = d
    return out


def compute_discrepancies(
    predictions: xr.Dataset,
    *,
    sod_measure: str = "iou",
    downsample: int = 1,
    device: str | None = "auto",
    chunk_size: int = 512,
) -> xr.DataArray:
    """Discrepancy of every pair of models on every image of the pool.

    Parameters
    ----------
    predictions : ``open_predictions`` output: ``prediction (sample, model, y, x)``
        uint8 with coord ``task (model)``; may be dask-backed (read chunk by chunk)
    sod_measure : ``"iou"`` (1 - IoU of binarised maps) or ``"mae"`` for SOD pairs
    downsample : integer factor to score at reduced resolution (labels nearest,
        saliency by area)
    device : where to compute (``"auto"``: CUDA when present)
    chunk_size : images per vectorised pass

    Returns
    -------
    xr.DataArray
        ``(sample, model_a, model_b)`` float, symmetric, 0 on the diagonal,
        with coord ``kind (model_a, model_b)`` in ``{"ss", "sod", "cross", "self"}``.
    """
    if sod_measure not in ("iou", "mae"):
        raise OptionError(f"Unknown SOD discrepancy measure {sod_measure!r}; use 'iou' or 'mae'.")
    device = resolve_device(device)
    models = [str(m) for m in predictions["model"].values]
    tasks = [str(t) for t in predictions["task"].values]
    num_classes = _num_classes(predictions, [m for m, t in zip(models, tasks) if t == "ss"])
    pred = predictions["prediction"].transpose("sample", "model", "y", "x")
    n = pred.sizes["sample"]
    result = np.zeros((n, len(models), len(models)), dtype=np.float32)
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        maps = torch.from_numpy(np.ascontiguousarray(pred.isel(sample=slice(lo, hi)).values)).to(device)
        if downsample > 1:
            parts = [
                downsample_labels(maps[:, i], downsample) if t == "ss" else downsample_saliency(maps[:, i], downsample)
                for i, t in enumerate(tasks)
            ]
            maps = torch.stack(parts, 1)
        result[lo:hi] = _chunk_matrix(maps, tasks, num_classes, sod_measure, models).float().cpu().numpy()
    kind = np.array(
        [[pair_kind(ta, tb, ma == mb) for mb, tb in zip(models, tasks)] for ma, ta in zip(models, tasks)], dtype=object
    )
    return xr.DataArray(
        result,
        dims=("sample", "model_a", "model_b"),
        coords={
            "sample": predictions["sample"].values,
            "model_a": models,
            "model_b": models,
            "kind": (("model_a", "model_b"), kind),
        },
        name="discrepancy",
        attrs={"sod_measure": sod_measure, "downsample": int(downsample)},
    )
