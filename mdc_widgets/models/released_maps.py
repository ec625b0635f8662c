"""Released prediction maps compete like models: a folder of maps is a competitor that costs no inference.

Every SOD benchmark distributes its methods as folders of saliency maps, and
segmentation methods often as folders of label PNGs. A :class:`MapCompetitor`
matches those files to the pool's images by file stem, checks them (missing,
height and width swapped, unreadable, empty), resizes a map of another size to
its image (nearest for labels, bilinear for saliency) and then to the pool's
working canvas. It is stored, mined, browsed, labeled and ranked like any
network; metrics at native resolution read the maps from the folder itself.

Examples
--------
>>> import tempfile
>>> from PIL import Image
>>> folder = Path(tempfile.mkdtemp())
>>> for stem in ("a", "b"):
...     Image.fromarray(np.full((6, 8), 200, np.uint8)).save(folder / f"{stem}.png")
>>> maps = MapCompetitor("method", folder, task="sod")
>>> int(maps.read_native("a", (6, 8)).max())
200

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mdc_widgets.data.io import decode_mask, fit_to_canvas, resize_mask, resize_saliency
from mdc_widgets.data.pool import relative_id
from mdc_widgets.errors import ImageDecodeError, MdcError

__all__ = ["MapCompetitor", "MapFolderError", "pool_stems", "register_maps", "released_competitors"]

_MAP_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm")
# VOC marks object boundaries 255 ("void"); in a released prediction it means "no class", i.e. background
_VOID = 255


class MapFolderError(MdcError, ValueError):
    """A folder of released maps that does not fit the pool (missing, swapped, unreadable or empty maps)."""


def pool_stems(pool: Any) -> list[str]:
    """The key of each pool image's map: its path under the pool's root without extension.

    In a flat folder that is the file stem (SOD-300 style); an image in a
    subfolder, ``cats/1.jpg``, is matched to the map ``cats/1.*`` if the map
    folder has one, else to ``1.*`` (see :meth:`MapCompetitor.map_path`).
    In-memory pools use their sample ids.

    Parameters
    ----------
    pool : Pool
        A pool; a file pool's ``paths`` and ``root`` give the keys.

    Returns
    -------
    list of str
        One key per image, in pool order.
    """
    paths = getattr(pool, "paths", None)
    if paths is not None:
        root = getattr(pool, "root", None)
        return [relative_id(p, root) if root is not None else Path(p).stem for p in paths]
    return [str(s) for s in pool.sample_ids]


class MapCompetitor:
    """A competitor whose predictions are files: released saliency maps or label maps.

    Parameters
    ----------
    name : str
        The competitor's name (the ``model`` coordinate).
    folder : str or pathlib.Path
        The folder of maps, one per image, named like the image (any extension).
    task : str, optional
        ``"sod"`` (grey maps of any bit depth, 255 = salient) or ``"ss"``
        (index or palette PNGs).
    classes : sequence of str or None, optional
        SS class names, index 0 background (required for ``"ss"``).
    errors : str, optional
        ``"raise"`` (default) stops at the first check with every bad file
        listed; ``"skip"`` marks those images invalid for the run and lists them
        in :attr:`errors`.
    description : str, optional
        Shown in the widgets; default ``"released <TASK> maps from <folder>"``.

    Raises
    ------
    MdcError
        When ``task`` or ``errors`` is unknown, or SS maps come without classes.
    MapFolderError
        When the folder does not exist, holds no image file, or holds two
        maps for one key (same path but for the extension).
    """

    module = None
    cam_layer = None
    preprocess = None
    output = "probabilities"

    def __init__(
        self,
        name: str,
        folder: str | Path,
        task: str = "sod",
        classes: Sequence[str] | None = None,
        *,
        errors: str = "raise",
        description: str = "",
    ):
        if task not in ("ss", "sod"):
            raise MdcError(f"Released maps {name!r}: task must be 'ss' or 'sod', not {task!r}.")
        if task == "ss" and not classes:
            raise MdcError(f"Released label maps {name!r} need their class list (index 0 = background).")
        if errors not in ("raise", "skip"):
            raise MdcError(f"errors must be 'raise' or 'skip'; got {errors!r}.")
        self.name = name
        self.task = task
        self.classes = tuple(classes) if task == "ss" else ("background", "salient")
        self.folder = Path(os.path.expanduser(str(folder))).resolve()
        if not self.folder.is_dir():
            raise MapFolderError(f"The map folder {self.folder} of {name!r} does not exist; check the path.")
        self.error_policy = errors
        self.description = description or f"released {task.upper()} maps from {self.folder}"
        self.device = "cpu"
        self.errors: dict[str, str] = {}
        self.warnings: dict[str, str] = {}
        self._files = self._index()

    def _index(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        # keyed like the pool's images: the path under the folder without extension (the stem when flat)
        for path in sorted(self.folder.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in _MAP_EXTENSIONS:
                continue
            key = path.relative_to(self.folder).with_suffix("").as_posix()
            if key in files:
                raise MapFolderError(
                    f"The map folder {self.folder} of {self.name!r} holds two maps for {key!r} "
                    f"({files[key].name}, {path.name}); keep one."
                )
            files[key] = path
        if not files:
            raise MapFolderError(f"The map folder {self.folder} of {self.name!r} holds no image files.")
        return files

    @property
    def source(self) -> str:
        """What the store remembers of this competitor (JSON): its folder, task and a digest of its files.

        The digest covers every map's name, size and modification time, so a
        folder whose maps were replaced is not mistaken for the one stored.
        """
        import hashlib

        digest = hashlib.sha256()
        for path in self._files.values():
            stat = path.stat()
            digest.update(f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return json.dumps(
            {
                "kind": "maps",
                "folder": str(self.folder),
                "task": self.task,
                "files": len(self._files),
                "digest": digest.hexdigest()[:16],
            }
        )

    def to(self, device: str | torch.device) -> MapCompetitor:
        """Record ``device`` (files need none); kept so the competitor looks like any other.

        Parameters
        ----------
        device : str or torch.device
            The device the miner runs on.

        Returns
        -------
        MapCompetitor
            ``self``.
        """
        self.device = str(device)  # files need no device; kept so the competitor looks like any other
        return self

    # -- reading ---------------------------------------------------------------------------
    def map_path(self, stem: str) -> Path | None:
        """The map file of the image with this key (see :func:`pool_stems`), or None.

        A nested key ``sub/name`` takes the map ``sub/name.*`` if there is one, else ``name.*``.

        Parameters
        ----------
        stem : str
            The image's key: its path under the pool root without extension.

        Returns
        -------
        pathlib.Path or None
            The map file, or None when the folder has none for the image.
        """
        return self._files.get(stem) or self._files.get(stem.rsplit("/", 1)[-1])

    def read_native(self, stem: str, native: tuple[int, int]) -> np.ndarray:
        """The map of image ``stem`` at the image's own size ``native = (H, W)``: uint8 labels or saliency.

        A map of another size is resized (nearest for labels, bilinear for
        saliency) with a note in ``warnings``; VOC's void label 255 reads as
        background.

        Parameters
        ----------
        stem : str
            The image's key (see :func:`pool_stems`).
        native : tuple of 2 int
            The image's own ``(H, W)``.

        Returns
        -------
        numpy.ndarray
            ``(H, W)`` uint8: SS class indices, or SOD saliency 0..255.

        Raises
        ------
        MapFolderError
            When the map is missing, its height and width are swapped, or it
            holds a label beyond the classes.
        ImageDecodeError
            When the map file is empty, unreadable or has no pixels.
        """
        path = self.map_path(stem)
        if path is None:
            raise MapFolderError(f"{self.name!r} has no map for image {stem!r} in {self.folder}.")
        if path.stat().st_size == 0:
            raise ImageDecodeError(f"{path}: the map file is empty (0 bytes); re-export it.")
        values = decode_mask(path, "labels" if self.task == "ss" else "grey")
        if values.ndim != 2 or 0 in values.shape:
            raise ImageDecodeError(f"{path}: the map has no pixels ({values.shape}); re-export it.")
        nh, nw = (int(s) for s in native)
        if values.shape != (nh, nw):
            if _swapped(values.shape, (nh, nw)):
                raise MapFolderError(
                    f"{path}: the map is {nh}x{nw} (WxH) but its image is {nw}x{nh}: height and width are swapped. "
                    "The image or the map was rotated; turn one of them upright (check EXIF orientation)."
                )
            self.warnings[stem] = f"{path.name}: {values.shape[1]}x{values.shape[0]} map resized to {nw}x{nh}."
            values = resize_mask(values, native) if self.task == "ss" else resize_saliency(values, native)
        if self.task == "ss":
            values = np.where(values == _VOID, 0, values)
            top = int(values.max(initial=0))
            if top >= len(self.classes):
                raise MapFolderError(
                    f"{path}: label {top} is outside the {len(self.classes)} classes of {self.name!r}; "
                    "pass the class list the maps were made with."
                )
        return values.astype(np.uint8)

    def check_pool(self, pool: Any) -> dict[str, str]:
        """Check every image of ``pool`` has a usable map; ``{sample_id: why}`` of the bad ones.

        Under ``errors="raise"`` any bad map raises :class:`MapFolderError`
        listing the counts and the first files of each kind of problem.
        Header-only: missing and swapped maps are found without decoding.

        Parameters
        ----------
        pool : Pool
            The pool the maps should cover.

        Returns
        -------
        dict of {str: str}
            ``{sample_id: why}`` of the images without a usable map (also added
            to ``errors``); empty when all fit.

        Raises
        ------
        MapFolderError
            Under ``errors="raise"``, when any map is missing, empty,
            unreadable or swapped.
        """
        problems: dict[str, list[str]] = {}
        bad: dict[str, str] = {}
        for index, (sid, stem) in enumerate(zip(pool.sample_ids, pool_stems(pool))):
            path = self.map_path(stem)
            if path is None:
                kind, why = "missing", f"no map named {stem}.* in {self.folder}"
            else:
                kind, why = _header_problem(path, pool.native_size(index))
            if kind:
                problems.setdefault(kind, []).append(str(path or stem))
                bad[str(sid)] = f"{self.name}: {why}"
        if bad and self.error_policy == "raise":
            lines = [f"{len(v)} {k} (e.g. {', '.join(Path(p).name for p in v[:3])})" for k, v in problems.items()]
            raise MapFolderError(
                f"Released maps {self.name!r} ({self.folder}) do not fit pool {pool.name!r} of {len(pool)} images: "
                f"{'; '.join(lines)}. Fix or add those maps, or pass errors='skip' to leave those images out "
                "(they are listed in .errors)."
            )
        self.errors.update(bad)
        return bad

    def predict_samples(self, pool: Any, start: int, stop: int) -> tuple[torch.Tensor, np.ndarray]:
        """The maps of images ``start:stop`` on the pool's working canvas, as a network's output would be.

        Parameters
        ----------
        pool : Pool
            The pool the maps were made for.
        start : int
            Position of the first image.
        stop : int
            One past the last image, as in a slice.

        Returns
        -------
        output : torch.Tensor
            SOD ``(n, 1, H, W)`` float32 saliency in [0, 1], or SS one-hot
            ``(n, C, H, W)`` float32, at the pool's working size (zeros where
            not ``ok``).
        ok : numpy.ndarray
            ``(n,)`` bool: which images had a usable map (under ``errors="skip"``
            the others are recorded in ``errors``).

        Raises
        ------
        MapFolderError
            Under ``errors="raise"``, for a missing, swapped or out-of-range map.
        ImageDecodeError
            Under ``errors="raise"``, for an unreadable or empty map.
        """
        canvas = tuple(int(s) for s in pool.image_size)
        fit = getattr(pool, "fit", "stretch")
        stems = pool_stems(pool)[start:stop]
        maps = np.zeros((stop - start, *canvas), np.uint8)
        ok = np.zeros(stop - start, bool)
        for offset, stem in enumerate(stems):
            sid = str(pool.sample_ids[start + offset])
            try:
                native = self.read_native(stem, pool.native_size(start + offset))
            except (MapFolderError, ImageDecodeError) as exc:
                if self.error_policy == "raise":
                    raise
                self.errors[sid] = f"{self.name}: {exc}"
                continue
            maps[offset] = fit_to_canvas(native, canvas, fit, "labels" if self.task == "ss" else "saliency")
            ok[offset] = True
        tensor = torch.from_numpy(maps)
        if self.task == "sod":
            return tensor.float().div_(255.0)[:, None], ok
        one_hot = torch.nn.functional.one_hot(tensor.long(), len(self.classes))
        return one_hot.permute(0, 3, 1, 2).float(), ok

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Refuse: released maps exist only for the pool they were made on (use :meth:`predict_samples`).

        Parameters
        ----------
        images : torch.Tensor
            Ignored.

        Returns
        -------
        torch.Tensor
            Never returns.

        Raises
        ------
        MdcError
            Always.
        """
        raise MdcError(
            f"{self.name!r} is a folder of released maps: it predicts nothing on new pixels. It competes on the "
            "pool its maps were made for (predict_pool reads the maps by file stem)."
        )

    def __repr__(self) -> str:
        return f"MapCompetitor(name={self.name!r}, task={self.task!r}, folder={str(self.folder)!r}, maps={len(self._files)})"


