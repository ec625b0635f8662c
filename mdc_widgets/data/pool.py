"""Pools of unlabeled images: the mini-world, an xarray Dataset, or image files on disk.

Every pool serves images at one working resolution in chunks
(``read_images(start, stop)``); a file that cannot be decoded is reported in
``errors`` and marked invalid, never fatal, so one bad file does not end a run.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (every pool kind (mini-world, Dataset, folder, glob, list, manifest) behind one protocol, with its letterbox geometry).
"""

from __future__ import annotations

import glob as globlib
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import xarray as xr

from mdc_widgets.data.io import (
    FITS,
    content_box,
    decode_image,
    decode_mask,
    fit_to_canvas,
    native_size,
    resize_image,
    resize_mask,
)
from mdc_widgets.errors import ImageDecodeError, ManifestError, MdcError

__all__ = [
    "IMAGE_EXTENSIONS",
    "BasePool",
    "DatasetPool",
    "FilePool",
    "Pool",
    "common_root",
    "match_by_stem",
    "open_pool",
    "relative_id",
    "relative_ids",
    "skimage_pool",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
METADATA_SKIP = ("image", "semantic", "saliency")


@runtime_checkable
class Pool(Protocol):
    """What every pool answers: the contract between ``data`` and the packages that read images.

    Any object with these members is a pool (``isinstance(obj, Pool)`` checks
    them); subclass :class:`BasePool` to get the defaults of everything but
    ``read_images``. See ``ARCHITECTURE.md``.

    Parameters
    ----------
    *args : object
        Not accepted: a protocol is not instantiated (``Pool()`` raises
        ``TypeError``); open a pool with :func:`open_pool` or subclass
        :class:`BasePool`.
    **kwargs : object
        Not accepted either (see ``*args``).

    Attributes
    ----------
    name : str
        A short human name (a folder name, ``"pool"``).
    fingerprint : str
        A content hash of the images at the working size; prediction stores
        are tied to it.
    sample_ids : numpy.ndarray
        ``(n,)`` str ids, unique, in pool order.
    image_size : tuple of (int, int)
        ``(H, W)``, the working resolution of every image ``read_images`` returns.
    classes : tuple of str or None
        Ground-truth class names (index 0 background) when the pool has any.
    errors : dict of str to str
        Sample id to why it was skipped (could not be decoded); filled while reading.
    fit : str
        ``"stretch"`` or ``"letterbox"``: how images were fitted to the canvas.

    Examples
    --------
    >>> isinstance(open_pool("miniworld", n=2), Pool), isinstance(object(), Pool)
    (True, False)
    """

    name: str
    fingerprint: str
    sample_ids: np.ndarray
    image_size: tuple[int, int]
    classes: tuple[str, ...] | None
    errors: dict[str, str]
    fit: str

    def __len__(self) -> int:
        """The number of images."""
        ...

    def read_images(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Images ``start:stop`` as ``(n, H, W, 3)`` uint8 and ``(n,)`` bool valid (False: not decodable, zeros).

        Parameters
        ----------
        start : int
            Position of the first image (0-based).
        stop : int
            One past the last image, as in a slice (at most ``len(pool)``).

        Returns
        -------
        images : numpy.ndarray
            ``(stop - start, H, W, 3)`` uint8 RGB at ``image_size``.
        valid : numpy.ndarray
            ``(stop - start,)`` bool; False where an image could not be
            decoded (its pixels are zeros and ``errors`` says why).
        """
        ...

    def metadata(self) -> xr.Dataset:
        """Per-sample metadata along dim ``sample`` (nuisance factors, paths); may hold no variable."""
        ...

    def ground_truth(self) -> xr.Dataset | None:
        """``semantic``/``saliency (sample, y, x)`` uint8 at the working size, or None without ground truth."""
        ...

    def native_size(self, index: int) -> tuple[int, int]:
        """``(H, W)`` of image ``index`` as it is on disk (the working size for in-memory pools).

        Parameters
        ----------
        index : int
            Position of the image in the pool.

        Returns
        -------
        tuple of 2 int
            ``(H, W)`` in pixels.
        """
        ...

    def content_boxes(self, start: int, stop: int) -> np.ndarray:
        """``(n, 4)`` boxes ``(y0, y1, x0, x1)`` where images ``start:stop`` lie on the working canvas.

        Parameters
        ----------
        start : int
            Position of the first image.
        stop : int
            One past the last image, as in a slice.

        Returns
        -------
        numpy.ndarray
            ``(stop - start, 4)`` int64, half-open pixel bounds; the whole
            canvas unless the pool letterboxes.
        """
        ...

    def native_ground_truth(self, index: int) -> dict[str, np.ndarray]:
        """Ground truth of image ``index`` at its own size: ``{"saliency"|"semantic": (H, W) uint8}``.

        Parameters
        ----------
        index : int
            Position of the image in the pool.

        Returns
        -------
        dict of {str: numpy.ndarray}
            The kinds the image has (possibly none): ``"saliency"`` in
            {0, 255}, ``"semantic"`` class indices.
        """
        ...

    def index_of(self, sample_id: str) -> int:
        """Position of ``sample_id`` in the pool (``MdcError`` when absent).

        Parameters
        ----------
        sample_id : str
            One of ``sample_ids``.

        Returns
        -------
        int
            Its 0-based position.
        """
        ...


class BasePool:
    """The shared base of the concrete pools: every :class:`Pool` member but ``read_images`` has a default."""

    name: str
    fingerprint: str
    sample_ids: np.ndarray
    image_size: tuple[int, int]
    classes: tuple[str, ...] | None
    errors: dict[str, str]
    warnings: dict[str, str]

    def __len__(self) -> int:
        return len(self.sample_ids)

    def read_images(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Images ``start:stop`` as ``(n, H, W, 3)`` uint8 and ``(n,)`` bool valid; each pool implements it.

        Parameters
        ----------
        start : int
            Position of the first image (0-based).
        stop : int
            One past the last image, as in a slice.

        Returns
        -------
        images : numpy.ndarray
            ``(stop - start, H, W, 3)`` uint8 RGB at ``image_size``.
        valid : numpy.ndarray
            ``(stop - start,)`` bool; False where an image could not be decoded.

        Raises
        ------
        NotImplementedError
            Always, in the base: a subclass must implement it.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement read_images(start, stop).")

    def metadata(self) -> xr.Dataset:
        """Per-sample metadata along dim ``sample``; the base has none but the ids."""
        return xr.Dataset(coords={"sample": self.sample_ids})

    fit: str = "stretch"

    def ground_truth(self) -> xr.Dataset | None:
        """``semantic``/``saliency (sample, y, x)`` at the working size; the base has none."""
        return None

    @property
    def has_ground_truth(self) -> bool:
        """Whether the pool has any ground truth (without reading it, where the pool can tell)."""
        return self.ground_truth() is not None

    def native_size(self, index: int) -> tuple[int, int]:
        """``(H, W)`` of image ``index`` as it is on disk (the working size for in-memory pools).

        Parameters
        ----------
        index : int
            Position of the image in the pool.

        Returns
        -------
        tuple of 2 int
            ``(H, W)``; the base returns ``image_size`` for every image.
        """
        return tuple(int(s) for s in self.image_size)

    def content_boxes(self, start: int, stop: int) -> np.ndarray:
        """``(n, 4)`` boxes ``(y0, y1, x0, x1)`` of the images' content on the working canvas (letterbox pads lie outside).

        Parameters
        ----------
        start : int
            Position of the first image.
        stop : int
            One past the last image, as in a slice.

        Returns
        -------
        numpy.ndarray
            ``(stop - start, 4)`` int64; the base gives the whole canvas
            ``(0, H, 0, W)`` for every image.
        """
        h, w = (int(s) for s in self.image_size)
        return np.tile(np.array([0, h, 0, w], np.int64), (max(0, stop - start), 1))

    def native_ground_truth(self, index: int) -> dict[str, np.ndarray]:
        """Ground truth of image ``index`` at its own size: ``{"saliency": ..., "semantic": ...}`` (those present).

        Parameters
        ----------
        index : int
            Position of the image in the pool.

        Returns
        -------
        dict of {str: numpy.ndarray}
            ``(H, W)`` uint8 maps; the base reads them from :meth:`ground_truth`
            (the working size) and returns ``{}`` without ground truth.
        """
        gt = self.ground_truth()
        if gt is None:
            return {}
        sample = self.sample_ids[index]
        return {v: np.asarray(gt[v].sel(sample=sample).values) for v in ("saliency", "semantic") if v in gt}

    def index_of(self, sample_id: str) -> int:
        """Position of ``sample_id`` in the pool.

        Parameters
        ----------
        sample_id : str
            One of ``sample_ids``.

        Returns
        -------
        int
            Its 0-based position (the first, should ids repeat).

        Raises
        ------
        MdcError
            When the pool has no such sample.
        """
        hits = np.flatnonzero(self.sample_ids == sample_id)
        if not len(hits):
            raise MdcError(f"Sample {sample_id!r} is not in pool {self.name!r}.")
        return int(hits[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n={len(self)}, image_size={self.image_size})"


class DatasetPool(BasePool):
    """A pool over an ``xr.Dataset`` with ``image (sample, y, x, channel)`` and optional ground truth.

    Parameters
    ----------
    dataset : xarray.Dataset
        ``image (sample, y, x, channel)`` uint8 RGB; optional ``semantic`` and
        ``saliency (sample, y, x)`` uint8 (ground truth), per-sample variables
        (metadata) and ``attrs["classes"]``, as :func:`generate_miniworld` makes.
    name : str or None, optional
        The pool's name; default ``attrs["split"]``, else ``"dataset"``.
    image_size : tuple of 2 int or None, optional
        Working ``(H, W)``; default the dataset's own. Images are resized
        (bilinear) and masks (nearest) when it differs.
    fingerprint : str or None, optional
        Default: 16 hex digits of the SHA-256 of the images and ``image_size``.

    Raises
    ------
    MdcError
        When ``dataset`` has no ``image`` variable.
    """

    def __init__(
        self,
        dataset: xr.Dataset,
        name: str | None = None,
        image_size: tuple[int, int] | None = None,
        fingerprint: str | None = None,
    ):
        if "image" not in dataset:
            raise MdcError("A dataset pool needs an 'image' variable with dims (sample, y, x, channel).")
        self.dataset = dataset
        self.name = name or str(dataset.attrs.get("split", "dataset"))
        native = (int(dataset.sizes["y"]), int(dataset.sizes["x"]))
        self.image_size = tuple(image_size) if image_size else native
        self.sample_ids = np.array([str(s) for s in dataset["sample"].values])
        classes = dataset.attrs.get("classes")
        self.classes = tuple(classes) if classes is not None else None
        self.errors, self.warnings = {}, {}
        if fingerprint is None:
            digest = hashlib.sha256(np.ascontiguousarray(dataset["image"].values).tobytes())
            digest.update(repr(self.image_size).encode())
            fingerprint = digest.hexdigest()[:16]
        self.fingerprint = fingerprint

    def read_images(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Images ``start:stop`` from the dataset, resized to ``image_size`` if needed; all valid.

        Parameters
        ----------
        start : int
            Position of the first image.
        stop : int
            One past the last image, as in a slice.

        Returns
        -------
        images : numpy.ndarray
            ``(n, H, W, 3)`` uint8 RGB.
        valid : numpy.ndarray
            ``(n,)`` bool, all True (in-memory images always decode).
        """
        images = np.asarray(self.dataset["image"].isel(sample=slice(start, stop)).values)
        if images.shape[1:3] != self.image_size:
            images = np.stack([resize_image(im, self.image_size) for im in images])
        return images, np.ones(len(images), bool)

    def metadata(self) -> xr.Dataset:
        """The dataset's per-sample variables (dims ``("sample",)``), e.g. the mini-world's nuisance factors.

        Returns
        -------
        xarray.Dataset
            Variables along ``sample`` only; images and ground truth are left out.
        """
        names = [v for v in self.dataset.data_vars if v not in METADATA_SKIP and self.dataset[v].dims == ("sample",)]
        return self.dataset[names]

    def ground_truth(self) -> xr.Dataset | None:
        """The dataset's ``semantic``/``saliency (sample, y, x)`` uint8, resized (nearest) to ``image_size``.

        Returns
        -------
        xarray.Dataset or None
            The ground-truth variables present, or None when there are none.
        """
        names = [v for v in ("semantic", "saliency") if v in self.dataset]
        if not names:
            return None
        gt = self.dataset[names]
        if (gt.sizes["y"], gt.sizes["x"]) != self.image_size:
            resized = {
                v: (("sample", "y", "x"), np.stack([resize_mask(m, self.image_size) for m in gt[v].values]))
                for v in names
            }
            gt = xr.Dataset(resized, coords={"sample": gt["sample"]})
        return gt


def common_root(paths: Sequence[str | Path]) -> Path:
    """The deepest folder that holds every one of ``paths`` (the root of a glob's or a list's pool).

    Parameters
    ----------
    paths : sequence of (str or pathlib.Path)
        Image files (made absolute against the working directory).

    Returns
    -------
    pathlib.Path
        Their common folder; ``Path(".")`` when ``paths`` is empty.

    Examples
    --------
    >>> common_root(["/data/a/x.jpg", "/data/b/y.jpg"]).as_posix()
    '/data'
    >>> common_root(["/data/a/x.jpg"]).as_posix()
    '/data/a'
    """
    parents = [os.path.dirname(os.path.abspath(str(p))) for p in paths]
    return Path(os.path.commonpath(parents)) if parents else Path(".")


def relative_id(path: str | Path, root: str | Path) -> str:
    """One image's id: its path under ``root`` without extension, ``/``-separated (absolute if outside ``root``).

    Parameters
    ----------
    path : str or pathlib.Path
        The image file.
    root : str or pathlib.Path
        The pool's root folder.

    Returns
    -------
    str
        The sample id.

    Examples
    --------
    >>> relative_id("/d/cats/1.jpg", "/d")
    'cats/1'
    """
    root_text, full = os.path.abspath(str(root)), os.path.abspath(str(path))
    relative = os.path.relpath(full, root_text) if os.path.commonpath([root_text, full]) == root_text else full
    return Path(os.path.splitext(relative)[0]).as_posix()


def relative_ids(paths: Sequence[str | Path], root: str | Path) -> list[str]:
    """Sample ids of image files: the path under ``root`` without its extension, with ``/`` separators.

    A flat folder keeps plain file stems; images in subfolders get
    ``sub/stem``. The ids do not depend on where the folder lies or on which
    other files it holds, so labels and mined sets keep matching when files
    are added or the folder moves. Two files that differ only in extension
    would share an id, and are refused.

    Parameters
    ----------
    paths : sequence of (str or pathlib.Path)
        The image files, in pool order.
    root : str or pathlib.Path
        The pool's root folder.

    Returns
    -------
    list of str
        One id per path, in order.

    Raises
    ------
    MdcError
        When two paths give the same id (same path but for the extension),
        naming both files.

    Examples
    --------
    >>> relative_ids(["/d/0001.jpg", "/d/0002.png"], "/d")
    ['0001', '0002']
    >>> relative_ids(["/d/cats/1.jpg", "/d/dogs/1.jpg"], "/d")
    ['cats/1', 'dogs/1']
    """
    root_text = os.path.abspath(str(root))
    ids = [relative_id(path, root) for path in paths]
    seen: dict[str, str] = {}
    for sid, path in zip(ids, paths):
        if sid in seen:
            raise MdcError(
                f"The images {seen[sid]} and {path} would share the sample id {sid!r} (the path under the pool's "
                f"root {root_text} without its extension); rename or remove one of them."
            )
        seen[sid] = str(path)
    return ids


class FilePool(BasePool):
    """A pool of image files, decoded lazily; masks (optional) give ground truth.

    Parameters
    ----------
    paths : sequence of (str or pathlib.Path)
        The image files, in pool order (any format Pillow reads).
    name : str, optional
        The pool's name.
    image_size : tuple of 2 int, optional
        Working resolution ``(H, W)``.
    semantic_masks : sequence of (str or pathlib.Path or None) or None, optional
        One class-index mask path (or None: unlabeled) per image; None for
        no semantic ground truth.
    saliency_masks : sequence of (str or pathlib.Path or None) or None, optional
        One saliency mask path (or None) per image, binarised at 127 to
        {0, 255}; None for no saliency ground truth.
    classes : sequence of str or None, optional
        The class names of the semantic masks (index 0 background).
    sample_ids : sequence of str or None, optional
        Default: each image's path under ``root`` without its
        extension (:func:`relative_ids`), so a flat folder gives file stems.
    fit : str, optional
        ``"stretch"`` (resize to ``image_size``) or ``"letterbox"`` (keep the
        aspect ratio and pad; every model's map is background on the pad).
    root : str or pathlib.Path or None, optional
        The pool's folder (default: the deepest folder holding every image).

    Raises
    ------
    MdcError
        When ``paths`` is empty, ``fit`` is unknown, or ``sample_ids`` repeat.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        name: str = "files",
        image_size: tuple[int, int] = (64, 64),
        semantic_masks: Sequence[str | Path | None] | None = None,
        saliency_masks: Sequence[str | Path | None] | None = None,
        classes: Sequence[str] | None = None,
        sample_ids: Sequence[str] | None = None,
        fit: str = "stretch",
        root: str | Path | None = None,
    ):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise MdcError(f"Pool {name!r} has no image files; check the folder, glob or list you gave.")
        if fit not in FITS:
            raise MdcError(f"fit must be one of {FITS}; got {fit!r}.")
        self.name = name
        self.fit = fit
        self.image_size = tuple(int(s) for s in image_size)
        self.semantic_masks = list(semantic_masks) if semantic_masks else None
        self.saliency_masks = list(saliency_masks) if saliency_masks else None
        self.classes = tuple(classes) if classes else None
        self.root = Path(root) if root is not None else common_root(self.paths)
        if sample_ids is None:
            sample_ids = relative_ids(self.paths, self.root)
        self.sample_ids = np.asarray(sample_ids).astype(str)
        if len(set(self.sample_ids)) != len(self.sample_ids):
            raise MdcError(f"Pool {name!r}: sample_ids must be unique; some repeat.")
        self.errors, self.warnings = {}, {}
        self._native: dict[int, tuple[int, int]] = {}
        # everything that changes the served pixels is in the fingerprint: the files, the size, the fit
        digest = hashlib.sha256(f"{self.image_size}|{fit}".encode())
        for p in self.paths:
            stat = p.stat() if p.exists() else None
            digest.update(f"{p.resolve()}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode())
        self.fingerprint = digest.hexdigest()[:16]

    def native_size(self, index: int) -> tuple[int, int]:
        """``(H, W)`` of image ``index`` on disk (EXIF rotation applied), read from the header and cached.

        Parameters
        ----------
        index : int
            Position of the image in the pool.

        Returns
        -------
        tuple of 2 int
            ``(H, W)``; ``image_size`` for a file that cannot be read
            (:meth:`read_images` reports it).
        """
        if index not in self._native:
            try:
                self._native[index] = native_size(self.paths[index])
            except ImageDecodeError:
                # an unreadable image is reported by read_images; its (unused) box is the whole canvas
                self._native[index] = tuple(self.image_size)
        return self._native[index]

    def content_boxes(self, start: int, stop: int) -> np.ndarray:
        """``(n, 4)`` boxes ``(y0, y1, x0, x1)`` of images ``start:stop`` on the canvas (see :func:`content_box`).

        Parameters
        ----------
        start : int
            Position of the first image.
        stop : int
            One past the last image, as in a slice.

        Returns
        -------
        numpy.ndarray
            ``(stop - start, 4)`` int64; the whole canvas under ``fit="stretch"``.
        """
        if self.fit == "stretch":
            return super().content_boxes(start, stop)
        return np.array(
            [content_box(self.native_size(i), self.image_size, self.fit) for i in range(start, stop)], np.int64
        ).reshape(-1, 4)

    def read_images(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Decode images ``start:stop`` and fit them to the canvas; a file that fails is recorded, not raised.

        Parameters
        ----------
        start : int
            Position of the first image.
        stop : int
            One past the last image, as in a slice.

        Returns
        -------
        images : numpy.ndarray
            ``(n, H, W, 3)`` uint8 RGB at ``image_size`` (zeros where invalid).
        valid : numpy.ndarray
            ``(n,)`` bool; False where decoding failed, with the reason in
            ``errors[sample_id]`` (multi-frame notes go to ``warnings``).
        """
        h, w = self.image_size
        out = np.zeros((stop - start, h, w, 3), np.uint8)
        valid = np.zeros(stop - start, bool)
        for offset, path in enumerate(self.paths[start:stop]):
            sid = self.sample_ids[start + offset]
            notes: list[str] = []
            try:
                image = decode_image(path, notes)
                if notes:
                    self.warnings[sid] = " ".join(notes)
                self._native[start + offset] = image.shape[:2]
                out[offset] = fit_to_canvas(image, self.image_size, self.fit, "image")
                valid[offset] = True
            except ImageDecodeError as exc:
                self.errors[sid] = str(exc)
        return out, valid

    def _native_mask(self, index: int, path: str | Path, binary: bool) -> np.ndarray:
        """One mask at its image's own size (resized with nearest neighbour if it differs, with a warning)."""
        mask = decode_mask(path)
        native = self.native_size(index)
        if mask.shape[:2] != native:
            sid = self.sample_ids[index]
            self.warnings[sid] = (
                f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, image is "
                f"{native[1]}x{native[0]}; resized the mask (nearest)."
            )
            mask = resize_mask(mask, native)
        return np.where(mask > 127, 255, 0).astype(np.uint8) if binary else mask

    def _masks(self, paths: Sequence[str | Path | None], binary: bool) -> np.ndarray:
        h, w = self.image_size
        out = np.zeros((len(self), h, w), np.uint8)
        for i, path in enumerate(paths):
            if path is None:
                continue
            try:
                mask = self._native_mask(i, path, binary)
            except ImageDecodeError as exc:
                self.errors[self.sample_ids[i]] = str(exc)
                continue
            out[i] = fit_to_canvas(mask, self.image_size, self.fit, "labels")
        return out

    @property
    def has_ground_truth(self) -> bool:
        """Whether any semantic or saliency mask paths were given (no mask is read)."""
        return bool(self.semantic_masks or self.saliency_masks)

    def labeled(self, kind: str) -> np.ndarray:
        """``(n,)`` bool: which images have a ``kind`` (``"saliency"`` or ``"semantic"``) mask.

        Parameters
        ----------
        kind : {"saliency", "semantic"}
            The mask kind (anything but ``"saliency"`` reads as semantic).

        Returns
        -------
        numpy.ndarray
            ``(n,)`` bool, True where a mask path was given (all False without masks of that kind).
        """
        paths = self.saliency_masks if kind == "saliency" else self.semantic_masks
        return np.array([p is not None for p in paths], bool) if paths else np.zeros(len(self), bool)

    def ground_truth(self) -> xr.Dataset | None:
        """Masks at the working resolution; where some images lack a mask, ``<kind>_labeled (sample)`` says which.

        An unlabeled image's semantic mask is all 255 (ignored by the
        metrics); :func:`mdc_widgets.metrics.evaluate` leaves it out of the
        saliency metrics through ``saliency_labeled``.
        """
        variables = {}
        if self.semantic_masks:
            semantic = self._masks(self.semantic_masks, binary=False)
            semantic[~self.labeled("semantic")] = 255
            variables["semantic"] = (("sample", "y", "x"), semantic)
        if self.saliency_masks:
            variables["saliency"] = (("sample", "y", "x"), self._masks(self.saliency_masks, binary=True))
        for kind in ("semantic", "saliency"):
            labeled = self.labeled(kind)
            if kind in variables and not labeled.all():
                variables[f"{kind}_labeled"] = (("sample",), labeled)
        if not variables:
            return None
        return xr.Dataset(variables, coords={"sample": self.sample_ids}, attrs={"classes": list(self.classes or [])})

    def native_ground_truth(self, index: int) -> dict[str, np.ndarray]:
        """Image ``index``'s masks at the image's own size (a mask of another size is resized, nearest, with a warning).

        Parameters
        ----------
        index : int
            Position of the image in the pool.

        Returns
        -------
        dict of {str: numpy.ndarray}
            ``"saliency"`` ``(H, W)`` uint8 {0, 255} and ``"semantic"`` class
            indices, for the kinds this image has a mask of.

        Raises
        ------
        ImageDecodeError
            When a mask file cannot be read (names the file).
        """
        out = {}
        for kind, paths in (("saliency", self.saliency_masks), ("semantic", self.semantic_masks)):
            if paths and paths[index] is not None:
                out[kind] = self._native_mask(index, paths[index], binary=kind == "saliency")
        return out

    def metadata(self) -> xr.Dataset:
        """The file of every image.

        Returns
        -------
        xarray.Dataset
            ``path (sample)`` str (object dtype).
        """
        return xr.Dataset(
            {"path": ("sample", np.array([str(p) for p in self.paths], dtype=object))},
            coords={"sample": self.sample_ids},
        )


def match_by_stem(
    paths: Sequence[Path], folder: str | Path, what: str, ids: Sequence[str] | None = None
) -> list[Path | None]:
    """For each of ``paths``, the file in ``folder`` with the same name (any image extension), or None.

    With ``ids`` (the images' sample ids, paths under the pool root), an
    image ``sub/name`` takes the file ``sub/name.*`` of ``folder`` if there is
    one; otherwise (and without ``ids``) the file whose stem is the image's.

    Parameters
    ----------
    paths : sequence of pathlib.Path
        The pool's images.
    folder : str or pathlib.Path
        The folder of masks or maps (searched recursively; ``~`` expanded).
    what : str
        What the folder holds, for error messages (``"saliency ground-truth"``).
    ids : sequence of str or None, optional
        The images' sample ids, in the order of ``paths``.

    Returns
    -------
    list of (pathlib.Path or None)
        One per image; None where the folder has no file for it.

    Raises
    ------
    MdcError
        When the folder is missing, holds two candidate files for one image
        (same id, or same stem in several subfolders), or matches none of the
        images.
    """
    folder = Path(os.path.expanduser(str(folder)))
    if not folder.is_dir():
        raise MdcError(f"The {what} folder {folder} does not exist; check the path.")
    by_id: dict[str, Path] = {}
    by_stem: dict[str, list[Path]] = {}
    for candidate in _list_folder(folder):
        key = candidate.relative_to(folder).with_suffix("").as_posix()
        if key in by_id:
            raise MdcError(
                f"The {what} folder {folder} holds two files for {key!r} ({by_id[key].name}, "
                f"{candidate.name}); keep one."
            )
        by_id[key] = candidate
        by_stem.setdefault(candidate.stem, []).append(candidate)

    def find(path: Path, sid: str | None) -> Path | None:
        if sid is not None and sid in by_id:
            return by_id[sid]
        stem = Path(path).stem
        if len(by_stem.get(stem, ())) > 1:
            names = ", ".join(str(p.relative_to(folder)) for p in by_stem[stem][:3])
            raise MdcError(
                f"The {what} folder {folder} holds several files for the image {path} ({names}); "
                "mirror the image folders (sub/name.png) or keep one."
            )
        return by_stem.get(stem, [None])[0]

    matched = [find(p, None if ids is None else ids[i]) for i, p in enumerate(paths)]
    if paths and not any(m is not None for m in matched):
        raise MdcError(
            f"No file in the {what} folder {folder} has the stem of a pool image (e.g. {Path(paths[0]).stem!r}); "
            "masks and maps are matched to images by file name without extension."
        )
    return matched


def _miniworld_pool(split: str, n: int | None, seed: int, image_size: tuple[int, int]) -> DatasetPool:
    from mdc_widgets._atomic import atomic_write_dir
    from mdc_widgets.config import cache_dir
    from mdc_widgets.data.miniworld import GENERATOR_VERSION, SPLIT_DEFAULTS, generate_miniworld

    if split not in SPLIT_DEFAULTS:
        raise MdcError(
            f"Unknown mini-world split {split!r}; use one of "
            f"{', '.join(repr(f'miniworld:{s}') for s in SPLIT_DEFAULTS)}."
        )
    side = int(image_size[0])
    n = SPLIT_DEFAULTS[split][0] if n is None else int(n)
    # "meta2": the cached metadata changed (num_objects counts objects), so old caches must not be reused
    key = hashlib.sha256(f"miniworld|{GENERATOR_VERSION}|meta2|{split}|{n}|{seed}|{side}".encode()).hexdigest()[:16]
    path = cache_dir() / "pools" / f"miniworld-{split}-{key}.zarr"
    if not path.exists():
        ds = generate_miniworld(split, n=n, seed=seed, image_size=side)
        atomic_write_dir(path, lambda tmp: ds.to_zarr(str(tmp), mode="w", consolidated=False))
    ds = xr.open_zarr(str(path), consolidated=False).load()
    ds = ds.assign_coords(
        sample=np.array([str(s) for s in ds["sample"].values], dtype=object),
        channel=np.array(["R", "G", "B"], dtype=object),
    )
    # the data is generated square at `side`; the fingerprint also covers the working (H, W) the pool serves,
    # so a 64x96 pool never takes a 64x64 pool's stored predictions
    served = hashlib.sha256(f"{key}|{tuple(int(s) for s in image_size)}".encode()).hexdigest()[:16]
    return DatasetPool(ds, name=f"miniworld-{split}", image_size=tuple(image_size), fingerprint=f"mw{served}")


def skimage_pool(image_size: tuple[int, int] = (64, 64)) -> DatasetPool:
    """A small real pool: scikit-image's bundled photographs (no download needed).

    Parameters
    ----------
    image_size : tuple of 2 int, optional
        Working ``(H, W)``; every photograph is stretched to it.

    Returns
    -------
    DatasetPool
        Up to 14 images named after their loader (``"astronaut"``, ...), no
        ground truth; photographs that are missing or need the network are skipped.
    """
    from skimage import data as skdata

    # photographs only: 'cat' is 'chelsea' again and 'horse' is a binary silhouette
    names = [
        "astronaut",
        "chelsea",
        "coffee",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "motorcycle_left",
        "retina",
        "camera",
        "coins",
        "moon",
        "page",
        "text",
        "clock",
    ]
    images, ids = [], []
    for name in names:
        loader = getattr(skdata, name, None)
        if loader is None:
            continue
        try:
            raw = loader()
        except Exception:  # some photographs are fetched on demand and need the network
            continue
        if isinstance(raw, tuple):
            raw = raw[0]
        from mdc_widgets.data.io import to_rgb_uint8

        images.append(resize_image(to_rgb_uint8(np.asarray(raw)), tuple(image_size)))
        ids.append(name)
    ds = xr.Dataset(
        {"image": (("sample", "y", "x", "channel"), np.stack(images))},
        coords={"sample": np.array(ids, dtype=object)},
        attrs={"split": "skimage"},
    )
    return DatasetPool(ds, name="skimage", image_size=tuple(image_size))


def _list_folder(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def open_pool(
    source: Any = "miniworld",
    image_size: tuple[int, int] | int = (64, 64),
    *,
    split: str = "pool",
    n: int | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    ground_truth: dict[str, str | Path] | None = None,
    classes: Sequence[str] | None = None,
    fit: str = "stretch",
) -> Pool:
    """Open a pool from any source.

    Parameters
    ----------
    source : object, optional
        ``"miniworld"`` (or ``"miniworld:<split>"``), ``"skimage"``, an
        ``xr.Dataset``, a folder, a glob pattern, a ``.txt`` list of paths, a
        manifest ``.yaml``, or a list of paths.
    image_size : tuple of 2 int or int, optional
        Working resolution ``(H, W)`` (or one int for square).
    split : str, optional
        Mini-world split (``"train"``, ``"val"``, ``"pool"``, ``"test_hard"``);
        ``"miniworld:<split>"`` overrides it.
    n : int or None, optional
        Mini-world images; default the split's count (``SPLIT_DEFAULTS``).
    seed : int, optional
        Mini-world generator seed.
    root : str or pathlib.Path or None, optional
        Overrides a manifest's root folder.
    ground_truth : dict of {str: str or pathlib.Path} or None, optional
        For image files, mask folders matched to the images by sample id
        (``sub/name.*``), else by file stem: ``{"saliency": DIR, "semantic": DIR}``
        (either or both; see :func:`match_by_stem`).
    classes : sequence of str or None, optional
        Class names of the semantic masks (index 0 background).
    fit : str, optional
        For image files, ``"stretch"`` to ``image_size`` or
        ``"letterbox"`` (keep each image's aspect ratio, pad the rest).

    Returns
    -------
    Pool
        ``source`` itself when it already is a pool, else a :class:`DatasetPool`
        (mini-world, scikit-image, a Dataset) or a :class:`FilePool`.

    Raises
    ------
    MdcError
        When the source cannot be opened (not found, no file matches a glob,
        an unknown mini-world split, an object that reads images but misses
        part of the :class:`Pool` contract), ``ground_truth`` names another
        kind, or the masks cannot be matched.
    ManifestError
        When a manifest is invalid, its files are missing or altered, or it
        describes generated data.

    Examples
    --------
    >>> pool = open_pool("miniworld", n=8, seed=3)
    >>> images, valid = pool.read_images(0, 4)
    >>> images.shape, bool(valid.all())
    ((4, 64, 64, 3), True)
    """
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if isinstance(source, Pool):
        return source
    if hasattr(source, "read_images"):  # a hand-made pool that misses part of the contract: say which part
        missing = [m for m in _POOL_MEMBERS if not hasattr(source, m)]
        raise MdcError(
            f"{type(source).__name__} reads images but is not a complete Pool (missing: {', '.join(missing)}); "
            "subclass mdc_widgets.data.BasePool, which supplies the defaults of everything but read_images."
        )
    if isinstance(source, xr.Dataset):
        return DatasetPool(source, image_size=image_size)
    files = {"image_size": image_size, "fit": fit, "classes": classes}
    if ground_truth:
        unknown = set(ground_truth) - {"saliency", "semantic"}
        if unknown:
            raise MdcError(f"ground_truth takes the kinds 'saliency' and 'semantic'; got {sorted(unknown)}.")
    if isinstance(source, (list, tuple)):
        return _file_pool(source, "files", files, ground_truth)
    text = str(source)
    if text.startswith("miniworld"):
        split = text.split(":", 1)[1] if ":" in text else split
        return _miniworld_pool(split, n, seed, image_size)
    if text == "skimage":
        return skimage_pool(image_size)
    path = Path(os.path.expanduser(text))
    if path.suffix.lower() in (".yaml", ".yml") or (
        not path.exists() and not any(c in text for c in "*?[") and not path.suffix and _is_manifest_name(text)
    ):
        return _manifest_pool(text, image_size, root, fit)
    if path.is_dir():
        return _file_pool(_list_folder(path), path.name, {**files, "root": path}, ground_truth)
    if path.suffix.lower() == ".txt" and path.exists():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return _file_pool(
            [Path(p) if Path(p).is_absolute() else path.parent / p for p in lines], path.stem, files, ground_truth
        )
    if any(c in text for c in "*?["):
        matches = sorted(Path(p) for p in globlib.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise MdcError(f"No file matches the pattern {text!r}.")
        return _file_pool(matches, "glob", files, ground_truth)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return _file_pool([path], path.stem, files, ground_truth)
    raise MdcError(
        f"Cannot open a pool from {text!r}: not 'miniworld', 'skimage', a folder, a glob, a .txt list "
        "or a manifest .yaml that exists."
    )


_POOL_MEMBERS = (
    "name",
    "fingerprint",
    "sample_ids",
    "image_size",
    "classes",
    "errors",
    "fit",
    "__len__",
    "read_images",
    "metadata",
    "ground_truth",
    "native_size",
    "content_boxes",
    "native_ground_truth",
    "index_of",
)


def _file_pool(
    paths: Sequence[str | Path], name: str, options: dict[str, Any], ground_truth: dict[str, str | Path] | None
) -> FilePool:
    paths = [Path(p) for p in paths]
    ids = relative_ids(paths, options.get("root") or common_root(paths)) if paths else None
    masks = {
        f"{kind}_masks": match_by_stem(paths, folder, f"{kind} ground-truth", ids)
        for kind, folder in (ground_truth or {}).items()
    }
    return FilePool(paths, name=name, **options, **masks)


def _is_manifest_name(text: str) -> bool:
    from mdc_widgets.data.manifest import manifests_dir

    return any((manifests_dir() / sub / f"{text}.yaml").exists() for sub in ("", "templates"))


def _manifest_pool(source: str, image_size: tuple[int, int], root: str | Path | None, fit: str = "stretch") -> FilePool:
    from mdc_widgets.data.manifest import load_manifest, verify_manifest

    manifest = load_manifest(source, root)
    if manifest.generator:
        gen = manifest.generator
        raise ManifestError(
            f"Manifest {manifest.path.name} describes generated data; open it with "
            f"open_pool('miniworld', seed={gen.get('seed')}) instead."
        )
    # checksums are verified where given; templates without them only need the files to exist
    verify_manifest(manifest)
    return FilePool(
        # like a list: ids are paths under the images' common folder (VOC keeps '2007_000001', not 'JPEGImages/...')
        manifest.image_paths(),
        name=manifest.name,
        image_size=image_size,
        semantic_masks=manifest.mask_paths("semantic_mask")
        if manifest.raw.get("semantic_mask") or any(e.get("semantic_mask") for e in manifest.entries)
        else None,
        saliency_masks=manifest.mask_paths("saliency_mask")
        if manifest.raw.get("saliency_mask") or any(e.get("saliency_mask") for e in manifest.entries)
        else None,
        classes=manifest.classes,
        fit=fit,
    )
