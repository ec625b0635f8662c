"""Plotly figures of a MAD competition: pairwise discrepancy, score distributions, rankings.

Pure functions: data in, ``go.Figure`` out. Every point of a per-sample plot
carries its sample id in ``customdata``, so a click can open that sample.

Why this module is long: its numpydoc docstrings and doctests; without them the code is
under 500 lines (one concept).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from mdc_widgets.errors import MdcError

__all__ = [
    "discrepancy_heatmap",
    "empty_figure",
    "intra_cross_scatter",
    "ranking_figure",
    "sample_scatter",
    "score_histograms",
]

SELECTED_COLOUR = "#d62728"
POOL_COLOUR = "#7f7f7f"


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def empty_figure(message: str, height: int = 300) -> Any:
    """A blank figure that says why there is nothing to plot.

    Parameters
    ----------
    message : str
        The text shown in the middle of the figure.
    height : int, optional
        Figure height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
        No axes, one centred annotation.
    """
    go = _go()
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(height=height, xaxis_visible=False, yaxis_visible=False)
    return fig


def discrepancy_heatmap(
    discrepancy: xr.DataArray,
    samples: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """Mean discrepancy of every pair of models, over the pool or over ``samples``.

    The cell text gives the value and the kind of pair (ss, sod, cross); the
    diagonal (a model against itself) is blank.

    Parameters
    ----------
    discrepancy : xarray.DataArray
        ``(sample, model_a, model_b)`` discrepancies in [0, 1], with an optional ``kind`` coordinate.
    samples : sequence of str or None, optional
        Sample ids to average over; None for every sample.
    title : str or None, optional
        Figure title; default names the number of images.

    Returns
    -------
    plotly.graph_objects.Figure
        A model x model heatmap, or :func:`empty_figure` when there are no samples.

    Examples
    --------
    >>> d = xr.DataArray(np.array([[[0, .2], [.2, 0]], [[0, .4], [.4, 0]]]), dims=("sample", "model_a", "model_b"),
    ...                  coords={"sample": ["i", "j"], "model_a": ["A", "B"], "model_b": ["A", "B"]})
    >>> fig = discrepancy_heatmap(d)
    >>> [None if v is None else round(v, 3) for v in fig.data[0].z[0]]
    [None, 0.3]
    """
    go = _go()
    if samples is not None:
        discrepancy = discrepancy.sel(sample=list(samples))
    if discrepancy.sizes["sample"] == 0:
        return empty_figure("no samples to average over")
    mean = discrepancy.mean("sample", skipna=True).values.astype(np.float64)
    models = [str(m) for m in discrepancy["model_a"].values]
    np.fill_diagonal(mean, np.nan)
    kind = discrepancy["kind"].values if "kind" in discrepancy.coords else np.full(mean.shape, "", dtype=object)
    text = [
        [("" if i == j else f"{mean[i, j]:.3f}<br>{kind[i, j]}") for j in range(len(models))]
        for i in range(len(models))
    ]
    # None, not NaN, on the diagonal: NaN is not valid JSON for the notebook's plotly mimetype
    z = [[None if not np.isfinite(v) else float(v) for v in row] for row in mean]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=models,
            y=models,
            text=text,
            texttemplate="%{text}",
            colorscale="Viridis",
            zmin=0,
            zmax=max(float(np.nanmax(mean)) if np.isfinite(mean).any() else 1.0, 1e-6),
            colorbar={"title": "mean<br>discrepancy"},
            hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>",
        )
    )
    n = discrepancy.sizes["sample"]
    fig.update_layout(
        title=title or f"Mean pairwise discrepancy over {n} images (0 = agree)",
        yaxis={"autorange": "reversed"},
        height=140 + 45 * len(models),
        width=260 + 70 * len(models),
    )
    return fig


def _ids(frame: pd.DataFrame) -> np.ndarray:
    return (frame["sample"] if "sample" in frame else frame.index.to_series()).astype(str).to_numpy()


def sample_scatter(
    table: pd.DataFrame,
    x: str,
    y: str,
    *,
    color: str | None = None,
    selected: str | None = "selected",
    title: str | None = None,
    hover: Sequence[str] = (),
) -> Any:
    """Scatter of two per-sample columns; ``customdata`` holds the sample id of each point.

    Samples where ``selected`` is true are drawn as a second, outlined trace
    on top, so the mined set stands out from the pool. Selected samples at
    the same point (ties, e.g. at ``d = 1``) would hide each other: each such
    point gets an annotation with its count ("7 picks"), and its hover lists
    every id (coordinates are not jittered: the values stay exact).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per sample, with the sample id in a ``sample`` column or the index.
    x : str
        Column on the horizontal axis.
    y : str
        Column on the vertical axis.
    color : str or None, optional
        Column that colours the pool's points (Viridis); None for one colour.
    selected : str or None, optional
        Boolean column of the samples drawn on top as the mined set; None or missing for none.
    title : str or None, optional
        Figure title; default ``"y against x"``.
    hover : sequence of str, optional
        Further columns listed in each point's hover text.

    Returns
    -------
    plotly.graph_objects.Figure
        One ``pool`` trace and, if any sample is selected, one ``selected`` trace.

    Raises
    ------
    MdcError
        When ``x``, ``y``, ``color`` or a ``hover`` column is not in ``table``.

    Examples
    --------
    >>> t = pd.DataFrame({"sample": ["i", "j"], "d_ss": [.1, .9], "d_cross": [.2, .8], "selected": [False, True]})
    >>> fig = sample_scatter(t, "d_ss", "d_cross")
    >>> [list(tr.customdata) for tr in fig.data]
    [['i'], ['j']]
    """
    go = _go()
    missing = [c for c in (x, y, color, *hover) if c and c not in table]
    if missing:
        raise MdcError(f"Columns {missing} are not in the table; it has {list(table.columns)}.")
    ids = _ids(table)
    chosen = (
        table[selected].fillna(False).astype(bool).to_numpy()
        if selected and selected in table
        else np.zeros(len(table), bool)
    )
    hover_lines = "".join(f"<br>{h}: %{{customdata[{i + 1}]}}" for i, h in enumerate(hover))

    def custom(mask: np.ndarray) -> np.ndarray:
        if not hover:
            return ids[mask]
        return np.column_stack([ids[mask]] + [table[h].to_numpy()[mask] for h in hover])

    template = (
        f"%{{customdata{'[0]' if hover else ''}}}<br>{x}: %{{x:.3f}}<br>{y}: %{{y:.3f}}{hover_lines}<extra></extra>"
    )
    marker: dict[str, Any] = {"size": 6, "opacity": 0.7, "color": POOL_COLOUR}
    if color:
        marker.update(
            color=table[color].to_numpy()[~chosen],
            colorscale="Viridis",
            showscale=True,
            colorbar={"title": color},
            cmin=float(np.nanmin(table[color])) if len(table) else 0,
            cmax=float(np.nanmax(table[color])) if len(table) else 1,
        )
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=table[x].to_numpy()[~chosen],
            y=table[y].to_numpy()[~chosen],
            mode="markers",
            name="pool",
            customdata=custom(~chosen),
            marker=marker,
            hovertemplate=template,
        )
    )
    if chosen.any():
        _annotate_stacked(fig, table[x].to_numpy()[chosen], table[y].to_numpy()[chosen], ids[chosen])
        fig.add_trace(
            go.Scatter(
                x=table[x].to_numpy()[chosen],
                y=table[y].to_numpy()[chosen],
                mode="markers",
                name="selected",
                customdata=custom(chosen),
                hovertemplate=template,
                marker={
                    "size": 9,
                    "color": SELECTED_COLOUR,
                    "line": {"width": 1, "color": "black"},
                    "symbol": "diamond",
                },
            )
        )
    fig.update_layout(
        title=title or f"{y} against {x} (click a point to open it)",
        xaxis_title=x,
        yaxis_title=y,
        height=420,
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _annotate_stacked(fig: Any, xs: np.ndarray, ys: np.ndarray, ids: np.ndarray) -> None:
    """Label every point where several selected samples coincide with their count."""
    points = pd.DataFrame({"x": np.asarray(xs, np.float64), "y": np.asarray(ys, np.float64), "id": ids})
    points = points[np.isfinite(points["x"]) & np.isfinite(points["y"])]
    for (px, py), group in points.groupby(["x", "y"], sort=True):
        if len(group) > 1:
            fig.add_annotation(
                x=px,
                y=py,
                text=f"{len(group)} picks",
                hovertext="<br>".join(group["id"].astype(str)),
                showarrow=True,
                arrowhead=0,
                ax=24,
                ay=-18,
                font={"size": 11, "color": SELECTED_COLOUR},
                bgcolor="rgba(255,255,255,0.8)",
            )


def intra_cross_scatter(
    discrepancy: xr.DataArray,
    intra_pair: tuple[str, str],
    cross_pairs: Sequence[tuple[str, str]],
    *,
    highlight: Sequence[str] = (),
    color: pd.Series | np.ndarray | None = None,
) -> Any:
    """Intra-task discrepancy of ``intra_pair`` against the mean cross-task discrepancy, per image.

    Images high on both axes are where the joint MAD score looks first: the
    two models of a task disagree, and the other task disagrees with them.
    ``highlight`` (e.g. the selected samples) is drawn on top.

    Parameters
    ----------
    discrepancy : xarray.DataArray
        ``(sample, model_a, model_b)`` discrepancies, with an optional ``kind`` coordinate.
    intra_pair : tuple of 2 str
        The two models of one task on the horizontal axis.
    cross_pairs : sequence of tuple of 2 str
        ``(ss_model, sod_model)`` pairs averaged on the vertical axis.
    highlight : sequence of str, optional
        Sample ids drawn as the selected trace.
    color : pandas.Series or numpy.ndarray or None, optional
        One value per sample (e.g. the score) that colours the pool's points.

    Returns
    -------
    plotly.graph_objects.Figure
        A :func:`sample_scatter`, or :func:`empty_figure` without cross pairs.
    """
    if not cross_pairs:
        return empty_figure("no cross-task pair: predict at least one SS and one SOD model")
    a, b = intra_pair
    intra = discrepancy.sel(model_a=a, model_b=b).values
    cross = np.mean([discrepancy.sel(model_a=p, model_b=q).values for p, q in cross_pairs], axis=0)
    ids = np.asarray([str(s) for s in discrepancy["sample"].values])
    table = pd.DataFrame({"sample": ids, "intra": intra, "cross": cross, "selected": np.isin(ids, list(highlight))})
    if color is not None:
        table["score"] = np.asarray(color, dtype=np.float64)
    kind = str(discrepancy["kind"].sel(model_a=a, model_b=b).values) if "kind" in discrepancy.coords else "intra"
    fig = sample_scatter(
        table,
        "intra",
        "cross",
        color="score" if color is not None else None,
        title=f"{kind.upper()} discrepancy of {a} vs {b} against cross-task discrepancy",
    )
    # the pair list is too long for an axis title (it was cut off at both ends): it goes under the title
    pairs = ", ".join(f"{p} vs {q}" for p, q in cross_pairs)
    fig.update_layout(
        title={"text": f"{fig.layout.title.text}<br><sup>d_cross averaged over {pairs}</sup>"},
        xaxis_title=f"d_{kind} (0 = the two models agree)",
        yaxis_title=f"mean d_cross ({len(cross_pairs)} pairs)",
    )
    return fig


def score_histograms(
    result: xr.Dataset | pd.DataFrame,
    columns: Sequence[str] = ("score", "term_ss", "term_sod", "term_cross"),
    bins: int = 30,
) -> Any:
    """One histogram per score column over the pool, the selected samples overlaid in red.

    Columns a competition does not have (all NaN or all zero) are left out.

    Parameters
    ----------
    result : xarray.Dataset or pandas.DataFrame
        A mining result (per-sample columns, optionally ``selected``).
    columns : sequence of str, optional
        The score columns to show, in order.
    bins : int, optional
        Number of bins per histogram.

    Returns
    -------
    plotly.graph_objects.Figure
        One subplot per shown column, or :func:`empty_figure` when none has a value.

    Examples
    --------
    >>> r = xr.Dataset({"score": ("sample", [.1, .5, .9]), "term_ss": ("sample", [.2, .6, 1.]),
    ...                 "selected": ("sample", [False, False, True])}, coords={"sample": ["i", "j", "k"]})
    >>> [tr.name for tr in score_histograms(r).data]
    ['score: pool', 'score: selected', 'term_ss: pool', 'term_ss: selected']
    """
    go = _go()
    from plotly.subplots import make_subplots

    frame = result.to_dataframe() if isinstance(result, xr.Dataset) else result
    shown = [c for c in columns if c in frame and np.isfinite(frame[c]).any() and np.nanmax(np.abs(frame[c])) > 0]
    if not shown:
        return empty_figure("no score to show")
    chosen = (
        frame["selected"].fillna(False).astype(bool).to_numpy() if "selected" in frame else np.zeros(len(frame), bool)
    )
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=shown)
    for i, column in enumerate(shown, start=1):
        values = frame[column].to_numpy(dtype=np.float64)
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        size = max((hi - lo) / bins, 1e-9)
        # the last bin is a full bin that holds the maximum: picks tied at the maximum (often d = 1) stay visible
        xbins = {"start": lo, "end": hi + size, "size": size}
        fig.add_trace(
            go.Histogram(
                x=values[~chosen],
                name=f"{column}: pool",
                marker_color=POOL_COLOUR,
                opacity=0.7,
                xbins=xbins,
                showlegend=i == 1,
                legendgroup="pool",
            ),
            row=1,
            col=i,
        )
        fig.add_trace(
            go.Histogram(
                x=values[chosen],
                name=f"{column}: selected",
                marker_color=SELECTED_COLOUR,
                opacity=0.9,
                xbins=xbins,
                showlegend=i == 1,
                legendgroup="selected",
            ),
            row=1,
            col=i,
        )
    for i, column in enumerate(shown, start=1):
        meaning = "disagreement (0 = agree)" if column.startswith("d_") else "percentile-rank term or score"
        fig.update_xaxes(title_text=f"{column}: {meaning}", row=1, col=i)
    fig.update_yaxes(title_text="images", row=1, col=1)
    fig.update_layout(
        barmode="overlay",
        height=330,
        title="Score distributions: pool and selected samples",
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


SOURCE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
TASK_NAMES = {"ss": "SS models", "sod": "SOD models"}


def ranking_figure(ranking: pd.DataFrame) -> Any:
    """Bradley-Terry strengths with confidence intervals (left) beside plain win rates (right), one row per task.

    ``ranking`` is :meth:`mdc_widgets.session.Session.ranking`'s table: one row
    per (source, model) with ``strength``, ``ci_low``, ``ci_high``,
    ``win_rate`` and, optionally, ``task``. Each source (labels, ground truth)
    has one colour, the same for its points and its win-rate bars, and one
    legend entry. SS and SOD models are never compared with each other, so
    each task gets its own row of panels.

    Parameters
    ----------
    ranking : pandas.DataFrame
        The ranking table described above; None or empty gives an empty figure.

    Returns
    -------
    plotly.graph_objects.Figure
        Two columns of panels, one row per task present.

    Examples
    --------
    >>> table = pd.DataFrame({"source": ["labels"] * 2, "model": ["a", "p"], "task": ["ss", "sod"],
    ...                       "strength": [0.0, 0.0], "ci_low": [-1, -1], "ci_high": [1, 1], "win_rate": [.5, .5]})
    >>> [a.text for a in ranking_figure(table).layout.annotations][::2]
    ['SS models: Bradley-Terry strength (95% CI)', 'SOD models: Bradley-Terry strength (95% CI)']
    """
    go = _go()
    from plotly.subplots import make_subplots

    if ranking is None or len(ranking) == 0:
        return empty_figure("no ranking yet: label some samples (or use a pool with ground truth)")
    frame = ranking.copy()
    frame["source"] = frame["source"] if "source" in frame else "ranking"
    tasks = [t for t in ("ss", "sod") if "task" in frame and (frame["task"] == t).any()] or [None]
    titles = []
    for task in tasks:
        prefix = f"{TASK_NAMES[task]}: " if task else ""
        titles += [f"{prefix}Bradley-Terry strength (95% CI)", f"{prefix}win rate"]
    fig = make_subplots(rows=len(tasks), cols=2, subplot_titles=titles, horizontal_spacing=0.12, vertical_spacing=0.22)
    sources = list(dict.fromkeys(frame["source"]))
    colour = {source: SOURCE_COLOURS[i % len(SOURCE_COLOURS)] for i, source in enumerate(sources)}
    shown_in_legend: set[str] = set()
    for row, task in enumerate(tasks, start=1):
        part = frame if task is None else frame[frame["task"] == task]
        for source, rows in part.groupby("source", sort=False):
            rows = rows.sort_values("strength", ascending=False)
            name = str(source)
            fig.add_trace(
                go.Scatter(
                    x=rows["model"],
                    y=rows["strength"],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=name not in shown_in_legend,
                    error_y={
                        "type": "data",
                        "array": (rows["ci_high"] - rows["strength"]).clip(lower=0),
                        "arrayminus": (rows["strength"] - rows["ci_low"]).clip(lower=0),
                    },
                    marker={"size": 10, "color": colour[source]},
                ),
                row=row,
                col=1,
            )
            shown_in_legend.add(name)
            fig.add_trace(
                go.Bar(
                    x=rows["model"],
                    y=rows["win_rate"],
                    name=name,
                    legendgroup=name,
                    showlegend=False,
                    marker_color=colour[source],
                    text=rows["win_rate"].round(2),
                    textposition="outside",
                ),
                row=row,
                col=2,
            )
        fig.update_yaxes(title_text="log-strength (mean 0)", row=row, col=1)
        fig.update_yaxes(title_text="share of comparisons won", range=[0, 1.15], row=row, col=2)
    fig.update_layout(
        height=120 + 300 * len(tasks),
        barmode="group",
        title="Global ranking from pairwise comparisons (points and bars of one colour: one source)",
        legend={"orientation": "h", "y": -0.12 if len(tasks) > 1 else -0.25, "title": {"text": "source: "}},
    )
    return fig
