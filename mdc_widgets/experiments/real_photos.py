"""MAD on real photos: released maps of published SOD methods and real VOC segmenters on a labeled photo set.

The experiment behind notebook 08 (SOD-300 by default, any folder with
saliency masks works):

1. every competitor predicts the pool once: released maps are read, networks
   run at a letterboxed working size; every model is then scored at each
   photo's own size (:func:`mdc_widgets.metrics.evaluate_native`);
2. sets of equal size ``k`` are mined from the pool, without looking at the
   ground truth: SOD-only (the SOD term over all pairs of SOD competitors),
   cross-task (SS foreground vs saliency), joint (all terms), and many
   random sets;
3. the published methods' max F-beta, MAE and S-measure on each set, with
   bootstrap intervals over the set's images, and how often a random set is
   at least as hard;
4. ranking from few labels: verdicts simulated from the ground truth on the
   ``n`` images mined for each pair give a Bradley-Terry order, compared with
   the order on every labeled image; the same with ``n`` random images.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one experiment end to end (competitors, mining, native-size evaluation, label-budget ranking, report)).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, mine, selected_samples

__all__ = [
    "SET_ORDER",
    "RealPhotosConfig",
    "bootstrap_set_metrics",
    "findings",
    "labels_to_recover",
    "random_weight_twin",
    "real_photos_markdown",
    "run_real_photos",
    "set_comparison",
    "set_table",
    "standin_folders",
    "write_real_outputs",
]

# what each metric's "harder" means: a lower F-beta / S-measure / IoU, a higher MAE
HIGHER_IS_BETTER = {"fbeta_max": True, "mae": False, "s_measure": True, "foreground_iou": True, "miou": True}
SET_ORDER = ("sod_only", "cross", "joint", "random")
SET_LABELS = {"sod_only": "SOD-only (SOD-C)", "cross": "cross-task", "joint": "joint (GHS-CV)", "random": "random"}
_COMPETITIONS = {
    "sod_only": Weights(ss=0, sod=1, cross=0),
    "cross": Weights(ss=0, sod=0, cross=1),
    "joint": Weights(ss=1, sod=1, cross=1),
}


@dataclass
class RealPhotosConfig:
    """Parameters of the real-photo experiment (the papermill parameters of notebook 08).

    Parameters
    ----------
    pool : str, optional
        Folder of the photos.
    saliency_gt : str, optional
        Folder of the saliency masks (same file stems).
    maps : dict of {str: str}, optional
        Published method to the folder of its released saliency maps.
    sod_models : sequence of str, optional
        Registered SOD models run on the photos (classic, weight-free ones by default).
    ss_models : sequence of str, optional
        Registered SS models (VOC segmenters).
    sod_competitors : sequence of str or None, optional
        The SOD competitors of the SOD term; None for every released map and SOD model.
    k : int, optional
        Images per mined and random set.
    image_size : int, optional
        Working canvas side in pixels.
    fit : str, optional
        How photos are fitted to the canvas: ``"letterbox"`` or ``"stretch"``.
    limit : int or None, optional
        Use only the first ``limit`` photos; None for all.
    random_sets : int, optional
        Number of random sets drawn.
    n_boot : int, optional
        Bootstrap replicates of the intervals.
    seeds : sequence of int, optional
        Seeds of the random sets (the first) and of the label-budget simulation (each).
    rank_metric : str, optional
        Metric the simulated verdicts follow.
    labels_per_pair : sequence of int, optional
        Label budgets ``n`` per pair tried by :func:`labels_to_recover`.
    random_weights : bool, optional
        Add a random-weight twin of each SS model (:func:`random_weight_twin`).
    store : str, optional
        Folder of the prediction store.
    device : str, optional
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    batch_size : int, optional
        Images per forward pass.
    """

    pool: str = "../shared/data/sod300/images"
    saliency_gt: str = "../shared/data/sod300/gt"
    maps: dict[str, str] = field(
        default_factory=lambda: {m: f"../shared/data/sod300/maps/{m}" for m in ("amulet", "dss", "picanet")}
    )
    sod_models: Sequence[str] = ("spectral_residual_sod", "frequency_tuned_sod")
    ss_models: Sequence[str] = ("espnetv2_s2.0_voc384", "dicenet_s1.75_voc384")
    # which SOD competitors enter the SOD term (default: every one, maps and classic models)
    sod_competitors: Sequence[str] | None = None
    k: int = 20
    image_size: int = 320
    fit: str = "letterbox"
    limit: int | None = None
    random_sets: int = 200
    n_boot: int = 1000
    seeds: Sequence[int] = (0,)
    rank_metric: str = "mae"
    labels_per_pair: Sequence[int] = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30)
    random_weights: bool = True
    store: str = "stores/real_photos"
    device: str = "auto"
    batch_size: int = 8


def standin_folders(out: str | Path, n: int = 40, seed: int = 5) -> dict[str, Any]:
    """A stand-in for a labeled photo folder with released maps, made from the mini-world and its zoo.

    For machines without the SOD-300 photos: ``out/images``, ``out/gt`` and
    ``out/maps/<model>`` (the mini-world SOD models' maps saved as PNG files,
    as a benchmark would release them). Returns the notebook parameters that
    point at them (SS side: two mini-world SS models).

    Parameters
    ----------
    out : str or pathlib.Path
        Folder written (subfolders created).
    n : int, optional
        Number of mini-world images.
    seed : int, optional
        Seed of the mini-world pool.

    Returns
    -------
    dict of {str: object}
        ``pool``, ``saliency_gt``, ``maps``, ``ss_models``, ``sod_models``: keyword arguments of
        :class:`RealPhotosConfig`.
    """
    from PIL import Image

    from mdc_widgets.data import open_pool
    from mdc_widgets.predictions import predict_pool

    out = Path(out)
    pool = open_pool("miniworld", n=n, seed=seed)
    sod_models = ["mw_unet_sod", "mw_fcn_sod", "mw_vst_sod"]
    predictions = predict_pool(pool, sod_models, out / "store", progress=False).load()
    images = pool.read_images(0, len(pool))[0]
    truth = pool.ground_truth()
    for folder in ["images", "gt", *(f"maps/{m}" for m in sod_models)]:
        (out / folder).mkdir(parents=True, exist_ok=True)
    for i, sid in enumerate(pool.sample_ids):
        Image.fromarray(images[i]).save(out / "images" / f"{sid}.png")
        Image.fromarray(truth["saliency"].values[i]).save(out / "gt" / f"{sid}.png")
        for model in sod_models:
            values = predictions["prediction"].sel(model=model).values[i]
            Image.fromarray(values).save(out / "maps" / model / f"{sid}.png")
    return {
        "pool": str(out / "images"),
        "saliency_gt": str(out / "gt"),
        "maps": {m: str(out / "maps" / m) for m in sod_models},
        "ss_models": ["mw_unet_ss", "mw_fcn_ss"],
        "sod_models": [],
    }


def random_weight_twin(name: str, seed: int = 0, device: str = "cpu") -> Any:
    """The registered network ``name`` with random weights (seeded), named ``<name>-random``.

    Shows how much of a real network's output its weights explain.

    Parameters
    ----------
    name : str
        A registered model name.
    seed : int, optional
        ``torch.manual_seed`` before the network is built.
    device : str, optional
        Where the network runs.

    Returns
    -------
    Competitor
        The new competitor.
    """
    import torch

    from mdc_widgets.models import get_model

    torch.manual_seed(seed)
    twin = get_model(name, checkpoint=None, device=device)
    twin.name = f"{name}-random"
    twin.description = f"{name} with random weights (seed {seed})"
    return twin


def _bootstrap_index(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_set_metrics(
    evaluation: xr.Dataset,
    samples: Sequence[str],
    models: Sequence[str],
    metrics: Sequence[str] = ("fbeta_max", "mae", "s_measure"),
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[tuple[str, str], np.ndarray]:
    """``{(model, metric): (n_boot,) replicates}`` of set-level metrics, resampling the set's images.

    ``fbeta_max`` is the maximum of the resampled set's mean F-beta curve (as
    :func:`mdc_widgets.metrics.summarize`); the others are means over images.

    Parameters
    ----------
    evaluation : xarray.Dataset
        Per-image metrics ``(model, sample)`` (:func:`mdc_widgets.metrics.evaluate_native`).
    samples : sequence of str
        The set's sample ids.
    models : sequence of str
        The models scored.
    metrics : sequence of str, optional
        Metric variables of ``evaluation``.
    n_boot : int, optional
        Bootstrap replicates.
    seed : int, optional
        Seed of the resampling.

    Returns
    -------
    dict of {(str, str): numpy.ndarray}
        ``(n_boot,)`` float replicates per (model, metric).
    """
    ev = evaluation.sel(sample=list(samples))
    index = _bootstrap_index(len(samples), n_boot, seed)
    out = {}
    for model in models:
        one = ev.sel(model=model)
        for metric in metrics:
            if metric == "fbeta_max":
                curves = np.asarray(one["fbeta_curve"].values)  # (n, 256)
                out[(model, metric)] = curves[index].mean(axis=1).max(axis=-1)
            else:
                values = np.asarray(one[metric].values, float)
                out[(model, metric)] = np.nanmean(values[index], axis=1)
    return out


def _set_values(
    evaluation: xr.Dataset, samples: Sequence[str], models: Sequence[str], metrics: Sequence[str]
) -> dict[tuple[str, str], float]:
    """``{(model, metric): set-level value}`` of one set, from one :func:`summarize` of it."""
    from mdc_widgets.metrics import summarize

    summary = summarize(evaluation, list(samples))
    return {(m, metric): float(summary[metric].sel(model=m).values) for m in models for metric in metrics}


def set_table(
    evaluation: xr.Dataset,
    sets: dict[str, list[str]],
    random_sets: Sequence[Sequence[str]],
    models: Sequence[str],
    metrics: Sequence[str] = ("fbeta_max", "mae", "s_measure"),
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (set, model, metric): the value with a 95 % interval and how it compares with random.

    Mined sets get a bootstrap interval over their images; the random row is
    the mean over the random draws with the 2.5-97.5 % range of the draws.
    ``p_random_as_hard`` is the fraction of random sets at least as hard as
    the mined set (small = the mined set is harder than chance).

    Parameters
    ----------
    evaluation : xarray.Dataset
        Per-image metrics ``(model, sample)`` (:func:`mdc_widgets.metrics.evaluate_native`).
    sets : dict of {str: list of str}
        Mined set name to its sample ids.
    random_sets : sequence of sequence of str
        The random draws, each the size of the mined sets.
    models : sequence of str
        The models scored.
    metrics : sequence of str, optional
        Metric variables of ``evaluation``.
    n_boot : int, optional
        Bootstrap replicates.
    seed : int, optional
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        ``set``, ``model``, ``metric``, ``value``, ``ci_low``, ``ci_high`` and, for mined sets,
        ``p_random_as_hard``.
    """
    rows = []
    # one summary per random set, not one per (set, model, metric)
    per_random = [_set_values(evaluation, r, models, metrics) for r in random_sets]
    random_values = {
        key: np.array([values[key] for values in per_random])
        for key in ((m, metric) for m in models for metric in metrics)
    }
    for name, samples in sets.items():
        boot = bootstrap_set_metrics(evaluation, samples, models, metrics, n_boot, seed)
        mined = _set_values(evaluation, samples, models, metrics)
        for model in models:
            for metric in metrics:
                value = mined[(model, metric)]
                draws = random_values[(model, metric)]
                harder = draws <= value if HIGHER_IS_BETTER[metric] else draws >= value
                low, high = np.quantile(boot[(model, metric)], [0.025, 0.975])
                rows.append(
                    {
                        "set": name,
                        "model": model,
                        "metric": metric,
                        "value": value,
                        "ci_low": low,
                        "ci_high": high,
                        "p_random_as_hard": float(harder.mean()),
                        "n_images": len(samples),
                    }
                )
    for model in models:
        for metric in metrics:
            draws = random_values[(model, metric)]
            low, high = np.quantile(draws, [0.025, 0.975])
            rows.append(
                {
                    "set": "random",
                    "model": model,
                    "metric": metric,
                    "value": float(draws.mean()),
                    "ci_low": low,
                    "ci_high": high,
                    "p_random_as_hard": np.nan,
                    "n_images": len(random_sets[0]) if random_sets else 0,
                }
            )
    return pd.DataFrame(rows)


