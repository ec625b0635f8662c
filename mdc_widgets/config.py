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


def resolve_device(device: str | None = "auto") -> str:
    """Return ``"cuda"`` when asked for ``"auto"`` and a GPU is present, else the request."""
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
