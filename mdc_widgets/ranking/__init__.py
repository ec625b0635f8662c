"""Global rankings of models from pairwise wins (metrics or human verdicts)."""

from mdc_widgets.ranking.bradley_terry import (
    VERDICTS,
    bootstrap_ranking,
    bradley_terry,
    comparisons_from_scores,
    win_matrix,
    win_matrix_from_labels,
)

__all__ = [
    "VERDICTS",
    "bootstrap_ranking",
    "bradley_terry",
    "comparisons_from_scores",
    "win_matrix",
    "win_matrix_from_labels",
]
