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
from mdc_widgets.ranking.sources import (
    COMPARED_ON,
    comparison_samples,
    components,
    ground_truth_comparisons,
    rank_sources,
)

__all__ = [
    "COMPARED_ON",
    "VERDICTS",
    "attack_success",
    "bootstrap_mad_ranking",
    "bootstrap_ranking",
    "bradley_terry",
    "comparison_samples",
    "comparisons_from_scores",
    "components",
    "gmad_scores",
    "ground_truth_comparisons",
    "mad_eigenvector",
    "pair_accuracy",
    "rank_sources",
    "role_sets",
    "win_matrix",
    "win_matrix_from_labels",
]
