"""Training plumbing of the mini-world zoo: seeded augmentation, config hashes, caching, reproducibility."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging

import numpy as np
import pytest
import torch

from mdc_widgets.models import ZOO, get_model, load_or_train
from mdc_widgets.models.training import TrainConfig, augment, config_hash, train, weights_path

# the registered builder of mw_fcn_ss has the zoo's width, so a stand-in config keeps it
TINY_SS = TrainConfig("fcn", "ss", width=ZOO["mw_fcn_ss"].width, epochs=1, batch_size=16, train_size=32, lr=1e-2)


@pytest.fixture
def small_eval_splits(monkeypatch):
    """Evaluate on 32 val/test_hard images (generated once) so tiny trainings take about a second."""

    from mdc_widgets.models import training

    original = training._split_tensors

    @functools.cache
    def small(split, n, seed, image_size, task):
        return original(split, 32 if n is None else n, seed, image_size, task)

    monkeypatch.setattr(training, "_split_tensors", small)


def _state(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_augment_is_seeded_and_moves_targets_with_the_images():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, 8, 8, generator=generator)
    targets = (images[:, 0] > 0.5).long()
    kinds = ("flip", "color", "contrast", "blur", "noise")
    a = augment(images, targets, kinds, torch.Generator().manual_seed(7))
    b = augment(images, targets, kinds, torch.Generator().manual_seed(7))
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    flipped_images, flipped_targets = augment(images, targets, ("flip",), torch.Generator().manual_seed(3))
    assert torch.equal(flipped_targets, (flipped_images[:, 0] > 0.5).long())  # geometry moves both
    assert 0 < (flipped_targets != targets).flatten(1).any(1).sum() < 16  # some, not all, were flipped
    noisy_images, same_targets = augment(images, targets, ("color", "noise"), torch.Generator().manual_seed(3))
    assert torch.equal(same_targets, targets) and 0 <= noisy_images.min() and noisy_images.max() <= 1
    assert torch.equal(augment(images, targets, (), generator)[0], images)


def test_config_hash_names_the_weights_and_follows_every_field(tmp_path, monkeypatch):
    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    assert config_hash(TINY_SS) == config_hash(dataclasses.replace(TINY_SS))
    assert len(config_hash(TINY_SS)) == 12
    variants = [
        dataclasses.replace(TINY_SS, **change)
        for change in (
            {"width": 5},
            {"epochs": 2},
            {"augment": ("flip",)},
            {"seed": 1},
            {"data_seed": 1},
            {"train_size": 33},
            {"lr": 2e-2},
        )
    ]
    assert len({config_hash(c) for c in [TINY_SS, *variants]}) == 1 + len(variants)
    assert weights_path("x", TINY_SS) == tmp_path / "weights" / f"x-{config_hash(TINY_SS)}.pt"
    assert len({config_hash(c) for c in ZOO.values()}) == len(ZOO)


def test_get_model_trains_once_with_a_log_line_then_reuses_the_cache(tmp_path, monkeypatch, caplog, small_eval_splits):
    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    monkeypatch.setitem(ZOO, "mw_fcn_ss", TINY_SS)
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="mdc_widgets"):
        model = get_model("mw_fcn_ss")
    assert any("training mw_fcn_ss" in r.getMessage() for r in caplog.records)
    path = weights_path("mw_fcn_ss", TINY_SS)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["config_hash"] == config_hash(TINY_SS) and meta["config"]["train_size"] == 32
    assert meta["train_seconds"] > 0 and set(meta["quality"]) == {"val", "test_hard"}
    assert 0 <= meta["quality"]["val"]["miou"] <= 1
    for key, value in _state(path).items():
        torch.testing.assert_close(model.module.state_dict()[key], value, rtol=0, atol=0)
    # the cache is reused: no retraining, and the file is untouched
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr("mdc_widgets.models.zoo.train", lambda *a, **k: pytest.fail("retrained a cached model"))
    caplog.clear()
    assert load_or_train("mw_fcn_ss") == path and path.stat().st_mtime_ns == stamp
    get_model("mw_fcn_ss")
    assert not any("training" in r.getMessage() for r in caplog.records)


def test_same_config_same_weights_other_seed_other_weights(tmp_path, monkeypatch, small_eval_splits):
    from mdc_widgets.models.competitor import normalize_half
    from mdc_widgets.models.zoo import _builder

    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    config = dataclasses.replace(TINY_SS, augment=("flip", "noise"))
    first = _state(train("tiny", config, _builder(config), normalize_half, 6, progress=False))
    second = _state(train("tiny", config, _builder(config), normalize_half, 6, progress=False))
    reseeded = dataclasses.replace(config, seed=1)
    other = _state(train("tiny", reseeded, _builder(reseeded), normalize_half, 6, progress=False))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first if first[k].is_floating_point())


def _dataset_max_f(saliency: torch.Tensor, gt: torch.Tensor, beta2: float = 0.3) -> float:
    """PySOD's dataset max-F: per-image F at 256 shared thresholds, averaged over images, best threshold."""
    n = saliency.shape[0]
    level = (saliency * 255).to(torch.uint8).long().reshape(n, -1)  # pixel is positive at thresholds <= level
    fg = gt.reshape(n, -1).long()
    hist = torch.zeros(n, 2, 256, dtype=torch.float64).index_put_(
        (torch.arange(n)[:, None].expand_as(level), fg, level),
        torch.ones(level.shape, dtype=torch.float64),
        accumulate=True,
    )
    at_least = hist.flip(-1).cumsum(-1).flip(-1)  # index t: pixels with level >= t
    tp, predicted = at_least[:, 1], at_least.sum(1)
    precision = tp / predicted.clamp_min(1)
    recall = tp / fg.sum(1, keepdim=True).clamp_min(1)
    f = (1 + beta2) * precision * recall / (beta2 * precision + recall).clamp_min(1e-12)
    return float(f.mean(0).max())


