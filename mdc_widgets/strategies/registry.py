"""The strategy registry: every hard-example strategy scores the whole pool, higher = harder.

A strategy is ``func(inputs, **own_params) -> xr.DataArray (sample,)``: one
:class:`~mdc_widgets.strategies.sources.StrategyInputs` (the pool, stored
predictions, models, ground truth, seed, ...) plus its own keyword
parameters. :func:`score_pool` is the one call site: it checks the inputs a
strategy needs, builds the inputs object once and passes the strategy its
own parameters. A function whose first parameter is not called ``inputs``
(an older plug-in) receives the uniform inputs it names as keywords instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.strategies.sources import UNIFORM_INPUTS, StrategyInputs

__all__ = [
    "UNIFORM_INPUTS",
    "Strategy",
    "StrategyInputs",
    "UnknownStrategyError",
    "get_strategy",
    "list_strategies",
    "register_strategy",
    "score_pool",
    "takes_inputs",
]


def takes_inputs(func: Callable[..., Any]) -> bool:
    """Whether ``func`` is a strategy of the form ``func(inputs, **params)`` (its first parameter is ``inputs``).

    Parameters
    ----------
    func : callable
        A strategy function.

    Returns
    -------
    bool
        True for ``func(inputs, ...)``, False for the keyword form.

    Examples
    --------
    >>> takes_inputs(lambda inputs, model=None: None), takes_inputs(lambda pool=None, **_: None)
    (True, False)
    """
    first = next(iter(inspect.signature(func).parameters.values()), None)
    return (
        first is not None
        and first.name == "inputs"
        and first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD)
    )


class UnknownStrategyError(MdcError, KeyError):
    """A strategy name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    Parameters
    ----------
    name : str
        Registry key.
    func : callable
        ``func(inputs: StrategyInputs, **params) -> xr.DataArray (sample,)``, higher = harder.
    needs_labels : bool
        It compares predictions with ground truth.
    needs_models : int or str
        How many models it scores with (an int: at least that
        many), or a phrase such as ``"2 ss"`` or ``"2+ same task"``.
    description : str
        One line for menus.
    needs_modules : bool, optional
        It runs the competitors' networks (on perturbed images, or
        for Grad-CAM), not only their stored predictions.
    """

    name: str
    func: Callable[..., xr.DataArray]
    needs_labels: bool
    needs_models: int | str
    description: str
    needs_modules: bool = False

    @property
    def params(self) -> dict[str, Any]:
        """The strategy's own keyword parameters and their defaults (not the inputs)."""
        parameters = list(inspect.signature(self.func).parameters.values())
        if takes_inputs(self.func):
            parameters = parameters[1:]
        return {
            p.name: (None if p.default is inspect.Parameter.empty else p.default)
            for p in parameters
            if p.name not in UNIFORM_INPUTS and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }

    def __call__(self, **inputs: Any) -> xr.DataArray:
        return score_pool(self, **inputs)


_REGISTRY: dict[str, Strategy] = {}


def register_strategy(
    name: str,
    func: Callable[..., xr.DataArray],
    *,
    needs_labels: bool,
    needs_models: int | str,
    description: str,
    needs_modules: bool = False,
    overwrite: bool = False,
) -> Strategy:
    """Register a strategy under ``name`` (``overwrite=True`` to replace one).

    Parameters
    ----------
    name : str
        The registry key.
    func : callable
        ``func(inputs, **params)`` (or a keyword form) returning ``(sample,)`` scores, higher = harder.
    needs_labels : bool
        It compares predictions with ground truth.
    needs_models : int or str
        At least this many models, or a phrase for menus (``"2 ss"``).
    description : str
        One line for menus.
    needs_modules : bool, optional
        It runs the competitors' networks, not only their stored predictions.
    overwrite : bool, optional
        Replace a strategy registered under ``name``.

    Returns
    -------
    Strategy
        The registered strategy.

    Raises
    ------
    MdcError
        ``name`` is taken (without ``overwrite``), or ``func`` is not callable.

    Examples
    --------
    >>> import numpy as np
    >>> def darkest(inputs, channel=0):
    ...     images, _ = inputs.pool.read_images(0, inputs.n)
    ...     return xr.DataArray(-images[..., channel].mean(axis=(1, 2)), dims="sample")
    >>> _ = register_strategy("darkest", darkest, needs_labels=False, needs_models=0,
    ...                       description="darkest images first", overwrite=True)
    >>> "darkest" in list_strategies()
    True
    """
    if name in _REGISTRY and not overwrite:
        raise MdcError(f"A strategy named {name!r} is already registered; pass overwrite=True to replace it.")
    if not callable(func):
        raise MdcError(f"Strategy {name!r} must be a function; got {type(func).__name__}.")
    strategy = Strategy(name, func, bool(needs_labels), needs_models, description, bool(needs_modules))
    _REGISTRY[name] = strategy
    return strategy


