"""All pairwise discrepancies of M models over a pool, one vectorised pass per chunk of images."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np
import torch
import xarray as xr

from mdc_widgets.config import resolve_device
from mdc_widgets.discrepancy.kernels import map_statistics
from mdc_widgets.discrepancy.ops import (
    binarize_saliency,
    confusion_counts,
    downsample_labels,
    downsample_saliency,
    mean_iou_from_confusion,
    saliency_to_float,
)
from mdc_widgets.errors import OptionError, ShapeError

# the uint8 CPU kernels return these per-model statistics with the discrepancies, in the same pass
STATISTICS = ("foreground", "dominant")

__all__ = ["compute_discrepancies", "pair_kind", "pairwise_statistics"]


def pair_kind(task_a: str, task_b: str, same: bool = False) -> str:
    """``"self"``, ``"ss"``, ``"sod"`` or ``"cross"`` for a pair of tasks.

    Parameters
    ----------
    task_a : str
        ``"ss"`` or ``"sod"``, the first model's task.
    task_b : str
        The second model's task.
    same : bool, optional
        The pair is one model with itself (the matrix diagonal).

    Returns
    -------
    str
        ``"self"`` when ``same``, the shared task, else ``"cross"``.
    """
    if same:
        return "self"
    return task_a if task_a == task_b else "cross"


def _num_classes(predictions: xr.Dataset, ss_models: Sequence[str]) -> int:
    classes = predictions.attrs.get("classes") or {}
    sizes = [len(classes[m]) for m in ss_models if m in classes]
    return max(sizes) if sizes else 256


def _refuse_label(model: str | int, label: int, num_classes: int) -> None:
    raise ShapeError(
        f"SS model {model!r} predicted label {label} but the store "
        f"declares num_classes={num_classes}; check that model's class list."
    )


def _default_threads() -> int:
    """The cores this process may run on (its CPU affinity), at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 8))


# below this many images a chunk is scored in one thread: the split would cost more than it saves
_MIN_IMAGES_PER_THREAD = 4


