"""The Session on stand-in pools and models: predict once, mine, tables, details, explanations, rankings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import MODELS, threshold_competitors

from mdc_widgets.errors import MdcError
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights
from mdc_widgets.session import Session, filter_table, group_pairs

JOINT = CompetitionGroup(ss=MODELS["ss"], sod=MODELS["sod"])


def _adaptive_binary(saliency: np.ndarray) -> np.ndarray:
    """ARCHITECTURE.md's adaptive binarisation, written out independently."""
    s = saliency.astype(np.float64) / 255.0
    t = min(2 * s.mean(), 1.0)
    return (s >= t) & (s > 0)


def test_predict_runs_each_model_once_and_resumes_from_the_store(blob_store, tmp_path):
    from _helpers import BLOB_POOL

    models = threshold_competitors()
    session = Session(BLOB_POOL, blob_store, models=models, use_registry=False, labels=tmp_path / "l.jsonl")
    assert session.predicted_models() == ["ss_a", "ss_b", "sod_p", "sod_q"]
    ds = session.predict(models)
    assert all(m.calls == 0 for m in models), "finished predictions must not be recomputed"
    assert [str(m) for m in ds["model"].values] == ["ss_a", "ss_b", "sod_p", "sod_q"]
    assert session.available_models("sod") == ["sod_p", "sod_q"]
    assert session.model_task("ss_b") == "ss"
    assert session.discrepancy() is session.discrepancy()  # cached


def test_mine_remembers_results_and_disjoint_never_picks_a_sample_twice(blob_session):
    first = blob_session.mine(JOINT, Weights(1, 1, 1), k=8, constraints=Constraints.none(), key="first")
    assert blob_session.current_key == "first" and blob_session.result() is first
    second = blob_session.mine(
        CompetitionGroup(ss=MODELS["ss"]),
        Weights(1, 0, 0),
        k=8,
        constraints=Constraints.none(),
        key="second",
        disjoint=True,
    )
    a = set(first["sample"].values[first["selected"].values])
    b = set(second["sample"].values[second["selected"].values])
    assert len(a) == len(b) == 8 and not a & b
    assert set(blob_session.results) == {"first", "second"}
    # re-mining a result with disjoint=True excludes the others' picks, never its own
    again = blob_session.mine(JOINT, Weights(1, 1, 1), k=8, constraints=Constraints.none(), key="first", disjoint=True)
    assert set(again["sample"].values[again["selected"].values]) == a
    with pytest.raises(MdcError, match="no predictions of this pool"):
        blob_session.mine(CompetitionGroup(ss=("ss_a", "nope")), k=3)


def test_ranked_table_ranks_sorts_and_filters(mined_blob_session):
    session = mined_blob_session
    result = session.result()
    table = session.ranked_table()
    assert len(table) == 40
    scores = result["score"].to_series()
    best = scores.idxmax()
    assert table.iloc[0]["rank"] == 1 and table.iloc[0]["score"] == scores.max()
    assert table.loc[table["sample"] == best, "rank"].item() == 1
    assert table["score"].is_monotonic_decreasing
    assert table["selected"].sum() == 6 and set(table.loc[table["selected"], "rank"]) <= set(range(1, 41))
    for column in ("term_ss", "term_sod", "term_cross", "d_ss", "d_sod", "d_cross", "pred_class", "pred_class_name"):
        assert column in table
    by_dss = session.ranked_table(sort_by="d_ss", ascending=True)
    assert by_dss["d_ss"].is_monotonic_increasing
    # the filtered rows are exactly those an independent pandas mask keeps
    filtered = session.ranked_table(filters="d_ss > 0.5 and not selected")
    expected = table[(table["d_ss"] > 0.5) & ~table["selected"]]["sample"]
    assert set(filtered["sample"]) == set(expected) and len(filtered) == len(expected)
    assert len(session.ranked_table(filters=[("pred_class", "==", 2), {"selected": True}])) == int(
        ((table["pred_class"] == 2) & table["selected"]).sum()
    )
    with pytest.raises(MdcError, match="no such column"):
        session.ranked_table(filters="occlusion > 0.2")
    with pytest.raises(MdcError, match="Cannot sort by 'nope'"):
        session.ranked_table(sort_by="nope")


