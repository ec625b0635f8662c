"""The published MAD selection rules (IJCV 2021, ICLR 2020) and degenerate picks, on small hand-made maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError
from mdc_widgets.mining import (
    CompetitionGroup,
    Constraints,
    Weights,
    class_fractions,
    disputed_confidence,
    fuse,
    joint_score,
    load_mining,
    mine,
    per_class_quota,
    select_by_defender,
    select_ijcv2021,
    select_top_k,
)

SIZE = 10  # maps are SIZE x SIZE: a class area of r rows is r / SIZE


def label_maps(rows_per_image: list[dict[int, int]]) -> np.ndarray:
    """Label maps whose class c fills the given number of full rows (stacked from the top)."""
    maps = np.zeros((len(rows_per_image), SIZE, SIZE), np.uint8)
    for i, rows in enumerate(rows_per_image):
        top = 0
        for cls, count in rows.items():
            maps[i, top : top + count] = cls
            top += count
    return maps


def predictions_of(
    maps: dict[str, np.ndarray], tasks: dict[str, str], entropy: np.ndarray | None = None, classes: int = 3
) -> xr.Dataset:
    models = list(maps)
    data = np.stack([maps[m] for m in models], axis=1)
    n = len(data)
    variables = {"prediction": (("sample", "model", "y", "x"), data), "valid": ("sample", np.ones(n, bool))}
    if entropy is not None:
        variables["entropy"] = (("sample", "model", "y", "x"), entropy.astype(np.float16))
    names = {m: ([f"c{i}" for i in range(classes)] if tasks[m] == "ss" else ["background", "salient"]) for m in models}
    samples = np.array([f"s{i}" for i in range(n)], dtype=object)  # variable-length strings, as stored
    return xr.Dataset(
        variables,
        coords={"sample": samples, "model": models, "task": ("model", [tasks[m] for m in models])},
        attrs={"classes": names},
    )


# -- IJCV 2021: defender roles, per-class percentile bands, N per class per defender -----------


def test_roles_change_the_selection():
    # image 0: only B sees class 1 (the largest discrepancy); images 1-3: only A sees it
    a = label_maps([{}, {1: 3}, {1: 3}, {1: 3}])
    b = label_maps([{1: 3}, {}, {}, {}])
    d = np.array([1.0, 0.9, 0.8, 0.7])
    picks = select_ijcv2021(a, b, d, n_per_class=2, num_classes=2)
    assert picks[["index", "defender", "class"]].values.tolist() == [[1, 0, 1], [0, 1, 1], [2, 0, 1]]
    # with A as the only defender, image 0 (where B sees the object and A misses it) is never a candidate
    only_a = select_by_defender(class_fractions(a, 2), np.zeros((4, 2)), d, 2)
    assert only_a["index"].tolist() == [1, 2]


def test_a_class_whose_area_is_outside_its_percentile_band_is_dropped():
    # defender A's class-1 areas over the pool: 0.1 .. 0.5 (rows 1..5); the 25th-75th band is [0.2, 0.4]
    a = label_maps([{1: 5}, {1: 1}, {1: 2}, {1: 3}, {1: 4}])
    b = np.zeros_like(a)
    d = np.array([1.0, 0.95, 0.5, 0.6, 0.4])  # the two most discrepant images lie outside the band
    picks = select_ijcv2021(a, b, d, n_per_class=5, num_classes=2)
    assert picks["index"].tolist() == [3, 2, 4]
    assert picks.attrs["bands"][(0, 1)] == pytest.approx((0.2, 0.4))
    # without the band the two most discrepant images come first
    assert select_ijcv2021(a, b, d, n_per_class=5, num_classes=2, band=None)["index"].tolist()[:2] == [0, 1]


def test_band_is_per_class_and_quota_is_per_class_per_defender():
    # class 1 is large, class 2 small: one global band would drop one of them entirely
    a = label_maps([{1: 6}, {1: 7}, {1: 8}, {2: 1}, {2: 1}, {2: 1}])
    b = np.zeros_like(a)
    d = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    picks = select_ijcv2021(a, b, d, n_per_class=1, num_classes=3)
    assert sorted(zip(picks["defender"], picks["class"])) == [(0, 1), (0, 2)]
    assert picks["index"].tolist() == [1, 3]  # class 1: band [6.5, 7.5] rows keeps image 1 only


def test_unique_picks_an_image_once_and_the_next_candidate_fills_the_cell():
    a = label_maps([{1: 3, 2: 3}, {1: 3}, {2: 3}])
    d = np.array([1.0, 0.5, 0.4])
    unique = select_ijcv2021(a, np.zeros_like(a), d, n_per_class=1, num_classes=3)
    assert unique["index"].tolist() == [0, 2]
    published = select_ijcv2021(a, np.zeros_like(a), d, n_per_class=1, num_classes=3, unique=False)
    assert published["index"].tolist() == [0, 0]


def test_n_per_class_scales_down_with_the_budget():
    assert per_class_quota(800, 40) == 20  # PASCAL: 20 classes, two defenders
    assert per_class_quota(12, 4) == 3
    assert per_class_quota(1, 40) == 1
    a = label_maps([{1: 3}] * 6)
    picks = select_ijcv2021(a, a, np.linspace(1, 0.5, 6), k=4, num_classes=2)
    assert picks.attrs["n_per_class"] == 2 and len(picks) == 4  # 2 cells (both defenders see class 1)
    with pytest.raises(MdcError, match="n_per_class"):
        select_ijcv2021(a, a, np.ones(6), num_classes=2)


def test_sod_pairs_use_the_salient_area_as_their_one_class():
    s = np.zeros((4, SIZE, SIZE), np.uint8)
    for i, rows in enumerate([1, 3, 4, 9]):
        s[i, :rows] = 255
    picks = select_ijcv2021(s, np.zeros_like(s), np.array([1.0, 0.9, 0.8, 0.7]), n_per_class=4, task="sod")
    assert set(picks["class"]) == {1} and picks["index"].tolist() == [1, 2]  # band [0.25, 0.525]


def test_mine_ijcv2021_records_defender_and_class_and_round_trips(tmp_path):
    a = label_maps([{}, {1: 3}, {1: 3}, {2: 3}, {1: 2, 2: 2}])
    b = label_maps([{1: 3}, {}, {2: 3}, {}, {2: 4}])
    preds = predictions_of({"a": a, "b": b}, {"a": "ss", "b": "ss"})
    result = mine(
        preds,
        CompetitionGroup(ss=("a", "b")),
        Weights(1, 0, 0),
        k=10,
        protocol="ijcv2021",
        n_per_class=1,
        store=tmp_path,
    )
    picked = result["selected"].values
    assert result.attrs["protocol"] == "ijcv2021" and result.attrs["key"].endswith("__ijcv2021-rank")
    assert set(result["pick_defender"].values[picked]) <= {"a", "b"}
    assert (result["pick_defender"].values[~picked] == "").all() and (result["pick_class"].values[~picked] == -1).all()
    by_sample = dict(zip(result["sample"].values[picked], result["pick_defender"].values[picked]))
    assert by_sample["s0"] == "b"  # only b sees an object in s0
    stored = load_mining(tmp_path, result.attrs["key"])
    assert stored["pick_defender"].values.tolist() == result["pick_defender"].values.tolist()


def test_ijcv2021_is_a_single_pair_protocol():
    s = np.zeros((2, SIZE, SIZE), np.uint8)
    preds = predictions_of({"a": s, "b": s, "p": s, "q": s}, {"a": "ss", "b": "ss", "p": "sod", "q": "sod"})
    with pytest.raises(MdcError, match="one pair of one task"):
        mine(preds, CompetitionGroup(ss=("a", "b"), sod=("p", "q")), k=1, protocol="ijcv2021", save=False)
    with pytest.raises(MdcError, match="Unknown protocol"):
        mine(preds, CompetitionGroup(ss=("a", "b")), k=1, protocol="iclr", save=False)


# -- ICLR 2020: both models confident, class cap, unique class pairs ---------------------------


def test_confident_only_filter_removes_an_image():
    p = np.zeros((3, SIZE, SIZE), np.uint8)
    q = np.zeros_like(p)
    p[:, :5] = 255  # p: the top half, certainly salient
    q[:, 5:] = 255  # q: the bottom half: the whole map is disputed
    q[1, 5:] = 140  # ... but in image 1 q barely believes it (confidence |2s-1| = 0.1)
    q[1, :5] = 115
    preds = predictions_of({"p": p, "q": q}, {"p": "sod", "q": "sod"})
    group = CompetitionGroup(sod=("p", "q"))
    loose = mine(preds, group, Weights(0, 1, 0), k=3, constraints=Constraints.none(), save=False)
    assert loose["selected"].values.all()
    strict = mine(
        preds,
        group,
        Weights(0, 1, 0),
        k=3,
        save=False,
        constraints=Constraints(foreground_area=None, dedup_threshold=None, min_confidence=0.8),
    )
    assert strict["selected"].values.tolist() == [True, False, True]
    assert json.loads(strict.attrs["skipped"])["min_confidence"] == ["s1"]
    assert strict["confidence_min"].values[1] == pytest.approx(0.1, abs=0.01)


def test_ss_confidence_is_one_minus_the_stored_entropy_over_the_disputed_region():
    maps = np.zeros((1, 2, 2, 2), np.uint8)
    maps[0, 0] = [[1, 1], [0, 0]]
    entropy = np.zeros((1, 2, 2, 2))
    entropy[0, 1] = [[0.5, 0.5], [1.0, 1.0]]  # unsure everywhere, most where nobody disputes
    region = maps[:, 0] != maps[:, 1]
    np.testing.assert_allclose(disputed_confidence(maps, ["ss", "ss"], region, entropy), [[1.0, 0.5]])
    with pytest.raises(MdcError, match="entropy"):
        disputed_confidence(maps, ["ss", "ss"], region)


def test_class_cap_counts_every_models_class_and_class_pairs_are_unique():
    score = xr.DataArray([0.9, 0.8, 0.7, 0.6], dims="sample", coords={"sample": list("abcd")})
    classes = np.array([[1, 2], [2, 1], [1, 3], [3, 2]])
    off = {"foreground_area": None, "dedup_threshold": None}
    pairs = select_top_k(score, 4, Constraints(**off, unique_class_pairs=True), dominant_class=classes)
    assert pairs.samples == ["a", "c", "d"] and pairs.skipped["class_pair"] == ["b"]
    capped = select_top_k(score, 4, Constraints(**off, max_per_class=1), dominant_class=classes)
    assert capped.samples == ["a"]  # every later image repeats class 1 or 2
    assert capped.report()["class_quota"] == 3


# -- degenerate picks ---------------------------------------------------------------------------


def almost_black_and_real_sod_pairs() -> tuple[np.ndarray, np.ndarray]:
    """Images 0-2: both maps almost black (faint noise in disjoint spots); 3-5: real objects that disagree."""
    p = np.zeros((6, SIZE, SIZE), np.uint8)
    q = np.zeros_like(p)
    p[:3, :2, :3] = 12
    q[:3, 7:, 6:] = 9
    p[3:, :4] = 255
    q[3:, 6:] = 230
    return p, q


def test_both_saliency_maps_almost_black_tie_at_one_and_lose_the_tie():
    p, q = almost_black_and_real_sod_pairs()
    preds = predictions_of({"p": p, "q": q}, {"p": "sod", "q": "sod"})
    group = CompetitionGroup(sod=("p", "q"))
    result = mine(preds, group, Weights(0, 1, 0), k=3, save=False, constraints=Constraints(dedup_threshold=None))
    d = result["d_sod"].values
    assert np.allclose(d, 1.0)  # every image ties at the maximum disagreement
    # the tie goes to the larger disputed area, not to the sample id: the real disagreements win
    assert result["selected"].values.tolist() == [False] * 3 + [True] * 3
    assert result["degenerate"].values.tolist() == [True] * 3 + [False] * 3
    # the minimum-content rule removes them outright
    strict = mine(
        preds, group, Weights(0, 1, 0), k=6, save=False, constraints=Constraints(dedup_threshold=None, min_content=0.01)
    )
    assert strict["selected"].values.tolist() == [False] * 3 + [True] * 3
    assert json.loads(strict.attrs["report"])["min_content"] == 3


def test_ijcv2021_keeps_only_images_where_the_defender_sees_an_object():
    p, q = almost_black_and_real_sod_pairs()
    preds = predictions_of({"p": p, "q": q}, {"p": "sod", "q": "sod"})
    result = mine(preds, CompetitionGroup(sod=("p", "q")), Weights(0, 1, 0), k=6, protocol="ijcv2021", save=False)
    picked = np.flatnonzero(result["selected"].values)
    assert picked.tolist() and (picked >= 3).all() and not result["degenerate"].values[picked].any()


# -- fusion ---------------------------------------------------------------------------------------


def test_fusion_rank_raw_and_minmax():
    d = xr.DataArray(
        np.zeros((3, 2, 2)),
        dims=("sample", "model_a", "model_b"),
        coords={"sample": ["x", "y", "z"], "model_a": ["a", "b"], "model_b": ["a", "b"]},
    )
    d[:, 0, 1] = d[:, 1, 0] = [0.2, 0.3, 0.8]
    group = CompetitionGroup(ss=("a", "b"))
    raw = joint_score(d, group, Weights(2, 0, 0), fusion="raw")
    np.testing.assert_allclose(raw["score"], [0.4, 0.6, 1.6])
    np.testing.assert_allclose(joint_score(d, group, Weights(1, 0, 0), fusion="minmax")["score"], [0, 1 / 6, 1])
    np.testing.assert_allclose(joint_score(d, group, Weights(1, 0, 0))["score"], [1 / 3, 2 / 3, 1])
    assert raw.attrs["fusion"] == "raw"
    with pytest.raises(MdcError, match="Unknown fusion"):
        fuse(np.ones(2), "product")


# -- the command line ------------------------------------------------------------------------------


def _write_sod_folders(root, n: int = 8):
    from PIL import Image

    rng = np.random.default_rng(0)
    folders = {name: root / name for name in ("images", "p", "q")}
    for folder in folders.values():
        folder.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folders["images"] / f"im{i}.png")
        for name, shift in (("p", 0), ("q", 3 + i)):
            sal = np.zeros((32, 32), np.uint8)
            sal[4 + shift : 14 + shift + i, 6:20] = 255
            Image.fromarray(sal).save(folders[name] / f"im{i}.png")
    return folders


def test_cli_mine_takes_the_protocol_and_the_confidence_filter(tmp_path, capsys):
    import pandas as pd

    from mdc_widgets.cli import main

    folders = _write_sod_folders(tmp_path)
    out = tmp_path / "out"
    args = [
        "mine",
        "--pool",
        str(folders["images"]),
        "--maps",
        f"p={folders['p']}",
        "--maps",
        f"q={folders['q']}",
        "--competition",
        "sod",
        "--k",
        "4",
        "--image-size",
        "32",
        "--out",
        str(out),
        "--protocol",
        "ijcv2021",
        "--min-confidence",
        "0.5",
        "--fusion",
        "minmax",
    ]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"] == "ijcv2021" and summary["fusion"] == "minmax"
    assert summary["constraints"]["min_confidence"] == 0.5
    ranked = pd.read_csv(out / "ranked.csv")
    chosen = ranked[ranked["selected"] == 1]
    assert 1 <= len(chosen) <= 4 and set(chosen["defender"]) <= {"p", "q"} and set(chosen["class"]) == {1}


def test_cli_rejects_ijcv2021_for_a_joint_competition(tmp_path, capsys):
    from mdc_widgets.cli import main

    with pytest.raises(SystemExit):
        main(["mine", "--pool", "x", "--competition", "sod", "--k", "1", "--out", str(tmp_path), "--protocol", "gmad"])
    folders = _write_sod_folders(tmp_path, n=3)
    args = [
        "mine",
        "--pool",
        str(folders["images"]),
        "--maps",
        f"p={folders['p']}",
        "--maps",
        f"q={folders['q']}",
        "--maps",
        f"r={folders['q']}",
        "--competition",
        "sod",
        "--k",
        "2",
        "--image-size",
        "32",
        "--out",
        str(tmp_path / "out"),
        "--protocol",
        "ijcv2021",
    ]
    assert main(args) == 2
    assert "one pair of one task" in capsys.readouterr().err


def test_foreground_mask_of_uint8_saliency_is_the_float_binarisation():
    from mdc_widgets.discrepancy import binarize_saliency
    from mdc_widgets.mining.protocols import foreground_mask

    rng = np.random.default_rng(2)
    maps = rng.integers(0, 256, (6, 9, 11)).astype(np.uint8)
    maps[0] = 0  # an empty map is all background
    maps[1] = 37  # a flat map: every pixel at the threshold is salient
    maps[2] *= rng.random((9, 11)) < 0.1  # sparse
    np.testing.assert_array_equal(foreground_mask(maps, "sod"), binarize_saliency(maps))
    np.testing.assert_array_equal(
        foreground_mask(maps.astype(np.float32) / 255, "sod"), binarize_saliency(maps.astype(np.float32) / 255)
    )
