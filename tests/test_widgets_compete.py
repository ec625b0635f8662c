"""CompetitionPicker and RunPanel driven programmatically: widget state and what the session received."""

from __future__ import annotations

import threading
import time

import pytest
from _helpers import MODELS, RecordingSession, ThresholdCompetitor

from mdc_widgets.errors import MdcError
from mdc_widgets.mining import CompetitionGroup, Constraints, Weights
from mdc_widgets.widgets import CompetitionPicker, RunPanel


def test_picker_task_switch_sets_models_weights_and_switches(blob_session):
    picker = CompetitionPicker(blob_session, task="joint", k=7)
    assert list(picker.ss_a.options) == ["ss_a", "ss_b"] and list(picker.sod_p.options) == ["sod_p", "sod_q"]
    assert (picker.ss_a.value, picker.ss_b.value, picker.sod_p.value, picker.sod_q.value) == (
        "ss_a",
        "ss_b",
        "sod_p",
        "sod_q",
    )
    assert picker.group() == CompetitionGroup(ss=MODELS["ss"], sod=MODELS["sod"])
    assert picker.weights() == Weights(1, 1, 1)

    picker.task.value = "ss"
    assert picker.sod_p.disabled and picker.sod_q.disabled and not picker.ss_b.disabled
    assert picker.w_sod.disabled and picker.w_cross.disabled
    assert picker.group() == CompetitionGroup(ss=MODELS["ss"]) and picker.weights() == Weights(1, 0, 0)

    picker.task.value = "cross"
    picker.sod_p.value = "sod_q"
    assert picker.ss_b.disabled and picker.sod_q.disabled
    assert picker.group() == CompetitionGroup(ss=("ss_a",), sod=("sod_q",)) and picker.weights() == Weights(0, 0, 1)

    picker.task.value = "joint"
    assert picker.group().sod == ("sod_q", "sod_p"), "choosing Q's model for P swaps the two"
    picker.w_sod.value = 0.5
    picker.use_area.value, picker.area.value = True, (0.1, 0.8)
    picker.use_dedup.value = False
    picker.use_quota.value, picker.quota.value = True, 3
    picker.disjoint.value = True
    assert not picker.quota.disabled
    spec = picker.spec()
    assert spec["weights"] == Weights(1, 0.5, 1) and spec["k"] == 7 and spec["disjoint"] is True
    assert spec["constraints"] == Constraints(foreground_area=(0.1, 0.8), dedup_threshold=None, max_per_class=3)

    picker.task.value = "sod"
    picker.w_sod.value = 0.0
    with pytest.raises(MdcError, match="Every weight of the sod competition is 0"):
        picker.weights()


def test_run_predicts_then_mines_with_the_pickers_settings(blob_session):
    session = RecordingSession(blob_session)
    picker = CompetitionPicker(session, task="ss", k=5)
    picker.use_area.value = picker.use_dedup.value = False
    panel = RunPanel(session, picker, predict_options={"chunk_size": 16})
    received = []
    panel.on_done(received.append)
    panel.run_button.click()
    assert panel.wait(60)
    ((args, kwargs),) = session.called("predict")
    assert args[0] == ["ss_a", "ss_b"] and kwargs["device"] == "auto" and kwargs["chunk_size"] == 16
    assert callable(kwargs["progress"]) and isinstance(kwargs["cancel"], threading.Event)
    ((args, kwargs),) = session.called("mine")
    assert args == (CompetitionGroup(ss=MODELS["ss"]), Weights(1, 0, 0), 5, Constraints.none())
    assert kwargs == {"disjoint": False}
    assert len(received) == 1 and int(received[0]["selected"].sum()) == 5
    assert "Selected 5 of 40 images" in panel.status.value and panel.progress.bar_style == "success"
    assert (panel.progress.value, panel.progress.max) == (1, 1)  # cached predictions: nothing to do
    assert not panel.run_button.disabled and panel.cancel_button.disabled


def test_run_reports_bad_settings_without_calling_the_session(blob_session):
    session = RecordingSession(blob_session)
    picker = CompetitionPicker(session, task="ss")
    picker.w_ss.value = 0.0
    panel = RunPanel(session, picker)
    panel.run_button.click()
    assert panel.wait(5)
    assert "Every weight" in panel.status.value and session.calls == []


class GatedCompetitor(ThresholdCompetitor):
    """Blocks every call after the first until ``gate`` opens, so a test can cancel mid-run."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def predict(self, images):
        if self.calls >= 1:
            assert self.gate.wait(30), "the test never opened the gate"
        return super().predict(images)


def test_cancel_keeps_finished_chunks_and_the_next_run_resumes(tmp_path):
    from _helpers import BLOB_POOL

    from mdc_widgets.predictions import completed_fraction
    from mdc_widgets.session import Session

    slow = GatedCompetitor("slow_ss", "ss", 0.4)
    other = ThresholdCompetitor("fast_ss", "ss", 0.5)
    session = Session(BLOB_POOL, tmp_path / "store", models=[slow, other], use_registry=False)
    picker = CompetitionPicker(session, task="ss", k=3)
    panel = RunPanel(session, picker, predict_options={"chunk_size": 8, "batch_size": 8})
    panel.run_button.click()
    deadline = time.time() + 30
    while panel.progress.value < 2 and time.time() < deadline:  # chunk 0 of both models stored
        time.sleep(0.02)
    assert panel.progress.max == 10 and panel.progress.value >= 2 and panel.running
    panel.cancel_button.click()
    slow.gate.set()
    assert panel.wait(30)
    assert "Cancelled" in panel.status.value and panel.progress.bar_style == "warning"
    done = completed_fraction(tmp_path / "store", "slow_ss")
    assert 0 < done < 1, "cancel must keep the finished chunks and stop before the end"
    calls_before = slow.calls
    panel.run(background=False)
    assert "Selected 3 of 40" in panel.status.value
    assert completed_fraction(tmp_path / "store", "slow_ss") == 1.0
    # the second run computed only the unfinished chunks (5 chunks of 8 images, one call each)
    assert slow.calls - calls_before == round(5 * (1 - done))


def test_picker_protocol_dropdown_and_confidence_filter_reach_the_session(blob_session):
    session = RecordingSession(blob_session)
    picker = CompetitionPicker(session, task="joint", k=4)
    assert picker.protocol.disabled and picker.protocol.value == "mdc"  # a joint group has no published rule
    picker.task.value = "sod"
    assert not picker.protocol.disabled
    picker.protocol.value = "ijcv2021"
    assert picker.use_area.disabled and picker.use_dedup.disabled and picker.use_quota.disabled
    picker.use_confidence.value, picker.confidence.value = True, 0.3
    spec = picker.spec()
    assert spec["protocol"] == "ijcv2021" and spec["fusion"] == "rank"
    assert spec["constraints"].min_confidence == pytest.approx(0.3)
    panel = RunPanel(session, picker, predict_options={"chunk_size": 16})
    panel.run_button.click()
    assert panel.wait(60), panel.status.value
    ((_, kwargs),) = session.called("mine")
    assert kwargs == {"disjoint": False, "protocol": "ijcv2021"}
    result = panel.result
    assert result.attrs["protocol"] == "ijcv2021" and result.attrs["key"].endswith("__ijcv2021-rank")
    assert set(result["pick_defender"].values[result["selected"].values]) <= {"sod_p", "sod_q"}
    picker.task.value = "cross"
    assert picker.protocol.value == "mdc" and picker.protocol.disabled
