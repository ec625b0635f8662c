"""The prediction store: shapes, resume without recomputation, bad models and bad images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
import zarr
from _helpers import ArrayPool, ThresholdCompetitor, random_blob_images

from mdc_widgets.data import open_pool
from mdc_widgets.errors import MdcError
from mdc_widgets.models import Competitor
from mdc_widgets.predictions import (
    PredictionRunError,
    RunCancelled,
    RunOptions,
    completed_fraction,
    open_predictions,
    open_probabilities,
    predict_pool,
    prediction_store_path,
)
from mdc_widgets.predictions import store as store_module


def test_predictions_have_named_dims_and_match_the_model(tmp_path, blob_pool, threshold_models):
    ds = predict_pool(blob_pool, threshold_models, tmp_path, batch_size=7, chunk_size=16, progress=False)
    assert ds["prediction"].dims == ("sample", "model", "y", "x")
    assert list(ds["model"].values) == ["ss_a", "ss_b", "sod_p", "sod_q"]
    assert list(ds["task"].values) == ["ss", "ss", "sod", "sod"]
    assert ds.attrs["classes"]["sod_p"] == ["background", "salient"]
    red = blob_pool.images[..., 0] / 255.0
    fg = red > 0.3
    green = blob_pool.images[..., 1] / 255.0 > 0.5
    expected = np.where(fg, np.where(green, 2, 1), 0)
    np.testing.assert_array_equal(ds["prediction"].sel(model="ss_a").values, expected)
    sal = ds["prediction"].sel(model="sod_q").values
    np.testing.assert_array_equal(sal, np.where(red > 0.7, round(0.9 * 255), round(0.1 * 255)))
    # entropy of a 0.9/0.1 Bernoulli, normalised by log 2
    h = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)) / np.log(2)
    np.testing.assert_allclose(ds["entropy"].sel(model="sod_p").values.astype(float), h, atol=2e-3)
    assert ds["valid"].values.all()


def test_resume_after_cancel_recomputes_nothing_finished(tmp_path, blob_pool):
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    chunks_seen = []

    def cancel_after_two() -> bool:
        return len(chunks_seen) >= 2

    with pytest.raises(RunCancelled, match="resume"):
        predict_pool(
            blob_pool,
            [model],
            tmp_path,
            chunk_size=8,
            batch_size=8,
            progress=lambda done, total: chunks_seen.append(done),
            cancel=cancel_after_two,
        )
    assert completed_fraction(tmp_path, "ss_a") == pytest.approx(2 / 5)
    with pytest.raises(MdcError, match="unfinished"):
        open_predictions(tmp_path, ["ss_a"])
    calls_before = model.calls
    blob_pool.reads.clear()
    ds = predict_pool(blob_pool, [model], tmp_path, chunk_size=8, batch_size=8, progress=False)
    assert model.calls - calls_before == 3  # only the three missing chunks
    assert blob_pool.reads == [(16, 24), (24, 32), (32, 40)]
    fresh = predict_pool(
        blob_pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path / "fresh", chunk_size=8, progress=False
    )
    np.testing.assert_array_equal(ds["prediction"].values, fresh["prediction"].values)


def test_chunk_without_done_flag_is_recomputed(tmp_path, blob_pool):
    """A kill between writing a chunk's maps and its flag leaves the flag unset: redo that chunk."""
    import zarr

    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    predict_pool(blob_pool, [model], tmp_path, chunk_size=8, progress=False)
    group = zarr.open_group(str(tmp_path / "ss_a.zarr"), mode="r+")
    group["chunk_done"][3] = False
    group["prediction"][24:32] = 77  # a half-written chunk
    calls = model.calls
    ds = predict_pool(blob_pool, [model], tmp_path, chunk_size=8, batch_size=8, progress=False)
    assert model.calls - calls == 1
    assert not (ds["prediction"].values[24:32] == 77).all()


def test_wrong_shape_model_is_named_and_the_others_are_kept(tmp_path, blob_pool):
    class WrongClasses(ThresholdCompetitor):
        def predict(self, images):
            return super().predict(images)[:, :2]

    good = ThresholdCompetitor("ss_a", "ss", 0.3)
    bad = WrongClasses("broken_ss", "ss", 0.3)
    with pytest.raises(PredictionRunError, match="broken_ss") as info:
        predict_pool(blob_pool, [bad, good], tmp_path, chunk_size=16, progress=False)
    assert "expected (" in str(info.value)
    assert completed_fraction(tmp_path, "ss_a") == 1.0
    ds = predict_pool(blob_pool, [bad, good], tmp_path, chunk_size=16, progress=False, errors="skip")
    assert list(ds["model"].values) == ["ss_a"]


def test_nan_output_is_refused(tmp_path, blob_pool):
    class NaNModel(ThresholdCompetitor):
        def predict(self, images):
            return super().predict(images) * float("nan")

    with pytest.raises(PredictionRunError, match="NaN"):
        predict_pool(blob_pool, [NaNModel("nan_sod", "sod", 0.5)], tmp_path, progress=False)


