"""MAD competition as strategies: thin wrappers over ``mining.joint_score`` on the pairwise discrepancies.

They let the MAD scores stand in the same menu as the seeds' baselines; the
mining package stays the one place that defines them. ``score_mad_<kind>(inputs,
...)`` are the registered strategies; ``mad_<kind>(predictions=..., ...)`` their
keyword forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.strategies.sources import StrategyInputs

__all__ = [
    "mad_cross",
    "mad_joint",
    "mad_sod",
    "mad_ss",
    "score_mad_cross",
    "score_mad_joint",
    "score_mad_sod",
    "score_mad_ss",
]


def _models_of(predictions: xr.Dataset, task: str, chosen: Sequence[Any] | None, count: int) -> tuple[str, ...]:
    if chosen is not None:
        return tuple(m if isinstance(m, str) else m.name for m in chosen)
    names = [str(m) for m, t in zip(predictions["model"].values, predictions["task"].values) if str(t) == task]
    return tuple(names[:count])


def _mad(
    kind: str,
    inputs: StrategyInputs,
    *,
    ss_models: Sequence[Any] | None = None,
    sod_models: Sequence[Any] | None = None,
    weights: Any = None,
    discrepancy: xr.DataArray | None = None,
    sod_measure: str = "iou",
    downsample: int = 1,
) -> xr.DataArray:
    from mdc_widgets.discrepancy import compute_discrepancies
    from mdc_widgets.mining import CompetitionGroup, Weights, joint_score

    predictions, device = inputs.predictions, inputs.device
    if predictions is None:
        raise MdcError(f"mad_{kind} scores stored predictions; run predict_pool and pass predictions=.")
    need_ss = 1 if kind == "cross" else (2 if kind in ("ss", "joint") else 0)
    need_sod = 1 if kind == "cross" else (2 if kind in ("sod", "joint") else 0)
    ss = _models_of(predictions, "ss", ss_models, need_ss) if need_ss else ()
    sod = _models_of(predictions, "sod", sod_models, need_sod) if need_sod else ()
    if len(ss) < need_ss or len(sod) < need_sod:
        raise MdcError(
            f"mad_{kind} needs {need_ss} SS and {need_sod} SOD model(s) in the predictions; "
            f"found SS {list(ss)} and SOD {list(sod)}. Predict more models or pass ss_models= / sod_models=."
        )
    weights = Weights.for_kind(kind) if weights is None else Weights.coerce(weights)
    if discrepancy is None:
        discrepancy = compute_discrepancies(predictions, sod_measure=sod_measure, downsample=downsample, device=device)
    valid = predictions["valid"] if "valid" in predictions else None
    result = joint_score(discrepancy, CompetitionGroup(ss=ss, sod=sod), weights, valid=valid)
    return result["score"].assign_attrs(group_ss=",".join(ss), group_sod=",".join(sod), weights=str(weights.as_dict()))


def score_mad_ss(
    inputs: StrategyInputs,
    ss_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    downsample: int = 1,
) -> xr.DataArray:
    """Single-task MAD for two SS models: the percentile of ``1 - mIoU`` between their maps.

    Parameters
    ----------
    inputs : StrategyInputs
        The stored ``predictions`` (and the ``device``).
    ss_models : sequence, optional
        The two SS models (default the first two in the predictions).
    discrepancy : xarray.DataArray, optional
        A precomputed ``compute_discrepancies`` result, to skip recomputing it.
    downsample : int, optional
        Score at reduced resolution.
    """
    return _mad("ss", inputs, ss_models=ss_models, discrepancy=discrepancy, downsample=downsample)


def score_mad_sod(
    inputs: StrategyInputs,
    sod_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    sod_measure: str = "iou",
    downsample: int = 1,
) -> xr.DataArray:
    """Single-task MAD for two SOD models: the percentile of their saliency disagreement.

    Parameters
    ----------
    inputs : StrategyInputs
        The stored ``predictions`` (and the ``device``).
    sod_models : sequence, optional
        The two SOD models (default the first two in the predictions).
    discrepancy : xarray.DataArray, optional
        A precomputed ``compute_discrepancies`` result.
    sod_measure : str, optional
        ``"iou"`` (1 - IoU of binarised maps) or ``"mae"``.
    downsample : int, optional
        Score at reduced resolution.
    """
    return _mad(
        "sod", inputs, sod_models=sod_models, discrepancy=discrepancy, sod_measure=sod_measure, downsample=downsample
    )


def score_mad_cross(
    inputs: StrategyInputs,
    ss_models: Sequence[Any] | None = None,
    sod_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    downsample: int = 1,
) -> xr.DataArray:
    """Cross-task MAD: SS foreground against binarised SOD saliency, averaged over the (SS, SOD) pairs.

    Parameters
    ----------
    inputs : StrategyInputs
        The stored ``predictions`` (and the ``device``).
    ss_models, sod_models : sequence, optional
        The models (default the first SS and the first SOD model).
    discrepancy : xarray.DataArray, optional
        A precomputed ``compute_discrepancies`` result.
    downsample : int, optional
        Score at reduced resolution.
    """
    return _mad(
        "cross", inputs, ss_models=ss_models, sod_models=sod_models, discrepancy=discrepancy, downsample=downsample
    )


def score_mad_joint(
    inputs: StrategyInputs,
    ss_models: Sequence[Any] | None = None,
    sod_models: Sequence[Any] | None = None,
    weights: Any = None,
    discrepancy: xr.DataArray | None = None,
    sod_measure: str = "iou",
    downsample: int = 1,
) -> xr.DataArray:
    """Joint MAD: ``w_ss r(d_ss) + w_sod r(d_sod) + w_x mean r(d_x)`` for two SS and two SOD models.

    Parameters
    ----------
    inputs : StrategyInputs
        The stored ``predictions`` (and the ``device``).
    ss_models, sod_models : sequence, optional
        The two models of each task (default the first two of each).
    weights : Weights or dict or tuple, optional
        ``mining.Weights``, a dict or an ``(ss, sod, cross)`` triple; default equal.
    discrepancy : xarray.DataArray, optional
        A precomputed ``compute_discrepancies`` result.
    sod_measure : str, optional
        ``"iou"`` or ``"mae"``.
    downsample : int, optional
        Score at reduced resolution.
    """
    return _mad(
        "joint",
        inputs,
        ss_models=ss_models,
        sod_models=sod_models,
        weights=weights,
        discrepancy=discrepancy,
        sod_measure=sod_measure,
        downsample=downsample,
    )


# ---- keyword forms: build the inputs, call the strategy -------------------------------------------


def mad_ss(
    predictions: xr.Dataset | None = None,
    ss_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    downsample: int = 1,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_mad_ss` on these predictions.

    Parameters
    ----------
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output of the competitors.
    ss_models : sequence of str or None, optional
        The two SS models (default the first two).
    discrepancy : xarray.DataArray or None, optional
        A precomputed ``compute_discrepancies`` result.
    downsample : int, optional
        Score at reduced resolution (an integer factor).
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = more disagreement.
    """
    return score_mad_ss(StrategyInputs(predictions=predictions, device=device), ss_models, discrepancy, downsample)


