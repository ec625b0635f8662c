"""Where the global rankings' comparisons come from: human verdicts and ground-truth metrics, ranked per component.

Functions of explicit inputs (verdicts, mining results, an evaluation), so
``Session.ranking`` only gathers them and the logic is testable without a
session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import combinations
from typing import Any

import pandas as pd
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.mining import group_of, group_pairs, selected_samples
from mdc_widgets.ranking.bradley_terry import bootstrap_ranking, comparisons_from_scores

__all__ = [
    "COMPARED_ON",
    "RANKING_COLUMNS",
    "comparison_samples",
    "components",
    "ground_truth_comparisons",
    "rank_sources",
]

# which (sample, pair)s the ground-truth source compares
COMPARED_ON = ("labeled", "selected", "pool")
RANKING_COLUMNS = [
    "source",
    "component",
    "model",
    "task",
    "strength",
    "ci_low",
    "ci_high",
    "win_rate",
    "n_comparisons",
    "rank",
]


def components(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected groups of models: models compared directly or through others (union-find), each sorted.

    Parameters
    ----------
    pairs : iterable of tuple of 2 str
        Compared model pairs.

    Returns
    -------
    list of list of str
        The groups, each sorted, in the order of their first model.

    Examples
    --------
    >>> components([("a", "b"), ("c", "d"), ("b", "e")])
    [['a', 'b', 'e'], ['c', 'd']]
    """
    parent: dict[str, str] = {}

    def find(m: str) -> str:
        parent.setdefault(m, m)
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for m in sorted(parent):
        groups.setdefault(find(m), []).append(m)
    return list(groups.values())


def comparison_samples(
    on: str,
    *,
    labels: Iterable[Any] = (),
    results: Iterable[xr.Dataset] = (),
    models: Iterable[str] = (),
    sample_ids: Sequence[str] = (),
) -> dict[tuple[str, str], list[str]]:
    """The samples each pair of models is compared on by ground truth.

    Parameters
    ----------
    on : str
        ``"labeled"``: the (sample, pair)s that have a verdict; ``"selected"``:
        each result's selected samples for each of its group's pairs (in pool
        order within a result); ``"pool"``: every pair on every sample.
    labels : iterable of Label, optional
        The verdicts (for ``"labeled"``): anything with ``sample``,
        ``model_a`` and ``model_b`` (not typed as ``labeling.Label``: the
        label store imports the ranking's verdict names).
    results : iterable of xarray.Dataset, optional
        Mining results (for ``"selected"``).
    models : iterable of str, optional
        The predicted models: pairs with another model are left out.
    sample_ids : sequence of str, optional
        The pool's ids in pool order.

    Returns
    -------
    dict of {tuple of 2 str: list of str}
        ``(model_a, model_b)`` to the sample ids the pair is compared on.

    Raises
    ------
    MdcError
        ``on`` is not ``"labeled"``, ``"selected"`` or ``"pool"``.

    Examples
    --------
    >>> comparison_samples("pool", models=["b", "a"], sample_ids=["s0", "s1"])
    {('a', 'b'): ['s0', 's1']}
    """
    predicted = set(models)
    ids = [str(s) for s in sample_ids]
    pairs_samples: dict[tuple[str, str], list[str]] = {}
    if on == "labeled":
        for item in labels:
            if {item.model_a, item.model_b} <= predicted:
                pairs_samples.setdefault((item.model_a, item.model_b), []).append(item.sample)
    elif on == "selected":
        position = {s: i for i, s in enumerate(ids)}
        for result in results:
            # pool order within a result keeps the bootstrap's resampling as it always was
            chosen = sorted(selected_samples(result), key=lambda s: position.get(s, len(position)))
            for a, b, _ in group_pairs(group_of(result)):
                known = pairs_samples.setdefault((a, b), [])
                seen = set(known)
                known.extend(s for s in chosen if s not in seen)
    elif on == "pool":
        pairs_samples = {(a, b): ids for a, b in combinations(sorted(predicted), 2)}
    else:
        raise MdcError(f"ground_truth must be 'labeled', 'selected', 'pool' or None; got {on!r}.")
    return pairs_samples


def ground_truth_comparisons(
    evaluation: xr.Dataset, pairs_samples: dict[tuple[str, str], list[str]], task_of: Callable[[str], str]
) -> pd.DataFrame:
    """One row per (sample, pair): who wins by the ground-truth metric (``winner``, ``metric``).

    The metric is mIoU for two SS models and max F-beta otherwise.

    Parameters
    ----------
    evaluation : xarray.Dataset
        Per-image metrics ``(sample, model)`` covering every compared sample
        (:func:`mdc_widgets.metrics.evaluate`).
    pairs_samples : dict
        ``{(model_a, model_b): [sample ids]}`` (:func:`comparison_samples`).
    task_of : callable
        A model's task, ``"ss"`` or ``"sod"``.
    """
    frames = []
    for (a, b), ids in pairs_samples.items():
        metric = "miou" if task_of(a) == task_of(b) == "ss" else "fbeta_max"
        frames.append(comparisons_from_scores(evaluation[metric], pairs_samples={(a, b): ids}).assign(metric=metric))
    if not frames:
        return pd.DataFrame(columns=["sample", "model_a", "model_b", "winner", "metric"])
    return pd.concat(frames, ignore_index=True)


def rank_sources(
    sources: Sequence[tuple[str, pd.DataFrame]],
    task_of: Callable[[str], str | None],
    n_boot: int = 200,
    seed: int = 0,
    ci: float = 0.95,
) -> pd.DataFrame:
    """Rank each source of comparisons, one Bradley-Terry fit with bootstrap intervals per connected component.

    Parameters
    ----------
    sources : sequence of (str, pandas.DataFrame)
        ``(name, comparisons)``; comparisons have ``model_a``, ``model_b`` and
        ``verdict`` or ``winner``.
    task_of : callable
        A model's task (or None when unknown), for the ``task`` column.
    n_boot, seed, ci : optional
        Of :func:`mdc_widgets.ranking.bootstrap_ranking`.

    Returns
    -------
    pandas.DataFrame
        ``source, component, model, task, strength, ci_low, ci_high,
        win_rate, n_comparisons, rank``; models never compared, even
        indirectly, are ranked in separate ``component``s.
    """
    rows = []
    for source, comparisons in sources:
        for component in components(zip(comparisons["model_a"], comparisons["model_b"])):
            part = comparisons[comparisons["model_a"].isin(component)]
            ranked = bootstrap_ranking(part, models=component, n_boot=n_boot, seed=seed, ci=ci)
            frame = ranked[["strength", "ci_low", "ci_high", "win_rate", "n_comparisons", "rank"]].to_dataframe()
            rows.append(frame.reset_index().assign(source=source, component="+".join(component)))
    if not rows:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    out = pd.concat(rows, ignore_index=True)
    out["task"] = [task_of(m) for m in out["model"]]
    return out[RANKING_COLUMNS].sort_values(["source", "component", "rank"], kind="stable").reset_index(drop=True)
