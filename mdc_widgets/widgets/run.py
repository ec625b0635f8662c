"""Run a competition in the background: predict (once per model), score, select, show; cancellable, with live progress."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from mdc_widgets.errors import MdcError, WeightsNotFoundError
from mdc_widgets.predictions import RunCancelled
from mdc_widgets.widgets._util import status_html

__all__ = ["PHASES", "RunPanel", "describe_skipped", "in_ui_words"]

log = logging.getLogger(__name__)

# what a run does, in the order the step line shows it
PHASES = (
    ("predict", "predict"),
    ("score", "score pairs"),
    ("select", "select top k"),
    ("show", "show results"),
)
_CONSTRAINT_WORDS = {
    "excluded": "already picked by another result",
    "foreground_area": "foreground area out of bounds",
    "min_content": "too little content",
    "min_confidence": "models not confident",
    "class_quota": "class quota full",
    "class_pair": "class pair already taken",
    "near_duplicate": "near-duplicates",
}


def describe_skipped(report: dict[str, int]) -> str:
    """The constraints' report in words, e.g. ``'3 near-duplicates, 1 foreground area out of bounds'``.

    Parameters
    ----------
    report : dict of {str: int}
        Constraint name to the number of candidates it skipped (a result's constraint report).

    Returns
    -------
    str
        Comma-separated counts, zeros left out; ``""`` when nothing was skipped.

    Examples
    --------
    >>> describe_skipped({"near_duplicate": 3, "foreground_area": 1, "class_quota": 0})
    '3 near-duplicates, 1 foreground area out of bounds'
    >>> describe_skipped({})
    ''
    """
    return ", ".join(
        f"{int(count)} {_CONSTRAINT_WORDS.get(name, name.replace('_', ' '))}" for name, count in report.items() if count
    )


def in_ui_words(exc: BaseException) -> str:
    """An error's message for the app: advice about code arguments becomes advice about the picker.

    Parameters
    ----------
    exc : BaseException
        The error a run raised.

    Returns
    -------
    str
        Its message; for a ``WeightsNotFoundError`` the ``pass weights=...`` advice is replaced.

    Examples
    --------
    >>> message = "No file x.pth in /w, or pass weights='/path/x.pth', or weights=None for random weights."
    >>> in_ui_words(WeightsNotFoundError(message))[:60]
    'No file x.pth in /w. In the Compete tab, give this model a c'
    """
    text = str(exc)
    if isinstance(exc, WeightsNotFoundError):
        text = re.split(r"\s*(?:,? or pass weights=|,? or weights=None)", text)[0].rstrip(" .,;")
        text += ". In the Compete tab, give this model a checkpoint file or choose random weights for a dry run."
    return text


class RunPanel:
    """Run and Cancel buttons, a prediction progress bar, the run's steps and a status line.

    The work runs in a background thread, so the notebook stays responsive;
    Cancel sets the run's Event, and every chunk finished before it stays in
    the store (the next Run resumes there). The step line follows the whole
    run, prediction, scoring, selection and showing the results, and the
    status says "Selected ..." only once the results are on screen.

    Parameters
    ----------
    session : Session
        The :class:`~mdc_widgets.session.Session` to drive.
    picker : CompetitionPicker
        The :class:`~mdc_widgets.widgets.CompetitionPicker` that says what to run.
    predict_options : dict of {str: object} or None, optional
        Extra ``predict_pool`` arguments (``chunk_size``, ``batch_size``, ...).
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
            tooltip="Predict the chosen models (each once), score every pair, select the top k and show them",
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
        self.steps = W.HTML()
        self.status = W.HTML(status_html("Ready: choose a competition and press Run."))
        self.widget = W.VBox([W.HBox([self.run_button, self.cancel_button, self.progress]), self.steps, self.status])
        self.run_button.on_click(lambda _: self.run())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.result: Any = None
        self.error: BaseException | None = None
        self.timings: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._cancel: threading.Event | None = None
        self._done: list[Callable[[Any], None]] = []
        self._phase: str | None = None
        self._show_steps()

    def on_done(self, callback: Callable[[Any], None]) -> None:
        """Call ``callback(result)`` after every successful run (in the run's thread), before it says done.

        Parameters
        ----------
        callback : callable
            Called with the run's result (a mining result Dataset).
        """
        self._done.append(callback)

    @property
    def running(self) -> bool:
        """True while a background run's thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def run(self, background: bool = True) -> threading.Thread | None:
        """Start a run with the picker's current settings (ignored while one is running).

        Parameters
        ----------
        background : bool, optional
            Run in a daemon thread; False runs in the caller's thread and blocks.

        Returns
        -------
        threading.Thread or None
            The run's thread (the running one if a run was already going); None when run in the
            foreground or when the picker's settings were refused (the status says why).
        """
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
        self.error, self.result, self.timings = None, None, {}
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
        """Block until the run ends; True if it did within ``timeout``.

        Parameters
        ----------
        timeout : float or None, optional
            Seconds to wait at most; None waits until the run ends.

        Returns
        -------
        bool
            True when no run is going any more.
        """
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = done
        self.progress.description = f"{done}/{total}"

    # -- the step line ---------------------------------------------------------------------
    def _show_steps(self, failed: bool = False) -> None:
        parts = []
        for name, words in PHASES:
            if name in self.timings:
                parts.append(f"<span style='color:#2a7d2a'>&#10003; {words} {self.timings[name]:.1f} s</span>")
            elif name == self._phase:
                colour = "#b00020" if failed else "#1a5fb4"
                mark = "&#10007;" if failed else "&#9654;"
                parts.append(f"<b style='color:{colour}'>{mark} {words}</b>")
            else:
                parts.append(f"<span style='color:#888'>{words}</span>")
        self.steps.value = "<span style='font-size:12px'>" + " &middot; ".join(parts) + "</span>"

    def _enter(self, phase: str, message: str) -> float:
        self._phase = phase
        self._show_steps()
        self.status.value = status_html(message)
        return time.perf_counter()

    def _leave(self, phase: str, started: float) -> None:
        self.timings[phase] = time.perf_counter() - started
        self._phase = None
        self._show_steps()

    # -- the run ---------------------------------------------------------------------------
    def _work(self, spec: dict[str, Any]) -> None:
        group = spec["group"]
        started = time.perf_counter()
        n = len(self.session.pool)
        try:
            todo = [m for m in group.models if m not in self.session.predicted_models()]
            t = self._enter(
                "predict",
                f"Predicting {', '.join(todo)} over {n} images..."
                if todo
                else "The predictions of these models are already stored; nothing to predict.",
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
            self._leave("predict", t)
            t = self._enter("score", f"Scoring how much each pair of models disagrees on {n} images...")
            self.session.discrepancy()
            self._leave("score", t)
            t = self._enter("select", f"Selecting the top {spec['k']} of {n} images...")
            # only non-default choices are passed, so a session without them still works
            chosen = {
                name: spec[name]
                for name, default in (("protocol", "mdc"), ("fusion", "rank"))
                if spec.get(name, default) != default
            }
            result = self.session.mine(
                group, spec["weights"], spec["k"], spec["constraints"], disjoint=spec["disjoint"], **chosen
            )
            self._leave("select", t)
            self.result = result
            t = self._enter("show", "Showing the results: thumbnails, tables and plots...")
            for callback in self._done:
                callback(result)
            self._leave("show", t)
            self.progress.bar_style = "success"
            selected = int(result["selected"].values.sum())
            skipped = describe_skipped(json.loads(result.attrs.get("report", "{}")))
            note = f" Skipped for diversity: {skipped}." if skipped else ""
            self._finish(
                f"Selected {selected} of {n} images for {group.key}; done in "
                f"{time.perf_counter() - started:.1f} s.{note}",
                "ok",
            )
        except RunCancelled as exc:
            self.error = exc
            self.progress.bar_style = "warning"
            self._show_steps(failed=True)
            kept = f"{self.progress.value} of {self.progress.max} chunks are" if self.progress.max > 1 else "what was"
            self._finish(f"Cancelled: {kept} kept; press Run to go on from there.", "warning")
        except MdcError as exc:
            self.error = exc
            self.progress.bar_style = "danger"
            self._show_steps(failed=True)
            self._finish(in_ui_words(exc), "error")
        except Exception as exc:  # a widget thread must report, not die silently
            log.exception("run failed")
            self.error = exc
            self.progress.bar_style = "danger"
            self._show_steps(failed=True)
            self._finish(
                f"The run failed while trying to {dict(PHASES).get(self._phase or '', 'run')}: "
                f"{str(exc) or type(exc).__name__}. The details are in the notebook's log.",
                "error",
            )

    def _finish(self, message: str, kind: str) -> None:
        self.status.value = status_html(message, kind)
        self.run_button.disabled, self.cancel_button.disabled = False, True
