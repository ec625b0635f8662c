"""The on-disk layout of a prediction store: where each model's store and each chunk file lies, and its checks.

A leaf of the ``predictions`` package: the chunk runner writes into this
layout, :mod:`~mdc_widgets.predictions.reading` reads it, and
:mod:`~mdc_widgets.predictions.store` creates it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from mdc_widgets.errors import MdcError

__all__ = [
    "MAP_VARIABLES",
    "StoreDamagedError",
    "chunk_file",
    "chunk_problem",
    "chunk_sizes",
    "damaged_chunks",
    "open_arrays",
    "prediction_store_path",
    "split_reference",
]


def prediction_store_path(store: str | Path, model_name: str) -> Path:
    """Where the predictions of ``model_name`` live inside ``store``.

    Parameters
    ----------
    store : str or pathlib.Path
        The store folder given to ``predict_pool``.
    model_name : str
        The competitor's name.

    Returns
    -------
    pathlib.Path
        ``store/<model_name>.zarr``.
    """
    return Path(store) / f"{model_name}.zarr"


def split_reference(model: Any) -> tuple[str, Any] | None:
    """``(name, weights)`` for a registered-model reference (a name or a pair), else None.

    Parameters
    ----------
    model : object
        A registered name, a ``(name, checkpoint)`` pair, or a competitor.

    Returns
    -------
    tuple of (str, object) or None
        ``(name, "default")`` for a name, the pair itself for a pair, None for
        anything else (a competitor object).
    """
    if isinstance(model, str):
        return model, "default"
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], str):
        return model[0], model[1]
    return None


MAP_VARIABLES = ("prediction", "entropy", "probability", "valid")  # the parts of chunk_bytes, in order


def chunk_file(path: Path, name: str, array: zarr.Array, chunk: int) -> Path:
    """The file that holds sample-chunk ``chunk`` of array ``name`` of the store at ``path``.

    Parameters
    ----------
    path : pathlib.Path
        One model's ``.zarr`` store.
    name : str
        The array's name in the store (e.g. ``"prediction"``).
    array : zarr.Array
        That array (its metadata encodes the chunk key).
    chunk : int
        Index of the chunk along ``sample``.

    Returns
    -------
    pathlib.Path
        The chunk's file (the whole non-sample extent is one chunk).
    """
    return path / name / array.metadata.encode_chunk_key((int(chunk),) + (0,) * (array.ndim - 1))


def chunk_sizes(path: Path, arrays: dict[str, zarr.Array], chunk: int) -> np.ndarray:
    """``(parts,)`` byte sizes of the files of ``chunk`` (-1 for an array the store does not have).

    Parameters
    ----------
    path : pathlib.Path
        One model's ``.zarr`` store.
    arrays : dict of {str: zarr.Array}
        Its arrays (from :func:`open_arrays`).
    chunk : int
        Index of the chunk along ``sample``.

    Returns
    -------
    numpy.ndarray
        int64, one size per name of ``MAP_VARIABLES``, in that order.
    """
    return np.array(
        [
            chunk_file(path, name, arrays[name], chunk).stat().st_size if name in arrays else -1
            for name in MAP_VARIABLES
        ],
        np.int64,
    )


def open_arrays(path: Path) -> dict[str, zarr.Array]:
    """The arrays of one model's store, opened for writing, empty chunks written as files.

    Parameters
    ----------
    path : pathlib.Path
        One model's ``.zarr`` store (it must exist).

    Returns
    -------
    dict of {str: zarr.Array}
        The map arrays of ``MAP_VARIABLES`` present, plus ``chunk_bytes`` and
        ``chunk_done`` (when present), by name.
    """
    group = zarr.open_group(str(path), mode="r+")
    names = (*MAP_VARIABLES, "chunk_bytes", "chunk_done")
    # every written chunk gets its file, even all-background ones, so a missing file always means damage
    return {name: group[name].with_config({"write_empty_chunks": True}) for name in names if name in group}


class StoreDamagedError(MdcError):
    """A prediction store whose chunk files are missing, altered or cannot be decoded."""


def chunk_problem(path: Path, arrays: dict[str, zarr.Array], chunk: int, recorded: np.ndarray | None) -> str | None:
    """Why the finished chunk ``chunk`` cannot be trusted, or None when its files are as written.

    Parameters
    ----------
    path : pathlib.Path
        One model's ``.zarr`` store.
    arrays : dict of {str: zarr.Array}
        Its arrays.
    chunk : int
        Index of a chunk marked done.
    recorded : numpy.ndarray or None
        The byte sizes recorded when the chunk was written (``chunk_bytes``
        row; -1 entries: not recorded); None: only existence is checked.

    Returns
    -------
    str or None
        E.g. ``"<file> is missing"`` or a size mismatch; None when intact.
    """
    for part, name in enumerate(MAP_VARIABLES):
        if name not in arrays:
            continue
        file = chunk_file(path, name, arrays[name], chunk)
        if not file.exists():
            return f"{file} is missing"
        # -1: no record (a store made before the records existed), so existence is all that is known
        if recorded is not None and recorded[part] >= 0 and recorded[part] != file.stat().st_size:
            return f"{file} has {file.stat().st_size} bytes where {int(recorded[part])} were written"
    return None


def damaged_chunks(path: str | Path) -> dict[int, str]:
    """The finished chunks of one model's store whose files are missing or altered: ``{chunk: why}``.

    Each done chunk's files are compared with the byte sizes recorded when
    they were written (stores made before those records: the files must exist).
    Only file metadata is read, so the check is cheap on any pool size.

    Parameters
    ----------
    path : str or pathlib.Path
        One model's ``.zarr`` store; a folder that is not a store has none.

    Returns
    -------
    dict of {int: str}
        Why each damaged chunk cannot be trusted; empty when all are intact.

    Examples
    --------
    >>> import tempfile
    >>> damaged_chunks(tempfile.mkdtemp())
    {}
    """
    path = Path(path)
    if not (path / "chunk_done").exists():
        return {}
    group = zarr.open_group(str(path), mode="r")
    arrays = {name: group[name] for name in MAP_VARIABLES if name in group}
    try:
        records = group["chunk_bytes"][:] if "chunk_bytes" in group else None
    except Exception:  # a damaged record proves nothing either way; existence is still checked
        records = None
    damaged = {}
    for chunk in np.flatnonzero(group["chunk_done"][:]):
        problem = chunk_problem(path, arrays, int(chunk), None if records is None else records[chunk])
        if problem is not None:
            damaged[int(chunk)] = problem
    return damaged
