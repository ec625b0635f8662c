"""Real photos: SOD-300 with its ground truth and three published saliency-map folders; EdgeNets checkpoints.

(a) native-resolution metrics of the released maps against PySODMetrics run on
the same files; (b) ``python -m mdc_widgets mine`` end to end on 8 photos;
(c) the CLI's answer to bad input. Everything here needs ``../shared`` beside
the repository and is skipped without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"
SOD300 = SHARED / "data" / "sod300"
WEIGHTS = SHARED / "weights" / "edgenets"
METHODS = ("amulet", "dss", "picanet")
# two near-empty PiCANet maps (2092, 55067: max < 13/255) are among the landscape ids on purpose
NEAR_EMPTY = ("2092", "55067")


def _require_sod300() -> None:
    if not (SOD300 / "images").is_dir():
        pytest.skip(f"the SOD-300 photos are not here: {SOD300} is missing (a clone with ../shared beside it)")


def _require_weights(*files: str) -> None:
    missing = [f for f in files if not (WEIGHTS / f).is_file()]
    if missing:
        pytest.skip(f"EdgeNets checkpoints {missing} are not in {WEIGHTS} (a clone with ../shared beside it)")


def _ids(landscape: int, portrait: int) -> list[str]:
    """The first ids of each orientation (portrait = the rotated ones), plus the near-empty PiCANet maps."""
    ids = (SOD300 / "ids.txt").read_text().split()
    rotated = set((SOD300 / "rotated_ids.txt").read_text().split())
    chosen = [i for i in ids if i not in rotated][:landscape] + [i for i in ids if i in rotated][:portrait]
    return chosen + [i for i in NEAR_EMPTY if i in ids and i not in chosen]


def _grey(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


# -- (a) native-resolution metrics against PySODMetrics ----------------------------------------------------


@pytest.fixture(scope="module")
def native_evaluation(tmp_path_factory):
    _require_sod300()
    from mdc_widgets.data import open_pool
    from mdc_widgets.metrics import evaluate_native
    from mdc_widgets.models import MapCompetitor
    from mdc_widgets.predictions import RunOptions, predict_pool

    ids = _ids(6, 5)
    pool = open_pool(
        [SOD300 / "images" / f"{i}.jpg" for i in ids],
        image_size=96,
        fit="letterbox",
        ground_truth={"saliency": SOD300 / "gt"},
    )
    maps = [MapCompetitor(m, SOD300 / "maps" / m) for m in METHODS]
    store = tmp_path_factory.mktemp("sod300_store")
    predictions = predict_pool(pool, maps, store, RunOptions(chunk_size=8), progress=False)
    return ids, pool, predictions, evaluate_native(predictions, pool)


def _pysod(method: str, ids: list[str], normalize: bool) -> dict:
    import py_sod_metrics

    with warnings.catch_warnings():  # 1.6.2 announces FmeasureV2; Fmeasure is the class the README used
        warnings.simplefilter("ignore", UserWarning)
        fm = py_sod_metrics.Fmeasure()
    mae, sm = py_sod_metrics.MAE(), py_sod_metrics.Smeasure()
    for i in ids:
        pred, gt = _grey(SOD300 / "maps" / method / f"{i}.png"), _grey(SOD300 / "gt" / f"{i}.png")
        if not normalize:  # PySODMetrics' normalize=False: the caller gives map/255 and gt > 128
            pred, gt = pred / 255.0, gt > 128
        for metric in (fm, mae, sm):
            metric.step(pred, gt, normalize=normalize)
    return {
        "mae": mae.get_results()["mae"],
        "fbeta_max": fm.get_results()["fm"]["curve"].max(),
        "curve": np.mean(fm.changeable_fms, axis=0),
        "s_measure": sm.get_results()["sm"],
        "mae_image": np.array(mae.maes),
        "s_image": np.array(sm.sms),
    }


def test_the_photos_of_both_orientations_are_read_at_their_own_size(native_evaluation):
    ids, pool, predictions, evaluation = native_evaluation
    rotated = set((SOD300 / "rotated_ids.txt").read_text().split())
    sizes = {pool.native_size(k) for k in range(len(pool))}
    assert sizes == {(321, 481), (481, 321)}
    for k, i in enumerate(ids):
        assert pool.native_size(k) == ((481, 321) if i in rotated else (321, 481))
        truth = pool.native_ground_truth(k)["saliency"]
        assert truth.shape == pool.native_size(k) and set(np.unique(truth)) <= {0, 255}
    assert predictions["valid"].values.all() and predictions["prediction"].shape == (len(ids), 3, 96, 96)
    assert evaluation.attrs["resolution"] == "native" and list(evaluation["sample"].values) == ids


@pytest.mark.parametrize("method", METHODS)
def test_native_metrics_equal_pysodmetrics_without_normalisation(native_evaluation, method):
    from mdc_widgets.metrics import summarize

    ids, _, _, evaluation = native_evaluation
    ours = summarize(evaluation).sel(model=method)
    ref = _pysod(method, ids, normalize=False)
    assert float(ours["mae"]) == pytest.approx(ref["mae"], abs=1e-6)
    assert float(ours["fbeta_max"]) == pytest.approx(ref["fbeta_max"], abs=1e-4)
    assert float(ours["s_measure"]) == pytest.approx(ref["s_measure"], abs=1e-4)
    per_image = evaluation.sel(model=method)
    np.testing.assert_allclose(per_image["mae"].values, ref["mae_image"], atol=1e-6)
    np.testing.assert_allclose(per_image["s_measure"].values, ref["s_image"], atol=1e-4)
    # the whole mean F-beta curve (thresholds 255..0), not just its maximum
    np.testing.assert_allclose(per_image["fbeta_curve"].mean("sample").values, ref["curve"], atol=1e-4)


def test_min_max_normalised_pysodmetrics_agree_for_maps_that_span_0_to_255(native_evaluation):
    from mdc_widgets.metrics import summarize

    ids, _, _, evaluation = native_evaluation
    summary = summarize(evaluation)
    for method in ("amulet", "dss"):
        spans = {(int(m.min()), int(m.max())) for m in (_grey(SOD300 / "maps" / method / f"{i}.png") for i in ids)}
        assert spans == {(0, 255)}  # why the stretch changes nothing for these two
        ref = _pysod(method, ids, normalize=True)
        ours = summary.sel(model=method)
        assert float(ours["mae"]) == pytest.approx(ref["mae"], abs=1e-5)
        assert float(ours["fbeta_max"]) == pytest.approx(ref["fbeta_max"], abs=1e-3)
        assert float(ours["s_measure"]) == pytest.approx(ref["s_measure"], abs=1e-3)
    # PiCANet's near-empty maps are stretched by the normalising variant: there the two conventions differ
    if all(i in ids for i in NEAR_EMPTY):
        ref = _pysod("picanet", ids, normalize=True)
        assert abs(float(summary["fbeta_max"].sel(model="picanet")) - ref["fbeta_max"]) > 1e-3


# -- (b) the CLI end to end ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def eight_photos(tmp_path_factory) -> dict[str, Path]:
    """images/, gt/ and one folder per method for 8 SOD-300 ids (5 landscape, 3 portrait)."""
    _require_sod300()
    root = tmp_path_factory.mktemp("eight")
    ids = _ids(5, 3)[:8]
    folders = {"root": root, "images": root / "images", "gt": root / "gt", **{m: root / "maps" / m for m in METHODS}}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i in ids:
        shutil.copy(SOD300 / "images" / f"{i}.jpg", folders["images"])
        shutil.copy(SOD300 / "gt" / f"{i}.png", folders["gt"])
        for m in METHODS:
            shutil.copy(SOD300 / "maps" / m / f"{i}.png", folders[m])
    folders["ids"] = ids  # type: ignore[assignment]
    return folders


def _mine_args(photos: dict, out: Path, *extra: str, k: str = "3") -> list[str]:
    return [
        "mine",
        "--pool",
        str(photos["images"]),
        "--ground-truth",
        f"saliency={photos['gt']}",
        *[a for m in METHODS for a in ("--maps", f"{m}={photos[m]}")],
        "--k",
        k,
        "--image-size",
        "64",
        "--out",
        str(out),
        *extra,
    ]


def _run_cli(args: list[str], env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mdc_widgets", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
    )


def _check_ranked(out: Path, ids: list[str], k: int) -> pd.DataFrame:
    ranked = pd.read_csv(out / "ranked.csv", dtype={"sample_id": str})
    assert list(ranked.columns[:10]) == [
        "sample_id",
        "rank",
        "selected",
        "score",
        "term_ss",
        "term_sod",
        "term_cross",
        "d_ss",
        "d_sod",
        "d_cross",
    ]
    assert len(ranked) == len(ids) and sorted(ranked["sample_id"]) == sorted(ids)  # sample ids are the stems
    assert ranked["rank"].tolist() == list(range(1, len(ids) + 1))
    assert ranked["selected"].sum() == k and ranked["selected"].tolist() == [1] * k + [0] * (len(ids) - k)
    rest = ranked.loc[ranked["selected"] == 0, "score"].to_numpy()
    assert (np.diff(rest) <= 1e-12).all()  # best first among the unselected
    return ranked


def _check_evaluation(out: Path, models: list[str], n: int, k: int) -> pd.DataFrame:
    evaluation = pd.read_csv(out / "evaluation.csv")
    assert sorted(zip(evaluation["model"], evaluation["set"])) == sorted(
        (m, s) for m in models for s in ("selected", "pool")
    )
    assert set(evaluation.loc[evaluation["set"] == "selected", "n_images"]) == {k}
    assert set(evaluation.loc[evaluation["set"] == "pool", "n_images"]) == {n}
    for metric in ("fbeta_max", "mae", "s_measure"):
        assert evaluation[metric].between(0, 1).all(), metric
    return evaluation


def test_cli_mines_released_maps_end_to_end(eight_photos):
    from mdc_widgets.data import open_pool

    out = eight_photos["root"] / "out_sod"
    done = _run_cli(_mine_args(eight_photos, out, "--competition", "sod"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "selected 3 of 8 images" in done.stdout
    ids = eight_photos["ids"]
    ranked = _check_ranked(out, ids, 3)
    # three SOD folders: the SOD term averages three pairs; no SS model, so no other term
    assert ranked["term_sod"].between(0, 1).all() and ranked["d_sod"].notna().all()
    assert ranked["term_ss"].isna().all() and ranked["d_ss"].isna().all() and ranked["d_cross"].isna().all()
    np.testing.assert_allclose(ranked["score"], ranked["term_sod"])
    evaluation = _check_evaluation(out, list(METHODS), 8, 3)
    # the pool rows are the published maps scored at native size (map/255 against gt > 128)
    for method in METHODS:
        expected = np.mean(
            [
                np.abs(
                    _grey(eight_photos[method] / f"{i}.png") / 255.0 - (_grey(eight_photos["gt"] / f"{i}.png") > 128)
                ).mean()
                for i in ids
            ]
        )
        row = evaluation[(evaluation["model"] == method) & (evaluation["set"] == "pool")]
        assert float(row["mae"].iloc[0]) == pytest.approx(expected, abs=2e-6)
    summary = json.loads((out / "summary.json").read_text())
    pool = open_pool(eight_photos["images"], image_size=64, fit="letterbox")
    assert summary["pool"]["fingerprint"] == pool.fingerprint
    assert summary["pool"]["n_images"] == 8 and summary["pool"]["image_size"] == [64, 64]
    assert summary["pool"]["fit"] == "letterbox" and summary["k"] == 3 and summary["selected"] == 3
    assert summary["competition"] == "sod"
    assert {m: v["kind"] for m, v in summary["models"].items()} == {m: "maps" for m in METHODS}
    assert {"predict_s", "mine_s", "evaluate_s"} <= set(summary["timings"])
    assert all(v >= 0 for v in summary["timings"].values())
    assert summary["parameters"]["k"] == 3 and summary["parameters"]["competition"] == "sod"


def test_cli_joint_competition_with_two_edgenets_models(eight_photos):
    _require_weights("espnetv2_s_0.5_pascal_256x256.pth", "dicenet_s_0.2_pascal_256x256.pth")
    out = eight_photos["root"] / "out_joint"
    args = _mine_args(
        eight_photos,
        out,
        "--competition",
        "joint",
        "--model",
        "espnetv2_s0.5_voc256",
        "--model",
        "dicenet_s0.2_voc256",
        "--device",
        "cpu",
    )
    done = _run_cli(args, env={"MDC_WIDGETS_WEIGHTS": str(WEIGHTS)})
    assert done.returncode == 0, done.stderr[-3000:]
    ranked = _check_ranked(out, eight_photos["ids"], 3)
    for term in ("term_ss", "term_sod", "term_cross"):
        assert ranked[term].between(0, 1).all(), term
    assert ranked[["d_ss", "d_sod", "d_cross"]].notna().all().all()
    np.testing.assert_allclose(
        ranked["score"], ranked["term_ss"] + ranked["term_sod"] + ranked["term_cross"], rtol=1e-9
    )
    models = [*METHODS, "espnetv2_s0.5_voc256", "dicenet_s0.2_voc256"]
    evaluation = _check_evaluation(out, models, 8, 3)
    assert set(evaluation.loc[evaluation["model"].str.contains("_voc"), "task"]) == {"ss"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["competition"] == "joint" and summary["weights"] == {"ss": 1, "sod": 1, "cross": 1}
    assert {m: v["kind"] for m, v in summary["models"].items()} == {
        **{m: "maps" for m in METHODS},
        "espnetv2_s0.5_voc256": "network",
        "dicenet_s0.2_voc256": "network",
    }


def test_cli_skip_bad_maps_leaves_the_image_out(eight_photos, tmp_path, capsys):
    from mdc_widgets.cli import main

    holey = tmp_path / "dss"
    shutil.copytree(eight_photos["dss"], holey)
    gone = eight_photos["ids"][1]
    (holey / f"{gone}.png").unlink()
    out = tmp_path / "out"
    args = [
        "mine",
        "--pool",
        str(eight_photos["images"]),
        "--maps",
        f"amulet={eight_photos['amulet']}",
        "--maps",
        f"dss={holey}",
        "--competition",
        "sod",
        "--k",
        "3",
        "--image-size",
        "32",
        "--out",
        str(out),
        "--skip-bad-maps",
    ]
    assert main(args) == 0, capsys.readouterr().err
    ranked = pd.read_csv(out / "ranked.csv", dtype={"sample_id": str})
    assert len(ranked) == 8 and ranked["selected"].sum() == 3
    last = ranked.iloc[-1]
    assert last["sample_id"] == gone and last["selected"] == 0 and np.isnan(last["score"])
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["skipped_by_models"]["dss"]) == [gone]
    assert not (out / "evaluation.csv").exists()  # no ground truth given


# -- (c) the CLI's answer to bad input -------------------------------------------------------------------------


def _one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def _bad_cases(photos: dict, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, a fragment the error line must hold)."""
    holey = tmp / "dss_holey"
    if not holey.exists():
        shutil.copytree(photos["dss"], holey)
        (holey / f"{photos['ids'][2]}.png").unlink()
    base = ["mine", "--pool", str(photos["images"]), "--image-size", "32", "--out", str(tmp / "out")]
    two = ["--maps", f"amulet={photos['amulet']}", "--maps", f"dss={photos['dss']}"]
    return {
        "pool_missing": (
            [*base[:1], "--pool", str(tmp / "no_such_pool"), *base[3:], *two, "--competition", "sod", "--k", "3"],
            str(tmp / "no_such_pool"),
        ),
        "map_missing": (
            [
                *base,
                "--maps",
                f"amulet={photos['amulet']}",
                "--maps",
                f"dss={holey}",
                "--competition",
                "sod",
                "--k",
                "3",
            ],
            f"1 missing (e.g. {photos['ids'][2]})",
        ),
        "k_zero": ([*base, *two, "--competition", "sod", "--k", "0"], "k must be at least 1"),
        "k_too_big": ([*base, *two, "--competition", "sod", "--k", "9"], "got 9"),
        "unknown_model": ([*base, *two, "--model", "no_such_net", "--competition", "sod", "--k", "3"], "'no_such_net'"),
        "weights_absent": (
            [*base, *two, "--model", "espnetv2_s0.5_voc256", "--competition", "sod", "--k", "3"],
            "espnetv2_s_0.5_pascal_256x256.pth",
        ),
        "gt_folder_missing": (
            [*base, *two, "--ground-truth", f"saliency={tmp / 'no_gt'}", "--competition", "sod", "--k", "3"],
            str(tmp / "no_gt"),
        ),
        "maps_folder_missing": (
            [
                *base,
                "--maps",
                f"amulet={tmp / 'no_maps'}",
                "--maps",
                f"dss={photos['dss']}",
                "--competition",
                "sod",
                "--k",
                "3",
            ],
            "no_maps",
        ),
        "maps_without_name": (
            [*base, "--maps", str(photos["amulet"]), "--competition", "sod", "--k", "3"],
            "--maps takes NAME=VALUE",
        ),
        "too_few_models": (
            [*base, "--maps", f"amulet={photos['amulet']}", "--competition", "sod", "--k", "3"],
            "'sod' competition needs at least 0 SS and 2 SOD",
        ),
        "image_size": ([*base[:4], "4", *base[5:], *two, "--competition", "sod", "--k", "3"], "--image-size"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "pool_missing",
        "map_missing",
        "k_zero",
        "k_too_big",
        "unknown_model",
        "weights_absent",
        "gt_folder_missing",
        "maps_folder_missing",
        "maps_without_name",
        "too_few_models",
        "image_size",
    ],
)
def test_cli_bad_input_exits_2_with_one_error_line_naming_it(eight_photos, tmp_path, capsys, monkeypatch, case):
    from mdc_widgets.cli import main

    monkeypatch.delenv("MDC_WIDGETS_WEIGHTS", raising=False)  # so the EdgeNets weights are absent
    argv, fragment = _bad_cases(eight_photos, tmp_path)[case]
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert fragment in line, line
