"""Reading images and masks from files: any mode in, RGB uint8 (or label uint8) out, clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from mdc_widgets.errors import ImageDecodeError

__all__ = [
    "FITS",
    "content_box",
    "decode_image",
    "decode_mask",
    "fit_to_canvas",
    "from_canvas",
    "native_size",
    "resize_image",
    "resize_mask",
    "resize_saliency",
    "to_rgb_uint8",
]

# how an image of another aspect ratio becomes the working canvas:
# "stretch" resizes to (H, W); "letterbox" keeps the aspect ratio and pads (pads are background in every map)
FITS = ("stretch", "letterbox")
# the pad of a letterboxed image: ImageNet's mean colour, the input networks find least surprising
LETTERBOX_FILL = (124, 116, 104)

# decompression-bomb guard: refuse absurd sizes instead of exhausting memory
MAX_PIXELS = 200_000_000


def to_rgb_uint8(array: np.ndarray) -> np.ndarray:
    """Convert grey, grey+alpha, RGB, RGBA, 16-bit or float images to RGB uint8.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` (grey + alpha), ``(H, W, 3)``
        or ``(H, W, 4)``: bool (True = 255), uint8, integers above 255 or
        uint16 (scaled by 255 / 65535), or float (0..1, or 0..255 when the
        maximum exceeds 1; clipped). Alpha is dropped.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB.

    Raises
    ------
    ImageDecodeError
        When the array is not 2-D or 3-D with 1 to 4 channels.

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
    except PermissionError as exc:  # the file is fine; this user may not read it
        raise ImageDecodeError(
            f"{path}: no permission to read this {what} ({exc.strerror}); make it readable for this user "
            "(chmod a+r), or remove it from the pool."
        ) from exc
    except Exception as exc:  # PIL reports damaged files with many types (EOFError, struct.error, bombs...)
        raise ImageDecodeError(
            f"{path}: cannot decode this {what} ({type(exc).__name__}: {exc}); "
            "re-export or re-download the file, or remove it from the pool."
        ) from exc
    if image.width * image.height > MAX_PIXELS:
        raise ImageDecodeError(f"{path}: {image.width}x{image.height} pixels is too large; downscale it first.")
    return image


def decode_image(path: str | Path, notes: list[str] | None = None) -> np.ndarray:
    """Read one image file as RGB uint8 ``(H, W, 3)``; raises ``ImageDecodeError`` naming the file.

    Grey, palette, RGBA, CMYK and 16-bit images are converted. An animated
    image (GIF, APNG, multi-page TIFF) gives its first frame, and a line saying
    so is appended to ``notes`` when given (pools keep it in ``warnings``).
    EXIF orientation is applied, as photo viewers show the picture.

    Parameters
    ----------
    path : str or pathlib.Path
        The image file (any format Pillow reads).
    notes : list of str or None, optional
        Collects warnings about the file (a multi-frame image); None drops them.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8 RGB at the image's own (EXIF-rotated) size.

    Raises
    ------
    ImageDecodeError
        When the file is missing, unreadable (permission), damaged or larger
        than ``MAX_PIXELS`` pixels; the message names the file and the fix.
    """
    image = _open(Path(path), "image")
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and notes is not None:
        notes.append(f"{path}: {frames} frames; only the first is used.")
    try:
        # phone photos store their rotation in EXIF; show them the way viewers do
        image = ImageOps.exif_transpose(image)
    except Exception:  # a damaged EXIF block: the picture as stored (native_size ignores it too)
        pass
    if image.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
    return to_rgb_uint8(np.asarray(image))


def decode_mask(path: str | Path, kind: str = "labels") -> np.ndarray:
    """Read a mask or map file as uint8 ``(H, W)``.

    ``kind="labels"`` (class indices): palette PNGs give their indices (VOC
    style) and 16-bit files keep their indices. ``kind="grey"`` (saliency maps,
    binary masks): the grey values as shown, whatever the storage: a palette
    is looked up, and 16-bit values are scaled by 255 / 65535, never stretched
    to the file's own maximum.

    Parameters
    ----------
    path : str or pathlib.Path
        The mask or map file.
    kind : {"labels", "grey"}, optional
        ``"labels"`` for class-index maps, ``"grey"`` for saliency maps and
        binary masks (see above).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8 at the file's own size.

    Raises
    ------
    ImageDecodeError
        When the file is missing, unreadable or damaged (names the file).
    ValueError
        When ``kind`` is neither ``"labels"`` nor ``"grey"``.
    """
    if kind not in ("labels", "grey"):
        raise ValueError(f"kind must be 'labels' or 'grey'; got {kind!r}.")
    image = _open(Path(path), "mask")
    if image.mode == "P":
        if kind == "labels":
            return np.asarray(image, dtype=np.uint8)
        image = image.convert("L")
    arr = np.asarray(image if image.mode in ("L", "I", "I;16", "I;16B", "I;16L", "I;16N") else image.convert("L"))
    if arr.dtype != np.uint8:
        top = float(arr.max(initial=0))
        if kind == "grey":
            arr = arr.astype(np.float64) * (255.0 / 65535.0)
        elif top > 255:
            # a label map with values beyond uint8 is not an index map any more: rescale rather than wrap
            arr = arr.astype(np.float64) / top * 255.0
        arr = np.round(arr).astype(np.uint8)
    return arr


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased) resize of an RGB uint8 image to ``(H, W)``.

    Parameters
    ----------
    image : numpy.ndarray
        ``(h, w, 3)`` uint8 RGB.
    size : tuple of 2 int
        The target ``(H, W)``.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` uint8; ``image`` itself when it already has that size.
    """
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label or mask, so no new label values appear.

    Parameters
    ----------
    mask : numpy.ndarray
        ``(h, w)`` uint8 class indices or mask values.
    size : tuple of 2 int
        The target ``(H, W)``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)``, same dtype; ``mask`` itself when it already has that size.
    """
    if mask.shape[:2] == tuple(size):
        return mask
    return np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))


