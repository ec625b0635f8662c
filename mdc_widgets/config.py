"""Where mdc-widgets keeps its caches (trained weights, generated pools)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root of the on-disk cache: ``$MDC_WIDGETS_HOME`` or ``~/.cache/mdc_widgets``.

    Examples
    --------
    >>> cache_dir().name in {"mdc_widgets", os.environ.get("MDC_WIDGETS_HOME", "").rstrip("/").split("/")[-1]}
    True
    """
    root = os.environ.get("MDC_WIDGETS_HOME")
    path = Path(root) if root else Path.home() / ".cache" / "mdc_widgets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def report_dir(default: str = "../reports") -> str:
    """Where a notebook writes its figures and tables by default.

    ``default``, except under ``MDC_WIDGETS_QUICK=1`` (the smoke-size runs of
    the test suite, e.g. nbval), where it is a fresh temporary folder, so tests
    never overwrite the results of ``make demo`` in ``reports/``. Papermill
    runs (``mdc_widgets reproduce`` / ``render``) pass ``output_dir`` explicitly.

    Parameters
    ----------
    default : str, optional
        The folder to use outside quick runs, relative to the notebook's
        working directory (``../reports`` from ``notebooks/``).

    Returns
    -------
    str
        ``default``, or a new temporary folder under ``MDC_WIDGETS_QUICK=1``.

    Examples
    --------
    >>> report_dir("../reports") == "../reports" or os.environ.get("MDC_WIDGETS_QUICK") == "1"
    True
    """
    if os.environ.get("MDC_WIDGETS_QUICK") == "1":
        import tempfile

        return tempfile.mkdtemp(prefix="mdc_widgets_reports_")
    return default


def resolve_device(device: str | None = "auto") -> str:
    """Return ``"cuda"`` when asked for ``"auto"`` and a GPU is present, else the request.

    Parameters
    ----------
    device : str or None, optional
        ``"auto"`` or None (CUDA when available, else ``"cpu"``), or a torch
        device string such as ``"cpu"``, ``"cuda"`` or ``"cuda:1"``, returned
        unchanged (not checked).

    Returns
    -------
    str
        A torch device string.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto") in {"cpu", "cuda"}
    True
    """
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
