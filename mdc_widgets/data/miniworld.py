"""The mini-world: procedural scenes with ground truth for segmentation and saliency.

Every image is drawn from a seeded random stream, so a split is a pure
function of ``(split, n, seed, image_size, GENERATOR_VERSION)``. Each image
records the nuisance factors that made it hard (small objects, occlusion,
blur, noise, low contrast, camouflage colours, clutter), so a failure found by
mining can be explained.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter

__all__ = [
    "GENERATOR_VERSION",
    "MINIWORLD_CLASSES",
    "SPLIT_DEFAULTS",
    "NuisanceRates",
    "generate_miniworld",
    "miniworld_checksum",
]

GENERATOR_VERSION = "1.0"
MINIWORLD_CLASSES = ("background", "disk", "square", "triangle", "ring", "cross")
# class-typical hues (RGB); each object jitters around its class colour
_CLASS_COLOURS = np.array(
    [[0, 0, 0], [0.85, 0.2, 0.15], [0.15, 0.35, 0.9], [0.2, 0.75, 0.25], [0.95, 0.8, 0.1], [0.8, 0.25, 0.8]]
)
NUISANCE_FACTORS = ("object_scale", "occlusion", "blur", "noise", "contrast", "camouflage", "clutter")


@dataclass(frozen=True)
class NuisanceRates:
    """Probability that each hard condition occurs in an image, and how extreme it may get.

    Each rate is a per-image probability in [0, 1], drawn independently, so
    conditions co-occur. ``SPLIT_DEFAULTS`` holds the rates of each split.

    Parameters
    ----------
    small : float
        Objects are small (radius 5-8.5 % of the image side instead of 11-24 %).
    occlusion : float
        A background-textured box hides part of one object (hidden pixels
        are background in both ground truths).
    blur : float
        Gaussian blur, sigma 0.8 to ``0.8 + 1.7 * severity`` pixels.
    noise : float
        Additive Gaussian noise, std 0.05 to ``0.05 + 0.17 * severity`` (image in [0, 1]).
    low_contrast : float
        Contrast scaled down by 0.4 to ``0.4 + 0.45 * severity`` around mid-grey.
    camouflage : float
        Objects' colours pulled towards their local background by 0.5 to
        ``0.5 + 0.45 * severity``.
    clutter : float
        3 to ``3 + 12 * severity`` non-salient strokes and specks instead of 0 or 1.
    severity : float
        In [0, 1]; scales the strength of every condition (the upper ends above).
    """

    small: float
    occlusion: float
    blur: float
    noise: float
    low_contrast: float
    camouflage: float
    clutter: float
    severity: float  # 0..1, scales the strength of every condition


SPLIT_DEFAULTS: dict[str, tuple[int, NuisanceRates]] = {
    # training: mostly easy, each hard factor rare and mild
    "train": (2000, NuisanceRates(0.06, 0.05, 0.05, 0.05, 0.05, 0.03, 0.10, 0.35)),
    "val": (400, NuisanceRates(0.06, 0.05, 0.05, 0.05, 0.05, 0.03, 0.10, 0.35)),
    # the unlabeled pool: hard conditions at realistic rates, some extreme, often co-occurring
    "pool": (4000, NuisanceRates(0.20, 0.20, 0.15, 0.15, 0.15, 0.12, 0.30, 1.0)),
    # held-out hard test set for closing-the-loop experiments
    "test_hard": (600, NuisanceRates(0.45, 0.45, 0.35, 0.35, 0.35, 0.30, 0.55, 1.0)),
}


def _split_seed(split: str, seed: int) -> np.random.SeedSequence:
    # independent streams per split: seeds derived from (seed, split name)
    digest = hashlib.sha256(f"{GENERATOR_VERSION}:{split}:{seed}".encode()).digest()
    return np.random.SeedSequence(int.from_bytes(digest[:16], "little"))


def _background(rng: np.random.Generator, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    c0, c1 = rng.uniform(0.15, 0.85, 3), rng.uniform(0.15, 0.85, 3)
    angle = rng.uniform(0, 2 * np.pi)
    t = ((np.cos(angle) * xx + np.sin(angle) * yy) / size + 1) / 2
    bg = c0 + (c1 - c0) * t[..., None]
    # low-frequency texture: a few random sinusoids
    for _ in range(2):
        f = rng.uniform(0.5, 3.0, 2) * 2 * np.pi / size
        phase = rng.uniform(0, 2 * np.pi)
        bg += rng.uniform(0.02, 0.08) * np.sin(f[0] * xx + f[1] * yy + phase)[..., None] * rng.uniform(-1, 1, 3)
    return bg


def _shape_mask(cls: int, cy: float, cx: float, r: float, theta: float, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    if cls == 1:  # disk
        return u * u + v * v <= r * r
    if cls == 2:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8 * r
    if cls == 3:  # triangle of circumradius r
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            a = np.pi / 2 + 2 * np.pi * k / 3
            inside &= np.cos(a) * u + np.sin(a) * v <= r / 2
        return inside
    if cls == 4:  # ring
        d2 = u * u + v * v
        return (d2 <= r * r) & (d2 >= (0.55 * r) ** 2)
    if cls == 5:  # cross
        w = 0.32 * r
        return ((np.abs(u) <= w) & (np.abs(v) <= r)) | ((np.abs(v) <= w) & (np.abs(u) <= r))
    raise ValueError(cls)


def _render(rng: np.random.Generator, size: int, rates: NuisanceRates) -> tuple[np.ndarray, np.ndarray, dict]:
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    image = _background(rng, size, yy, xx)
    semantic = np.zeros((size, size), np.uint8)
    instance = np.zeros((size, size), np.uint8)  # which object owns a pixel, to count visible objects
    sev = rates.severity

    small = rng.random() < rates.small
    camouflage = rng.uniform(0.5, 0.5 + 0.45 * sev) if rng.random() < rates.camouflage else 0.0
    n_objects = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
    radii = []
    for _ in range(n_objects):
        cls = int(rng.integers(1, len(MINIWORLD_CLASSES)))
        r = size * (rng.uniform(0.05, 0.085) if small else rng.uniform(0.11, 0.24))
        cy, cx = rng.uniform(r, size - r, 2)
        mask = _shape_mask(cls, cy, cx, r, rng.uniform(0, 2 * np.pi), yy, xx)
        if not mask.any():
            continue
        colour = np.clip(_CLASS_COLOURS[cls] + rng.normal(0, 0.07, 3), 0, 1)
        if camouflage:
            # pull the object's colour towards the background it sits on
            local = image[mask].mean(axis=0)
            colour = (1 - camouflage) * colour + camouflage * local
        shade = 1 + 0.15 * ((xx - cx) / size)[..., None]  # a little shading so objects are not flat
        image = np.where(mask[..., None], np.clip(colour * shade, 0, 1), image)
        semantic[mask] = cls
        instance[mask] = len(radii) + 1
        radii.append(r / size)

    occlusion = 0.0
    if rng.random() < rates.occlusion and (semantic > 0).any():
        ys, xs = np.nonzero(semantic)
        k = rng.integers(len(ys))
        h, w = (rng.uniform(0.15, 0.15 + 0.3 * sev, 2) * size).astype(int) + 2
        y0, x0 = int(ys[k] - rng.integers(0, h)), int(xs[k] - rng.integers(0, w))
        occ = np.zeros_like(semantic, bool)
        occ[max(y0, 0) : y0 + h, max(x0, 0) : x0 + w] = True
        before = (semantic > 0).sum()
        occluder = _background(rng, size, yy, xx)
        image = np.where(occ[..., None], occluder, image)
        occlusion = float(((semantic > 0) & occ).sum() / before)
        semantic[occ] = 0  # hidden object pixels are background in both maps
        instance[occ] = 0

    clutter = int(rng.integers(3, 3 + int(12 * sev))) if rng.random() < rates.clutter else int(rng.integers(0, 2))
    for _ in range(clutter):
        # small non-salient strokes and specks, drawn *under* nothing: they never cover labeled pixels
        cy, cx = rng.uniform(0, size, 2)
        if rng.random() < 0.5:
            theta = rng.uniform(0, np.pi)
            length, width = rng.uniform(0.08, 0.25) * size, rng.uniform(0.6, 1.4)
            du, dv = (
                (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta),
                -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta),
            )
            m = (np.abs(du) <= length / 2) & (np.abs(dv) <= width)
        else:
            m = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(0.8, max(0.8, 0.04 * size)) ** 2
        m &= semantic == 0
        image = np.where(m[..., None], rng.uniform(0, 1, 3), image)

    contrast = 1.0 - rng.uniform(0.4, 0.4 + 0.45 * sev) if rng.random() < rates.low_contrast else 1.0
    image = 0.5 + contrast * (image - 0.5)
    blur = rng.uniform(0.8, 0.8 + 1.7 * sev) if rng.random() < rates.blur else 0.0
    if blur:
        image = gaussian_filter(image, sigma=(blur, blur, 0))
    noise = rng.uniform(0.05, 0.05 + 0.17 * sev) if rng.random() < rates.noise else 0.0
    if noise:
        image = image + rng.normal(0, noise, image.shape)

    counts = np.bincount(semantic.ravel(), minlength=len(MINIWORLD_CLASSES))
    counts[0] = 0
    factors = {
        "object_scale": float(np.mean(radii)) if radii else 0.0,
        "occlusion": occlusion,
        "blur": float(blur),
        "noise": float(noise),
        "contrast": float(contrast),
        "camouflage": float(camouflage),
        "clutter": clutter,
        "num_objects": int(len(np.unique(instance[instance > 0]))),
        "dominant_class": int(counts.argmax()) if counts.any() else 0,
    }
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), semantic, factors


def generate_miniworld(split: str = "pool", n: int | None = None, seed: int = 0, image_size: int = 64) -> xr.Dataset:
    """Generate a split of the mini-world as an ``xr.Dataset``.

    Parameters
    ----------
    split : str, optional
        ``"train"``, ``"val"``, ``"pool"`` or ``"test_hard"``: same scenes,
        different rates of hard conditions (see ``SPLIT_DEFAULTS``).
    n : int or None, optional
        Number of images (default: the split's default count).
    seed : int, optional
        The random seed; splits use independent streams derived from it.
    image_size : int, optional
        Side of the square images in pixels.

    Returns
    -------
    xr.Dataset
        ``image (sample, y, x, channel)`` uint8, ``semantic (sample, y, x)``
        uint8, ``saliency (sample, y, x)`` uint8 in {0, 255}, and one
        variable per nuisance factor along ``sample``.

    Examples
    --------
    >>> ds = generate_miniworld("train", n=4, seed=0, image_size=32)
    >>> ds["image"].shape, ds.attrs["classes"][1]
    ((4, 32, 32, 3), 'disk')
    >>> bool(((ds["saliency"] > 0) == (ds["semantic"] > 0)).all())
    True
    """
    if split not in SPLIT_DEFAULTS:
        raise ValueError(f"Unknown mini-world split {split!r}; choose one of {sorted(SPLIT_DEFAULTS)}.")
    default_n, rates = SPLIT_DEFAULTS[split]
    n = default_n if n is None else int(n)
    rng = np.random.default_rng(_split_seed(split, seed))
    images = np.empty((n, image_size, image_size, 3), np.uint8)
    semantic = np.empty((n, image_size, image_size), np.uint8)
    factors: dict[str, list] = {}
    for i in range(n):
        images[i], semantic[i], f = _render(rng, image_size, rates)
        for key, value in f.items():
            factors.setdefault(key, []).append(value)
    ds = xr.Dataset(
        {
            "image": (("sample", "y", "x", "channel"), images),
            "semantic": (("sample", "y", "x"), semantic),
            "saliency": (("sample", "y", "x"), np.where(semantic > 0, 255, 0).astype(np.uint8)),
            **{key: ("sample", np.asarray(values)) for key, values in factors.items()},
        },
        coords={
            "sample": np.array([f"{split}-{i:06d}" for i in range(n)], dtype=object),
            "channel": np.array(["R", "G", "B"], dtype=object),
        },
        attrs={
            "classes": list(MINIWORLD_CLASSES),
            "generator": "mdc_widgets.miniworld",
            "generator_version": GENERATOR_VERSION,
            "seed": int(seed),
            "split": split,
            "image_size": int(image_size),
        },
    )
    return ds


def miniworld_checksum(ds: xr.Dataset) -> str:
    """SHA-256 of a mini-world split's arrays (images and both ground truths).

    Parameters
    ----------
    ds : xarray.Dataset
        A split from :func:`generate_miniworld` (``image``, ``semantic`` and
        ``saliency``; the nuisance factors are not hashed).

    Returns
    -------
    str
        64 lowercase hex digits; what ``data_manifests/miniworld.yaml`` records.
    """
    digest = hashlib.sha256()
    for name in ("image", "semantic", "saliency"):
        digest.update(np.ascontiguousarray(ds[name].values).tobytes())
    return digest.hexdigest()
