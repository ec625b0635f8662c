"""Reading images and masks from files: any mode in, RGB uint8 (or label uint8) out, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mdc_widgets.errors import ImageDecodeError

__all__ = ["decode_image", "decode_mask", "to_rgb_uint8", "resize_image", "resize_mask"]

# decompression-bomb guard: refuse absurd sizes instead of exhausting memory
MAX_PIXELS = 200_000_000


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Convert grey, grey+alpha, RGB, RGBA, 16-bit or float images to RGB uint8.

    Examples
    --------
    >>> to_rgb_uint8(np.full((2, 2), 65535, np.uint16))[0, 0].tolist()
    [255, 255, 255]
    >>> to_rgb_uint8(np.zeros((2, 2, 4), np.uint8)).shape
    (2, 2, 3)
    >>> to_rgb_uint8(np.array([[True, False]]))[0, :, 0].tolist()
    [255, 0]
    """
    arr = np.asarray(array)
    if arr.dtype == bool:  # a binary image is black and white, not 0 and 1
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype == np.uint16 or (arr.dtype.kind in "iu" and arr.max(initial=0) > 255):
        arr = (arr.astype(np.float64) / 65535.0 * 255.0).round()
    elif arr.dtype.kind == "f":
        arr = np.clip(arr, 0, 1) * 255.0 if arr.max(initial=0) <= 1.0 else np.clip(arr, 0, 255)
    arr = arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha
        arr = np.repeat(arr[..., :1], 3, axis=-1)
    elif arr.ndim == 3 and arr.shape[-1] == 4:  # alpha is dropped: the pool compares pixels, not layers
        arr = arr[..., :3]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ImageDecodeError(f"An image of shape {np.shape(array)} is not an image with 1 to 4 channels.")
    return arr


def _open(path: Path, what: str) -> Image.Image:
    if not path.exists():
        raise ImageDecodeError(f"{path}: file not found; restore it or remove it from the pool/manifest.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
            image.load()  # decode now: a truncated file fails here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise ImageDecodeError(
            f"{path}: cannot decode this {what} ({type(exc).__name__}: {exc}); "
            "re-export or re-download the file, or remove it from the pool."
        ) from exc
    if image.width * image.height > MAX_PIXELS:
        raise ImageDecodeError(f"{path}: {image.width}x{image.height} pixels is too large; downscale it first.")
    return image


def decode_image(path: str | Path) -> np.ndarray:
    """Read one image file as RGB uint8 ``(H, W, 3)``; raises ``ImageDecodeError`` naming the file.

    Grey, palette, RGBA, CMYK and 16-bit images are converted.
    """
    # phone photos store their rotation in EXIF; show them the way viewers do
    image = ImageOps.exif_transpose(_open(Path(path), "image"))
    if image.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    return to_rgb_uint8(np.asarray(image))


def decode_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as uint8 ``(H, W)``: palette indices (VOC style) or grey values."""
    image = _open(Path(path), "mask")
    if image.mode == "P":
        return np.asarray(image, dtype=np.uint8)
    arr = np.asarray(image if image.mode in ("L", "I", "I;16", "I;16B", "I;16L", "I;16N") else image.convert("L"))
    if arr.dtype != np.uint8:
        # a 16-bit label map keeps its class indices; only values beyond uint8 are rescaled to 0..255
        top = float(arr.max(initial=0))
        arr = arr if top <= 255 else arr.astype(np.float64) / top * 255.0
        arr = np.round(arr).astype(np.uint8)
    return arr


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased) resize of an RGB uint8 image to ``(H, W)``."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label or mask, so no new label values appear."""
    if mask.shape[:2] == tuple(size):
        return mask
    return np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
