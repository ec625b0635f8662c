"""What an investigation remembers between kernel restarts, and what a model needs before it can run.

- :mod:`.ui`: the app's last competition, result, page, selection and label
  pair, written atomically beside the session's store and read back when the
  session or the app is created (``AppState``, ``load_app_state``,
  ``save_app_state``, ``describe_app_state``).
- :mod:`.weights`: whether a registered model's checkpoint is on this machine
  (``missing_weights``), so a picker can say so before a run fails.
"""

from mdc_widgets.state.ui import (
    APP_STATE_FILE,
    AppState,
    describe_app_state,
    load_app_state,
    restore_app_state,
    save_app_state,
)
from mdc_widgets.state.weights import missing_weights

__all__ = [
    "APP_STATE_FILE",
    "AppState",
    "describe_app_state",
    "load_app_state",
    "missing_weights",
    "restore_app_state",
    "save_app_state",
]
