"""Plot functions return figures holding the right numbers; image helpers draw the right pixels."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.viz import (
    LABEL_PALETTE,
    Legend,
    detail_row,
    disagreement_map,
    discrepancy_heatmap,
    intra_cross_scatter,
    ranking_figure,
    sample_scatter,
    score_histograms,
    tile_panel,
    to_png,
)


def _discrepancy(seed: int = 0, n: int = 30) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    models = ["a", "b", "p", "q"]
    tasks = ["ss", "ss", "sod", "sod"]
    values = rng.random((n, 4, 4))
    values = (values + values.transpose(0, 2, 1)) / 2
    values[:, range(4), range(4)] = 0
    kind = np.array(
        [
            ["self" if i == j else (ti if ti == tj else "cross") for j, tj in enumerate(tasks)]
            for i, ti in enumerate(tasks)
        ],
        dtype=object,
    )
    return xr.DataArray(
        values,
        dims=("sample", "model_a", "model_b"),
        coords={
            "sample": [f"s{i}" for i in range(n)],
            "model_a": models,
            "model_b": models,
            "kind": (("model_a", "model_b"), kind),
        },
    )


def test_heatmap_is_the_mean_over_the_pool_or_a_subset():
    d = _discrepancy()
    fig = discrepancy_heatmap(d)
    z = np.array(fig.data[0].z, dtype=float)
    expected = d.values.mean(0)
    np.testing.assert_allclose(z[~np.eye(4, dtype=bool)], expected[~np.eye(4, dtype=bool)])
    assert np.isnan(np.diag(z)).all()
    assert "cross" in fig.data[0].text[0][2] and "ss" in fig.data[0].text[0][1]
    subset = discrepancy_heatmap(d, samples=["s1", "s4"])
    np.testing.assert_allclose(np.array(subset.data[0].z, float)[0, 3], d.values[[1, 4], 0, 3].mean())


def test_scatter_keeps_sample_ids_in_customdata_and_splits_the_selected():
    table = pd.DataFrame(
        {
            "sample": ["i", "j", "k", "l"],
            "x": [0.1, 0.2, 0.3, 0.4],
            "y": [1.0, 2.0, 3.0, 4.0],
            "selected": [False, True, False, True],
            "score": [0.5, 0.6, 0.7, 0.8],
        }
    )
    fig = sample_scatter(table, "x", "y", color="score")
    pool, chosen = fig.data
    assert list(pool.customdata) == ["i", "k"] and list(pool.x) == [0.1, 0.3] and list(pool.marker.color) == [0.5, 0.7]
    assert list(chosen.customdata) == ["j", "l"] and list(chosen.y) == [2.0, 4.0] and chosen.name == "selected"
    with pytest.raises(MdcError, match="Columns \\['nope'\\]"):
        sample_scatter(table, "x", "nope")


def test_intra_cross_scatter_puts_the_intra_pair_against_the_mean_cross_pairs():
    d = _discrepancy(1)
    fig = intra_cross_scatter(d, ("a", "b"), [("a", "p"), ("b", "q")], highlight=["s2"])
    xs = np.concatenate([tr.x for tr in fig.data])
    ys = np.concatenate([tr.y for tr in fig.data])
    ids = np.concatenate([tr.customdata for tr in fig.data])
    order = np.argsort([int(s[1:]) for s in ids])
    np.testing.assert_allclose(xs[order], d.values[:, 0, 1])
    np.testing.assert_allclose(ys[order], (d.values[:, 0, 2] + d.values[:, 1, 3]) / 2)
    assert list(fig.data[1].customdata) == ["s2"]
    assert "SS discrepancy of a vs b" in fig.layout.title.text
    empty = intra_cross_scatter(d, ("a", "b"), [])
    assert "no cross-task pair" in empty.layout.annotations[0].text


def test_histograms_leave_out_absent_terms_and_overlay_the_selected():
    result = xr.Dataset(
        {
            "score": ("sample", [0.2, 0.4, 0.9, 1.0]),
            "term_ss": ("sample", [0.25, 0.5, 0.75, 1.0]),
            "term_sod": ("sample", [0.0, 0.0, 0.0, 0.0]),
            "term_cross": ("sample", [np.nan] * 4),
            "selected": ("sample", [False, False, True, True]),
        },
        coords={"sample": list("ijkl")},
    )
    fig = score_histograms(result)
    assert [tr.name for tr in fig.data] == ["score: pool", "score: selected", "term_ss: pool", "term_ss: selected"]
    assert list(fig.data[1].x) == [0.9, 1.0] and list(fig.data[2].x) == [0.25, 0.5]


def test_ranking_figure_error_bars_are_the_confidence_intervals():
    ranking = pd.DataFrame(
        {
            "source": ["labels"] * 2 + ["ground truth"] * 2,
            "model": ["A", "B", "A", "B"],
            "strength": [0.5, -0.5, 0.2, -0.2],
            "ci_low": [0.1, -0.9, 0.0, -0.5],
            "ci_high": [0.8, -0.2, 0.3, 0.1],
            "win_rate": [0.7, 0.3, 0.6, 0.4],
        }
    )
    fig = ranking_figure(ranking)
    labels_points, labels_bars = fig.data[0], fig.data[1]
    assert list(labels_points.x) == ["A", "B"]
    np.testing.assert_allclose(labels_points.error_y.array, [0.3, 0.3])
    np.testing.assert_allclose(labels_points.error_y.arrayminus, [0.4, 0.4])
    assert list(labels_bars.y) == [0.7, 0.3] and fig.data[2].name == "ground truth"
    assert "no ranking yet" in ranking_figure(pd.DataFrame()).layout.annotations[0].text


def test_png_and_panels_hold_the_pixels():
    from PIL import Image

    image = np.zeros((4, 6, 3), np.uint8)
    image[1, 2] = (255, 0, 0)
    back = np.asarray(Image.open(io.BytesIO(to_png(image, scale=2))))
    assert back.shape == (8, 12, 3) and (back[2:4, 4:6] == (255, 0, 0)).all() and back[0, 0].sum() == 0
    grey = np.asarray(Image.open(io.BytesIO(to_png(np.array([[0.0, 1.0]])))))
    assert grey[0, 1].tolist() == [255, 255, 255]
    panel = tile_panel([[("a", image), ("b", image)], [("c", image)]], scale=1, caption_height=5, gap=1)
    assert panel.shape == (2 * (4 + 5) + 1, 2 * 6 + 1, 3)
    assert (panel[5 + 1, 2] == (255, 0, 0)).all() and (panel[5 + 1, 7 + 2] == (255, 0, 0)).all()
    assert (panel[9 + 1 + 5 + 1, 7 + 2] == 255).all()  # second row has one tile: the rest is white


def test_disagreement_maps_batch_and_detail_row_order():
    a = np.array([[[0, 1], [2, 0]], [[1, 1], [1, 1]]], np.uint8)
    b = np.array([[[0, 2], [2, 0]], [[1, 1], [1, 0]]], np.uint8)
    np.testing.assert_array_equal(disagreement_map(a, b, "ss").sum(axis=(1, 2)), [1, 1])
    saliency = np.array([[[0, 0], [0, 255]], [[0, 0], [0, 0]]], np.uint8)
    np.testing.assert_array_equal(disagreement_map(a, saliency, "cross"), [[[0, 1], [1, 1]], [[1, 1], [1, 1]]])
    with pytest.raises(MdcError, match="Unknown pair kind"):
        disagreement_map(a, b, "depth")
    tile = np.zeros((2, 2, 3), np.uint8)
    detail = {
        "sample": "s1",
        "image": tile,
        "scores": {"rank": 3},
        "ground_truth": {"semantic": {"overlay": tile}},
        "predictions": {"m1": {"overlay": tile}, "m2": {"overlay": tile}},
        "disagreement": {"m1|m2": {"kind": "ss", "fraction": 0.25, "overlay": tile}},
    }
    captions = [c for c, _ in detail_row(detail, legend=False)]
    assert captions == ["rank 3: s1", "GT semantic", "m1", "m2", "ss\n25% of px"]


def _detail(rank_in_scores: int = 1) -> dict:
    """A two-model detail: an SS prediction with classes 1 and 2, an SOD map, the cross pair's d known."""
    image = np.full((4, 4, 3), 200, np.uint8)
    labels = np.zeros((4, 4), np.uint8)
    labels[0, :2], labels[3, 3] = 1, 2
    saliency = np.zeros((4, 4), np.uint8)
    saliency[:2] = 255
    legend = [("background", "#000000"), ("cat", "#800000"), ("dog", "#008000")]
    return {
        "sample": "s9",
        "image": image,
        "scores": {"rank": rank_in_scores},
        "ground_truth": None,
        "predictions": {
            "unet_ss": {"task": "ss", "map": labels, "overlay": image, "legend": legend},
            "vst_sod": {"task": "sod", "map": saliency, "overlay": image, "legend": []},
        },
        "disagreement": {
            "unet_ss|vst_sod": {
                "model_a": "unet_ss",
                "model_b": "vst_sod",
                "kind": "cross",
                "fraction": 0.375,
                "d": 0.7231,
                "overlay": image,
            }
        },
    }


