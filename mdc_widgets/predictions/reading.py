"""Open a prediction store for reading: the maps of every model as one lazy Dataset, checked for damage."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from mdc_widgets.errors import MdcError
from mdc_widgets.predictions._layout import (
    MAP_VARIABLES,
    StoreDamagedError,
    damaged_chunks,
    prediction_store_path,
    split_reference,
)

__all__ = ["completed_fraction", "model_classes", "open_predictions", "open_probabilities"]


def completed_fraction(store: str | Path, model_name: str) -> float:
    """Fraction of chunks of ``model_name`` already stored (0 when absent).

    Parameters
    ----------
    store : str or pathlib.Path
        The folder given to :func:`predict_pool`.
    model_name : str
        The competitor's name.

    Returns
    -------
    float
        In [0, 1]: chunks marked done over all chunks (1 for an empty pool).
    """
    path = prediction_store_path(store, model_name)
    if not path.exists():
        return 0.0
    done = zarr.open_group(str(path), mode="r")["chunk_done"][:]
    return float(done.mean()) if done.size else 1.0


def open_predictions(store: str | Path, models: Sequence[Any] | None = None) -> xr.Dataset:
    """Open stored predictions lazily as one Dataset with dims ``(sample, model, y, x)``.

    Nothing but the ``(sample,)`` vectors is read: the maps are dask arrays with
    one dask chunk per stored chunk, so any pool-wide step can stream them.

    Parameters
    ----------
    store : str or pathlib.Path
        The folder given to :func:`predict_pool`.
    models : sequence of object or None, optional
        Names (or competitors) to open, in this order; default all in the store.

    Returns
    -------
    xarray.Dataset
        ``prediction (sample, model, y, x)`` uint8, ``entropy`` float16 in
        [0, 1] (when every model stored it), ``valid (sample)`` bool (AND over
        the models); coord ``task (model)``; attrs ``classes`` and ``sources``
        (see ``ARCHITECTURE.md``) and the pool fingerprint.

    Raises
    ------
    MdcError
        When the store is empty, a model has no store or an unfinished one
        (the message says how to resume), or the models' stores were made for
        different pools.
    StoreDamagedError
        When a finished chunk's files are missing or altered, or cannot be
        decoded; the message names the chunk and the fix.
    """
    store = Path(store)
    if models is None:
        names = sorted(p.name[: -len(".zarr")] for p in store.glob("*.zarr"))
    else:
        names = [m if isinstance(m, str) else (split_reference(m) or (m.name,))[0] for m in models]
    if not names:
        raise MdcError(f"No predictions in {store}; run predict_pool(pool, models, store={str(store)!r}) first.")
    parts = []
    classes: dict[str, list[str]] = {}
    sources: dict[str, str] = {}
    fingerprints = set()
    for name in names:
        path = prediction_store_path(store, name)
        if not path.exists():
            raise MdcError(f"No predictions of model {name!r} in {store}; run predict_pool with that model first.")
        damaged = damaged_chunks(path)
        if damaged:
            chunk, why = next(iter(damaged.items()))
            raise StoreDamagedError(
                f"The predictions of {name!r} in {path} are damaged: {len(damaged)} finished chunk(s) no longer "
                f"hold what was written (chunk {chunk}: {why}). Run predict_pool again with the same pool and "
                "store to recompute them (or pass overwrite=True, or delete the store)."
            )
        with _decoding(path, "opening"):
            # the sample ids are read once, from the first store: same pool, same ids (checked by fingerprint)
            ds = _guarded(
                xr.open_zarr(str(path), consolidated=False, drop_variables=["sample"] if parts else None), path
            )
            done = ds["chunk_done"].values
        if not bool(done.all()):
            raise MdcError(
                f"The predictions of {name!r} in {store} are unfinished ({int((~done).sum())} chunks missing); "
                "run predict_pool again with the same pool and store to resume."
            )
        classes[name] = list(ds.attrs["classes"])
        sources[name] = str(ds.attrs.get("source", ""))
        fingerprints.add(ds.attrs["pool_fingerprint"])
        part = ds.drop_vars(
            ["chunk_done", "chunk_bytes"] + (["probability", "class"] if "probability" in ds else []), errors="ignore"
        )
        if "entropy" in part and part["entropy"].dtype == np.uint8:
            # stored as round(255 H); every reader gets float16 H, as from stores made before
            part["entropy"] = (part["entropy"].astype(np.float32) / 255).astype(np.float16)
        part = part.expand_dims(model=[name]).assign_coords(task=("model", [ds.attrs["task"]]))
        part.attrs = {}
        parts.append(part)
    if len(fingerprints) > 1:
        raise MdcError(
            f"The stores of {names} in {store} were made for different pools; "
            "predict every model on the same pool (one store folder per pool)."
        )
    with_entropy = all("entropy" in p for p in parts)
    # a model run with entropy=False leaves the entropy of the others out rather than misaligned
    parts = [p if with_entropy else p.drop_vars("entropy", errors="ignore") for p in parts]
    # an image is valid when every model could predict it (released maps may skip some)
    valid = parts[0]["valid"].isel(model=0, drop=True).load()
    for part in parts[1:]:
        valid = valid & part["valid"].isel(model=0, drop=True).load().values
    combined = xr.concat(
        [p.drop_vars("valid") for p in parts], dim="model", coords="minimal", compat="override", join="override"
    )
    combined["valid"] = valid
    for var in ("prediction", "entropy"):
        if var in combined:
            combined[var] = combined[var].transpose("sample", "model", "y", "x")
    # zarr hands strings back as numpy's StringDType; plain str objects work everywhere
    combined = combined.assign_coords(sample=np.array([str(s) for s in combined["sample"].values], dtype=object))
    combined.attrs = {
        "classes": classes,
        "pool_fingerprint": fingerprints.pop(),
        "store": str(store),
        "sources": {m: src for m, src in sources.items() if src},
    }
    return combined


class _GuardedChunks:
    """A zarr array whose read errors name the store, the array and the chunk, and say the fix.

    A chunk file replaced by garbage of the right size passes the open-time
    check; decoding it then fails in zstd or another codec, deep inside a dask
    computation. This turns that into a :class:`StoreDamagedError`.
    """

    def __init__(self, array: zarr.Array, path: Path, name: str):
        self.array, self.path, self.name = array, path, name
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return self.array[key]
        except MdcError:
            raise
        except Exception as exc:
            first = key[0] if isinstance(key, tuple) else key
            start = first.start or 0 if isinstance(first, slice) else int(first)
            chunk = start // self.array.chunks[0]
            raise StoreDamagedError(
                f"Chunk {chunk} of {self.name!r} in the prediction store {self.path} cannot be decoded "
                f"({type(exc).__name__}: {exc}); run predict_pool with overwrite=True to recompute the store, "
                "or delete it."
            ) from exc


def _guarded(ds: xr.Dataset, path: Path) -> xr.Dataset:
    """``ds`` with its stored maps read through :class:`_GuardedChunks` (same dask chunks, same values)."""
    import uuid

    import dask.array as da

    group = zarr.open_group(str(path), mode="r")
    for name in MAP_VARIABLES:
        if name in ds and name in group:
            chunks = ds[name].data.chunks if hasattr(ds[name].data, "chunks") else group[name].chunks
            data = da.from_array(
                _GuardedChunks(group[name], path, name),
                chunks=chunks,
                lock=False,
                name=f"mdc-{name}-{uuid.uuid4().hex}",
                meta=np.empty((0,) * group[name].ndim, group[name].dtype),
            )
            ds[name] = (ds[name].dims, data, ds[name].attrs)
    return ds


@contextmanager
def _decoding(path: Path, doing: str) -> Iterator[None]:
    """Any error reading a store's metadata or vectors becomes a :class:`StoreDamagedError` naming it."""
    try:
        yield
    except MdcError:
        raise
    except Exception as exc:
        raise StoreDamagedError(
            f"The prediction store {path} is damaged ({doing} it failed with {type(exc).__name__}: {exc}); "
            "run predict_pool with overwrite=True to recompute it, or delete it."
        ) from exc