def mad_sod(
    predictions: xr.Dataset | None = None,
    sod_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    sod_measure: str = "iou",
    downsample: int = 1,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_mad_sod` on these predictions.

    Parameters
    ----------
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output of the competitors.
    sod_models : sequence of str or None, optional
        The two SOD models (default the first two).
    discrepancy : xarray.DataArray or None, optional
        A precomputed ``compute_discrepancies`` result.
    sod_measure : {"iou", "mae"}, optional
        The measure of SOD pairs.
    downsample : int, optional
        Score at reduced resolution (an integer factor).
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = more disagreement.
    """
    inputs = StrategyInputs(predictions=predictions, device=device)
    return score_mad_sod(inputs, sod_models, discrepancy, sod_measure, downsample)


def mad_cross(
    predictions: xr.Dataset | None = None,
    ss_models: Sequence[Any] | None = None,
    sod_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    downsample: int = 1,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_mad_cross` on these predictions.

    Parameters
    ----------
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output of the competitors.
    ss_models : sequence of str or None, optional
        The SS model (default the first).
    sod_models : sequence of str or None, optional
        The SOD model (default the first).
    discrepancy : xarray.DataArray or None, optional
        A precomputed ``compute_discrepancies`` result.
    downsample : int, optional
        Score at reduced resolution (an integer factor).
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = more disagreement.
    """
    inputs = StrategyInputs(predictions=predictions, device=device)
    return score_mad_cross(inputs, ss_models, sod_models, discrepancy, downsample)


def mad_joint(
    predictions: xr.Dataset | None = None,
    ss_models: Sequence[Any] | None = None,
    sod_models: Sequence[Any] | None = None,
    weights: Any = None,
    discrepancy: xr.DataArray | None = None,
    sod_measure: str = "iou",
    downsample: int = 1,
    device: str | None = "auto",
) -> xr.DataArray:
    """:func:`score_mad_joint` on these predictions.

    Parameters
    ----------
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` output of the competitors.
    ss_models : sequence of str or None, optional
        The two SS models (default the first two).
    sod_models : sequence of str or None, optional
        The two SOD models (default the first two).
    weights : Weights or dict or tuple or None, optional
        ``mining.Weights``, a dict or an ``(ss, sod, cross)`` triple; None: equal.
    discrepancy : xarray.DataArray or None, optional
        A precomputed ``compute_discrepancies`` result.
    sod_measure : {"iou", "mae"}, optional
        The measure of SOD pairs.
    downsample : int, optional
        Score at reduced resolution (an integer factor).
    device : str or None, optional
        Where to compute (``"auto"``: CUDA when present).

    Returns
    -------
    xarray.DataArray
        ``(sample,)`` float64 scores, higher = more disagreement.
    """
    inputs = StrategyInputs(predictions=predictions, device=device)
    return score_mad_joint(inputs, ss_models, sod_models, weights, discrepancy, sod_measure, downsample)
