"""Experiments built on the core: the paper's table in miniature."""

from mdc_widgets.experiments.paper import (
    SET_NAMES,
    PaperConfig,
    fusion_overlap,
    mine_paper_sets,
    paper_table_markdown,
    run_paper_experiment,
    set_labels,
)

__all__ = [
    "SET_NAMES",
    "PaperConfig",
    "fusion_overlap",
    "mine_paper_sets",
    "paper_table_markdown",
    "run_paper_experiment",
    "set_labels",
]
