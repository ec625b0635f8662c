"""The ranked table of a mining result: one row per sample with its rank, scores, metadata and verdicts.

Functions of explicit inputs (a result, the pool's metadata frame, the
verdicts), so the table the browser shows can be built and tested without a
``Session``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.data import Pool
from mdc_widgets.errors import MdcError
from mdc_widgets.labeling import Label
from mdc_widgets.mining import CompetitionGroup, group_of, group_pairs
from mdc_widgets.tables.filters import Filter, filter_table

__all__ = ["metadata_frame", "ranked_table", "score_ranks", "verdict_column"]


def _class_names(classes: Sequence[str], indices: Iterable[int]) -> list[str]:
    """The name of each class index; an index past the class list stays its number."""
    return [classes[c] if 0 <= c < len(classes) else str(c) for c in indices]


def metadata_frame(pool: Pool) -> pd.DataFrame:
    """The pool's per-sample metadata (nuisance factors, paths, ...) as a frame indexed by sample id.

    Every sample of the pool has a row (in pool order); with class names and
    a ``dominant_class`` column, ``dominant_class_name`` is added.

    Parameters
    ----------
    pool : Pool
        Any pool; one without metadata gives a frame with no columns.

    Examples
    --------
    >>> from mdc_widgets.data import open_pool
    >>> frame = metadata_frame(open_pool("miniworld", n=2, image_size=32))
    >>> frame.index.tolist(), "dominant_class_name" in frame
    (['pool-000000', 'pool-000001'], True)
    """
    ids = pd.Index([str(s) for s in pool.sample_ids], name="sample")
    meta = pool.metadata() if hasattr(pool, "metadata") else None
    if meta is not None and len(meta.data_vars):
        frame = meta.to_dataframe()
        frame.index = frame.index.astype(str)
        frame = frame.reindex(ids)
    else:
        frame = pd.DataFrame(index=ids)
    frame.index.name = "sample"
    classes = getattr(pool, "classes", None)
    if classes and "dominant_class" in frame:
        frame["dominant_class_name"] = _class_names(classes, frame["dominant_class"].fillna(0).astype(int))
    return frame


def verdict_column(labels: Iterable[Label], samples: Sequence[str], group: CompetitionGroup) -> list[str]:
    """The verdicts on the group's pairs, one text per sample: ``"a|b:winner; ..."`` (``""`` if none).

    Parameters
    ----------
    labels : iterable of Label
        The verdicts (a :class:`~mdc_widgets.labeling.LabelStore` iterates them).
    samples : sequence of str
        The sample ids of the rows.
    group : CompetitionGroup
        Only verdicts on this group's pairs count.
    """
    pairs = {(a, b) if a <= b else (b, a) for a, b, _ in group_pairs(group)}
    verdicts: dict[str, list[str]] = {}
    for item in labels:
        if (item.model_a, item.model_b) in pairs:
            winner = item.winner or item.verdict
            verdicts.setdefault(item.sample, []).append(f"{item.model_a}|{item.model_b}:{winner}")
    return ["; ".join(verdicts.get(s, [])) for s in samples]


def score_ranks(score: np.ndarray) -> np.ndarray:
    """Rank 1 for the highest score, ties in pool order, NaN last.

    Parameters
    ----------
    score : numpy.ndarray
        ``(sample,)`` scores, higher is harder; NaN allowed.

    Returns
    -------
    numpy.ndarray
        ``(sample,)`` int64 ranks 1..n.

    Examples
    --------
    >>> score_ranks(np.array([0.2, np.nan, 0.9, 0.2])).tolist()
    [2, 4, 1, 3]
    """
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(np.where(np.isfinite(score), -score, np.inf), kind="stable")
    rank = np.empty(len(score), np.int64)
    rank[order] = np.arange(1, len(score) + 1)
    return rank


def ranked_table(
    result: xr.Dataset,
    metadata: pd.DataFrame | None = None,
    labels: Iterable[Label] = (),
    pred_classes: Sequence[str] = (),
    sort_by: str = "score",
    filters: Filter | Sequence[Filter] | None = None,
    ascending: bool = False,
) -> pd.DataFrame:
    """One row per sample of the pool: rank, scores, raw discrepancies, selection, metadata, verdicts.

    Parameters
    ----------
    result : xarray.Dataset
        A mining result (:func:`mdc_widgets.mining.mine`).
    metadata : pandas.DataFrame, optional
        Per-sample columns indexed by sample id (:func:`metadata_frame`);
        columns the result has already are not repeated.
    labels : iterable of Label, optional
        Verdicts, shown in ``verdicts`` for the result's pairs.
    pred_classes : sequence of str, optional
        Class names of the group's first SS model; they name ``pred_class``
        in ``pred_class_name``.
    sort_by : str, optional
        Any column (NaN last; equal values by rank).
    filters : Filter or sequence of Filter, optional
        :func:`~mdc_widgets.tables.filter_table` expressions.
    ascending : bool, optional
        Sort order.

    Returns
    -------
    pandas.DataFrame
        ``rank`` is 1 for the highest score of the pool (before filtering);
        ``pred_class`` is the dominant class the group's first SS model
        predicts, ``dominant_class`` (when the pool has it) the true one.

    Raises
    ------
    MdcError
        ``sort_by`` is not a column of the table.
    """
    variables = [v for v in result.data_vars if result[v].dims == ("sample",)]
    frame = result[variables].to_dataframe()
    frame.index = frame.index.astype(str)
    frame.index.name = "sample"
    frame = frame.rename(columns={"dominant_class": "pred_class"})
    frame.insert(0, "rank", score_ranks(frame["score"].to_numpy(dtype=np.float64)))
    group = group_of(result)
    if group.ss and "pred_class" in frame:
        frame["pred_class_name"] = _class_names(list(pred_classes), frame["pred_class"].astype(int))
    if metadata is not None:
        frame = frame.join(metadata[[c for c in metadata.columns if c not in frame.columns]], how="left")
    frame["verdicts"] = verdict_column(labels, frame.index, group)
    frame = filter_table(frame.reset_index(), filters)
    if sort_by not in frame:
        raise MdcError(f"Cannot sort by {sort_by!r}: no such column. Columns: {', '.join(frame.columns)}.")
    return frame.sort_values(
        [sort_by, "rank"], ascending=[ascending, True], na_position="last", kind="stable"
    ).reset_index(drop=True)
