"""Pictures of one sample: disagreement maps, saliency colours, PNG bytes, tiled panels with captions and legends."""

from __future__ import annotations

import html
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.viz.colors import overlay_saliency, saliency_legend  # their home; kept importable from here

__all__ = [
    "Legend",
    "detail_row",
    "disagreement_caption",
    "disagreement_map",
    "legend_html",
    "overlay_saliency",
    "row_legend",
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

    Parameters
    ----------
    a : numpy.ndarray
        ``(..., H, W)`` uint8: labels (``"ss"``, ``"cross"``) or saliency 0-255 (``"sod"``).
    b : numpy.ndarray
        The other map, the same shape: labels (``"ss"``) or saliency 0-255 (``"sod"``, ``"cross"``).
    kind : str
        ``"ss"``, ``"sod"`` or ``"cross"``.

    Returns
    -------
    numpy.ndarray
        float32 of the shape of ``a``, values in [0, 1].

    Raises
    ------
    ShapeError
        When ``a`` and ``b`` differ in shape.
    MdcError
        When ``kind`` is none of the three.

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

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)`` or ``(H, W, C)``.
    factor : int
        Enlargement; values below 2 return the image unchanged.

    Returns
    -------
    numpy.ndarray
        ``(H * factor, W * factor[, C])``, the dtype of ``image``.

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

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``; uint8, or float clipped to [0, 1].
    scale : int, optional
        Nearest-neighbour enlargement factor.

    Returns
    -------
    bytes
        The encoded PNG.

    Raises
    ------
    ShapeError
        When the image is not one of the shapes above.

    Examples
    --------
    >>> to_png(np.zeros((4, 4, 3), np.uint8))[:4]
    b'\\x89PNG'
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(upscale(_as_rgb_uint8(image), scale)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass(frozen=True)
class Legend:
    """A legend drawn in a tile's place in :func:`tile_panel`: class swatches and, optionally, the heat colour bar.

    Parameters
    ----------
    entries : tuple of (str, str), optional
        ``(class name, '#rrggbb')`` of the classes painted in the row.
    colour_bar : str, optional
        Title of the heat scale from 0 to 1 (saliency, disagreement); no bar when empty.

    Examples
    --------
    >>> Legend((("cat", "#800000"),), colour_bar="saliency").names()
    ['cat', 'saliency 0..1']
    """

    entries: tuple[tuple[str, str], ...] = ()
    colour_bar: str = ""

    def names(self) -> list[str]:
        """What the legend says, in order (for tests and alt text)."""
        return [name for name, _ in self.entries] + ([f"{self.colour_bar} 0..1"] if self.colour_bar else [])


def _char_width() -> float:
    """Mean width in pixels of a caption character in PIL's default font (about 6 px for the bitmap font)."""
    from PIL import ImageFont

    sample = "abcdefghijklmnopqrstuvwxyz_0123456789 :."
    return max(ImageFont.load_default().getlength(sample) / len(sample), 1.0)


def _caption_lines(caption: str, width: int) -> list[str]:
    """The caption's lines (explicit newlines kept), each wrapped to fit ``width`` pixels."""
    chars = max(3, int(width // _char_width()))
    lines: list[str] = []
    for part in str(caption).split("\n"):
        lines += textwrap.wrap(part, chars, break_long_words=True, break_on_hyphens=False) or [""]
    return lines


def _draw_legend(draw: Any, legend: Legend, left: int, top: int, width: int, height: int) -> None:
    """Swatches with names, one a line, then the colour bar with its ends, inside the box."""
    from mdc_widgets.viz.colors import HEAT_COLORS

    line = 11
    title = _caption_lines(legend.colour_bar, width) if legend.colour_bar else []
    rows = max(0, (height - 2) // line)
    if legend.colour_bar and rows - len(title) - 2 < len(legend.entries):
        title = title[:1]  # a small tile: the classes matter more than the bar's full title
    fits = max(0, rows - (len(title) + 2 if legend.colour_bar else 0))
    entries = list(legend.entries)
    if len(entries) > fits:  # say how many are left out rather than drawing over the bar
        kept = max(fits - 1, 0)
        entries = entries[:kept] + [(f"+{len(entries) - kept} more", "")]
    y = top + 1
    for name, colour in entries:
        if colour:
            draw.rectangle([left + 1, y + 1, left + 9, y + 9], fill=colour, outline="#888888")
        draw.text((left + 12, y), str(name)[: max(1, int((width - 12) // _char_width()))], fill="black")
        y += line
    for text in title:
        draw.text((left + 1, y), text, fill="black")
        y += line
        bar_width = max(width - 4, 2)
        for i in range(bar_width):
            colour = tuple(int(c) for c in HEAT_COLORS[round(i * 255 / (bar_width - 1))])
            draw.line([left + 2 + i, y, left + 2 + i, y + 7], fill=colour)
        draw.text((left + 2, y + 9), "0", fill="black")
        draw.text((left + width - 8, y + 9), "1", fill="black")


def tile_panel(
    rows: Sequence[Sequence[tuple[str, np.ndarray | Legend]]],
    scale: int = 2,
    caption_height: int = 12,
    gap: int = 2,
) -> np.ndarray:
    """One RGB image of captioned tiles: ``rows`` of ``(caption, image or Legend)``, every image the same size.

    For static reports (papermill, nbconvert) where no widget can be shown.
    A caption is wrapped to its tile's width (``"\\n"`` starts a new line);
    a row's caption strip is ``caption_height`` per line of its longest
    caption. A :class:`Legend` is drawn at full resolution in a tile's place.

    Parameters
    ----------
    rows : sequence of sequence of (str, numpy.ndarray or Legend)
        The tiles of each row.
    scale : int, optional
        Enlargement of every image (nearest neighbour).
    caption_height : int, optional
        Pixels per caption line.
    gap : int, optional
        White pixels between tiles and rows.

    Returns
    -------
    numpy.ndarray
        ``(height, width, 3)`` uint8 on a white background.

    Raises
    ------
    MdcError
        When there is no tile, or only legends.
    ShapeError
        When an image tile's size differs from the first image's.

    Examples
    --------
    >>> tile = np.zeros((8, 8, 3), np.uint8)
    >>> tile_panel([[("a", tile), ("b", tile)]], scale=2).shape
    (28, 34, 3)
    >>> wide = np.zeros((8, 32, 3), np.uint8)  # 64 px after scaling: 10 characters a line
    >>> tile_panel([[("a long caption", wide)]], scale=2, caption_height=10).shape  # two caption lines
    (36, 64, 3)
    """
    from PIL import Image, ImageDraw

    if not rows or not any(rows):
        raise MdcError("Nothing to draw: the panel has no tiles.")
    first = next((t for row in rows for _, t in row if not isinstance(t, Legend)), None)
    if first is None:
        raise MdcError("Nothing to draw: the panel has only legends; give at least one image.")
    h, w = _as_rgb_uint8(first).shape[:2]
    tw, th = w * scale, h * scale
    cols = max(len(r) for r in rows)
    captions = [[_caption_lines(caption, tw) for caption, _ in row] for row in rows]
    strips = [caption_height * max((len(c) for c in row), default=1) for row in captions]
    width = cols * tw + (cols - 1) * gap
    height = sum(th + strip for strip in strips) + (len(rows) - 1) * gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    top = 0
    for r, row in enumerate(rows):
        for c, (caption, tile) in enumerate(row):
            left = c * (tw + gap)
            # caption first: a font taller than the caption strip must not cover the image
            for i, text in enumerate(captions[r][c]):
                draw.text((left + 1, top + i * caption_height), text, fill="black")
            if isinstance(tile, Legend):
                _draw_legend(draw, tile, left, top + strips[r], tw, th)
                continue
            rgb = _as_rgb_uint8(tile)[..., :3]
            if rgb.shape[:2] != (h, w):
                raise ShapeError(f"Tile {caption!r} is {rgb.shape[:2]}; every tile of a panel is {(h, w)}.")
            canvas.paste(Image.fromarray(upscale(rgb, scale)), (left, top + strips[r]))
        top += th + strips[r] + gap
    return np.asarray(canvas)


def legend_html(entries: Sequence[tuple[str, str]]) -> str:
    """Colour swatches with names, as an HTML snippet (for widgets and static reports).

    Parameters
    ----------
    entries : sequence of (str, str)
        ``(name, '#rrggbb')``, e.g. :func:`mdc_widgets.viz.colors.label_legend`.

    Returns
    -------
    str
        A ``<div>`` with one swatch per entry; names and colours are HTML-escaped.

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


def _percent(fraction: float) -> str:
    """A pixel fraction as a percentage with one significant decimal below 1 %."""
    return f"{fraction:.1%}" if 0 < fraction < 0.01 else f"{fraction:.0%}"


def disagreement_caption(view: dict) -> str:
    """The caption of a disagreement tile: the pair, then the ``d`` used for ranking beside the pixel fraction.

    Parameters
    ----------
    view : dict
        One entry of :func:`mdc_widgets.views.sample.disagreement_views` (``kind``, ``fraction``;
        ``model_a``, ``model_b`` and ``d`` where known).

    Returns
    -------
    str
        Two lines; the ``d`` part is left out when ``d`` is None or not finite.

    Examples
    --------
    >>> disagreement_caption({"kind": "cross", "model_a": "unet_ss", "model_b": "vst_sod", "d": 0.75, "fraction": 0.012})
    'cross: unet_ss vs vst_sod\\nd_cross 0.75, 1% of px'
    """
    kind = view["kind"]
    pair = f"{kind}: {view['model_a']} vs {view['model_b']}" if "model_a" in view else str(kind)
    d = view.get("d")
    ranked = f"d_{kind} {d:.2f}, " if d is not None and np.isfinite(d) else ""
    return f"{pair}\n{ranked}{_percent(float(view['fraction']))} of px"


def row_legend(detail: dict) -> Legend:
    """The legend of one sample's row: the classes painted in it (GT and SS predictions) and the heat bar.

    Class 0 (background) is never painted, so it is not listed; the heat bar
    is there when a saliency map or a disagreement map is shown.

    Parameters
    ----------
    detail : dict
        :meth:`mdc_widgets.session.Session.sample_detail`'s dict.

    Returns
    -------
    Legend
        The classes in first-seen order, and a ``"saliency, disagreement"`` bar where needed.
    """
    entries: dict[str, str] = {}
    views = list((detail.get("ground_truth") or {}).values()) + list(detail["predictions"].values())
    heat = bool(detail.get("disagreement"))
    for view in views:
        if not isinstance(view, dict) or "legend" not in view:
            continue
        if view.get("task") == "sod" or view is (detail.get("ground_truth") or {}).get("saliency"):
            heat = True
            continue
        for name, colour in view["legend"]:
            if colour != "#000000":  # class 0: left unpainted, the grey scene shows through
                entries.setdefault(name, colour)
    return Legend(tuple(entries.items()), "saliency, disagreement" if heat else "")


def detail_row(
    detail: dict,
    rank: int | None = None,
    disagreement: bool = True,
    legend: bool = True,
    neutral: bool = True,
) -> list[tuple[str, np.ndarray | Legend]]:
    """The tiles of one sample for a static panel: image, ground truth, each prediction, disagreements, legend.

    Parameters
    ----------
    detail : dict
        :meth:`mdc_widgets.session.Session.sample_detail`'s dict.
    rank : int, optional
        The sample's rank in the table the caller shows (``ranked_table``'s
        ``rank``); default the rank in ``detail["scores"]``.
    disagreement : bool, optional
        Add a tile per compared pair, captioned with the pair, its ``d`` and
        the fraction of pixels that differ (:func:`disagreement_caption`).
    legend : bool, optional
        End the row with a :class:`Legend` of its colours (:func:`row_legend`).
    neutral : bool, optional
        Draw ground truth and predictions on the dim grey scene
        (:func:`mdc_widgets.viz.colors.map_on_neutral`) instead of the image's overlay.

    Examples
    --------
    >>> tile = np.zeros((2, 2, 3), np.uint8)
    >>> detail = {"sample": "s7", "image": tile, "predictions": {}, "disagreement": {}}
    >>> [caption for caption, _ in detail_row(detail, rank=4, legend=False)]
    ['rank 4: s7']
    """
    from mdc_widgets.viz.colors import map_on_neutral

    if rank is None:
        rank = (detail.get("scores") or {}).get("rank")
    tiles: list[tuple[str, np.ndarray | Legend]] = [
        (f"rank {rank}: {detail['sample']}" if rank is not None else str(detail["sample"]), detail["image"])
    ]

    def picture(view: dict, task: str | None) -> np.ndarray:
        if neutral and "map" in view and task is not None:
            return map_on_neutral(detail["image"], view["map"], task)
        return view["overlay"]

    gt = detail.get("ground_truth") or {}
    for name, task in (("semantic", "ss"), ("saliency", "sod")):
        if name in gt:
            tiles.append((f"GT {name}", picture(gt[name], task)))
    tiles += [(model, picture(view, view.get("task"))) for model, view in detail["predictions"].items()]
    if disagreement:
        tiles += [(disagreement_caption(d), d["overlay"]) for d in detail["disagreement"].values()]
    if legend:
        tiles.append(("legend", row_legend(detail)))
    return tiles
