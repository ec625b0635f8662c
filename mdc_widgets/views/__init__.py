"""View models of the widgets: what the detail, explanation and figures panels show, from explicit inputs.

Each widget action's logic lives in a module named for it: ``views.sample``
(the detail of one sample), ``views.explain`` (Grad-CAM and saliency of one
model), ``views.figures`` (the investigation's plots). ``Session`` only
gathers the inputs and calls them.
"""

from mdc_widgets.views.explain import explanation, resolve_target_class, target_class_of
from mdc_widgets.views.figures import investigation_figures, scatter_pairs
from mdc_widgets.views.sample import (
    accepted_mask,
    at_native_aspect,
    compared_pairs,
    detail_models,
    disagreement_views,
    ground_truth_view,
    pair_discrepancies,
    prediction_view,
    sample_detail,
    sample_metrics,
    sample_scores,
)

__all__ = [
    "accepted_mask",
    "at_native_aspect",
    "compared_pairs",
    "detail_models",
    "disagreement_views",
    "explanation",
    "ground_truth_view",
    "investigation_figures",
    "pair_discrepancies",
    "prediction_view",
    "resolve_target_class",
    "sample_detail",
    "sample_metrics",
    "sample_scores",
    "scatter_pairs",
    "target_class_of",
]