def test_filter_table_expressions():
    t = pd.DataFrame(
        {
            "s": ["a", "b", "c", "d"],
            "x": [0.1, 0.5, 0.9, np.nan],
            "k": [1, 2, 3, 2],
            "path": ["beach/1.jpg", "city/2.jpg", "beach/3.jpg", "x.png"],
        }
    )
    assert filter_table(t, "x >= 0.5")["s"].tolist() == ["b", "c"]
    assert filter_table(t, "k in [2, 3] & path ~ BEACH")["s"].tolist() == ["c"]
    assert filter_table(t, "k not in [2]")["s"].tolist() == ["a", "c"]
    assert filter_table(t, "s == b")["s"].tolist() == ["b"]
    assert filter_table(t, "k != 2")["s"].tolist() == ["a", "c"]
    assert filter_table(t, ("x", "<", 0.2))["s"].tolist() == ["a"]
    assert filter_table(t, None) is t
    with pytest.raises(MdcError, match="compare it with a number"):
        filter_table(t, "k == two")
    with pytest.raises(MdcError, match="Cannot read the filter"):
        filter_table(t, "x >")


def test_sample_detail_disagreement_maps_match_an_independent_computation(mined_blob_session):
    session = mined_blob_session
    sid = session.ranked_table().iloc[0]["sample"]
    detail = session.sample_detail(sid)
    i = detail["index"]
    assert detail["image"].shape == (16, 16, 3) and detail["image"].dtype == np.uint8
    np.testing.assert_array_equal(detail["image"], session.pool.images[i])
    maps = {m: np.asarray(session.predictions["prediction"].sel(model=m).values[i]) for m in JOINT.models}
    d = detail["disagreement"]
    assert [(v["model_a"], v["model_b"], v["kind"]) for v in d.values()] == group_pairs(JOINT)
    np.testing.assert_array_equal(d["ss_a|ss_b"]["map"], (maps["ss_a"] != maps["ss_b"]).astype(np.float32))
    np.testing.assert_allclose(
        d["sod_p|sod_q"]["map"], np.abs(maps["sod_p"].astype(float) - maps["sod_q"].astype(float)) / 255, atol=1e-6
    )
    cross = (maps["ss_b"] > 0) ^ _adaptive_binary(maps["sod_q"])
    np.testing.assert_array_equal(d["ss_b|sod_q"]["map"], cross.astype(np.float32))
    assert d["ss_b|sod_q"]["fraction"] == pytest.approx(cross.mean())
    # the legend lists exactly the classes present, with the palette's colours
    present = np.unique(maps["ss_a"])
    assert [name for name, _ in detail["predictions"]["ss_a"]["legend"]] == [f"c{c}" for c in present]
    assert detail["predictions"]["ss_a"]["overlay"].shape == (16, 16, 3)
    result = session.result()
    assert detail["scores"]["score"] == pytest.approx(float(result["score"].values[i]))
    assert detail["scores"]["rank"] == 1 and detail["ground_truth"] is None
    with pytest.raises(MdcError, match="not in pool"):
        session.sample_detail("missing")


def test_sample_detail_with_ground_truth_and_metadata(gt_session, miniworld_small):
    session = gt_session
    session.mine(
        CompetitionGroup(ss=("conv_ss_1", "conv_ss_2"), sod=("conv_sod_1",)),
        Weights(1, 0, 1),
        k=4,
        constraints=Constraints.none(),
    )
    table = session.ranked_table(filters="occlusion >= 0")
    for column in ("occlusion", "blur", "contrast", "dominant_class", "dominant_class_name"):
        assert column in table
    row = table.iloc[0]
    truth = miniworld_small.sel(sample=row["sample"])
    assert row["occlusion"] == pytest.approx(float(truth["occlusion"]))
    assert row["dominant_class_name"] == miniworld_small.attrs["classes"][int(truth["dominant_class"])]
    detail = session.sample_detail(row["sample"])
    gt = detail["ground_truth"]
    np.testing.assert_array_equal(gt["semantic"]["map"], truth["semantic"].values)
    assert {n for n, _ in gt["semantic"]["legend"]} == {
        miniworld_small.attrs["classes"][c] for c in np.unique(truth["semantic"].values)
    }
    assert set(gt["metrics"]) == {"conv_ss_1", "conv_ss_2", "conv_sod_1"}
    assert 0 <= gt["metrics"]["conv_ss_1"]["miou"] <= 1
    assert detail["metadata"]["occlusion"] == pytest.approx(float(truth["occlusion"]))


