"""Perturbation ops: what they change, and only that."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.strategies import (
    gaussian_blur,
    hide_and_seek,
    pool_mean_pixel,
    preview_perturbation,
    random_occlusion,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- Hide-and-Seek -------------------------------------------------------------------------------


def test_hide_and_seek_extremes():
    images = torch.rand(5, 3, 12, 12, generator=gen(1))
    fill = torch.tensor([0.2, 0.4, 0.6])
    everything = hide_and_seek(images, grid_size=3, hide_prob=1.0, fill=fill, generator=gen())
    torch.testing.assert_close(everything, fill.view(1, 3, 1, 1).expand_as(images))
    nothing = hide_and_seek(images, grid_size=3, hide_prob=0.0, fill=fill, generator=gen())
    torch.testing.assert_close(nothing, images)


def test_hide_and_seek_hides_about_hide_prob_in_whole_patches():
    images = torch.ones(400, 3, 16, 16)
    out, mask = hide_and_seek(images, grid_size=4, hide_prob=0.3, fill=0.5, generator=gen(2), return_mask=True)
    hidden = out[:, 0] == 0.5
    assert torch.equal(hidden, mask)
    assert abs(hidden.float().mean().item() - 0.3) < 0.02
    # a patch (4 x 4 pixels) is hidden whole or not at all
    per_patch = hidden.reshape(400, 4, 4, 4, 4).float().mean(dim=(2, 4))
    assert set(per_patch.unique().tolist()) <= {0.0, 1.0}


def test_hide_and_seek_grid_need_not_divide_the_image():
    out, mask = hide_and_seek(torch.zeros(1, 3, 10, 7), grid_size=3, hide_prob=1.0, fill=1.0, return_mask=True)
    assert mask.all() and out.min() == 1.0
    with pytest.raises(MdcError, match="grid_size"):
        hide_and_seek(torch.zeros(1, 3, 4, 4), grid_size=5)


def test_same_generator_seed_same_perturbation():
    images = torch.rand(3, 3, 8, 8, generator=gen(0))
    a = hide_and_seek(images, 4, 0.5, 0.0, gen(9))
    b = hide_and_seek(images, 4, 0.5, 0.0, gen(9))
    c = hide_and_seek(images, 4, 0.5, 0.0, gen(10))
    assert torch.equal(a, b) and not torch.equal(a, c)


# ---- occlusion -----------------------------------------------------------------------------------


def test_occlusion_changes_exactly_one_rectangle_of_one_colour():
    images = torch.full((20, 3, 20, 16), 0.123456)
    out, mask = random_occlusion(images, (0.2, 0.6), gen(3), return_mask=True)
    changed = (out != images).any(dim=1)
    assert torch.equal(changed, mask)
    for i in range(len(images)):
        ys, xs = np.nonzero(changed[i].numpy())
        box = changed[i, ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        assert box.all()  # the changed pixels fill their bounding box: one rectangle
        assert changed[i].sum() == box.numel()
        side = (ys.max() - ys.min() + 1) / 20
        assert 0.2 - 1 / 20 <= side <= 0.6 + 1 / 20
        colours = out[i][:, changed[i]]
        assert torch.equal(colours, colours[:, :1].expand_as(colours))


def test_fixed_size_occlusion_has_the_requested_area():
    _, mask = random_occlusion(torch.zeros(8, 3, 10, 10), 0.5, gen(0), return_mask=True)
    assert mask.sum(dim=(1, 2)).tolist() == [25] * 8


# ---- blur ----------------------------------------------------------------------------------------


def test_blur_preserves_the_mean_and_constants():
    images = torch.zeros(2, 3, 24, 24)
    images[0, :, 8:14, 9:15] = 1.0
    images[1, 1, 12, 12] = 0.5
    blurred = gaussian_blur(images, 1.5)
    torch.testing.assert_close(blurred.mean(dim=(2, 3)), images.mean(dim=(2, 3)))
    assert blurred[1, 1, 12, 12] < 0.5 and blurred[1, 1, 12, 13] > 0
    constant = torch.full((1, 3, 9, 9), 0.7)
    torch.testing.assert_close(gaussian_blur(constant, 3.0), constant)
    torch.testing.assert_close(gaussian_blur(images, 0.0), images)


def test_blur_matches_a_direct_two_dimensional_gaussian():
    x = torch.zeros(1, 3, 15, 15)
    x[0, :, 7, 7] = 1.0
    sigma = 1.2
    yy, xx = np.mgrid[-7:8, -7:8]
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-(yy**2 + xx**2) / (2 * sigma**2)) * ((abs(yy) <= radius) & (abs(xx) <= radius))
    kernel /= kernel.sum()
    np.testing.assert_allclose(gaussian_blur(x, sigma)[0, 0].numpy(), kernel, atol=1e-6)


def test_perturbations_refuse_other_layouts():
    with pytest.raises(ShapeError):
        gaussian_blur(torch.zeros(2, 8, 8, 3), 1.0)


# ---- pool mean and previews -----------------------------------------------------------------------


def test_pool_mean_pixel_skips_unreadable_images(blob_pool):
    blob_pool.bad = (3,)
    mean = pool_mean_pixel(blob_pool, batch_size=7)
    keep = np.arange(len(blob_pool.images)) != 3
    expected = blob_pool.images[keep].reshape(-1, 3).mean(0) / 255
    np.testing.assert_allclose(mean.numpy(), expected, rtol=1e-6)


def test_preview_returns_uint8_images_and_is_seeded():
    images = (np.random.default_rng(0).random((3, 8, 8, 3)) * 255).astype(np.uint8)
    a = preview_perturbation(images, "occlusion", seed=1, size_fraction=0.5)
    b = preview_perturbation(images, "occlusion", seed=1, size_fraction=0.5)
    assert a.dtype == np.uint8 and a.shape == images.shape and np.array_equal(a, b)
    assert ((a != images).any(-1).sum(axis=(1, 2)) <= 16).all()
    np.testing.assert_array_equal(preview_perturbation(images, "blur", sigma=0.0), images)
    with pytest.raises(MdcError, match="Unknown perturbation"):
        preview_perturbation(images, "rotate")
