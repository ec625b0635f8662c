"""The built-in model plugins, read once by the registry on its first lookup.

Each plugin module only *defines* its :class:`~mdc_widgets.models.spec.ModelSpec`
records (``model_specs()``) and never imports the registry, so registry and
plugins form no import cycle. A plugin that cannot be imported (a missing
optional dependency, a broken install) is returned with its reason; the
registry warns and lists it in ``unavailable_models()`` and in
``python -m mdc_widgets models``.
"""

from __future__ import annotations

from collections.abc import Callable

from mdc_widgets.models.spec import ModelSpec

__all__ = ["BUILTIN_PLUGINS", "builtin_specs"]


def _zoo() -> list[ModelSpec]:
    from mdc_widgets.models import zoo

    return zoo.model_specs()


def _torchvision() -> list[ModelSpec]:
    from mdc_widgets.models import torchvision_adapters

    return torchvision_adapters.model_specs()


def _classic() -> list[ModelSpec]:
    from mdc_widgets.models import saliency_classic

    return saliency_classic.model_specs()


def _edgenets() -> list[ModelSpec]:
    from mdc_widgets.models.edgenets import registration

    return registration.model_specs()


# (plugin module, loader), in registration order
BUILTIN_PLUGINS: tuple[tuple[str, Callable[[], list[ModelSpec]]], ...] = (
    ("mdc_widgets.models.zoo", _zoo),
    ("mdc_widgets.models.torchvision_adapters", _torchvision),
    ("mdc_widgets.models.saliency_classic", _classic),
    ("mdc_widgets.models.edgenets", _edgenets),
)


def builtin_specs() -> tuple[list[ModelSpec], dict[str, str]]:
    """Every built-in spec, and ``{plugin: why}`` for the plugins that could not be loaded.

    Examples
    --------
    >>> specs, failures = builtin_specs()
    >>> "mw_unet_ss" in {s.name for s in specs}, failures
    (True, {})
    """
    specs: list[ModelSpec] = []
    failures: dict[str, str] = {}
    for plugin, load in BUILTIN_PLUGINS:
        try:
            specs.extend(load())
        except Exception as exc:  # one plugin's missing dependency must not take the others down
            failures[plugin] = f"{type(exc).__name__}: {exc}"
    return specs, failures