def test_explain_gives_grad_cam_for_ss_and_saliency_for_sod(gt_session):
    import torch

    session = gt_session
    sid = str(session.pool.sample_ids[3])
    out = session.explain(sid, "conv_ss_1", target_class="c2")
    assert out["cam"].shape == (32, 32) and 0 <= out["cam"].min() and out["cam"].max() <= 1
    assert out["target_class"] == 2 and out["target_name"] == "c2" and out["layers"] == ["0", "2"]
    assert out["cam_overlay"].shape == (32, 32, 3)
    sod = session.explain(sid, "conv_sod_1", layer="2")
    comp = session.competitor("conv_sod_1")
    with torch.no_grad():
        x = torch.as_tensor(session.images([sid])).permute(0, 3, 1, 2).float() / 255
        expected = comp.predict(x)[0, 0].numpy()
    np.testing.assert_allclose(sod["saliency"], expected, atol=1e-5)
    assert sod["layer"] == "2" and sod["target_name"] == "salient"
    with pytest.raises(MdcError, match="no class 'zebra'"):
        session.explain(sid, "conv_ss_1", target_class="zebra")


def test_labels_drive_a_ranking_beside_the_ground_truth_one(gt_session):
    session = gt_session
    ids = [str(s) for s in session.pool.sample_ids[:12]]
    for sid in ids:
        session.label(sid, "conv_ss_1", "conv_ss_2", "a")
    session.label(ids[0], "conv_ss_2", "conv_ss_1", "a")  # changes its mind: conv_ss_2 on ids[0]
    ranking = session.ranking(n_boot=50)
    labels = ranking[ranking["source"] == "labels"].set_index("model")
    assert labels.loc["conv_ss_1", "rank"] == 1
    assert labels.loc["conv_ss_1", "win_rate"] == pytest.approx(11 / 12)
    assert labels.loc["conv_ss_1", "n_comparisons"] == 12
    assert (
        labels.loc["conv_ss_1", "ci_low"] <= labels.loc["conv_ss_1", "strength"] <= labels.loc["conv_ss_1", "ci_high"]
    )
    # the ground-truth ranking compares the same 12 (sample, pair)s by per-image mIoU
    miou = session.evaluation(ids)["miou"]
    a = miou.sel(model="conv_ss_1", sample=ids).values
    b = miou.sel(model="conv_ss_2", sample=ids).values
    wins = (a > b + 1e-9).sum() + 0.5 * (np.abs(a - b) <= 1e-9).sum()
    truth = ranking[ranking["source"] == "ground truth"].set_index("model")
    assert truth.loc["conv_ss_1", "win_rate"] == pytest.approx(wins / 12)
    assert set(ranking["task"]) == {"ss"}
    with pytest.raises(MdcError, match="not in pool"):
        session.label("nope", "conv_ss_1", "conv_ss_2", "a")


def test_accept_mask_keeps_the_prediction_and_the_verdict(gt_session):
    session = gt_session
    sid = str(session.pool.sample_ids[0])
    session.label(sid, "conv_ss_1", "conv_ss_2", "both_wrong")
    saved = session.accept_mask(sid, "conv_ss_1", "conv_ss_2", "conv_ss_2")
    assert saved.verdict == "both_wrong" and saved.mask_model == "conv_ss_2"
    expected = session.predictions["prediction"].sel(model="conv_ss_2").values[0]
    np.testing.assert_array_equal(session.labels.mask(sid, "conv_ss_1", "conv_ss_2"), expected)
    sod = session.accept_mask(sid, "conv_sod_1", "conv_sod_2", "conv_sod_1")
    assert sod.verdict == "a"
    mask = session.labels.mask(sid, "conv_sod_1", "conv_sod_2")
    saliency = session.predictions["prediction"].sel(model="conv_sod_1").values[0]
    np.testing.assert_array_equal(mask, _adaptive_binary(saliency).astype(np.uint8) * 255)
    with pytest.raises(MdcError, match="must come from"):
        session.accept_mask(sid, "conv_sod_1", "conv_sod_2", "conv_ss_1")


def test_figures_and_scatter_pairs(mined_blob_session):
    session = mined_blob_session
    figures = session.figures(n_boot=10)
    assert set(figures) == {"heatmap", "scatter", "histograms", "ranking"}
    intra, cross = session.scatter_pairs()
    assert intra == ("ss_a", "ss_b") and cross == list(JOINT.cross_pairs)
    session.mine(CompetitionGroup(sod=MODELS["sod"]), Weights(0, 1, 0), k=4, constraints=Constraints.none())
    intra, cross = session.scatter_pairs()
    # issue 15, point 9: no models outside the competition; a single-task group gets no scatter
    assert intra == ("sod_p", "sod_q") and cross == []
    assert "scatter" not in session.figures(n_boot=10)
