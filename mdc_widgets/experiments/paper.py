"""The paper's experiment in miniature: joint (GHS-CV-style) vs single-task (SS-C, SOD-C) vs random sets.

For each seed a fresh pool is generated, every competitor predicts it once,
and four sets of equal size are mined from it:

- ``joint``: one competition group per (SS pair, SOD pair), joint score with
  all three terms, disjoint across groups (GHS-CV),
- ``ss_only``: one group per SS pair, SS term only (SS-C),
- ``sod_only``: one group per SOD pair, SOD term only (SOD-C),
- ``random``: the same number of valid images drawn at random.

Every model is then evaluated on every set against the ground truth, and the
relative drop of its score on the joint set against each other set is
reported, with a confidence interval over seeds.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from itertools import combinations, product
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets._atomic import atomic_write_text
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, mine_groups

__all__ = ["PaperConfig", "SET_NAMES", "mine_paper_sets", "run_paper_experiment", "paper_table_markdown"]

SET_NAMES = ("joint", "ss_only", "sod_only", "random")
SET_LABELS = {"joint": "GHS-CV (joint)", "ss_only": "SS-C", "sod_only": "SOD-C", "random": "random"}


@dataclass
class PaperConfig:
    """Parameters of the miniature reproduction (all papermill parameters of notebook 04)."""

    pool: str = "miniworld"
    pool_size: int = 3000
    ss_models: Sequence[str] = ("mw_unet_ss", "mw_fcn_ss", "mw_deeplabv3plus_ss")
    sod_models: Sequence[str] = ("mw_unet_sod", "mw_fcn_sod", "mw_vst_sod")
    set_size: int = 90
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seeds: Sequence[int] = (1, 2, 3)
    foreground_area: tuple[float, float] | None = (0.005, 0.95)
    dedup_threshold: float | None = 0.97
    max_per_class: int | None = None
    device: str = "auto"
    store: str | None = None

    def groups(self) -> dict[str, list[CompetitionGroup]]:
        ss_pairs = list(combinations(self.ss_models, 2))
        sod_pairs = list(combinations(self.sod_models, 2))
        return {
            "joint": [CompetitionGroup(ss=s, sod=p) for s, p in product(ss_pairs, sod_pairs)],
            "ss_only": [CompetitionGroup(ss=s) for s in ss_pairs],
            "sod_only": [CompetitionGroup(sod=p) for p in sod_pairs],
        }


def _set_weights(name: str, weights: tuple[float, float, float]) -> Weights:
    if name == "ss_only":
        return Weights(ss=1.0, sod=0.0, cross=0.0)
    if name == "sod_only":
        return Weights(ss=0.0, sod=1.0, cross=0.0)
    return Weights(*weights)


def mine_paper_sets(
    predictions: xr.Dataset,
    config: PaperConfig,
    seed: int,
    discrepancy: xr.DataArray | None = None,
) -> dict[str, list[str]]:
    """Mine the joint, single-task and random sets of equal size from one pool's predictions."""
    from mdc_widgets.discrepancy import compute_discrepancies

    if discrepancy is None:
        discrepancy = compute_discrepancies(predictions)
    constraints = Constraints(
        foreground_area=config.foreground_area,
        dedup_threshold=config.dedup_threshold,
        max_per_class=config.max_per_class,
    )
    sets: dict[str, list[str]] = {}
    for name, groups in config.groups().items():
        # equal-sized sets: the set size is split evenly over the set's groups
        k = max(1, config.set_size // len(groups))
        results = mine_groups(
            predictions, groups, _set_weights(name, config.weights), k, constraints,
            disjoint=True, discrepancy=discrepancy, save=False,
        )
        chosen: list[str] = []
        for result in results.values():
            chosen += [str(s) for s in result["sample"].values[result["selected"].values]]
        sets[name] = chosen
    size = min(len(v) for v in sets.values())
    valid_ids = predictions["sample"].values[predictions["valid"].values].astype(str)
    rng = np.random.default_rng(seed)
    sets["random"] = sorted(rng.choice(valid_ids, size=size, replace=False).tolist())
    return sets


def _evaluate_sets(
    predictions: xr.Dataset, ground_truth: xr.Dataset, sets: dict[str, list[str]]
) -> pd.DataFrame:
    from mdc_widgets.metrics import evaluate, summarize

    union = sorted({s for ids in sets.values() for s in ids})
    per_image = evaluate(predictions.sel(sample=union), ground_truth.sel(sample=union))
    rows = []
    for set_name, ids in sets.items():
        summary = summarize(per_image, ids)
        for model in summary["model"].values:
            task = str(predictions["task"].sel(model=model).values)
            metric = "miou" if task == "ss" else "fbeta_max"
            images = per_image[metric].sel(model=model, sample=ids).values
            # a failure: the image's own score is below one half
            rows.append({
                "set": set_name, "model": str(model), "task": task, "metric": metric,
                "value": float(summary[metric].sel(model=model)),
                "failure_rate": float(np.nanmean(images < 0.5)),
                "n_images": len(ids),
                **{f"{m}": float(summary[m].sel(model=model)) for m in summary.data_vars},
            })
    return pd.DataFrame(rows)


def _ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    values = np.asarray(values, float)
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * stats.sem(values))
    return mean, mean - half, mean + half


