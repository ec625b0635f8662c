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
    """How to build a competitor and where its default weights come from."""

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
