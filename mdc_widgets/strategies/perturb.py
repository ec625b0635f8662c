"""Image perturbations for stress-testing competitors: pure, batched torch, seeded by a ``torch.Generator``.

Every operation takes ``(n, 3, H, W)`` float images in [0, 1] and returns a
new batch of the same shape; random parameters are drawn on the CPU from the
given generator (so a seed reproduces the same perturbation on any device)
and the pixels are changed on the images' device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mdc_widgets._kernels import gaussian_blur as _gaussian_blur
from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError, ShapeError

__all__ = [
    "PERTURBATIONS",
    "gaussian_blur",
    "hide_and_seek",
    "perturb",
    "pool_mean_pixel",
    "preview_perturbation",
    "random_occlusion",
]


def _check(images: torch.Tensor) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
        raise ShapeError(f"Perturbations take (n, 3, H, W) float tensors in [0, 1]; got {shape}.")
    return images.float()


def _fill_tensor(fill: float | Any, images: torch.Tensor) -> torch.Tensor:
    """``fill`` (a grey level or an RGB triple in [0, 1]) as ``(1, 3, 1, 1)`` on the images' device."""
    value = torch.as_tensor(fill, dtype=torch.float32, device=images.device).reshape(-1)
    if value.numel() not in (1, 3):
        raise ShapeError(f"fill must be one value or an RGB triple; got {value.numel()} values.")
    return value.expand(3).reshape(1, 3, 1, 1)


def random_occlusion(
    images: torch.Tensor,
    size_fraction: float | tuple[float, float] = 0.3,
    generator: torch.Generator | None = None,
    *,
    return_mask: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Paint one rectangle of one random colour at a random place in each image.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, 3, H, W)`` float in [0, 1].
    size_fraction : float or tuple of 2 float, optional
        The rectangle's side as a fraction of the image's side,
        or a ``(low, high)`` range drawn per image.
    generator : torch.Generator or None, optional
        Seeds the positions, sizes and colours.
    return_mask : bool, optional
        Also return the ``(n, H, W)`` bool mask of painted pixels.

    Examples
    --------
    >>> g = torch.Generator().manual_seed(0)
    >>> out, mask = random_occlusion(torch.zeros(2, 3, 10, 10), 0.5, g, return_mask=True)
    >>> mask.sum(dim=(1, 2)).tolist()
    [25, 25]
    """
    x = _check(images)
    n, _, h, w = x.shape
    low, high = (size_fraction, size_fraction) if np.isscalar(size_fraction) else size_fraction
    fraction = low + (high - low) * torch.rand(n, generator=generator)
    rect_h = (fraction * h).round().clamp(1, h).long()
    rect_w = (fraction * w).round().clamp(1, w).long()
    top = (torch.rand(n, generator=generator) * (h - rect_h + 1)).floor().long()
    left = (torch.rand(n, generator=generator) * (w - rect_w + 1)).floor().long()
    colour = torch.rand(n, 3, generator=generator)
    rows = torch.arange(h)[None]
    cols = torch.arange(w)[None]
    inside_rows = (rows >= top[:, None]) & (rows < (top + rect_h)[:, None])
    inside_cols = (cols >= left[:, None]) & (cols < (left + rect_w)[:, None])
    mask = (inside_rows[:, :, None] & inside_cols[:, None, :]).to(x.device)
    out = torch.where(mask[:, None], colour.to(x.device)[:, :, None, None], x)
    return (out, mask) if return_mask else out


def hide_and_seek(
    images: torch.Tensor,
    grid_size: int = 4,
    hide_prob: float = 0.5,
    fill: float | Any = 0.5,
    generator: torch.Generator | None = None,
    *,
    return_mask: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Hide-and-Seek: split each image into ``grid_size x grid_size`` patches, hide each with ``hide_prob``.

    Hidden patches take ``fill``, which should be the pool's mean pixel
    (:func:`pool_mean_pixel`): Singh & Lee argue it keeps the statistics of
    the network's activations close to those of unperturbed images.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, 3, H, W)`` float in [0, 1].
    grid_size : int, optional
        Patches per side (H and W need not be multiples of it).
    hide_prob : float, optional
        Probability that a patch is hidden.
    fill : float or sequence of float, optional
        Grey level or RGB triple in [0, 1].
    generator : torch.Generator or None, optional
        Seeds which patches are hidden.
    return_mask : bool, optional
        Also return the ``(n, H, W)`` bool mask of hidden pixels.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        The hidden images, the shape of ``images``; with ``return_mask`` also the mask.

    Raises
    ------
    MdcError
        ``grid_size`` is below 1 or above the shorter image side.

    References
    ----------
    .. [1] K. K. Singh and Y. J. Lee, "Hide-and-Seek: Forcing a network to be meticulous for
           weakly-supervised object and action localization," ICCV 2017, pp. 3544-3553. arXiv:1704.04232

    Examples
    --------
    >>> out = hide_and_seek(torch.zeros(1, 3, 4, 4), grid_size=2, hide_prob=1.0, fill=0.25)
    >>> out.unique().tolist()
    [0.25]
    """
    x = _check(images)
    n, _, h, w = x.shape
    if grid_size < 1 or grid_size > min(h, w):
        raise MdcError(f"grid_size must be between 1 and the image side {min(h, w)}; got {grid_size}.")
    hidden_cells = torch.rand(n, grid_size, grid_size, generator=generator) < hide_prob
    row_cell = torch.arange(h) * grid_size // h
    col_cell = torch.arange(w) * grid_size // w
    mask = hidden_cells[:, row_cell][:, :, col_cell].to(x.device)
    out = torch.where(mask[:, None], _fill_tensor(fill, x), x)
    return (out, mask) if return_mask else out


