"""The detail view's pictures at a chosen opacity, and disagreement maps that are never invisible.

Pure numpy on one image; the palettes are the core's (``explain.overlays``,
``viz.images``), only the blending and the outline live here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DISAGREEMENT_LEGEND", "disagreement_overlay", "outline", "panel_scale", "prediction_overlay"]

DISAGREE_RGB = (255, 0, 200)
EDGE_RGB = (255, 230, 0)
DISAGREEMENT_LEGEND = (
    ("models disagree", "#ff00c8"),
    ("edge of the disputed region", "#ffe600"),
    ("models agree (photo dimmed)", "#8c8c8c"),
)


def panel_scale(shape: tuple[int, ...], scale: int, panel_px: int) -> tuple[int, int]:
    """Integer pixel enlargement and display width of a picture in a panel of at most ``panel_px`` pixels.

    Small pictures are enlarged up to ``scale`` times (pixels stay crisp);
    large photos are not enlarged and are shown ``panel_px`` wide at most.

    Parameters
    ----------
    shape : tuple of int
        The picture's ``(H, W, ...)``.
    scale : int
        Largest enlargement factor.
    panel_px : int
        Largest display width and height in pixels.

    Returns
    -------
    factor : int
        Enlargement, at least 1.
    width : int
        Display width in pixels.

    Examples
    --------
    >>> panel_scale((32, 32, 3), 3, 300)
    (3, 96)
    >>> panel_scale((214, 320, 3), 3, 300)
    (1, 300)
    """
    height, width = int(shape[0]), int(shape[1])
    factor = max(1, min(int(scale), int(panel_px) // max(height, width, 1)))
    return factor, min(width * factor, int(panel_px))


def outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` that touch a pixel outside it (4-neighbourhood; the border counts as outside).

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)``, read as bool.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` bool, a subset of ``mask``.

    Examples
    --------
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> int(outline(m).sum()), bool(outline(m)[2, 2])
    (8, False)
    """
    mask = np.asarray(mask, bool)
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def prediction_overlay(image: np.ndarray, prediction: np.ndarray, task: str, opacity: float) -> np.ndarray:
    """A model's (or the ground truth's) map over the photo at ``opacity`` in [0, 1] (0: the photo alone).

    SS label maps use the class palette, saliency the heat colours.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB uint8.
    prediction : numpy.ndarray
        ``(H, W)`` uint8: class indices (SS) or saliency 0-255 (SOD).
    task : str
        ``"ss"`` for labels, anything else for saliency.
    opacity : float
        Clipped to [0, 1].

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Examples
    --------
    >>> image = np.full((1, 2, 3), 100, np.uint8)
    >>> prediction_overlay(image, np.array([[0, 255]], np.uint8), "sod", 0.0).tolist() == image.tolist()
    True
    """
    from mdc_widgets.explain import overlay_labels
    from mdc_widgets.viz import overlay_saliency

    opacity = float(np.clip(opacity, 0.0, 1.0))
    if task == "ss":
        return overlay_labels(image, prediction, alpha=opacity)
    return overlay_saliency(image, prediction, alpha=opacity)


def disagreement_overlay(image: np.ndarray, disagreement: np.ndarray, opacity: float = 0.8) -> np.ndarray:
    """Where two models disagree, impossible to miss: the photo dimmed, disputed pixels in a bright magenta
    whose strength follows the disagreement, and the edge of every clearly disputed region (>= 0.5) in yellow.

    Every pixel with any disagreement above 2 % gets at least a third of the colour, so a map that covers
    "8 % of the pixels" always shows 8 % of coloured pixels.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB.
    disagreement : numpy.ndarray
        ``(H, W)`` float, clipped to [0, 1] (:func:`mdc_widgets.viz.disagreement_map`).
    opacity : float, optional
        Strength of the magenta, clipped to [0, 1]; at 0 the disputed pixels are shown undimmed.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Examples
    --------
    >>> image = np.full((4, 4, 3), 200, np.uint8)
    >>> d = np.zeros((4, 4), np.float32); d[1:3, 1:3] = 1.0
    >>> out = disagreement_overlay(image, d)
    >>> out[0, 0].tolist(), out[1, 1].tolist()
    ([120, 120, 120], [255, 230, 0])
    """
    image = np.asarray(image, np.float32)
    d = np.clip(np.asarray(disagreement, np.float32), 0.0, 1.0)
    grey = image.mean(axis=-1, keepdims=True)
    dimmed = 0.6 * (0.5 * image + 0.5 * grey)
    weight = np.where(d > 0.02, np.maximum(d, 1 / 3), 0.0) * float(np.clip(opacity, 0.0, 1.0))
    # at opacity 0 the disputed pixels still show, undimmed, against the dimmed rest
    base = np.where((d > 0.02)[..., None], image, dimmed)
    out = (1 - weight[..., None]) * base + weight[..., None] * np.array(DISAGREE_RGB, np.float32)
    out[outline(d >= 0.5)] = EDGE_RGB
    return out.round().clip(0, 255).astype(np.uint8)
