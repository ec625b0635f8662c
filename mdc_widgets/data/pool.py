"""Pools of unlabeled images: the mini-world, an xarray Dataset, or image files on disk.

Every pool serves images at one working resolution in chunks
(``read_images(start, stop)``); a file that cannot be decoded is reported in
``errors`` and marked invalid, never fatal, so one bad file does not end a run.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import xarray as xr

from mdc_widgets.data.io import decode_image, decode_mask, resize_image, resize_mask
from mdc_widgets.errors import ImageDecodeError, ManifestError, MdcError

__all__ = ["Pool", "DatasetPool", "FilePool", "open_pool", "skimage_pool", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm")
METADATA_SKIP = ("image", "semantic", "saliency")


class Pool:
    """A sequence of images at one working resolution; see ``ARCHITECTURE.md``."""

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
        raise NotImplementedError

    def metadata(self) -> xr.Dataset:
        return xr.Dataset(coords={"sample": self.sample_ids})

    def ground_truth(self) -> xr.Dataset | None:
        return None

    def index_of(self, sample_id: str) -> int:
        """Position of ``sample_id`` in the pool."""
        hits = np.flatnonzero(self.sample_ids == sample_id)
        if not len(hits):
            raise MdcError(f"Sample {sample_id!r} is not in pool {self.name!r}.")
        return int(hits[0])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n={len(self)}, image_size={self.image_size})"


class DatasetPool(Pool):
    """A pool over an ``xr.Dataset`` with ``image (sample, y, x, channel)`` and optional ground truth."""

    def __init__(self, dataset: xr.Dataset, name: str | None = None, image_size: tuple[int, int] | None = None,
                 fingerprint: str | None = None):
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
        images = np.asarray(self.dataset["image"].isel(sample=slice(start, stop)).values)
        if images.shape[1:3] != self.image_size:
            images = np.stack([resize_image(im, self.image_size) for im in images])
        return images, np.ones(len(images), bool)

    def metadata(self) -> xr.Dataset:
        names = [v for v in self.dataset.data_vars if v not in METADATA_SKIP and self.dataset[v].dims == ("sample",)]
        return self.dataset[names]

    def ground_truth(self) -> xr.Dataset | None:
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


class FilePool(Pool):
    """A pool of image files, decoded lazily; masks (optional) give ground truth."""

    def __init__(self, paths: Sequence[str | Path], *, name: str = "files", image_size: tuple[int, int] = (64, 64),
                 semantic_masks: Sequence[str | Path | None] | None = None,
                 saliency_masks: Sequence[str | Path | None] | None = None,
                 classes: Sequence[str] | None = None, sample_ids: Sequence[str] | None = None):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise MdcError(f"Pool {name!r} has no image files; check the folder, glob or list you gave.")
        self.name = name
        self.image_size = tuple(int(s) for s in image_size)
        self.semantic_masks = list(semantic_masks) if semantic_masks else None
        self.saliency_masks = list(saliency_masks) if saliency_masks else None
        self.classes = tuple(classes) if classes else None
        if sample_ids is None:
            stems = [p.stem for p in self.paths]
            sample_ids = stems if len(set(stems)) == len(stems) else [str(p) for p in self.paths]
        self.sample_ids = np.asarray(sample_ids).astype(str)
        self.errors, self.warnings = {}, {}
        digest = hashlib.sha256(repr(self.image_size).encode())
        for p in self.paths:
            stat = p.stat() if p.exists() else None
            digest.update(f"{p.resolve()}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode())
        self.fingerprint = digest.hexdigest()[:16]

    def read_images(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.image_size
        out = np.zeros((stop - start, h, w, 3), np.uint8)
        valid = np.zeros(stop - start, bool)
        for offset, path in enumerate(self.paths[start:stop]):
            sid = self.sample_ids[start + offset]
            try:
                out[offset] = resize_image(decode_image(path), self.image_size)
                valid[offset] = True
            except ImageDecodeError as exc:
                self.errors[sid] = str(exc)
        return out, valid

    def _masks(self, paths: Sequence[str | Path | None], binary: bool) -> np.ndarray:
        h, w = self.image_size
        out = np.zeros((len(self), h, w), np.uint8)
        for i, path in enumerate(paths):
            if path is None:
                continue
            sid = self.sample_ids[i]
            try:
                mask = decode_mask(path)
            except ImageDecodeError as exc:
                self.errors[sid] = str(exc)
                continue
            image_path = self.paths[i]
            if image_path.exists():
                try:
                    from PIL import Image

                    with Image.open(image_path) as im:
                        if (im.height, im.width) != mask.shape[:2]:
                            self.warnings[sid] = (f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, image is "
                                                  f"{im.width}x{im.height}; resized the mask (nearest).")
                except OSError:
                    pass
            mask = resize_mask(mask, self.image_size)
            out[i] = np.where(mask > 127, 255, 0) if binary else mask
        return out

    def ground_truth(self) -> xr.Dataset | None:
        variables = {}
        if self.semantic_masks:
            variables["semantic"] = (("sample", "y", "x"), self._masks(self.semantic_masks, binary=False))
        if self.saliency_masks:
            variables["saliency"] = (("sample", "y", "x"), self._masks(self.saliency_masks, binary=True))
        if not variables:
            return None
        return xr.Dataset(variables, coords={"sample": self.sample_ids}, attrs={"classes": list(self.classes or [])})

    def metadata(self) -> xr.Dataset:
        return xr.Dataset({"path": ("sample", np.array([str(p) for p in self.paths], dtype=object))},
                          coords={"sample": self.sample_ids})


def _miniworld_pool(split: str, n: int | None, seed: int, image_size: tuple[int, int]) -> DatasetPool:
    from mdc_widgets._atomic import atomic_write_dir
    from mdc_widgets.config import cache_dir
    from mdc_widgets.data.miniworld import GENERATOR_VERSION, SPLIT_DEFAULTS, generate_miniworld

    if split not in SPLIT_DEFAULTS:
        raise MdcError(f"Unknown mini-world split {split!r}; use one of "
                       f"{', '.join(repr(f'miniworld:{s}') for s in SPLIT_DEFAULTS)}.")
    side = int(image_size[0])
    n = SPLIT_DEFAULTS[split][0] if n is None else int(n)
    # "meta2": the cached metadata changed (num_objects counts objects), so old caches must not be reused
    key = hashlib.sha256(f"miniworld|{GENERATOR_VERSION}|meta2|{split}|{n}|{seed}|{side}".encode()).hexdigest()[:16]
    path = cache_dir() / "pools" / f"miniworld-{split}-{key}.zarr"
    if not path.exists():
        ds = generate_miniworld(split, n=n, seed=seed, image_size=side)
        atomic_write_dir(path, lambda tmp: ds.to_zarr(str(tmp), mode="w", consolidated=False))
    ds = xr.open_zarr(str(path), consolidated=False).load()
    ds = ds.assign_coords(sample=np.array([str(s) for s in ds["sample"].values], dtype=object),
                          channel=np.array(["R", "G", "B"], dtype=object))
    return DatasetPool(ds, name=f"miniworld-{split}", image_size=tuple(image_size), fingerprint=f"mw{key}")


def skimage_pool(image_size: tuple[int, int] = (64, 64)) -> DatasetPool:
    """A small real pool: scikit-image's bundled photographs (no download needed)."""
    from skimage import data as skdata

    # photographs only: 'cat' is 'chelsea' again and 'horse' is a binary silhouette
    names = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
             "motorcycle_left", "retina", "camera", "coins", "moon", "page", "text", "clock"]
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
    ds = xr.Dataset({"image": (("sample", "y", "x", "channel"), np.stack(images))},
                    coords={"sample": np.array(ids, dtype=object)}, attrs={"split": "skimage"})
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
) -> Pool:
    """Open a pool from any source.

    Parameters
    ----------
    source : ``"miniworld"`` (or ``"miniworld:<split>"``), ``"skimage"``, an
        ``xr.Dataset``, a folder, a glob pattern, a ``.txt`` list of paths, a
        manifest ``.yaml``, or a list of paths
    image_size : working resolution ``(H, W)`` (or one int for square)
    split, n, seed : for the mini-world
    root : overrides a manifest's root folder

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
    if isinstance(source, xr.Dataset):
        return DatasetPool(source, image_size=image_size)
    if isinstance(source, (list, tuple)):
        return FilePool(source, name="files", image_size=image_size)
    text = str(source)
    if text.startswith("miniworld"):
        split = text.split(":", 1)[1] if ":" in text else split
        return _miniworld_pool(split, n, seed, image_size)
    if text == "skimage":
        return skimage_pool(image_size)
    path = Path(os.path.expanduser(text))
    if path.suffix.lower() in (".yaml", ".yml") or (not path.exists() and not any(c in text for c in "*?[")
                                                   and not path.suffix and _is_manifest_name(text)):
        return _manifest_pool(text, image_size, root)
    if path.is_dir():
        return FilePool(_list_folder(path), name=path.name, image_size=image_size)
    if path.suffix.lower() == ".txt" and path.exists():
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return FilePool([Path(p) if Path(p).is_absolute() else path.parent / p for p in lines],
                        name=path.stem, image_size=image_size)
    if any(c in text for c in "*?["):
        matches = sorted(Path(p) for p in globlib.glob(os.path.expanduser(text), recursive=True))
        if not matches:
            raise MdcError(f"No file matches the pattern {text!r}.")
        return FilePool(matches, name="glob", image_size=image_size)
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return FilePool([path], name=path.stem, image_size=image_size)
    raise MdcError(
        f"Cannot open a pool from {text!r}: not 'miniworld', 'skimage', a folder, a glob, a .txt list "
        "or a manifest .yaml that exists."
    )


def _is_manifest_name(text: str) -> bool:
    from mdc_widgets.data.manifest import manifests_dir

    return any((manifests_dir() / sub / f"{text}.yaml").exists() for sub in ("", "templates"))


def _manifest_pool(source: str, image_size: tuple[int, int], root: str | Path | None) -> FilePool:
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
        manifest.image_paths(), name=manifest.name, image_size=image_size,
        semantic_masks=manifest.mask_paths("semantic_mask") if manifest.raw.get("semantic_mask") or any(
            e.get("semantic_mask") for e in manifest.entries) else None,
        saliency_masks=manifest.mask_paths("saliency_mask") if manifest.raw.get("saliency_mask") or any(
            e.get("saliency_mask") for e in manifest.entries) else None,
        classes=manifest.classes,
    )
