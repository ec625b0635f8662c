"""A competitor: any model of a task, behind one ``predict`` that returns probabilities at input size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mdc_widgets._kernels import all_finite
from mdc_widgets.errors import MdcError, ShapeError

__all__ = ["Competitor", "normalize_half", "normalize_imagenet"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of ``(n, 3, H, W)`` images in [0, 1].

    Parameters
    ----------
    images : torch.Tensor
        ``(n, 3, H, W)`` float RGB in [0, 1].

    Returns
    -------
    torch.Tensor
        Same shape: ``(x - mean) / std`` per channel (mean 0.485, 0.456,
        0.406; std 0.229, 0.224, 0.225), as torchvision's pretrained models expect.
    """
    mean = images.new_tensor(_IMAGENET_MEAN)[None, :, None, None]
    std = images.new_tensor(_IMAGENET_STD)[None, :, None, None]
    return (images - mean) / std


def normalize_half(images: torch.Tensor) -> torch.Tensor:
    """Map [0, 1] to [-1, 1] (the mini-world models' input convention).

    Parameters
    ----------
    images : torch.Tensor
        Float images in [0, 1], any shape.

    Returns
    -------
    torch.Tensor
        ``2 * images - 1``.
    """
    return images * 2.0 - 1.0


class Competitor:
    """A model of one task, wrapped so every competitor looks the same to the miner.

    Parameters
    ----------
    name : str
        Unique name (used as the ``model`` coordinate).
    task : str
        ``"ss"`` or ``"sod"``.
    classes : sequence of str
        SS class names with index 0 background; SOD ``("background", "salient")``.
    module : torch.nn.Module or callable
        The network, or any callable on ``(n, 3, H, W)`` tensors.
    preprocess : callable or None, optional
        Maps [0, 1] RGB images to the network's input (normalisation, resizing).
    output : str, optional
        What the network returns: ``"logits"``, ``"probabilities"`` or ``"labels"``.
    cam_layer : str or None, optional
        Dotted name of the layer Grad-CAM should look at.
    description : str, optional
        One line shown in the widgets and model lists.

    Raises
    ------
    MdcError
        When ``task`` or ``output`` is not one of the values above.
    """

    def __init__(
        self,
        name: str,
        task: str,
        classes: Sequence[str],
        module: nn.Module | Callable[[torch.Tensor], Any],
        *,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output: str = "logits",
        cam_layer: str | None = None,
        description: str = "",
    ):
        if task not in ("ss", "sod"):
            raise MdcError(f"Model {name!r}: task must be 'ss' or 'sod', not {task!r}.")
        if output not in ("logits", "probabilities", "labels"):
            raise MdcError(f"Model {name!r}: output must be 'logits', 'probabilities' or 'labels', not {output!r}.")
        self.name = name
        self.task = task
        self.classes = tuple(classes) if task == "ss" else ("background", "salient")
        self.module = module
        self.preprocess = preprocess
        self.output = output
        self.cam_layer = cam_layer
        self.description = description
        self.device = "cpu"
        if isinstance(module, nn.Module):
            module.eval()

    @classmethod
    def from_module(
        cls,
        module: nn.Module | Callable[[torch.Tensor], Any],
        task: str,
        classes: Sequence[str] | None = None,
        name: str | None = None,
        preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
        output: str = "logits",
        cam_layer: str | None = None,
    ) -> Competitor:
        """Wrap any module or callable returning logits, probabilities or a label map.

        Parameters
        ----------
        module : torch.nn.Module or callable
            The network, or any callable on ``(n, 3, H, W)`` tensors; a dict
            output uses its ``"out"`` entry, a tuple its first element.
        task : {"ss", "sod"}
            The task.
        classes : sequence of str or None, optional
            SS class names, index 0 background (required for SS; ignored for SOD).
        name : str or None, optional
            Default: the module's class name.
        preprocess : callable or None, optional
            Maps [0, 1] RGB images to the network's input.
        output : {"logits", "probabilities", "labels"}, optional
            What the module returns.
        cam_layer : str or None, optional
            Dotted name of the layer Grad-CAM should look at.

        Returns
        -------
        Competitor
            The wrapped model (on the CPU until :meth:`to`).

        Raises
        ------
        MdcError
            When an SS model has no class list, or ``task``/``output`` is unknown.

        Examples
        --------
        >>> net = torch.nn.Conv2d(3, 3, 1)
        >>> comp = Competitor.from_module(net, "ss", ["background", "a", "b"], name="tiny")
        >>> comp.predict(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 8, 8])
        """
        if task == "ss" and not classes:
            raise MdcError("An SS model needs its class list (index 0 = background) to compete.")
        return cls(
            name or type(module).__name__,
            task,
            classes or ("background", "salient"),
            module,
            preprocess=preprocess,
            output=output,
            cam_layer=cam_layer,
        )

    def to(self, device: str | torch.device) -> Competitor:
        """Move the network (when it is an ``nn.Module``) to ``device``, in place.

        Parameters
        ----------
        device : str or torch.device
            E.g. ``"cpu"``, ``"cuda"``.

        Returns
        -------
        Competitor
            ``self``, for chaining.
        """
        if isinstance(self.module, nn.Module):
            self.module.to(device)
        self.device = str(device)
        return self

    def forward_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The network's raw output at input size (used by Grad-CAM and loss-based strategies).

        Parameters
        ----------
        images : torch.Tensor
            ``(n, 3, H, W)`` float32 RGB in [0, 1], on the competitor's device;
            ``preprocess`` is applied here.

        Returns
        -------
        torch.Tensor
            ``(n, C, H, W)`` as the network gives it (logits or probabilities;
            lower resolutions resized bilinearly), or ``(n, H, W)`` labels for
            ``output="labels"``. Gradients are kept.

        Raises
        ------
        ShapeError
            When the network returns something that is not a tensor.
        """
        x = self.preprocess(images) if self.preprocess else images
        out = self.module(x)
        if isinstance(out, dict):  # torchvision segmentation models return {"out": ..., "aux": ...}
            out = out["out"]
        if isinstance(out, (tuple, list)):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise ShapeError(f"Model {self.name!r} returned {type(out).__name__}; expected a tensor.")
        if out.ndim == 3:
            out = out[:, None] if self.output != "labels" else out
        if self.output != "labels" and out.shape[-2:] != images.shape[-2:]:
            # networks that predict at a lower resolution are resized to the pool's working size
            out = F.interpolate(out.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return out

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(n, C, H, W)`` (SS) or saliency ``(n, 1, H, W)`` (SOD) at input size.

        Parameters
        ----------
        images : torch.Tensor
            ``(n, 3, H, W)`` float32 RGB in [0, 1], on the competitor's device
            (the competitor normalises itself).

        Returns
        -------
        torch.Tensor
            float32: SS softmax probabilities over ``len(classes)`` channels,
            SOD sigmoid saliency in [0, 1]; labels become one-hot (SS) or
            ``labels > 0`` (SOD). Runs with gradients unless the caller uses
            ``torch.no_grad()``.

        Raises
        ------
        ShapeError
            When ``images`` is not ``(n, 3, H, W)``, or the network returns
            another number of channels than classes, or a label beyond them.
        MdcError
            When the network returns NaN or infinite values.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ShapeError(f"Model {self.name!r} takes (n, 3, H, W) images; got {tuple(images.shape)}.")
        out = self.forward_logits(images)
        n_cls = len(self.classes) if self.task == "ss" else 1
        if not all_finite(out):  # before labels are taken: NaN cast to an integer is a silent 0
            raise MdcError(f"Model {self.name!r} returned NaN or infinite values; check its weights and input.")
        if self.output == "labels":
            labels = out.long().reshape(out.shape[0], *out.shape[-2:])
            if labels.shape[-2:] != images.shape[-2:]:
                labels = F.interpolate(labels[:, None].float(), size=images.shape[-2:], mode="nearest")[:, 0].long()
            if self.task == "sod":
                return (labels > 0).float()[:, None]
            if labels.max() >= n_cls or labels.min() < 0:
                raise ShapeError(f"Model {self.name!r} returned label {int(labels.max())} but has {n_cls} classes.")
            return F.one_hot(labels, n_cls).permute(0, 3, 1, 2).float()
        if out.shape[1] != n_cls:
            raise ShapeError(
                f"Model {self.name!r} returned {out.shape[1]} channels but has "
                f"{n_cls} {'classes' if self.task == 'ss' else 'saliency channel'}; check its class list."
            )
        if self.output == "probabilities":
            return out.float().clamp(0, 1)
        return out.float().softmax(dim=1) if self.task == "ss" else out.float().sigmoid()

    def __repr__(self) -> str:
        return f"Competitor(name={self.name!r}, task={self.task!r}, classes={len(self.classes)})"
