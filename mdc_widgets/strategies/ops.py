"""Per-pixel and per-image quantities behind the hard-example strategies: pure, batched torch.

Probabilities are ``(n, C, H, W)``; a SOD saliency ``(n, 1, H, W)`` is read as
the two-class distribution ``(1 - s, s)``, so every formula below serves both
tasks (binary cross-entropy is the two-class cross-entropy, a Bernoulli
entropy the two-class entropy).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

# one definition for the store's entropy maps and the strategies' (re-exported here)
from mdc_widgets._kernels import as_class_probabilities, normalized_entropy

__all__ = [
    "as_class_probabilities",
    "dominant_class_index",
    "entropy_histogram",
    "masked_mean",
    "mutual_information",
    "normalized_entropy",
    "percentile_from_histogram",
    "pixel_cross_entropy",
    "pixel_focal_loss",
    "top_fraction_mean",
    "u2pl_alpha",
    "unreliable_ratio",
]

EPS = 1e-6
_FLOAT16_ONE = 0x3C00  # bit pattern of float16 1.0: non-negative float16 bit patterns sort like their values


def _entropy(probs: torch.Tensor, dim: int) -> torch.Tensor:
    # log(1 / p) rather than -log(p): a certain pixel has entropy +0.0, not -0.0
    return (probs * torch.log(probs.clamp_min(EPS).reciprocal())).sum(dim=dim)


def mutual_information(member_probs: torch.Tensor) -> torch.Tensor:
    """BALD mutual information ``H(mean p) - mean H(p)`` per pixel, over the first axis (the models).

    Parameters
    ----------
    member_probs : torch.Tensor
        ``(M, n, C, H, W)`` (or ``(M, n, 1, H, W)`` saliency) of M models.

    Returns
    -------
    torch.Tensor
        ``(n, H, W)`` in [0, 1] (divided by ``log C``): 0 when the models
        agree, large when each is confident and they disagree.

    Examples
    --------
    >>> agree = torch.tensor([0.9, 0.9]).view(2, 1, 1, 1, 1)
    >>> disagree = torch.tensor([0.99, 0.01]).view(2, 1, 1, 1, 1)
    >>> round(float(mutual_information(agree)), 6), round(float(mutual_information(disagree)), 3)
    (0.0, 0.919)
    """
    probs = torch.stack([as_class_probabilities(p) for p in member_probs])
    mean_entropy = _entropy(probs, 2).mean(0)
    entropy_of_mean = _entropy(probs.mean(0), 1)
    return ((entropy_of_mean - mean_entropy) / math.log(max(probs.shape[2], 2))).clamp_min(0)


def _true_class_probability(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``p_t`` of the labelled class and the mask of pixels whose label is a class (others ignored)."""
    probs = as_class_probabilities(probs)
    labels = labels.long()
    valid = (labels >= 0) & (labels < probs.shape[1])
    p_t = probs.gather(1, labels.clamp(0, probs.shape[1] - 1)[:, None])[:, 0]
    return p_t, valid


