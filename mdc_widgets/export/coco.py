"""COCO with RLE masks: the mined images and each model's masks as pre-annotations for CVAT, and back.

``export_coco`` writes ``OUT/images/<stem>.png`` and one COCO file per model,
``OUT/annotations/<model>.json``: one annotation per (image, class present),
its mask as compressed RLE (``iscrowd: 1``, as CVAT and pycocotools expect
RLE). Import one of them into CVAT ("COCO 1.0", images from ``OUT/images``),
correct the masks, export "COCO 1.0" again and read it back with
:func:`import_coco`. Needs ``pycocotools`` (``pip install mdc-widgets[annotation]``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets._atomic import atomic_write_json
from mdc_widgets.errors import MdcError
from mdc_widgets.export.masks import masks_dataset, write_images
from mdc_widgets.export.mined import file_stem, mined_set, sample_extent, stems_to_samples
from mdc_widgets.export.prelabels import SALIENT, class_index, prelabels

__all__ = ["export_coco", "import_coco", "mask_annotations", "rasterize_annotations"]


def _mask_api() -> Any:
    try:
        from pycocotools import mask
    except ImportError as exc:
        raise MdcError("COCO masks need pycocotools: pip install 'mdc-widgets[annotation]' (or pycocotools).") from exc
    return mask


def mask_annotations(labels: np.ndarray, image_id: int, first_id: int = 1, score: float | None = None) -> list[dict]:
    """One COCO annotation with an RLE mask per class present in ``labels`` (0 background, 255 ignored).

    Parameters
    ----------
    labels : numpy.ndarray
        ``(H, W)`` integer class indices.
    image_id : int
        The COCO image id the annotations belong to.
    first_id : int, optional
        Annotation id of the first class; the others count up from it.
    score : float or None, optional
        A confidence stored in every annotation (COCO results format); None for none.

    Returns
    -------
    list of dict
        One annotation per class present (not 0 or 255), with a compressed RLE ``segmentation``,
        ``area`` and ``bbox``.

    Examples
    --------
    >>> anns = mask_annotations(np.array([[0, 2], [2, 2]], np.uint8), image_id=7)
    >>> [(a["category_id"], a["area"], a["bbox"], a["iscrowd"]) for a in anns]
    [(2, 3, [0, 0, 2, 2], 1)]
    """
    mask_api = _mask_api()
    labels = np.asarray(labels)
    annotations = []
    for offset, value in enumerate(int(v) for v in np.unique(labels) if v not in (0, 255)):
        rle = mask_api.encode(np.asfortranarray(labels == value, dtype=np.uint8))
        annotation = {
            "id": first_id + offset,
            "image_id": int(image_id),
            "category_id": value,
            "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": int(mask_api.area(rle)),
            "bbox": [int(round(b)) for b in mask_api.toBbox(rle)],
            "iscrowd": 1,
        }
        if score is not None:
            annotation["score"] = float(score)
        annotations.append(annotation)
    return annotations


def rasterize_annotations(
    annotations: Sequence[dict], height: int, width: int, value_of: Any = lambda category_id: category_id
) -> np.ndarray:
    """A class map ``(H, W)`` uint8 of COCO annotations (RLE, compressed or not, or polygons); later ones on top.

    Parameters
    ----------
    annotations : sequence of dict
        COCO annotations of one image.
    height : int
        The image's height in pixels.
    width : int
        The image's width in pixels.
    value_of : callable, optional
        Maps a ``category_id`` to the pixel value painted; default the id itself.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` uint8, 0 where nothing is painted.

    Examples
    --------
    >>> anns = mask_annotations(np.array([[0, 1], [0, 1]], np.uint8), image_id=1)
    >>> rasterize_annotations(anns, 2, 2).tolist()
    [[0, 1], [0, 1]]
    >>> square = {"category_id": 3, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}
    >>> rasterize_annotations([square], 2, 2).tolist()
    [[3, 3], [3, 3]]
    """
    mask_api = _mask_api()
    out = np.zeros((int(height), int(width)), np.uint8)
    for annotation in annotations:
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):  # polygons
            rle = mask_api.merge(mask_api.frPyObjects(segmentation, int(height), int(width)))
        elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE (CVAT writes these)
            rle = mask_api.frPyObjects(segmentation, int(height), int(width))
        else:
            rle = dict(segmentation)
            rle["counts"] = rle["counts"].encode("ascii") if isinstance(rle["counts"], str) else rle["counts"]
        out[mask_api.decode(rle).astype(bool)] = value_of(int(annotation["category_id"]))
    return out


def export_coco(
    source: Any,
    out: str | Path,
    *,
    selected_only: bool = True,
    result: str | xr.Dataset | None = None,
    pool: Any = None,
    predictions: xr.Dataset | None = None,
    size: str = "native",
) -> dict[str, Path]:
    """Write the mined images and one COCO file of pre-annotations per model; returns ``{model: json path}``.

    SS models give one category per class (``id`` = class index, the
    background is left out); SOD models the category ``salient`` (id 1) from
    their adaptively binarised map. Each image's ``file_name`` is
    ``<stem>.png`` in ``OUT/images`` (the sample id where it is a safe name).
    With ``size="native"`` (the default) a file pool's photos and masks keep
    the photos' own sizes (no letterbox pad); ``size="working"`` writes the
    pool's working canvas (see :func:`~mdc_widgets.export.mined_set`).

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
        ``"native"`` or ``"working"``, as above.

    Returns
    -------
    dict of {str: pathlib.Path}
        Model name to its ``OUT/annotations/<model>.json``.

    Raises
    ------
    MdcError
        When :func:`~mdc_widgets.export.mined_set` refuses ``source`` or ``size``.
    """
    mined = mined_set(source, result=result, selected_only=selected_only, pool=pool, predictions=predictions, size=size)
    out = Path(out)
    write_images(mined, out / "images")
    images = []
    for i, s in enumerate(mined["sample"].values):
        height, width = sample_extent(mined, i)
        images.append({"id": i + 1, "file_name": f"{file_stem(str(s))}.png", "width": width, "height": height})
    files = {}
    for model, (kind, labels, classes) in prelabels(mined).items():
        categories = [{"id": i, "name": name, "supercategory": kind} for i, name in enumerate(classes) if i > 0]
        annotations: list[dict] = []
        for i, image in enumerate(images):
            own = labels[i, : image["height"], : image["width"]]
            annotations += mask_annotations(own, image["id"], first_id=len(annotations) + 1)
        document = {
            "info": {
                "description": f"pre-annotations of {model} ({kind}) for mining result "
                f"{mined.attrs.get('result_key', '')}",
                "version": "1.0",
            },
            "licenses": [],
            "images": images,
            "categories": categories,
            "annotations": annotations,
        }
        files[model] = out / "annotations" / f"{model}.json"
        atomic_write_json(files[model], document)
    return files


def import_coco(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
    pool: Any = None,
) -> xr.Dataset:
    """Masks of a COCO file (e.g. CVAT's "COCO 1.0" export) as ground truth ``(sample, y, x)``.

    A file whose only category is ``salient`` gives ``saliency`` (0/255);
    any other gives ``semantic`` class indices, labels matched to ``classes``
    by name (default: the category ids are the indices). Every image listed
    counts as annotated (no annotation: all background). Sample ids are the
    file stems, mapped back through ``sample_ids`` (the pool's) where the
    export had to rename them. With ``pool`` (the pool or Session the set was
    exported from; its sample ids are used when ``sample_ids`` is not given),
    masks at each photo's own size (a ``size="native"`` export) are brought to
    the pool's working canvas, as the pool fits its own masks.

    Parameters
    ----------
    path : str or pathlib.Path
        The COCO JSON file.
    classes : sequence of str or None, optional
        Semantic class names by index, matched to the category names; None uses the category ids.
    sample_ids : sequence of str or None, optional
        The pool's sample ids, to map renamed file stems back; default ``pool``'s.
    pool : Pool or Session or None, optional
        What the set was exported from; brings native-size masks to its working canvas.

    Returns
    -------
    xarray.Dataset
        :func:`~mdc_widgets.export.masks.masks_dataset`'s layout.

    Raises
    ------
    MdcError
        When the file is not COCO JSON with ``images`` and ``categories``, a category is not in
        ``classes``, or no image is listed.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        images, categories = document["images"], document["categories"]
    except (OSError, ValueError, KeyError) as exc:
        raise MdcError(
            f"{path} is not a COCO file with 'images' and 'categories' ({exc}); export the task as COCO 1.0."
        ) from exc
    names = {int(c["id"]): str(c["name"]) for c in categories}
    saliency = set(names.values()) == {SALIENT[1]}
    if saliency:
        value_of = lambda category_id: 255  # noqa: E731 - one salient class
    elif classes is not None:
        lookup = {cid: class_index(name, classes, str(path)) for cid, name in names.items()}
        value_of = lookup.__getitem__
    else:
        value_of = int
    by_image: dict[int, list[dict]] = {}
    for annotation in document.get("annotations", []):
        by_image.setdefault(int(annotation["image_id"]), []).append(annotation)
    if sample_ids is None and pool is not None:
        sample_ids = getattr(pool, "pool", pool).sample_ids
    to_sample = stems_to_samples(sample_ids) if sample_ids is not None else {}
    kind = "saliency" if saliency else "semantic"
    masks = {}
    for image in images:
        stem = Path(str(image["file_name"])).stem
        masks[to_sample.get(stem, stem)] = rasterize_annotations(
            by_image.get(int(image["id"]), []), image["height"], image["width"], value_of
        )
    names_out = list(SALIENT) if saliency else list(classes or [])
    return masks_dataset({kind: masks}, names_out, pool=pool)
