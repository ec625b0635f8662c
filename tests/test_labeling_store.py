"""The label store: verdicts survive a restart, the last one wins, and a crash never leaves half a file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mdc_widgets.errors import MdcError, ShapeError
from mdc_widgets.labeling import LabelStore, canonical_pair, simulate_verdicts


def test_labels_survive_reopen_and_the_last_verdict_per_pair_wins(tmp_path):
    path = tmp_path / "labels.jsonl"
    store = LabelStore(path)
    store.label("s1", "unet", "fcn", "a")  # unet better
    store.label("s2", "unet", "fcn", "both_wrong")
    store.label("s1", "fcn", "unet", "a")  # same pair seen the other way: fcn better now
    store.label("s1", "unet", "vst", "b")  # another pair on the same sample stays separate

    reopened = LabelStore(path)
    assert len(reopened) == 3 and len(reopened.history) == 4
    s1 = reopened.get("s1", "unet", "fcn")
    assert s1.verdict == "b" and s1.winner == "fcn"
    assert reopened.get("s1", "fcn", "unet").verdict == "a"
    assert reopened.get("s1", "unet", "vst").winner == "vst"
    assert reopened.get("s3", "unet", "fcn") is None
    frame = reopened.to_frame()
    assert list(frame.columns[:4]) == ["sample", "model_a", "model_b", "verdict"]
    # canonical order: model_a < model_b alphabetically, verdict swapped with it
    assert frame.set_index(["sample", "model_a", "model_b"])["verdict"].to_dict() == {
        ("s2", "fcn", "unet"): "both_wrong",
        ("s1", "fcn", "unet"): "a",
        ("s1", "unet", "vst"): "b",
    }
    # every line of the file is one JSON label
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["sample"] in {"s1", "s2"} for line in lines)


def test_canonical_pair_swaps_only_directional_verdicts():
    assert canonical_pair("b", "a", "a") == ("a", "b", "b")
    assert canonical_pair("b", "a", "both_wrong") == ("a", "b", "both_wrong")
    with pytest.raises(MdcError, match="Unknown verdict 'maybe'"):
        canonical_pair("a", "b", "maybe")
    with pytest.raises(MdcError, match="two different models"):
        canonical_pair("a", "a", "a")


def test_accepted_masks_are_saved_beside_and_read_back_exactly(tmp_path):
    store = LabelStore(tmp_path / "labels.jsonl")
    mask = np.arange(64, dtype=np.uint8).reshape(8, 8) % 6
    saved = store.label("dir/img 1.png", "unet", "fcn", "a", mask=mask, mask_model="unet")
    assert saved.mask.startswith("labels_masks/") and (tmp_path / saved.mask).exists()
    back = LabelStore(tmp_path / "labels.jsonl").mask("dir/img 1.png", "fcn", "unet")
    np.testing.assert_array_equal(back, mask)
    store.label("s2", "unet", "fcn", "b", mask=np.eye(4, dtype=bool))
    np.testing.assert_array_equal(store.mask("s2", "unet", "fcn"), np.eye(4, dtype=np.uint8) * 255)
    with pytest.raises(ShapeError, match="one \\(H, W\\) map"):
        store.label("s3", "unet", "fcn", "a", mask=np.zeros((2, 2, 3)))


def test_a_crash_during_a_write_leaves_the_previous_labels_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "labels.jsonl"
    store = LabelStore(path)
    store.label("s1", "a", "b", "a")
    before = path.read_bytes()

    import mdc_widgets._atomic as atomic

    def crash(fd):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(atomic.os, "fsync", crash)
    with pytest.raises(OSError, match="simulated"):
        store.label("s2", "a", "b", "b")
    monkeypatch.undo()
    assert path.read_bytes() == before
    # the lock file stays (it is reused by the next writer); no temporary file does
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == ["labels.jsonl"]
    assert [l.sample for l in LabelStore(path)] == ["s1"]


def test_killing_a_writer_at_any_moment_leaves_a_readable_file(tmp_path):
    path = tmp_path / "labels.jsonl"
    writer = textwrap.dedent(f"""
        import sys
        from mdc_widgets.labeling import LabelStore
        store = LabelStore({str(path)!r})
        print("ready", flush=True)
        i = 0
        while True:
            store.label(f"s{{i % 50}}", "a", "b", "a" if i % 2 else "b")
            i += 1
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.4)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    store = LabelStore(path)  # raises on a partial line
    assert len(store.history) > 0
    # the file holds whole labels, in order: label i is on sample s{i % 50}
    assert [l.sample for l in store.history[:3]] == ["s0", "s1", "s2"]
    assert path.read_text().endswith("\n")


def test_two_stores_on_one_file_do_not_lose_each_others_labels(tmp_path):
    first, second = LabelStore(tmp_path / "l.jsonl"), LabelStore(tmp_path / "l.jsonl")
    first.label("s1", "a", "b", "a")
    second.label("s2", "a", "b", "b")
    assert {l.sample for l in LabelStore(tmp_path / "l.jsonl")} == {"s1", "s2"}


def test_extend_remove_and_a_corrupt_line(tmp_path):
    path = tmp_path / "labels.jsonl"
    store = LabelStore(path)
    frame = pd.DataFrame({"sample": ["s1", "s2"], "model_a": ["x", "y"], "model_b": ["y", "x"], "verdict": ["a", "a"]})
    assert store.extend(frame, annotator="sim") == 2
    assert store.get("s2", "x", "y").verdict == "b" and store.get("s1", "x", "y").annotator == "sim"
    assert store.remove("s1", "y", "x") and not store.remove("s1", "x", "y")
    assert [l.sample for l in LabelStore(path)] == ["s2"]
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(MdcError, match="Line 2 of the label file"):
        LabelStore(path)


def test_simulated_verdicts_follow_the_metric_with_ties_and_noise():
    scores = xr.DataArray(
        [[0.9, 0.5], [0.5, 0.9], [0.8, 0.79], [0.3, 0.31], [0.6, 0.1]],
        dims=("sample", "model"),
        coords={"sample": list("ijklm"), "model": ["A", "B"]},
    )
    verdicts = simulate_verdicts(scores, {("A", "B"): list("ijklm")}, tie_tol=0.02, good=0.7)
    assert verdicts["verdict"].tolist() == ["a", "b", "both_fine", "both_wrong", "a"]
    errors = simulate_verdicts(scores, {("A", "B"): list("ijklm")}, higher_is_better=False, good=0.2)
    assert errors["verdict"].tolist() == ["b", "a", "both_wrong", "both_wrong", "b"]
    flipped = simulate_verdicts(scores, {("A", "B"): list("ijklm")}, noise=1.0)
    assert flipped["verdict"].tolist() == ["b", "a", "both_fine", "both_wrong", "b"]
