"""Figures of the paper experiment: the score table as a plotly chart, mined samples as a PNG panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["paper_table_figure", "sample_panel", "save_mined_samples_png"]


def paper_table_figure(table: pd.DataFrame) -> Any:
    """Grouped bars: each model's score on each set, with 95% CI over seeds as error bars."""
    import plotly.graph_objects as go

    from mdc_widgets.experiments.paper import SET_LABELS, SET_NAMES

    fig = go.Figure()
    for set_name in SET_NAMES:
        rows = table[table["set"] == set_name]
        if rows.empty:
            continue
        err_plus = (rows["ci_high"] - rows["mean"]).fillna(0)
        err_minus = (rows["mean"] - rows["ci_low"]).fillna(0)
        fig.add_bar(
            name=SET_LABELS[set_name], x=rows["model"] + " (" + rows["metric"] + ")", y=rows["mean"],
            error_y={"type": "data", "array": err_plus, "arrayminus": err_minus},
        )
    fig.update_layout(barmode="group", yaxis_title="score on the set (higher is better)",
                      title="Each model on the joint, single-task and random sets", height=420)
    return fig


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(gray, np.uint8)[..., None], 3, axis=-1)


def sample_panel(
    image: np.ndarray,
    columns: Sequence[tuple[str, np.ndarray]],
    scale: int = 2,
) -> np.ndarray:
    """One row of tiles (the image, then each named RGB/grey map), upscaled, with captions.

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
    result: dict[str, Any], config: Any, path: str | Path, n: int = 6, set_name: str = "joint",
) -> Path:
    """Render the first ``n`` images of the first seed's ``set_name`` set with GT and every prediction."""
    from PIL import Image

    from mdc_widgets.config import cache_dir
    from mdc_widgets.data import open_pool
    from mdc_widgets.explain import colorize_labels
    from mdc_widgets.predictions import open_predictions

    seed = next(iter(result["sets"]))
    ids = result["sets"][seed][set_name][:n]
    pool = open_pool(config.pool, n=config.pool_size, seed=seed)
    store = Path(config.store or cache_dir() / "stores") / pool.fingerprint
    preds = open_predictions(store).sel(sample=ids).load()
    gt = pool.ground_truth().sel(sample=ids)
    index = {s: i for i, s in enumerate(pool.sample_ids)}
    rows = []
    for sid in ids:
        i = index[sid]
        image = pool.read_images(i, i + 1)[0][0]
        columns = [("GT semantic", colorize_labels(gt["semantic"].sel(sample=sid).values)),
                   ("GT saliency", gt["saliency"].sel(sample=sid).values)]
        for model in preds["model"].values:
            pred = preds["prediction"].sel(sample=sid, model=model).values
            task = str(preds["task"].sel(model=model).values)
            columns.append((str(model).removeprefix("mw_"), colorize_labels(pred) if task == "ss" else pred))
        rows.append(sample_panel(image, columns, scale=2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return path
