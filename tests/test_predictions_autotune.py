"""Automatic batch, layout and thread choice: pure functions of explicit inputs, and predict_pool's 'auto' hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from mdc_widgets.data import open_pool
from mdc_widgets.models import Competitor, get_model
from mdc_widgets.models.torchvision_adapters import at_working_resolution, internal_resolution
from mdc_widgets.predictions import RunCancelled, RunOptions, predict_pool
from mdc_widgets.predictions.autotune import choose_run_settings


def conv_model(classes: int = 21) -> Competitor:
    net = torch.nn.Conv2d(3, classes, 1)
    return Competitor.from_module(net, "ss", [str(c) for c in range(classes)], name="conv")


def test_batch_follows_the_memory_budget_and_image_size():
    model = conv_model()
    small = choose_run_settings([model], (320, 320), memory_budget=2**30, cpu_count=2)
    large = choose_run_settings([model], (512, 512), memory_budget=2**30, cpu_count=2)
    tight = choose_run_settings([model], (512, 512), memory_budget=2**20, cpu_count=2)
    assert small.batch_size > large.batch_size >= 1
    assert small.batch_size * small.bytes_per_image <= 2**30
    assert large.batch_size & (large.batch_size - 1) == 0  # a power of two
    assert tight.batch_size == 1
    assert choose_run_settings([model], (8, 8), memory_budget=2**40).batch_size == 256


def test_layout_threads_and_precision_are_chosen_unless_given():
    model = conv_model()
    cpu = choose_run_settings([model], (64, 64), memory_budget=2**30, cpu_count=4)
    assert cpu.channels_last and not cpu.amp and 1 <= cpu.threads <= 4
    cuda = choose_run_settings([model], (64, 64), device="cuda", memory_budget=2**30)
    assert cuda.amp and cuda.threads == 1
    fixed = choose_run_settings([model], (64, 64), memory_budget=2**30, batch_size=7, channels_last=False, threads=3)
    assert (fixed.batch_size, fixed.channels_last, fixed.threads) == (7, False, 3)
    identity = Competitor.from_module(torch.nn.Identity(), "sod", ["background", "salient"], name="id")
    assert not choose_run_settings([identity], (64, 64), memory_budget=2**30).channels_last
    assert "NCHW" in choose_run_settings([identity], (64, 64), memory_budget=2**30).summary()


def test_torchvision_models_name_their_own_resolution_until_told_to_use_the_pool_size():
    model = get_model("tv_lraspp_mobilenet_v3_large", checkpoint=None)
    settings = choose_run_settings([model], (320, 320), memory_budget=2**30)
    assert settings.resolutions == {"tv_lraspp_mobilenet_v3_large": 520}
    assert "tv_lraspp_mobilenet_v3_large runs at 520 px" in settings.summary()
    at_working_resolution(model)
    assert internal_resolution(model) is None
    assert "working resolution" in choose_run_settings([model], (320, 320), memory_budget=2**30).summary()
    out = model.predict(torch.rand(1, 3, 40, 48))
    assert out.shape == (1, 21, 40, 48)


def test_chosen_run_options_predict_the_same_maps_as_the_defaults(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (6, 16, 16, 3), dtype=np.uint8)
    pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"), images)}), image_size=(16, 16))
    torch.manual_seed(0)
    model = conv_model(3)
    settings = choose_run_settings([model], pool.image_size, memory_budget=2**20)
    assert "predict on cpu: batch " in settings.summary() and settings.channels_last
    options = settings.run_options(chunk_size=4)
    assert (options.batch_size, options.channels_last, options.chunk_size) == (settings.batch_size, True, 4)
    tuned = predict_pool(pool, [model], tmp_path / "a", options, progress=False)
    plain = predict_pool(pool, [model], tmp_path / "b", RunOptions(chunk_size=4), progress=False)
    np.testing.assert_array_equal(tuned["prediction"].values, plain["prediction"].values)


def test_cpu_batches_keep_their_output_under_the_page_fault_cap_but_gpu_batches_do_not():
    model = conv_model(21)  # 21 x 320 x 320 float32 logits: 8.6 MB an image
    cpu = choose_run_settings([model], (320, 320), memory_budget=2**34)
    gpu = choose_run_settings([model], (320, 320), device="cuda", memory_budget=2**34)
    assert cpu.batch_size * 21 * 320 * 320 * 4 <= 64 * 2**20
    assert gpu.batch_size >= 64


def test_predict_pool_without_options_autotunes_reports_it_and_restores_the_threads(tmp_path, caplog):
    images = np.random.default_rng(1).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"), images)}), image_size=(16, 16))
    torch.manual_seed(0)
    model = conv_model(3)
    threads_before = torch.get_num_threads()
    with caplog.at_level("INFO", logger="mdc_widgets.predictions"):
        auto = predict_pool(pool, [model], tmp_path / "auto", progress=False)
    expected = choose_run_settings([model], pool.image_size).summary()
    # the load average may move between the two calls, so the thread count is the one part not compared
    assert auto.attrs["run_settings"].split(", ")[0] == expected.split(", ")[0]
    assert "channels-last" in auto.attrs["run_settings"]
    assert any("predict on cpu: batch" in r.getMessage() for r in caplog.records)
    assert torch.get_num_threads() == threads_before
    caplog.clear()
    with caplog.at_level("INFO", logger="mdc_widgets.predictions"):
        explicit = predict_pool(pool, [model], tmp_path / "explicit", RunOptions(batch_size=2), progress=False)
    assert "run_settings" not in explicit.attrs and not caplog.records  # explicit options are used as given
    np.testing.assert_array_equal(auto["prediction"].values, explicit["prediction"].values)
    # one uint8 level (1/255) apart at most: the layouts' float32 sums may round to neighbouring levels
    np.testing.assert_allclose(auto["entropy"].values, explicit["entropy"].values, atol=1 / 255 + 1e-3)


def test_a_store_made_with_the_defaults_resumes_under_autotune_and_the_reverse(tmp_path):
    images = np.random.default_rng(2).integers(0, 255, (600, 8, 8, 3), dtype=np.uint8)
    pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"), images)}), image_size=(8, 8))
    torch.manual_seed(0)
    model = conv_model(3)
    defaults = RunOptions()  # chunk_size 256: 3 chunks
    for made_with, resumed_with in ((defaults, None), (None, defaults)):
        store = tmp_path / f"made-{made_with is None}"
        checks = iter([False])  # the first chunk runs, the check before the second one cancels
        with pytest.raises(RunCancelled):
            predict_pool(pool, [model], store, made_with, progress=False, cancel=lambda c=checks: next(c, True))
        done: list[tuple[int, int]] = []
        resumed = predict_pool(pool, [model], store, resumed_with, progress=lambda d, t, seen=done: seen.append((d, t)))
        assert done[-1] == (2, 2)  # only the two unfinished chunks ran: same store identity, nothing recomputed
        assert resumed["prediction"].chunks[0] == (256, 256, 88)
        fresh = predict_pool(pool, [model], tmp_path / f"fresh-{made_with is None}", defaults, progress=False)
        np.testing.assert_array_equal(resumed["prediction"].values, fresh["prediction"].values)
