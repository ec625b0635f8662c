"""One headless mining job: a pool, its competitors and a competition in; a ranked table and a summary out.

``python -m mdc_widgets mine`` is a thin shell over :func:`run_mining_job`, so
a script or a notebook gets the same files:

- ``OUT/ranked.csv``: one row per pool image, best first (``sample_id``,
  ``rank``, ``selected`` with exactly ``k`` ones, ``score``, the
  rank-normalised ``term_*`` and raw ``d_*`` of each term);
- ``OUT/summary.json``: parameters, models, pool fingerprint, timings;
- ``OUT/evaluation.csv`` (when the pool has ground truth): each model's
  metrics at native resolution on the selected set and on the whole pool;
- ``OUT/store/``: the resumable prediction store (a rerun reuses it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mdc_widgets._atomic import atomic_write_text
from mdc_widgets.errors import MdcError
from mdc_widgets.mining.mad import mine
from mdc_widgets.mining.score import CompetitionGroup, Weights
from mdc_widgets.mining.selection import Constraints

__all__ = ["COMPETITIONS", "RANKED_COLUMNS", "competition_group", "evaluation_table", "ranked_table", "run_mining_job"]

# which terms each competition weighs: single-task MAD, the cross-task term alone, or all together
COMPETITIONS: dict[str, Weights] = {
    "ss": Weights(ss=1, sod=0, cross=0),
    "sod": Weights(ss=0, sod=1, cross=0),
    "cross": Weights(ss=0, sod=0, cross=1),
    "joint": Weights(ss=1, sod=1, cross=1),
}


def competition_group(competition: str, ss: Sequence[str], sod: Sequence[str]) -> tuple[CompetitionGroup, Weights]:
    """The group and weights of a named competition over the given SS and SOD models.

    Parameters
    ----------
    competition : {"ss", "sod", "cross", "joint"}
        The competition's name (a key of :data:`COMPETITIONS`).
    ss : sequence of str
        The SS models available; ``"sod"`` leaves them out.
    sod : sequence of str
        The SOD models available; ``"ss"`` leaves them out.

    Returns
    -------
    group : CompetitionGroup
        The competitors.
    weights : Weights
        The competition's weights.

    Raises
    ------
    MdcError
        An unknown competition, or too few models for it (``"ss"``: 2 SS,
        ``"sod"``: 2 SOD, ``"cross"``: 1 of each, ``"joint"``: 2 of each).

    Examples
    --------
    >>> group, weights = competition_group("sod", ["a", "b"], ["p", "q", "r"])
    >>> group.sod, weights.sod, len(group.intra_pairs("sod"))
    (('p', 'q', 'r'), 1, 3)
    """
    if competition not in COMPETITIONS:
        raise MdcError(f"Unknown competition {competition!r}; use one of {', '.join(COMPETITIONS)}.")
    need = {"ss": (2, 0), "sod": (0, 2), "cross": (1, 1), "joint": (2, 2)}[competition]
    if len(ss) < need[0] or len(sod) < need[1]:
        raise MdcError(
            f"The {competition!r} competition needs at least {need[0]} SS and {need[1]} SOD models; "
            f"got SS {list(ss)} and SOD {list(sod)}."
        )
    group = CompetitionGroup(
        ss=tuple(ss) if competition != "sod" else (), sod=tuple(sod) if competition != "ss" else ()
    )
    return group, COMPETITIONS[competition]


# the columns of ranked.csv after ``sample_id``, in order (the last three only where the result has them)
RANKED_COLUMNS = (
    "rank",
    "selected",
    "score",
    "term_ss",
    "term_sod",
    "term_cross",
    "d_ss",
    "d_sod",
    "d_cross",
    "foreground_area",
    "degenerate",
    "defender",
    "class",
)


def ranked_table(result: Any) -> pd.DataFrame:
    """Every pool image of a mining result, best first: selected ones in selection order, then by score.

    Parameters
    ----------
    result : xarray.Dataset
        A mining result (:func:`mdc_widgets.mining.mine`).

    Returns
    -------
    pandas.DataFrame
        The columns ``sample_id`` and :data:`RANKED_COLUMNS` (``degenerate``,
        ``defender`` and ``class`` only where the result has them); a term the
        competition lacks is NaN.
    """
    frame = pd.DataFrame({"sample_id": [str(s) for s in result["sample"].values]})
    rank = result["selection_rank"].values
    score = result["score"].values
    frame["selected"] = (rank >= 0).astype(int)
    frame["score"] = score
    for term in ("ss", "sod", "cross"):
        # a term the competition does not have is empty (NaN), not a zero that reads like agreement
        absent = np.isnan(result[f"d_{term}"].values)
        frame[f"term_{term}"] = np.where(absent, np.nan, result[f"term_{term}"].values)
    for term in ("ss", "sod", "cross"):
        frame[f"d_{term}"] = result[f"d_{term}"].values
    frame["foreground_area"] = result["foreground_area"].values
    for name, column in (("degenerate", "degenerate"), ("pick_defender", "defender"), ("pick_class", "class")):
        if name in result:
            frame[column] = result[name].values.astype(int) if name == "degenerate" else result[name].values
    order = np.lexsort(
        (np.arange(len(frame)), -np.nan_to_num(score, nan=-np.inf), np.where(rank >= 0, rank, np.iinfo(np.int64).max))
    )
    frame = frame.iloc[order].reset_index(drop=True)
    frame.insert(1, "rank", np.arange(1, len(frame) + 1))
    return frame


def evaluation_table(evaluation: Any, selected: Sequence[str]) -> pd.DataFrame:
    """Each model's set-level metrics on the selected images and on the whole pool, one row per (model, set).

    Parameters
    ----------
    evaluation : xarray.Dataset
        Per-image metrics (:func:`mdc_widgets.metrics.evaluate`).
    selected : sequence of str
        The selected sample ids.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``set`` (``"selected"`` or ``"pool"``), ``n_images``,
        ``task`` and one per metric (None where it does not apply).
    """
    from mdc_widgets.metrics import summarize

    rows = []
    for subset, samples in (("selected", list(selected)), ("pool", None)):
        summary = summarize(evaluation, samples)
        for model in summary["model"].values:
            row = {
                "model": str(model),
                "set": subset,
                "n_images": summary.attrs["n_images"],
                "task": str(summary["task"].sel(model=model).values),
            }
            for metric in ("miou", "fbeta_max", "fbeta_adaptive", "mae", "s_measure"):
                value = float(summary[metric].sel(model=model).values)
                row[metric] = None if np.isnan(value) else round(value, 6)
            rows.append(row)
    return pd.DataFrame(rows)


def run_mining_job(
    pool: Any,
    models: Sequence[Any],
    competition: str,
    k: int,
    out: str | Path,
    *,
    constraints: Constraints = Constraints(),
    weights: Weights | None = None,
    batch_size: int = 16,
    device: str = "auto",
    progress: bool = True,
    evaluate: bool = True,
    parameters: dict[str, Any] | None = None,
    protocol: str = "mdc",
    fusion: str = "rank",
) -> dict[str, Any]:
    """Predict (or reuse), mine and write ``ranked.csv``, ``summary.json`` and ``evaluation.csv`` into ``out``.

    Parameters
    ----------
    pool : object
        A Pool (see :func:`mdc_widgets.data.open_pool`).
    models : sequence of object
        Competitors (networks or released maps); each task's term
        averages all pairs of that task's models.
    competition : str
        ``"ss"``, ``"sod"``, ``"cross"`` or ``"joint"``.
    k : int
        How many images to select (1 to the pool size).
    out : str or pathlib.Path
        Output folder; its ``store/`` keeps predictions between runs.
    constraints : Constraints, optional
        Diversity constraints, as for :func:`mdc_widgets.mining.mine`.
    weights : Weights or None, optional
        The terms' weights; None: the competition's (:data:`COMPETITIONS`).
    batch_size : int, optional
        Images per forward pass when predicting.
    device : str, optional
        Where the networks run (``"auto"``: CUDA when present).
    progress : bool, optional
        Show a progress bar while predicting.
    evaluate : bool, optional
        Write ``evaluation.csv`` when the pool has ground truth.
    parameters : dict of {str: object} or None, optional
        Recorded as given in ``summary.json`` (e.g. the command line).
    protocol : {"mdc", "ijcv2021"}, optional
        As for :func:`mdc_widgets.mining.mine`; ``"ijcv2021"`` needs an
        ``"ss"`` or ``"sod"`` competition of two models and may select fewer
        than ``k``.
    fusion : {"rank", "raw", "minmax"}, optional
        How the joint score puts pairs on one scale, as for
        :func:`mdc_widgets.mining.mine`.

    Returns
    -------
    dict
        The summary that was written to ``summary.json``.

    Raises
    ------
    MdcError
        ``k`` is outside 1 to the pool size (and as :func:`competition_group`
        for an unknown competition or too few models).
    """
    from mdc_widgets.predictions import RunOptions, predict_pool

    if not 1 <= int(k) <= len(pool):
        raise MdcError(f"k must be between 1 and the pool size ({len(pool)}); got {k}.")
    ss = [m.name for m in models if m.task == "ss"]
    sod = [m.name for m in models if m.task == "sod"]
    group, default_weights = competition_group(competition, ss, sod)
    weights = weights or default_weights
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    used = [m for m in models if m.name in group.models]
    predictions = predict_pool(
        pool, used, out / "store", RunOptions(batch_size=batch_size), device=device, progress=progress
    )
    timings["predict_s"] = time.perf_counter() - start

    start = time.perf_counter()
    key = f"{competition}__k{int(k)}" + ("" if (protocol, fusion) == ("mdc", "rank") else f"__{protocol}-{fusion}")
    result = mine(
        predictions, group, weights, int(k), constraints, pool=pool, key=key, protocol=protocol, fusion=fusion
    )
    timings["mine_s"] = time.perf_counter() - start
    table = ranked_table(result)
    n_selected = int(table["selected"].sum())
    atomic_write_text(out / "ranked.csv", table.to_csv(index=False))

    files = {"ranked": str(out / "ranked.csv")}
    if evaluate and pool.has_ground_truth:
        from mdc_widgets.metrics import evaluate_native

        start = time.perf_counter()
        evaluation = evaluate_native(predictions, pool, progress=progress)
        selected = table.loc[table["selected"] == 1, "sample_id"].tolist()
        selected = [s for s in selected if s in set(evaluation["sample"].values)]
        atomic_write_text(out / "evaluation.csv", evaluation_table(evaluation, selected).to_csv(index=False))
        timings["evaluate_s"] = time.perf_counter() - start
        files["evaluation"] = str(out / "evaluation.csv")

    summary = {
        "parameters": parameters or {},
        "competition": competition,
        "result_key": key,
        "protocol": protocol,
        "fusion": fusion,
        "k": int(k),
        "selected": n_selected,
        "weights": weights.as_dict(),
        "constraints": constraints.as_dict(),
        "constraint_report": json.loads(result.attrs.get("report", "{}")),
        "models": {
            m.name: {
                "task": m.task,
                "kind": "maps" if hasattr(m, "predict_samples") else "network",
                "description": getattr(m, "description", ""),
            }
            for m in used
        },
        "pool": {
            "name": pool.name,
            "n_images": len(pool),
            "fingerprint": pool.fingerprint,
            "image_size": list(pool.image_size),
            "fit": getattr(pool, "fit", "stretch"),
            "skipped": dict(pool.errors),
        },
        "skipped_by_models": {m.name: dict(m.errors) for m in used if getattr(m, "errors", None)},
        "timings": {key: round(value, 3) for key, value in timings.items()},
        "files": files,
    }
    if n_selected < int(k):
        summary["warning"] = (
            f"only {n_selected} of k={k} images passed the diversity constraints; "
            "loosen them (area bounds, near-duplicate threshold, class quota)"
            if protocol == "mdc"
            else f"the {protocol} protocol selected {n_selected} of k={k} images (N per class "
            f"per defender = {result.attrs.get('n_per_class')}); raise k for more"
        )
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary
