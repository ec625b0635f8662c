"""Mask PNGs as other tools expect them, and imported masks as ground truth a pool or Session can use.

SS label maps are written as palette PNGs (the VOC palette, so the indices
survive and the picture shows the class colours); SOD maps as grey PNGs.
Imported masks come back as an xarray Dataset ``semantic``/``saliency
(sample, y, x)``; :func:`pool_ground_truth` spreads them over a whole pool
(``<kind>_labeled`` says which images have one) and :func:`write_mask_folder`
writes them where ``open_pool(..., ground_truth={kind: DIR})`` finds them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from mdc_widgets._atomic import atomic_write_bytes
from mdc_widgets.errors import MdcError, ShapeError

__all__ = [
    "grey_png",
    "label_png",
    "labeled_flags",
    "masks_dataset",
    "pool_ground_truth",
    "rgb_png",
    "to_working_canvas",
    "write_images",
    "write_mask_folder",
]


def label_png(labels: np.ndarray) -> bytes:
    """Palette PNG bytes of a class-index map (VOC colours; the pixel values stay the indices).

    Parameters
    ----------
    labels : numpy.ndarray
        ``(H, W)`` class indices 0-255.

    Returns
    -------
    bytes
        The encoded palette (mode ``P``) PNG.

    Raises
    ------
    ShapeError
        When ``labels`` is not 2-D.

    Examples
    --------
    >>> from mdc_widgets.data.io import decode_mask
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
    >>> _ = open(path, "wb").write(label_png(np.array([[0, 3]], np.uint8)))
    >>> decode_mask(path).tolist()
    [[0, 3]]
    """
    from PIL import Image

    from mdc_widgets.explain import label_palette

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ShapeError(f"A label map is (H, W); got shape {labels.shape}.")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(label_palette().ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def grey_png(values: np.ndarray) -> bytes:
    """Grey PNG bytes of a uint8 ``(H, W)`` map (saliency 0..255, binary masks 0/255).

    Parameters
    ----------
    values : numpy.ndarray
        ``(H, W)`` uint8.

    Returns
    -------
    bytes
        The encoded grey (mode ``L``) PNG.

    Raises
    ------
    ShapeError
        When ``values`` is not 2-D.

    Examples
    --------
    >>> grey_png(np.zeros((2, 2), np.uint8))[:4]
    b'\\x89PNG'
    """
    from PIL import Image

    values = np.asarray(values)
    if values.ndim != 2:
        raise ShapeError(f"A grey map is (H, W); got shape {values.shape}.")
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def rgb_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGB uint8 image (no enlargement).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` uint8.

    Returns
    -------
    bytes
        The encoded PNG.
    """
    from mdc_widgets.viz import to_png

    return to_png(np.asarray(image))


