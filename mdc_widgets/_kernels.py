"""Small batched torch kernels that more than one package needs, defined once.

``normalized_entropy`` is what the prediction store writes as ``entropy`` and
what the uncertainty strategies recompute from probabilities, so the two
must be the same function; ``gaussian_blur`` serves the classic saliency
models and the blur perturbation; ``all_finite`` is the check every model
output passes before labels are taken from it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["all_finite", "as_class_probabilities", "gaussian_blur", "normalized_entropy"]


def all_finite(values: torch.Tensor) -> bool:
    """Whether every value of ``values`` is finite (no NaN, no +-inf).

    One sum over the tensor decides it: a NaN or an infinity makes the sum NaN
    or infinite, and a finite sum means every value is finite. Only where the
    sum is not finite (a NaN, an infinity, or finite values whose sum
    overflows) is the exact elementwise test run. The sum reads the tensor in
    its own layout and allocates nothing; ``torch.isfinite(values).all()``
    writes a boolean tensor of the same size first, which at 4 x 21 x 320 x 320
    logits took 60 ms against 1.3 ms for the sum (1 thread).

    Parameters
    ----------
    values : torch.Tensor
        Any tensor; integer and boolean tensors are always finite.

    Returns
    -------
    bool
        True when no value is NaN or infinite.

    Examples
    --------
    >>> all_finite(torch.tensor([1.0, 3e38, 3e38]))  # the sum overflows, the values do not
    True
    >>> all_finite(torch.tensor([0.0, float("nan")]))
    False
    """
    if not (values.is_floating_point() or values.is_complex()):
        return True
    # half types would overflow their sum at 65504: sum in float32
    dtype = torch.float32 if values.dtype in (torch.float16, torch.bfloat16) else None
    if bool(torch.isfinite(values.sum(dtype=dtype))):
        return True
    return bool(torch.isfinite(values).all())


def as_class_probabilities(probs: torch.Tensor) -> torch.Tensor:
    """``(n, C, H, W)`` float class probabilities; a one-channel saliency becomes ``(1 - s, s)``.

    Parameters
    ----------
    probs : torch.Tensor
        ``(n, C, H, W)`` class probabilities, or a saliency in [0, 1] as
        ``(n, 1, H, W)`` or ``(n, H, W)``.

    Returns
    -------
    torch.Tensor
        float32 ``(n, C, H, W)``; ``C = 2`` (background, salient) for a saliency.

    Examples
    --------
    >>> as_class_probabilities(torch.full((1, 1, 1, 1), 0.25)).flatten().tolist()
    [0.75, 0.25]
    """
    probs = probs.float()
    if probs.ndim == 3:
        probs = probs[:, None]
    if probs.shape[1] == 1:
        probs = torch.cat([1 - probs, probs], dim=1)
    return probs


def normalized_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Per-pixel entropy ``(n, H, W)`` divided by ``log C``, so it lies in [0, 1].

    Parameters
    ----------
    probs : torch.Tensor
        ``(n, C, H, W)`` class probabilities, or a saliency ``(n, 1, H, W)``
        (or ``(n, H, W)``) read as the Bernoulli ``(1 - s, s)``.

    Returns
    -------
    torch.Tensor
        ``(n, H, W)`` float32: 0 for a certain pixel, 1 for a uniform one.

    Examples
    --------
    >>> p = torch.tensor([[[[0.5]], [[0.5]]], [[[1.0]], [[0.0]]]])  # uniform, then certain
    >>> normalized_entropy(p).flatten().tolist()
    [1.0, 0.0]
    >>> normalized_entropy(torch.tensor([[[[0.5]]]])).flatten().tolist()  # a saliency of 0.5
    [1.0]
    """
    probs = as_class_probabilities(probs)
    # entr(p) = -p log p, exactly 0 at p = 0, in one kernel; + 0.0 turns entr(1) = -0.0 into 0.0
    entropy = torch.special.entr(probs).sum(dim=1) / math.log(max(probs.shape[1], 2))
    return entropy.clamp(0, 1) + 0.0


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(n, c, H, W)`` with reflected borders; ``sigma`` in pixels.

    The kernel reaches ``ceil(3 sigma)`` pixels (at least 1, at most the image
    side minus one, so reflection stays defined) and sums to one, so the blur
    moves intensity around without adding or removing any. ``sigma <= 0``
    returns a copy.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, c, H, W)`` float images (any value range; each channel is
        blurred on its own). ``H`` and ``W`` must be at least 2.
    sigma : float
        Standard deviation of the Gaussian in pixels.

    Returns
    -------
    torch.Tensor
        Blurred images, same shape, dtype and device as ``images``.

    Examples
    --------
    >>> x = torch.zeros(1, 3, 9, 9); x[..., 4, 4] = 1.0
    >>> y = gaussian_blur(x, 1.0)
    >>> round(float(y.sum()), 4), bool(y[0, 0, 4, 4] < 1)
    (3.0, True)
    """
    if sigma <= 0:
        return images.clone()
    c, h, w = images.shape[-3:]
    radius = min(max(1, math.ceil(3 * sigma)), h - 1, w - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