def pixel_cross_entropy(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel cross-entropy ``-log p_t`` and the mask of labelled pixels.

    ``labels`` are class indices ``(n, H, W)`` (SOD: 0 / 1); indices outside
    the classes (e.g. 255, the VOC ignore label) are masked out.

    Parameters
    ----------
    probs : torch.Tensor
        ``(n, C, H, W)`` class probabilities, or SOD saliency ``(n, 1, H, W)`` / ``(n, H, W)``.
    labels : torch.Tensor
        ``(n, H, W)`` integer class indices.

    Returns
    -------
    loss : torch.Tensor
        ``(n, H, W)`` per-pixel loss, >= 0.
    mask : torch.Tensor
        ``(n, H, W)`` bool, the pixels whose label is a class.

    Examples
    --------
    >>> p = torch.tensor([[[[0.9, 0.2]], [[0.1, 0.8]]]])  # (1, 2, 1, 2)
    >>> loss, mask = pixel_cross_entropy(p, torch.tensor([[[0, 0]]]))
    >>> [round(v, 4) for v in loss.flatten().tolist()], mask.all().item()
    ([0.1054, 1.6094], True)
    """
    p_t, valid = _true_class_probability(probs, labels)
    return -torch.log(p_t.clamp_min(EPS)), valid


def pixel_focal_loss(
    probs: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel focal loss ``alpha * (1 - p_t)^gamma * (-log p_t)`` and the mask of labelled pixels.

    The focal weight shrinks the loss of confidently right pixels, so an image
    scores high only where the model is wrong or unsure (Lin et al., 2017).

    Parameters
    ----------
    probs : torch.Tensor
        ``(n, C, H, W)`` class probabilities, or SOD saliency ``(n, 1, H, W)`` / ``(n, H, W)``.
    labels : torch.Tensor
        ``(n, H, W)`` integer class indices.
    alpha : float, optional
        The constant factor.
    gamma : float, optional
        The focusing exponent (0: cross-entropy times ``alpha``).

    Returns
    -------
    loss : torch.Tensor
        ``(n, H, W)`` per-pixel loss, >= 0.
    mask : torch.Tensor
        ``(n, H, W)`` bool, the pixels whose label is a class.

    Examples
    --------
    >>> p = torch.tensor([[[[0.9]], [[0.1]]]])
    >>> focal, _ = pixel_focal_loss(p, torch.tensor([[[0]]]), alpha=1.0, gamma=2.0)
    >>> round(float(focal), 6)  # 0.1 ** 2 * -log(0.9)
    0.001054
    """
    p_t, valid = _true_class_probability(probs, labels)
    return alpha * (1 - p_t).clamp_min(0) ** gamma * -torch.log(p_t.clamp_min(EPS)), valid


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``(n, ...)`` values per image over the masked pixels; NaN where none is masked.

    Parameters
    ----------
    values : torch.Tensor
        ``(n, ...)`` per-pixel values.
    mask : torch.Tensor or None, optional
        ``(n, ...)`` bool, the pixels to include; None: all.

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64.

    Examples
    --------
    >>> masked_mean(torch.tensor([[1.0, 3.0], [2.0, 4.0]]), torch.tensor([[True, True], [False, False]])).tolist()
    [2.0, nan]
    """
    flat = values.reshape(values.shape[0], -1).double()
    if mask is None:
        return flat.mean(1)
    m = mask.reshape(mask.shape[0], -1).double()
    count = m.sum(1)
    return torch.where(count > 0, (flat * m).sum(1) / count.clamp_min(1), torch.full_like(count, float("nan")))


def top_fraction_mean(values: torch.Tensor, mask: torch.Tensor | None = None, fraction: float = 1.0) -> torch.Tensor:
    """Mean of the largest ``fraction`` of each image's masked values (OHEM's hardest pixels).

    ``fraction=1`` is :func:`masked_mean`; the count is rounded up, so at least
    one pixel is kept.

    Parameters
    ----------
    values : torch.Tensor
        ``(n, ...)`` per-pixel values.
    mask : torch.Tensor or None, optional
        ``(n, ...)`` bool, the pixels to include; None: all.
    fraction : float, optional
        The share of each image's masked values to average, in (0, 1].

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64, NaN where no pixel is masked.

    Examples
    --------
    >>> top_fraction_mean(torch.tensor([[1.0, 2.0, 3.0, 10.0]]), fraction=0.5).tolist()
    [6.5]
    """
    if fraction >= 1:
        return masked_mean(values, mask)
    flat = values.reshape(values.shape[0], -1).double()
    m = torch.ones_like(flat, dtype=torch.bool) if mask is None else mask.reshape(mask.shape[0], -1)
    ranked = torch.where(m, flat, torch.full_like(flat, -torch.inf)).sort(dim=1, descending=True).values
    keep = (m.sum(1).double() * fraction).ceil().clamp_min(1)
    take = torch.arange(flat.shape[1], device=flat.device)[None] < keep[:, None]
    total = torch.where(take & torch.isfinite(ranked), ranked, torch.zeros_like(ranked)).sum(1)
    return torch.where(m.any(1), total / keep, torch.full_like(total, float("nan")))


def u2pl_alpha(alpha_0: float, step: int, total_steps: int) -> float:
    """U2PL's share of unreliable pixels (percent) at ``step`` of ``total_steps``: ``alpha_0 * (1 - t / T)``.

    Parameters
    ----------
    alpha_0 : float
        The initial share in percent (U2PL: 20).
    step : int
        The current step, clipped to ``0..total_steps``.
    total_steps : int
        The number of steps ``T``, > 0.

    Returns
    -------
    float
        The share in percent, from ``alpha_0`` down to 0.

    References
    ----------
    .. [1] Y. Wang, H. Wang, Y. Shen, J. Fei, W. Li, G. Jin, L. Wu, R. Zhao and X. Le, "Semi-supervised
           semantic segmentation using unreliable pseudo-labels," CVPR 2022, pp. 4248-4257.
           arXiv:2203.03884
    .. [2] H. Wang, Y. Wang, Y. Shen, J. Fan, Y. Wang and Z. Zhang, "Using unreliable pseudo-labels for
           label-efficient semantic segmentation," International Journal of Computer Vision, 2024.
           https://doi.org/10.1007/s11263-024-02229-x

    Examples
    --------
    >>> u2pl_alpha(20.0, 0, 80), u2pl_alpha(20.0, 40, 80), u2pl_alpha(20.0, 80, 80)
    (20.0, 10.0, 0.0)
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive; got {total_steps}.")
    return float(alpha_0) * (1.0 - min(max(step, 0), total_steps) / total_steps)