def _threaded_map_statistics(
    maps: np.ndarray, tasks: list[str], num_classes: int, sod_measure: str, threads: int
) -> dict[str, np.ndarray]:
    """:func:`map_statistics` over ``threads`` slices of the images at once (numpy releases the GIL)."""
    parts = min(threads, len(maps) // _MIN_IMAGES_PER_THREAD)
    if parts < 2:
        return map_statistics(maps, tasks, num_classes, sod_measure=sod_measure)
    bounds = np.linspace(0, len(maps), parts + 1).astype(int)
    with ThreadPoolExecutor(parts, thread_name_prefix="mdc-score") as pool:
        results = list(
            pool.map(
                lambda lo_hi: map_statistics(maps[lo_hi[0] : lo_hi[1]], tasks, num_classes, sod_measure=sod_measure),
                zip(bounds[:-1], bounds[1:]),
            )
        )
    merged = {key: np.concatenate([r[key] for r in results]) for key in ("discrepancy", "foreground", "dominant")}
    merged["max_label"] = np.max([r["max_label"] for r in results], axis=0)
    return merged


def _chunk_statistics(
    maps: torch.Tensor,
    tasks: list[str],
    num_classes: int,
    sod_measure: str,
    models: Sequence[str] | None = None,
    threads: int = 1,
) -> dict[str, np.ndarray]:
    """Discrepancies ``(n, M, M)`` and per-model ``foreground``/``dominant`` ``(n, M)`` of one chunk.

    uint8 maps on the CPU go through the integer, bit-packed kernels
    (:func:`~mdc_widgets.discrepancy.kernels.map_statistics`, on ``threads``
    slices of the images at once); other devices and dtypes through the
    torch reference path (:func:`_chunk_matrix`).
    """
    if maps.device.type == "cpu" and maps.dtype == torch.uint8 and num_classes <= 256:
        stats = _threaded_map_statistics(maps.numpy(), tasks, num_classes, sod_measure, threads)
        for i, task in enumerate(tasks):
            if task == "ss" and stats["max_label"][i] >= num_classes:
                _refuse_label(models[i] if models else i, int(stats["max_label"][i]), num_classes)
        return stats
    out = _chunk_matrix(maps, tasks, num_classes, sod_measure, models)
    n, m = maps.shape[:2]
    flat = maps.reshape(n, m, -1)
    foreground = torch.zeros((n, m), dtype=torch.float64, device=maps.device)
    dominant = torch.full((n, m), -1, dtype=torch.int64, device=maps.device)
    for i, task in enumerate(tasks):
        if task == "ss":
            foreground[:, i] = (flat[:, i] > 0).double().mean(-1)
            offsets = torch.arange(n, device=maps.device)[:, None] * num_classes
            counts = torch.bincount((flat[:, i].long() + offsets).reshape(-1), minlength=n * num_classes)
            counts = counts.reshape(n, num_classes)[:, 1:]
            if counts.shape[1]:
                dominant[:, i] = torch.where(counts.amax(1) > 0, counts.argmax(1) + 1, 0)
            else:
                dominant[:, i] = 0
        else:
            foreground[:, i] = binarize_saliency(flat[:, i]).double().mean(-1)
    return {
        "discrepancy": out.cpu().numpy(),
        "foreground": foreground.cpu().numpy(),
        "dominant": dominant.cpu().numpy(),
    }


def _chunk_matrix(
    maps: torch.Tensor, tasks: list[str], num_classes: int, sod_measure: str, models: Sequence[str] | None = None
) -> torch.Tensor:
    """``(n, M, M)`` discrepancies of one chunk ``maps (n, M, H, W)``: the torch reference path (any device)."""
    n, m = maps.shape[:2]
    out = torch.zeros((n, m, m), dtype=torch.float64, device=maps.device)
    ss = [i for i, t in enumerate(tasks) if t == "ss"]
    sod = [i for i, t in enumerate(tasks) if t == "sod"]
    # SS vs SS: every pair's confusion counts in one bincount over (pair, image, a, b)
    for i in ss:
        if maps.shape[0] and int(maps[:, i].max()) >= num_classes:
            _refuse_label(models[i] if models else i, int(maps[:, i].max()), num_classes)
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


def pairwise_statistics(
    predictions: xr.Dataset,
    *,
    sod_measure: str = "iou",
    downsample: int = 1,
    device: str | None = "auto",
    chunk_size: int = 512,
    threads: int | None = None,
) -> xr.Dataset:
    """Every pair's discrepancy and each model's foreground fraction and dominant class, in one pass.

    The mining passes that used to re-read the maps (foreground area,
    dominant class) come from the same read and the same class histograms
    as the confusion counts.

    Parameters
    ----------
    predictions : xr.Dataset
        ``open_predictions`` output: ``prediction (sample, model, y, x)`` uint8
        with coord ``task (model)``; may be dask-backed (read chunk by chunk).
    sod_measure : str, optional
        ``"iou"`` (1 - IoU of binarised maps) or ``"mae"`` for SOD pairs.
    downsample : int, optional
        Integer factor to score at reduced resolution (labels nearest,
        saliency by area); the statistics are then at that resolution too.
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).
    chunk_size : int, optional
        Images per vectorised pass.
    threads : int or None, optional
        CPU threads for the uint8 kernels, each scoring a slice of a chunk's
        images (default: the cores this process may use, at most 8).

    Returns
    -------
    xr.Dataset
        ``discrepancy (sample, model_a, model_b)`` as :func:`compute_discrepancies`
        returns it, ``foreground (sample, model)`` float (fraction of
        foreground pixels: SS non-background, SOD adaptively binarised) and
        ``dominant_class (sample, model)`` int (SS: most frequent
        non-background class, 0 if none; SOD: -1).

    Raises
    ------
    OptionError
        ``sod_measure`` is neither ``"iou"`` nor ``"mae"``.

    Examples
    --------
    >>> maps = np.zeros((2, 2, 4, 4), np.uint8); maps[0, 0, :2] = 1; maps[:, 1, :2] = 255
    >>> ds = xr.Dataset({"prediction": (("sample", "model", "y", "x"), maps)},
    ...                 coords={"model": ["a", "p"], "task": ("model", ["ss", "sod"])})
    >>> stats = pairwise_statistics(ds, device="cpu")
    >>> stats["discrepancy"].values[:, 0, 1].tolist(), stats["foreground"].values.tolist()
    ([0.0, 1.0], [[0.5, 0.5], [0.0, 0.5]])
    """
    if sod_measure not in ("iou", "mae"):
        raise OptionError(f"Unknown SOD discrepancy measure {sod_measure!r}; use 'iou' or 'mae'.")
    device = resolve_device(device)
    threads = _default_threads() if threads is None else max(1, int(threads))
    models = [str(m) for m in predictions["model"].values]
    tasks = [str(t) for t in predictions["task"].values]
    num_classes = _num_classes(predictions, [m for m, t in zip(models, tasks) if t == "ss"])
    pred = predictions["prediction"].transpose("sample", "model", "y", "x")
    n, m = pred.sizes["sample"], len(models)
    result = np.zeros((n, m, m), dtype=np.float32)
    foreground = np.zeros((n, m), dtype=np.float64)
    dominant = np.full((n, m), -1, dtype=np.int64)
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        maps = torch.from_numpy(np.ascontiguousarray(pred.isel(sample=slice(lo, hi)).values)).to(device)
        if downsample > 1:
            parts = [
                downsample_labels(maps[:, i], downsample) if t == "ss" else downsample_saliency(maps[:, i], downsample)
                for i, t in enumerate(tasks)
            ]
            maps = torch.stack(parts, 1)
        stats = _chunk_statistics(maps, tasks, num_classes, sod_measure, models, threads)
        result[lo:hi] = stats["discrepancy"]
        foreground[lo:hi] = stats["foreground"]
        dominant[lo:hi] = stats["dominant"]
    kind = np.array(
        [[pair_kind(ta, tb, ma == mb) for mb, tb in zip(models, tasks)] for ma, ta in zip(models, tasks)], dtype=object
    )
    samples = predictions["sample"].values
    discrepancy = xr.DataArray(
        result,
        dims=("sample", "model_a", "model_b"),
        coords={"sample": samples, "model_a": models, "model_b": models, "kind": (("model_a", "model_b"), kind)},
        name="discrepancy",
        attrs={"sod_measure": sod_measure, "downsample": int(downsample)},
    )
    return xr.Dataset(
        {
            "discrepancy": discrepancy,
            "foreground": (("sample", "model"), foreground),
            "dominant_class": (("sample", "model"), dominant),
        },
        coords={"model": models, "task": ("model", tasks)},
    )


def compute_discrepancies(
    predictions: xr.Dataset,
    *,
    sod_measure: str = "iou",
    downsample: int = 1,
    device: str | None = "auto",
    chunk_size: int = 512,
    threads: int | None = None,
) -> xr.DataArray:
    """Discrepancy of every pair of models on every image of the pool.

    On the CPU, uint8 maps are scored by integer, bit-packed kernels
    (:mod:`mdc_widgets.discrepancy.kernels`); elsewhere by batched torch ops.
    Both give the formulas of :mod:`mdc_widgets.discrepancy.ops`.

    Parameters
    ----------
    predictions : xr.Dataset
        ``open_predictions`` output: ``prediction (sample, model, y, x)``
        uint8 with coord ``task (model)``; may be dask-backed (read chunk by chunk).
    sod_measure : str, optional
        ``"iou"`` (1 - IoU of binarised maps) or ``"mae"`` for SOD pairs.
    downsample : int, optional
        Integer factor to score at reduced resolution (labels nearest,
        saliency by area).
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).
    chunk_size : int, optional
        Images per vectorised pass.
    threads : int or None, optional
        CPU threads for the uint8 kernels, each scoring a slice of a chunk's
        images (default: the cores this process may use, at most 8).

    Returns
    -------
    xr.DataArray
        ``(sample, model_a, model_b)`` float, symmetric, 0 on the diagonal,
        with coord ``kind (model_a, model_b)`` in ``{"ss", "sod", "cross", "self"}``.
    """
    stats = pairwise_statistics(
        predictions,
        sod_measure=sod_measure,
        downsample=downsample,
        device=device,
        chunk_size=chunk_size,
        threads=threads,
    )
    return stats["discrepancy"]