def masks_dataset(masks: dict[str, dict[str, np.ndarray]], classes: Sequence[str] = (), pool: Any = None) -> xr.Dataset:
    """``{kind: {sample: (H, W) uint8}}`` as a Dataset ``<kind> (sample, y, x)`` (samples in first-seen order).

    Every mask of the Dataset has one size; a kind missing for a sample that
    another kind has is marked in ``<kind>_labeled``. With ``pool`` (the pool
    or Session the masks' images were exported from), masks at an image's own
    size are first brought to the pool's working canvas
    (:func:`to_working_canvas`), so masks of photos of different sizes fit.

    Parameters
    ----------
    masks : dict of {str: dict}
        ``"semantic"`` / ``"saliency"`` to sample id to its ``(H, W)`` uint8 mask.
    classes : sequence of str, optional
        Semantic class names, kept in ``attrs["classes"]``.
    pool : Pool or Session or None, optional
        What the images were exported from; masks are fitted to its working canvas.

    Returns
    -------
    xarray.Dataset
        ``<kind> (sample, y, x)`` uint8 (missing semantic masks 255, saliency 0) and
        ``<kind>_labeled (sample)`` bool where some sample lacks the kind.

    Raises
    ------
    MdcError
        When ``masks`` holds no mask.
    ShapeError
        When the masks differ in size and no ``pool`` brings them to one canvas.

    Examples
    --------
    >>> ds = masks_dataset({"saliency": {"a": np.zeros((2, 3), np.uint8)}})
    >>> dict(ds.sizes), ds["sample"].values.tolist()
    ({'sample': 1, 'y': 2, 'x': 3}, ['a'])
    """
    samples: list[str] = []
    for per_sample in masks.values():
        samples += [s for s in per_sample if s not in samples]
    if not samples:
        raise MdcError("No mask was imported: the annotation file holds no annotated image.")
    if pool is not None:
        masks = {
            kind: {s: _mask_on_canvas(np.asarray(m), pool, s) for s, m in per_sample.items()}
            for kind, per_sample in masks.items()
        }
    shapes = {np.asarray(m).shape for per_sample in masks.values() for m in per_sample.values()}
    if len(shapes) != 1:
        raise ShapeError(
            f"Imported masks have different sizes {sorted(shapes)} (each image's own size); pass pool=... "
            "(the pool or Session they were exported from) to bring them to its working canvas."
        )
    shape = shapes.pop()
    variables = {}
    for kind, per_sample in masks.items():
        fill = 255 if kind == "semantic" else 0  # 255: ignored by the metrics, like an unlabeled file-pool mask
        stack = np.stack(
            [
                np.asarray(per_sample[s], np.uint8) if s in per_sample else np.full(shape, fill, np.uint8)
                for s in samples
            ]
        )
        variables[kind] = (("sample", "y", "x"), stack)
        if len(per_sample) < len(samples):
            variables[f"{kind}_labeled"] = ("sample", np.array([s in per_sample for s in samples]))
    return xr.Dataset(variables, coords={"sample": np.asarray(samples, dtype=object)}, attrs={"classes": list(classes)})


def _pool_of(pool: Any) -> Any:
    """The pool of a Session, or the pool itself."""
    return getattr(pool, "pool", pool)


def _mask_on_canvas(mask: np.ndarray, pool: Any, sample: str) -> np.ndarray:
    """One mask of ``sample`` on ``pool``'s working canvas: as it is at the working size, else fitted from the
    image's own size exactly as the pool fits its own masks (nearest; the letterbox pad is background)."""
    from mdc_widgets.data.io import fit_to_canvas

    pool = _pool_of(pool)
    canvas = tuple(int(s) for s in pool.image_size)
    if mask.shape == canvas:
        return mask
    try:
        index = pool.index_of(str(sample))
    except MdcError:
        raise MdcError(
            f"The mask of {sample!r} is not of an image in pool {getattr(pool, 'name', '?')!r}; "
            "import the annotations of a set exported from this pool."
        ) from None
    native = tuple(int(s) for s in pool.native_size(index))
    if mask.shape != native:
        raise ShapeError(
            f"The mask of {sample!r} is {mask.shape[1]}x{mask.shape[0]} (WxH); its image is "
            f"{native[1]}x{native[0]} and the pool's working canvas {canvas[1]}x{canvas[0]}. "
            "Annotate the exported image itself (size='native' or size='working')."
        )
    return fit_to_canvas(mask, canvas, getattr(pool, "fit", "stretch"), "labels")


def to_working_canvas(masks: xr.Dataset, pool: Any) -> xr.Dataset:
    """Imported masks ``<kind> (sample, y, x)`` on ``pool``'s working canvas (unchanged when they are already).

    Masks at their images' own size (one size for all, else use
    ``masks_dataset(..., pool=)`` through the importers' ``pool=``) are fitted
    as the pool fits its own masks, so a native-size export's corrected
    masks evaluate like the pool's ground truth.

    Parameters
    ----------
    masks : xarray.Dataset
        :func:`masks_dataset`'s layout.
    pool : Pool or Session
        The pool whose working canvas and fit are used.

    Returns
    -------
    xarray.Dataset
        ``masks`` itself when already at the canvas size, else a new Dataset.

    Examples
    --------
    >>> from mdc_widgets.data import open_pool
    >>> pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"), np.zeros((1, 4, 4, 3), np.uint8))},
    ...                             coords={"sample": ["a"]}), image_size=(4, 4))
    >>> masks = masks_dataset({"saliency": {"a": np.zeros((4, 4), np.uint8)}})
    >>> to_working_canvas(masks, pool) is masks
    True
    """
    canvas = tuple(int(s) for s in _pool_of(pool).image_size)
    if (masks.sizes.get("y"), masks.sizes.get("x")) == canvas:
        return masks
    out = {}
    for kind in ("semantic", "saliency"):
        if kind in masks:
            flags = labeled_flags(masks, kind)
            out[kind] = {
                str(s): np.asarray(m) for s, m, ok in zip(masks["sample"].values, masks[kind].values, flags) if ok
            }
    return masks_dataset(out, list(masks.attrs.get("classes") or []), pool=pool)