def gaussian_blur(images: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders; ``sigma`` in pixels, 0 leaves the images as they are.

    The kernel sums to one, so the blur moves intensity around without adding
    or removing any (the image mean is kept up to the border reflection).

    Parameters
    ----------
    images : torch.Tensor
        ``(n, 3, H, W)`` float in [0, 1].
    sigma : float, optional
        Standard deviation in pixels, >= 0.

    Returns
    -------
    torch.Tensor
        The blurred images, the shape of ``images``.

    Examples
    --------
    >>> x = torch.zeros(1, 3, 9, 9); x[..., 4, 4] = 1.0
    >>> y = gaussian_blur(x, 1.0)
    >>> round(float(y.sum()), 4), bool(y[0, 0, 4, 4] < 1)
    (3.0, True)
    """
    return _gaussian_blur(_check(images), sigma)


def pool_mean_pixel(pool: Pool, batch_size: int = 256) -> torch.Tensor:
    """The mean RGB pixel ``(3,)`` in [0, 1] over the valid images of a pool, streamed batch by batch.

    Parameters
    ----------
    pool : Pool
        The pool (``read_images``, ``sample_ids``).
    batch_size : int, optional
        Images read at once.

    Returns
    -------
    torch.Tensor
        ``(3,)`` float32.

    Raises
    ------
    MdcError
        No image of the pool could be read.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> imgs = np.zeros((2, 2, 2, 3), np.uint8); imgs[1] = 255
    >>> pool = SimpleNamespace(sample_ids=np.arange(2), read_images=lambda a, b: (imgs[a:b], np.ones(b - a, bool)))
    >>> pool_mean_pixel(pool).tolist()
    [0.5, 0.5, 0.5]
    """
    n = len(pool.sample_ids)
    total = np.zeros(3, np.float64)
    count = 0
    for start in range(0, n, batch_size):
        images, valid = pool.read_images(start, min(start + batch_size, n))
        valid = np.asarray(valid, bool)
        total += images[valid].reshape(-1, 3).sum(0, dtype=np.float64)
        count += int(valid.sum()) * images.shape[1] * images.shape[2]
    if count == 0:
        raise MdcError(f"Pool {pool.name!r} has no readable image to average; check its files.")
    return torch.tensor(total / count / 255.0, dtype=torch.float32)


def _occlusion(images: torch.Tensor, generator: torch.Generator | None, size_fraction: float = 0.3) -> torch.Tensor:
    return random_occlusion(images, size_fraction, generator)


def _hide_and_seek(
    images: torch.Tensor,
    generator: torch.Generator | None,
    grid_size: int = 4,
    hide_prob: float = 0.5,
    fill: float | Any = 0.5,
) -> torch.Tensor:
    return hide_and_seek(images, grid_size, hide_prob, fill, generator)


def _blur(images: torch.Tensor, generator: torch.Generator | None, sigma: float = 2.0) -> torch.Tensor:
    return gaussian_blur(images, sigma)


PERTURBATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "occlusion": _occlusion,
    "hide_and_seek": _hide_and_seek,
    "blur": _blur,
}
"""Each perturbation as ``f(images, generator, **params)``, the one call the stress strategies make."""


def perturb(
    images: torch.Tensor, perturbation: str, generator: torch.Generator | None = None, **params: Any
) -> torch.Tensor:
    """Apply a perturbation of :data:`PERTURBATIONS` by name.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, 3, H, W)`` float in [0, 1].
    perturbation : {"occlusion", "hide_and_seek", "blur"}
        A key of :data:`PERTURBATIONS`.
    generator : torch.Generator or None, optional
        Seeds the random perturbations.
    **params : object
        The perturbation's parameters (``size_fraction``; ``grid_size``,
        ``hide_prob``, ``fill``; ``sigma``).

    Returns
    -------
    torch.Tensor
        The perturbed images, the shape of ``images``.

    Raises
    ------
    MdcError
        ``perturbation`` is not a key of :data:`PERTURBATIONS`.

    Examples
    --------
    >>> perturb(torch.zeros(1, 3, 4, 4), "blur", sigma=1.0).shape
    torch.Size([1, 3, 4, 4])
    """
    if perturbation not in PERTURBATIONS:
        raise MdcError(f"Unknown perturbation {perturbation!r}; choose one of {sorted(PERTURBATIONS)}.")
    return PERTURBATIONS[perturbation](images, generator, **params)


def preview_perturbation(
    images: np.ndarray | torch.Tensor, perturbation: str, seed: int = 0, **params: Any
) -> np.ndarray:
    """Perturbed copies of a pool's images as ``(n, H, W, 3)`` uint8, ready to show in a browser.

    Takes what ``Pool.read_images`` returns (``(n, H, W, 3)`` uint8) or
    ``(n, 3, H, W)`` float tensors; the same seed gives the same perturbation.

    Parameters
    ----------
    images : numpy.ndarray or torch.Tensor
        ``(n, H, W, 3)`` uint8 or ``(n, 3, H, W)`` float in [0, 1].
    perturbation : {"occlusion", "hide_and_seek", "blur"}
        A key of :data:`PERTURBATIONS`.
    seed : int, optional
        Seeds the perturbation.
    **params : object
        The perturbation's parameters, as for :func:`perturb`.

    Returns
    -------
    numpy.ndarray
        ``(n, H, W, 3)`` uint8.

    Examples
    --------
    >>> imgs = np.full((2, 8, 8, 3), 200, np.uint8)
    >>> out = preview_perturbation(imgs, "hide_and_seek", grid_size=2, hide_prob=1.0, fill=0.0)
    >>> out.shape, int(out.max())
    ((2, 8, 8, 3), 0)
    """
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(images))
    if x.dtype == torch.uint8 and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2).float() / 255.0
    out = perturb(x.float(), perturbation, torch.Generator().manual_seed(int(seed)), **params)
    return (out.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
