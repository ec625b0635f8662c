"""The mini-world zoo: three SS and three SOD models that differ in architecture, width, augmentation and data.

The differences are deliberate, so the models fail on different images: the
U-Net sees all data with flips and colour jitter, the FCN has no skips and no
augmentation, the DeepLabv3+ is trained with blur and noise, and for saliency
the token transformer (VST-style) is trained with contrast changes while the
FCN sees only part of the data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from mdc_widgets.data.miniworld import MINIWORLD_CLASSES
from mdc_widgets.models import architectures as arch
from mdc_widgets.models.competitor import normalize_half
from mdc_widgets.models.spec import ModelSpec
from mdc_widgets.models.training import TrainConfig, train, weights_path

__all__ = ["ZOO", "is_trained", "load_or_train", "train_model", "train_zoo", "zoo_quality"]

log = logging.getLogger(__name__)

_BUILDERS = {"unet": arch.mw_unet, "fcn": arch.mw_fcn, "deeplabv3plus": arch.mw_deeplabv3plus, "vst": arch.mw_vst}
_CAM_LAYERS = {"unet": "dec1", "fcn": "features", "deeplabv3plus": "decoder", "vst": "decoder.0"}

ZOO: dict[str, TrainConfig] = {
    "mw_unet_ss": TrainConfig("unet", "ss", width=10, epochs=4, augment=("flip", "color"), seed=0),
    "mw_fcn_ss": TrainConfig("fcn", "ss", width=16, epochs=5, augment=(), seed=1, train_size=1400),
    "mw_deeplabv3plus_ss": TrainConfig(
        "deeplabv3plus", "ss", width=12, epochs=5, augment=("flip", "blur", "noise"), seed=2
    ),
    "mw_unet_sod": TrainConfig("unet", "sod", width=8, epochs=4, augment=("flip",), seed=3, train_size=1400),
    "mw_fcn_sod": TrainConfig("fcn", "sod", width=12, epochs=4, augment=(), seed=4),
    "mw_vst_sod": TrainConfig(
        "vst", "sod", width=32, epochs=4, augment=("flip", "contrast"), seed=5, lr=2e-3, train_size=1600
    ),
}


def _n_out(config: TrainConfig) -> int:
    return len(MINIWORLD_CLASSES) if config.task == "ss" else 1


def _builder(config: TrainConfig):
    return lambda: _BUILDERS[config.architecture](_n_out(config), config.width)


def is_trained(name: str) -> bool:
    """Whether the weights of a zoo model are already in the cache.

    Parameters
    ----------
    name : str
        A key of ``ZOO`` (e.g. ``"mw_unet_ss"``); another name raises ``KeyError``.

    Returns
    -------
    bool
        True when ``weights_path(name, ZOO[name])`` exists.
    """
    return weights_path(name, ZOO[name]).exists()


def train_model(name: str, *, progress: bool = True) -> Path:
    """Train a zoo model from its config (always; see :func:`load_or_train` to reuse the cache).

    Parameters
    ----------
    name : str
        A key of ``ZOO`` (e.g. ``"mw_unet_ss"``); another name raises ``KeyError``.
    progress : bool, optional
        Show a tqdm bar while training.

    Returns
    -------
    pathlib.Path
        The cached weights file (replaced atomically).
    """
    config = ZOO[name]
    return train(name, config, _builder(config), normalize_half, _n_out(config), progress=progress)


def load_or_train(name: str, *, progress: bool = True) -> Path:
    """Path to the cached weights of a zoo model, training them first if absent.

    Parameters
    ----------
    name : str
        A key of ``ZOO`` (e.g. ``"mw_unet_ss"``); another name raises ``KeyError``.
    progress : bool, optional
        Show a tqdm bar while training.

    Returns
    -------
    pathlib.Path
        The cached weights file.
    """
    path = weights_path(name, ZOO[name])
    if not path.exists():
        log.warning("training %s (not in the cache yet; takes about a minute on a CPU)", name)
        path = train_model(name, progress=progress)
    return path


def train_zoo(names: Sequence[str] | None = None, *, progress: bool = True) -> dict[str, Path]:
    """Train every zoo model that is not cached yet; returns name -> weights path.

    Parameters
    ----------
    names : sequence of str or None, optional
        Zoo models to make sure of; default every model of ``ZOO``.
    progress : bool, optional
        Show a tqdm bar while training.

    Returns
    -------
    dict of {str: pathlib.Path}
        The weights file of each name, in order.

    Raises
    ------
    UnknownModelError
        When a name is not a zoo model (nothing is trained then).
    """
    from mdc_widgets.errors import UnknownModelError

    names = list(names) if names else list(ZOO)
    unknown = [n for n in names if n not in ZOO]
    if unknown:
        raise UnknownModelError(f"{unknown} are not mini-world zoo models; the zoo has {list(ZOO)}.")
    return {name: load_or_train(name, progress=progress) for name in names}


def zoo_quality(names: Sequence[str] | None = None) -> dict[str, dict]:
    """Validation and hard-test quality recorded when each cached model was trained.

    Parameters
    ----------
    names : sequence of str or None, optional
        Zoo models to report; default every model of ``ZOO``.

    Returns
    -------
    dict of {str: dict}
        The training metadata (``config``, ``train_seconds``, ``quality`` per
        split: SS ``miou``, SOD ``iou`` and ``mae``) of each cached model;
        models not trained yet are left out.
    """
    out = {}
    for name in names or ZOO:
        meta = weights_path(name, ZOO[name]).with_suffix(".json")
        if meta.exists():
            out[name] = json.loads(meta.read_text())
    return out


def model_specs() -> list[ModelSpec]:
    """The registry records of the mini-world zoo (read by ``mdc_widgets.models._builtin``)."""
    return [
        ModelSpec(
            name,
            _builder(config),
            config.task,
            MINIWORLD_CLASSES if config.task == "ss" else ("background", "salient"),
            description=f"mini-world {config.architecture} (width {config.width}, augment {config.augment or 'none'})",
            default_weights=(lambda n=name: load_or_train(n)),
            cam_layer=_CAM_LAYERS[config.architecture],
            preprocess=normalize_half,
            tags=("miniworld",),
        )
        for name, config in ZOO.items()
    ]
