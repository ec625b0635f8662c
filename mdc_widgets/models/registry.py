"""The model registry: names to builders, like ``torchvision.models.get_model``."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mdc_widgets.errors import MdcError, UnknownModelError, WeightsNotFoundError
from mdc_widgets.models.competitor import Competitor

__all__ = ["ModelSpec", "get_model", "list_models", "model_spec", "register_model"]


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


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    builder: Callable[[], torch.nn.Module],
    task: str,
    classes: Sequence[str],
    *,
    description: str = "",
    default_weights: Callable[[], Path | dict | None] | None = None,
    cam_layer: str | None = None,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    output: str = "logits",
    tags: Sequence[str] = (),
    state_dict_filter: Callable[[dict], dict] | None = None,
    overwrite: bool = False,
) -> ModelSpec:
    """Register a model under ``name`` so widgets, notebooks and ``get_model`` can find it.

    ``builder()`` returns the network with random weights; ``default_weights()``
    returns a state_dict or a path to one (or None for weight-free methods);
    ``state_dict_filter`` adapts any loaded state_dict (e.g. drops training-only heads).
    """
    if name in _REGISTRY and not overwrite:
        raise MdcError(f"A model named {name!r} is already registered; pass overwrite=True to replace it.")
    spec = ModelSpec(
        name,
        builder,
        task,
        tuple(classes),
        description,
        default_weights,
        cam_layer,
        preprocess,
        output,
        tuple(tags),
        state_dict_filter,
    )
    _REGISTRY[name] = spec
    return spec


def _ensure_builtin() -> None:
    # the built-in registrations import lazily, so importing the registry stays cheap
    from mdc_widgets.models import zoo  # noqa: F401

    try:
        from mdc_widgets.models import torchvision_adapters  # noqa: F401
    except ImportError:
        pass
    try:
        from mdc_widgets.models import saliency_classic  # noqa: F401
    except ImportError:
        pass
    try:
        from mdc_widgets.models import edgenets  # noqa: F401
    except ImportError:
        pass


def list_models(task: str | None = None, tag: str | None = None) -> list[str]:
    """Names of the registered models, optionally of one task (``"ss"``/``"sod"``) or tag."""
    _ensure_builtin()
    return [n for n, s in _REGISTRY.items() if (task is None or s.task == task) and (tag is None or tag in s.tags)]


def model_spec(name: str) -> ModelSpec:
    """The registration of ``name``; ``UnknownModelError`` lists the known names and close matches."""
    _ensure_builtin()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Registered models: {', '.join(_REGISTRY)}. "
            "Register your own with mdc_widgets.models.register_model(...)."
        )
    return _REGISTRY[name]


def _load_state_dict(source: Any, name: str) -> dict:
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.exists():
        raise WeightsNotFoundError(f"Weights file {path} for model {name!r} not found; check the path.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MdcError(f"Cannot read weights {path} for model {name!r}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


def get_model(name: str, weights: Any = "default", device: str | None = "cpu") -> Competitor:
    """Build a registered competitor.

    Parameters
    ----------
    name : a registered name (see ``list_models()``)
    weights : ``"default"`` (the model's own: the cached mini-world training,
        a torchvision enum's checkpoint in the torch hub cache, or none for
        weight-free methods), ``None`` (random initialisation), a path to a
        state_dict file, or a state_dict
    device : ``"cpu"``, ``"cuda"`` or ``"auto"``
    """
    from mdc_widgets.config import resolve_device

    spec = model_spec(name)
    module = spec.builder()
    if hasattr(module, "predict_samples"):
        # released maps (register_maps): the builder made the whole competitor, and it has no weights
        if weights not in ("default", None):
            raise MdcError(f"{name!r} is a folder of released maps; it takes no weights.")
        return module
    source = (
        spec.default_weights()
        if (weights == "default" and spec.default_weights)
        else (None if weights == "default" else weights)
    )
    if source is not None:
        state = _load_state_dict(source, name)
        if spec.state_dict_filter is not None:
            state = spec.state_dict_filter(state)
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise MdcError(
                f"The weights given for {name!r} do not fit its architecture ({str(exc).splitlines()[0]}); "
                "were they saved from another model?"
            ) from exc
    competitor = Competitor(
        spec.name,
        spec.task,
        spec.classes,
        module,
        preprocess=spec.preprocess,
        output=spec.output,
        cam_layer=spec.cam_layer,
        description=spec.description,
    )
    # the checkpoint file, so a prediction store can tell these weights from others (model_identity)
    competitor.weights_file = str(source) if isinstance(source, (str, Path)) else None
    return competitor.to(resolve_device(device))
