"""What the detail view shows about one sample, as functions of explicit inputs (no session).

``Session.sample_detail`` gathers the inputs (the predictions, the image, the
result, the ground truth, the verdicts) and calls :func:`sample_detail`; the
browser, the label panel and the static panels draw its dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.data import Pool
from mdc_widgets.labeling import LabelStore
from mdc_widgets.mining import CompetitionGroup, group_of, group_pairs
from mdc_widgets.viz.colors import label_legend, overlay_labels, overlay_map, overlay_saliency, saliency_legend
from mdc_widgets.viz.images import disagreement_map

__all__ = [
    "accepted_mask",
    "at_native_aspect",
    "compared_pairs",
    "detail_models",
    "disagreement_views",
    "ground_truth_view",
    "pair_discrepancies",
    "prediction_view",
    "sample_detail",
    "sample_metrics",
    "sample_scores",
]


def prediction_view(image: np.ndarray, prediction: np.ndarray, task: str, classes: Sequence[str]) -> dict[str, Any]:
    """One map over its image: ``{task, map, overlay, legend}``.

    The legend lists ``(class name, '#rrggbb')`` of the classes present (SS)
    or the two ends of the saliency scale (SOD).

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB.
    prediction : numpy.ndarray
        ``(H, W)`` uint8: class indices (SS) or saliency 0-255 (SOD).
    task : str
        ``"ss"`` or ``"sod"``.
    classes : sequence of str
        The model's class names (SS; unused for SOD).

    Returns
    -------
    dict of {str: object}
        ``task``, ``map`` (the prediction), ``overlay`` (``(H, W, 3)`` uint8) and ``legend``.

    Examples
    --------
    >>> view = prediction_view(np.zeros((2, 2, 3), np.uint8), np.array([[0, 1], [1, 1]], np.uint8), "ss", ["bg", "cat"])
    >>> view["legend"], view["overlay"][0, 1].tolist()
    ([('bg', '#000000'), ('cat', '#800000')], [70, 0, 0])
    """
    legend = label_legend(list(classes), present=np.unique(prediction)) if task == "ss" else saliency_legend()
    return {"task": task, "map": prediction, "overlay": overlay_map(image, prediction, task), "legend": legend}


def accepted_mask(prediction: np.ndarray, task: str) -> np.ndarray:
    """The mask a verdict keeps of a prediction: SS the label map, SOD the adaptively binarised saliency (0/255).

    Parameters
    ----------
    prediction : numpy.ndarray
        ``(H, W)`` uint8 label map or saliency map.
    task : str
        ``"ss"`` or ``"sod"``; anything but ``"sod"`` returns ``prediction`` unchanged.

    Returns
    -------
    numpy.ndarray
        ``(H, W)``: the label map, or uint8 0/255 for SOD.

    Examples
    --------
    >>> accepted_mask(np.array([[0, 40, 250]], np.uint8), "sod").tolist()
    [[0, 0, 255]]
    """
    if task != "sod":
        return prediction
    from mdc_widgets.discrepancy import binarize_saliency  # torch: when a mask is first accepted

    return np.asarray(binarize_saliency(np.asarray(prediction)[None]))[0].astype(np.uint8) * 255


def detail_models(predictions: xr.Dataset, result: xr.Dataset | None) -> list[str]:
    """The models a detail shows by default: the result's group, else every predicted model.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``open_predictions`` of the pool (``model`` dim).
    result : xarray.Dataset or None
        A mining result, whose competition group is used; None for every model.

    Returns
    -------
    list of str
        Model names in group or predictions order.
    """
    if result is not None:
        return list(group_of(result).models)
    return [str(m) for m in predictions["model"].values]


def compared_pairs(
    models: Sequence[str], tasks: Mapping[str, str], group: CompetitionGroup | None = None
) -> list[tuple[str, str, str]]:
    """The pairs a detail compares, ``(model_a, model_b, kind)``.

    The group's pairs when every model of the group is shown, else every pair
    of the shown models (a cross pair always (SS, SOD)).

    Parameters
    ----------
    models : sequence of str
        The shown models.
    tasks : mapping of {str: str}
        Each model's task, ``"ss"`` or ``"sod"``.
    group : CompetitionGroup or None, optional
        A result's competition group; its pairs win when all its models are shown.

    Returns
    -------
    list of (str, str, str)
        ``kind`` is ``"ss"``, ``"sod"`` or ``"cross"``.

    Examples
    --------
    >>> compared_pairs(["p", "a"], {"p": "sod", "a": "ss"})
    [('a', 'p', 'cross')]
    """
    if group is not None and set(group.models) <= set(models):
        return group_pairs(group)
    pairs = []
    for a, b in combinations(models, 2):
        kind = tasks[a] if tasks[a] == tasks[b] else "cross"
        pairs.append((b, a, kind) if kind == "cross" and tasks[a] == "sod" else (a, b, kind))
    return pairs


def disagreement_views(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str, str]],
    discrepancies: Mapping[tuple[str, str], float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Where each pair disagrees: ``{"a|b": {model_a, model_b, kind, map in [0, 1], overlay, fraction, d}}``.

    SS: labels differ; SOD: ``|s - t|``; cross: SS foreground xor binarised
    saliency (:func:`mdc_widgets.viz.disagreement_map`). ``fraction`` is the
    share of pixels that differ; ``d`` the pair's discrepancy used for
    ranking (``discrepancies[(a, b)]``, :func:`pair_discrepancies`), or None.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB under the overlays.
    maps : mapping of {str: numpy.ndarray}
        Each model's ``(H, W)`` prediction.
    pairs : sequence of (str, str, str)
        ``(model_a, model_b, kind)`` (:func:`compared_pairs`).
    discrepancies : mapping of {(str, str): float} or None, optional
        Each pair's ranking discrepancy, looked up in either order; missing pairs get ``d=None``.

    Returns
    -------
    dict of {str: dict}
        One view per pair, keyed ``"a|b"``.
    """
    discrepancies = discrepancies or {}
    views = {}
    for a, b, kind in pairs:
        dmap = disagreement_map(maps[a], maps[b], kind)
        d = discrepancies.get((a, b), discrepancies.get((b, a)))
        views[f"{a}|{b}"] = {
            "model_a": a,
            "model_b": b,
            "kind": kind,
            "map": dmap,
            "overlay": overlay_saliency(image, dmap),
            "fraction": float(dmap.mean()),
            "d": None if d is None else float(d),
        }
    return views


