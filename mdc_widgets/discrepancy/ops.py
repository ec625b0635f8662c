"""Discrepancy measures between two models' maps: small pure functions, batched over images.

Every function takes numpy arrays or torch tensors with a leading sample
axis, computes in torch (so CUDA tensors stay on the GPU) and returns the
kind it was given. Values are in [0, 1]: 0 = the models agree, 1 = they
disagree completely. Per-image confusion counts come from one ``bincount``
over the whole batch, never a Python loop over images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mdc_widgets._array import _out, as_tensor, saliency_to_float
from mdc_widgets.errors import OptionError, ShapeError

__all__ = [
    "as_tensor",
    "binarize_saliency",
    "confusion_counts",
    "cross_task_discrepancy",
    "downsample_labels",
    "downsample_saliency",
    "iou_binary",
    "mean_iou_from_confusion",
    "saliency_to_float",
    "sod_discrepancy",
    "ss_discrepancy",
]


def confusion_counts(a: Any, b: Any, num_classes: int) -> Any:
    """Per-image confusion counts ``(n, C, C)``: entry ``[i, p, q]`` counts pixels with ``a == p`` and ``b == q``.

    Parameters
    ----------
    a : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer labels in ``0..C-1`` (the rows).
    b : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer labels in ``0..C-1`` (the columns).
    num_classes : int
        ``C``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n, C, C)`` int64 counts, the kind of ``a``.

    Raises
    ------
    ShapeError
        A label lies outside ``0..num_classes-1``.

    Examples
    --------
    >>> a = np.array([[[0, 1], [1, 1]]])
    >>> b = np.array([[[0, 1], [0, 1]]])
    >>> confusion_counts(a, b, 2)[0].tolist()
    [[1, 0], [1, 2]]
    """
    ta, was_numpy = as_tensor(a)
    tb, _ = as_tensor(b)
    tb = tb.to(ta.device)
    n = ta.shape[0]
    c = int(num_classes)
    for name, t in (("first", ta), ("second", tb)):
        # a label past the class list would be counted in the next image's block: refuse it
        if t.numel() and (int(t.max()) >= c or int(t.min()) < 0):
            raise ShapeError(
                f"The {name} label map holds label {int(t.max()) if int(t.max()) >= c else int(t.min())}, "
                f"outside num_classes={c}; fix the model's class list or its output."
            )
    offset = torch.arange(n, device=ta.device).view(-1, *[1] * (ta.ndim - 1)) * (c * c)
    flat = (offset + ta.long() * c + tb.long()).reshape(-1)
    counts = torch.bincount(flat, minlength=n * c * c).reshape(n, c, c)
    return _out(counts, was_numpy)


def mean_iou_from_confusion(conf: torch.Tensor, empty: float = 1.0) -> torch.Tensor:
    """Mean IoU over the classes present in either map, from ``(..., C, C)`` counts.

    ``empty`` is the value when no class is present at all: 1 for a
    discrepancy (two empty maps agree), NaN for a metric (nothing to score).

    Parameters
    ----------
    conf : torch.Tensor
        ``(..., C, C)`` confusion counts.
    empty : float, optional
        The value where no class is present.

    Returns
    -------
    torch.Tensor
        float64 ``(...)`` mean IoU in [0, 1], or ``empty``.
    """
    conf = conf.double()
    inter = torch.diagonal(conf, dim1=-2, dim2=-1)
    union = conf.sum(-1) + conf.sum(-2) - inter
    present = union > 0
    iou = torch.where(present, inter / union.clamp_min(1), torch.zeros_like(inter))
    n_present = present.sum(-1)
    return torch.where(n_present > 0, iou.sum(-1) / n_present.clamp_min(1), torch.full_like(iou.sum(-1), float(empty)))


def binarize_saliency(s: Any) -> Any:
    """Adaptive binarisation: ``s >= min(2 * mean(s), 1)`` per image; an all-zero map is all background.

    uint8 maps (0..255) are compared in exact integers (``s >= ceil(2 S / P)``
    for ``P`` pixels summing to ``S``), so a pixel exactly at the threshold is
    salient whatever the float rounding of the mean.

    Parameters
    ----------
    s : numpy.ndarray or torch.Tensor
        ``(n, ...)`` saliency, uint8 0..255 or float in [0, 1].

    Returns
    -------
    numpy.ndarray or torch.Tensor
        bool, the shape of ``s``, the kind of ``s``.

    Examples
    --------
    >>> s = np.array([[[0, 10], [200, 255]]], dtype=np.uint8)  # mean 0.45: threshold 0.91
    >>> binarize_saliency(s)[0].tolist()
    [[False, False], [False, True]]
    """
    t, was_numpy = as_tensor(s)
    dims = tuple(range(1, t.ndim))
    if t.dtype == torch.uint8:
        # exact in integers: s / 255 >= 2 S / (255 P)  <=>  s >= ceil(2 S / P); a float mean can round a tie away
        pixels = max(1, int(np.prod(t.shape[1:])))
        total = t.sum(dim=dims, keepdim=True, dtype=torch.int64)
        threshold = torch.div(2 * total + pixels - 1, pixels, rounding_mode="floor").clamp(1, 255)
        return _out(t >= threshold, was_numpy)
    sal = saliency_to_float(t)
    threshold = (2 * sal.mean(dim=dims, keepdim=True)).clamp(max=1.0)
    return _out((sal >= threshold) & (sal > 0), was_numpy)


def iou_binary(x: Any, y: Any) -> Any:
    """IoU of two boolean maps per image; 1 when both are empty.

    Parameters
    ----------
    x : numpy.ndarray or torch.Tensor
        ``(n, ...)`` boolean (or 0/1) maps.
    y : numpy.ndarray or torch.Tensor
        ``(n, ...)`` boolean (or 0/1) maps, the shape of ``x``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 IoU in [0, 1], the kind of ``x``.

    Examples
    --------
    >>> iou_binary(np.array([[[1, 1, 0, 0]]], bool), np.array([[[0, 1, 1, 0]]], bool)).round(3).tolist()
    [0.333]
    """
    tx, was_numpy = as_tensor(x)
    ty, _ = as_tensor(y)
    ty = ty.to(tx.device)
    dims = tuple(range(1, tx.ndim))
    inter = (tx.bool() & ty.bool()).sum(dim=dims).double()
    union = (tx.bool() | ty.bool()).sum(dim=dims).double()
    return _out(torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)), was_numpy)


def ss_discrepancy(a: Any, b: Any, num_classes: int) -> Any:
    """``1 - mIoU(a, b)`` per image, mean over classes present in either map; 0 when both are all background.

    Parameters
    ----------
    a : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer labels of one model.
    b : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer labels of the other model.
    num_classes : int
        Number of classes ``C``, background (0) included.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1], the kind of ``a``.

    Examples
    --------
    >>> a = np.zeros((2, 4, 4), np.uint8); b = a.copy()
    >>> b[1, :2] = 1  # the second image: half the pixels disagree
    >>> ss_discrepancy(a, b, 3).round(3).tolist()
    [0.0, 0.75]
    """
    ta, was_numpy = as_tensor(a)
    conf = confusion_counts(ta, as_tensor(b)[0].to(ta.device), num_classes)
    return _out(1.0 - mean_iou_from_confusion(conf), was_numpy)


def sod_discrepancy(s: Any, t: Any, measure: str = "iou") -> Any:
    """Disagreement of two saliency maps per image: ``1 - IoU`` of the binarised maps, or the MAE.

    Parameters
    ----------
    s : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency of one model, uint8 0..255 or float in [0, 1].
    t : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency of the other model.
    measure : {"iou", "mae"}, optional
        ``"iou"``: ``1 - IoU`` of the adaptively binarised maps
        (:func:`binarize_saliency`); ``"mae"``: mean absolute difference.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1], the kind of ``s``.

    Raises
    ------
    OptionError
        ``measure`` is neither ``"iou"`` nor ``"mae"``.

    Examples
    --------
    >>> s = np.zeros((1, 4, 4), np.uint8); s[0, :2] = 255
    >>> float(sod_discrepancy(s, s)[0]), float(sod_discrepancy(s, 255 - s, "mae")[0])
    (0.0, 1.0)
    """
    ts, was_numpy = as_tensor(s)
    tt = as_tensor(t)[0].to(ts.device)
    if measure == "iou":
        return _out(1.0 - iou_binary(binarize_saliency(ts), binarize_saliency(tt)), was_numpy)
    if measure == "mae":
        dims = tuple(range(1, ts.ndim))
        return _out((saliency_to_float(ts) - saliency_to_float(tt)).abs().mean(dim=dims).double(), was_numpy)
    raise OptionError(f"Unknown SOD discrepancy measure {measure!r}; use 'iou' or 'mae'.")


def cross_task_discrepancy(labels: Any, saliency: Any) -> Any:
    """``1 - IoU(F, B)``: the SS foreground (every non-background class) against the binarised saliency.

    Parameters
    ----------
    labels : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer SS labels; 0 is background.
    saliency : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency, uint8 0..255 or float in [0, 1].

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1], the kind of ``labels``.

    Examples
    --------
    >>> labels = np.zeros((1, 4, 4), np.uint8); labels[0, :2] = 3
    >>> sal = np.where(labels > 0, 255, 0).astype(np.uint8)
    >>> float(cross_task_discrepancy(labels, sal)[0])
    0.0
    """
    tl, was_numpy = as_tensor(labels)
    ts = as_tensor(saliency)[0].to(tl.device)
    return _out(1.0 - iou_binary(tl > 0, binarize_saliency(ts)), was_numpy)


def downsample_labels(labels: Any, factor: int) -> Any:
    """Nearest-neighbour downsampling of label maps by an integer factor (no new labels appear).

    Parameters
    ----------
    labels : numpy.ndarray or torch.Tensor
        ``(..., H, W)`` integer labels.
    factor : int
        Keep every ``factor``-th pixel per side; 1 or less returns ``labels`` unchanged.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(..., H // factor, W // factor)``, the kind and dtype of ``labels``.
    """
    if factor <= 1:
        return labels
    t, was_numpy = as_tensor(labels)
    # crop to a multiple of the factor so labels and area-pooled saliency keep the same size
    h, w = (t.shape[-2] // factor) * factor, (t.shape[-1] // factor) * factor
    return _out(t[..., :h:factor, :w:factor].contiguous(), was_numpy)


def downsample_saliency(saliency: Any, factor: int) -> Any:
    """Area (mean) downsampling of saliency maps by an integer factor; keeps the input dtype.

    Parameters
    ----------
    saliency : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency, uint8 0..255 or float in [0, 1].
    factor : int
        Average ``factor`` x ``factor`` blocks; 1 or less returns ``saliency`` unchanged.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n, H // factor, W // factor)``, the kind and dtype of ``saliency``.
    """
    if factor <= 1:
        return saliency
    t, was_numpy = as_tensor(saliency)
    pooled = F.avg_pool2d(saliency_to_float(t)[:, None], factor)[:, 0]
    if t.dtype == torch.uint8:
        pooled = (pooled * 255).round().to(torch.uint8)
    return _out(pooled, was_numpy)
