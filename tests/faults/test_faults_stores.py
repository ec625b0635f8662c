"""Prediction stores: damaged chunks, model identity, two writers, failing models, a full disk."""

from __future__ import annotations

import errno
import threading
import time
import warnings

import numpy as np
import pytest
import torch
import zarr
from _helpers import ArrayPool, ThresholdCompetitor, random_blob_images

from mdc_widgets._locking import StorageError, file_lock
from mdc_widgets.errors import MdcError
from mdc_widgets.models import Competitor, get_model, register_model
from mdc_widgets.predictions import open_predictions, predict_pool
from mdc_widgets.predictions.store import PredictionRunError, StoreDamagedError, damaged_chunks


@pytest.fixture
def pool() -> ArrayPool:
    return ArrayPool(random_blob_images(24))


def _run(pool, models, store, **options):
    return predict_pool(pool, models, store, chunk_size=8, batch_size=8, progress=False, **options)


def test_a_deleted_chunk_file_is_refused_on_open_and_recomputed_by_the_next_run(tmp_path, pool):
    expected = _run(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path)["prediction"].values
    victim = tmp_path / "ss_a.zarr" / "prediction" / "c" / "1" / "0" / "0"
    victim.unlink()
    assert list(damaged_chunks(tmp_path / "ss_a.zarr")) == [1]
    with pytest.raises(StoreDamagedError, match=r"chunk 1: .*prediction/c/1/0/0 is missing.*recompute"):
        open_predictions(tmp_path)
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    with pytest.warns(UserWarning, match="damaged chunk"):
        again = _run(pool, [model], tmp_path)
    assert model.calls == 1  # only the damaged chunk
    np.testing.assert_array_equal(again["prediction"].values, expected)


def test_a_chunk_file_replaced_by_other_bytes_is_detected(tmp_path, pool):
    _run(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path)
    victim = tmp_path / "ss_a.zarr" / "entropy" / "c" / "2" / "0" / "0"
    victim.write_bytes(b"garbage")  # another size: caught by the size record on open
    with pytest.raises(StoreDamagedError, match="entropy/c/2/0/0 has 7 bytes"):
        open_predictions(tmp_path)


def test_a_corrupt_chunk_of_the_recorded_size_is_a_named_error_at_read_time(tmp_path, pool):
    _run(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path)
    victim = tmp_path / "ss_a.zarr" / "prediction" / "c" / "2" / "0" / "0"
    victim.write_bytes(b"\x00" * victim.stat().st_size)  # zstd cannot decode it
    ds = open_predictions(tmp_path)
    with pytest.raises(StoreDamagedError, match=r"Chunk 2 of 'prediction' in the prediction store .*overwrite=True"):
        _ = ds["prediction"].values


def test_other_weights_for_a_registered_model_are_not_read_from_its_store(tmp_path, pool):
    register_model(
        "faults_tiny_ss",
        lambda: torch.nn.Conv2d(3, 3, 1),
        "ss",
        ["background", "a", "b"],
        output="logits",
        overwrite=True,
    )
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    torch.manual_seed(0)
    torch.save(torch.nn.Conv2d(3, 3, 1).state_dict(), first)
    torch.save(torch.nn.Conv2d(3, 3, 1).state_dict(), second)
    _run(pool, [("faults_tiny_ss", str(first))], tmp_path / "store")
    assert (
        zarr.open_group(str(tmp_path / "store" / "faults_tiny_ss.zarr")).attrs["model_identity"].startswith("sha256:")
    )
    with pytest.raises(MdcError, match="differs in: model_identity"):
        _run(pool, [("faults_tiny_ss", str(second))], tmp_path / "store")
    assert get_model("faults_tiny_ss", checkpoint=str(first)).weights_file == str(first)
    _run(pool, [("faults_tiny_ss", str(first))], tmp_path / "store")  # the same weights resume