def _header_problem(path: Path, native: tuple[int, int]) -> tuple[str, str]:
    """``(kind, why)`` of a map file that cannot serve an image of size ``native``; ``("", "")`` if fine."""
    from PIL import Image

    if path.stat().st_size == 0:
        return "empty", f"{path} is empty (0 bytes)"
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception as exc:  # PIL reports a damaged header with many types (DecompressionBombError, struct.error)
        return "unreadable", f"{path} cannot be read ({type(exc).__name__})"
    if width == 0 or height == 0:
        return "empty", f"{path} has no pixels"
    if (height, width) != tuple(native) and _swapped((height, width), native):
        nh, nw = native
        return "swapped", f"{path} is {width}x{height} but its image is {nw}x{nh} (height and width swapped)"
    return "", ""


def _swapped(shape: tuple[int, int], native: tuple[int, int], tolerance: float = 0.02) -> bool:
    """A map whose aspect ratio is the image's turned by 90 degrees (also when it was rescaled).

    Examples
    --------
    >>> _swapped((20, 12), (12, 20)), _swapped((40, 24), (12, 20)), _swapped((24, 40), (12, 20))
    (True, True, False)
    """
    (h, w), (nh, nw) = shape, native
    aspect, image_aspect = w / h, nw / nh
    if abs(image_aspect - 1) <= tolerance:  # a square image has no orientation to get wrong
        return False
    return abs(aspect * image_aspect - 1) <= tolerance and abs(aspect / image_aspect - 1) > tolerance


