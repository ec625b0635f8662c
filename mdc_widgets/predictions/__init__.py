"""Run each competitor once over a pool; predictions live in a resumable zarr store."""

from mdc_widgets.predictions.distributed import ModelSource, model_sources, split_shards
from mdc_widgets.predictions.store import (
    PredictionRunError,
    RunCancelled,
    RunOptions,
    completed_fraction,
    model_classes,
    open_predictions,
    open_probabilities,
    predict_pool,
    prediction_store_path,
)

__all__ = [
    "ModelSource",
    "PredictionRunError",
    "RunCancelled",
    "RunOptions",
    "completed_fraction",
    "model_classes",
    "model_sources",
    "open_predictions",
    "open_probabilities",
    "predict_pool",
    "prediction_store_path",
    "split_shards",
]
