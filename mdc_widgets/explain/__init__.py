"""Explanations beside predictions: Grad-CAM for segmentation, saliency maps, colour overlays."""

from mdc_widgets.explain.cam import grad_cam, list_cam_layers, saliency_explanation
from mdc_widgets.explain.overlays import (
    colorize_labels,
    heatmap_colors,
    label_palette,
    legend,
    overlay_heatmap,
    overlay_labels,
)

__all__ = [
    "colorize_labels",
    "grad_cam",
    "heatmap_colors",
    "label_palette",
    "legend",
    "list_cam_layers",
    "overlay_heatmap",
    "overlay_labels",
    "saliency_explanation",
]