def test_undecodable_images_are_flagged_not_fatal(tmp_path):
    pool = ArrayPool(random_blob_images(20), bad=(3, 11))
    ds = predict_pool(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path, chunk_size=8, progress=False)
    assert np.flatnonzero(~ds["valid"].values).tolist() == [3, 11]
    assert set(pool.errors) == {"s0003", "s0011"}


def test_store_for_another_pool_is_refused(tmp_path, blob_pool):
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    predict_pool(blob_pool, [model], tmp_path, progress=False)
    other = ArrayPool(random_blob_images(40, seed=1))
    with pytest.raises(MdcError, match="another pool"):
        predict_pool(other, [model], tmp_path, progress=False)
    ds = predict_pool(other, [model], tmp_path, progress=False, overwrite=True)
    assert ds.attrs["pool_fingerprint"] == other.fingerprint


def test_probabilities_are_stored_when_asked(tmp_path, blob_pool):
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    predict_pool(blob_pool, [model], tmp_path, progress=False, probabilities=True)
    probs = open_probabilities(tmp_path, "ss_a")
    assert probs.dims == ("sample", "class", "y", "x")
    x = torch.from_numpy(blob_pool.images[:4]).permute(0, 3, 1, 2).float() / 255
    np.testing.assert_allclose(probs.values[:4].astype(np.float32), model.predict(x).numpy(), atol=1e-3)
    with pytest.raises(MdcError, match="probabilities=True"):
        predict_pool(blob_pool, [ThresholdCompetitor("sod_p", "sod", 0.3)], tmp_path, progress=False)
        open_probabilities(tmp_path, "sod_p")


def test_a_registered_name_with_a_weights_file_is_built_with_those_weights(tmp_path, blob_pool):
    from mdc_widgets.models import Competitor, register_model

    net = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():  # class 1 where red is bright, else background
        net.weight.zero_()
        net.weight[1, 0] = 6.0
        net.bias.copy_(torch.tensor([1.0, -2.0, -5.0]))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    register_model(
        "test_store_pointwise", lambda: torch.nn.Conv2d(3, 3, 1), "ss", ("background", "a", "b"), overwrite=True
    )
    ds = predict_pool(
        blob_pool, [("test_store_pointwise", tmp_path / "w.pt")], tmp_path / "s", progress=False, device="cpu"
    )
    red = blob_pool.images[..., 0] / 255.0
    expected = (6 * red - 2 > 1).astype(np.uint8)  # logit of class 1 above background's
    np.testing.assert_array_equal(ds["prediction"].sel(model="test_store_pointwise").values, expected)
    same = Competitor.from_module(net, "ss", ["background", "a", "b"], name="test_store_pointwise")
    direct = predict_pool(blob_pool, [same], tmp_path / "direct", progress=False, device="cpu")
    np.testing.assert_array_equal(ds["prediction"].values, direct["prediction"].values)


def test_entropy_is_stored_as_uint8_and_stores_made_with_float16_still_read_and_resume(tmp_path, monkeypatch):
    images = np.random.default_rng(4).integers(0, 255, (12, 8, 8, 3), dtype=np.uint8)
    pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"), images)}), image_size=(8, 8))
    torch.manual_seed(0)
    model = Competitor.from_module(torch.nn.Conv2d(3, 4, 1), "ss", ["bg", "a", "b", "c"], name="conv")
    options = RunOptions(chunk_size=4)
    new = predict_pool(pool, [model], tmp_path / "new", options, progress=False)
    group = zarr.open_group(str(prediction_store_path(tmp_path / "new", "conv")), mode="r")
    assert group["entropy"].dtype == np.uint8 and group.attrs["entropy_dtype"] == "uint8"
    assert new["entropy"].dtype == np.float16  # readers get H, not round(255 H)
    # a store as made before uint8 entropy: float16 and no entropy_dtype attr; killed after one chunk
    monkeypatch.setattr(store_module, "ENTROPY_DTYPE", "float16")
    full_float16 = predict_pool(pool, [model], tmp_path / "f16-full", options, progress=False)
    checks = iter([False])
    with pytest.raises(RunCancelled):
        predict_pool(pool, [model], tmp_path / "old", options, progress=False, cancel=lambda: next(checks, True))
    monkeypatch.undo()
    old_path = prediction_store_path(tmp_path / "old", "conv")
    old_group = zarr.open_group(str(old_path), mode="r+")
    del old_group.attrs["entropy_dtype"]
    resumed = predict_pool(pool, [model], tmp_path / "old", options, progress=False)
    assert zarr.open_group(str(old_path), mode="r")["entropy"].dtype == np.float16  # kept its dtype
    np.testing.assert_array_equal(resumed["entropy"].values, full_float16["entropy"].values)
    # the quantised store is within 1/510 of the float16 one (plus float16's own rounding)
    assert np.abs(new["entropy"].values.astype(np.float32) - resumed["entropy"].values.astype(np.float32)).max() <= (
        1 / 510 + 2**-11
    )
    np.testing.assert_array_equal(new["prediction"].values, resumed["prediction"].values)