def test_detail_row_shows_the_callers_rank_the_pair_its_d_and_a_legend():
    """Every row read "#1" and tiles read "cross 0.38": the real rank, the pair and d_cross are now in the captions."""
    row = detail_row(_detail(rank_in_scores=1), rank=7)
    captions = [c for c, _ in row]
    assert captions[0] == "rank 7: s9"
    assert captions[3] == "cross: unet_ss vs vst_sod\nd_cross 0.72, 38% of px"
    legend = row[-1][1]
    assert isinstance(legend, Legend) and legend.entries == (("cat", "#800000"), ("dog", "#008000"))
    assert legend.names() == ["cat", "dog", "saliency, disagreement 0..1"]
    # predictions on the neutral grey scene: the class colour opaque, background grey, not the image's colour
    ss_tile = row[1][1]
    assert ss_tile[0, 0].tolist() == LABEL_PALETTE[1].tolist() and ss_tile[3, 3].tolist() == LABEL_PALETTE[2].tolist()
    assert ss_tile[1, 1].tolist() == [70, 70, 70]
    sod_tile = row[2][1]
    assert sod_tile[0, 0].tolist() == [253, 231, 37] and sod_tile[3, 0].tolist() == [70, 70, 70]
    assert detail_row(_detail(rank_in_scores=2))[0][0] == "rank 2: s9"


