"""Segmentation and saliency metrics against ground truth: batched, vectorised, numpy or torch in and out.

Saliency conventions follow PySODMetrics with ``normalize=False`` by default:
the map is divided by 255 and *not* min-max stretched (a near-empty map stays
near-empty), ground truth is ``gt > 128``, beta^2 = 0.3. ``normalize=True`` on
every saliency metric applies PySODMetrics' default preprocessing (MATLAB
``mapminmax``: each map stretched to [0, 1] unless it is constant), so numbers
compare with published tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mdc_widgets._array import _out, as_tensor, saliency_to_float
from mdc_widgets.discrepancy.ops import confusion_counts, mean_iou_from_confusion

__all__ = [
    "fbeta_adaptive",
    "fbeta_curve",
    "fbeta_max",
    "foreground_iou",
    "mae",
    "miou",
    "miou_from_confusion",
    "pixel_accuracy",
    "s_measure",
    "segmentation_confusion",
]

EPS = float(np.spacing(1))


def _saliency(ts: torch.Tensor, normalize: bool) -> torch.Tensor:
    """Saliency in [0, 1]; with ``normalize`` each map min-max stretched (in float64, as PySODMetrics)."""
    s = saliency_to_float(ts)
    if not normalize:
        return s
    s = s.double() if ts.dtype != torch.uint8 else ts.double() / 255.0
    dims = tuple(range(1, s.ndim))
    low, high = s.amin(dims, keepdim=True), s.amax(dims, keepdim=True)
    return torch.where(high > low, (s - low) / torch.where(high > low, high - low, torch.ones_like(high)), s)


def _gt_bool(gt: torch.Tensor) -> torch.Tensor:
    return gt > 128 if gt.dtype == torch.uint8 else gt.bool()


def segmentation_confusion(pred: Any, gt: Any, num_classes: int, ignore_index: int = 255) -> Any:
    """Per-image confusion ``(n, C, C)`` with rows = ground truth, columns = prediction; ignored pixels dropped.

    Parameters
    ----------
    pred : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer predicted class indices.
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer ground-truth class indices.
    num_classes : int
        ``C``; indices must lie in ``0..C-1`` (apart from ``ignore_index``).
    ignore_index : int, optional
        Ground-truth value of pixels left out (VOC's 255 boundary / unlabeled).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n, C, C)`` int64 pixel counts, the kind of ``pred``.
    """
    tp, was_numpy = as_tensor(pred)
    tg = as_tensor(gt)[0].to(tp.device)
    c = int(num_classes)
    # ignored pixels go to an extra ground-truth class whose row is dropped afterwards
    tg = torch.where(tg == ignore_index, torch.full_like(tg, c), tg)
    conf = confusion_counts(tg, tp, c + 1)[:, :c, :c]
    return _out(conf, was_numpy)


def miou_from_confusion(conf: Any) -> Any:
    """Mean IoU over classes present in prediction or ground truth, for ``(C, C)`` or ``(n, C, C)``; NaN if none.

    Parameters
    ----------
    conf : numpy.ndarray or torch.Tensor
        Confusion counts, rows = ground truth, columns = prediction
        (:func:`segmentation_confusion`, or its sum over images).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float64 mean IoU in [0, 1]: a scalar for ``(C, C)``, ``(n,)`` for ``(n, C, C)``.
    """
    t, was_numpy = as_tensor(conf)
    return _out(mean_iou_from_confusion(t, empty=float("nan")), was_numpy)


def miou(pred: Any, gt: Any, num_classes: int, per_image: bool = True, ignore_index: int = 255) -> Any:
    """Mean IoU: per image ``(n,)``, or over the set from the accumulated confusion (a scalar).

    A class counts when it appears in the prediction or the ground truth of
    the image (of the set, with ``per_image=False``).

    Parameters
    ----------
    pred : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer predicted class indices.
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer ground-truth class indices.
    num_classes : int
        Number of classes ``C``, background included.
    per_image : bool, optional
        True: one value per image; False: one value for the whole batch from
        the summed confusion (what segmentation benchmarks report).
    ignore_index : int, optional
        Ground-truth value of pixels left out (VOC's 255 boundary / unlabeled).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float64 in [0, 1], NaN for an image with only ignored pixels.

    Examples
    --------
    >>> gt = np.array([[[0, 1], [1, 1]]]); pred = np.array([[[0, 1], [0, 1]]])
    >>> miou(pred, gt, 2).round(4).tolist()  # background 1/2, class 1 2/3
    [0.5833]
    """
    conf = segmentation_confusion(pred, gt, num_classes, ignore_index)
    return miou_from_confusion(conf) if per_image else miou_from_confusion(conf.sum(0))


def pixel_accuracy(pred: Any, gt: Any, ignore_index: int = 255) -> Any:
    """Fraction of non-ignored pixels labeled correctly, per image.

    Parameters
    ----------
    pred : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer predicted class indices.
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` integer ground-truth class indices.
    ignore_index : int, optional
        Ground-truth value of pixels left out (VOC's 255 boundary / unlabeled).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1] (0 for an image with only ignored pixels).
    """
    tp, was_numpy = as_tensor(pred)
    tg = as_tensor(gt)[0].to(tp.device)
    valid = tg != ignore_index
    dims = tuple(range(1, tp.ndim))
    correct = ((tp.long() == tg.long()) & valid).sum(dims).double()
    return _out(correct / valid.sum(dims).clamp_min(1).double(), was_numpy)


def mae(saliency: Any, gt: Any, normalize: bool = False) -> Any:
    """Mean absolute error between the saliency map in [0, 1] and the binary ground truth, per image.

    Parameters
    ----------
    saliency : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency maps: uint8 0..255, or float in [0, 1].
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` ground truth: uint8 (salient where ``> 128``) or bool.
    normalize : bool, optional
        Min-max stretch each map to [0, 1] first (PySODMetrics' default); a
        constant map is left as it is.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1]; lower is better.

    Examples
    --------
    >>> s = np.array([[[100, 120], [100, 100]]], np.uint8); gt = np.array([[[255, 0], [0, 0]]], np.uint8)
    >>> mae(s, gt).round(4).tolist(), mae(s, gt, normalize=True).tolist()  # stretched: 0 and 1
    ([0.4657], [0.5])
    """
    ts, was_numpy = as_tensor(saliency)
    tg = _gt_bool(as_tensor(gt)[0].to(ts.device))
    dims = tuple(range(1, ts.ndim))
    return _out((_saliency(ts, normalize).double() - tg.double()).abs().mean(dims), was_numpy)


def fbeta_curve(saliency: Any, gt: Any, beta2: float = 0.3, normalize: bool = False) -> Any:
    """F-beta at the 256 thresholds 255..0 (index k: threshold ``255 - k``), per image ``(n, 256)``.

    Histograms of the foreground and background pixels of every image come from
    one ``bincount``; cumulative sums give the counts above each threshold.

    Parameters
    ----------
    saliency : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency maps: uint8 0..255, or float in [0, 1].
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` ground truth: uint8 (salient where ``> 128``) or bool.
    beta2 : float, optional
        beta squared; 0.3 weighs precision above recall, as the SOD literature does.
    normalize : bool, optional
        Min-max stretch each map to [0, 1] first (PySODMetrics' default); a
        constant map is left as it is.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n, 256)`` float64 in [0, 1]; 0 where nothing is predicted or found.
    """
    ts, was_numpy = as_tensor(saliency)
    tg = _gt_bool(as_tensor(gt)[0].to(ts.device))
    n = ts.shape[0]
    values = (_saliency(ts, normalize) * 255).to(torch.uint8).long().reshape(n, -1)  # PySOD truncates
    fg = tg.reshape(n, -1)
    index = torch.arange(n, device=ts.device)[:, None] * 512 + fg.long() * 256 + values
    hist = torch.bincount(index.reshape(-1), minlength=n * 512).reshape(n, 2, 256).double()
    above = hist.flip(-1).cumsum(-1)  # pixels >= 255, >= 254, ...
    tp = above[:, 1]
    predicted = (above[:, 0] + above[:, 1]).clamp_min(1)
    positives = fg.sum(-1, keepdim=True).double().clamp_min(1)
    precision, recall = tp / predicted, tp / positives
    numerator = (1 + beta2) * precision * recall
    denominator = torch.where(numerator == 0, torch.ones_like(numerator), beta2 * precision + recall)
    return _out(numerator / denominator, was_numpy)


def fbeta_max(saliency: Any, gt: Any, beta2: float = 0.3, normalize: bool = False) -> Any:
    """The best F-beta over thresholds of each image's own curve, per image.

    PySODMetrics' "max F" of a *dataset* is the maximum of the mean curve
    (one threshold for all images): see :func:`mdc_widgets.metrics.summarize`.

    Parameters
    ----------
    saliency : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency maps: uint8 0..255, or float in [0, 1].
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` ground truth: uint8 (salient where ``> 128``) or bool.
    beta2 : float, optional
        beta squared; 0.3 weighs precision above recall, as the SOD literature does.
    normalize : bool, optional
        Min-max stretch each map to [0, 1] first (PySODMetrics' default); a
        constant map is left as it is.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1]; higher is better.

    References
    ----------
    .. [1] R. Achanta, S. Hemami, F. Estrada and S. Süsstrunk, "Frequency-tuned salient region
           detection," CVPR 2009, pp. 1597-1604. https://doi.org/10.1109/CVPR.2009.5206596
    """
    curve = fbeta_curve(saliency, gt, beta2, normalize)
    return curve.max(-1) if isinstance(curve, np.ndarray) else curve.max(-1).values


def fbeta_adaptive(saliency: Any, gt: Any, beta2: float = 0.3, normalize: bool = False) -> Any:
    """F-beta at the adaptive threshold ``min(2 * mean, 1)``, per image (0 when nothing is found).

    Parameters
    ----------
    saliency : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency maps: uint8 0..255, or float in [0, 1].
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` ground truth: uint8 (salient where ``> 128``) or bool.
    beta2 : float, optional
        beta squared; 0.3 weighs precision above recall, as the SOD literature does.
    normalize : bool, optional
        Min-max stretch each map to [0, 1] first (PySODMetrics' default); a
        constant map is left as it is.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1]; higher is better.

    References
    ----------
    .. [1] R. Achanta, S. Hemami, F. Estrada and S. Süsstrunk, "Frequency-tuned salient region
           detection," CVPR 2009, pp. 1597-1604. https://doi.org/10.1109/CVPR.2009.5206596
    """
    ts, was_numpy = as_tensor(saliency)
    tg = _gt_bool(as_tensor(gt)[0].to(ts.device))
    s = _saliency(ts, normalize).double()
    dims = tuple(range(1, s.ndim))
    threshold = (2 * s.mean(dims, keepdim=True)).clamp(max=1)
    binary = s >= threshold
    inter = (binary & tg).sum(dims).double()
    precision = inter / binary.sum(dims).clamp_min(1).double()
    recall = inter / tg.sum(dims).clamp_min(1).double()
    f = (1 + beta2) * precision * recall / (beta2 * precision + recall).clamp_min(EPS)
    return _out(torch.where(inter > 0, f, torch.zeros_like(f)), was_numpy)


def foreground_iou(foreground: Any, gt: Any) -> Any:
    """IoU of a binary foreground (bool, or uint8 > 0) with the ground truth's foreground, per image; NaN if both empty.

    Parameters
    ----------
    foreground : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` bool, or numbers where ``> 0`` is foreground (e.g. an SS
        label map: any class but background).
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` uint8 (foreground where ``> 128``) or bool.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1].

    Examples
    --------
    >>> fg = np.array([[[True, True], [False, False]]])
    >>> gt = np.array([[[255, 0], [0, 0]]], np.uint8)
    >>> foreground_iou(fg, gt).tolist()
    [0.5]
    """
    tf, was_numpy = as_tensor(foreground)
    tf = tf.bool() if tf.dtype == torch.bool else tf > 0
    tg = _gt_bool(as_tensor(gt)[0].to(tf.device))
    dims = tuple(range(1, tf.ndim))
    inter = (tf & tg).sum(dims).double()
    union = (tf | tg).sum(dims).double()
    iou = torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(union, float("nan")))
    return _out(iou, was_numpy)


def _masked_stats(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Count, mean and sample std of ``x`` over ``mask`` per image (dims 1, 2)."""
    m = mask.double()
    count = m.sum((1, 2))
    mean = (x * m).sum((1, 2)) / count.clamp_min(1)
    var = (((x - mean[:, None, None]) * m) ** 2).sum((1, 2)) / (count - 1).clamp_min(1)
    return count, mean, torch.where(count > 1, var.sqrt(), torch.zeros_like(var))


def _s_object(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    _, mean, std = _masked_stats(x, mask)
    return 2 * mean / (mean**2 + 1 + std + EPS)


def _ssim_masked(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.double()
    count = m.sum((1, 2))
    denom = count - 1 + EPS
    x = (pred * m).sum((1, 2)) / count.clamp_min(1)
    y = (gt * m).sum((1, 2)) / count.clamp_min(1)
    dx, dy = (pred - x[:, None, None]) * m, (gt - y[:, None, None]) * m
    sx, sy, sxy = (dx**2).sum((1, 2)) / denom, (dy**2).sum((1, 2)) / denom, (dx * dy).sum((1, 2)) / denom
    alpha = 4 * x * y * sxy
    beta = (x**2 + y**2) * (sx + sy)
    score = torch.where(
        alpha != 0, alpha / (beta + EPS), torch.where(beta == 0, torch.ones_like(beta), torch.zeros_like(beta))
    )
    return torch.where(count > 0, score, torch.zeros_like(score))


def s_measure(saliency: Any, gt: Any, alpha: float = 0.5, normalize: bool = False) -> Any:
    """Structure measure (Fan et al., ICCV 2017): object-aware and region-aware similarity, per image.

    Vectorised over the batch: each image's four quadrants around its
    ground-truth centroid are boolean masks, so no loop over images is needed.
    An all-background ground truth scores ``1 - mean(s)``, an all-foreground
    one ``mean(s)``.

    Parameters
    ----------
    saliency : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` saliency maps: uint8 0..255, or float in [0, 1].
    gt : numpy.ndarray or torch.Tensor
        ``(n, H, W)`` ground truth: uint8 (salient where ``> 128``) or bool.
    alpha : float, optional
        Weight of the object-aware term; ``1 - alpha`` weighs the region-aware term.
    normalize : bool, optional
        Min-max stretch each map to [0, 1] first (PySODMetrics' default); a
        constant map is left as it is.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        ``(n,)`` float64 in [0, 1]; higher is better.

    References
    ----------
    .. [1] D.-P. Fan, M.-M. Cheng, Y. Liu, T. Li and A. Borji, "Structure-measure: A new way to
           evaluate foreground maps," ICCV 2017, pp. 4558-4567. https://doi.org/10.1109/ICCV.2017.487
    """
    ts, was_numpy = as_tensor(saliency)
    pred = _saliency(ts, normalize).double()
    g = _gt_bool(as_tensor(gt)[0].to(ts.device))
    gd = g.double()
    n, h, w = pred.shape
    y_mean = gd.mean((1, 2))
    # object-aware
    obj = _s_object(pred, g) * y_mean + _s_object(1 - pred, ~g) * (1 - y_mean)
    # region-aware: quadrants split at the (rounded) foreground centroid, as in the MATLAB code
    yy = torch.arange(h, device=pred.device, dtype=torch.float64)[None, :, None]
    xx = torch.arange(w, device=pred.device, dtype=torch.float64)[None, None, :]
    count = gd.sum((1, 2))
    cy = torch.where(count > 0, (gd * yy).sum((1, 2)) / count.clamp_min(1), torch.full_like(count, h / 2))
    cx = torch.where(count > 0, (gd * xx).sum((1, 2)) / count.clamp_min(1), torch.full_like(count, w / 2))
    cy, cx = torch.round(cy) + 1, torch.round(cx) + 1
    top, left = yy < cy[:, None, None], xx < cx[:, None, None]
    area = float(h * w)
    w_lt = cx * cy / area
    w_rt = cy * (w - cx) / area
    w_lb = (h - cy) * cx / area
    w_rb = 1 - w_lt - w_rt - w_lb
    region = (
        _ssim_masked(pred, gd, top & left) * w_lt
        + _ssim_masked(pred, gd, top & ~left) * w_rt
        + _ssim_masked(pred, gd, ~top & left) * w_lb
        + _ssim_masked(pred, gd, ~top & ~left) * w_rb
    )
    score = (alpha * obj + (1 - alpha) * region).clamp_min(0)
    mean_pred = pred.mean((1, 2))
    score = torch.where(y_mean == 0, 1 - mean_pred, torch.where(y_mean == 1, mean_pred, score))
    return _out(score, was_numpy)