def open_probabilities(store: str | Path, model_name: str) -> xr.DataArray:
    """Stored SS class probabilities ``(sample, class, y, x)`` of one model, lazily.

    Parameters
    ----------
    store : str or pathlib.Path
        The folder given to :func:`predict_pool`.
    model_name : str
        An SS competitor run with ``RunOptions(probabilities=True)``.

    Returns
    -------
    xarray.DataArray
        ``(sample, class, y, x)`` float16, a dask array (nothing read yet).

    Raises
    ------
    MdcError
        When the model was run without ``probabilities=True`` (or not at all).
    StoreDamagedError
        When the store cannot be decoded.
    """
    path = prediction_store_path(store, model_name)
    with _decoding(path, "opening"):
        ds = _guarded(xr.open_zarr(str(path), consolidated=False), path) if path.exists() else None
    if ds is None or "probability" not in ds:
        raise MdcError(
            f"No class probabilities of {model_name!r} in {store}; run predict_pool(..., "
            "probabilities=True, overwrite=True) for that model."
        )
    return ds["probability"]


def model_classes(predictions: xr.Dataset) -> dict[str, list[str]]:
    """The class list of each model of an :func:`open_predictions` dataset.

    Parameters
    ----------
    predictions : xarray.Dataset
        From :func:`open_predictions` (attr ``classes``, a dict or its JSON).

    Returns
    -------
    dict of {str: list of str}
        ``{model: class names}``; SOD models have ``["background", "salient"]``.
    """
    raw = predictions.attrs.get("classes", "{}")
    return json.loads(raw) if isinstance(raw, str) else dict(raw)
