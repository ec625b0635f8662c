"""A mined set as a plain folder a person opens without Python: PNGs, a CSV and an HTML contact sheet.

Layout of ``OUT``::

    images/<stem>.png              the images (each at its own size; size="working": the working canvas)
    <model>/<stem>.png             each model's map: SS palette PNG (VOC colours), SOD grey 0..255
    ground_truth/semantic/<stem>.png, ground_truth/saliency/<stem>.png   (when the pool has them)
    overlays/<model or gt_kind>/<stem>.png   the maps coloured over the images (what index.html shows)
    ranked.csv                     the columns of ``mining.job.ranked_table`` for the exported images
    index.html                     contact sheet: one row per image, with a colour legend
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets._atomic import atomic_write_bytes, atomic_write_text
from mdc_widgets.errors import MdcError
from mdc_widgets.export.masks import grey_png, label_png, labeled_flags, rgb_png, write_images
from mdc_widgets.export.mined import file_stem, mined_set, ranked_frame
from mdc_widgets.viz.colors import overlay_map  # the browser's overlays, so the sheet shows the same colours

__all__ = ["contact_sheet_html", "export_folder"]

_RESERVED = {"images", "ground_truth", "overlays"}


def _columns(mined: xr.Dataset) -> list[tuple[str, str, np.ndarray | None]]:
    """The picture columns of the sheet: ``(folder name, task, labeled flags or None)`` for GT then models."""
    columns: list[tuple[str, str, np.ndarray | None]] = []
    for kind, task in (("semantic", "ss"), ("saliency", "sod")):
        if kind in mined:
            columns.append((f"gt_{kind}", task, labeled_flags(mined, kind)))
    columns += [(str(m), str(t), None) for m, t in zip(mined["model"].values, mined["task"].values)]
    return columns


def contact_sheet_html(mined: xr.Dataset, title: str = "Mined images") -> str:
    """The ``index.html`` of a folder export: a table of relative PNG links, no script.

    One row per image (rank, sample id, score, the image, the ground truth and
    each model's overlay) and a legend of the class colours present and of
    the saliency colour scale.

    Parameters
    ----------
    mined : xarray.Dataset
        A :func:`~mdc_widgets.export.mined_set`; the files it links to are written by :func:`export_folder`.
    title : str, optional
        The page's title and heading (HTML-escaped).

    Returns
    -------
    str
        A complete HTML page.

    Examples
    --------
    >>> ds = xr.Dataset({"rank": ("sample", [1]), "score": ("sample", [0.5])},
    ...                 coords={"sample": ["a"], "model": ["m"], "task": ("model", ["sod"])})
    >>> "overlays/m/a.png" in contact_sheet_html(ds)
    True
    """
    from mdc_widgets.viz import label_legend as legend
    from mdc_widgets.viz import legend_html, saliency_legend

    columns = _columns(mined)
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _, _ in columns)
    rows = []
    for i, sample in enumerate(mined["sample"].values):
        stem = html.escape(file_stem(str(sample)))
        cells = [
            f"<td>{int(mined['rank'].values[i])}</td>",
            f"<td>{html.escape(str(sample))}</td>",
            f"<td>{float(mined['score'].values[i]):.3f}</td>",
            f'<td><img src="images/{stem}.png" alt="{stem}"></td>',
        ]
        for name, _, flags in columns:
            shown = flags is None or bool(flags[i])
            cells.append(
                f'<td><img src="overlays/{html.escape(name)}/{stem}.png" alt="{html.escape(name)}"></td>'
                if shown
                else "<td>no mask</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    entries: list[tuple[str, str]] = []
    ss_classes = {}
    for model, task in zip(mined["model"].values, mined["task"].values):
        if str(task) == "ss":
            ss_classes = dict(enumerate((mined.attrs.get("classes") or {}).get(str(model), []))) or ss_classes
    if "semantic" in mined and mined.attrs.get("gt_classes"):
        ss_classes = {**dict(enumerate(mined.attrs["gt_classes"])), **ss_classes}
    ss_maps = (
        [np.asarray(mined["prediction"].values)[:, j] for j, t in enumerate(mined["task"].values) if str(t) == "ss"]
        if "prediction" in mined
        else []
    )
    if "semantic" in mined:
        ss_maps.append(np.asarray(mined["semantic"].values))
    if ss_maps:
        present = np.unique(np.concatenate([m.ravel() for m in ss_maps]))
        present = present[present != 255]
        names = [ss_classes.get(i, str(i)) for i in range(int(present.max(initial=0)) + 1)]
        entries += legend(names, present=present)
    if any(str(t) == "sod" for _, t, _ in columns):
        entries += saliency_legend()
    style = (
        "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px;font-size:12px;text-align:center}img{width:128px;image-rendering:pixelated}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        f'<p>{len(rows)} images; maps in the model folders, scores in <a href="ranked.csv">ranked.csv</a>.</p>\n'
        f"{legend_html(entries)}\n<table><tr><th>rank</th><th>sample</th><th>score</th><th>image</th>{head}</tr>\n"
        + "\n".join(rows)
        + "\n</table></body></html>\n"
    )


def export_folder(
    source: Any,
    out: str | Path,
    *,
    selected_only: bool = True,
    result: str | xr.Dataset | None = None,
    pool: Any = None,
    predictions: xr.Dataset | None = None,
    size: str = "native",
) -> Path:
    """Write a mined set as PNGs, ``ranked.csv`` and an ``index.html`` contact sheet into ``out``.

    Parameters
    ----------
    source : object
        A Session, a mining result (with ``pool`` and ``predictions``)
        or a :func:`~mdc_widgets.export.mined_set` Dataset.
    out : str or pathlib.Path
        The folder (created; files of an earlier export are replaced).
    selected_only : bool, optional
        Only the selected images, else the whole pool.
    result : str or xarray.Dataset or None, optional
        Which result of a Session (default: its latest).
    pool : Pool or None, optional
        The pool a mining result ``source`` was mined from (a Session brings its own).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` of that pool, needed with a mining result ``source``.
    size : str, optional
        ``"native"`` (default): each photo and its maps at the photo's own
        size; ``"working"``: the pool's working canvas (see
        :func:`~mdc_widgets.export.mined_set`).

    Returns
    -------
    pathlib.Path
        ``out/index.html``.

    Raises
    ------
    MdcError
        When a model is named ``images``, ``ground_truth`` or ``overlays`` (the export's own folders),
        or :func:`~mdc_widgets.export.mined_set` refuses ``source``.
    """
    from mdc_widgets.export.mined import sample_array

    mined = mined_set(source, result=result, selected_only=selected_only, pool=pool, predictions=predictions, size=size)
    out = Path(out)
    clash = _RESERVED & {str(m) for m in mined["model"].values}
    if clash:
        raise MdcError(f"Model names {sorted(clash)} clash with the export's own folders in {out}; rename the models.")
    write_images(mined, out / "images")
    for i, sample in enumerate(mined["sample"].values):
        stem = file_stem(str(sample))
        image = sample_array(mined, "image", i)
        for j, (model, task) in enumerate(zip(mined["model"].values, mined["task"].values)):
            writer = label_png if str(task) == "ss" else grey_png
            values = sample_array(mined, "prediction", i, j)
            atomic_write_bytes(out / str(model) / f"{stem}.png", writer(values))
            atomic_write_bytes(
                out / "overlays" / str(model) / f"{stem}.png", rgb_png(overlay_map(image, values, str(task)))
            )
        for kind, task in (("semantic", "ss"), ("saliency", "sod")):
            if kind in mined and labeled_flags(mined, kind)[i]:
                truth = sample_array(mined, kind, i)
                atomic_write_bytes(
                    out / "ground_truth" / kind / f"{stem}.png",
                    label_png(truth) if kind == "semantic" else grey_png(truth),
                )
                atomic_write_bytes(
                    out / "overlays" / f"gt_{kind}" / f"{stem}.png", rgb_png(overlay_map(image, truth, task))
                )
    atomic_write_text(out / "ranked.csv", ranked_frame(mined).to_csv(index=False))
    title = f"Mined images: {mined.attrs.get('result_key') or 'result'} ({mined.attrs.get('pool') or 'pool'})"
    atomic_write_text(out / "index.html", contact_sheet_html(mined, title))
    return out / "index.html"
