"""MAD hard-sample mining: joint rank-normalised scores and constrained top-k selection."""

from mdc_widgets.mining.mad import (
    dominant_class,
    foreground_fraction,
    load_mining,
    mine,
    mine_groups,
    mining_path,
    selected_samples,
)
from mdc_widgets.mining.score import CompetitionGroup, Weights, joint_score, rank_normalize
from mdc_widgets.mining.selection import Constraints, Selection, select_top_k, thumbnail_features

__all__ = [
    "CompetitionGroup",
    "Constraints",
    "Selection",
    "Weights",
    "dominant_class",
    "foreground_fraction",
    "joint_score",
    "load_mining",
    "mine",
    "mine_groups",
    "mining_path",
    "rank_normalize",
    "select_top_k",
    "selected_samples",
    "thumbnail_features",
]