def run_paper_experiment(
    config: PaperConfig | None = None,
    output: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the miniature reproduction and (optionally) write its tables to ``output``.

    Returns
    -------
    dict with ``per_seed`` (one row per seed, set and model), ``table`` (mean
    and 95% CI over seeds of each model's score on each set), ``drops`` (the
    joint set's relative drop against each other set, in %, with CI),
    ``sets`` (the mined sample ids per seed), ``timings`` (seconds).
    """
    from mdc_widgets.config import cache_dir, resolve_device
    from mdc_widgets.data import open_pool
    from mdc_widgets.discrepancy import compute_discrepancies
    from mdc_widgets.models import get_model
    from mdc_widgets.predictions import predict_pool

    config = config or PaperConfig()
    device = resolve_device(config.device)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    models = [get_model(name, device=device) for name in [*config.ss_models, *config.sod_models]]
    timings["load_or_train_models_s"] = time.perf_counter() - t0

    frames, all_sets = [], {}
    for seed in config.seeds:
        t = time.perf_counter()
        pool = open_pool(config.pool, n=config.pool_size, seed=seed)
        store = Path(config.store or cache_dir() / "stores") / f"{pool.fingerprint}"
        predictions = predict_pool(pool, models, store, device=device, progress=progress)
        timings[f"seed{seed}_predict_s"] = time.perf_counter() - t
        t = time.perf_counter()
        discrepancy = compute_discrepancies(predictions, device=device)
        sets = mine_paper_sets(predictions, config, seed, discrepancy)
        timings[f"seed{seed}_mine_s"] = time.perf_counter() - t
        ground_truth = pool.ground_truth()
        frame = _evaluate_sets(predictions, ground_truth, sets)
        frame.insert(0, "seed", seed)
        frames.append(frame)
        all_sets[seed] = sets
    per_seed = pd.concat(frames, ignore_index=True)
    table, drops = summarize_paper_experiment(per_seed)
    timings["total_s"] = time.perf_counter() - t0
    result = {"per_seed": per_seed, "table": table, "drops": drops, "sets": all_sets,
              "timings": timings, "config": asdict(config)}
    if output is not None:
        write_paper_outputs(result, output)
    return result


def summarize_paper_experiment(per_seed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and CI over seeds per (model, set); joint-set relative drops per (model, other set)."""
    rows = []
    for (model, set_name), grp in per_seed.groupby(["model", "set"], sort=False):
        mean, low, high = _ci(grp["value"].values)
        fmean, _, _ = _ci(grp["failure_rate"].values)
        rows.append({"model": model, "task": grp["task"].iloc[0], "metric": grp["metric"].iloc[0],
                     "set": set_name, "mean": mean, "ci_low": low, "ci_high": high, "failure_rate": fmean,
                     "n_images": int(grp["n_images"].iloc[0])})
    table = pd.DataFrame(rows)
    drop_rows = []
    wide = per_seed.pivot_table(index=["model", "seed"], columns="set", values="value")
    for model, grp in wide.groupby(level="model", sort=False):
        for other in [s for s in SET_NAMES if s != "joint" and s in grp.columns]:
            rel = 100.0 * (grp["joint"] - grp[other]) / grp[other]
            mean, low, high = _ci(rel.values)
            drop_rows.append({"model": model, "versus": other, "drop_pct": mean, "ci_low": low, "ci_high": high})
    return table, pd.DataFrame(drop_rows)


def paper_table_markdown(table: pd.DataFrame, drops: pd.DataFrame) -> str:
    """The model x set table (mean [95% CI]) and the joint set's drops, as Markdown."""
    lines = ["| model | metric | " + " | ".join(SET_LABELS[s] for s in SET_NAMES) + " |",
             "|---|---|" + "---|" * len(SET_NAMES)]
    for model, grp in table.groupby("model", sort=False):
        cells = []
        for s in SET_NAMES:
            row = grp[grp["set"] == s]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            ci = "" if np.isnan(r["ci_low"]) else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            cells.append(f"{r['mean']:.3f}{ci}")
        lines.append(f"| {model} | {grp['metric'].iloc[0]} | " + " | ".join(cells) + " |")
    lines += ["", "| model | joint vs | relative change % | 95% CI |", "|---|---|---|---|"]
    for _, r in drops.iterrows():
        ci = "" if np.isnan(r["ci_low"]) else f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        lines.append(f"| {r['model']} | {SET_LABELS[r['versus']]} | {r['drop_pct']:.1f} | {ci} |")
    return "\n".join(lines) + "\n"


def write_paper_outputs(result: dict[str, Any], output: str | Path) -> None:
    """Write ``paper_table.csv``, ``paper_drops.csv``, ``paper_per_seed.csv``, ``paper_table.md``, ``paper_sets.json``."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / "paper_table.csv", result["table"].to_csv(index=False))
    atomic_write_text(output / "paper_drops.csv", result["drops"].to_csv(index=False))
    atomic_write_text(output / "paper_per_seed.csv", result["per_seed"].to_csv(index=False))
    atomic_write_text(output / "paper_table.md", paper_table_markdown(result["table"], result["drops"]))
    atomic_write_text(output / "paper_sets.json", json.dumps(
        {"sets": {str(k): v for k, v in result["sets"].items()}, "timings": result["timings"],
         "config": result["config"]}, indent=2, default=str))
