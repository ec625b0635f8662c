"""``evaluate`` and ``summarize`` on a tiny synthetic pool, against the per-image functions and PySODMetrics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from mdc_widgets.metrics import evaluate, fbeta_adaptive, fbeta_max, mae, miou, s_measure, summarize

MODELS = ["ss_a", "ss_b", "sod_p"]


def make_pool(n: int = 9, size: int = 12, seed: int = 0) -> tuple[xr.Dataset, xr.Dataset]:
    rng = np.random.default_rng(seed)
    semantic = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        y, x = rng.integers(0, size - 4, 2)
        semantic[i, y : y + 5, x : x + 5] = rng.integers(1, 3)
    semantic[0] = 0  # an image with nothing salient
    saliency = np.where(semantic > 0, 255, 0).astype(np.uint8)
    ss = np.where(rng.random((n, 2, size, size)) < 0.8, semantic[:, None], rng.integers(0, 3, (n, 2, size, size)))
    sod = np.clip(saliency[:, None] * 0.8 + rng.normal(30, 40, (n, 1, size, size)), 0, 255)
    ids = [f"pool-{k:06d}" for k in range(n)]
    predictions = xr.Dataset(
        {
            "prediction": (("sample", "model", "y", "x"), np.concatenate([ss, sod], 1).astype(np.uint8)),
            "valid": ("sample", np.ones(n, bool)),
        },
        coords={"sample": ids, "model": MODELS, "task": ("model", ["ss", "ss", "sod"])},
        attrs={
            "classes": {
                "ss_a": ["background", "a", "b"],
                "ss_b": ["background", "a", "b"],
                "sod_p": ["background", "salient"],
            }
        },
    )
    truth = xr.Dataset(
        {"semantic": (("sample", "y", "x"), semantic), "saliency": (("sample", "y", "x"), saliency)},
        coords={"sample": ids},
    )
    return predictions, truth


def test_per_image_values_are_the_functional_metrics():
    preds, truth = make_pool()
    ev = evaluate(preds, truth)
    assert ev["miou"].dims == ("sample", "model")
    sem, sal = truth["semantic"].values, truth["saliency"].values
    for j, model in enumerate(MODELS):
        maps = preds["prediction"].values[:, j]
        if model.startswith("ss"):
            np.testing.assert_allclose(ev["miou"].sel(model=model), miou(maps, sem, 3))
            maps = np.where(maps > 0, 255, 0).astype(np.uint8)  # SS foreground as a saliency map
        else:
            assert np.isnan(ev["miou"].sel(model=model)).all()
        for name, fn in [
            ("mae", mae),
            ("fbeta_max", fbeta_max),
            ("fbeta_adaptive", fbeta_adaptive),
            ("s_measure", s_measure),
        ]:
            np.testing.assert_allclose(ev[name].sel(model=model), fn(maps, sal), err_msg=f"{model} {name}")


def test_samples_argument_selects_by_id():
    preds, truth = make_pool()
    ids = ["pool-000004", "pool-000001"]
    ev = evaluate(preds, truth, samples=ids)
    assert list(ev["sample"].values) == ids
    full = evaluate(preds, truth)
    np.testing.assert_allclose(ev["s_measure"].values, full["s_measure"].sel(sample=ids).values)


def test_summarize_accumulates_miou_and_reports_pysod_set_level_max_f():
    py_sod_metrics = pytest.importorskip("py_sod_metrics")
    preds, truth = make_pool()
    ev = evaluate(preds, truth)
    ids = [f"pool-{k:06d}" for k in (1, 2, 5, 7)]
    summary = summarize(ev, ids)
    assert summary.attrs["n_images"] == 4
    sub_pred, sub_truth = preds.sel(sample=ids), truth.sel(sample=ids)
    for model in ("ss_a", "ss_b"):
        maps = sub_pred["prediction"].sel(model=model).values
        want = float(miou(maps, sub_truth["semantic"].values, 3, per_image=False))
        assert float(summary["miou"].sel(model=model)) == pytest.approx(want)
        assert float(summary["miou_image"].sel(model=model)) == pytest.approx(
            ev["miou"].sel(model=model, sample=ids).mean()
        )
    assert np.isnan(float(summary["miou"].sel(model="sod_p")))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm, mae_ref, sm = py_sod_metrics.Fmeasure(), py_sod_metrics.MAE(), py_sod_metrics.Smeasure()
    for p, g in zip(sub_pred["prediction"].sel(model="sod_p").values, sub_truth["saliency"].values):
        for metric in (fm, mae_ref, sm):
            metric.step(p.astype(np.float64) / 255.0, g > 128, normalize=False)
    assert float(summary["fbeta_max"].sel(model="sod_p")) == pytest.approx(fm.get_results()["fm"]["curve"].max())
    assert float(summary["fbeta_adaptive"].sel(model="sod_p")) == pytest.approx(fm.get_results()["fm"]["adp"])
    assert float(summary["mae"].sel(model="sod_p")) == pytest.approx(mae_ref.get_results()["mae"])
    assert float(summary["s_measure"].sel(model="sod_p")) == pytest.approx(sm.get_results()["sm"], abs=1e-4)
    assert float(summary["fbeta_max_image"].sel(model="sod_p")) >= float(summary["fbeta_max"].sel(model="sod_p"))


def test_ground_truth_is_aligned_by_sample_id():
    preds, truth = make_pool()
    shuffled = truth.isel(sample=np.random.default_rng(0).permutation(truth.sizes["sample"]))
    np.testing.assert_allclose(evaluate(preds, shuffled)["mae"].values, evaluate(preds, truth)["mae"].values)
