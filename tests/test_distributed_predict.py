"""predict_pool on a Dask LocalCluster: workers write their own chunks; the result equals a local run bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import ArrayPool, ThresholdCompetitor, random_blob_images

from mdc_widgets.models import register_model
from mdc_widgets.predictions import RunCancelled, completed_fraction, model_sources, predict_pool, split_shards

distributed = pytest.importorskip("distributed")

MODEL = "test_pointwise_ss"


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A tiny SS net registered only in this process, with its weights in a file."""
    weights = tmp_path_factory.mktemp("weights") / "pointwise.pt"
    net = torch.nn.Conv2d(3, 3, 1)
    with torch.no_grad():  # background unless red (class 1) or green (class 2) is bright
        net.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 4.0, 0.0]])[:, :, None, None])
        net.bias.copy_(torch.tensor([2.0, -0.5, -1.0]))
    torch.save(net.state_dict(), weights)
    register_model(
        MODEL,
        lambda: torch.nn.Conv2d(3, 3, 1),
        "ss",
        ("background", "a", "b"),
        default_weights=lambda: weights,
        overwrite=True,
    )
    return weights


@pytest.fixture(scope="module")
def client():
    import dask
    from distributed.utils import get_mp_context

    # workers fork from one server that imported torch and the store once, rather than each importing them
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context().set_forkserver_preload(
            ["distributed", "numpy", "torch", "xarray", "zarr", "dask.array", "mdc_widgets.predictions", "conftest"]
        )
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client


def _pool() -> ArrayPool:
    return ArrayPool(random_blob_images(120, size=16, seed=7), bad=(5, 61))


def test_cluster_run_equals_the_local_run_bit_for_bit(tmp_path, registered, client):
    models = [MODEL, ThresholdCompetitor("sod_p", "sod", 0.35)]
    local = predict_pool(_pool(), models, tmp_path / "local", chunk_size=10, batch_size=4, device="cpu", progress=False)
    pool = _pool()
    seen = []
    remote = predict_pool(
        pool,
        models,
        tmp_path / "remote",
        chunk_size=10,
        batch_size=4,
        device="cpu",
        client=client,
        shard_size=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    import dask.array as da

    assert isinstance(remote["prediction"].data, da.Array)
    for var in ("prediction", "entropy", "valid"):
        np.testing.assert_array_equal(local[var].values, remote[var].values, err_msg=var)
    labels = remote["prediction"].sel(model=MODEL).values
    assert set(np.unique(labels)) == {0, 1, 2}
    # the registered name was rebuilt on the workers from its name and weights file
    known = client.run(lambda: __import__("mdc_widgets.models", fromlist=["list_models"]).list_models())
    assert len(known) == 2 and all(MODEL in names for names in known.values())
    # undecodable images reported by the workers reach the client's pool
    assert set(pool.errors) == {"s0005", "s0061"}
    assert seen[-1] == (24, 24)
    # the workers that ran shards no longer pin glibc's mmap threshold (Dask's MALLOC_TRIM_THRESHOLD_)
    relaxed = client.run(lambda: __import__("mdc_widgets.predictions.distributed", fromlist=["x"])._MALLOC_RELAXED)
    assert any(relaxed.values())


def test_cluster_run_resumes_only_the_missing_chunks(tmp_path, client):
    store = tmp_path / "store"
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    with pytest.raises(RunCancelled):
        predict_pool(_pool(), [model], store, chunk_size=10, progress=False, cancel=lambda: model.calls >= 5)
    assert completed_fraction(store, "ss_a") == pytest.approx(5 / 12)
    counts = []
    ds = predict_pool(
        _pool(),
        [ThresholdCompetitor("ss_a", "ss", 0.3)],
        store,
        chunk_size=10,
        client=client,
        progress=lambda done, total: counts.append(total),
    )
    assert set(counts) == {7}
    fresh = predict_pool(
        _pool(), [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path / "fresh", chunk_size=10, progress=False
    )
    np.testing.assert_array_equal(ds["prediction"].values, fresh["prediction"].values)


def test_a_failing_model_on_the_workers_is_named_and_the_others_kept(tmp_path, client):
    class NaNModel(ThresholdCompetitor):
        def predict(self, images):
            return super().predict(images) * float("nan")

    from mdc_widgets.predictions import PredictionRunError

    models = [NaNModel("nan_sod", "sod", 0.5), ThresholdCompetitor("ss_a", "ss", 0.3)]
    with pytest.raises(PredictionRunError, match="nan_sod"):
        predict_pool(_pool(), models, tmp_path, chunk_size=40, client=client, progress=False)
    assert completed_fraction(tmp_path, "ss_a") == 1.0


def test_sources_ship_weights_files_by_path_and_other_models_pickled(registered):
    sources = model_sources([MODEL, ThresholdCompetitor("sod_p", "sod", 0.35)])
    assert sources[0].competitor is None and sources[0].checkpoint == str(registered.resolve())
    assert sources[1].competitor is not None and sources[1].task == "sod"
    assert split_shards([3, 4, 9], n_workers=4) == [[3], [4], [9]]
