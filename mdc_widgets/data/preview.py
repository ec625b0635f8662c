"""Contact sheets of a pool: each image beside its ground truth, to check a dataset by eye."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import xarray as xr

from mdc_widgets._atomic import atomic_write_bytes
from mdc_widgets.viz.colors import LABEL_PALETTE, blend, colorize_labels

__all__ = ["CLASS_PALETTE", "overlay_ground_truth", "preview_grid", "save_preview"]

# the one class palette of the package (PASCAL VOC), so a class has the same colour here as in the browser
CLASS_PALETTE = LABEL_PALETTE


def overlay_ground_truth(
    images: np.ndarray, semantic: np.ndarray, saliency: np.ndarray | None = None, alpha: float = 0.55
) -> np.ndarray:
    """Paint class colours over labeled pixels and outline the salient region in white.

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, H, W, 3)`` uint8 RGB.
    semantic : numpy.ndarray
        ``(n, H, W)`` uint8 class indices (0 = background, left unpainted).
    saliency : numpy.ndarray or None, optional
        ``(n, H, W)`` uint8 in {0, 255}, or None for no outline.
    alpha : float, optional
        Opacity of the class colours.

    Returns
    -------
    np.ndarray
        ``(n, H, W, 3)`` uint8.

    Examples
    --------
    >>> img = np.zeros((1, 4, 4, 3), np.uint8)
    >>> sem = np.zeros((1, 4, 4), np.uint8); sem[0, 1:3, 1:3] = 1
    >>> out = overlay_ground_truth(img, sem, None, alpha=1.0)
    >>> out[0, 1, 1].tolist(), out[0, 0, 0].tolist()
    ([128, 0, 0], [0, 0, 0])
    """
    out = blend(images, colorize_labels(semantic), alpha, where=np.asarray(semantic) > 0)
    if saliency is not None:
        fg = saliency > 127
        # a pixel is on the outline when it is salient and one of its 4-neighbours is not
        padded = np.pad(fg, ((0, 0), (1, 1), (1, 1)), constant_values=False)
        inner = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
        out[fg & ~inner] = 255
    return out


def preview_grid(
    ds: xr.Dataset, n: int = 16, columns: int = 4, scale: int = 3, samples: np.ndarray | list[int] | None = None
) -> np.ndarray:
    """A grid of tiles, each an image beside the same image with its ground truth overlaid.

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset with ``image (sample, y, x, channel)`` and optionally ``semantic``/``saliency``.
    n : int, optional
        Number of samples (the first ``n``, unless ``samples`` is given).
    columns : int, optional
        Tiles per row.
    scale : int, optional
        Integer upscaling (nearest), so 64-pixel scenes are readable.
    samples : numpy.ndarray or list of int or None, optional
        Positions of the samples to show.

    Returns
    -------
    np.ndarray
        ``(rows * tile_h, columns * tile_w, 3)`` uint8.

    Examples
    --------
    >>> from mdc_widgets.data.miniworld import generate_miniworld
    >>> preview_grid(generate_miniworld("val", n=3, image_size=32), n=3, columns=2, scale=1).shape
    (72, 140, 3)
    """
    index = np.arange(min(n, ds.sizes["sample"])) if samples is None else np.asarray(samples)
    images = np.asarray(ds["image"].values[index])
    semantic = np.asarray(ds["semantic"].values[index]) if "semantic" in ds else np.zeros(images.shape[:3], np.uint8)
    saliency = np.asarray(ds["saliency"].values[index]) if "saliency" in ds else None
    overlaid = overlay_ground_truth(images, semantic, saliency)
    gap = 2
    pairs = np.concatenate([images, np.full((len(images), images.shape[1], gap, 3), 255, np.uint8), overlaid], axis=2)
    pairs = pairs.repeat(scale, axis=1).repeat(scale, axis=2)
    pairs = np.pad(pairs, ((0, 0), (gap, gap), (gap, gap), (0, 0)), constant_values=255)
    rows = -(-len(pairs) // columns)
    blank = np.full((rows * columns - len(pairs), *pairs.shape[1:]), 255, np.uint8)
    tiles = np.concatenate([pairs, blank]).reshape(rows, columns, *pairs.shape[1:])
    return tiles.transpose(0, 2, 1, 3, 4).reshape(rows * pairs.shape[1], columns * pairs.shape[2], 3)


def save_preview(
    ds: xr.Dataset,
    path: str | Path,
    n: int = 16,
    columns: int = 4,
    scale: int = 3,
    samples: np.ndarray | list[int] | None = None,
) -> Path:
    """Write ``preview_grid(ds, n, ...)`` to ``path`` as a PNG (atomically) and return the path.

    Parameters
    ----------
    ds : xarray.Dataset
        ``image (sample, y, x, channel)`` and optionally ``semantic``/``saliency``.
    path : str or pathlib.Path
        The PNG file to write (its folder is created).
    n : int, optional
        Number of samples (the first ``n``, unless ``samples`` is given).
    columns : int, optional
        Tiles (image + overlay pairs) per row.
    scale : int, optional
        Integer upscaling (nearest).
    samples : numpy.ndarray or list of int or None, optional
        Positions of the samples to show.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from mdc_widgets.data.miniworld import generate_miniworld
    >>> path = os.path.join(tempfile.mkdtemp(), "preview.png")
    >>> save_preview(generate_miniworld("val", n=4, image_size=32), path, n=4).name
    'preview.png'
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(preview_grid(ds, n, columns, scale, samples)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
