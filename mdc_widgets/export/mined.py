"""The mined set every exporter writes: images, each model's maps, ground truth and scores in one Dataset.

Exporters never reach into a Session themselves; they take the Dataset that
:func:`mined_set` builds, so a folder, a COCO file, Label Studio tasks and a
FiftyOne dataset of one result always hold the same images in the same order.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.mining.job import RANKED_COLUMNS  # one home: the mine command's ranked.csv

__all__ = [
    "RANKED_COLUMNS",
    "SIZES",
    "file_stem",
    "mined_set",
    "ranked_frame",
    "sample_array",
    "sample_extent",
    "stems_to_samples",
]

# "native": each image at its own size (file pools: the photo as on disk, no letterbox pad);
# "working": the pool's working canvas, as the models saw it
SIZES = ("native", "working")


def file_stem(sample_id: str) -> str:
    """A file name stem for a sample id: the id itself when it is a safe name, else a readable stem and a hash.

    File pools use file stems as ids, so their exported files keep the
    original names (and ``open_pool(..., ground_truth=...)`` matches them).

    Parameters
    ----------
    sample_id : str
        A pool's sample id.

    Returns
    -------
    str
        The stem, without extension; distinct ids give distinct stems.

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

    Parameters
    ----------
    sample_ids : sequence of str
        The pool's sample ids.

    Returns
    -------
    dict of {str: str}
        File stem to sample id.

    Examples
    --------
    >>> stems_to_samples(["a", "/x/b c.png"])["a"]
    'a'
    """
    return {file_stem(s): str(s) for s in np.asarray(sample_ids).astype(str)}


class _OneResult:
    """A :class:`~mdc_widgets.workspace.PoolWorkspace` and one mining result: what :func:`mined_set` reads of a Session.

    Exporting a mining result with its ``pool`` and ``predictions`` needs the
    data side only (images, maps, ground truth) and the verdicts beside the
    store, so the exporters never build a Session (``Session.export`` calls
    them: the import runs one way).
    """

    def __init__(self, workspace: Any, result: xr.Dataset) -> None:
        from mdc_widgets.labeling import LabelStore

        self._workspace = workspace
        self._result = result
        self.labels = LabelStore(workspace.store / "labels.jsonl", sample_ids=workspace.pool.sample_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._workspace, name)

    def result(self, result: str | xr.Dataset | None = None) -> xr.Dataset:
        return result if isinstance(result, xr.Dataset) else self._result

    def ranked_table(self, result: xr.Dataset) -> pd.DataFrame:
        from mdc_widgets.mining import group_of
        from mdc_widgets.tables import ranked_table

        classes = self._workspace.first_ss_classes(group_of(result))
        return ranked_table(result, self._workspace.metadata(), self.labels, classes)


def _session_of(source: Any, pool: Any, predictions: xr.Dataset | None) -> tuple[Any, xr.Dataset | None]:
    """The Session (or workspace and result) behind ``source`` and the mining result it names (None: the latest)."""
    from mdc_widgets.workspace import PoolWorkspace

    if isinstance(source, PoolWorkspace) and hasattr(source, "result"):  # a Session
        return source, None
    if isinstance(source, xr.Dataset) and "score" in source:
        if pool is None or predictions is None or not predictions.attrs.get("store"):
            raise MdcError(
                "A mining result alone holds no images: pass pool=... and predictions=... "
                "(from open_predictions), or export a Session."
            )
        workspace = PoolWorkspace(pool, predictions.attrs["store"], use_registry=False)
        return _OneResult(workspace, source), source
    raise MdcError(f"Export a Session or a mining result (xr.Dataset with 'score'); got {type(source).__name__}.")


def mined_set(
    source: Any,
    *,
    result: str | xr.Dataset | None = None,
    selected_only: bool = True,
    pool: Any = None,
    predictions: xr.Dataset | None = None,
    size: str = "native",
) -> xr.Dataset:
    """The images of a mining result with everything known about them, best first.

    Parameters
    ----------
    source : object
        A :class:`~mdc_widgets.session.Session`, or a mining result
        (then ``pool`` and ``predictions`` are needed); a Dataset that already
        is a mined set is returned as it is.
    result : str or xarray.Dataset or None, optional
        Which result of the session (key or Dataset; default: the latest).
    selected_only : bool, optional
        Only the selected images (in selection order), else the
        whole pool (selected first, then by score).
    pool : Pool or None, optional
        The pool a mining result ``source`` was mined from (a Session brings its own).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` of that pool, needed with a mining result ``source``.
    size : str, optional
        ``"native"`` (default): each image at its own size, as an annotator or
        a benchmark sees it: a file pool's photos are read from disk, released
        maps at full resolution, network maps and working-size masks cropped
        out of the letterbox and resized back (nearest for labels, bilinear
        for saliency), the pool's masks read at full size. ``"working"``: the
        pool's working canvas (letterbox pads included), as the models saw it.
        In-memory pools (the mini-world) are the same either way.

    Returns
    -------
    xr.Dataset
        ``image (sample, y, x, channel)`` uint8, ``prediction (sample, model,
        y, x)`` uint8 (SS labels, SOD saliency 0..255), ``task (model)``,
        ground truth ``semantic``/``saliency (sample, y, x)`` when the pool has
        it, and along ``sample`` the ranked-table columns (``rank``,
        ``selected``, ``score``, ``term_*``, ``d_*``, ``foreground_area``), the
        pool's metadata (nuisance factors) and ``verdicts`` (str). Attrs:
        ``classes`` ``{model: [names]}``, ``gt_classes``, ``result_key``,
        ``size``. At the native size of a file pool, ``y``/``x`` span the
        largest image and ``image_height``/``image_width (sample)`` give each
        image's own extent (:func:`sample_array` crops to it).

    Raises
    ------
    MdcError
        When ``source`` is neither a Session, a mining result (with ``pool`` and ``predictions``)
        nor a mined set, when ``size`` is unknown, or when the result selected no image and
        ``selected_only`` is set.
    """
    if isinstance(source, xr.Dataset) and "image" in source and "prediction" in source:
        return source
    if size not in SIZES:
        raise MdcError(f"size must be one of {SIZES}; got {size!r}.")
    from mdc_widgets.mining import group_of
    from mdc_widgets.mining.job import ranked_table
    from mdc_widgets.predictions import model_classes

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
        imported = set(gt.attrs.get("imported_samples") or [])
        gt = gt.sel(sample=ids)
        gt.attrs["imported_samples"] = sorted(imported & set(ids))
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
        size="working",
    )
    if size == "native" and getattr(session.pool, "paths", None) is not None:
        ds = _at_native_size(ds, session, gt.attrs["imported_samples"] if gt is not None else [])
    return ds


def _at_native_size(mined: xr.Dataset, session: Any, imported: list[str]) -> xr.Dataset:
    """The working-size mined set of a file pool with every image, map and mask at the image's own size.

    Images are decoded from their files; maps go through
    :func:`mdc_widgets.metrics.map_at_native_size` (released maps from their
    files); the pool's masks are read at full size, except for samples whose
    ground truth was imported (``imported``), which are brought back from the
    working canvas. Arrays are padded to the largest image (zeros; semantic
    255) and ``image_height``/``image_width`` record each extent.
    """
    from mdc_widgets.data.io import decode_image, from_canvas
    from mdc_widgets.metrics import map_at_native_size
    from mdc_widgets.models.released_maps import pool_stems, released_competitors

    pool = session.pool
    fit = getattr(pool, "fit", "stretch")
    ids = [str(s) for s in mined["sample"].values]
    indices = [session.index_of(s) for s in ids]
    natives = [tuple(int(v) for v in pool.native_size(i)) for i in indices]
    height, width = max(h for h, _ in natives), max(w for _, w in natives)
    models = [str(m) for m in mined["model"].values]
    tasks = [str(t) for t in mined["task"].values]
    released = released_competitors(session.predictions)
    stems = pool_stems(pool)
    working_maps = np.asarray(mined["prediction"].values)
    images = np.zeros((len(ids), height, width, 3), np.uint8)
    maps = np.zeros((len(ids), len(models), height, width), np.uint8)
    truths = {
        kind: np.full((len(ids), height, width), 255 if kind == "semantic" else 0, np.uint8)
        for kind in ("semantic", "saliency")
        if kind in mined
    }
    imported_set = set(imported)
    for k, (index, (h, w)) in enumerate(zip(indices, natives)):
        try:
            image = decode_image(pool.paths[index])
        except MdcError as exc:  # an image the pool skipped (whole-pool export): its working canvas, as stored
            warnings.warn(f"{exc} Exporting its working-size image instead.", stacklevel=3)
            image = from_canvas(np.asarray(mined["image"].values[k]), (h, w), fit, "image")
        if image.shape[:2] != (h, w):  # the header and the pixels disagree (a damaged EXIF block): trust the pixels
            image = from_canvas(np.asarray(mined["image"].values[k]), (h, w), fit, "image")
        images[k, :h, :w] = image
        for j, (model, task) in enumerate(zip(models, tasks)):
            try:
                values = map_at_native_size(working_maps[k, j], task, (h, w), fit, released.get(model), stems[index])
            except MdcError as exc:  # a released map skipped for this image, or gone since: the stored map
                warnings.warn(f"{exc} Exporting the stored working-size map of {model!r} instead.", stacklevel=3)
                values = map_at_native_size(working_maps[k, j], task, (h, w), fit)
            maps[k, j, :h, :w] = values
        try:
            own = {} if ids[k] in imported_set else pool.native_ground_truth(index)
        except MdcError:  # an unreadable mask: the pool's ground truth already left it out
            own = {}
        for kind, values in truths.items():
            if kind in own:
                values[k, :h, :w] = own[kind]
            else:  # imported at the working size, or unlabeled (then the fill is what the metrics skip)
                values[k, :h, :w] = from_canvas(np.asarray(mined[kind].values[k]), (h, w), fit, "labels")
    out = mined.drop_vars(["image", "prediction", *truths]).drop_dims(["y", "x"], errors="ignore")
    out["image"] = (("sample", "y", "x", "channel"), images)
    out["prediction"] = (("sample", "model", "y", "x"), maps)
    for kind, values in truths.items():
        out[kind] = (("sample", "y", "x"), values)
    out["image_height"] = ("sample", np.array([h for h, _ in natives], np.int64))
    out["image_width"] = ("sample", np.array([w for _, w in natives], np.int64))
    out.attrs.update(mined.attrs, size="native")
    return out


def sample_extent(mined: xr.Dataset, index: int) -> tuple[int, int]:
    """``(H, W)`` of image ``index`` of a mined set: its own size at the native size, else the canvas.

    Parameters
    ----------
    mined : xarray.Dataset
        A :func:`mined_set`.
    index : int
        The image's position in the set.

    Returns
    -------
    tuple of 2 int
        Height and width in pixels.

    Examples
    --------
    >>> ds = xr.Dataset({"image_height": ("sample", [3]), "image_width": ("sample", [5])})
    >>> sample_extent(ds, 0)
    (3, 5)
    """
    if "image_height" in mined:
        return int(mined["image_height"].values[index]), int(mined["image_width"].values[index])
    return int(mined.sizes["y"]), int(mined.sizes["x"])


def sample_array(mined: xr.Dataset, name: str, index: int, model: int | None = None) -> np.ndarray:
    """Variable ``name`` (``image``, ``prediction`` with ``model`` its position, ``semantic``, ``saliency``)
    of image ``index``, cropped to the image's extent (:func:`sample_extent`).

    Parameters
    ----------
    mined : xarray.Dataset
        A :func:`mined_set`.
    name : str
        The variable: ``"image"``, ``"prediction"``, ``"semantic"`` or ``"saliency"``.
    index : int
        The image's position in the set.
    model : int or None, optional
        Position along ``model``, for ``"prediction"``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` or ``(H, W, 3)`` at the image's own extent.

    Examples
    --------
    >>> ds = xr.Dataset({"saliency": (("sample", "y", "x"), np.arange(12).reshape(1, 3, 4)),
    ...                  "image_height": ("sample", [2]), "image_width": ("sample", [3])})
    >>> sample_array(ds, "saliency", 0).tolist()
    [[0, 1, 2], [4, 5, 6]]
    """
    values = mined[name].values[index]
    if model is not None:
        values = values[model]
    h, w = sample_extent(mined, index)
    return np.asarray(values[:h, :w])


def ranked_frame(mined: xr.Dataset) -> pd.DataFrame:
    """The mined set's rows with the columns of ``mining.job.ranked_table`` (``sample_id`` first).

    Parameters
    ----------
    mined : xarray.Dataset
        A :func:`mined_set`.

    Returns
    -------
    pandas.DataFrame
        One row per image in the set's order; columns the set lacks are left out.

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
