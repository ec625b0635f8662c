"""Plots and pictures of a competition: plotly figures and numpy/PNG panels, no widgets."""

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
    overlay_saliency,
    saliency_legend,
    tile_panel,
    to_png,
    upscale,
)

__all__ = [
    "detail_row",
    "disagreement_map",
    "discrepancy_heatmap",
    "empty_figure",
    "intra_cross_scatter",
    "legend_html",
    "overlay_saliency",
    "ranking_figure",
    "saliency_legend",
    "sample_scatter",
    "score_histograms",
    "tile_panel",
    "to_png",
    "upscale",
]
