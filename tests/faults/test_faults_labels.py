"""Label verdicts: concurrent appends lose nothing, a torn tail is recoverable, unknown ids are refused."""

from __future__ import annotations

import multiprocessing as mp
import warnings

import pytest

from mdc_widgets.errors import MdcError
from mdc_widgets.labeling import LabelStore

PER_PROCESS = 150


def _label_many(path: str, worker: int) -> None:
    store = LabelStore(path)
    for i in range(PER_PROCESS):
        store.label(f"w{worker}-s{i:03d}", "unet", "fcn", "a" if i % 2 else "b")


def test_processes_labelling_one_file_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "labels.jsonl")
    context = mp.get_context("fork")
    workers = [context.Process(target=_label_many, args=(path, w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    store = LabelStore(path)
    assert len(store.history) == 4 * PER_PROCESS
    assert len(store) == 4 * PER_PROCESS
    assert store.dropped == b""


def test_a_torn_last_line_is_dropped_with_a_warning_and_the_rest_reads(tmp_path):
    path = tmp_path / "labels.jsonl"
    store = LabelStore(path)
    store.label("s1", "unet", "fcn", "a")
    store.label("s2", "unet", "fcn", "b")
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:25])  # a crash mid-write
    with pytest.warns(UserWarning, match="torn line"):
        reopened = LabelStore(path)
    assert [label.sample for label in reopened] == ["s1", "s2"]
    assert len(reopened.dropped) == 25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reopened.label("s3", "unet", "fcn", "both_fine")  # the next append cuts the torn tail off
    again = LabelStore(path)
    assert [label.sample for label in again] == ["s1", "s2", "s3"] and again.dropped == b""


def test_a_damaged_middle_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    LabelStore(path).label("s1", "unet", "fcn", "a")
    path.write_bytes(b"{not json\n" + path.read_bytes())
    with pytest.raises(MdcError, match="Line 1 of the label file"):
        LabelStore(path)


def test_unknown_sample_ids_are_refused_when_the_store_knows_the_pool(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl", sample_ids=["s1", "s2"])
    store.label("s1", "unet", "fcn", "a")
    with pytest.raises(MdcError, match="'nope' is not in the pool"):
        store.label("nope", "unet", "fcn", "a")
    with pytest.raises(MdcError, match="not in the pool"):
        store.extend(
            [
                {"sample": "s2", "model_a": "a", "model_b": "b", "verdict": "a"},
                {"sample": "x", "model_a": "a", "model_b": "b", "verdict": "a"},
            ]
        )
    assert len(LabelStore(tmp_path / "labels.jsonl")) == 1


def test_a_full_disk_while_labelling_is_an_mdc_error_and_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    import errno
    import os

    from mdc_widgets._locking import StorageError

    path = tmp_path / "labels.jsonl"
    store = LabelStore(path)
    store.label("s1", "unet", "fcn", "a")
    before = path.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageError, match=f"No space left on the device of {tmp_path}.*free space"):
        store.label("s2", "unet", "fcn", "b")
    monkeypatch.undo()
    assert path.read_bytes() == before
