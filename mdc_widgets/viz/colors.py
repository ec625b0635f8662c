"""The one class palette, heat scale and blend of every overlay: browser, exports, contact sheets, explanations.

Pure numpy, no plotting library. A class has the same colour wherever it is
painted (the PASCAL VOC palette, which the palette PNGs of the exports carry
too), and every overlay mixes a colour into an image with :func:`blend`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "HEAT_COLORS",
    "LABEL_PALETTE",
    "blend",
    "colorize_labels",
    "heatmap_colors",
    "label_legend",
    "label_palette",
    "map_on_neutral",
    "neutral_background",
    "overlay_heatmap",
    "overlay_labels",
    "overlay_map",
    "overlay_saliency",
    "saliency_legend",
]


def label_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour palette ``(n, 3)`` uint8: class 0 black, then distinct colours.

    Parameters
    ----------
    n : int, optional
        Number of classes.

    Examples
    --------
    >>> label_palette(3).tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    palette = np.zeros((n, 3), np.uint8)
    for label in range(n):
        c, value = label, np.zeros(3, np.int64)
        for shift in range(7, -1, -1):
            for channel in range(3):
                value[channel] |= ((c >> channel) & 1) << shift
            c >>= 3
        palette[label] = value
    return palette


def heatmap_colors(n: int = 256) -> np.ndarray:
    """A perceptually ordered dark-blue -> yellow colour table ``(n, 3)`` uint8 (viridis-like).

    Parameters
    ----------
    n : int, optional
        Number of colours (entries of the table).

    Returns
    -------
    numpy.ndarray
        ``(n, 3)`` uint8, from dark blue (low) to yellow (high).

    Examples
    --------
    >>> heatmap_colors()[[0, -1]].tolist()
    [[68, 1, 84], [253, 231, 37]]
    """
    anchors = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64)
    positions = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, positions, anchors[:, c]) for c in range(3)], -1).round().astype(np.uint8)


LABEL_PALETTE = label_palette()
HEAT_COLORS = heatmap_colors()


def _hex(colour: np.ndarray) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in colour))


def blend(
    image: np.ndarray, colours: np.ndarray, alpha: float | np.ndarray, where: np.ndarray | None = None
) -> np.ndarray:
    """``(1 - alpha) * image + alpha * colours``, rounded to uint8; the image stays where ``where`` is False.

    Parameters
    ----------
    image : numpy.ndarray
        ``(..., H, W, 3)`` RGB.
    colours : numpy.ndarray
        Colours of the same shape (or broadcastable to it).
    alpha : float or numpy.ndarray
        Opacity of the colours: one number, or one per pixel ``(..., H, W)``.
    where : numpy.ndarray, optional
        ``(..., H, W)`` bool: the pixels to paint (default all).

    Examples
    --------
    >>> blend(np.zeros((1, 2, 3), np.uint8), np.full((1, 2, 3), 200.0), 0.5, where=np.array([[True, False]]))
    array([[[100, 100, 100],
            [  0,   0,   0]]], dtype=uint8)
    """
    img = np.asarray(image, np.float32)
    colours = np.asarray(colours, np.float32)
    # a number stays a Python float, so the arithmetic is float32 like the image
    weight = float(alpha) if np.ndim(alpha) == 0 else np.asarray(alpha, np.float32)[..., None]
    out = (1 - weight) * img + weight * colours
    if where is not None:
        out = np.where(np.asarray(where, bool)[..., None], out, img)
    return out.round().clip(0, 255).astype(np.uint8)


def colorize_labels(labels: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 image of a label map (``(..., H, W)`` ints) with the class palette.

    Parameters
    ----------
    labels : numpy.ndarray
        ``(..., H, W)`` integer class indices (taken modulo the palette length).
    palette : numpy.ndarray or None, optional
        ``(C, 3)`` uint8 colours; default the VOC palette (:func:`label_palette`).

    Returns
    -------
    numpy.ndarray
        ``(..., H, W, 3)`` uint8.

    Examples
    --------
    >>> colorize_labels(np.array([[0, 1]])).tolist()
    [[[0, 0, 0], [128, 0, 0]]]
    """
    palette = LABEL_PALETTE if palette is None else np.asarray(palette, np.uint8)
    return palette[np.asarray(labels, np.int64) % len(palette)]


