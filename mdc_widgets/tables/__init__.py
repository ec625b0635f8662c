"""Tables of a competition: the ranked table of a mining result and the filter language over it (pure pandas)."""

from mdc_widgets.tables.filters import OPERATORS, Filter, filter_table
from mdc_widgets.tables.ranked import metadata_frame, ranked_table, score_ranks, verdict_column

__all__ = ["OPERATORS", "Filter", "filter_table", "metadata_frame", "ranked_table", "score_ranks", "verdict_column"]
