"""MAD mining in one call: score a whole pool for a competition group and store it beside the predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from mdc_widgets._atomic import atomic_write_dir
from mdc_widgets.errors import MdcError
from mdc_widgets.mining.score import CompetitionGroup, Weights, joint_score
from mdc_widgets.mining.selection import Constraints, Selection, select_top_k, thumbnail_features

__all__ = [
    "foreground_fraction",
    "dominant_class",
    "mine",
    "mine_groups",
    "load_mining",
    "mining_path",
]


def _foreground_maps(predictions: xr.Dataset, model: str) -> xr.DataArray:
    from mdc_widgets.discrepancy import binarize_saliency

    maps = predictions["prediction"].sel(model=model)
    task = str(predictions["task"].sel(model=model).values)
    if task == "ss":
        return maps > 0
    return xr.apply_ufunc(binarize_saliency, maps, dask="parallelized", output_dtypes=[bool])


def foreground_fraction(predictions: xr.Dataset, models: Sequence[str]) -> xr.DataArray:
    """Mean predicted foreground fraction ``(sample,)`` over ``models``.

    SS foreground is every non-background class; SOD foreground is the
    adaptively binarised saliency map.
    """
    parts = [_foreground_maps(predictions, m).mean(dim=("y", "x")) for m in models]
    return xr.concat(parts, dim="model", coords="minimal", compat="override").mean("model").compute()


def dominant_class(predictions: xr.Dataset, model: str) -> xr.DataArray:
    """Most frequent non-background class ``(sample,)`` of an SS model's maps (0 if none).

    Vectorised: one ``bincount`` over ``sample * C + label`` for the whole pool.
    """
    labels = np.asarray(predictions["prediction"].sel(model=model).values, dtype=np.int64)
    n = labels.shape[0]
    n_cls = int(labels.max()) + 1 if labels.size else 1
    flat = (np.arange(n)[:, None] * n_cls + labels.reshape(n, -1)).ravel()
    counts = np.bincount(flat, minlength=n * n_cls).reshape(n, n_cls)
    counts[:, 0] = 0
    dom = np.where(counts.max(axis=1) > 0, counts.argmax(axis=1), 0)
    return xr.DataArray(dom, dims="sample", coords={"sample": predictions["sample"]})


def mining_path(store: str | Path, key: str) -> Path:
    """Where a mining result called ``key`` lives inside a prediction store."""
    return Path(store) / "mining" / f"{key}.zarr"


def mine(
    predictions: xr.Dataset,
    group: CompetitionGroup,
    weights: Weights = Weights(),
    k: int = 50,
    constraints: Constraints = Constraints(),
    *,
    discrepancy: xr.DataArray | None = None,
    features: np.ndarray | None = None,
    pool: Any = None,
    sod_measure: str = "iou",
    key: str | None = None,
    store: str | Path | None = None,
    save: bool = True,
) -> xr.Dataset:
    """Score every image of the pool for ``group`` and select the top ``k``.

    Parameters
    ----------
    predictions : from :func:`mdc_widgets.predictions.open_predictions`
    group, weights : the competition and the weights of its terms
    k : how many images to select
    constraints : diversity constraints (each switchable)
    discrepancy : reuse a precomputed ``compute_discrepancies`` matrix
    features : ``(sample, d)`` for near-duplicate suppression; by default
        thumbnails of the pool's images (``pool``) or of the predictions
    sod_measure : ``"iou"`` or ``"mae"`` for the SOD-vs-SOD term
    key : name of the stored result (default: group key and weights)
    store : where to store it (default: the predictions' store)
    save : write ``<store>/mining/<key>.zarr`` atomically

    Returns
    -------
    xr.Dataset
        Along ``sample``: ``score``, the rank-normalised ``term_*``, the raw
        ``d_*``, ``foreground_area``, ``dominant_class``, ``selected`` (bool)
        and ``selection_rank`` (0 best, -1 not selected). Attrs hold the group,
        weights, k, constraints and the constraint report (JSON).
    """
    if discrepancy is None:
        from mdc_widgets.discrepancy import compute_discrepancies

        discrepancy = compute_discrepancies(predictions.sel(model=list(group.models)), sod_measure=sod_measure)
    valid = predictions["valid"].values if "valid" in predictions else None
    result = joint_score(discrepancy, group, weights, valid=valid)

    area = foreground_fraction(predictions, group.models)
    dom = dominant_class(predictions, group.ss[0]) if group.ss else xr.zeros_like(area, dtype=np.int64)
    if not group.ss and constraints.max_per_class is not None:
        # the quota is over predicted classes, which only SS models give
        constraints = Constraints(**{**constraints.as_dict(), "max_per_class": None})
    if constraints.dedup_threshold is not None and features is None:
        features = _default_features(predictions, group, pool)
    selection = select_top_k(
        result["score"], k, constraints,
        foreground_area=area, features=features,
        dominant_class=dom,
    )
    n = result.sizes["sample"]
    selected = np.zeros(n, bool)
    selected[selection.indices] = True
    rank = np.full(n, -1, np.int64)
    rank[selection.indices] = np.arange(len(selection.indices))
    result = result.assign(
        foreground_area=area.reset_coords(drop=True),
        dominant_class=dom.reset_coords(drop=True),
        selected=("sample", selected),
        selection_rank=("sample", rank),
    )
    key = key or f"{group.key}__w{weights.ss:g}-{weights.sod:g}-{weights.cross:g}__k{k}"
    result.attrs.update(
        key=key,
        k=int(k),
        sod_measure=sod_measure,
        constraints=json.dumps(constraints.as_dict()),
        report=json.dumps(selection.report()),
        skipped=json.dumps(selection.skipped),
        pool_fingerprint=predictions.attrs.get("pool_fingerprint", ""),
    )
    store = store or predictions.attrs.get("store")
    if save and store:
        atomic_write_dir(mining_path(store, key), lambda tmp: result.to_zarr(str(tmp), mode="w", consolidated=False))
    return result


def _default_features(predictions: xr.Dataset, group: CompetitionGroup, pool: Any) -> np.ndarray:
    if pool is not None:
        chunks = [pool.read_images(lo, min(lo + 1024, len(pool)))[0] for lo in range(0, len(pool), 1024)]
        return thumbnail_features(np.concatenate(chunks))
    # without the pool, near-identical images still give near-identical maps
    maps = predictions["prediction"].sel(model=list(group.models)).astype(np.float32)
    stacked = maps.transpose("sample", "model", "y", "x").values
    n, m = stacked.shape[:2]
    feats = np.concatenate([thumbnail_features(stacked[:, i]) for i in range(m)], axis=1)
    return feats / np.sqrt(m)


def mine_groups(
    predictions: xr.Dataset,
    groups: Sequence[CompetitionGroup],
    weights: Weights = Weights(),
    k: int = 50,
    constraints: Constraints = Constraints(),
    *,
    disjoint: bool = True,
    **kwargs: Any,
) -> dict[str, xr.Dataset]:
    """Mine several competition groups; with ``disjoint`` no image is picked twice."""
    from mdc_widgets.discrepancy import compute_discrepancies

    models = sorted({m for g in groups for m in g.models})
    discrepancy = kwargs.pop("discrepancy", None)
    if discrepancy is None:
        discrepancy = compute_discrepancies(predictions.sel(model=models), sod_measure=kwargs.get("sod_measure", "iou"))
    results: dict[str, xr.Dataset] = {}
    taken: set[str] = set(constraints.exclude)
    for group in groups:
        current = Constraints(**{**constraints.as_dict(), "exclude": frozenset(taken)}) if disjoint else constraints
        result = mine(predictions, group, weights, k, current, discrepancy=discrepancy, **kwargs)
        results[result.attrs["key"]] = result
        if disjoint:
            taken |= set(result["sample"].values[result["selected"].values].astype(str))
    return results


def load_mining(store: str | Path, key: str) -> xr.Dataset:
    """Open a stored mining result."""
    path = mining_path(store, key)
    if not path.exists():
        available = sorted(p.name[:-5] for p in (Path(store) / "mining").glob("*.zarr"))
        raise MdcError(f"No mining result {key!r} in {store}; available: {available or 'none'}.")
    return xr.open_zarr(str(path), consolidated=False).load()


def selected_samples(result: xr.Dataset) -> list[str]:
    """The selected sample ids of a mining result, best first."""
    rank = result["selection_rank"].values
    order = np.argsort(np.where(rank < 0, np.iinfo(np.int64).max, rank))[: int((rank >= 0).sum())]
    return [str(s) for s in result["sample"].values[order]]
