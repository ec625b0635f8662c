"""The tables of the paper's experiment: per-seed rows summarised over seeds, Markdown and CSV outputs.

Pure pandas over the rows :func:`mdc_widgets.experiments.paper.run_paper_experiment`
collects; kept apart from the mining and evaluation that produce them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mdc_widgets._atomic import atomic_write_text

__all__ = [
    "SET_LABELS",
    "SET_NAMES",
    "paper_table_markdown",
    "set_labels",
    "summarize_paper_experiment",
    "write_paper_outputs",
]

SET_NAMES = ("joint", "ss_only", "sod_only", "random")


def set_labels(protocol: str = "ijcv2021") -> dict[str, str]:
    """Column names of the sets: the single-task sets say which rule mined them.

    Parameters
    ----------
    protocol : str, optional
        ``"ijcv2021"`` or ``"mdc"``: the rule that mined the single-task sets.

    Returns
    -------
    dict of {str: str}
        Set name (``joint``, ``ss_only``, ``sod_only``, ``random``) to its column title.

    Examples
    --------
    >>> set_labels("ijcv2021")["ss_only"], set_labels("mdc")["sod_only"]
    ('SS-only MAD (ijcv2021)', 'SOD-only MAD (ours, mdc)')
    """
    sod = "ours, ijcv2021-style" if protocol == "ijcv2021" else f"ours, {protocol}"
    return {
        "joint": "GHS-CV (joint)",
        "ss_only": f"SS-only MAD ({protocol})",
        "sod_only": f"SOD-only MAD ({sod})",
        "random": "random",
    }


SET_LABELS = set_labels("ijcv2021")


def _ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    values = np.asarray(values, float)
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * stats.sem(values))
    return mean, mean - half, mean + half


def summarize_paper_experiment(per_seed: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and CI over seeds per (model, set); joint-set relative drops per (model, other set).

    Parameters
    ----------
    per_seed : pandas.DataFrame
        :func:`~mdc_widgets.experiments.paper.run_paper_experiment`'s ``per_seed``: one row per
        seed, set and model with ``value``, ``failure_rate``, ``task``, ``metric``, ``n_images``.

    Returns
    -------
    table : pandas.DataFrame
        One row per (model, set): ``mean``, ``ci_low``, ``ci_high`` (95 %), ``failure_rate``, ...
    drops : pandas.DataFrame
        One row per (model, other set ``versus``): ``drop_pct`` (relative change of the joint set's score,
        in %; negative is harder) with ``ci_low``, ``ci_high``.
    """
    rows = []
    for (model, set_name), grp in per_seed.groupby(["model", "set"], sort=False):
        mean, low, high = _ci(grp["value"].values)
        fmean, _, _ = _ci(grp["failure_rate"].values)
        rows.append(
            {
                "model": model,
                "task": grp["task"].iloc[0],
                "metric": grp["metric"].iloc[0],
                "set": set_name,
                "mean": mean,
                "ci_low": low,
                "ci_high": high,
                "failure_rate": fmean,
                "n_images": int(grp["n_images"].iloc[0]),
            }
        )
    table = pd.DataFrame(rows)
    drop_rows = []
    wide = per_seed.pivot_table(index=["model", "seed"], columns="set", values="value")
    for model, grp in wide.groupby(level="model", sort=False):
        for other in [s for s in SET_NAMES if s != "joint" and s in grp.columns]:
            rel = 100.0 * (grp["joint"] - grp[other]) / grp[other]
            mean, low, high = _ci(rel.values)
            drop_rows.append({"model": model, "versus": other, "drop_pct": mean, "ci_low": low, "ci_high": high})
    return table, pd.DataFrame(drop_rows)


def paper_table_markdown(table: pd.DataFrame, drops: pd.DataFrame, protocol: str = "ijcv2021") -> str:
    """The model x set table (mean [95% CI]) and the joint set's drops, as Markdown.

    ``protocol`` names the rule of the single-task columns. A drop whose
    interval crosses zero is marked: the claim does not hold at 95 %.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`summarize_paper_experiment`'s table.
    drops : pandas.DataFrame
        :func:`summarize_paper_experiment`'s drops.
    protocol : str, optional
        ``"ijcv2021"`` or ``"mdc"``: the rule that mined the single-task sets.

    Returns
    -------
    str
        Two Markdown tables.
    """
    labels = set_labels(protocol)
    lines = [
        "| model | metric | " + " | ".join(labels[s] for s in SET_NAMES) + " |",
        "|---|---|" + "---|" * len(SET_NAMES),
    ]
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
    lines += ["", "| model | joint vs | relative change % | 95% CI | holds at 95 % |", "|---|---|---|---|---|"]
    for _, r in drops.iterrows():
        ci = "" if np.isnan(r["ci_low"]) else f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"
        if np.isnan(r["ci_low"]):
            holds = "n/a (one seed)"
        elif r["ci_low"] <= 0 <= r["ci_high"]:
            holds = "no (CI crosses 0)"
        else:
            holds = "yes, harder" if r["ci_high"] < 0 else "yes, easier"
        lines.append(f"| {r['model']} | {labels[r['versus']]} | {r['drop_pct']:.1f} | {ci} | {holds} |")
    return "\n".join(lines) + "\n"


def write_paper_outputs(result: dict[str, Any], output: str | Path) -> None:
    """Write the tables of one run; every name carries the protocol of the single-task sets.

    ``paper_table_<protocol>.{csv,md}``, ``paper_drops_<protocol>.csv``,
    ``paper_per_seed_<protocol>.csv``, ``paper_sets_<protocol>.json`` (ids,
    config; no timings, so two runs give identical files),
    ``paper_timings_<protocol>.json`` and ``paper_fusion_overlap.csv`` (the
    joint set does not depend on the protocol). Floats are written with
    ``%.6f``.

    Parameters
    ----------
    result : dict of {str: object}
        :func:`~mdc_widgets.experiments.paper.run_paper_experiment`'s dict.
    output : str or pathlib.Path
        The folder (created).
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    protocol = result["config"].get("protocol", "ijcv2021")

    def csv(frame: pd.DataFrame) -> str:
        return frame.to_csv(index=False, float_format="%.6f", lineterminator="\n")

    atomic_write_text(output / f"paper_table_{protocol}.csv", csv(result["table"]))
    atomic_write_text(output / f"paper_drops_{protocol}.csv", csv(result["drops"]))
    atomic_write_text(output / f"paper_per_seed_{protocol}.csv", csv(result["per_seed"]))
    atomic_write_text(
        output / f"paper_table_{protocol}.md", paper_table_markdown(result["table"], result["drops"], protocol)
    )
    if len(result.get("fusion_overlap", ())):
        atomic_write_text(output / "paper_fusion_overlap.csv", csv(result["fusion_overlap"]))
    atomic_write_text(
        output / f"paper_sets_{protocol}.json",
        json.dumps(
            {"sets": {str(k): v for k, v in result["sets"].items()}, "config": result["config"]},
            indent=2,
            default=str,
            sort_keys=True,
        ),
    )
    atomic_write_text(output / f"paper_timings_{protocol}.json", json.dumps(result["timings"], indent=2))