def register_maps(
    name: str,
    folder: str | Path,
    task: str = "sod",
    classes: Sequence[str] | None = None,
    *,
    errors: str = "raise",
    description: str = "",
    overwrite: bool = True,
) -> Any:
    """Register a folder of released maps by name, so ``get_model``, the CLI and the widgets' picker offer it.

    The folder is checked (indexed) now; ``get_model(name)`` indexes it again.

    Parameters
    ----------
    name : str
        The registry name and ``model`` coordinate.
    folder : str or pathlib.Path
        The folder of maps, named like the pool's images.
    task : {"sod", "ss"}, optional
        Grey saliency maps or index/palette label maps.
    classes : sequence of str or None, optional
        SS class names, index 0 background (required for ``"ss"``).
    errors : {"raise", "skip"}, optional
        What a bad map does at prediction time (see :class:`MapCompetitor`).
    description : str, optional
        Shown in the widgets.
    overwrite : bool, optional
        Replace an earlier registration of ``name`` (True by default, so a
        notebook cell can be rerun).

    Returns
    -------
    ModelSpec
        The registry record, tagged ``"maps"``.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "x.png")
    >>> _ = register_maps("my_method", folder)
    >>> from mdc_widgets.models import get_model
    >>> get_model("my_method").task
    'sod'
    """
    from mdc_widgets.models.registry import register_model

    competitor = MapCompetitor(name, folder, task, classes, errors=errors, description=description)
    return register_model(
        name,
        lambda: MapCompetitor(name, folder, task, classes, errors=errors, description=description),
        task,
        competitor.classes,
        description=competitor.description,
        tags=("maps",),
        overwrite=overwrite,
    )


def released_competitors(predictions: Any) -> dict[str, MapCompetitor]:
    """The released-map competitors of an ``open_predictions`` dataset, rebuilt from its ``sources`` attr.

    Each folder is indexed once here, so callers read many maps without listing it again.

    Parameters
    ----------
    predictions : xarray.Dataset
        From ``open_predictions``: attrs ``sources`` (``{model: JSON}``) and
        ``classes``, coord ``task (model)``.

    Returns
    -------
    dict of {str: MapCompetitor}
        One per released-map model of the dataset; empty when it has none.
    """
    sources = predictions.attrs.get("sources") or {}
    classes = predictions.attrs.get("classes") or {}
    tasks = {str(m): str(t) for m, t in zip(predictions["model"].values, predictions["task"].values)}
    return {
        model: MapCompetitor(model, json.loads(source)["folder"], tasks[model], classes.get(model))
        for model, source in sources.items()
        if source and model in tasks
    }
