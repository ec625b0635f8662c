"""Metrics against ground truth: mIoU, F-beta (max and adaptive), MAE, S-measure; per image and per set."""

from mdc_widgets.metrics.evaluate import (
    SOD_METRICS,
    SS_METRICS,
    evaluate,
    evaluate_native,
    map_at_native_size,
    summarize,
)
from mdc_widgets.metrics.functional import (
    fbeta_adaptive,
    fbeta_curve,
    fbeta_max,
    mae,
    miou,
    miou_from_confusion,
    pixel_accuracy,
    s_measure,
    segmentation_confusion,
)

__all__ = [
    "SOD_METRICS",
    "SS_METRICS",
    "evaluate",
    "evaluate_native",
    "fbeta_adaptive",
    "fbeta_curve",
    "fbeta_max",
    "mae",
    "map_at_native_size",
    "miou",
    "miou_from_confusion",
    "pixel_accuracy",
    "s_measure",
    "segmentation_confusion",
    "summarize",
]