def set_comparison(
    evaluation: xr.Dataset,
    harder: Sequence[str],
    easier: Sequence[str],
    models: Sequence[str],
    metrics: Sequence[str] = ("fbeta_max", "mae", "s_measure"),
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Relative change (%) of each model's metric on set ``harder`` against set ``easier``, with a 95 % interval.

    The two sets are resampled independently (they hold different images).
    Negative for F-beta and S-measure, positive for MAE, means ``harder`` is harder.

    Parameters
    ----------
    evaluation : xarray.Dataset
        Per-image metrics ``(model, sample)`` (:func:`mdc_widgets.metrics.evaluate_native`).
    harder : sequence of str
        Sample ids of the set expected to be harder.
    easier : sequence of str
        Sample ids of the set compared against.
    models : sequence of str
        The models scored.
    metrics : sequence of str, optional
        Metric variables of ``evaluation``.
    n_boot : int, optional
        Bootstrap replicates.
    seed : int, optional
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        One row per (model, metric): ``change_pct``, ``ci_low``, ``ci_high``.
    """
    a = bootstrap_set_metrics(evaluation, harder, models, metrics, n_boot, seed)
    b = bootstrap_set_metrics(evaluation, easier, models, metrics, n_boot, seed + 1)
    on_harder = _set_values(evaluation, harder, models, metrics)
    on_easier = _set_values(evaluation, easier, models, metrics)
    rows = []
    for model in models:
        for metric in metrics:
            value = (on_harder[(model, metric)] / on_easier[(model, metric)] - 1) * 100
            change = (a[(model, metric)] / b[(model, metric)] - 1) * 100
            low, high = np.quantile(change, [0.025, 0.975])
            rows.append({"model": model, "metric": metric, "change_pct": value, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def _order(strengths: np.ndarray, models: Sequence[str]) -> tuple[str, ...] | None:
    """Models best first, or None when two strengths tie (no order recovered)."""
    ranked = np.argsort(-strengths)
    if np.any(np.isclose(np.diff(strengths[ranked]), 0.0, atol=1e-9)):
        return None
    return tuple(models[i] for i in ranked)


def _bt_order(
    scores: xr.DataArray,
    pairs_samples: dict[tuple[str, str], list[str]],
    models: Sequence[str],
    higher_is_better: bool,
    tie_tol: float,
) -> tuple[str, ...] | None:
    from mdc_widgets.labeling.simulate import simulate_verdicts
    from mdc_widgets.ranking import bradley_terry, win_matrix_from_labels

    verdicts = simulate_verdicts(
        scores,
        pairs_samples,
        tie_tol=tie_tol,
        higher_is_better=higher_is_better,
        good=0.1 if not higher_is_better else 0.7,
    )
    if verdicts.empty:
        return None
    return _order(bradley_terry(win_matrix_from_labels(verdicts, models)), list(models))


def labels_to_recover(
    evaluation: xr.Dataset,
    discrepancy: xr.DataArray,
    models: Sequence[str],
    *,
    metric: str = "mae",
    labels_per_pair: Sequence[int] = (1, 2, 3, 5, 10, 20),
    random_draws: int = 200,
    tie_tol: float = 0.005,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """How many labels MAD needs to recover the models' order on the whole labeled pool, against random picks.

    The reference order is the Bradley-Terry order of verdicts simulated on
    every labeled image for every pair. For ``n`` labels per pair, MAD labels
    the ``n`` images of highest discrepancy of each pair; random labels ``n``
    random images per pair (``random_draws`` times).

    Parameters
    ----------
    evaluation : xarray.Dataset
        Per-image metrics ``(model, sample)`` (:func:`mdc_widgets.metrics.evaluate_native`).
    discrepancy : xarray.DataArray
        ``(sample, model_a, model_b)`` discrepancies that MAD ranks by.
    models : sequence of str
        The models ranked; every pair of them is labelled.
    metric : str, optional
        The metric the simulated verdicts follow (its direction from ``HIGHER_IS_BETTER``).
    labels_per_pair : sequence of int, optional
        The budgets ``n`` tried, increasing; budgets above the pool size are skipped.
    random_draws : int, optional
        Random label sets per budget.
    tie_tol : float, optional
        Metric difference below which a simulated verdict is a tie.
    seed : int, optional
        Seed of the random picks.

    Returns
    -------
    table : pandas.DataFrame
        One row per ``n``: ``labels`` (n x pairs), ``mad_recovers`` (bool),
        ``mad_order``, ``random_recovers`` (fraction of draws).
    summary : dict
        The reference order and the fewest labels each way needs.
    """
    higher = HIGHER_IS_BETTER[metric]
    scores = evaluation[metric].sel(model=list(models))
    samples = [str(s) for s in evaluation["sample"].values]
    pairs = list(combinations(models, 2))
    reference = _bt_order(scores, {p: samples for p in pairs}, models, higher, tie_tol)
    rng = np.random.default_rng(seed)
    rows = []
    for n in labels_per_pair:
        if n > len(samples):
            break
        mad = {}
        for a, b in pairs:
            d = discrepancy.sel(model_a=a, model_b=b).sel(sample=samples).values
            mad[(a, b)] = [samples[i] for i in np.argsort(-d, kind="stable")[:n]]
        mad_order = _bt_order(scores, mad, models, higher, tie_tol)
        hits = 0
        for _ in range(random_draws):
            picks = {p: list(rng.choice(samples, size=n, replace=False)) for p in pairs}
            hits += _bt_order(scores, picks, models, higher, tie_tol) == reference
        rows.append(
            {
                "labels_per_pair": n,
                "labels": n * len(pairs),
                "mad_recovers": mad_order == reference,
                "mad_order": " > ".join(mad_order) if mad_order else "tie",
                "random_recovers": hits / random_draws,
            }
        )
    table = pd.DataFrame(rows)

    def fewest(column: str, threshold: float | None = None) -> int | None:
        ok = table[column] >= threshold if threshold is not None else table[column].astype(bool)
        # the fewest labels from which recovery holds for every larger n of the grid
        for i in range(len(table)):
            if ok.iloc[i:].all():
                return int(table["labels"].iloc[i])
        return None

    summary = {
        "reference_order": list(reference) if reference else None,
        "metric": metric,
        "pool_labels": len(samples) * len(pairs),
        "mad_labels_needed": fewest("mad_recovers"),
        "random_labels_needed_50pct": fewest("random_recovers", 0.5),
        "random_labels_needed_90pct": fewest("random_recovers", 0.9),
    }
    return table, summary


def run_real_photos(config: RealPhotosConfig, progress: bool = True) -> dict[str, Any]:
    """Run the whole experiment; returns its tables, sets and timings (see the module docstring).

    Parameters
    ----------
    config : RealPhotosConfig
        The experiment.
    progress : bool, optional
        Show prediction progress bars.

    Returns
    -------
    dict of {str: object}
        ``config``, ``pool``, ``predictions``, ``evaluation``, ``discrepancy``, ``sets``,
        ``random_sets``, ``set_table``, ``comparisons``, ``recovery``, ``recovery_summary``,
        ``pool_scores``, ``published``, ``timings`` and ``peak_rss_mib``.

    Raises
    ------
    MdcError
        When the photo, ground-truth or a map folder does not exist.
    """
    from mdc_widgets.data import open_pool
    from mdc_widgets.discrepancy import compute_discrepancies
    from mdc_widgets.metrics import evaluate_native, summarize
    from mdc_widgets.models import MapCompetitor, get_model
    from mdc_widgets.predictions import RunOptions, predict_pool

    start = time.perf_counter()
    timings: dict[str, float] = {}
    paths = [config.pool, config.saliency_gt, *config.maps.values()]
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise MdcError(f"The real-photo experiment needs {missing}; point the parameters at your copy.")
    pool = open_pool(config.pool, config.image_size, ground_truth={"saliency": config.saliency_gt}, fit=config.fit)
    if config.limit:
        from mdc_widgets.data import FilePool

        keep = slice(0, int(config.limit))
        pool = FilePool(
            pool.paths[keep],
            name=pool.name,
            image_size=pool.image_size,
            fit=pool.fit,
            saliency_masks=pool.saliency_masks[keep],
        )
    published = list(config.maps)
    competitors = [MapCompetitor(name, folder, "sod") for name, folder in config.maps.items()]
    competitors += [get_model(name, device=config.device) for name in (*config.sod_models, *config.ss_models)]
    if config.random_weights:
        competitors += [random_weight_twin(name, device=config.device) for name in config.ss_models]
    predictions = predict_pool(
        pool,
        competitors,
        config.store,
        RunOptions(batch_size=config.batch_size),
        device=config.device,
        progress=progress,
    )
    timings["predict_s"] = time.perf_counter() - start

    tick = time.perf_counter()
    evaluation = evaluate_native(predictions, pool, progress=progress)
    timings["evaluate_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    sod = list(config.sod_competitors or (published + list(config.sod_models)))
    ss = list(config.ss_models)
    discrepancy = compute_discrepancies(predictions.sel(model=sod + ss))
    sets: dict[str, list[str]] = {}
    for name, weights in _COMPETITIONS.items():
        group = CompetitionGroup(ss=ss if name != "sod_only" else (), sod=sod)
        result = mine(
            predictions,
            group,
            weights,
            config.k,
            Constraints(),
            discrepancy=discrepancy,
            pool=pool,
            key=f"real_{name}_k{config.k}",
        )
        sets[name] = selected_samples(result)
    timings["mine_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    labeled = [str(s) for s in evaluation["sample"].values]
    rng = np.random.default_rng(int(config.seeds[0]) if config.seeds else 0)
    random_sets = [list(rng.choice(labeled, size=config.k, replace=False)) for _ in range(config.random_sets)]
    sets_table = set_table(evaluation, sets, random_sets, published + ss, n_boot=config.n_boot)
    comparisons = {
        f"{a} vs {b}": set_comparison(evaluation, sets[a], sets[b], published, n_boot=config.n_boot)
        for a, b in (("joint", "sod_only"), ("cross", "sod_only"))
    }
    recover_tables, recover_summaries = [], []
    for seed in config.seeds:
        table, summary = labels_to_recover(
            evaluation,
            discrepancy,
            published,
            metric=config.rank_metric,
            labels_per_pair=config.labels_per_pair,
            seed=int(seed),
        )
        recover_tables.append(table.assign(seed=int(seed)))
        recover_summaries.append({**summary, "seed": int(seed)})
    timings["analysis_s"] = time.perf_counter() - tick

    summary = summarize(evaluation)
    pool_scores = (
        summary[["fbeta_max", "mae", "s_measure", "foreground_iou"]]
        .to_dataframe()
        .drop(columns="task", errors="ignore")
    )
    timings["total_s"] = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "config": config,
        "pool": pool,
        "predictions": predictions,
        "evaluation": evaluation,
        "discrepancy": discrepancy,
        "sets": sets,
        "random_sets": random_sets,
        "set_table": sets_table,
        "comparisons": comparisons,
        "recovery": pd.concat(recover_tables, ignore_index=True),
        "recovery_summary": recover_summaries,
        "pool_scores": pool_scores,
        "published": published,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "peak_rss_mib": round(peak_mib, 0),
    }


def findings(result: dict[str, Any], metric: str = "fbeta_max") -> dict[str, Any]:
    """The experiment's answers, read off its numbers: harder than random? joint harder than SOD-only?

    Parameters
    ----------
    result : dict of {str: object}
        :func:`run_real_photos`' dict.
    metric : str, optional
        The metric the answers are read from.

    Returns
    -------
    dict of {str: object}
        Counts of methods per answer, mean changes, ``n_methods`` and ``recovery``.
    """
    table = result["set_table"]
    published = result["published"]
    rows = table[(table["metric"] == metric) & table["model"].isin(published)]
    out: dict[str, Any] = {"metric": metric}
    for name in ("sod_only", "cross", "joint"):
        part = rows[rows["set"] == name]
        # harder than random at the 5 % level: fewer than 5 % of random sets are as hard
        out[f"{name}_harder_than_random"] = int((part["p_random_as_hard"] < 0.05).sum())
    for key, comparison in result["comparisons"].items():
        part = comparison[(comparison["metric"] == metric) & comparison["model"].isin(published)]
        harder = (part["ci_high"] < 0) if HIGHER_IS_BETTER[metric] else (part["ci_low"] > 0)
        easier = (part["ci_low"] > 0) if HIGHER_IS_BETTER[metric] else (part["ci_high"] < 0)
        out[f"{key}: harder (CI excludes 0)"] = int(harder.sum())
        out[f"{key}: easier (CI excludes 0)"] = int(easier.sum())
        out[f"{key}: mean change %"] = round(float(part["change_pct"].mean()), 1)
    out["n_methods"] = len(published)
    out["recovery"] = result["recovery_summary"]
    return out


def _fmt(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def real_photos_markdown(result: dict[str, Any]) -> str:
    """The README's tables: each method on each set, the set comparisons, and the label budget to rank.

    Parameters
    ----------
    result : dict of {str: object}
        :func:`run_real_photos`' dict.

    Returns
    -------
    str
        Markdown tables.
    """
    table = result["set_table"]
    published = result["published"]
    lines = [
        "| method | metric | SOD-only (SOD-C) | cross-task | joint (GHS-CV) | random | all photos |",
        "|---|---|---|---|---|---|---|",
    ]
    for model in published:
        for metric in ("fbeta_max", "mae", "s_measure"):
            cells = []
            for name in SET_ORDER:
                row = table[(table["set"] == name) & (table["model"] == model) & (table["metric"] == metric)].iloc[0]
                cell = _fmt(row["value"], row["ci_low"], row["ci_high"])
                if name != "random":
                    cell += f" (p={row['p_random_as_hard']:.2f})"
                cells.append(cell)
            whole = float(result["pool_scores"].loc[model, metric])
            lines.append(f"| {model} | {metric} | {' | '.join(cells)} | {whole:.3f} |")
    lines += ["", "| comparison | method | metric | change % [95 % CI] |", "|---|---|---|---|"]
    for key, comparison in result["comparisons"].items():
        for _, row in comparison.iterrows():
            lines.append(
                f"| {key} | {row['model']} | {row['metric']} | "
                f"{row['change_pct']:+.1f} [{row['ci_low']:+.1f}, {row['ci_high']:+.1f}] |"
            )
    lines += [
        "",
        "| labels per pair | labels | MAD recovers the full order | random recovers (fraction) |",
        "|---|---|---|---|",
    ]
    recovery = (
        result["recovery"]
        .groupby("labels_per_pair", as_index=False)
        .agg(labels=("labels", "first"), mad=("mad_recovers", "mean"), random=("random_recovers", "mean"))
    )
    for row in recovery.itertuples(index=False):
        lines.append(f"| {int(row.labels_per_pair)} | {int(row.labels)} | {row.mad:.2f} | {row.random:.2f} |")
    return "\n".join(lines) + "\n"


def write_real_outputs(result: dict[str, Any], output: str | Path) -> dict[str, Path]:
    """Write the tables (CSV, Markdown), the mined sets and the findings into ``output``, atomically.

    Parameters
    ----------
    result : dict of {str: object}
        :func:`run_real_photos`' dict.
    output : str or pathlib.Path
        The folder (created).

    Returns
    -------
    dict of {str: pathlib.Path}
        What each written file is (``sets_csv``, ``markdown``, ``json``, ...) to its path.
    """
    import json

    from mdc_widgets._atomic import atomic_write_text

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    files = {
        "sets_csv": output / "real_photos_sets.csv",
        "comparisons_csv": output / "real_photos_comparisons.csv",
        "recovery_csv": output / "real_photos_recovery.csv",
        "pool_csv": output / "real_photos_pool_scores.csv",
        "markdown": output / "real_photos_table.md",
        "json": output / "real_photos.json",
    }
    atomic_write_text(files["sets_csv"], result["set_table"].to_csv(index=False))
    atomic_write_text(
        files["comparisons_csv"],
        pd.concat([c.assign(comparison=k) for k, c in result["comparisons"].items()]).to_csv(index=False),
    )
    atomic_write_text(files["recovery_csv"], result["recovery"].to_csv(index=False))
    atomic_write_text(files["pool_csv"], result["pool_scores"].to_csv())
    atomic_write_text(files["markdown"], real_photos_markdown(result))
    config = result["config"]
    atomic_write_text(
        files["json"],
        json.dumps(
            {
                "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()},
                "sets": result["sets"],
                "findings": findings(result),
                "timings": result["timings"],
                "peak_rss_mib": result["peak_rss_mib"],
                "pool_fingerprint": result["pool"].fingerprint,
            },
            indent=2,
            default=str,
        ),
    )
    return files