def list_strategies(needs_labels: bool | None = None) -> list[str]:
    """Registered strategy names (only those that do or do not need labels, if asked), sorted.

    Parameters
    ----------
    needs_labels : bool or None, optional
        True: only strategies that need labels; False: only those that do not; None: all.

    Returns
    -------
    list of str
        Strategy names.
    """
    return sorted(n for n, s in _REGISTRY.items() if needs_labels is None or s.needs_labels == needs_labels)


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``; :class:`UnknownStrategyError` lists the known ones.

    Parameters
    ----------
    name : str
        A registered name.

    Returns
    -------
    Strategy
        The strategy.

    Raises
    ------
    UnknownStrategyError
        ``name`` is not registered.
    """
    if name not in _REGISTRY:
        raise UnknownStrategyError(f"Unknown strategy {name!r}; choose one of {list_strategies()}.")
    return _REGISTRY[name]


def _available_models(inputs: dict[str, Any]) -> int:
    names = {m if isinstance(m, str) else m.name for m in inputs.get("models") or ()}
    predictions = inputs.get("predictions")
    if predictions is not None:
        names |= {str(m) for m in predictions["model"].values}
    names |= set(inputs.get("probabilities") or {})
    return len(names)


def score_pool(strategy: str | Strategy | Callable[..., xr.DataArray], **inputs: Any) -> xr.DataArray:
    """Score every image of the pool with one strategy; higher = harder.

    Parameters
    ----------
    strategy : str or Strategy or callable
        A registered name, a :class:`Strategy`, or a plain function
        ``func(inputs, **params)``.
    **inputs : object
        The uniform inputs (:data:`UNIFORM_INPUTS`: ``pool``, ``predictions``,
        ``models``, ``ground_truth``, ``seed``, ...), from which one
        :class:`StrategyInputs` is built, and the strategy's own parameters
        (:attr:`Strategy.params`). Uniform inputs a strategy does not use are
        ignored; an unknown parameter is an error.

    Returns
    -------
    xr.DataArray
        ``(sample,)`` float scores (NaN for images that could not be scored),
        named after the strategy.

    Raises
    ------
    MdcError
        Labels or models the strategy needs are missing, a parameter is
        unknown, or the strategy returns no ``(sample,)`` DataArray
        (:class:`UnknownStrategyError` for an unknown name).

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.zeros((2, 3, 4, 4), np.float32)
    >>> probs[0], probs[1, 0] = 1 / 3, 1.0  # image 0 undecided between 3 classes, image 1 certain
    >>> score_pool("entropy", probabilities={"m": probs}).round(3).values.tolist()
    [1.0, 0.0]
    """
    if isinstance(strategy, str):
        strategy = get_strategy(strategy)
    elif not isinstance(strategy, Strategy):
        strategy = Strategy(getattr(strategy, "__name__", "custom"), strategy, False, 0, "")
    if strategy.needs_labels and inputs.get("ground_truth") is None:
        pool = inputs.get("pool")
        inputs["ground_truth"] = pool.ground_truth() if pool is not None else None
        if inputs["ground_truth"] is None:
            raise MdcError(f"Strategy {strategy.name!r} needs labels; pass ground_truth= or a pool that has them.")
    if isinstance(strategy.needs_models, int) and _available_models(inputs) < strategy.needs_models:
        raise MdcError(
            f"Strategy {strategy.name!r} needs at least {strategy.needs_models} model(s); "
            "pass them in models= or predictions=."
        )
    parameters = inspect.signature(strategy.func).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    own = {k: v for k, v in inputs.items() if k not in UNIFORM_INPUTS}
    unknown = [k for k in own if k not in strategy.params]
    if unknown and not takes_any:
        raise MdcError(
            f"Strategy {strategy.name!r} has no parameter {unknown[0]!r}; its parameters are "
            f"{sorted(strategy.params)} besides the inputs {list(UNIFORM_INPUTS)}."
        )
    if takes_inputs(strategy.func):
        uniform = {k: v for k, v in inputs.items() if k in UNIFORM_INPUTS}
        scores = strategy.func(StrategyInputs(**uniform), **own)
    else:
        scores = strategy.func(**{k: v for k, v in inputs.items() if takes_any or k in parameters})
    if not isinstance(scores, xr.DataArray) or scores.dims != ("sample",):
        raise MdcError(f"Strategy {strategy.name!r} must return an xr.DataArray over 'sample'.")
    return scores.rename(strategy.name).assign_attrs(strategy=strategy.name)
