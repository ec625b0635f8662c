"""Colour maps and overlays for label maps, saliency and heatmaps: pure numpy, no plotting library."""

from __future__ import annotations

import numpy as np

__all__ = ["colorize_labels", "heatmap_colors", "label_palette", "legend", "overlay_heatmap", "overlay_labels"]


def label_palette(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour palette ``(n, 3)`` uint8: class 0 black, then distinct colours.

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


_PALETTE = label_palette()


def colorize_labels(labels: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 image of a label map (``(..., H, W)`` ints) with a fixed palette."""
    palette = _PALETTE if palette is None else np.asarray(palette, np.uint8)
    return palette[np.asarray(labels, np.int64) % len(palette)]


def overlay_labels(
    image: np.ndarray, labels: np.ndarray, alpha: float = 0.55, palette: np.ndarray | None = None
) -> np.ndarray:
    """Blend coloured labels over an RGB image; background (0) stays the image."""
    colours = colorize_labels(labels, palette).astype(np.float32)
    img = np.asarray(image, np.float32)
    mask = (np.asarray(labels) > 0)[..., None]
    out = np.where(mask, (1 - alpha) * img + alpha * colours, img)
    return out.round().clip(0, 255).astype(np.uint8)


def heatmap_colors(n: int = 256) -> np.ndarray:
    """A perceptually ordered dark-blue -> yellow colour table ``(n, 3)`` uint8 (viridis-like)."""
    anchors = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float64)
    positions = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, n)
    return np.stack([np.interp(t, positions, anchors[:, c]) for c in range(3)], -1).round().astype(np.uint8)


_HEAT = heatmap_colors()


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heatmap in [0, 1] (CAM, disagreement, saliency) over an RGB image.

    Examples
    --------
    >>> out = overlay_heatmap(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)), alpha=1.0)
    >>> out[0, 0].tolist()
    [253, 231, 37]
    """
    idx = (np.clip(np.asarray(heatmap, np.float64), 0, 1) * 255).round().astype(np.int64)
    colours = _HEAT[idx].astype(np.float32)
    blended = (1 - alpha) * np.asarray(image, np.float32) + alpha * colours
    return blended.round().clip(0, 255).astype(np.uint8)


def legend(classes: list[str] | tuple[str, ...], present: np.ndarray | None = None) -> list[tuple[str, str]]:
    """``(class name, '#rrggbb')`` for every class (or only those in ``present``)."""
    ids = range(len(classes)) if present is None else sorted(int(i) for i in np.unique(present))
    return [(classes[i] if i < len(classes) else str(i), "#{:02x}{:02x}{:02x}".format(*_PALETTE[i])) for i in ids]
