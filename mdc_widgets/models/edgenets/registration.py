"""Every EdgeNets PASCAL VOC checkpoint as a registered competitor: ``espnetv2_s2.0_voc384`` and so on."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from mdc_widgets.models.competitor import normalize_imagenet
from mdc_widgets.models.edgenets.checkpoints import CHECKPOINTS, Checkpoint, find_checkpoint
from mdc_widgets.models.edgenets.dicenet import dicenet_seg
from mdc_widgets.models.edgenets.espnetv2 import espnetv2_seg
from mdc_widgets.models.spec import ModelSpec
from mdc_widgets.models.torchvision_adapters import VOC_CLASSES

__all__ = ["CAM_LAYERS", "STRIDE", "default_weights", "model_specs", "preprocess", "working_size"]

# the networks' total down-sampling; inputs whose sides are multiples of it keep every skip aligned
STRIDE = 32

_BUILDERS = {"espnetv2": espnetv2_seg, "dicenet": dicenet_seg}
# the last block of the encoder's deepest level, whose output feeds the decoder: a convolutional feature
# map at stride 16 that still has spatial detail for Grad-CAM
CAM_LAYERS = {"espnetv2": "base_net.level4.6", "dicenet": "base_net.level4.7"}
_PAPERS = {
    "espnetv2": "ESPNetv2 (Mehta et al., CVPR 2019)",
    "dicenet": "DiCENet (Mehta et al., IEEE TPAMI 2020)",
}


def working_size(height: int, width: int, stride: int = STRIDE) -> tuple[int, int]:
    """Each side rounded to the nearest multiple of ``stride`` (halves up), at least ``stride``.

    Parameters
    ----------
    height : int
        Image rows.
    width : int
        Image columns.
    stride : int, optional
        The networks' total stride (``STRIDE``, 32).

    Returns
    -------
    tuple of 2 int
        ``(H, W)`` the networks are run at.

    Examples
    --------
    >>> working_size(500, 375)
    (512, 384)
    """
    rounded = [max(stride, int(side / stride + 0.5) * stride) for side in (height, width)]
    return rounded[0], rounded[1]


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB ``(n, 3, H, W)`` to the networks' input: sides rounded to multiples of 32, ImageNet-normalised.

    The resize is bilinear (antialiased) and keeps the aspect ratio as closely
    as the rounding allows; the competitor resizes the logits back.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, 3, H, W)`` float RGB in [0, 1].

    Returns
    -------
    torch.Tensor
        ``(n, 3, H', W')`` with ``(H', W') = working_size(H, W)``.
    """
    size = working_size(*images.shape[-2:])
    if size != tuple(images.shape[-2:]):
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    return normalize_imagenet(images)


def default_weights(checkpoint: Checkpoint) -> Path:
    """The checkpoint file from the ``MDC_WIDGETS_WEIGHTS`` folders (see :func:`.find_checkpoint`).

    Parameters
    ----------
    checkpoint : Checkpoint
        The released file.

    Returns
    -------
    pathlib.Path
        Its path.

    Raises
    ------
    WeightsNotFoundError
        When no configured folder holds it.
    """
    return find_checkpoint(checkpoint)


def _description(checkpoint: Checkpoint) -> str:
    return (
        f"{_PAPERS[checkpoint.family]} semantic segmentation, width s={checkpoint.width}, trained on "
        f"{checkpoint.size}x{checkpoint.size} PASCAL VOC 2012 (+COCO) crops; reported VOC val mIoU "
        f"{checkpoint.voc_miou:.2f}%. Weights: EdgeNets release {checkpoint.file_name} (MIT)."
    )


def model_specs() -> list[ModelSpec]:
    """The registry records of the 20 released checkpoints (read by ``mdc_widgets.models._builtin``)."""
    return [
        ModelSpec(
            checkpoint.model_name,
            partial(_BUILDERS[checkpoint.family], checkpoint.width, len(VOC_CLASSES)),
            "ss",
            VOC_CLASSES,
            description=_description(checkpoint),
            default_weights=partial(default_weights, checkpoint),
            cam_layer=CAM_LAYERS[checkpoint.family],
            preprocess=preprocess,
            tags=("edgenets",),
        )
        for checkpoint in CHECKPOINTS
    ]
