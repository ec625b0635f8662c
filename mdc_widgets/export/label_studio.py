"""Label Studio tasks with each model's masks as brush predictions, and the corrected masks back.

``export_label_studio`` writes ``OUT/images/<stem>.png``, ``OUT/tasks.json``
(one task per image, one prediction per model, ``data.mdc_sample`` the
sample id) and ``OUT/label_config.xml`` (a ``BrushLabels`` tag ``semantic``
with the classes and/or ``saliency`` with ``salient``). Label Studio's brush
masks are its own run-length code ("rle" of the RGBA pixels, after
thi.ng/rle-pack); :func:`brush_encode` and :func:`brush_decode` implement it
here, so no converter package is needed. :func:`import_label_studio` reads a
"JSON" export (brush or polygon results) back as ground truth.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets._atomic import atomic_write_json, atomic_write_text
from mdc_widgets.errors import MdcError
from mdc_widgets.export.masks import masks_dataset, write_images
from mdc_widgets.export.mined import file_stem, mined_set, sample_extent
from mdc_widgets.export.prelabels import SALIENT, class_index, prelabels, semantic_classes

__all__ = ["brush_decode", "brush_encode", "export_label_studio", "import_label_studio", "label_config"]

# Label Studio's run-length field widths (bits) and the word size of its RGBA values
_RLE_SIZES = (3, 4, 8, 16)
_WORD = 8


def brush_encode(mask: np.ndarray) -> list[int]:
    """Label Studio brush RLE of a ``(H, W)`` mask (non-zero = painted), as the list of bytes it stores.

    The mask is spread over the 4 RGBA channels (value 255 where painted), like
    Label Studio's own ``mask2rle``; runs longer than 2**16 are split.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(H, W)``; non-zero pixels are painted.

    Returns
    -------
    list of int
        The RLE bytes (0-255), as in a Label Studio ``brushlabels`` result's ``rle``.

    Examples
    --------
    >>> mask = np.array([[0, 1], [1, 1]], np.uint8)
    >>> brush_decode(brush_encode(mask), 2, 2).tolist()
    [[0, 255], [255, 255]]
    """
    flat = np.repeat(np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8).ravel(), 4)
    bits = [f"{len(flat):032b}", f"{_WORD - 1:05b}", "".join(f"{s - 1:04b}" for s in _RLE_SIZES)]
    if len(flat):
        starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
        lengths = np.diff(np.r_[starts, len(flat)])
        for start, length in zip(starts, lengths):
            value = f"{int(flat[start]):08b}"
            while length > 0:
                run = min(int(length), 2 ** _RLE_SIZES[-1])
                size = next(i for i, s in enumerate(_RLE_SIZES) if run - 1 < 2**s)
                # '1': a run of one repeated value; its length - 1 in the smallest field that holds it
                bits.append(f"1{size:02b}{run - 1:0{_RLE_SIZES[size]}b}{value}")
                length -= run
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return [int(text[i : i + 8], 2) for i in range(0, len(text), 8)]


def brush_decode(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """The ``(H, W)`` uint8 alpha channel of a Label Studio brush RLE (255 where painted).

    Reads both kinds of blocks Label Studio writes: runs of one value and
    literal sequences.

    Parameters
    ----------
    rle : sequence of int
        The RLE bytes of a ``brushlabels`` result.
    height : int
        The result's ``original_height``.
    width : int
        The result's ``original_width``.

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` uint8.

    Raises
    ------
    MdcError
        When the RLE does not hold ``height * width * 4`` values.

    Examples
    --------
    >>> brush_decode(brush_encode(np.ones((3, 1), np.uint8)), 3, 1).ravel().tolist()
    [255, 255, 255]
    """
    bits = np.unpackbits(np.asarray(list(rle), np.uint8))
    position = 0

    def read(n: int) -> int:
        nonlocal position
        chunk = bits[position : position + n]
        position += n
        return int("".join("1" if b else "0" for b in chunk) or "0", 2)

    total = read(32)
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(total, np.uint8)
    i = 0
    while i < total:
        repeated = read(1)
        end = i + 1 + read(sizes[read(2)])
        if repeated:
            out[i:end] = read(word)
        else:
            for k in range(i, end):
                out[k] = read(word)
        i = end
    if total != height * width * 4:
        raise MdcError(
            f"A brush mask holds {total} values, not {height}x{width}x4; "
            "its original_width/original_height do not match the image."
        )
    return out.reshape(height, width, 4)[..., 3]


def label_config(kinds: dict[str, Sequence[str]]) -> str:
    """The Label Studio labeling config: an image and one ``BrushLabels`` tag per kind.

    Parameters
    ----------
    kinds : dict of {str: sequence of str}
        ``"semantic"`` and/or ``"saliency"`` to class names; class 0 (background) gets no label.

    Returns
    -------
    str
        The ``<View>`` XML.

    Examples
    --------
    >>> print(label_config({"saliency": ["background", "salient"]}))  # doctest: +NORMALIZE_WHITESPACE
    <View>
      <Image name="image" value="$image" zoom="true"/>
      <BrushLabels name="saliency" toName="image">
        <Label value="salient" background="#800000"/>
      </BrushLabels>
    </View>
    """
    from mdc_widgets.explain import label_palette

    palette = label_palette()
    lines = ["<View>", '  <Image name="image" value="$image" zoom="true"/>']
    for kind, classes in kinds.items():
        lines.append(f'  <BrushLabels name="{kind}" toName="image">')
        lines += [
            f'    <Label value="{html.escape(name, quote=True)}" background="#%02x%02x%02x"/>'
            % tuple(int(c) for c in palette[i])
            for i, name in enumerate(classes)
            if i > 0
        ]
        lines.append("  </BrushLabels>")
    lines.append("</View>")
    return "\n".join(lines)


def _brush_results(labels: np.ndarray, kind: str, classes: Sequence[str], model: str) -> list[dict]:
    height, width = labels.shape
    return [
        {
            "id": f"{file_stem(model)}-{value}",
            "from_name": kind,
            "to_name": "image",
            "type": "brushlabels",
            "original_width": int(width),
            "original_height": int(height),
            "image_rotation": 0,
            "value": {"format": "rle", "rle": brush_encode(labels == value), "brushlabels": [classes[value]]},
        }
        for value in (int(v) for v in np.unique(labels) if 0 < v < len(classes))
    ]


def export_label_studio(
    source: Any,
    out: str | Path,
    *,
    image_root: str = "/data/local-files/?d=images/",
    selected_only: bool = True,
    result: str | xr.Dataset | None = None,
    pool: Any = None,
    predictions: xr.Dataset | None = None,
    size: str = "native",
) -> Path:
    """Write images, ``tasks.json`` (models' masks as predictions) and ``label_config.xml``; returns tasks.json.

    Parameters
    ----------
    source : object
        A Session, a mining result (with ``pool`` and ``predictions``)
        or a :func:`~mdc_widgets.export.mined_set` Dataset.
    out : str or pathlib.Path
        The folder (created; files of an earlier export are replaced).
    image_root : str, optional
        URL prefix of ``OUT/images`` as Label Studio serves it; the
        default fits local-file serving with
        ``LOCAL_FILES_DOCUMENT_ROOT=OUT`` (or use an ``http://`` URL of a web server).
    selected_only : bool, optional
        Only the selected images, else the whole pool.
    result : str or xarray.Dataset or None, optional
        Which result of a Session (default: its latest).
    pool : Pool or None, optional
        The pool a mining result ``source`` was mined from (a Session brings its own).
    predictions : xarray.Dataset or None, optional
        ``open_predictions`` of that pool, needed with a mining result ``source``.
    size : str, optional
        ``"native"`` (default): a file pool's photos and brush masks at each
        photo's own size; ``"working"``: the pool's working canvas.

    Returns
    -------
    pathlib.Path
        ``out/tasks.json``.

    Raises
    ------
    MdcError
        When :func:`~mdc_widgets.export.mined_set` refuses ``source`` or ``size``.
    """
    mined = mined_set(source, result=result, selected_only=selected_only, pool=pool, predictions=predictions, size=size)
    out = Path(out)
    write_images(mined, out / "images")
    pre = prelabels(mined)
    kinds = {kind: classes for kind, _, classes in pre.values()}
    if "semantic" in kinds:
        kinds["semantic"] = semantic_classes(mined)
    tasks = []
    for i, sample in enumerate(mined["sample"].values):
        height, width = sample_extent(mined, i)
        predictions_of_image = [
            {
                "model_version": model,
                "score": float(np.nan_to_num(mined["score"].values[i])),
                "result": _brush_results(labels[i, :height, :width], kind, classes, model),
            }
            for model, (kind, labels, classes) in pre.items()
        ]
        tasks.append(
            {
                "data": {
                    "image": f"{image_root}{file_stem(str(sample))}.png",
                    "mdc_sample": str(sample),
                    "rank": int(mined["rank"].values[i]),
                },
                "predictions": predictions_of_image,
            }
        )
    atomic_write_json(out / "tasks.json", tasks)
    atomic_write_text(out / "label_config.xml", label_config(kinds) + "\n")
    return out / "tasks.json"


def _polygon_mask(points: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """A polygon in Label Studio's percent coordinates, filled, as a bool ``(H, W)`` mask."""
    from PIL import Image, ImageDraw

    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).polygon([(x * width / 100.0, y * height / 100.0) for x, y in points], fill=1)
    return np.asarray(canvas, bool)


def import_label_studio(
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    annotated_only: bool = True,
    pool: Any = None,
) -> xr.Dataset:
    """Masks of a Label Studio JSON export as ground truth ``semantic``/``saliency (sample, y, x)``.

    Each task's latest annotation that was not cancelled counts (with
    ``annotated_only=False`` a task without one falls back to its first
    prediction). Brush and polygon results are read; a ``saliency`` result
    paints 255, a ``semantic`` one the index of its label in ``classes``
    (default: the names in ``label_config.xml`` beside the file). A kind
    (tag) of that config, or used anywhere in the file, is all background in
    an annotated task that has none of it. With ``pool`` (the pool or Session
    the tasks were exported from), masks at each photo's own size (a
    ``size="native"`` export) are brought to the pool's working canvas.

    Parameters
    ----------
    path : str or pathlib.Path
        The JSON export (a list of tasks).
    classes : sequence of str or None, optional
        Semantic class names by index; default those of ``label_config.xml`` beside ``path``.
    annotated_only : bool, optional
        Only tasks with an annotation; False falls back to a task's first prediction.
    pool : Pool or Session or None, optional
        What the tasks were exported from; brings native-size masks to its working canvas.

    Returns
    -------
    xarray.Dataset
        :func:`~mdc_widgets.export.masks.masks_dataset`'s layout.

    Raises
    ------
    MdcError
        When the file is not a Label Studio JSON export, holds results of tags other than
        ``semantic`` and ``saliency``, uses a label not in ``classes``, or holds no annotated task.
    """
    path = Path(path)
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MdcError(f"{path} is not a Label Studio JSON export ({exc}); export the project as JSON.") from exc
    config_kinds, config_classes = _read_config(path.with_name("label_config.xml"))
    classes = config_classes if classes is None else classes
    chosen: dict[str, list[dict]] = {}
    for task in tasks:
        sample = str(task.get("data", {}).get("mdc_sample") or Path(str(task.get("data", {}).get("image", ""))).stem)
        done = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        if done:
            chosen[sample] = done[-1].get("result", [])
        elif not annotated_only and task.get("predictions"):
            chosen[sample] = task["predictions"][0].get("result", [])
    kinds = sorted(
        set(config_kinds) | {r["from_name"] for results in chosen.values() for r in results if r.get("from_name")}
    )
    unknown = [k for k in kinds if k not in ("semantic", "saliency")]
    if unknown:
        raise MdcError(
            f"{path} has results from the tags {unknown}; only 'semantic' and 'saliency' (the tags of "
            "the exported label_config.xml) can be imported."
        )
    masks: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in kinds}
    for sample, results in chosen.items():
        shapes = {(int(r["original_height"]), int(r["original_width"])) for r in results if "original_height" in r}
        if not shapes:
            continue  # nothing drawn and no size: the image is skipped rather than guessed
        height, width = shapes.pop()
        for kind in kinds:
            masks[kind][sample] = np.zeros((height, width), np.uint8)
        for r in results:
            value = r.get("value", {})
            names = value.get("brushlabels") or value.get("polygonlabels") or []
            if r.get("type") == "brushlabels" and value.get("format") == "rle":
                painted = brush_decode(value["rle"], height, width) > 127
            elif r.get("type") == "polygonlabels":
                painted = _polygon_mask(value["points"], height, width)
            else:
                continue
            kind = r["from_name"]
            fill = 255 if kind == "saliency" else class_index(names[0], classes, str(path))
            masks[kind][sample][painted] = fill
    return masks_dataset(masks, list(SALIENT) if kinds == ["saliency"] else list(classes), pool=pool)


def _read_config(config: Path) -> tuple[list[str], list[str]]:
    """The tags (kinds) and the semantic class names (background first) of an exported ``label_config.xml``."""
    if not config.exists():
        return [], []
    import xml.etree.ElementTree as ET

    root = ET.fromstring(config.read_text(encoding="utf-8"))
    kinds, classes = [], []
    for tag in root.iter("BrushLabels"):
        kinds.append(str(tag.get("name")))
        if tag.get("name") == "semantic":
            classes = ["background"] + [label.get("value", "") for label in tag.iter("Label")]
    return kinds, classes