def overlay_labels(
    image: np.ndarray, labels: np.ndarray, alpha: float = 0.55, palette: np.ndarray | None = None
) -> np.ndarray:
    """Blend coloured labels over an RGB image; background (0) stays the image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(..., H, W, 3)`` RGB uint8.
    labels : numpy.ndarray
        ``(..., H, W)`` integer class indices.
    alpha : float, optional
        Opacity of the class colours in [0, 1].
    palette : numpy.ndarray or None, optional
        ``(C, 3)`` uint8 colours; default the VOC palette.

    Returns
    -------
    numpy.ndarray
        ``(..., H, W, 3)`` uint8.

    Examples
    --------
    >>> overlay_labels(np.zeros((1, 2, 3), np.uint8), np.array([[0, 1]]), alpha=1.0)[0, 1].tolist()
    [128, 0, 0]
    """
    return blend(image, colorize_labels(labels, palette), alpha, where=np.asarray(labels) > 0)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heatmap in [0, 1] (CAM, disagreement, saliency) over an RGB image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(..., H, W, 3)`` RGB uint8.
    heatmap : numpy.ndarray
        ``(..., H, W)`` float, clipped to [0, 1].
    alpha : float, optional
        Opacity of the heat colours, the same for every pixel.

    Returns
    -------
    numpy.ndarray
        ``(..., H, W, 3)`` uint8.

    Examples
    --------
    >>> out = overlay_heatmap(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)), alpha=1.0)
    >>> out[0, 0].tolist()
    [253, 231, 37]
    """
    idx = (np.clip(np.asarray(heatmap, np.float64), 0, 1) * 255).round().astype(np.int64)
    return blend(image, HEAT_COLORS[idx], alpha)


def overlay_saliency(image: np.ndarray, saliency: np.ndarray, alpha: float = 0.8) -> np.ndarray:
    """Colour a map in [0, 1] (uint8 0..255 is rescaled) over an RGB image, opaque where it is high.

    Each pixel blends the heat colour of its value with weight ``alpha * value``,
    so where the map is 0 (background, agreement) the image shows through
    unchanged and the eye goes to the salient or disagreeing pixels.

    Parameters
    ----------
    image : numpy.ndarray
        ``(..., H, W, 3)`` RGB uint8.
    saliency : numpy.ndarray
        ``(..., H, W)`` uint8 0-255 or float (clipped to [0, 1]).
    alpha : float, optional
        Opacity where the map is 1.

    Returns
    -------
    numpy.ndarray
        ``(..., H, W, 3)`` uint8.

    Examples
    --------
    >>> image = np.full((1, 2, 3), 100, np.uint8)
    >>> overlay_saliency(image, np.array([[0, 255]], np.uint8), alpha=1.0).tolist()
    [[[100, 100, 100], [253, 231, 37]]]
    """
    s = np.asarray(saliency)
    s = s.astype(np.float32) / 255.0 if s.dtype == np.uint8 else np.clip(s.astype(np.float32), 0, 1)
    return blend(image, HEAT_COLORS[(s * 255).round().astype(np.int64)], alpha * s)


def overlay_map(image: np.ndarray, values: np.ndarray, task: str) -> np.ndarray:
    """A prediction or ground-truth map over its image: SS labels in class colours, SOD saliency in heat colours.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB uint8.
    values : numpy.ndarray
        ``(H, W)``: class indices (SS) or saliency (SOD, uint8 or float in [0, 1]).
    task : str
        ``"ss"`` for labels, anything else for saliency.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Examples
    --------
    >>> overlay_map(np.zeros((1, 1, 3), np.uint8), np.array([[255]], np.uint8), "sod").tolist()
    [[[202, 185, 30]]]
    """
    return overlay_labels(image, values) if task == "ss" else overlay_saliency(image, values)


def neutral_background(image: np.ndarray, brightness: float = 0.35) -> np.ndarray:
    """The image in dim grey: a backdrop that shows the scene without competing with the class colours.

    An overlay on the image itself paints red labels on a red object; on a
    dim grey copy every colour in the tile is a prediction.

    Parameters
    ----------
    image : numpy.ndarray
        ``(..., H, W, 3)`` RGB uint8.
    brightness : float, optional
        Grey level of white in the backdrop (0 = black, 1 = the image's own luminance).

    Examples
    --------
    >>> neutral_background(np.array([[[255, 255, 255], [255, 0, 0]]], np.uint8)).tolist()
    [[[89, 89, 89], [27, 27, 27]]]
    """
    rgb = np.asarray(image, np.float32)[..., :3]
    luminance = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    grey = (luminance * brightness).round().clip(0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def map_on_neutral(image: np.ndarray, values: np.ndarray, task: str) -> np.ndarray:
    """A prediction or ground-truth map drawn on :func:`neutral_background`: every colour is the map's.

    SS labels are painted opaque in their class colours (background shows the
    grey scene); SOD saliency in heat colours, opaque where it is 1 and
    fading into the grey where it is 0.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB uint8 (only its luminance is kept).
    values : numpy.ndarray
        ``(H, W)``: class indices (SS) or saliency (SOD, uint8 or float in [0, 1]).
    task : str
        ``"ss"`` for labels, anything else for saliency.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8.

    Examples
    --------
    >>> image = np.full((1, 2, 3), 200, np.uint8)
    >>> map_on_neutral(image, np.array([[0, 1]], np.uint8), "ss").tolist()
    [[[70, 70, 70], [128, 0, 0]]]
    >>> map_on_neutral(image, np.array([[0, 255]], np.uint8), "sod").tolist()
    [[[70, 70, 70], [253, 231, 37]]]
    """
    backdrop = neutral_background(image)
    if task == "ss":
        return overlay_labels(backdrop, values, alpha=1.0)
    return overlay_saliency(backdrop, values, alpha=1.0)


def label_legend(classes: Sequence[str], present: np.ndarray | None = None) -> list[tuple[str, str]]:
    """``(class name, '#rrggbb')`` for every class (or only those in ``present``).

    Parameters
    ----------
    classes : sequence of str
        Class names by index; an index beyond them is named by its number.
    present : numpy.ndarray or None, optional
        Class indices present in a map (duplicates allowed); None for every class.

    Returns
    -------
    list of (str, str)
        ``(name, '#rrggbb')`` in class-index order.

    Examples
    --------
    >>> label_legend(["background", "cat"], present=np.array([1, 1]))
    [('cat', '#800000')]
    """
    ids = range(len(classes)) if present is None else sorted(int(i) for i in np.unique(present))
    return [(classes[i] if i < len(classes) else str(i), _hex(LABEL_PALETTE[i])) for i in ids]


def saliency_legend() -> list[tuple[str, str]]:
    """Legend entries ``(name, '#rrggbb')`` of the saliency colour scale (low, high).

    Examples
    --------
    >>> saliency_legend()[1]
    ('salient (1)', '#fde725')
    """
    return [(name, _hex(HEAT_COLORS[i])) for name, i in (("background (0)", 0), ("salient (1)", -1))]
