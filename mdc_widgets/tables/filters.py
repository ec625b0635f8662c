"""The filter language of the ranked tables: text, tuple and mapping filters over a pandas frame.

Pure pandas, no session: ``Session.ranked_table(filters=...)``, the browser's
filter box and scripts all filter with :func:`filter_table`.

Examples
--------
>>> t = pd.DataFrame({"score": [0.9, 0.2], "occlusion": [0.5, 0.1]})
>>> filter_table(t, "occlusion > 0.3")["score"].tolist()
[0.9]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mdc_widgets.errors import MdcError

__all__ = ["OPERATORS", "Filter", "filter_table"]

# a filter: a text expression, a (column, op, value) tuple or a {column: value} mapping
Filter = str | tuple | Mapping[str, Any]
OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "=", "~", "not in", "in", "contains")
_CLAUSE = re.compile(
    r"^\s*(?P<neg>not\s+)?(?P<col>[A-Za-z_][\w.]*)\s*"
    r"(?:(?P<op>==|!=|<=|>=|<|>|=|~|\bnot\s+in\b|\bin\b|\bcontains\b)\s*(?P<value>.+?))?\s*$"
)


def _parse_value(text: str) -> Any:
    """A clause's value read as a YAML scalar or list (``0.5``, ``true``, ``[1, 2]``), else the text itself."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text.strip()


def _clause_mask(frame: pd.DataFrame, column: str, op: str | None, value: Any, negate: bool = False) -> np.ndarray:
    """The rows of ``frame`` one clause keeps, as a bool array (``op`` None: the column's truthy rows)."""
    if column not in frame:
        raise MdcError(f"Cannot filter on {column!r}: no such column. Columns: {', '.join(map(str, frame.columns))}.")
    series = frame[column]
    op = "==" if op == "=" else (op or "truthy").strip()
    op = re.sub(r"\s+", " ", op)
    if op == "truthy":
        mask = series.fillna(False).astype(bool).to_numpy()
    elif op in ("in", "not in"):
        values = list(value) if isinstance(value, (list, tuple, set)) else [value]
        mask = series.isin(values).to_numpy() | series.astype(str).isin([str(v) for v in values]).to_numpy()
        mask = ~mask if op == "not in" else mask
    elif op in ("~", "contains"):
        mask = series.astype(str).str.contains(str(value), case=False, regex=False).to_numpy()
    elif op in ("==", "!="):
        if isinstance(value, str) and not pd.api.types.is_string_dtype(series) and series.dtype != object:
            raise MdcError(f"Column {column!r} holds numbers; compare it with a number, not {value!r}.")
        equal = (series.astype(str) == value).to_numpy() if isinstance(value, str) else (series == value).to_numpy()
        mask = equal if op == "==" else ~equal
    elif op in ("<", "<=", ">", ">="):
        try:
            numbers = pd.to_numeric(series, errors="raise")
            threshold = float(value)
        except (TypeError, ValueError) as exc:
            raise MdcError(f"{column} {op} {value!r}: both sides must be numbers.") from exc
        mask = {
            "<": numbers < threshold,
            "<=": numbers <= threshold,
            ">": numbers > threshold,
            ">=": numbers >= threshold,
        }[op].to_numpy()
    else:
        raise MdcError(f"Unknown filter operator {op!r}; use one of {', '.join(OPERATORS)}.")
    return ~mask if negate else mask


def filter_table(frame: pd.DataFrame, filters: Filter | Sequence[Filter] | None) -> pd.DataFrame:
    """Rows of ``frame`` that pass every filter.

    A filter is a text expression (clauses joined by ``and`` or ``&``: ``column
    op value`` with op in ``== != < <= > >= in, not in, contains (~)``, a bare
    ``column`` for true values, ``not column``), a ``(column, op, value)``
    tuple, or a ``{column: value}`` mapping (equality; a list means "in").
    Values are read as YAML scalars (``0.5``, ``true``, ``[1, 2]``, ``cat``).

    Parameters
    ----------
    frame : pandas.DataFrame
        The table, e.g. :func:`ranked_table`'s.
    filters : str or tuple or mapping or sequence of these or None
        One filter or several (all must pass); None or blank text keeps every row.

    Returns
    -------
    pandas.DataFrame
        The passing rows, index and order kept.

    Raises
    ------
    MdcError
        A filter cannot be read (a malformed clause or tuple, an unknown column
        or operator, a value of another type); the message shows the form to use.

    Examples
    --------
    >>> t = pd.DataFrame({"score": [0.9, 0.2, 0.7], "name": ["cat", "dog", "cow"], "selected": [True, False, True]})
    >>> filter_table(t, "score > 0.5 and name ~ c")["name"].tolist()
    ['cat', 'cow']
    >>> filter_table(t, [("name", "in", ["dog", "cow"]), "not selected"])["name"].tolist()
    ['dog']
    """
    if filters is None or (isinstance(filters, str) and not filters.strip()):
        return frame
    if isinstance(filters, (str, tuple, Mapping)):
        filters = [filters]
    mask = np.ones(len(frame), bool)
    for item in filters:
        if isinstance(item, Mapping):
            for column, value in item.items():
                mask &= _clause_mask(frame, str(column), "in" if isinstance(value, (list, tuple, set)) else "==", value)
        elif isinstance(item, tuple):
            if len(item) != 3:
                raise MdcError(f"A filter tuple is (column, op, value); got {item!r}.")
            mask &= _clause_mask(frame, str(item[0]), str(item[1]), item[2])
        elif isinstance(item, str):
            for clause in re.split(r"\s+and\s+|\s*&\s*", item.strip()):
                if not clause.strip():
                    continue
                match = _CLAUSE.match(clause)
                if match is None:
                    raise MdcError(
                        f"Cannot read the filter {clause!r}; write 'column op value' (e.g. 'score > 0.5', "
                        "'dominant_class in [1, 2]', 'path ~ beach') or a bare column name."
                    )
                value = _parse_value(match["value"]) if match["value"] is not None else None
                mask &= _clause_mask(frame, match["col"], match["op"], value, negate=bool(match["neg"]))
        else:
            raise MdcError(f"A filter is a text, a (column, op, value) tuple or a mapping; got {type(item).__name__}.")
    return frame[mask]