def pair_discrepancies(
    predictions: xr.Dataset,
    index: int,
    pairs: Sequence[tuple[str, str, str]],
    sod_measure: str = "iou",
) -> dict[tuple[str, str], float]:
    """Each pair's discrepancy on one sample, as mining ranks it (``d_ss``, ``d_sod``, ``d_cross``).

    The same computation as :func:`mdc_widgets.discrepancy.compute_discrepancies`
    on the pool, restricted to this sample and the pairs' models.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``open_predictions`` of the pool.
    index : int
        The sample's position in the pool.
    pairs : sequence of (str, str, str)
        ``(model_a, model_b, kind)`` (:func:`compared_pairs`).
    sod_measure : str, optional
        ``"iou"`` or ``"mae"`` for SOD pairs (a result's ``attrs["sod_measure"]``).

    Returns
    -------
    dict of {(str, str): float}
        ``{(model_a, model_b): d}``; ``{}`` without pairs.
    """
    if not pairs:
        return {}
    from mdc_widgets.discrepancy import compute_discrepancies  # torch: when a detail is first drawn

    models = list(dict.fromkeys(m for a, b, _ in pairs for m in (a, b)))
    matrix = compute_discrepancies(
        predictions.isel(sample=[index]).sel(model=models), sod_measure=sod_measure, device="cpu"
    ).isel(sample=0)
    return {(a, b): float(matrix.sel(model_a=a, model_b=b)) for a, b, _ in pairs}


