"""Streaming prediction: a run killed with SIGKILL resumes without recomputing finished chunks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from _helpers import ArrayPool, ThresholdCompetitor, random_blob_images

from mdc_widgets.errors import MdcError
from mdc_widgets.predictions import completed_fraction, open_predictions, predict_pool
from mdc_widgets.predictions.store import PredictionRunError

TESTS = Path(__file__).resolve().parent
N_IMAGES, CHUNK = 400, 10
N_CHUNKS = N_IMAGES // CHUNK

# the child process: the same pool and models as below, slowed so the run takes a few seconds
CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from _helpers import ArrayPool, ThresholdCompetitor, random_blob_images
    from mdc_widgets.predictions import predict_pool

    class Slow(ThresholdCompetitor):
        def predict(self, images):
            time.sleep(0.04)
            return super().predict(images)

    pool = ArrayPool(random_blob_images({n}, seed=3), bad=(17,))
    models = [Slow("ss_a", "ss", 0.3), Slow("sod_p", "sod", 0.35)]
    predict_pool(pool, models, sys.argv[1], chunk_size={chunk}, batch_size={chunk}, device="cpu", progress=False)
    """
)


def _models() -> list[ThresholdCompetitor]:
    return [ThresholdCompetitor("ss_a", "ss", 0.3), ThresholdCompetitor("sod_p", "sod", 0.35)]


