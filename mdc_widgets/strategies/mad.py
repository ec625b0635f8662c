"""MAD competition as strategies: thin wrappers over ``mining.joint_score`` on the pairwise discrepancies.

They let the MAD scores stand in the same menu as the seeds' baselines; the
mining package stays the one place that defines them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import xarray as xr

from mdc_widgets.errors import MdcError

__all__ = ["mad_cross", "mad_joint", "mad_sod", "mad_ss"]


def _models_of(predictions: xr.Dataset, task: str, chosen: Sequence[Any] | None, count: int) -> tuple[str, ...]:
    if chosen is not None:
        return tuple(m if isinstance(m, str) else m.name for m in chosen)
    names = [str(m) for m, t in zip(predictions["model"].values, predictions["task"].values) if str(t) == task]
    return tuple(names[:count])


def _mad(
    kind: str,
    predictions: xr.Dataset | None,
    ss_models: Sequence[Any] | None,
    sod_models: Sequence[Any] | None,
    weights: Any,
    discrepancy: xr.DataArray | None,
    sod_measure: str,
    downsample: int,
    device: str | None,
) -> xr.DataArray:
    from mdc_widgets.discrepancy import compute_discrepancies
    from mdc_widgets.mining import CompetitionGroup, Weights, joint_score

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


def mad_ss(
    predictions: xr.Dataset | None = None,
    ss_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    downsample: int = 1,
    device: str | None = "auto",
) -> xr.DataArray:
    """Single-task MAD for two SS models: the percentile of ``1 - mIoU`` between their maps.

    Parameters
    ----------
    ss_models : the two SS models (default the first two in the predictions)
    discrepancy : a precomputed ``compute_discrepancies`` result, to skip recomputing it
    downsample : score at reduced resolution
    """
    return _mad("ss", predictions, ss_models, None, None, discrepancy, "iou", downsample, device)


def mad_sod(
    predictions: xr.Dataset | None = None,
    sod_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    sod_measure: str = "iou",
    downsample: int = 1,
    device: str | None = "auto",
) -> xr.DataArray:
    """Single-task MAD for two SOD models: the percentile of their saliency disagreement.

    Parameters
    ----------
    sod_models : the two SOD models (default the first two in the predictions)
    sod_measure : ``"iou"`` (1 - IoU of binarised maps) or ``"mae"``
    """
    return _mad("sod", predictions, None, sod_models, None, discrepancy, sod_measure, downsample, device)


def mad_cross(
    predictions: xr.Dataset | None = None,
    ss_models: Sequence[Any] | None = None,
    sod_models: Sequence[Any] | None = None,
    discrepancy: xr.DataArray | None = None,
    downsample: int = 1,
    device: str | None = "auto",
) -> xr.DataArray:
    """Cross-task MAD: SS foreground against binarised SOD saliency, averaged over the (SS, SOD) pairs.

    Parameters
    ----------
    ss_models, sod_models : the models (default the first SS and the first SOD model)
    """
    return _mad("cross", predictions, ss_models, sod_models, None, discrepancy, "iou", downsample, device)


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
    """Joint MAD: ``w_ss r(d_ss) + w_sod r(d_sod) + w_x mean r(d_x)`` for two SS and two SOD models.

    Parameters
    ----------
    ss_models, sod_models : the two models of each task (default the first two of each)
    weights : ``mining.Weights``, a dict or an ``(ss, sod, cross)`` triple; default equal
    """
    return _mad("joint", predictions, ss_models, sod_models, weights, discrepancy, sod_measure, downsample, device)
