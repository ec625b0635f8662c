"""The registry and the one call site that drives every strategy; MAD strategies wrap the miner."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import xarray as xr
from torch import nn

from mdc_widgets import strategies
from mdc_widgets.data import BasePool
from mdc_widgets.errors import MdcError
from mdc_widgets.strategies import (
    StrategyInputs,
    UnknownStrategyError,
    get_strategy,
    list_strategies,
    register_strategy,
    score_pool,
    takes_inputs,
)

BUILTIN = {
    "random",
    "loss",
    "focal",
    "entropy",
    "u2pl_unreliable",
    "ensemble_mutual_information",
    "occlusion_stress",
    "hide_and_seek_stress",
    "blur_stress",
    "adversarial_erasing_depth",
    "mad_ss",
    "mad_sod",
    "mad_cross",
    "mad_joint",
}


class RedNet(nn.Module):
    """SS with a conv layer: class 1 where red > t, class 2 where green > t as well (logits, steep)."""

    def __init__(self, t: float):
        super().__init__()
        self.features = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.bias.zero_()
            self.features.weight[1, 0] = 20.0
            self.features.bias[1] = -20.0 * t
            self.features.weight[2, 0] = 10.0
            self.features.weight[2, 1] = 10.0
            self.features.bias[2] = -20.0 * t - 5.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class StandIn:
    def __init__(self, name: str, task: str, module: nn.Module):
        self.name, self.task, self.module, self.cam_layer, self.device = name, task, module, "features", "cpu"
        self.classes = ("background", "a", "b") if task == "ss" else ("background", "salient")

    def forward_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.module(images)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        out = self.module(images)
        return out.softmax(1) if self.task == "ss" else out[:, 1:2].sigmoid()


class LabelledPool(BasePool):
    def __init__(self, images: np.ndarray, bad: int | None = None):
        self.images = images
        self.sample_ids = np.array([f"q{i:03d}" for i in range(len(images))], dtype=object)
        self.name, self.bad = "labelled", bad
        self.fingerprint, self.image_size, self.classes, self.errors = "labelled-v1", images.shape[1:3], None, {}

    def __len__(self) -> int:
        return len(self.sample_ids)

    def read_images(self, start: int, stop: int):
        valid = np.ones(stop - start, bool)
        if self.bad is not None and start <= self.bad < stop:
            valid[self.bad - start] = False
        return self.images[start:stop], valid

    def ground_truth(self) -> xr.Dataset:
        red = self.images[..., 0] > 128
        return xr.Dataset(
            {
                "semantic": (("sample", "y", "x"), red.astype(np.uint8)),
                "saliency": (("sample", "y", "x"), np.where(red, 255, 0).astype(np.uint8)),
            },
            coords={"sample": self.sample_ids},
        )


def store_like(pool, models) -> xr.Dataset:
    """What open_predictions returns for these models on this pool (built here, without the store)."""
    x = torch.as_tensor(pool.images).permute(0, 3, 1, 2).float() / 255
    maps, entropies = [], []
    for m in models:
        p = m.predict(x).detach()
        maps.append(p.argmax(1).numpy() if m.task == "ss" else (p[:, 0] * 255).round().numpy())
        q = torch.cat([1 - p, p], 1) if m.task == "sod" else p
        ent = -(q * q.clamp_min(1e-8).log()).sum(1) / np.log(q.shape[1])
        entropies.append(ent.numpy())
    valid = np.ones(len(pool.images), bool)
    if pool.bad is not None:
        valid[pool.bad] = False
    return xr.Dataset(
        {
            "prediction": (("sample", "model", "y", "x"), np.stack(maps, 1).astype(np.uint8)),
            "entropy": (("sample", "model", "y", "x"), np.stack(entropies, 1).astype(np.float16)),
            "valid": ("sample", valid),
        },
        coords={
            "sample": pool.sample_ids,
            "model": [m.name for m in models],
            "task": ("model", [m.task for m in models]),
        },
        attrs={"classes": {m.name: list(m.classes) for m in models}},
    )


@pytest.fixture
def world():
    rng = np.random.default_rng(0)
    images = (rng.random((12, 16, 16, 3)) * 255).astype(np.uint8)
    images[:6, 4:12, 4:12, 0] = 255  # a red square on half of the images
    pool = LabelledPool(images, bad=5)
    models = [
        StandIn("ss_lo", "ss", RedNet(0.3)),
        StandIn("ss_hi", "ss", RedNet(0.7)),
        StandIn("sod_lo", "sod", RedNet(0.3)),
        StandIn("sod_hi", "sod", RedNet(0.6)),
    ]
    return pool, models, store_like(pool, models)


def test_every_builtin_strategy_is_registered_with_its_needs():
    assert BUILTIN <= set(list_strategies())
    assert {"loss", "focal"} <= set(list_strategies(needs_labels=True))
    assert "entropy" not in list_strategies(needs_labels=True)
    assert get_strategy("blur_stress").needs_modules and not get_strategy("entropy").needs_modules
    assert get_strategy("u2pl_unreliable").params == {"model": None, "alpha_0": 20.0, "step": 0, "total_steps": 1}
    for name in BUILTIN:
        assert get_strategy(name).description


def test_one_call_site_drives_every_strategy(world):
    pool, models, predictions = world
    inputs = dict(pool=pool, predictions=predictions, models=models, ground_truth=None, seed=0, device="cpu")
    for name in sorted(BUILTIN):
        scores = score_pool(name, **inputs)
        assert scores.dims == ("sample",) and scores.name == name, name
        assert list(scores["sample"].values) == list(pool.sample_ids), name
        finite = np.isfinite(scores.values)
        assert not finite[5], f"{name} scored the undecodable image"
        assert finite.sum() == 11, name
        assert np.nanmin(scores.values) >= 0, name


def test_unknown_names_and_parameters_are_explained(world):
    pool, models, predictions = world
    with pytest.raises(UnknownStrategyError, match="choose one of"):
        get_strategy("hardest")
    with pytest.raises(MdcError, match="no parameter 'alpha0'"):
        score_pool("u2pl_unreliable", predictions=predictions, alpha0=10)
    with pytest.raises(MdcError, match="needs at least 1 model"):
        score_pool("entropy", pool=pool)
    with pytest.raises(MdcError, match="already registered"):
        register_strategy("entropy", lambda **_: None, needs_labels=False, needs_models=0, description="")


def test_labels_come_from_the_pool_when_not_given(world):
    pool, models, predictions = world
    from_pool = score_pool("loss", pool=pool, models=models, predictions=predictions, model="sod_hi", device="cpu")
    gt = pool.ground_truth().isel(sample=slice(None, None, -1))  # another order: aligned by sample id
    given = score_pool(
        "loss", pool=pool, models=models, predictions=predictions, model="sod_hi", ground_truth=gt, device="cpu"
    )
    np.testing.assert_array_equal(from_pool.values, given.values)
    misaligned = gt.assign_coords(sample=pool.sample_ids)
    wrong = score_pool(
        "loss", pool=pool, models=models, predictions=predictions, model="sod_hi", ground_truth=misaligned, device="cpu"
    )
    assert not np.allclose(np.nan_to_num(wrong.values), np.nan_to_num(from_pool.values))


def test_strategies_read_the_real_prediction_store(world, tmp_path):
    """Stored SS probabilities and entropy give the scores the live models give."""
    from mdc_widgets.predictions import RunOptions, predict_pool

    pool, models, _ = world
    pool.bad = None
    options = RunOptions(batch_size=8, chunk_size=8, probabilities=True)
    stored = predict_pool(pool, models, tmp_path, options, device="cpu", progress=False)
    for name, model in [
        ("loss", "ss_lo"),
        ("entropy", "ss_hi"),
        ("entropy", "sod_lo"),
        ("ensemble_mutual_information", None),
    ]:
        params = {} if model is None else {"model": model}
        from_store = score_pool(name, predictions=stored, ground_truth=pool.ground_truth(), **params)
        live = score_pool(name, pool=pool, models=models, ground_truth=pool.ground_truth(), device="cpu", **params)
        # float16 storage: a few parts in a thousand
        np.testing.assert_allclose(from_store.values, live.values, rtol=2e-2, atol=2e-3, err_msg=name)


def test_a_custom_strategy_plugs_in():
    def darkest(pool, seed=0, **_):
        images, _ = pool.read_images(0, len(pool.sample_ids))
        return xr.DataArray(255 - images.mean(axis=(1, 2, 3)), dims="sample", coords={"sample": pool.sample_ids})

    register_strategy(
        "test_darkest", darkest, needs_labels=False, needs_models=0, description="dark first", overwrite=True
    )
    images = np.zeros((3, 2, 2, 3), np.uint8)
    images[1] = 200
    scores = score_pool("test_darkest", pool=LabelledPool(images), predictions=None, models=[])
    assert scores.values.tolist() == [255.0, 55.0, 255.0]
    assert scores.attrs["strategy"] == "test_darkest"


# ---- MAD wrappers --------------------------------------------------------------------------------


def hand_predictions() -> xr.Dataset:
    n = 4
    pred = np.zeros((n, 4, 4, 4), np.uint8)
    pred[:, 0, :2] = 1  # ss_a: class 1 on the top half
    pred[:, 1, :2] = 1
    pred[1, 1, :2] = 2  # image 1: the SS models disagree completely on the object
    pred[3, 1, :1] = 0  # image 3: a little
    pred[:, 2, :2] = 255  # sod_p: the top half
    pred[:, 3, :2] = 255
    pred[2, 3] = 0
    pred[2, 3, 2:] = 255  # image 2: the SOD models disagree completely
    return xr.Dataset(
        {"prediction": (("sample", "model", "y", "x"), pred), "valid": ("sample", np.ones(n, bool))},
        coords={
            "sample": [f"s{i}" for i in range(n)],
            "model": ["ss_a", "ss_b", "sod_p", "sod_q"],
            "task": ("model", ["ss", "ss", "sod", "sod"]),
        },
        attrs={
            "classes": {"ss_a": ["bg", "x", "y"], "ss_b": ["bg", "x", "y"], "sod_p": ["bg", "s"], "sod_q": ["bg", "s"]}
        },
    )


def test_mad_strategies_rank_the_disagreements_first():
    from mdc_widgets.discrepancy import compute_discrepancies, ss_discrepancy
    from mdc_widgets.mining import CompetitionGroup, Weights, joint_score, rank_normalize

    preds = hand_predictions()
    mad_ss = score_pool("mad_ss", predictions=preds, device="cpu")
    raw = ss_discrepancy(preds["prediction"].values[:, 0], preds["prediction"].values[:, 1], 3)
    np.testing.assert_allclose(mad_ss.values, rank_normalize(raw))
    assert int(np.argmax(mad_ss.values)) == 1
    assert int(np.argmax(score_pool("mad_sod", predictions=preds, device="cpu").values)) == 2
    cross = score_pool("mad_cross", predictions=preds, device="cpu")
    assert cross.attrs["group_ss"] == "ss_a" and cross.attrs["group_sod"] == "sod_p"
    joint = score_pool("mad_joint", predictions=preds, weights=(1.0, 2.0, 0.5), device="cpu")
    d = compute_discrepancies(preds, device="cpu")
    expected = joint_score(d, CompetitionGroup(ss=("ss_a", "ss_b"), sod=("sod_p", "sod_q")), Weights(1.0, 2.0, 0.5))
    np.testing.assert_allclose(joint.values, expected["score"].values)
    with pytest.raises(MdcError, match="2 SS"):
        score_pool("mad_ss", predictions=preds.sel(model=["ss_a", "sod_p"]), device="cpu")


# ---- one inputs object -----------------------------------------------------------------------------

KEYWORD_FORMS = {
    "random": strategies.random_scores,
    "loss": strategies.loss_scores,
    "focal": strategies.focal_scores,
    "entropy": strategies.entropy_scores,
    "u2pl_unreliable": strategies.u2pl_unreliable_scores,
    "ensemble_mutual_information": strategies.ensemble_mutual_information_scores,
    "occlusion_stress": strategies.occlusion_stress,
    "hide_and_seek_stress": strategies.hide_and_seek_stress,
    "blur_stress": strategies.blur_stress,
    "adversarial_erasing_depth": strategies.adversarial_erasing_depth,
    "mad_ss": strategies.mad_ss,
    "mad_sod": strategies.mad_sod,
    "mad_cross": strategies.mad_cross,
    "mad_joint": strategies.mad_joint,
}
OWN_PARAMS = {
    "loss": {"model": "ss_hi", "top_fraction": 0.5},
    "focal": {"model": "sod_lo", "gamma": 1.0},
    "entropy": {"model": "sod_hi"},
    "u2pl_unreliable": {"model": "ss_lo", "alpha_0": 30.0},
    "occlusion_stress": {"model": "ss_hi", "size_fraction": 0.4},
    "hide_and_seek_stress": {"model": "sod_lo", "grid_size": 2},
    "blur_stress": {"model": "ss_lo", "sigma": 1.0},
    "adversarial_erasing_depth": {"model": "ss_lo", "max_steps": 3},
    "mad_sod": {"sod_measure": "mae"},
    "mad_joint": {"weights": (1.0, 0.5, 2.0)},
}


def test_every_strategy_takes_one_inputs_object_and_its_keyword_form_agrees(world):
    pool, models, predictions = world
    uniform = dict(
        pool=pool,
        predictions=predictions,
        models=models,
        ground_truth=pool.ground_truth(),
        seed=3,
        batch_size=5,
        device="cpu",
    )
    assert set(KEYWORD_FORMS) == BUILTIN
    for name, keyword_form in KEYWORD_FORMS.items():
        strategy = get_strategy(name)
        assert takes_inputs(strategy.func), name
        own = OWN_PARAMS.get(name, {})
        assert set(own) <= set(strategy.params), name
        direct = strategy.func(StrategyInputs(**uniform), **own)
        accepted = inspect.signature(keyword_form).parameters
        keyword = keyword_form(**{k: v for k, v in uniform.items() if k in accepted}, **own)
        via_registry = score_pool(name, **uniform, **own)
        assert np.isfinite(direct.values).sum() == 11, name
        np.testing.assert_array_equal(direct.values, keyword.values, err_msg=name)
        np.testing.assert_array_equal(direct.values, via_registry.values, err_msg=name)
        assert direct.attrs == keyword.attrs, name


def test_score_pool_builds_the_inputs_once(world, monkeypatch):
    from mdc_widgets.strategies import registry

    pool, models, predictions = world
    built = []

    class CountedInputs(StrategyInputs):
        def __post_init__(self) -> None:
            built.append(self)
            super().__post_init__()

    monkeypatch.setattr(registry, "StrategyInputs", CountedInputs)
    for name in sorted(BUILTIN):
        built.clear()
        score_pool(
            name, pool=pool, predictions=predictions, models=models, ground_truth=pool.ground_truth(), device="cpu"
        )
        assert len(built) == 1, name


def test_a_strategy_of_the_inputs_form_plugs_in(world):
    pool, _, predictions = world
    seen = []

    def brightest_channel(inputs, channel: int = 0):
        seen.append(inputs)
        images, _ = inputs.pool.read_images(0, inputs.n)
        return xr.DataArray(images[..., channel].mean(axis=(1, 2)) + inputs.seed, dims="sample")

    strategy = register_strategy(
        "test_brightest", brightest_channel, needs_labels=False, needs_models=0, description="", overwrite=True
    )
    assert strategy.params == {"channel": 0}
    scores = score_pool("test_brightest", pool=pool, predictions=predictions, seed=2, channel=1, batch_size=4)
    expected = pool.images[..., 1].mean(axis=(1, 2)) + 2
    np.testing.assert_allclose(scores.values, expected)
    assert len(seen) == 1 and seen[0].batch_size == 4 and seen[0].predictions is predictions
    with pytest.raises(MdcError, match="no parameter 'colour'"):
        score_pool("test_brightest", pool=pool, colour=1)


def test_labels_are_aligned_only_by_the_strategies_that_read_them(world):
    pool, models, predictions = world
    partial_truth = pool.ground_truth().isel(sample=slice(0, 3))
    entropy = score_pool("entropy", predictions=predictions, ground_truth=partial_truth, model="ss_lo")
    assert np.isfinite(entropy.values).sum() == 11
    with pytest.raises(MdcError, match="lacks 9 of the scored samples"):
        score_pool("loss", predictions=predictions, models=models, pool=pool, ground_truth=partial_truth, device="cpu")


def test_the_tensor_dominant_class_has_its_own_name():
    import mdc_widgets.mining as mining

    labels = torch.tensor([[[0, 2], [2, 1]], [[0, 0], [0, 0]]])
    assert strategies.dominant_class_index(labels, 3).tolist() == [2, 0]
    assert "dominant_class" not in strategies.__all__ and "dominant_class" in mining.__all__
    with pytest.warns(DeprecationWarning, match="dominant_class_index"):
        old = strategies.dominant_class
    assert old is strategies.dominant_class_index