def test_dataset_max_f_of_hand_made_maps():
    gt = torch.tensor([[[1, 1], [0, 0]]], dtype=torch.bool)
    assert _dataset_max_f(gt.float(), gt) == pytest.approx(1.0)
    # one false positive above the true pixels' level: at the best threshold P = 2/3, R = 1
    sal = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    assert _dataset_max_f(sal, gt) == pytest.approx(1.3 * (2 / 3) / (0.3 * (2 / 3) + 1))
    # and the metrics package's F-beta curve (written independently) agrees on random maps
    from mdc_widgets.metrics import fbeta_curve

    generator = torch.Generator().manual_seed(0)
    sal, gt = torch.rand(5, 16, 16, generator=generator), torch.rand(5, 16, 16, generator=generator) > 0.6
    assert _dataset_max_f(sal, gt) == pytest.approx(float(np.asarray(fbeta_curve(sal, gt)).mean(0).max()))


@pytest.mark.slow
def test_sod_training_reproduces_its_quality_and_fails_on_hard_images(tmp_path, monkeypatch):
    """The real mw_fcn_sod config twice: identical weights, max-F on val in the stated band, far worse on hard."""
    from mdc_widgets.data import generate_miniworld
    from mdc_widgets.models.competitor import normalize_half
    from mdc_widgets.models.zoo import _builder

    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    config = ZOO["mw_fcn_sod"]
    path = train("mw_fcn_sod", config, _builder(config), normalize_half, 1, progress=False)
    first = _state(path)
    path.unlink()
    second = _state(train("mw_fcn_sod", config, _builder(config), normalize_half, 1, progress=False))
    assert all(torch.equal(first[k], second[k]) for k in first)

    model = get_model("mw_fcn_sod", checkpoint=path)
    max_f = {}
    for split in ("val", "test_hard"):
        ds = generate_miniworld(split)
        with torch.inference_mode():
            sal = model.predict(torch.from_numpy(ds["image"].values).permute(0, 3, 1, 2).float() / 255)[:, 0]
        gt = torch.from_numpy(ds["saliency"].values > 0)
        max_f[split] = _dataset_max_f(sal, gt)
    quality = json.loads(path.with_suffix(".json").read_text())["quality"]
    assert 0.75 <= max_f["val"] <= 0.95, max_f
    assert max_f["test_hard"] < max_f["val"] - 0.2, max_f
    assert quality["val"]["iou"] > 0.6 and quality["test_hard"]["iou"] < quality["val"]["iou"] - 0.15
    assert np.isfinite(quality["val"]["mae"])


def test_training_runs_on_the_configs_thread_count_and_restores_the_callers(tmp_path, monkeypatch, small_eval_splits):
    from mdc_widgets.models.competitor import normalize_half
    from mdc_widgets.models.zoo import _builder

    monkeypatch.setenv("MDC_WIDGETS_HOME", str(tmp_path))
    seen = set()

    def preprocess(x):
        seen.add((torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()))
        return normalize_half(x)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train("tiny", TINY_SS, _builder(TINY_SS), preprocess, 6, progress=False)
        assert seen == {(1, True)} and torch.get_num_threads() == 2
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)
    assert TINY_SS.threads == 1
    assert config_hash(TINY_SS) != config_hash(dataclasses.replace(TINY_SS, threads=2))
