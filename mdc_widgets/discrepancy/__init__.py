"""How much two models disagree on an image: intra-task (SS, SOD) and cross-task measures."""

from mdc_widgets.discrepancy.ops import (
    binarize_saliency,
    confusion_counts,
    cross_task_discrepancy,
    downsample_labels,
    downsample_saliency,
    iou_binary,
    mean_iou_from_confusion,
    saliency_to_float,
    sod_discrepancy,
    ss_discrepancy,
)
from mdc_widgets.discrepancy.pairwise import compute_discrepancies, pair_kind, pairwise_statistics

__all__ = [
    "binarize_saliency",
    "compute_discrepancies",
    "confusion_counts",
    "cross_task_discrepancy",
    "downsample_labels",
    "downsample_saliency",
    "iou_binary",
    "mean_iou_from_confusion",
    "pair_kind",
    "pairwise_statistics",
    "saliency_to_float",
    "sod_discrepancy",
    "ss_discrepancy",
]
