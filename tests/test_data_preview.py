"""Contact sheets of a dataset: image beside ground-truth overlay, written as a PNG."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mdc_widgets.data import generate_miniworld


def test_overlay_paints_labeled_pixels_and_outlines_the_salient_region():
    from mdc_widgets.data import overlay_ground_truth

    images = np.full((1, 5, 5, 3), 100, np.uint8)
    semantic = np.zeros((1, 5, 5), np.uint8)
    semantic[0, 1:4, 1:4] = 2
    out = overlay_ground_truth(images, semantic, np.where(semantic > 0, 255, 0).astype(np.uint8), alpha=0.5)
    assert out[0, 0, 0].tolist() == [100, 100, 100]  # background untouched
    assert (out[0, 1, 1] == 255).all()  # the salient border is white
    centre = out[0, 2, 2].astype(int)
    assert centre.tolist() != [255, 255, 255] and centre.tolist() != [100, 100, 100]  # class colour blended in


def test_save_preview_writes_a_grid_of_image_and_overlay_pairs(tmp_path):
    from mdc_widgets.data import save_preview

    ds = generate_miniworld("val", n=6, seed=0, image_size=32)
    path = save_preview(ds, tmp_path / "preview.png", n=6, columns=3, scale=2)
    grid = np.asarray(Image.open(path).convert("RGB"))
    tile_h, tile_w = 32 * 2 + 4, (32 + 2 + 32) * 2 + 4
    assert grid.shape == (2 * tile_h, 3 * tile_w, 3)
    # the top-left tile starts with the first image, upscaled 2x (after a 2-pixel margin)
    first = ds["image"].values[0].repeat(2, 0).repeat(2, 1)
    np.testing.assert_array_equal(grid[2 : 2 + 64, 2 : 2 + 64], first)
