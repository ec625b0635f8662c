"""The app's state on screen, persisted beside the session's store so a kernel restart loses nothing."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdc_widgets._atomic import atomic_write_json

__all__ = ["APP_STATE_FILE", "AppState", "describe_app_state", "load_app_state", "restore_app_state", "save_app_state"]

log = logging.getLogger(__name__)

APP_STATE_FILE = "app_state.json"
_VERSION = 1


@dataclass
class AppState:
    """What the app showed last: the competition asked for, its result, the browser's view, the label pair.

    Parameters
    ----------
    competition : dict, optional
        The picker's settings: ``task``, ``models`` (``{"ss_a": name, ...}``),
        ``weights`` (``{"ss": 1.0, ...}``), ``k``, ``protocol``, ``fusion``.
    result_key : str, optional
        Key of the mining result on screen (``<store>/mining/<key>.zarr``).
    page : int, optional
        The browser's page (0-based).
    page_size : int, optional
        Thumbnails per page.
    sort_by, ascending, filters : optional
        The browser's order and filter expression.
    sample : str, optional
        The sample open in the detail view.
    label_pair : list of str, optional
        ``[model_a, model_b]`` of the Label tab.

    Examples
    --------
    >>> state = AppState(result_key="ss-a_b__k5", page=2, sample="pool-000007")
    >>> AppState.from_dict(state.to_dict()) == state
    True
    """

    competition: dict[str, Any] = field(default_factory=dict)
    result_key: str | None = None
    page: int = 0
    page_size: int | None = None
    sort_by: str = "score"
    ascending: bool = False
    filters: str = ""
    sample: str | None = None
    label_pair: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (with a format version)."""
        return {"version": _VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppState:
        """The state from :meth:`to_dict`'s dict; unknown keys (a newer version's) are ignored.

        Parameters
        ----------
        data : dict of {str: object}
            A dict from :meth:`to_dict` (read back from JSON); ``version`` and
            unknown keys are ignored.

        Returns
        -------
        AppState
            The state, ``label_pair`` entries as str.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in names})
        if state.label_pair is not None:
            state.label_pair = [str(m) for m in state.label_pair]
        return state


def _path(store: str | Path) -> Path:
    return Path(store) / APP_STATE_FILE


def save_app_state(store: str | Path, state: AppState) -> Path:
    """Write ``state`` to ``<store>/app_state.json`` atomically (temp file + rename); returns the path.

    Parameters
    ----------
    store : str or pathlib.Path
        The prediction store folder.
    state : AppState
        What to save.

    Returns
    -------
    pathlib.Path
        ``<store>/app_state.json``.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_app_state(folder, AppState(page=3))
    >>> load_app_state(folder).page
    3
    """
    path = _path(store)
    atomic_write_json(path, state.to_dict())
    return path


def load_app_state(store: str | Path) -> AppState | None:
    """The state saved in ``store``, or None when there is none or it cannot be read (logged, not raised).

    A damaged file must not stop the app from opening: the user just starts
    from a fresh screen.

    Parameters
    ----------
    store : str or pathlib.Path
        The prediction store folder.

    Returns
    -------
    AppState or None
        The saved state; None without a readable ``app_state.json``.
    """
    path = _path(store)
    if not path.exists():
        return None
    try:
        return AppState.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        log.warning("ignoring the app state in %s (%s); starting from a fresh screen", path, exc)
        return None


def describe_app_state(state: AppState | None, result_found: bool = True) -> str:
    """One sentence for people saying what was restored.

    Parameters
    ----------
    state : AppState or None
        The restored state; None gives ``""``.
    result_found : bool, optional
        Whether the state's ``result_key`` is still in the store; if not, only
        the competition settings are said to be restored.

    Returns
    -------
    str
        ``"Restored: ..."``, or ``""`` when nothing was restored.

    Examples
    --------
    >>> describe_app_state(AppState(result_key="joint", page=1, sample="pool-000004", label_pair=["a", "b"]))
    'Restored: the result joint, page 2, sample pool-000004 open, label pair a vs b.'
    >>> describe_app_state(None)
    ''
    """
    if state is None:
        return ""
    parts = []
    if state.result_key and result_found:
        parts.append(f"the result {state.result_key}")
    elif state.result_key:
        parts.append(f"the competition settings (its result {state.result_key} is no longer in the store)")
    elif state.competition:
        parts.append("the competition settings")
    if state.result_key and result_found:
        parts.append(f"page {int(state.page) + 1}")
        if state.filters:
            parts.append(f"filter '{state.filters}'")
        if state.sample:
            parts.append(f"sample {state.sample} open")
    if state.label_pair:
        parts.append(f"label pair {state.label_pair[0]} vs {state.label_pair[1]}")
    return f"Restored: {', '.join(parts)}." if parts else ""


def restore_app_state(session: Any) -> tuple[AppState | None, bool]:
    """Reopen in ``session`` the result the app showed last; returns ``(state, result_found)``.

    The state is read from ``session.state_folder``; the result it names
    becomes ``session.current_key``. Nothing changes when the session already
    has a current result; a result no longer in the store is reported
    (``False``), not raised.

    Parameters
    ----------
    session : Session
        The session the app drives (:class:`mdc_widgets.session.Session`).

    Returns
    -------
    state : AppState or None
        The saved state, or None where none was saved or it is unreadable.
    result_found : bool
        Whether the session's current result is now the saved one.
    """
    from mdc_widgets.errors import MdcError

    state = load_app_state(session.state_folder)
    if state is None or not state.result_key or session.current_key is not None:
        return state, state is not None and session.current_key == state.result_key
    try:
        session.result(state.result_key)
    except MdcError:
        return state, False
    session.current_key = state.result_key
    return state, True