def sample_metrics(
    predictions: xr.Dataset, ground_truth: xr.Dataset, index: int, models: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Each model's ground-truth metrics on one sample (finite ones only); ``{}`` without saliency truth.

    SS models report ``miou, fbeta_max, mae``; SOD models ``fbeta_max, mae, s_measure``.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``open_predictions`` of the pool.
    ground_truth : xarray.Dataset
        ``semantic`` / ``saliency`` of the pool (``sample`` dim aligned with ``predictions``).
    index : int
        The sample's position in the pool.
    models : sequence of str
        The models to score.

    Returns
    -------
    dict of {str: dict}
        ``{model: {metric: value}}``, non-finite values left out.
    """
    from mdc_widgets.metrics import evaluate  # torch: imported when a detail with ground truth is first drawn

    if "saliency" not in ground_truth:
        return {}
    evaluation = evaluate(predictions.isel(sample=[index]).sel(model=list(models)), ground_truth.isel(sample=[index]))
    out = {}
    for model in models:
        row = evaluation.sel(model=model).isel(sample=0)
        ss = str(row["task"].values) == "ss"
        names = ("miou", "fbeta_max", "mae") if ss else ("fbeta_max", "mae", "s_measure")
        out[model] = {k: float(row[k].values) for k in names if np.isfinite(row[k].values)}
    return out


def ground_truth_view(
    image: np.ndarray, ground_truth: xr.Dataset, index: int, classes: Sequence[str] = ()
) -> dict[str, Any]:
    """The sample's ground truth over its image: ``semantic`` and/or ``saliency`` ``{map, overlay, legend}``.

    Parameters
    ----------
    image : numpy.ndarray
        ``(H, W, 3)`` uint8 RGB.
    ground_truth : xarray.Dataset
        ``semantic`` and/or ``saliency`` with a ``sample`` dim.
    index : int
        The sample's position in the pool.
    classes : sequence of str, optional
        Class names of ``semantic``; default ``ground_truth.attrs["classes"]``, else the indices.

    Returns
    -------
    dict of {str: dict}
        Only the keys present in ``ground_truth``.
    """
    view: dict[str, Any] = {}
    classes = list(classes or ground_truth.attrs.get("classes") or [])
    if "semantic" in ground_truth:
        semantic = np.asarray(ground_truth["semantic"].isel(sample=index).values)
        names = classes or [str(i) for i in range(int(semantic.max()) + 1)]
        view["semantic"] = {
            "map": semantic,
            "overlay": overlay_labels(image, semantic),
            "legend": label_legend(names, present=np.unique(semantic)),
        }
    if "saliency" in ground_truth:
        saliency = np.asarray(ground_truth["saliency"].isel(sample=index).values)
        view["saliency"] = prediction_view(image, saliency, "sod", [])
    return view


def sample_scores(result: xr.Dataset, index: int) -> dict[str, Any]:
    """One sample's row of a result (``dominant_class`` named ``pred_class``) and its ``rank`` (1 best).

    ``rank`` is the one of :func:`mdc_widgets.tables.ranked_table`: ties in
    pool order, so samples tied at the maximum do not all read rank 1.

    Parameters
    ----------
    result : xarray.Dataset
        A mining result with a ``score`` per sample.
    index : int
        The sample's position in the pool.

    Returns
    -------
    dict of {str: object}
        Every per-sample variable of the result, plus ``rank`` (None for a non-finite score).

    Examples
    --------
    >>> result = xr.Dataset({"score": ("sample", [0.2, 0.9, np.nan])})
    >>> sample_scores(result, 0), sample_scores(result, 2)["rank"]
    ({'score': 0.2, 'rank': 2}, None)
    """
    scores: dict[str, Any] = {}
    row = result.isel(sample=index)
    for name in result.data_vars:
        if result[name].dims == ("sample",):
            scores["pred_class" if name == "dominant_class" else name] = row[name].values.item()
    from mdc_widgets.tables import score_ranks

    score = scores.get("score")
    finite = score is not None and np.isfinite(score)
    scores["rank"] = int(score_ranks(result["score"].values)[index]) if finite else None
    return scores


def sample_detail(
    predictions: xr.Dataset,
    index: int,
    image: np.ndarray,
    *,
    models: Sequence[str] | None = None,
    result: xr.Dataset | None = None,
    ground_truth: xr.Dataset | None = None,
    metadata: pd.DataFrame | None = None,
    labels: LabelStore | None = None,
    pool: Pool | None = None,
    classes: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Everything the detail view shows about one sample.

    Parameters
    ----------
    predictions : xarray.Dataset
        ``open_predictions`` of the pool.
    index : int
        The sample's position in the pool.
    image : numpy.ndarray
        Its RGB image ``(H, W, 3)`` uint8 at the working size.
    models : sequence of str, optional
        The models to show (default :func:`detail_models`).
    result : xarray.Dataset, optional
        A mining result: its group's pairs, the sample's scores.
    ground_truth : xarray.Dataset, optional
        ``semantic`` / ``saliency`` of the pool.
    metadata : pandas.DataFrame, optional
        Per-sample metadata indexed by sample id.
    labels : LabelStore, optional
        The verdicts of the pairs.
    pool : Pool, optional
        For the sample's decoding error, the class names of the ground truth
        and the native aspect ratio (:func:`at_native_aspect`).
    classes : mapping of str to sequence of str, optional
        Each model's class names (default: the predictions' attrs).

    Returns
    -------
    dict
        ``sample``, ``index``, ``image`` (uint8 RGB), ``valid``, ``error``,
        ``models``; ``predictions`` ``{model: {task, map, overlay, legend}}``;
        ``disagreement`` (:func:`disagreement_views`, with each pair's ``d``
        from :func:`pair_discrepancies`); ``ground_truth``
        (overlays and legends, or None) with ``metrics`` per model;
        ``scores`` (:func:`sample_scores`); ``metadata``; ``labels`` (current
        verdicts of the pairs).
    """
    if classes is None:
        from mdc_widgets.predictions import model_classes

        classes = model_classes(predictions)
    sample_id = str(predictions["sample"].values[index])
    models = list(models) if models is not None else detail_models(predictions, result)
    maps = np.asarray(predictions["prediction"].isel(sample=index).sel(model=models).values)
    tasks = {m: str(predictions["task"].sel(model=m).values) for m in models}
    views = {m: prediction_view(image, maps[i], tasks[m], classes.get(m, [])) for i, m in enumerate(models)}
    pairs = compared_pairs(models, tasks, group_of(result) if result is not None else None)

    gt_view = None
    if ground_truth is not None:
        gt_view = ground_truth_view(image, ground_truth, index, getattr(pool, "classes", None) or ())
        gt_view["metrics"] = sample_metrics(predictions, ground_truth, index, models)
    found = [(a, b, labels.get(sample_id, a, b)) for a, b, _ in pairs] if labels is not None else []
    detail = {
        "sample": sample_id,
        "index": index,
        "image": image,
        "valid": bool(predictions["valid"].values[index]) if "valid" in predictions else True,
        "error": getattr(pool, "errors", {}).get(sample_id),
        "models": models,
        "predictions": views,
        "disagreement": disagreement_views(
            image,
            {m: v["map"] for m, v in views.items()},
            pairs,
            pair_discrepancies(
                predictions, index, pairs, (result.attrs if result is not None else {}).get("sod_measure", "iou")
            ),
        ),
        "ground_truth": gt_view,
        "scores": sample_scores(result, index) if result is not None else {},
        "metadata": (
            {k: (v.item() if hasattr(v, "item") else v) for k, v in metadata.loc[sample_id].items()}
            if metadata is not None and sample_id in metadata.index
            else {}
        ),
        "labels": {f"{a}|{b}": label.verdict for a, b, label in found if label is not None},
    }
    return at_native_aspect(detail, pool, index) if pool is not None else detail


def at_native_aspect(detail: dict[str, Any], pool: Pool, index: int) -> dict[str, Any]:
    """The detail's pictures cropped to the image's content (letterbox) and shown at its own aspect ratio.

    Images and overlays are resized bilinearly, maps (labels, saliency,
    disagreement) with nearest neighbour, so no value is invented. A detail
    already at the pool's canvas and aspect is returned as it is.

    Parameters
    ----------
    detail : dict of {str: object}
        A :func:`sample_detail` dict at the pool's working canvas.
    pool : Pool
        Gives the canvas, the fit and the sample's native size.
    index : int
        The sample's position in the pool.

    Returns
    -------
    dict of {str: object}
        A new dict (or ``detail`` itself when nothing changes); ``detail`` is not modified.
    """
    from mdc_widgets.data.io import content_box, resize_image, resize_mask

    canvas = tuple(int(s) for s in pool.image_size)
    native = pool.native_size(index) if hasattr(pool, "native_size") else canvas
    y0, y1, x0, x1 = content_box(native, canvas, getattr(pool, "fit", "stretch"))
    scale = max(canvas) / max(native)
    shown = (max(1, round(native[0] * scale)), max(1, round(native[1] * scale)))
    if (y0, y1, x0, x1) == (0, canvas[0], 0, canvas[1]) and shown == canvas:
        return detail

    def picture(array: np.ndarray) -> np.ndarray:
        return resize_image(np.ascontiguousarray(array[y0:y1, x0:x1]), shown)

    def values(array: np.ndarray) -> np.ndarray:
        crop = np.ascontiguousarray(array[y0:y1, x0:x1])
        if crop.dtype.kind == "f":  # PIL has no float nearest resize for every dtype: index instead
            rows = np.minimum((np.arange(shown[0]) * crop.shape[0] / shown[0]).astype(int), crop.shape[0] - 1)
            cols = np.minimum((np.arange(shown[1]) * crop.shape[1] / shown[1]).astype(int), crop.shape[1] - 1)
            return crop[rows][:, cols]
        return resize_mask(crop, shown)

    def view(entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "map": values(entry["map"]), "overlay": picture(entry["overlay"])}

    detail = dict(detail)
    detail["image"] = picture(detail["image"])
    detail["predictions"] = {m: view(v) for m, v in detail["predictions"].items()}
    detail["disagreement"] = {k: view(v) for k, v in detail["disagreement"].items()}
    if detail.get("ground_truth"):
        detail["ground_truth"] = {
            k: (view(v) if isinstance(v, dict) and "map" in v else v) for k, v in detail["ground_truth"].items()
        }
    return detail
