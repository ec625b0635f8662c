"""Colour maps and overlays of the explanations: the names :mod:`mdc_widgets.viz.colors` defines, kept here.

There is one class palette and one blend in the package
(:mod:`mdc_widgets.viz.colors`); this module re-exports them under the
names the explanations have always used.
"""

from __future__ import annotations

from mdc_widgets.viz.colors import (
    colorize_labels,
    heatmap_colors,
    label_palette,
    overlay_heatmap,
    overlay_labels,
)
from mdc_widgets.viz.colors import label_legend as legend

__all__ = ["colorize_labels", "heatmap_colors", "label_palette", "legend", "overlay_heatmap", "overlay_labels"]