def resize_saliency(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a grey uint8 map (saliency), so its values stay graded.

    Parameters
    ----------
    saliency : numpy.ndarray
        ``(h, w)`` uint8 0..255.
    size : tuple of 2 int
        The target ``(H, W)``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` uint8; ``saliency`` itself when it already has that size.

    Examples
    --------
    >>> resize_saliency(np.array([[0, 255]], np.uint8), (1, 4)).tolist()
    [[0, 64, 191, 255]]
    """
    if saliency.shape[:2] == tuple(size):
        return saliency
    return np.asarray(Image.fromarray(saliency).resize((size[1], size[0]), Image.BILINEAR))


_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the stored picture by 90 degrees


def native_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file as ``decode_image`` returns it (EXIF rotation applied), header only.

    Parameters
    ----------
    path : str or pathlib.Path
        The image file; only its header is read (the pixels are not decoded).

    Returns
    -------
    tuple of 2 int
        ``(H, W)`` in pixels, swapped for EXIF orientations 5 to 8.

    Raises
    ------
    ImageDecodeError
        When the file is missing or its header cannot be parsed.
    """
    image = _open_header(Path(path))
    height, width = image.height, image.width
    try:
        orientation = image.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block: decode_image ignores it too
        orientation = 1
    return (width, height) if orientation in _SWAPPING_ORIENTATIONS else (height, width)


def _open_header(path: Path) -> Image.Image:
    if not path.exists():
        raise ImageDecodeError(f"{path}: file not found; restore it or remove it from the pool/manifest.")
    try:
        return Image.open(path)
    except Exception as exc:  # as in _open: any failure to parse the header is the file's
        raise ImageDecodeError(f"{path}: cannot read this file's header ({type(exc).__name__}: {exc}).") from exc


def content_box(native: tuple[int, int], canvas: tuple[int, int], fit: str = "stretch") -> tuple[int, int, int, int]:
    """Where an image of size ``native`` lies on the working ``canvas``: ``(y0, y1, x0, x1)``.

    Parameters
    ----------
    native : tuple of 2 int
        The image's own ``(H, W)``.
    canvas : tuple of 2 int
        The working ``(H, W)`` every image of the pool is fitted to.
    fit : {"stretch", "letterbox"}, optional
        ``"stretch"``: the image fills the canvas; ``"letterbox"``: scaled to
        fit with its aspect ratio kept, centred, the rest is pad.

    Returns
    -------
    tuple of 4 int
        ``(y0, y1, x0, x1)``, half-open pixel bounds on the canvas.

    Raises
    ------
    ValueError
        When ``fit`` is not one of ``FITS``.

    Examples
    --------
    >>> content_box((321, 481), (320, 320), "letterbox")
    (53, 267, 0, 320)
    >>> content_box((321, 481), (320, 320), "stretch")
    (0, 320, 0, 320)
    """
    ch, cw = (int(s) for s in canvas)
    if fit == "stretch":
        return 0, ch, 0, cw
    if fit != "letterbox":
        raise ValueError(f"fit must be one of {FITS}; got {fit!r}.")
    nh, nw = (int(s) for s in native)
    scale = min(ch / nh, cw / nw)
    h, w = max(1, min(ch, round(nh * scale))), max(1, min(cw, round(nw * scale)))
    y0, x0 = (ch - h) // 2, (cw - w) // 2
    return y0, y0 + h, x0, x0 + w


def fit_to_canvas(array: np.ndarray, canvas: tuple[int, int], fit: str = "stretch", kind: str = "image") -> np.ndarray:
    """Resize an image (``kind="image"``), a label map (``"labels"``) or a grey map (``"saliency"``) onto the canvas.

    Labels use nearest neighbour (no new classes), images and saliency bilinear.
    Letterbox pads are ``LETTERBOX_FILL`` for images and 0 (background) for maps.

    Parameters
    ----------
    array : numpy.ndarray
        ``(h, w, 3)`` uint8 RGB for ``kind="image"``, else ``(h, w)`` uint8.
    canvas : tuple of 2 int
        The working ``(H, W)``.
    fit : {"stretch", "letterbox"}, optional
        How the aspect ratio is handled (see :func:`content_box`).
    kind : {"image", "labels", "saliency"}, optional
        Chooses the resampling and the pad value.

    Returns
    -------
    numpy.ndarray
        ``(H, W, ...)`` with the dtype of ``array``.

    Examples
    --------
    >>> fit_to_canvas(np.full((2, 4), 7, np.uint8), (4, 4), "letterbox", "labels").tolist()
    [[0, 0, 0, 0], [7, 7, 7, 7], [7, 7, 7, 7], [0, 0, 0, 0]]
    """
    resize = {"image": resize_image, "labels": resize_mask, "saliency": resize_saliency}[kind]
    y0, y1, x0, x1 = content_box(array.shape[:2], canvas, fit)
    content = resize(np.ascontiguousarray(array), (y1 - y0, x1 - x0))
    if (y0, y1, x0, x1) == (0, canvas[0], 0, canvas[1]):
        return content
    out = np.zeros((*canvas, *array.shape[2:]), dtype=array.dtype)
    if kind == "image":
        out[...] = np.asarray(LETTERBOX_FILL, dtype=array.dtype)[: array.shape[-1]] if array.ndim == 3 else 0
    out[y0:y1, x0:x1] = content
    return out


def from_canvas(array: np.ndarray, native: tuple[int, int], fit: str = "stretch", kind: str = "labels") -> np.ndarray:
    """The inverse of :func:`fit_to_canvas`: crop the content and resize it back to the image's own size.

    Parameters
    ----------
    array : numpy.ndarray
        A map or image on the working canvas, ``(H, W)`` or ``(H, W, 3)``.
    native : tuple of 2 int
        The image's own ``(H, W)``, the size of the result.
    fit : {"stretch", "letterbox"}, optional
        The fit the canvas was made with (letterbox pads are cropped away).
    kind : {"labels", "image", "saliency"}, optional
        Chooses the resampling: nearest for labels, bilinear otherwise.

    Returns
    -------
    numpy.ndarray
        ``native``-sized array with the dtype of ``array``.

    Examples
    --------
    >>> canvas = fit_to_canvas(np.eye(4, 8, dtype=np.uint8) * 9, (8, 8), "letterbox", "labels")
    >>> from_canvas(canvas, (4, 8), "letterbox", "labels").shape
    (4, 8)
    """
    y0, y1, x0, x1 = content_box(native, array.shape[:2], fit)
    resize = {"image": resize_image, "labels": resize_mask, "saliency": resize_saliency}[kind]
    return resize(np.ascontiguousarray(array[y0:y1, x0:x1]), tuple(int(s) for s in native))
