"""Human verdicts on model pairs: a label store that survives restarts, and a simulated annotator."""

from mdc_widgets.labeling.simulate import simulate_verdicts
from mdc_widgets.labeling.store import VERDICTS, Label, LabelStore, canonical_pair

__all__ = ["VERDICTS", "Label", "LabelStore", "canonical_pair", "simulate_verdicts"]
