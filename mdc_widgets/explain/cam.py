"""Class activation maps for competitors, through the maintained pytorch-grad-cam library."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mdc_widgets.errors import MdcError

__all__ = ["grad_cam", "list_cam_layers", "saliency_explanation"]


class _LogitsModule(nn.Module):
    """Presents a competitor to pytorch-grad-cam as a module returning ``(n, C, H, W)`` scores."""

    def __init__(self, competitor: Any):
        super().__init__()
        self.competitor = competitor
        self.inner = competitor.module  # registered so the library finds the target layer's hooks

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.competitor.forward_logits(images)


def list_cam_layers(competitor: Any) -> list[str]:
    """Names of the convolution-bearing layers of a competitor's network, deepest last.

    Parameters
    ----------
    competitor : Competitor
        Any competitor; one without an ``nn.Module`` has no layers.

    Returns
    -------
    list of str
        Dotted module names (``named_modules`` order) of the modules that hold an ``nn.Conv2d``.
    """
    module = competitor.module
    if not isinstance(module, nn.Module):
        return []
    names = [name for name, m in module.named_modules() if name and any(isinstance(c, nn.Conv2d) for c in m.modules())]
    return names


def _layer(competitor: Any, layer: str | None) -> nn.Module:
    modules = dict(competitor.module.named_modules())
    if layer is None:
        layer = competitor.cam_layer
    if layer is None:
        convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise MdcError(f"Model {competitor.name!r} has no convolution layer for Grad-CAM.")
        layer = convs[-1]
    if layer not in modules:
        raise MdcError(
            f"Model {competitor.name!r} has no layer {layer!r}; choose one of {list_cam_layers(competitor)}."
        )
    return modules[layer]


def grad_cam(
    competitor: Any,
    images: torch.Tensor | np.ndarray,
    target_class: int | Sequence[int] | None = None,
    layer: str | None = None,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Grad-CAM ``(n, H, W)`` in [0, 1] of the evidence for ``target_class`` over a region.

    The target is the class score summed over ``region`` (default: the pixels
    the model predicts as that class), as in pytorch-grad-cam's semantic
    segmentation recipe. ``target_class`` defaults to each image's dominant
    predicted non-background class; for SOD models the single saliency channel
    is explained.

    Parameters
    ----------
    competitor : Competitor
        A competitor with an ``nn.Module``.
    images : torch.Tensor or numpy.ndarray
        ``(n, 3, H, W)`` float in [0, 1] or ``(n, H, W, 3)`` uint8.
    target_class : int or sequence of int or None, optional
        One class for all images, one per image, or None.
    layer : str or None, optional
        A module name (see :func:`list_cam_layers`); default the competitor's ``cam_layer``.
    region : numpy.ndarray or None, optional
        ``(n, H, W)`` bool mask of the pixels whose score is explained.

    Returns
    -------
    numpy.ndarray
        ``(n, H, W)`` float32 in [0, 1].

    Raises
    ------
    MdcError
        When ``layer`` is not a module of the network, or the network has no convolution.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    x = torch.as_tensor(images)
    if x.ndim == 4 and x.shape[-1] == 3 and x.dtype == torch.uint8:
        x = x.permute(0, 3, 1, 2).float() / 255.0
    device = getattr(competitor, "device", "cpu")
    x = x.float().to(device)
    with torch.no_grad():
        probs = competitor.predict(x)
    n = x.shape[0]
    if competitor.task == "ss":
        labels = probs.argmax(1).cpu().numpy()
        if target_class is None:
            counts = np.stack([np.bincount(l.ravel(), minlength=probs.shape[1]) for l in labels])
            counts[:, 0] = 0
            classes = np.where(counts.max(1) > 0, counts.argmax(1), 0)
        else:
            classes = np.broadcast_to(np.asarray(target_class), (n,))
    else:
        labels = (probs[:, 0] > 0.5).long().cpu().numpy()
        classes = np.zeros(n, np.int64)  # the one saliency channel
    if region is None:
        region = labels == (classes[:, None, None] if competitor.task == "ss" else 1)
        # an empty region would explain nothing: fall back to the whole image
        region = np.where(region.reshape(n, -1).any(1)[:, None, None], region, True)
    targets = [SemanticSegmentationTarget(int(c), np.asarray(r, np.float32)) for c, r in zip(classes, region)]
    wrapper = _LogitsModule(competitor)
    was_training = competitor.module.training
    competitor.module.eval()
    try:
        with GradCAM(model=wrapper, target_layers=[_layer(competitor, layer)]) as cam:
            heat = cam(input_tensor=x, targets=targets)
    finally:
        competitor.module.train(was_training)
    return np.clip(np.asarray(heat, np.float32), 0, 1)


def saliency_explanation(
    competitor: Any, images: torch.Tensor | np.ndarray, layer: str | None = None
) -> dict[str, np.ndarray]:
    """For a SOD model: its saliency map and a Grad-CAM of the saliency score over the salient region.

    Parameters
    ----------
    competitor : Competitor
        An SOD competitor with an ``nn.Module``.
    images : torch.Tensor or numpy.ndarray
        ``(n, 3, H, W)`` float in [0, 1] or ``(n, H, W, 3)`` uint8.
    layer : str or None, optional
        A module name (see :func:`list_cam_layers`); default the competitor's ``cam_layer``.

    Returns
    -------
    dict of {str: numpy.ndarray}
        ``saliency`` ``(n, H, W)`` float in [0, 1] and ``cam`` (:func:`grad_cam`).

    Raises
    ------
    MdcError
        When ``competitor`` is not an SOD model (or :func:`grad_cam` refuses ``layer``).
    """
    if competitor.task != "sod":
        raise MdcError(f"Model {competitor.name!r} is a {competitor.task.upper()} model; use grad_cam for it.")
    x = torch.as_tensor(images)
    if x.ndim == 4 and x.shape[-1] == 3 and x.dtype == torch.uint8:
        x = x.permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        saliency = competitor.predict(x.float().to(getattr(competitor, "device", "cpu")))[:, 0].cpu().numpy()
    return {"saliency": saliency, "cam": grad_cam(competitor, x, layer=layer)}
