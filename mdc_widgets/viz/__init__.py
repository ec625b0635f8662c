"""Plots and pictures of a competition: plotly figures and numpy/PNG panels, no widgets."""

from mdc_widgets.viz.colors import (
    HEAT_COLORS,
    LABEL_PALETTE,
    blend,
    colorize_labels,
    heatmap_colors,
    label_legend,
    label_palette,
    overlay_heatmap,
    overlay_labels,
    overlay_map,
    overlay_saliency,
    saliency_legend,
)
from mdc_widgets.viz.figures import (
    discrepancy_heatmap,
    empty_figure,
    intra_cross_scatter,
    ranking_figure,
    sample_scatter,
    score_histograms,
)
from mdc_widgets.viz.images import (
    detail_row,
    disagreement_map,
    legend_html,
    tile_panel,
    to_png,
    upscale,
)

__all__ = [
    "HEAT_COLORS",
    "LABEL_PALETTE",
    "blend",
    "colorize_labels",
    "detail_row",
    "disagreement_map",
    "discrepancy_heatmap",
    "empty_figure",
    "heatmap_colors",
    "intra_cross_scatter",
    "label_legend",
    "label_palette",
    "legend_html",
    "overlay_heatmap",
    "overlay_labels",
    "overlay_map",
    "overlay_saliency",
    "ranking_figure",
    "saliency_legend",
    "sample_scatter",
    "score_histograms",
    "tile_panel",
    "to_png",
    "upscale",
]
