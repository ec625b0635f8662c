"""mdc-widgets: find the images on which computer-vision models fail, by making them compete.

The core (``data``, ``models``, ``predictions``, ``discrepancy``, ``mining``,
``metrics``, ``ranking``, ``explain``, ``strategies``) runs without Jupyter;
``Session`` ties a pool to its predictions and results, and ``MadApp`` is the
widget layer over it (imported on first use, so the core never loads ipywidgets).
"""

__version__ = "0.1.0"
__all__ = ["MadApp", "Session", "__version__"]


def __getattr__(name: str):
    if name == "Session":
        from mdc_widgets.session import Session

        return Session
    if name == "MadApp":
        from mdc_widgets.widgets import MadApp

        return MadApp
    raise AttributeError(f"module 'mdc_widgets' has no attribute {name!r}")
