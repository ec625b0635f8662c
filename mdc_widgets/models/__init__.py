"""Competitors: the mini-world zoo, torchvision adapters, EdgeNets, classic saliency, released maps, your own models."""

from mdc_widgets.models.competitor import Competitor, normalize_half, normalize_imagenet
from mdc_widgets.models.registry import (
    ModelSpec,
    get_model,
    list_models,
    model_spec,
    register_model,
    unavailable_models,
)
from mdc_widgets.models.released_maps import MapCompetitor, MapFolderError, register_maps
from mdc_widgets.models.zoo import ZOO, is_trained, load_or_train, train_model, train_zoo, zoo_quality

__all__ = [
    "ZOO",
    "Competitor",
    "MapCompetitor",
    "MapFolderError",
    "ModelSpec",
    "get_model",
    "is_trained",
    "list_models",
    "load_or_train",
    "model_spec",
    "normalize_half",
    "normalize_imagenet",
    "register_maps",
    "register_model",
    "train_model",
    "train_zoo",
    "unavailable_models",
    "zoo_quality",
]
