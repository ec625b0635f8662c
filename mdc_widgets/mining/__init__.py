"""MAD hard-sample mining: joint rank-normalised scores and constrained top-k selection."""

from mdc_widgets.mining.mad import (
    dominant_class,
    foreground_fraction,
    group_statistics,
    load_mining,
    mine,
    mine_groups,
    mining_path,
    selected_samples,
)
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
from mdc_widgets.mining.score import (
    FUSIONS,
    CompetitionGroup,
    Weights,
    fuse,
    joint_score,
    minmax_normalize,
    rank_normalize,
)
from mdc_widgets.mining.selection import Constraints, Selection, select_top_k, thumbnail_features

__all__ = [
    "DEGENERATE_CONTENT",
    "FUSIONS",
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
    "group_statistics",
    "joint_score",
    "load_mining",
    "mine",
    "mine_groups",
    "mining_path",
    "minmax_normalize",
    "per_class_quota",
    "rank_normalize",
    "select_by_defender",
    "select_ijcv2021",
    "select_top_k",
    "selected_samples",
    "thumbnail_features",
]
