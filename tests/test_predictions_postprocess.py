"""The runner's fused SS post-processing (label, entropy, probabilities from logits) equals the softmax route."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from mdc_widgets._kernels import all_finite, normalized_entropy
from mdc_widgets.data import open_pool
from mdc_widgets.errors import MdcError
from mdc_widgets.models import Competitor
from mdc_widgets.predictions import RunOptions, open_probabilities, predict_pool
from mdc_widgets.predictions._runner import first_max_index, store_logits

# float16 has an 11-bit significand: values in [0.5, 1] are rounded to 2**-11, so two float16 results of
# float32 computations that differ in the last float32 bits may land one float16 step apart
FLOAT16_STEP = 2**-11


def softmax_route(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the runner stored before the fused path: softmax, then max().indices and entr, then float16."""
    probs = logits.float().softmax(dim=1)
    label = probs.max(dim=1).indices.to(torch.uint8).numpy()
    return label, normalized_entropy(probs).half().numpy(), probs.half().numpy()


@pytest.mark.parametrize("n_classes", [2, 3, 21])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_fused_label_entropy_and_probabilities_equal_the_softmax_route(n_classes, layout):
    generator = torch.Generator().manual_seed(n_classes)
    # scales from nearly uniform to nearly one-hot pixels, and a large offset (logsumexp must not overflow)
    scale = torch.tensor([0.01, 1.0, 8.0, 40.0]).view(4, 1, 1, 1)
    logits = torch.randn(4, n_classes, 9, 7, generator=generator) * scale + torch.tensor([0, 0, 0, 500.0]).view(
        4, 1, 1, 1
    )
    logits = logits.contiguous(memory_format=layout)
    label, entropy, probability = softmax_route(logits)
    maps = {
        "prediction": np.zeros((6, 9, 7), np.uint8),
        "entropy": np.zeros((6, 9, 7), np.float16),
        "probability": np.zeros((6, n_classes, 9, 7), np.float16),
    }
    scratch: dict[str, torch.Tensor] = {}
    store_logits(maps, 0, 4, logits, scratch)
    store_logits(maps, 4, 6, logits[:2].clone(), scratch)  # a shorter last batch reuses the buffer
    assert scratch["exp"].shape[0] == 4
    np.testing.assert_array_equal(maps["prediction"][:4], label)
    np.testing.assert_array_equal(maps["prediction"][4:], label[:2])
    assert np.abs(maps["entropy"][:4].astype(np.float32) - entropy.astype(np.float32)).max() <= FLOAT16_STEP
    assert maps["entropy"].min() >= 0 and maps["entropy"].max() <= 1
    assert np.abs(maps["probability"][:4].astype(np.float32) - probability.astype(np.float32)).max() <= FLOAT16_STEP
    np.testing.assert_array_equal(maps["entropy"][4:], maps["entropy"][:2])
    assert logits.is_contiguous(memory_format=layout)  # the caller's logits are left as they were


def test_predict_pool_stores_the_same_maps_through_the_fused_and_the_softmax_route(tmp_path):
    images = np.random.default_rng(3).integers(0, 255, (7, 12, 10, 3), dtype=np.uint8)
    pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"), images)}), image_size=(12, 10))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 5, 1))
    classes = [f"c{i}" for i in range(5)]
    fused = Competitor.from_module(net, "ss", classes, name="net")
    # the same network behind output="probabilities": the runner cannot fuse it and stores what predict() gives
    softmaxed = Competitor.from_module(
        lambda x: net(x).softmax(dim=1), "ss", classes, name="net", output="probabilities"
    )
    options = RunOptions(batch_size=3, chunk_size=4, probabilities=True)
    a = predict_pool(pool, [fused], tmp_path / "fused", options, progress=False)
    b = predict_pool(pool, [softmaxed], tmp_path / "softmax", options, progress=False)
    np.testing.assert_array_equal(a["prediction"].values, b["prediction"].values)
    # the store keeps round(255 H): float32 results a rounding apart may fall on either side of a level
    np.testing.assert_allclose(a["entropy"].values, b["entropy"].values, atol=1 / 255 + FLOAT16_STEP)
    pa = open_probabilities(tmp_path / "fused", "net").values.astype(np.float32)
    pb = open_probabilities(tmp_path / "softmax", "net").values.astype(np.float32)
    np.testing.assert_allclose(pa, pb, atol=FLOAT16_STEP)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_the_fused_route_still_refuses_non_finite_logits(tmp_path, bad):
    images = np.zeros((2, 4, 4, 3), np.uint8)
    pool = open_pool(xr.Dataset({"image": (("sample", "y", "x", "channel"), images)}), image_size=(4, 4))

    def one_bad_logit(x: torch.Tensor) -> torch.Tensor:
        z = torch.zeros((x.shape[0], 3, 4, 4))
        z[-1, 2, 3, 1] = bad  # one value of one class at one pixel of the last image
        return z

    nan_net = Competitor.from_module(one_bad_logit, "ss", ["a", "b", "c"], name="nan")
    with pytest.raises(MdcError, match="NaN or infinite"):
        predict_pool(pool, [nan_net], tmp_path, RunOptions(chunk_size=2), progress=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_all_finite_agrees_with_the_elementwise_test(dtype, layout):
    big = torch.finfo(dtype).max
    z = torch.full((2, 3, 5, 4), big / 2, dtype=dtype).contiguous(memory_format=layout)
    assert all_finite(z)  # the sum overflows, no value does
    for bad in (float("nan"), float("inf"), -float("inf")):
        w = z.clone()
        w[1, 2, 4, 3] = bad
        assert not all_finite(w)
    w = z.clone()
    w[0, 0, 0, 0], w[1, 1, 1, 1] = float("inf"), -float("inf")  # their sum is NaN, still caught
    assert not all_finite(w)
    assert all_finite(torch.zeros(0, dtype=dtype))
    assert all_finite(torch.tensor([3, 2**62]))  # integers are always finite


@pytest.mark.parametrize("n_classes", [1, 2, 21, 256])
def test_first_max_index_is_the_first_maximum_ties_included(n_classes):
    # small integers: most pixels have several classes tied at their maximum
    generator = torch.Generator().manual_seed(n_classes)
    z = torch.randint(0, 3, (3, n_classes, 5, 6), generator=generator).float()
    out = torch.full((3, 5, 6), 255, dtype=torch.uint8)
    first_max_index(z, z.amax(dim=1), out=out)
    np.testing.assert_array_equal(out.numpy(), np.argmax(z.numpy(), axis=1))  # numpy: the first maximum


def test_nchw_and_channels_last_logits_give_the_same_labels_when_classes_tie():
    z = torch.randint(0, 2, (2, 21, 8, 8), generator=torch.Generator().manual_seed(0)).float()
    labels = []
    for layout in (torch.contiguous_format, torch.channels_last):
        maps = {"prediction": np.zeros((2, 8, 8), np.uint8)}
        store_logits(maps, 0, 2, z.contiguous(memory_format=layout), {})
        labels.append(maps["prediction"])
    np.testing.assert_array_equal(labels[0], labels[1])
    np.testing.assert_array_equal(labels[0], np.argmax(z.numpy(), axis=1))
