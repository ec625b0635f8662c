"""What the figures panel shows: which pairs the scatter compares, and the panel's plotly figures."""

from __future__ import annotations

from typing import Any

import pandas as pd
import xarray as xr

from mdc_widgets.mining import CompetitionGroup, group_of, selected_samples
from mdc_widgets.viz import discrepancy_heatmap, intra_cross_scatter, ranking_figure, score_histograms

__all__ = ["investigation_figures", "scatter_pairs"]


def scatter_pairs(group: CompetitionGroup) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """The intra-task pair and the cross-task pairs the intra-vs-cross scatter compares.

    The group's first intra-task pair (SS, else SOD) against the group's cross
    pairs. A single-task group has no cross pair: the scatter is left out
    rather than filled with models outside the competition (issue 15, point 9),
    and ``cross`` is empty.

    Parameters
    ----------
    group : CompetitionGroup
        The competition whose pairs are compared.

    Returns
    -------
    intra : tuple of 2 str or None
        The intra-task pair (the first cross pair when the group has none), or None.
    cross : list of tuple of 2 str
        The group's ``(ss_model, sod_model)`` pairs.

    Examples
    --------
    >>> scatter_pairs(CompetitionGroup(ss=("a", "b"), sod=("p",)))
    (('a', 'b'), [('a', 'p'), ('b', 'p')])
    >>> scatter_pairs(CompetitionGroup(ss=("a", "b")))
    (('a', 'b'), [])
    """
    # the first intra-task pair stands for the task when a group has more than two models of it
    intra_pairs = group.intra_pairs("ss") or group.intra_pairs("sod")
    intra = intra_pairs[0] if intra_pairs else None
    cross = list(group.cross_pairs)
    if intra is None and cross:
        intra = cross[0]
    return (tuple(intra) if intra else None), cross


def investigation_figures(
    discrepancy: xr.DataArray,
    result: xr.Dataset | None,
    ranking: pd.DataFrame,
    subset: str = "pool",
) -> dict[str, Any]:
    """The plotly figures of an investigation: ``heatmap``, ``scatter``, ``histograms``, ``ranking``.

    Parameters
    ----------
    discrepancy : xarray.DataArray
        ``(sample, model_a, model_b)`` of every predicted model.
    result : xarray.Dataset or None
        A mining result; the figures that need one are left out without it.
    ranking : pandas.DataFrame
        ``Session.ranking()``'s table.
    subset : str, optional
        ``"pool"`` or ``"selected"``: the heatmap's samples.

    Returns
    -------
    dict of {str: plotly.graph_objects.Figure}
        The figures by name; ``scatter`` only for a group with cross-task pairs.
    """
    figures: dict[str, Any] = {}
    chosen = selected_samples(result) if result is not None else None
    on_selected = subset == "selected" and bool(chosen)
    figures["heatmap"] = discrepancy_heatmap(
        discrepancy,
        samples=chosen if on_selected else None,
        title=f"Mean pairwise discrepancy on the {len(chosen)} selected images" if on_selected else None,
    )
    if result is not None:
        intra, cross = scatter_pairs(group_of(result))
        if intra is not None and cross:  # a single-task group has no cross-task axis of its own
            figures["scatter"] = intra_cross_scatter(
                discrepancy, intra, cross, highlight=chosen or (), color=result["score"].values
            )
        figures["histograms"] = score_histograms(result)
    figures["ranking"] = ranking_figure(ranking)
    return figures
