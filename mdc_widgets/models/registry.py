"""The model registry: names to builders, like ``torchvision.models.get_model``."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mdc_widgets.errors import MdcError, UnknownModelError, WeightsNotFoundError
from mdc_widgets.models.competitor import Competitor
from mdc_widgets.models.spec import ModelSpec

__all__ = ["ModelSpec", "get_model", "list_models", "model_spec", "register_model", "unavailable_models"]

# a sentinel, so get_model can tell "not given" from checkpoint=None (random initialisation)
_UNSET: Any = object()


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
    returns its default checkpoint, a state_dict or a path to one (or None for weight-free methods);
    ``state_dict_filter`` adapts any loaded state_dict (e.g. drops training-only heads).

    Parameters
    ----------
    name : str
        The registry name, also the ``model`` coordinate of its predictions.
    builder : callable
        ``builder()`` returns the network with random weights (or, for
        released maps, a whole competitor).
    task : {"ss", "sod"}
        The task.
    classes : sequence of str
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
    tags : sequence of str, optional
        Labels to filter by (``list_models(tag=...)``), e.g. ``"edgenets"``.
    state_dict_filter : callable or None, optional
        Adapts every loaded state_dict before ``load_state_dict`` (e.g. drops
        training-only heads).
    overwrite : bool, optional
        Replace an existing registration of ``name``.

    Returns
    -------
    ModelSpec
        The stored record.

    Raises
    ------
    MdcError
        When ``name`` is already registered (a built-in included) and not ``overwrite``.
    """
    _ensure_builtin()  # so a clash with a built-in name is caught here, not hidden by a later load
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


_BUILTINS_LOADED = False
_UNAVAILABLE: dict[str, str] = {}


def _ensure_builtin() -> None:
    """Register the built-in plugins' models once; a plugin that fails to import is reported, not hidden."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from mdc_widgets.models._builtin import builtin_specs

    specs, failures = builtin_specs()
    for spec in specs:
        # a user's registration of the same name (made before the first lookup) wins over the built-in
        _REGISTRY.setdefault(spec.name, spec)
    _UNAVAILABLE.update(failures)
    for plugin, why in failures.items():
        warnings.warn(
            f"The built-in models of {plugin} are unavailable ({why}); the other models still work. "
            "Install what it needs (see `python -m mdc_widgets models`).",
            stacklevel=3,
        )


def unavailable_models() -> dict[str, str]:
    """The built-in model plugins that could not be imported: ``{plugin module: why}`` (empty when all load).

    Examples
    --------
    >>> isinstance(unavailable_models(), dict)
    True
    """
    _ensure_builtin()
    return dict(_UNAVAILABLE)


def list_models(task: str | None = None, tag: str | None = None) -> list[str]:
    """Names of the registered models, optionally of one task (``"ss"``/``"sod"``) or tag.

    Parameters
    ----------
    task : str or None, optional
        ``"ss"`` or ``"sod"``; None: every task.
    tag : str or None, optional
        Only models with this tag (e.g. ``"edgenets"``); None: any.

    Returns
    -------
    list of str
        Names in registration order (built-ins first).

    Examples
    --------
    >>> "mw_unet_ss" in list_models("ss")
    True
    """
    _ensure_builtin()
    return [n for n, s in _REGISTRY.items() if (task is None or s.task == task) and (tag is None or tag in s.tags)]


def model_spec(name: str) -> ModelSpec:
    """The registration of ``name``; ``UnknownModelError`` lists the known names and close matches.

    Parameters
    ----------
    name : str
        A registered name.

    Returns
    -------
    ModelSpec
        Its record (nothing is built or loaded).

    Raises
    ------
    UnknownModelError
        When no model has that name; the message suggests close names.
    """
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


def get_model(
    name: str, checkpoint: Any = "default", device: str | None = "cpu", *, weights: Any = _UNSET
) -> Competitor:
    """Build a registered competitor.

    Parameters
    ----------
    name : str
        A registered name (see ``list_models()``).
    checkpoint : str, path, dict or None, optional
        ``"default"`` (the model's own: the cached mini-world training, a
        torchvision enum's checkpoint in the torch hub cache, or none for
        weight-free methods), ``None`` (random initialisation), a path to a
        state_dict file, or a state_dict.
    device : str, optional
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    weights : object, optional
        The former name of ``checkpoint``; still accepted for one release
        with a ``DeprecationWarning`` (``weights`` now means term weights in mining).

    Returns
    -------
    Competitor
        On ``device``, in eval mode; ``weights_file`` records the checkpoint
        path (None for a state_dict or no weights). A released-map model is
        returned as its :class:`MapCompetitor`.

    Raises
    ------
    UnknownModelError
        When ``name`` is not registered.
    WeightsNotFoundError
        When a checkpoint path does not exist (or a default checkpoint is
        not on this machine).
    MdcError
        When the checkpoint cannot be read or does not fit the architecture,
        or a released-map model is given a checkpoint.

    Examples
    --------
    >>> get_model("spectral_residual_sod").task
    'sod'
    """
    if weights is not _UNSET:
        warnings.warn(
            "get_model(..., weights=...) is deprecated; pass checkpoint=... instead "
            "(the keyword is removed in the next release).",
            DeprecationWarning,
            stacklevel=2,
        )
        checkpoint = weights
    weights = checkpoint
    from mdc_widgets.config import resolve_device

    spec = model_spec(name)
    module = spec.builder()
    if hasattr(module, "predict_samples"):
        # released maps (register_maps): the builder made the whole competitor, and it has no weights
        if weights not in ("default", None):
            raise MdcError(f"{name!r} is a folder of released maps; it takes no weights (checkpoint).")
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
