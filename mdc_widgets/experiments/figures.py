"""Figures of the paper experiment: the score table as a plotly chart, mined samples as a PNG panel."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "paper_table_figure",
    "real_sets_figure",
    "recovery_figure",
    "sample_panel",
    "save_mined_samples_png",
    "save_real_samples_png",
]


def paper_table_figure(table: pd.DataFrame, protocol: str = "ijcv2021") -> Any:
    """Grouped bars: each model's score on each set, with 95% CI over seeds as error bars.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`~mdc_widgets.experiments.paper_tables.summarize_paper_experiment`'s table
        (``model``, ``set``, ``mean``, ``ci_low``, ``ci_high``).
    protocol : str, optional
        ``"ijcv2021"`` or ``"mdc"``: the rule that mined the single-task sets (their legend).

    Returns
    -------
    plotly.graph_objects.Figure
        One bar group per model, one bar per set.
    """
    import plotly.graph_objects as go

    from mdc_widgets.experiments.paper import SET_NAMES, set_labels

    labels = set_labels(protocol)

    fig = go.Figure()
    for set_name in SET_NAMES:
        rows = table[table["set"] == set_name]
        if rows.empty:
            continue
        err_plus = (rows["ci_high"] - rows["mean"]).fillna(0)
        err_minus = (rows["mean"] - rows["ci_low"]).fillna(0)
        fig.add_bar(
            name=labels[set_name],
            x=rows["model"] + " (" + rows["metric"] + ")",
            y=rows["mean"],
            error_y={"type": "data", "array": err_plus, "arrayminus": err_minus},
        )
    fig.update_layout(
        barmode="group",
        yaxis_title="score on the set (higher is better)",
        title="Each model on the joint, single-task and random sets",
        height=420,
    )
    return fig


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(gray, np.uint8)[..., None], 3, axis=-1)


def sample_panel(
    image: np.ndarray,
    columns: Sequence[tuple[str, np.ndarray]],
    scale: int = 2,
) -> np.ndarray:
    """One row of tiles (the image, then each named RGB/grey map), upscaled, with captions.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` RGB uint8, the first tile.
    columns : sequence of (str, numpy.ndarray)
        ``(caption, map)``: ``(H, W, 3)`` RGB or ``(H, W)`` grey uint8, the size of ``image``.
    scale : int, optional
        Nearest-neighbour enlargement of every tile.

    Returns
    -------
    numpy.ndarray
        ``(height, width, 3)`` uint8.

    Examples
    --------
    >>> img = np.zeros((8, 8, 3), np.uint8)
    >>> sample_panel(img, [("zeros", np.zeros((8, 8), np.uint8))], scale=4).shape
    (46, 64, 3)
    """
    from PIL import Image, ImageDraw

    tiles = [("image", image)] + list(columns)
    h, w = image.shape[:2]
    caption = 14
    out = Image.new("RGB", (len(tiles) * w * scale, h * scale + caption), "white")
    draw = ImageDraw.Draw(out)
    for i, (name, tile) in enumerate(tiles):
        tile = tile if tile.ndim == 3 else _rgb(tile)
        big = Image.fromarray(tile).resize((w * scale, h * scale), Image.NEAREST)
        out.paste(big, (i * w * scale, caption))
        draw.text((i * w * scale + 2, 1), name[: max(4, w * scale // 6)], fill="black")
    return np.asarray(out)


def save_mined_samples_png(
    result: dict[str, Any],
    config: Any,
    path: str | Path,
    n: int = 6,
    set_name: str = "joint",
) -> Path:
    """Render the first ``n`` images of the first seed's ``set_name`` set with GT and every prediction.

    The sets list their ids best first (interleaved over their groups), so
    these are the set's top images.

    Parameters
    ----------
    result : dict of {str: object}
        :func:`~mdc_widgets.experiments.paper.run_paper_experiment`'s dict (``sets``, ``stores``).
    config : PaperConfig
        The run's configuration (pool name, size, store folder).
    path : str or pathlib.Path
        The PNG file.
    n : int, optional
        Rows (images) drawn.
    set_name : str, optional
        ``"joint"``, ``"ss_only"``, ``"sod_only"`` or ``"random"``.

    Returns
    -------
    pathlib.Path
        ``path``, written as PNG (its folder created).
    """
    from PIL import Image

    from mdc_widgets.config import cache_dir
    from mdc_widgets.data import open_pool
    from mdc_widgets.explain import colorize_labels
    from mdc_widgets.predictions import open_predictions

    seed = next(iter(result["sets"]))
    ids = result["sets"][seed][set_name][:n]
    pool = open_pool(config.pool, n=config.pool_size, seed=seed)
    stores = result.get("stores") or {}
    store = Path(stores[seed]) if seed in stores else Path(config.store or cache_dir() / "stores") / pool.fingerprint
    preds = open_predictions(store).sel(sample=ids).load()
    gt = pool.ground_truth().sel(sample=ids)
    index = {s: i for i, s in enumerate(pool.sample_ids)}
    rows = []
    for sid in ids:
        i = index[sid]
        image = pool.read_images(i, i + 1)[0][0]
        columns = [
            ("GT semantic", colorize_labels(gt["semantic"].sel(sample=sid).values)),
            ("GT saliency", gt["saliency"].sel(sample=sid).values),
        ]
        for model in preds["model"].values:
            pred = preds["prediction"].sel(sample=sid, model=model).values
            task = str(preds["task"].sel(model=model).values)
            columns.append((str(model).removeprefix("mw_"), colorize_labels(pred) if task == "ss" else pred))
        rows.append(sample_panel(image, columns, scale=2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path


def real_sets_figure(set_table: pd.DataFrame, metric: str = "fbeta_max") -> Any:
    """Each published method's ``metric`` on each set: bars with 95 % intervals (bootstrap; random: range of draws).

    Parameters
    ----------
    set_table : pandas.DataFrame
        :func:`~mdc_widgets.experiments.real_photos.set_table`'s table (``metric``, ``set``,
        ``model``, ``value``, ``ci_low``, ``ci_high``).
    metric : str, optional
        The metric shown (``"mae"`` reads lower is better).

    Returns
    -------
    plotly.graph_objects.Figure
        Grouped bars, one group per model.
    """
    import plotly.graph_objects as go

    from mdc_widgets.experiments.real_photos import SET_LABELS, SET_ORDER

    rows = set_table[set_table["metric"] == metric]
    fig = go.Figure()
    for set_name in SET_ORDER:
        part = rows[rows["set"] == set_name]
        if part.empty:
            continue
        fig.add_bar(
            name=SET_LABELS[set_name],
            x=part["model"],
            y=part["value"],
            error_y={
                "type": "data",
                "array": (part["ci_high"] - part["value"]).clip(lower=0),
                "arrayminus": (part["value"] - part["ci_low"]).clip(lower=0),
            },
        )
    better = "lower is better" if metric == "mae" else "higher is better"
    fig.update_layout(
        barmode="group",
        height=400,
        yaxis_title=f"{metric} on the set ({better})",
        title=f"{metric} of each model on the mined and random sets",
        legend_title_text="set",
    )
    return fig


def recovery_figure(recovery: pd.DataFrame) -> Any:
    """Whether MAD's labels recover the full-pool order (0/1), and how often random labels do, against labels spent.

    Parameters
    ----------
    recovery : pandas.DataFrame
        :func:`~mdc_widgets.experiments.real_photos.labels_to_recover`'s table (``labels``,
        ``mad_recovers``, ``random_recovers``), averaged per ``labels``.

    Returns
    -------
    plotly.graph_objects.Figure
        Two lines, MAD and random.
    """
    import plotly.graph_objects as go

    mean = recovery.groupby("labels", as_index=False).agg(
        mad=("mad_recovers", "mean"), random=("random_recovers", "mean")
    )
    fig = go.Figure()
    fig.add_scatter(x=mean["labels"], y=mean["mad"], mode="lines+markers", name="MAD (top-n per pair)")
    fig.add_scatter(x=mean["labels"], y=mean["random"], mode="lines+markers", name="random (n per pair)")
    fig.update_layout(
        height=360,
        xaxis_title="labels spent (images judged, all pairs)",
        yaxis_title="full-pool order recovered (fraction)",
        yaxis_range=[-0.05, 1.05],
        title="Ranking the published methods from few labels",
    )
    return fig


def save_real_samples_png(
    result: dict[str, Any], path: str | Path, n: int = 4, set_name: str = "joint", height: int = 160
) -> Path:
    """The first ``n`` images of a mined set at their own aspect ratio: photo, ground truth and every map.

    Released maps are shown as published (full resolution), network maps as
    stored, cropped from the letterbox and resized back.

    Parameters
    ----------
    result : dict of {str: object}
        :func:`~mdc_widgets.experiments.real_photos.run_real_photos`'s dict (``pool``,
        ``predictions``, ``sets``).
    path : str or pathlib.Path
        The PNG file.
    n : int, optional
        Rows (images) drawn.
    set_name : str, optional
        The mined set (a key of ``result["sets"]``).
    height : int, optional
        Height of every tile in pixels; widths follow each photo's aspect ratio.

    Returns
    -------
    pathlib.Path
        ``path``, written as PNG (its folder created).
    """
    from PIL import Image

    from mdc_widgets.data.io import decode_image, resize_image, resize_mask
    from mdc_widgets.explain import colorize_labels
    from mdc_widgets.metrics import map_at_native_size
    from mdc_widgets.models.released_maps import pool_stems, released_competitors

    pool, predictions = result["pool"], result["predictions"]
    released = released_competitors(predictions)
    stems = pool_stems(pool)
    rows = []
    for sid in result["sets"][set_name][:n]:
        i = pool.index_of(sid)
        native = pool.native_size(i)
        size = (height, max(1, round(height * native[1] / native[0])))
        columns = [("photo", resize_image(decode_image(pool.paths[i]), size))]
        truth = pool.native_ground_truth(i)
        if "saliency" in truth:
            columns.append(("ground truth", resize_mask(truth["saliency"], size)))
        for model in predictions["model"].values:
            model = str(model)
            if model.endswith("-random"):
                continue
            task = str(predictions["task"].sel(model=model).values)
            stored = np.asarray(predictions["prediction"].sel(sample=sid, model=model).values)
            values = resize_mask(
                map_at_native_size(stored, task, native, pool.fit, released.get(model), stems[i]), size
            )
            columns.append(
                (model.split("_s")[0] if task == "ss" else model, colorize_labels(values) if task == "ss" else values)
            )
        rows.append(sample_panel(columns[0][1], columns[1:], scale=1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path