def test_panel_draws_the_legend_swatches_and_wraps_long_captions():
    row = detail_row(_detail(), rank=1)
    panel = tile_panel([row], scale=32, caption_height=12)  # 128-px tiles, as in the notebooks
    colours = {tuple(c) for c in panel.reshape(-1, 3).tolist()}
    assert (128, 0, 0) in colours and (0, 128, 0) in colours  # the cat and dog swatches (and tiles)
    assert (253, 231, 37) in colours and (68, 1, 84) in colours  # both ends of the colour bar
    legend_left = 4 * (4 * 32 + 2)
    swatches = panel[:, legend_left:]
    assert ((swatches == (128, 0, 0)).all(-1)).any() and ((swatches == (68, 1, 84)).all(-1)).any()
    # the cross tile's caption takes more than one line, so the strip is taller than one caption line
    assert panel.shape[0] > 4 * 32 + 12
    with pytest.raises(MdcError, match="only legends"):
        tile_panel([[("legend", Legend())]])


def test_ranking_figure_puts_ss_and_sod_models_in_separate_panels_with_one_colour_per_source():
    ranking = pd.DataFrame(
        {
            "source": ["labels"] * 4 + ["ground truth"] * 4,
            "model": ["a", "b", "p", "q"] * 2,
            "task": ["ss", "ss", "sod", "sod"] * 2,
            "strength": [0.5, -0.5, 0.3, -0.3, 0.2, -0.2, 0.1, -0.1],
            "ci_low": [0.0] * 8,
            "ci_high": [1.0] * 8,
            "win_rate": [0.7, 0.3, 0.6, 0.4, 0.6, 0.4, 0.55, 0.45],
        }
    )
    fig = ranking_figure(ranking)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[0].startswith("SS models") and titles[2].startswith("SOD models")
    by_axis: dict[str, set] = {}
    for trace in fig.data:
        by_axis.setdefault(trace.xaxis, set()).update(trace.x)
    assert by_axis["x"] == {"a", "b"} and by_axis["x2"] == {"a", "b"}
    assert by_axis["x3"] == {"p", "q"} and by_axis["x4"] == {"p", "q"}
    for source in ("labels", "ground truth"):
        traces = [t for t in fig.data if t.name == source]
        colours = {t.marker.color for t in traces}
        assert len(traces) == 4 and len(colours) == 1  # points and bars of one source share a colour
        assert sum(bool(t.showlegend) for t in traces) == 1
    assert fig.data[0].marker.color != fig.data[2].marker.color


def test_scatter_counts_selected_points_stacked_at_one_place():
    table = pd.DataFrame(
        {
            "sample": ["i", "j", "k", "l", "m"],
            "x": [0.1, 1.0, 1.0, 1.0, 0.5],
            "y": [0.2, 1.0, 1.0, 1.0, 0.5],
            "selected": [False, True, True, True, True],
        }
    )
    fig = sample_scatter(table, "x", "y")
    notes = [a for a in fig.layout.annotations if "picks" in a.text]
    assert [(a.text, a.x, a.y) for a in notes] == [("3 picks", 1.0, 1.0)]
    assert notes[0].hovertext == "j<br>k<br>l"
    assert list(fig.data[1].x) == [1.0, 1.0, 1.0, 0.5]  # exact values, no jitter


def test_histogram_keeps_picks_tied_at_the_maximum_in_a_full_bin_and_titles_its_axes():
    """Picks all at d = 1 sat in a bin 1e-9 wide and were invisible; the last bin is now as wide as the others."""
    values = np.r_[np.linspace(0, 0.9, 40), np.ones(10)]
    result = xr.Dataset(
        {"d_sod": ("sample", values), "selected": ("sample", values >= 1)},
        coords={"sample": [f"s{i}" for i in range(len(values))]},
    )
    fig = score_histograms(result, columns=("d_sod",))
    selected = next(t for t in fig.data if t.name == "d_sod: selected")
    assert list(selected.x) == [1.0] * 10
    assert selected.xbins.end - 1.0 >= selected.xbins.size - 1e-12
    assert fig.layout.yaxis.title.text == "images" and "0 = agree" in fig.layout.xaxis.title.text
