"""MAD hard-sample mining: joint rank-normalised scores and constrained top-k selection."""

from mdc_widgets.mining.mad import dominant_class, foreground_fraction, group_statistics, mine, mine_groups
from mdc_widgets.mining.protocols import (
    DEGENERATE_CONTENT,
    PROTOCOLS,
    class_fractions,
    content_fraction,
    disputed_confidence,
    disputed_mask,
    per_class_quota,
    select_by_defender,
    select_ijcv2021,
)
from mdc_widgets.mining.results import group_of, load_mining, mining_path, result_key, selected_samples
from mdc_widgets.mining.score import (
    FUSIONS,
    KINDS,
    CompetitionGroup,
    Weights,
    fuse,
    group_pairs,
    joint_score,
    minmax_normalize,
    rank_normalize,
)
from mdc_widgets.mining.selection import Constraints, Selection, pool_features, select_top_k, thumbnail_features

# the name the experiments and notebooks used before ``pool_features``
image_features = pool_features

__all__ = [
    "DEGENERATE_CONTENT",
    "FUSIONS",
    "KINDS",
    "PROTOCOLS",
    "CompetitionGroup",
    "Constraints",
    "Selection",
    "Weights",
    "class_fractions",
    "content_fraction",
    "disputed_confidence",
    "disputed_mask",
    "dominant_class",
    "foreground_fraction",
    "fuse",
    "group_of",
    "group_pairs",
    "group_statistics",
    "image_features",
    "joint_score",
    "load_mining",
    "mine",
    "mine_groups",
    "mining_path",
    "minmax_normalize",
    "per_class_quota",
    "pool_features",
    "rank_normalize",
    "result_key",
    "select_by_defender",
    "select_ijcv2021",
    "select_top_k",
    "selected_samples",
    "thumbnail_features",
]
