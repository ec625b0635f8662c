"""The notebook experience: thin ipywidgets panels whose every action is a Session method."""

from mdc_widgets.widgets._util import static_mode
from mdc_widgets.widgets.app import MadApp, display_static, static_report
from mdc_widgets.widgets.browser import DetailView, SampleBrowser
from mdc_widgets.widgets.explain import ExplainPanel
from mdc_widgets.widgets.label import LabelPanel
from mdc_widgets.widgets.picker import CompetitionPicker
from mdc_widgets.widgets.plots import PlotsPanel, figure_widget
from mdc_widgets.widgets.run import RunPanel

__all__ = [
    "CompetitionPicker",
    "DetailView",
    "ExplainPanel",
    "LabelPanel",
    "MadApp",
    "PlotsPanel",
    "RunPanel",
    "SampleBrowser",
    "display_static",
    "figure_widget",
    "static_mode",
    "static_report",
]
