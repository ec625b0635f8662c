"""What a mining result is called, where it is stored, which group it was mined for and what it selected.

The one home of these facts: :func:`mine`, ``Session`` and the experiments
all name, open and read results through them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.mining.score import CompetitionGroup, Weights

__all__ = ["group_of", "load_mining", "mining_path", "result_key", "selected_samples"]


def result_key(group: CompetitionGroup, weights: Weights, k: int, protocol: str = "mdc", fusion: str = "rank") -> str:
    """The default name of a mining result: group, weights and ``k`` (and a protocol or fusion other than the default).

    :func:`mine` and ``Session.mine`` both name results with it, so re-mining a
    group replaces its own stored result.

    Parameters
    ----------
    group : CompetitionGroup
        The competition.
    weights : Weights
        The weights of its terms.
    k : int
        How many images are selected.
    protocol, fusion : str, optional
        Results of the default ``"mdc"`` rule with ``"rank"`` fusion keep their
        historical short keys; any other pair is appended.

    Examples
    --------
    >>> result_key(CompetitionGroup(ss=("a", "b")), Weights(1, 0, 0), 20)
    'a-b__w1-0-0__k20'
    >>> result_key(CompetitionGroup(ss=("a", "b")), Weights(1, 0, 0), 20, protocol="ijcv2021")
    'a-b__w1-0-0__k20__ijcv2021-rank'
    """
    key = f"{group.key}__w{weights.ss:g}-{weights.sod:g}-{weights.cross:g}__k{k}"
    return key if (protocol, fusion) == ("mdc", "rank") else f"{key}__{protocol}-{fusion}"


def group_of(result: xr.Dataset) -> CompetitionGroup:
    """The competition group a mining result was made for (read from its attrs).

    Parameters
    ----------
    result : xarray.Dataset
        A mining result (attrs ``group_ss`` and ``group_sod``, lists or JSON text).

    Returns
    -------
    CompetitionGroup
        Its SS and SOD models.

    Examples
    --------
    >>> group_of(xr.Dataset(attrs={"group_ss": ["a", "b"], "group_sod": "[]"}))
    CompetitionGroup(ss=('a', 'b'), sod=())
    """
    ss = result.attrs.get("group_ss", [])
    sod = result.attrs.get("group_sod", [])
    # zarr round trips may hand the lists back as JSON text
    ss = json.loads(ss) if isinstance(ss, str) else list(ss)
    sod = json.loads(sod) if isinstance(sod, str) else list(sod)
    return CompetitionGroup(ss=tuple(str(m) for m in ss), sod=tuple(str(m) for m in sod))


def mining_path(store: str | Path, key: str) -> Path:
    """Where a mining result called ``key`` lives inside a prediction store.

    Parameters
    ----------
    store : str or pathlib.Path
        The prediction store folder.
    key : str
        The result's key (:func:`result_key`).

    Returns
    -------
    pathlib.Path
        ``<store>/mining/<key>.zarr`` (it need not exist).
    """
    return Path(store) / "mining" / f"{key}.zarr"


def load_mining(store: str | Path, key: str) -> xr.Dataset:
    """Open a stored mining result.

    Parameters
    ----------
    store : str or pathlib.Path
        The prediction store folder.
    key : str
        The result's key (:func:`result_key`).

    Returns
    -------
    xarray.Dataset
        The result, loaded into memory.

    Raises
    ------
    MdcError
        No result ``key`` in ``store``; the message lists the stored keys.
    """
    path = mining_path(store, key)
    if not path.exists():
        available = sorted(p.name[:-5] for p in (Path(store) / "mining").glob("*.zarr"))
        raise MdcError(f"No mining result {key!r} in {store}; available: {available or 'none'}.")
    return xr.open_zarr(str(path), consolidated=False).load()


def selected_samples(result: xr.Dataset) -> list[str]:
    """The selected sample ids of a mining result, best first (``selection_rank`` 0, 1, ...).

    The one way to read a result's picks. Best first is the order a reader
    and every exporter want; a caller that needs pool order sorts by
    position itself.

    Parameters
    ----------
    result : xarray.Dataset
        A mining result with ``selection_rank (sample)`` (-1: not selected).

    Returns
    -------
    list of str
        The selected sample ids.

    Examples
    --------
    >>> result = xr.Dataset({"selection_rank": ("sample", [1, -1, 0])}, coords={"sample": ["a", "b", "c"]})
    >>> selected_samples(result)
    ['c', 'a']
    """
    rank = result["selection_rank"].values
    order = np.argsort(np.where(rank < 0, np.iinfo(np.int64).max, rank))[: int((rank >= 0).sum())]
    return [str(s) for s in result["sample"].values[order]]