def pool_ground_truth(imported: xr.Dataset, sample_ids: Sequence[str], base: xr.Dataset | None = None) -> xr.Dataset:
    """Imported masks over a whole pool: ``<kind>`` for every sample and ``<kind>_labeled`` (which have one).

    Samples without an imported mask keep ``base``'s (the pool's own ground
    truth) where it has one; the rest are unlabeled (semantic 255 is ignored by
    the metrics; saliency is left out through ``saliency_labeled``), which is
    how :func:`mdc_widgets.metrics.evaluate` reads a partly labeled pool.

    Parameters
    ----------
    imported : xarray.Dataset
        :func:`masks_dataset`'s layout, at the pool's working size.
    sample_ids : sequence of str
        Every sample of the pool, in pool order.
    base : xarray.Dataset or None, optional
        The pool's own ground truth, kept where nothing was imported.

    Returns
    -------
    xarray.Dataset
        ``<kind> (sample, y, x)`` uint8 and ``<kind>_labeled (sample)`` bool over ``sample_ids``.

    Raises
    ------
    MdcError
        When ``imported`` names samples that are not in ``sample_ids``.
    ShapeError
        When ``imported`` and ``base`` differ in mask size.

    Examples
    --------
    >>> imported = masks_dataset({"saliency": {"b": np.full((1, 1), 255, np.uint8)}})
    >>> gt = pool_ground_truth(imported, ["a", "b"])
    >>> gt["saliency"].values.ravel().tolist(), gt["saliency_labeled"].values.tolist()
    ([0, 255], [False, True])
    """
    ids = [str(s) for s in sample_ids]
    unknown = sorted(set(map(str, imported["sample"].values)) - set(ids))
    if unknown:
        raise MdcError(
            f"Imported masks name {len(unknown)} images that are not in the pool (e.g. {unknown[:3]}); "
            "import the annotations of a set exported from this pool."
        )
    shape = (imported.sizes["y"], imported.sizes["x"])
    variables = {}
    for kind in ("semantic", "saliency"):
        if kind not in imported and (base is None or kind not in base):
            continue
        fill = 255 if kind == "semantic" else 0
        values = np.full((len(ids), *shape), fill, np.uint8)
        labeled = np.zeros(len(ids), bool)
        if base is not None and kind in base:
            if (base.sizes["y"], base.sizes["x"]) != shape:
                raise ShapeError(
                    f"The imported masks are {shape}, the pool's ground truth "
                    f"{(base.sizes['y'], base.sizes['x'])}; import masks of this pool's working size."
                )
            base = base.sel(sample=ids)
            values[:] = np.asarray(base[kind].values)
            labeled[:] = labeled_flags(base, kind)
        if kind in imported:
            position = {s: i for i, s in enumerate(ids)}
            flags = labeled_flags(imported, kind)
            rows = [position[str(s)] for s, ok in zip(imported["sample"].values, flags) if ok]
            values[rows] = np.asarray(imported[kind].values)[flags]
            labeled[rows] = True
        variables[kind] = (("sample", "y", "x"), values)
        variables[f"{kind}_labeled"] = ("sample", labeled)
    classes = list(imported.attrs.get("classes") or (base.attrs.get("classes") if base is not None else []) or [])
    # which samples' masks are imported rather than the pool's (a native-size export crops them back)
    imported_samples = set(base.attrs.get("imported_samples") or []) if base is not None else set()
    imported_samples |= {str(s) for s in imported["sample"].values}
    return xr.Dataset(
        variables,
        coords={"sample": np.asarray(ids, dtype=object)},
        attrs={"classes": classes, "imported_samples": sorted(imported_samples)},
    )


