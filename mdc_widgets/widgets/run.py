"""Run a competition in the background: predict (once per model), then mine; cancellable, with live progress."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from mdc_widgets.errors import MdcError
from mdc_widgets.predictions import RunCancelled
from mdc_widgets.widgets._util import status_html

__all__ = ["RunPanel"]

log = logging.getLogger(__name__)


class RunPanel:
    """Run and Cancel buttons, a progress bar fed by ``predict_pool``, and a status line.

    The work runs in a background thread, so the notebook stays responsive;
    Cancel sets the run's Event, and every chunk finished before it stays in
    the store (the next Run resumes there).

    Parameters
    ----------
    session : the :class:`~mdc_widgets.session.Session` to drive
    picker : the :class:`~mdc_widgets.widgets.CompetitionPicker` that says what to run
    predict_options : extra ``predict_pool`` arguments (``chunk_size``, ``batch_size``, ...)
    """

    def __init__(self, session: Any, picker: Any, predict_options: dict[str, Any] | None = None):
        import ipywidgets as W

        self.session = session
        self.picker = picker
        self.predict_options = dict(predict_options or {})
        self.run_button = W.Button(
            description="Run",
            icon="play",
            button_style="primary",
            tooltip="Predict the chosen models (each once) and mine the pool",
        )
        self.cancel_button = W.Button(
            description="Cancel",
            icon="stop",
            disabled=True,
            tooltip="Stop after the current chunk; finished chunks are kept",
        )
        self.progress = W.IntProgress(
            value=0, min=0, max=1, description="predict", bar_style="", layout=W.Layout(width="320px")
        )
        self.status = W.HTML(status_html("Ready: choose a competition and press Run."))
        self.widget = W.VBox([W.HBox([self.run_button, self.cancel_button, self.progress]), self.status])
        self.run_button.on_click(lambda _: self.run())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._done: list[Callable[[Any], None]] = []

    def on_done(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(result)`` after every successful run (in the run's thread)."""
        self._done.append(callback)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self, background: bool = True) -> threading.Thread | None:
        """Start a run with the picker's current settings (ignored while one is running)."""
        if self.running:
            return self._thread
        try:
            spec = self.picker.spec()
        except MdcError as exc:
            self._finish(str(exc), "error")
            return None
        self._cancel = threading.Event()
        self.run_button.disabled, self.cancel_button.disabled = True, False
        self.progress.value, self.progress.bar_style = 0, ""
        self.error, self.result = None, None
        if not background:
            self._work(spec)
            return None
        self._thread = threading.Thread(target=self._work, args=(spec,), name="mdc-run", daemon=True)
        self._thread.start()
        return self._thread

    def cancel(self) -> None:
        """Ask the running prediction to stop after its current chunk."""
        if self._cancel is not None:
            self._cancel.set()
            self.cancel_button.disabled = True
            self.status.value = status_html("Cancelling after the current chunk...", "warning")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends; True if it did within ``timeout``."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress.description = f"{done}/{total}"

    def _work(self, spec: dict[str, Any]) -> None:
        group = spec["group"]
        started = time.perf_counter()
        try:
            todo = [m for m in group.models if m not in self.session.predicted_models()]
            self.status.value = status_html(
                f"Predicting {', '.join(todo)} over {len(self.session.pool)} images..."
                if todo
                else "Predictions of these models are cached; mining..."
            )
            self.session.predict(
                list(group.models),
                device=spec["device"],
                progress=self._on_progress,
                cancel=self._cancel,
                **self.predict_options,
            )
            if not todo:
                self.progress.max, self.progress.value = 1, 1
            self.status.value = status_html("Mining...")
            # only non-default choices are passed, so a session without them still works
            chosen = {
                name: spec[name]
                for name, default in (("protocol", "mdc"), ("fusion", "rank"))
                if spec.get(name, default) != default
            }
            result = self.session.mine(
                group, spec["weights"], spec["k"], spec["constraints"], disjoint=spec["disjoint"], **chosen
            )
            self.result = result
            self.progress.bar_style = "success"
            chosen = int(result["selected"].values.sum())
            skipped = {k: v for k, v in json.loads(result.attrs.get("report", "{}")).items() if v}
            note = f"; constraints skipped {skipped}" if skipped else ""
            self._finish(
                f"Selected {chosen} of {len(self.session.pool)} images for {group.key} "
                f"in {time.perf_counter() - started:.1f} s{note}.",
                "ok",
            )
            for callback in self._done:
                callback(result)
        except RunCancelled as exc:
            self.error = exc
            self.progress.bar_style = "warning"
            self._finish(f"Cancelled: {exc}", "warning")
        except MdcError as exc:
            self.error = exc
            self.progress.bar_style = "danger"
            self._finish(str(exc), "error")
        except Exception as exc:  # a widget thread must report, not die silently
            log.exception("run failed")
            self.error = exc
            self.progress.bar_style = "danger"
            self._finish(f"{type(exc).__name__}: {exc}", "error")

    def _finish(self, message: str, kind: str) -> None:
        self.status.value = status_html(message, kind)
        self.run_button.disabled, self.cancel_button.disabled = False, True