def entropy_histogram(entropy: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Exact counts of each float16 value in [0, 1] of an entropy batch (``_FLOAT16_ONE + 1`` bins).

    Entropy maps are stored as float16, whose non-negative values sort like
    their bit patterns, so these counts give the exact pool-wide percentile
    from one streaming pass, whatever the pool's size.

    Parameters
    ----------
    entropy : torch.Tensor
        Entropy values in [0, 1], any shape (clipped to [0, 1]).
    mask : torch.Tensor or None, optional
        bool, the shape of ``entropy``: the values to count; None: all.

    Returns
    -------
    torch.Tensor
        ``(_FLOAT16_ONE + 1,)`` int64 counts on the CPU, indexed by float16 bit pattern.
    """
    bits = entropy.clamp(0, 1).to(torch.float16).view(torch.int16).long()
    if mask is not None:
        bits = bits[mask.bool()]
    return torch.bincount(bits.reshape(-1), minlength=_FLOAT16_ONE + 1).cpu()


def percentile_from_histogram(histogram: torch.Tensor, percent: float) -> float:
    """The ``percent`` percentile of the values a float16 :func:`entropy_histogram` counted.

    Linear interpolation between order statistics, as ``numpy.percentile``.

    Parameters
    ----------
    histogram : torch.Tensor
        Counts from :func:`entropy_histogram` (summed over batches).
    percent : float
        In [0, 100] (clipped).

    Returns
    -------
    float
        The percentile, NaN for an empty histogram.

    Examples
    --------
    >>> values = torch.tensor([0.1, 0.2, 0.3, 0.4])
    >>> h = entropy_histogram(values)
    >>> round(percentile_from_histogram(h, 50), 3), round(float(np.percentile(values.half().numpy(), 50)), 3)
    (0.25, 0.25)
    """
    counts = histogram.long().numpy()
    total = int(counts.sum())
    if total == 0:
        return float("nan")
    cumulative = np.cumsum(counts)
    levels = np.arange(len(counts), dtype=np.int16).view(np.float16).astype(np.float64)
    position = min(max(percent, 0.0), 100.0) / 100.0 * (total - 1)
    lo, hi = int(np.floor(position)), int(np.ceil(position))
    v_lo, v_hi = levels[np.searchsorted(cumulative, [lo, hi], side="right")]
    return float(v_lo + (v_hi - v_lo) * (position - lo))


def unreliable_ratio(entropy: torch.Tensor, threshold: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, the fraction of pixels with entropy ``>= threshold`` (U2PL's unreliable pixels).

    Parameters
    ----------
    entropy : torch.Tensor
        ``(n, ...)`` normalised entropy in [0, 1].
    threshold : float
        The entropy from which a pixel is unreliable (U2PL: the pool's ``100 - alpha`` percentile).
    mask : torch.Tensor or None, optional
        ``(n, ...)`` bool, the pixels to include; None: all.

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64 in [0, 1], NaN where no pixel is masked.

    References
    ----------
    .. [1] Y. Wang, H. Wang, Y. Shen, J. Fei, W. Li, G. Jin, L. Wu, R. Zhao and X. Le, "Semi-supervised
           semantic segmentation using unreliable pseudo-labels," CVPR 2022, pp. 4248-4257.
           arXiv:2203.03884
    .. [2] H. Wang, Y. Wang, Y. Shen, J. Fan, Y. Wang and Z. Zhang, "Using unreliable pseudo-labels for
           label-efficient semantic segmentation," International Journal of Computer Vision, 2024.
           https://doi.org/10.1007/s11263-024-02229-x

    Examples
    --------
    >>> unreliable_ratio(torch.tensor([[0.1, 0.5, 0.9, 0.95]]), 0.85).tolist()
    [0.5]
    """
    above = entropy.double() >= threshold
    return masked_mean(above.double(), mask)


def dominant_class_index(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per image, the index of the non-background class covering most pixels of ``(n, H, W)`` labels; 0 if none.

    The tensor counterpart of ``mining.dominant_class`` (which reads a stored
    model's maps from an ``xr.Dataset``).

    Parameters
    ----------
    labels : torch.Tensor
        ``(n, H, W)`` integer labels in ``0..num_classes-1``.
    num_classes : int
        ``C``, background (0) included.

    Returns
    -------
    torch.Tensor
        ``(n,)`` int64 class indices.

    Examples
    --------
    >>> dominant_class_index(torch.tensor([[[0, 2], [2, 1]], [[0, 0], [0, 0]]]), 3).tolist()
    [2, 0]
    """
    n = labels.shape[0]
    offsets = torch.arange(n, device=labels.device)[:, None] * num_classes
    flat = labels.reshape(n, -1).long() + offsets
    counts = torch.bincount(flat.reshape(-1), minlength=n * num_classes).reshape(n, num_classes)
    counts[:, 0] = 0
    return torch.where(counts.amax(1) > 0, counts.argmax(1), torch.zeros_like(counts[:, 0]))


def __getattr__(name: str) -> Any:
    # the old name clashed with mining.dominant_class (xarray); kept for one release
    if name == "dominant_class":
        warnings.warn(
            "mdc_widgets.strategies.ops.dominant_class is deprecated; use dominant_class_index "
            "(mining.dominant_class reads stored predictions).",
            DeprecationWarning,
            stacklevel=2,
        )
        return dominant_class_index
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
