"""Pool-wide steps stream the stored maps: memory stays a few blocks, never the whole (sample, y, x) array."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import xarray as xr
from _helpers import ArrayPool, ThresholdCompetitor, random_blob_images

from mdc_widgets.discrepancy import binarize_saliency, compute_discrepancies
from mdc_widgets.mining import (
    CompetitionGroup,
    Constraints,
    dominant_class,
    foreground_fraction,
    mad,
    mine,
    thumbnail_features,
)
from mdc_widgets.predictions import predict_pool

N, SIZE = 3000, 32


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Four competitors' maps of 3000 32x32 images, in a store (12 MB of uint8 maps, 24 MB of entropy)."""
    pool = ArrayPool(random_blob_images(N, size=SIZE, seed=5))
    models = [
        ThresholdCompetitor("ss_a", "ss", 0.3),
        ThresholdCompetitor("ss_b", "ss", 0.6),
        ThresholdCompetitor("sod_p", "sod", 0.35),
        ThresholdCompetitor("sod_q", "sod", 0.7),
    ]
    store = tmp_path_factory.mktemp("store")
    return predict_pool(pool, models, store, chunk_size=200, batch_size=200, device="cpu", progress=False)


def _peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
def small_blocks(monkeypatch):
    # the default block is 32 MB, larger than this whole test pool; 0.5 MB makes it stream in 15 blocks
    monkeypatch.setattr(mad, "_BLOCK_BYTES", 2**19)


GROUP = CompetitionGroup(ss=("ss_a", "ss_b"), sod=("sod_p", "sod_q"))
STEPS = {
    "foreground_fraction": lambda ds: foreground_fraction(ds, GROUP.models),
    "dominant_class": lambda ds: dominant_class(ds, "ss_a"),
    "default_features": lambda ds: mad._default_features(ds, GROUP, None),
    "compute_discrepancies": lambda ds: compute_discrepancies(ds, device="cpu", chunk_size=200),
    "mine": lambda ds: mine(ds, GROUP, k=20, constraints=Constraints(dedup_threshold=None), save=False),
}


def _output_bytes(result) -> int:
    return int(result.nbytes)


@pytest.mark.parametrize("step", list(STEPS))
def test_pool_wide_steps_take_flat_memory_in_pool_size(stored, small_blocks, step):
    """Peak traced memory on 1000 vs 3000 images: the maps triple, the peak (less the output) does not grow."""
    peaks = {}
    for n in (1000, N):
        part = stored.isel(sample=slice(0, n))
        result, peak = _peak(lambda part=part: STEPS[step](part))
        peaks[n] = peak - _output_bytes(result)
    maps_bytes = N * 4 * SIZE * SIZE  # uint8 maps of the four models: 12 MB
    assert peaks[N] < maps_bytes, peaks
    # (sample,) vectors (ids, scores, ranks) grow with n; a (sample, y, x) array would add 8 MB
    assert peaks[N] < 1.25 * peaks[1000] + 200 * (N - 1000), peaks


def test_streamed_helpers_match_an_in_memory_computation(stored, small_blocks):
    area = foreground_fraction(stored, GROUP.models)
    dom = dominant_class(stored, "ss_a")
    feats = mad._default_features(stored, GROUP, None)
    maps = stored["prediction"].values
    expected_area = np.mean(
        [
            (maps[:, 0] > 0).mean((1, 2)),
            (maps[:, 1] > 0).mean((1, 2)),
            binarize_saliency(maps[:, 2]).mean((1, 2)),
            binarize_saliency(maps[:, 3]).mean((1, 2)),
        ],
        0,
    )
    np.testing.assert_allclose(area.values, expected_area, rtol=1e-12)
    counts = np.stack([(maps[:, 0] == c).sum((1, 2)) for c in range(3)], 1)
    counts[:, 0] = 0
    np.testing.assert_array_equal(dom.values, np.where(counts.max(1) > 0, counts.argmax(1), 0))
    assert 0 < (dom.values == 2).sum() < N
    expected_feats = np.concatenate([thumbnail_features(maps[:, i].astype(np.float32)) for i in range(4)], 1) / 2
    np.testing.assert_allclose(feats, expected_feats, atol=1e-6)
    assert feats.dtype == np.float32
    assert list(area["sample"].values[:2]) == ["s0000", "s0001"]


def test_helpers_accept_in_memory_predictions_too(stored):
    loaded = stored.compute()
    group = GROUP
    np.testing.assert_array_equal(
        foreground_fraction(loaded, group.models).values, foreground_fraction(stored, group.models).values
    )
    assert isinstance(loaded["prediction"].data, np.ndarray)
    empty = foreground_fraction(loaded.isel(sample=slice(0, 0)), ["ss_a"])
    assert isinstance(empty, xr.DataArray) and empty.dims == ("sample",) and empty.shape == (0,)
