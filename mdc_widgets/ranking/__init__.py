"""Global rankings of models: Bradley-Terry from pairwise wins, and the published MAD and gMAD rankings."""

from mdc_widgets.ranking.bradley_terry import (
    VERDICTS,
    bootstrap_ranking,
    bradley_terry,
    comparisons_from_scores,
    win_matrix,
    win_matrix_from_labels,
)
from mdc_widgets.ranking.mad import (
    attack_success,
    bootstrap_mad_ranking,
    gmad_scores,
    mad_eigenvector,
    pair_accuracy,
    role_sets,
)

__all__ = [
    "VERDICTS",
    "attack_success",
    "bootstrap_mad_ranking",
    "bootstrap_ranking",
    "bradley_terry",
    "comparisons_from_scores",
    "gmad_scores",
    "mad_eigenvector",
    "pair_accuracy",
    "role_sets",
    "win_matrix",
    "win_matrix_from_labels",
]