def write_mask_folder(imported: xr.Dataset, out: str | Path, pool: Any = None) -> dict[str, Path]:
    """Write imported masks as ``OUT/<kind>/<stem>.png`` and return ``{kind: folder}`` for ``open_pool``.

    Semantic masks are palette PNGs, saliency masks grey 0/255; file stems are
    :func:`~mdc_widgets.export.mined.file_stem` of the sample ids, i.e. the
    image file stems of a file pool, so
    ``open_pool(folder, ground_truth=write_mask_folder(masks, OUT))`` matches them.
    With ``pool`` (a file pool or its Session), working-size masks are written
    at each image's own size (cropped out of the letterbox, nearest), which
    is how a pool's mask folder holds them.

    Parameters
    ----------
    imported : xarray.Dataset
        :func:`masks_dataset`'s layout; unlabeled samples are not written.
    out : str or pathlib.Path
        The folder; ``<kind>`` subfolders are created.
    pool : Pool or Session or None, optional
        A file pool (or its Session) whose native sizes the masks are written at.

    Returns
    -------
    dict of {str: pathlib.Path}
        Kind to its folder.

    Examples
    --------
    >>> import tempfile
    >>> masks = masks_dataset({"saliency": {"img1": np.zeros((2, 2), np.uint8)}})
    >>> folders = write_mask_folder(masks, tempfile.mkdtemp())
    >>> sorted(p.name for p in folders["saliency"].iterdir())
    ['img1.png']
    """
    from mdc_widgets.export.mined import file_stem

    out = Path(out)
    folders = {}
    for kind in ("semantic", "saliency"):
        if kind not in imported:
            continue
        folder = out / kind
        flags = labeled_flags(imported, kind)
        for sample, mask, ok in zip(imported["sample"].values, np.asarray(imported[kind].values), flags):
            if ok:
                mask = _mask_at_native_size(mask, pool, str(sample)) if pool is not None else mask
                data = label_png(mask) if kind == "semantic" else grey_png(mask)
                atomic_write_bytes(folder / f"{file_stem(str(sample))}.png", data)
        folders[kind] = folder
    return folders


def _mask_at_native_size(mask: np.ndarray, pool: Any, sample: str) -> np.ndarray:
    """A working-canvas mask of ``sample`` at its image's own size (as it is when it already has that size)."""
    from mdc_widgets.data.io import from_canvas

    pool = _pool_of(pool)
    native = tuple(int(s) for s in pool.native_size(pool.index_of(sample)))
    if mask.shape == native or mask.shape != tuple(int(s) for s in pool.image_size):
        return mask
    return from_canvas(mask, native, getattr(pool, "fit", "stretch"), "labels")


def labeled_flags(masks: xr.Dataset, kind: str) -> np.ndarray:
    """``(sample,)`` bool: which samples have a ``kind`` mask (all, unless ``<kind>_labeled`` says otherwise).

    Parameters
    ----------
    masks : xarray.Dataset
        :func:`masks_dataset`'s layout (or a pool's ground truth).
    kind : str
        ``"semantic"`` or ``"saliency"``.

    Returns
    -------
    numpy.ndarray
        ``(sample,)`` bool.
    """
    if f"{kind}_labeled" in masks:
        return np.asarray(masks[f"{kind}_labeled"].values, bool)
    return np.ones(masks.sizes["sample"], bool)


def write_images(mined: xr.Dataset, folder: str | Path) -> list[Path]:
    """Write a mined set's images as ``folder/<stem>.png`` (in the set's order, each at its extent); return the paths.

    Parameters
    ----------
    mined : xarray.Dataset
        A :func:`~mdc_widgets.export.mined_set`.
    folder : str or pathlib.Path
        Where the PNGs go (created).

    Returns
    -------
    list of pathlib.Path
        One path per image, in the set's order.
    """
    from mdc_widgets.export.mined import file_stem, sample_array

    folder = Path(folder)
    paths = []
    for i, sample in enumerate(mined["sample"].values):
        path = folder / f"{file_stem(str(sample))}.png"
        atomic_write_bytes(path, rgb_png(sample_array(mined, "image", i)))
        paths.append(path)
    return paths
