"""The mined set every exporter writes: images, each model's maps, ground truth and scores in one Dataset.

Exporters never reach into a Session themselves; they take the Dataset that
:func:`mined_set` builds, so a folder, a COCO file, Label Studio tasks and a
FiftyOne dataset of one result always hold the same images in the same order.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.mining.job import RANKED_COLUMNS  # one home: the mine command's ranked.csv

__all__ = ["RANKED_COLUMNS", "file_stem", "mined_set", "ranked_frame", "stems_to_samples"]


def file_stem(sample_id: str) -> str:
    """A file name stem for a sample id: the id itself when it is a safe name, else a readable stem and a hash.

    File pools use file stems as ids, so their exported files keep the
    original names (and ``open_pool(..., ground_truth=...)`` matches them).

    Examples
    --------
    >>> file_stem("beach_001")
    'beach_001'
    >>> file_stem("/photos/a b.jpg")
    'photos_a_b.jpg-adb22bde'
    """
    text = str(sample_id)
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text) and len(text) <= 120:
        return text
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[-60:] or "sample"
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def stems_to_samples(sample_ids: Any) -> dict[str, str]:
    """``{file_stem(id): id}`` for a pool's sample ids (to map exported file names back).

    Examples
    --------
    >>> stems_to_samples(["a", "/x/b c.png"])["a"]
    'a'
    """
    return {file_stem(s): str(s) for s in np.asarray(sample_ids).astype(str)}


def _session_of(source: Any, pool: Any, predictions: xr.Dataset | None) -> tuple[Any, xr.Dataset | None]:
    """The Session behind ``source`` and the mining result it names (None: the session's latest)."""
    from mdc_widgets.session import Session

    if isinstance(source, Session):
        return source, None
    if isinstance(source, xr.Dataset) and "score" in source:
        if pool is None or predictions is None or not predictions.attrs.get("store"):
            raise MdcError(
                "A mining result alone holds no images: pass pool=... and predictions=... "
                "(from open_predictions), or export a Session."
            )
        session = Session(pool, predictions.attrs["store"], use_registry=False)
        return session, source
    raise MdcError(f"Export a Session or a mining result (xr.Dataset with 'score'); got {type(source).__name__}.")


def mined_set(
    source: Any,
    *,
    result: str | xr.Dataset | None = None,
    selected_only: bool = True,
    pool: Any = None,
    predictions: xr.Dataset | None = None,
) -> xr.Dataset:
    """The images of a mining result with everything known about them, best first.

    Parameters
    ----------
    source : a :class:`~mdc_widgets.session.Session`, or a mining result
        (then ``pool`` and ``predictions`` are needed); a Dataset that already
        is a mined set is returned as it is
    result : which result of the session (key or Dataset; default: the latest)
    selected_only : only the selected images (in selection order), else the
        whole pool (selected first, then by score)

    Returns
    -------
    xr.Dataset
        ``image (sample, y, x, channel)`` uint8, ``prediction (sample, model,
        y, x)`` uint8 (SS labels, SOD saliency 0..255), ``task (model)``,
        ground truth ``semantic``/``saliency (sample, y, x)`` when the pool has
        it, and along ``sample`` the ranked-table columns (``rank``,
        ``selected``, ``score``, ``term_*``, ``d_*``, ``foreground_area``), the
        pool's metadata (nuisance factors) and ``verdicts`` (str). Attrs:
        ``classes`` ``{model: [names]}``, ``gt_classes``, ``result_key``.
    """
    if isinstance(source, xr.Dataset) and "image" in source and "prediction" in source:
        return source
    from mdc_widgets.mining.job import ranked_table
    from mdc_widgets.predictions import model_classes
    from mdc_widgets.session import group_of

    session, given = _session_of(source, pool, predictions)
    res = session.result(result if result is not None else given)
    table = ranked_table(res)
    if selected_only:
        table = table[table["selected"] == 1]
    if not len(table):
        raise MdcError(
            f"Mining result {res.attrs.get('key', '?')!r} selected no image; nothing to export. "
            "Loosen its constraints or pass selected_only=False."
        )
    ids = table["sample_id"].tolist()
    models = list(group_of(res).models)
    preds = session.predictions.sel(model=models, sample=ids)
    frame = table.set_index("sample_id")
    extra = session.ranked_table(res).set_index("sample").reindex(ids)
    variables: dict[str, Any] = {
        "image": (("sample", "y", "x", "channel"), session.images(ids)),
        "prediction": (
            ("sample", "model", "y", "x"),
            np.asarray(preds["prediction"].transpose("sample", "model", "y", "x").values, np.uint8),
        ),
    }
    for column in RANKED_COLUMNS:
        if column in frame:
            variables[column] = ("sample", frame[column].to_numpy())
    variables["selected"] = ("sample", frame["selected"].to_numpy().astype(bool))
    # the pool's metadata (nuisance factors, paths) and the verdicts, as the Session's table shows them
    for column in extra.columns:
        if column in variables or column in RANKED_COLUMNS or column.startswith(("term_", "d_")):
            continue
        values = extra[column]
        if column in ("verdicts", "pred_class_name", "path") or values.dtype == object:
            values = values.fillna("").astype(str)
        variables[column] = ("sample", values.to_numpy())
    ds = xr.Dataset(
        variables,
        coords={
            "sample": np.asarray(ids, dtype=object),
            "model": models,
            "task": ("model", [str(t) for t in preds["task"].values]),
            "channel": ["R", "G", "B"],
        },
    )
    gt = session.ground_truth()
    gt_classes: list[str] = []
    if gt is not None:
        gt = gt.sel(sample=ids)
        for name in ("semantic", "saliency", "semantic_labeled", "saliency_labeled"):
            if name in gt:
                ds[name] = (gt[name].dims, np.asarray(gt[name].values))
        gt_classes = list(getattr(session.pool, "classes", None) or gt.attrs.get("classes") or [])
    classes = model_classes(session.predictions)
    ds.attrs.update(
        classes={m: list(classes.get(m, [])) for m in models},
        gt_classes=gt_classes,
        result_key=str(res.attrs.get("key", "")),
        pool=str(getattr(session.pool, "name", "")),
    )
    return ds


def ranked_frame(mined: xr.Dataset) -> pd.DataFrame:
    """The mined set's rows with the columns of ``mining.job.ranked_table`` (``sample_id`` first).

    Examples
    --------
    >>> ds = xr.Dataset({c: ("sample", [1.0]) for c in RANKED_COLUMNS[:10]}, coords={"sample": ["a"]})
    >>> list(ranked_frame(ds).columns)[:3]
    ['sample_id', 'rank', 'selected']
    """
    frame = pd.DataFrame({"sample_id": [str(s) for s in mined["sample"].values]})
    for column in (c for c in RANKED_COLUMNS if c in mined):
        values = mined[column].values
        frame[column] = values.astype(int) if column in ("selected", "degenerate") else values
    return frame