def _chunk_files(store: Path, model: str) -> dict[str, int]:
    """mtime of every stored prediction chunk file of ``model``."""
    root = store / f"{model}.zarr" / "prediction" / "c"
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_sigkill_mid_run_resumes_without_recomputing_finished_chunks(tmp_path):
    store = tmp_path / "store"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(TESTS), n=N_IMAGES, chunk=CHUNK))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(
        [sys.executable, str(script), str(store)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail(f"the child ended before it was killed:\n{child.stdout.read().decode()}")
            if (store / "sod_p.zarr").exists() and completed_fraction(store, "sod_p") >= 0.3:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the child stored no chunk in 90 s")
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL

    done_at_kill = {m: zarr.open_group(str(store / f"{m}.zarr"), mode="r")["chunk_done"][:] for m in ("ss_a", "sod_p")}
    assert 0 < done_at_kill["sod_p"].sum() < N_CHUNKS, "the kill must land mid-run"
    with pytest.raises(MdcError, match="unfinished"):
        open_predictions(store)
    finished_files = {m: _chunk_files(store, m) for m in done_at_kill}

    pool = ArrayPool(random_blob_images(N_IMAGES, seed=3), bad=(17,))
    models = _models()
    resumed = predict_pool(pool, models, store, chunk_size=CHUNK, batch_size=CHUNK, device="cpu", progress=False)

    # only the chunks without a done flag were read and predicted, each model only where it was missing
    missing = {m: np.flatnonzero(~done) for m, done in done_at_kill.items()}
    expected_reads = sorted(set(missing["ss_a"]) | set(missing["sod_p"]))
    assert pool.reads == [(c * CHUNK, (c + 1) * CHUNK) for c in expected_reads]
    assert [m.calls for m in models] == [len(missing["ss_a"]), len(missing["sod_p"])]
    # the chunks finished before the kill were not rewritten
    for m, done in done_at_kill.items():
        after = _chunk_files(store, m)
        for c in np.flatnonzero(done):
            key = f"{c}/0/0"
            assert after[key] == finished_files[m][key], f"{m} chunk {c} was rewritten"
    assert not list(store.rglob("*.partial"))

    fresh = predict_pool(
        ArrayPool(random_blob_images(N_IMAGES, seed=3), bad=(17,)),
        _models(),
        tmp_path / "fresh",
        chunk_size=CHUNK,
        batch_size=CHUNK,
        device="cpu",
        progress=False,
    )
    for var in ("prediction", "entropy", "valid"):
        np.testing.assert_array_equal(resumed[var].values, fresh[var].values, err_msg=var)
    assert not resumed["valid"].values[17]


def test_an_unexpected_error_leaves_every_queued_chunk_on_disk(tmp_path, blob_pool):
    """Writes overlap with inference; a crash must still flush what was queued, flags included."""

    class Crashing(ThresholdCompetitor):
        def predict(self, images):
            if self.calls == 3:
                raise RuntimeError("out of memory")
            return super().predict(images)

    # any model error is reported against the model and chunk (issue 12), after the queue is flushed
    with pytest.raises(PredictionRunError, match="ss_a: chunk 3 .*RuntimeError: out of memory"):
        predict_pool(blob_pool, [Crashing("ss_a", "ss", 0.3)], tmp_path, chunk_size=8, batch_size=8, progress=False)
    done = zarr.open_group(str(tmp_path / "ss_a.zarr"), mode="r")["chunk_done"][:]
    assert done.tolist() == [True, True, True, False, False]
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    ds = predict_pool(blob_pool, [model], tmp_path, chunk_size=8, batch_size=8, progress=False)
    assert model.calls == 2
    expected = predict_pool(
        blob_pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path / "ref", chunk_size=8, progress=False
    )
    np.testing.assert_array_equal(ds["prediction"].values, expected["prediction"].values)


def test_a_store_killed_while_being_created_is_never_half_made(tmp_path, blob_pool, monkeypatch):
    from mdc_widgets.predictions import store as store_module

    def dies(tmp, spec, ids):
        (Path(tmp) / "zarr.json").write_text("{")
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_create_store", dies)
    with pytest.raises(KeyboardInterrupt):
        predict_pool(blob_pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path, progress=False)
    assert not (tmp_path / "ss_a.zarr").exists()
    monkeypatch.undo()
    ds = predict_pool(blob_pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path, progress=False)
    assert ds.sizes["sample"] == 40


def test_open_predictions_is_lazy_with_one_dask_chunk_per_stored_chunk(tmp_path, blob_pool, threshold_models):
    ds = predict_pool(blob_pool, threshold_models, tmp_path, chunk_size=16, progress=False)
    import dask.array as da

    assert isinstance(ds["prediction"].data, da.Array)
    assert isinstance(ds["entropy"].data, da.Array)
    assert ds["prediction"].chunksizes["sample"] == (16, 16, 8)
    assert isinstance(ds["valid"].data, np.ndarray)  # (sample,) vectors are loaded


def test_entropy_can_be_left_out_and_the_store_remembers_it(tmp_path, blob_pool):
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    ds = predict_pool(blob_pool, [model], tmp_path, entropy=False, progress=False)
    assert "entropy" not in ds
    with pytest.raises(MdcError, match="entropy"):
        predict_pool(blob_pool, [model], tmp_path, entropy=True, progress=False)
    with_entropy = predict_pool(blob_pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path / "full", progress=False)
    np.testing.assert_array_equal(ds["prediction"].values, with_entropy["prediction"].values)


def test_channels_last_and_amp_give_the_same_maps_on_cpu_and_restore_the_model(tmp_path):
    import torch

    from mdc_widgets.models import Competitor

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 3, 1))
    comp = Competitor.from_module(net, "ss", ["background", "a", "b"], name="conv")
    pool = ArrayPool(random_blob_images(24, size=16))
    plain = predict_pool(pool, [comp], tmp_path / "plain", chunk_size=8, device="cpu", progress=False)
    fast = predict_pool(
        pool, [comp], tmp_path / "fast", chunk_size=8, device="cpu", amp=True, channels_last=True, progress=False
    )
    # float32 on the CPU either way (autocast is CUDA-only): only the layout changed
    agree = (plain["prediction"].values == fast["prediction"].values).mean()
    assert agree > 0.999
    np.testing.assert_allclose(plain["entropy"].values.astype(float), fast["entropy"].values.astype(float), atol=2e-3)
    assert net[0].weight.is_contiguous()
