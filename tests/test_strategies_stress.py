"""Stress strategies on stand-in competitors whose answers are known in advance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mdc_widgets.errors import MdcError
from mdc_widgets.strategies import erase_until_flip, prediction_change, random_occlusion, score_pool
from mdc_widgets.strategies.sources import batch_generator


class BrightCountNet(nn.Module):
    """Class 1 everywhere iff at least ``threshold`` pixels have red = 1 (the square), else background."""

    def __init__(self, threshold: float = 30):
        super().__init__()
        self.threshold = threshold
        self.features = nn.Conv2d(3, 1, 3, padding=1, bias=False)
        with torch.no_grad():
            self.features.weight.zero_()
            self.features.weight[0, 0, 1, 1] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        evidence = torch.relu(self.features(x)).sum(dim=(2, 3), keepdim=True)
        thing = (evidence - (self.threshold - 0.5)).expand(-1, 1, *x.shape[-2:])
        return torch.cat([torch.zeros_like(thing), thing], 1)


class StandIn:
    """The Competitor attributes strategies rely on, and nothing else."""

    def __init__(self, module: nn.Module, name: str = "bright", task: str = "ss"):
        self.name, self.task, self.module = name, task, module
        self.classes = ("background", "thing") if task == "ss" else ("background", "salient")
        self.cam_layer = "features"
        self.device = "cpu"

    def forward_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.module(images)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        out = self.module(images)
        return out.softmax(1) if self.task == "ss" else out[:, 1:].sigmoid()


class ArrayPool:
    def __init__(self, images: np.ndarray):
        self.images = images
        self.sample_ids = np.array([f"p{i}" for i in range(len(images))])
        self.name = "squares"

    def read_images(self, start: int, stop: int):
        return self.images[start:stop], np.ones(stop - start, bool)


def squares(sides: list[int], size: int = 32) -> torch.Tensor:
    images = torch.zeros(len(sides), 3, size, size)
    for i, side in enumerate(sides):
        images[i, :, 3 : 3 + side, 5 : 5 + side] = 1.0
    return images


def test_adversarial_erasing_flips_after_the_expected_number_of_erasures():
    # 16 of the 1024 pixels are erased per step; the region holds while >= 30 bright pixels remain
    comp = StandIn(BrightCountNet(30))
    images = squares([8, 6, 4, 9])  # 64, 36, 16 (never class 1), 81 bright pixels
    result = erase_until_flip(comp, images, fraction=16 / 1024, max_steps=5, fill=0.0, return_steps=True)
    assert result["dominant"].tolist() == [1, 1, 0, 1]
    assert result["depth"].tolist() == [3, 1, 5, 4]  # 64-16-16-16 < 30; 36-16 < 30; none; 81-4*16 < 30
    np.testing.assert_allclose(result["score"], [0.4, 0.8, 0.0, 0.2])
    masks, steps = result["masks"], result["images"]
    assert masks.shape == (6, 4, 32, 32) and steps.shape == (6, 4, 32, 32, 3) and steps.dtype == np.uint8
    assert masks[0].sum() == 0 and masks[1, 0].sum() == 16
    bright = squares([8, 6, 4, 9])[:, 0].bool().numpy()
    # Grad-CAM put the erasures on the bright square, the only evidence
    assert (masks[1:, 0] <= bright[0]).all() and (masks[1:, 3] <= bright[3]).all()
    assert (steps[1, 0][masks[1, 0]] == 0).all()
    # an image stops being erased once its prediction flipped
    assert masks[5, 1].sum() == 16 and masks[5, 0].sum() == 48


def test_adversarial_erasing_strategy_scores_the_pool():
    comp = StandIn(BrightCountNet(30))
    images = (squares([8, 6, 4, 9]).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    scores = score_pool(
        "adversarial_erasing_depth",
        pool=ArrayPool(images),
        models=[comp],
        fraction=16 / 1024,
        max_steps=5,
        fill=0.0,
        batch_size=3,
        device="cpu",
    )
    np.testing.assert_allclose(scores.values, [0.4, 0.8, 0.0, 0.2])
    assert list(scores["sample"].values) == ["p0", "p1", "p2", "p3"]


def test_adversarial_erasing_needs_an_ss_model():
    with pytest.raises(MdcError, match="SS"):
        erase_until_flip(StandIn(BrightCountNet(), task="sod"), squares([4]))


def miou_change(a: np.ndarray, b: np.ndarray, num_classes: int) -> np.ndarray:
    """1 - mean IoU over the classes present in either map, image by image (independent of the package)."""
    out = []
    for x, y in zip(a, b):
        ious = [
            ((x == c) & (y == c)).sum() / ((x == c) | (y == c)).sum()
            for c in range(num_classes)
            if ((x == c) | (y == c)).any()
        ]
        out.append(1 - np.mean(ious))
    return np.array(out)


def test_prediction_change_matches_an_independent_miou():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, (2, 6, 5, 5))
    pa = torch.nn.functional.one_hot(torch.as_tensor(a), 3).permute(0, 3, 1, 2).float()
    pb = torch.nn.functional.one_hot(torch.as_tensor(b), 3).permute(0, 3, 1, 2).float()
    np.testing.assert_allclose(prediction_change(pa, pb).numpy(), miou_change(a, b, 3), rtol=1e-6)
    sal = torch.zeros(2, 1, 4, 4)
    sal[:, :, :2] = 1.0
    other = sal.clone()
    other[1, :, :, :2] = 0.0  # image 1: half of the salient half is gone -> IoU 1/2
    np.testing.assert_allclose(prediction_change(sal, other).numpy(), [0.0, 0.5])


def test_hide_and_seek_stress_extremes_give_known_changes(blob_pool, threshold_models):
    model = threshold_models[0]  # SS: foreground where red > 0.3
    zero = score_pool("hide_and_seek_stress", pool=blob_pool, models=[model], hide_prob=0.0, device="cpu")
    assert np.all(zero.values == 0)
    full = score_pool(
        "hide_and_seek_stress", pool=blob_pool, models=[model], hide_prob=1.0, fill=0.0, device="cpu", batch_size=16
    )
    images = torch.as_tensor(blob_pool.images).permute(0, 3, 1, 2).float() / 255
    clean = model.predict(images).argmax(1).numpy()
    np.testing.assert_allclose(full.values, miou_change(clean, np.zeros_like(clean), 3), rtol=1e-6)


def test_occlusion_stress_is_the_change_under_the_seeded_rectangle(blob_pool, threshold_models):
    model = threshold_models[2]  # SOD
    scores = score_pool(
        "occlusion_stress", pool=blob_pool, models=[model], size_fraction=0.5, seed=3, batch_size=16, device="cpu"
    )
    images = torch.as_tensor(blob_pool.images).permute(0, 3, 1, 2).float() / 255
    expected = []
    for start in range(0, len(images), 16):
        x = images[start : start + 16]
        occluded = random_occlusion(x, 0.5, batch_generator(3, start))
        expected.append(prediction_change(model.predict(x), model.predict(occluded)).numpy())
    np.testing.assert_allclose(scores.values, np.concatenate(expected), rtol=1e-6)
    assert scores.values.max() > 0
    again = score_pool(
        "occlusion_stress", pool=blob_pool, models=[model], size_fraction=0.5, seed=3, batch_size=16, device="cpu"
    )
    np.testing.assert_array_equal(scores.values, again.values)


def test_blur_stress_is_zero_without_blur_and_the_model_must_be_live(blob_pool, threshold_models):
    scores = score_pool("blur_stress", pool=blob_pool, models=threshold_models[:1], sigma=0.0, device="cpu")
    assert np.all(scores.values == 0)
    assert (
        score_pool("blur_stress", pool=blob_pool, models=threshold_models[:1], sigma=3.0, device="cpu").values.max() > 0
    )
    with pytest.raises(MdcError, match="Competitor"):
        score_pool("blur_stress", pool=blob_pool, models=["ss_a"], device="cpu")
