"""Every torchvision segmentation builder as a competitor, with its weight enum, transforms and VOC classes.

Weights are never downloaded: ``checkpoint="default"`` reads the enum's
checkpoint from the torch hub cache (``torch.hub.get_dir()/checkpoints``) and
otherwise says exactly which file to put where; a local state_dict path works
too, and ``checkpoint=None`` gives the real architecture with random weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torchvision.models import segmentation as seg

from mdc_widgets.errors import WeightsNotFoundError
from mdc_widgets.models.competitor import normalize_imagenet
from mdc_widgets.models.spec import ModelSpec

__all__ = [
    "TORCHVISION_SEGMENTATION",
    "VOC_CLASSES",
    "at_working_resolution",
    "hub_checkpoint_path",
    "internal_resolution",
    "load_hub_weights",
]

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

# builder, weight enum, the layer Grad-CAM looks at
TORCHVISION_SEGMENTATION: dict[str, tuple[Callable[..., torch.nn.Module], Any, str]] = {
    "fcn_resnet50": (seg.fcn_resnet50, seg.FCN_ResNet50_Weights, "backbone.layer4"),
    "fcn_resnet101": (seg.fcn_resnet101, seg.FCN_ResNet101_Weights, "backbone.layer4"),
    "deeplabv3_resnet50": (seg.deeplabv3_resnet50, seg.DeepLabV3_ResNet50_Weights, "backbone.layer4"),
    "deeplabv3_resnet101": (seg.deeplabv3_resnet101, seg.DeepLabV3_ResNet101_Weights, "backbone.layer4"),
    # the MobileNet backbones return a dict of features; Grad-CAM needs the last block's tensor
    "deeplabv3_mobilenet_v3_large": (
        seg.deeplabv3_mobilenet_v3_large,
        seg.DeepLabV3_MobileNet_V3_Large_Weights,
        "backbone.16",
    ),
    "lraspp_mobilenet_v3_large": (seg.lraspp_mobilenet_v3_large, seg.LRASPP_MobileNet_V3_Large_Weights, "backbone.16"),
}


def hub_checkpoint_path(weights: Any) -> Path:
    """Where torch hub keeps the checkpoint of a weight enum member.

    Parameters
    ----------
    weights : torchvision.models.WeightsEnum
        A member such as ``DeepLabV3_ResNet50_Weights.DEFAULT``; its ``url`` names the file.

    Returns
    -------
    pathlib.Path
        ``<torch hub dir>/checkpoints/<file name of the url>`` (it may not exist).
    """
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def load_hub_weights(weights: Any, model_name: str) -> dict:
    """The enum's state_dict from the hub cache (auxiliary heads dropped), or a clear error. Never downloads.

    Parameters
    ----------
    weights : torchvision.models.WeightsEnum
        The weight enum member whose checkpoint is read.
    model_name : str
        The competitor's name, for the error message.

    Returns
    -------
    dict
        Parameter name to tensor (on the CPU), without ``aux_classifier.*`` entries.

    Raises
    ------
    WeightsNotFoundError
        When the checkpoint is not in the hub cache; the message names the file, its URL and the folder.
    """
    path = hub_checkpoint_path(weights)
    if not path.exists():
        raise WeightsNotFoundError(
            f"Pretrained weights for {model_name!r} are not on this machine and are never downloaded at run time. "
            f"Put the file {path.name} (from {weights.url}) into {path.parent}, "
            f"or pass checkpoint='/path/to/state_dict.pt', or checkpoint=None for random weights."
        )
    return drop_auxiliary(torch.load(path, map_location="cpu", weights_only=True))


def drop_auxiliary(state: dict) -> dict:
    """The auxiliary classifier only helps training; the competitor is built without it.

    Parameters
    ----------
    state : dict
        A torchvision segmentation state_dict.

    Returns
    -------
    dict
        ``state`` without the keys starting with ``aux_classifier.``.
    """
    return {k: v for k, v in state.items() if not k.startswith("aux_classifier.")}


def _preprocess(resize_size: int | None) -> Callable[[torch.Tensor], torch.Tensor]:
    def preprocess(images: torch.Tensor) -> torch.Tensor:
        if resize_size and min(images.shape[-2:]) != resize_size:
            h, w = images.shape[-2:]
            scale = resize_size / min(h, w)
            images = F.interpolate(
                images, size=(round(h * scale), round(w * scale)), mode="bilinear", align_corners=False, antialias=True
            )
        return normalize_imagenet(images)

    # read by internal_resolution(): the size this model resizes every input to, whatever the pool's
    preprocess.resize_size = resize_size  # type: ignore[attr-defined]
    return preprocess


def internal_resolution(competitor: Any) -> int | None:
    """The shorter side a competitor resizes every input to before its network (``None``: the pool's size).

    Parameters
    ----------
    competitor : Competitor
        Any competitor; only torchvision ones built by this module resize.

    Returns
    -------
    int or None
        The shorter side in pixels, or None when the input is used at the pool's size.

    Notes
    -----
    torchvision's weight recipes resize to 520 px, so a 320 px pool costs
    (520 / 320)^2 = 2.6x the pixels and a resize back.

    Examples
    --------
    >>> from mdc_widgets.models import get_model
    >>> internal_resolution(get_model("tv_lraspp_mobilenet_v3_large", checkpoint=None))
    520
    >>> internal_resolution(at_working_resolution(get_model("tv_lraspp_mobilenet_v3_large", checkpoint=None)))
    """
    return getattr(getattr(competitor, "preprocess", None), "resize_size", None)


def at_working_resolution(competitor: Any) -> Any:
    """Run a torchvision competitor at the pool's working resolution (ImageNet normalisation only), in place.

    The networks are fully convolutional; their weights were trained with
    inputs resized to 520 px, so maps at another size can differ from the
    recipe's (keep the default for published numbers, use this for speed or
    with random weights).

    Parameters
    ----------
    competitor : Competitor
        A torchvision competitor; its ``preprocess`` is replaced by ImageNet normalisation.

    Returns
    -------
    Competitor
        The same object, changed in place.
    """
    competitor.preprocess = normalize_imagenet
    return competitor


def model_specs() -> list[ModelSpec]:
    """The registry records of the torchvision segmentation models (read by ``mdc_widgets.models._builtin``)."""
    specs = []
    for name, (builder, enum, cam_layer) in TORCHVISION_SEGMENTATION.items():
        default = enum.DEFAULT
        resize = getattr(default.transforms(), "resize_size", None)
        resize = resize[0] if isinstance(resize, (list, tuple)) else resize
        spec = ModelSpec(
            f"tv_{name}",
            lambda b=builder: b(weights=None, weights_backbone=None, num_classes=len(VOC_CLASSES), aux_loss=False),
            "ss",
            VOC_CLASSES,
            description=f"torchvision {name} ({default}), PASCAL VOC classes",
            default_weights=lambda w=default, n=name: load_hub_weights(w, f"tv_{n}"),
            cam_layer=cam_layer,
            preprocess=_preprocess(resize),
            tags=("torchvision",),
            state_dict_filter=drop_auxiliary,
        )
        specs.append(spec)
    return specs