def test_a_second_writer_waits_for_the_first_and_recomputes_nothing(tmp_path, pool):
    _run(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path)
    model = ThresholdCompetitor("ss_a", "ss", 0.3)
    finished = threading.Event()

    def second_writer():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _run(pool, [model], tmp_path)
        finished.set()

    with file_lock(tmp_path / ".predict.lock"):  # the first writer, still running
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(0.5)
        assert not finished.is_set()
    thread.join(60)
    assert finished.is_set() and model.calls == 0


class _Failing(ThresholdCompetitor):
    def predict(self, images):
        if self.calls == 1:
            raise RuntimeError("CUDA error: an illegal memory access")
        return super().predict(images)


def _wrong_channels() -> Competitor:
    return Competitor.from_module(torch.nn.Conv2d(4, 3, 1), "ss", ["background", "a", "b"], name="four_channels")


def test_with_errors_skip_any_exception_is_recorded_and_the_other_models_finish(tmp_path, pool):
    healthy = ThresholdCompetitor("sod_ok", "sod", 0.4)
    with pytest.warns(UserWarning, match="2 model"):
        ds = _run(pool, [_Failing("ss_bad", "ss", 0.3), _wrong_channels(), healthy], tmp_path, errors="skip")
    assert list(ds["model"].values) == ["sod_ok"]
    failures = ds.attrs["failures"]
    assert failures["ss_bad"].startswith("chunk 1 (samples 8-15): RuntimeError: CUDA error")
    assert failures["four_channels"].startswith("chunk 0 (samples 0-7): RuntimeError")
    assert open_predictions(tmp_path, ["sod_ok"])["valid"].values.all()


def test_with_errors_raise_a_plain_exception_names_the_model_and_chunk(tmp_path, pool):
    with pytest.raises(PredictionRunError, match=r"four_channels: chunk 0 .*RuntimeError") as info:
        _run(pool, [_wrong_channels(), ThresholdCompetitor("sod_ok", "sod", 0.4)], tmp_path)
    assert set(info.value.failures) == {"four_channels"}
    open_predictions(tmp_path, ["sod_ok"])  # the healthy model was stored


def test_a_full_disk_is_an_mdc_error_naming_the_folder(tmp_path, pool, monkeypatch):
    def no_space(self, key, value):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(zarr.Array, "__setitem__", no_space)
    with pytest.raises(StorageError, match=f"No space left on the device of {tmp_path}.*free space"):
        _run(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path)


def test_nan_from_a_saliency_model_that_outputs_labels_is_refused(tmp_path, pool):
    nan_labels = Competitor.from_module(
        lambda x: torch.full(x.shape[:1] + x.shape[2:], float("nan")),
        "sod",
        ["background", "salient"],
        name="nan_labels",
        output="labels",
    )
    with pytest.raises(PredictionRunError, match="nan_labels: chunk 0 .*NaN"):
        _run(pool, [nan_labels], tmp_path)


@pytest.mark.parametrize("option, value", [("batch_size", 0), ("chunk_size", -5), ("batch_size", "16")])
def test_bad_batch_and_chunk_sizes_are_named(tmp_path, pool, option, value):
    with pytest.raises(MdcError, match=f"{option} takes a whole number of at least 1"):
        predict_pool(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path, progress=False, **{option: value})


def test_every_atomic_write_reports_a_full_disk_by_folder(tmp_path, monkeypatch):
    import os

    from mdc_widgets._atomic import atomic_write_dir, atomic_write_json

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageError, match=f"No space left on the device of {tmp_path} while writing"):
        atomic_write_json(tmp_path / "summary.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left

    def fills_the_disk(folder):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StorageError, match="free space"):
        atomic_write_dir(tmp_path / "store.zarr", fills_the_disk)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_session_does_not_mine_from_a_damaged_store(tmp_path, pool):
    from mdc_widgets.session import Session

    _run(pool, [ThresholdCompetitor("ss_a", "ss", 0.3)], tmp_path)
    session = Session(pool, store=tmp_path)
    assert session.predicted_models() == ["ss_a"]
    (tmp_path / "ss_a.zarr" / "valid" / "c" / "1").unlink()
    assert session.predicted_models() == []
