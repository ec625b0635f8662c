"""Pictures of one sample: disagreement maps, saliency colours, PNG bytes, tiled panels, legends."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence

import numpy as np

from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.viz.colors import overlay_saliency, saliency_legend  # their home; kept importable from here

__all__ = [
    "detail_row",
    "disagreement_map",
    "legend_html",
    "overlay_saliency",
    "saliency_legend",
    "tile_panel",
    "to_png",
    "upscale",
]


def disagreement_map(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    """Where two predictions disagree, per pixel, in [0, 1]; batched over any leading dims.

    - ``"ss"``: 1 where the class labels differ,
    - ``"sod"``: ``|s - t|`` of the two saliency maps (uint8 0..255),
    - ``"cross"``: SS foreground (``a > 0``) xor the adaptively binarised
      saliency ``b``, i.e. the pixels behind ``1 - IoU`` of the cross-task term.

    Examples
    --------
    >>> labels_a = np.array([[0, 1], [2, 2]], np.uint8)
    >>> labels_b = np.array([[0, 1], [1, 0]], np.uint8)
    >>> disagreement_map(labels_a, labels_b, "ss").tolist()
    [[0.0, 0.0], [1.0, 1.0]]
    >>> disagreement_map(np.array([[0, 255]], np.uint8), np.array([[255, 255]], np.uint8), "sod").tolist()
    [[1.0, 0.0]]
    >>> disagreement_map(np.array([[0, 3]], np.uint8), np.array([[0, 255]], np.uint8), "cross").tolist()
    [[0.0, 0.0]]
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ShapeError(f"Disagreement of maps of different shapes {a.shape} and {b.shape}.")
    if kind == "ss":
        return (a != b).astype(np.float32)
    if kind == "sod":
        return np.abs(a.astype(np.float32) - b.astype(np.float32)) / 255.0
    if kind == "cross":
        from mdc_widgets.discrepancy import binarize_saliency

        binary = np.asarray(binarize_saliency(b.reshape(-1, *b.shape[-2:]))).reshape(b.shape).astype(bool)
        return ((a > 0) ^ binary).astype(np.float32)
    raise MdcError(f"Unknown pair kind {kind!r}; use 'ss', 'sod' or 'cross'.")


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement by an integer factor (keeps pixels crisp in small thumbnails).

    Examples
    --------
    >>> upscale(np.array([[1, 2]], np.uint8), 2).tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2]]
    """
    factor = max(int(factor), 1)
    image = np.asarray(image)
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ShapeError(f"An image is (H, W), (H, W, 3) or (H, W, 4); got {image.shape}.")
    return image


def to_png(image: np.ndarray, scale: int = 1) -> bytes:
    """PNG bytes of an RGB (or grey, or float [0, 1]) image, enlarged ``scale`` times.

    Examples
    --------
    >>> to_png(np.zeros((4, 4, 3), np.uint8))[:4]
    b'\\x89PNG'
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(upscale(_as_rgb_uint8(image), scale)).save(buffer, format="PNG")
    return buffer.getvalue()


def tile_panel(
    rows: Sequence[Sequence[tuple[str, np.ndarray]]],
    scale: int = 2,
    caption_height: int = 12,
    gap: int = 2,
) -> np.ndarray:
    """One RGB image of captioned tiles: ``rows`` of ``(caption, image)``, every image the same size.

    For static reports (papermill, nbconvert) where no widget can be shown.

    Examples
    --------
    >>> tile = np.zeros((8, 8, 3), np.uint8)
    >>> tile_panel([[("a", tile), ("b", tile)]], scale=2).shape
    (28, 34, 3)
    """
    from PIL import Image, ImageDraw

    if not rows or not any(rows):
        raise MdcError("Nothing to draw: the panel has no tiles.")
    h, w = _as_rgb_uint8(rows[0][0][1]).shape[:2]
    tw, th = w * scale, h * scale
    cols = max(len(r) for r in rows)
    width = cols * tw + (cols - 1) * gap
    height = len(rows) * (th + caption_height) + (len(rows) - 1) * gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        top = r * (th + caption_height + gap)
        for c, (caption, tile) in enumerate(row):
            left = c * (tw + gap)
            rgb = _as_rgb_uint8(tile)[..., :3]
            if rgb.shape[:2] != (h, w):
                raise ShapeError(f"Tile {caption!r} is {rgb.shape[:2]}; every tile of a panel is {(h, w)}.")
            # caption first: a font taller than the caption strip must not cover the image
            draw.text((left + 1, top), str(caption)[: max(3, tw // 6)], fill="black")
            canvas.paste(Image.fromarray(upscale(rgb, scale)), (left, top + caption_height))
    return np.asarray(canvas)


def legend_html(entries: Sequence[tuple[str, str]]) -> str:
    """Colour swatches with names, as an HTML snippet (for widgets and static reports).

    Examples
    --------
    >>> "background" in legend_html([("background", "#000000")])
    True
    """
    items = "".join(
        f'<span style="display:inline-block;margin-right:8px;white-space:nowrap">'
        f'<span style="display:inline-block;width:11px;height:11px;background:{html.escape(colour)};'
        f'border:1px solid #888;vertical-align:middle;margin-right:3px"></span>{html.escape(str(name))}</span>'
        for name, colour in entries
    )
    return f'<div style="font-size:11px;line-height:1.5">{items}</div>'


def detail_row(detail: dict, disagreement: bool = True) -> list[tuple[str, np.ndarray]]:
    """The tiles of one sample for a static panel: image, ground truth, each prediction, disagreements.

    ``detail`` is :meth:`mdc_widgets.session.Session.sample_detail`'s dict.
    """
    rank = detail.get("scores", {}).get("rank")
    tiles = [(f"#{rank} {detail['sample']}" if rank else str(detail["sample"]), detail["image"])]
    gt = detail.get("ground_truth") or {}
    for name in ("semantic", "saliency"):
        if name in gt:
            tiles.append((f"GT {name}", gt[name]["overlay"]))
    tiles += [(model, view["overlay"]) for model, view in detail["predictions"].items()]
    if disagreement:
        tiles += [(f"{d['kind']} {d['fraction']:.2f}", d["overlay"]) for d in detail["disagreement"].values()]
    return tiles
