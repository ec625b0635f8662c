"""What a registered model is: the :class:`ModelSpec` record, a leaf that the built-in model plugins build.

The plugins (``zoo``, ``torchvision_adapters``, ``saliency_classic``,
``edgenets``) only define specs; :mod:`mdc_widgets.models._builtin` hands
them to the registry, so no plugin imports the registry and the registry
imports no plugin at module level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = ["ModelSpec"]


@dataclass
class ModelSpec:
    """How to build a competitor and where its default weights come from.

    Made by :func:`~mdc_widgets.models.register_model` (or a plugin); every
    field is also an attribute.

    Parameters
    ----------
    name : str
        The registry name, also the ``model`` coordinate of its predictions.
    builder : callable
        ``builder()`` returns the network with random weights (or, for
        released maps, a whole competitor).
    task : {"ss", "sod"}
        The task.
    classes : tuple of str
        SS class names, index 0 background; SOD ``("background", "salient")``.
    description : str, optional
        One line shown in the widgets and model lists.
    default_weights : callable or None, optional
        ``default_weights()`` returns the default checkpoint: a path, a
        state_dict, or None (weight-free methods); None: random weights.
    cam_layer : str or None, optional
        Dotted name of the layer Grad-CAM should look at.
    preprocess : callable or None, optional
        Maps [0, 1] RGB ``(n, 3, H, W)`` images to the network's input.
    output : {"logits", "probabilities", "labels"}, optional
        What the network returns.
    tags : tuple of str, optional
        Labels to filter by (``list_models(tag=...)``), e.g. ``"edgenets"``.
    state_dict_filter : callable or None, optional
        Adapts every loaded state_dict before ``load_state_dict`` (e.g. drops
        training-only heads).
    """

    name: str
    builder: Callable[[], torch.nn.Module]
    task: str
    classes: tuple[str, ...]
    description: str = ""
    default_weights: Callable[[], Path | dict | None] | None = None
    cam_layer: str | None = None
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None
    output: str = "logits"
    tags: tuple[str, ...] = field(default_factory=tuple)
    state_dict_filter: Callable[[dict], dict] | None = None
