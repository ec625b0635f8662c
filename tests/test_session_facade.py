"""The logic behind the Session's actions, tested without a Session, and the facts that have one home."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.labeling import LabelStore
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights, result_key, selected_samples
from mdc_widgets.ranking import comparison_samples, components, ground_truth_comparisons, rank_sources
from mdc_widgets.tables import filter_table, ranked_table, score_ranks, verdict_column
from mdc_widgets.views import compared_pairs, sample_detail, sample_scores, scatter_pairs
from mdc_widgets.viz.colors import LABEL_PALETTE, label_legend, overlay_labels

GROUP = CompetitionGroup(ss=("a", "b"), sod=("p",))


def _predictions(n: int = 4, size: int = 6, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    maps = np.zeros((n, 3, size, size), np.uint8)
    maps[:, :2] = rng.integers(0, 3, (n, 2, size, size))
    maps[:, 2] = rng.integers(0, 256, (n, size, size))
    return xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), maps), "valid": ("sample", np.ones(n, bool))},
        coords={
            "sample": [f"s{i}" for i in range(n)],
            "model": ["a", "b", "p"],
            "task": ("model", ["ss", "ss", "sod"]),
        },
        attrs={"classes": {"a": ["bg", "cat", "dog"], "b": ["bg", "cat", "dog"], "p": ["bg", "salient"]}},
    )


def _result(scores: list[float], selection_rank: list[int], group: CompetitionGroup = GROUP) -> xr.Dataset:
    n = len(scores)
    return xr.Dataset(
        {
            "score": ("sample", np.asarray(scores, float)),
            "selected": ("sample", np.asarray(selection_rank) >= 0),
            "selection_rank": ("sample", np.asarray(selection_rank, np.int64)),
            "dominant_class": ("sample", np.arange(n) % 3),
        },
        coords={"sample": [f"s{i}" for i in range(n)]},
        attrs={"group_ss": list(group.ss), "group_sod": list(group.sod)},
    )


# ---- one home per fact ----------------------------------------------------------------------
def test_result_key_is_the_key_mine_and_the_session_give(tmp_path):
    from mdc_widgets.mining import mine

    preds = _predictions(n=12)
    result = mine(preds, CompetitionGroup(ss=("a", "b")), Weights.for_kind("ss"), k=3, save=False)
    assert result.attrs["key"] == result_key(CompetitionGroup(ss=("a", "b")), Weights(1, 0, 0), 3) == "a-b__w1-0-0__k3"
    raw = mine(preds, CompetitionGroup(ss=("a", "b")), Weights(1, 0, 0), k=3, save=False, fusion="raw")
    assert raw.attrs["key"] == "a-b__w1-0-0__k3__mdc-raw"


def test_weights_for_kind_and_coerce_are_the_one_definition_of_the_terms():
    assert Weights.for_kind("ss") == Weights(1, 0, 0) and Weights.for_kind("cross") == Weights(0, 0, 1)
    assert Weights.for_kind("joint") == Weights(1, 1, 1)
    assert Weights.for_kind("sod").terms == ("sod",) and Weights.for_kind("joint").terms == ("ss", "sod", "cross")
    assert Weights.coerce((1, 0.5, 2)) == Weights.coerce({"ss": 1, "sod": 0.5, "cross": 2}) == Weights(1, 0.5, 2)
    given = Weights(0, 1, 0)
    assert Weights.coerce(given) is given
    with pytest.raises(MdcError, match="three numbers"):
        Weights.coerce([1, 2])
    with pytest.raises(MdcError, match="keys ss, sod and cross"):
        Weights.coerce({"ss": 1, "depth": 1})
    with pytest.raises(MdcError, match="Unknown kind"):
        Weights.for_kind("depth")


def test_single_task_weights_agree_across_strategies_experiments_and_picker():
    from mdc_widgets.experiments.paper import _set_weights
    from mdc_widgets.strategies.mad import mad_ss

    preds = _predictions(n=6)
    assert mad_ss(preds, device="cpu").attrs["weights"] == str(Weights.for_kind("ss").as_dict())
    assert _set_weights("ss_only", (3, 3, 3)) == Weights.for_kind("ss")
    assert _set_weights("sod_only", (3, 3, 3)) == Weights.for_kind("sod")
    assert _set_weights("joint", [1, 1, 2]) == Weights(1, 1, 2)


def test_paper_config_holds_constraints_and_keeps_its_keywords():
    from mdc_widgets.experiments.paper import PaperConfig, _constraints

    assert PaperConfig().constraints == Constraints()
    config = PaperConfig(dedup_threshold=None, max_per_class=2)
    assert config.constraints == Constraints(dedup_threshold=None, max_per_class=2)
    assert (config.dedup_threshold, config.max_per_class, config.foreground_area) == (None, 2, (0.005, 0.95))
    as_json = json.loads(json.dumps(config.as_dict()))
    assert as_json["constraints"]["max_per_class"] == 2 and "dedup_threshold" not in as_json
    # without image features the dedup switch goes off, never onto thumbnails of the maps
    assert _constraints(PaperConfig(), None).dedup_threshold is None
    assert _constraints(PaperConfig(), np.zeros((1, 64))).dedup_threshold == Constraints().dedup_threshold


def test_selected_samples_is_best_first_and_mine_groups_excludes_them():
    result = _result([0.1, 0.9, 0.5, 0.7], [-1, 0, 2, 1])
    assert selected_samples(result) == ["s1", "s3", "s2"]


def test_one_palette_paints_previews_overlays_and_legends_alike():
    from mdc_widgets.data import overlay_ground_truth
    from mdc_widgets.explain import legend
    from mdc_widgets.explain import overlay_labels as explain_overlay
    from mdc_widgets.export.masks import label_png

    image = np.zeros((1, 2, 2, 3), np.uint8)
    labels = np.array([[[0, 3], [5, 5]]], np.uint8)
    preview = overlay_ground_truth(image, labels, None, alpha=1.0)[0]
    overlay = overlay_labels(image[0], labels[0], alpha=1.0)
    np.testing.assert_array_equal(preview, overlay)
    np.testing.assert_array_equal(explain_overlay(image[0], labels[0], alpha=1.0), overlay)
    assert overlay[0, 1].tolist() == LABEL_PALETTE[3].tolist() == [128, 128, 0]
    assert legend(["bg", "a", "b", "c"], present=np.array([3])) == label_legend(["bg", "a", "b", "c"], [3])
    assert label_legend(["bg", "a", "b", "c"], [3]) == [("c", "#808000")]
    from io import BytesIO

    from PIL import Image

    palette = Image.open(BytesIO(label_png(labels[0]))).getpalette()
    assert palette[9:12] == LABEL_PALETTE[3].tolist()


# ---- tables -----------------------------------------------------------------------------------
def test_filter_language_combines_text_tuples_and_mappings():
    t = pd.DataFrame({"score": [0.9, 0.2, 0.7, 0.4], "name": ["cat", "dog", "cow", "cod"], "ok": [1, 0, 1, 0]})
    assert filter_table(t, "score >= 0.4 and name ~ co")["name"].tolist() == ["cow", "cod"]
    assert filter_table(t, ["ok", {"name": ["cat", "dog"]}])["name"].tolist() == ["cat"]
    assert filter_table(t, "not ok & name contains d")["name"].tolist() == ["dog", "cod"]
    with pytest.raises(MdcError, match="no such column"):
        filter_table(t, "area > 1")
    with pytest.raises(MdcError, match="both sides must be numbers"):
        filter_table(t, "name < 3")


def test_ranked_table_from_a_result_metadata_and_verdicts(tmp_path):
    result = _result([0.2, 0.9, np.nan, 0.5], [-1, 0, -1, 1])
    metadata = pd.DataFrame(
        {"occlusion": [0.1, 0.2, 0.3, 0.4]}, index=pd.Index(["s0", "s1", "s2", "s3"], name="sample")
    )
    labels = LabelStore(tmp_path / "l.jsonl")
    labels.label("s3", "a", "b", "a")
    labels.label("s0", "a", "q", "b")  # not a pair of the group
    table = ranked_table(result, metadata, labels, ["bg", "cat", "dog"], filters="occlusion > 0.15")
    assert table["sample"].tolist() == ["s1", "s3", "s2"]
    assert table["rank"].tolist() == [1, 2, 4]
    assert table["pred_class_name"].tolist() == ["cat", "bg", "dog"]
    assert table.loc[table["sample"] == "s3", "verdicts"].item() == "a|b:a"
    assert score_ranks(np.array([np.nan, 1.0])).tolist() == [2, 1]
    assert verdict_column(labels, ["s0"], GROUP) == [""]


# ---- views ------------------------------------------------------------------------------------
def test_sample_detail_without_a_session_matches_an_independent_computation():
    preds = _predictions()
    image = np.full((6, 6, 3), 50, np.uint8)
    result = _result([0.3, 0.8, 0.1, 0.5], [-1, 0, -1, 1])
    detail = sample_detail(preds, 1, image, result=result)
    maps = preds["prediction"].values[1]
    assert detail["sample"] == "s1" and detail["models"] == ["a", "b", "p"]
    assert set(detail["disagreement"]) == {"a|b", "a|p", "b|p"}
    np.testing.assert_array_equal(detail["disagreement"]["a|b"]["map"], (maps[0] != maps[1]).astype(np.float32))
    assert detail["disagreement"]["a|b"]["fraction"] == pytest.approx((maps[0] != maps[1]).mean())
    np.testing.assert_array_equal(detail["predictions"]["a"]["overlay"], overlay_labels(image, maps[0]))
    assert detail["scores"]["rank"] == 1 and detail["scores"]["pred_class"] == 1
    assert detail["ground_truth"] is None and detail["labels"] == {}
    assert sample_scores(result, 2)["rank"] == 4


def test_detail_disagreements_carry_each_pairs_ranking_d_and_tied_samples_get_distinct_ranks():
    from mdc_widgets.discrepancy import compute_discrepancies

    preds = _predictions(n=5, seed=3)
    image = np.full((6, 6, 3), 50, np.uint8)
    result = _result([0.9, 0.9, 0.2, 0.9, 0.1], [0, 1, -1, 2, -1])
    full = compute_discrepancies(preds, device="cpu")
    detail = sample_detail(preds, 3, image, result=result)
    for view in detail["disagreement"].values():
        a, b = view["model_a"], view["model_b"]
        assert view["d"] == pytest.approx(float(full.sel(sample="s3", model_a=a, model_b=b)))
    assert detail["disagreement"]["a|b"]["d"] != detail["disagreement"]["a|b"]["fraction"]
    # three samples tie at the top score: ranks 1, 2, 3 in pool order, as in ranked_table
    assert [sample_scores(result, i)["rank"] for i in (0, 1, 3)] == [1, 2, 3]
    assert ranked_table(result).set_index("sample").loc[["s0", "s1", "s3"], "rank"].tolist() == [1, 2, 3]


def test_compared_and_scatter_pairs_follow_the_group():
    assert compared_pairs(["p", "a", "b"], {"a": "ss", "b": "ss", "p": "sod"}) == [
        ("a", "p", "cross"),
        ("b", "p", "cross"),
        ("a", "b", "ss"),
    ]
    assert scatter_pairs(CompetitionGroup(sod=("p", "q"))) == (("p", "q"), [])
    assert scatter_pairs(GROUP) == (("a", "b"), [("a", "p"), ("b", "p")])


# ---- ranking sources --------------------------------------------------------------------------
def test_ranking_sources_without_a_session():
    assert components([("a", "b"), ("x", "y"), ("b", "c")]) == [["a", "b", "c"], ["x", "y"]]
    first = _result([0.3, 0.8, 0.1, 0.5], [-1, 1, -1, 0], CompetitionGroup(ss=("a", "b")))
    pairs = comparison_samples("selected", results=[first], models=["a", "b"], sample_ids=["s0", "s1", "s2", "s3"])
    assert pairs == {("a", "b"): ["s1", "s3"]}  # pool order within a result
    with pytest.raises(MdcError, match="'labeled', 'selected', 'pool'"):
        comparison_samples("everything")
    miou = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.7, 0.3]])
    evaluation = xr.Dataset(
        {"miou": (("sample", "model"), miou)}, coords={"sample": ["s0", "s1", "s2", "s3"], "model": ["a", "b"]}
    )
    comparisons = ground_truth_comparisons(evaluation, pairs, lambda m: "ss")
    assert comparisons["winner"].tolist() == ["b", "a"] and set(comparisons["metric"]) == {"miou"}
    ranked = rank_sources([("ground truth", comparisons)], lambda m: "ss", n_boot=20)
    assert ranked["model"].tolist() in (["a", "b"], ["b", "a"]) and set(ranked["component"]) == {"a+b"}
    assert list(rank_sources([], lambda m: None).columns)[:3] == ["source", "component", "model"]


def test_picker_starts_from_the_constraints_defaults_and_the_kinds_weights():
    pytest.importorskip("ipywidgets")
    from mdc_widgets.widgets.picker import CompetitionPicker

    class _Offer:
        """The two things a picker asks of a session: the pool's size and the models per task."""

        pool = range(10)

        def available_models(self, task: str) -> list[str]:
            return {"ss": ["a", "b"], "sod": ["p", "q"]}[task]

    picker = CompetitionPicker(_Offer(), task="joint")
    assert picker.constraints() == Constraints(min_confidence=None)
    assert picker.weights() == Weights.for_kind("joint")
    for kind in ("ss", "sod", "cross"):
        picker.task.value = kind
        assert picker.weights() == Weights.for_kind(kind)
