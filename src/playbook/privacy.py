"""Privacy in reports: small groups hidden, personal data kept out.

Any grouped table a report shows passes through :func:`suppress_small_groups`: a group
of fewer customers than the organisation's threshold (default 10) could point at a
person, so its figures are masked (or folded into an "Other (small groups)" row).

Count tables whose row and column totals the report shows elsewhere (tier transitions:
a tier's size each season is in the tier tables) also get *secondary* suppression,
:func:`complementary_cells`: a lone masked cell in a row or column could be worked out
by subtraction, so a second cell is masked with it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

OTHER = "Other (small groups)"


def suppress_small_groups(
    df: pd.DataFrame,
    count_col: str,
    min_group: int,
    *,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Mask the figures of rows whose customer count is below ``min_group``.

    Parameters
    ----------
    df : pandas.DataFrame
        A grouped table with one row per group.
    count_col : str
        Column holding the number of distinct customers in the group.
    min_group : int
        Smallest group that may be shown.
    columns : iterable of str, optional
        Columns to mask (default: every numeric column, the count included).

    Returns
    -------
    pandas.DataFrame
        A copy; masked cells are missing (shown as "–"). ``df.attrs["suppressed"]`` holds
        the number of masked rows.
    """
    out = df.copy()
    small = out[count_col] < min_group
    cols = (
        list(columns)
        if columns is not None
        else [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c])]
    )
    for c in cols:
        if pd.api.types.is_integer_dtype(out[c]):
            out[c] = out[c].astype("Int64")
        elif pd.api.types.is_bool_dtype(out[c]):
            out[c] = out[c].astype("boolean")
        out.loc[small, c] = pd.NA if not pd.api.types.is_float_dtype(out[c]) else np.nan
    out.attrs["suppressed"] = int(small.sum())
    return out


def merge_small_groups(
    df: pd.DataFrame,
    group_col: str,
    count_col: str,
    min_group: int,
    *,
    sum_cols: Iterable[str] = (),
) -> pd.DataFrame:
    """Fold groups below ``min_group`` into one "Other (small groups)" row.

    Counts and ``sum_cols`` are added up; other numeric columns become missing for the
    merged row. If the merged row is itself still too small, its figures are masked.
    """
    small = df[count_col] < min_group
    if not small.any():
        out = df.copy()
        out.attrs["suppressed"] = 0
        return out
    big = df.loc[~small]
    rest = df.loc[small]
    merged: dict[str, object] = {c: np.nan for c in df.columns}
    merged[group_col] = OTHER
    merged[count_col] = rest[count_col].sum()
    for c in sum_cols:
        merged[c] = rest[c].sum()
    out = pd.concat([big, pd.DataFrame([merged])], ignore_index=True)
    if merged[count_col] < min_group:
        out = suppress_small_groups(out, count_col, min_group)
    out.attrs["suppressed"] = int(small.sum())
    return out


def mask_small_cells(counts: pd.DataFrame, values: pd.DataFrame, min_group: int) -> pd.DataFrame:
    """Mask cells of a matrix (e.g. artform × season) whose customer count is too small."""
    out = values.astype("float64").copy()
    out[counts.reindex_like(values).fillna(0) < min_group] = np.nan
    out.attrs["suppressed"] = int(((counts < min_group) & (counts > 0)).to_numpy().sum())
    return out


def complementary_cells(counts: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Secondary suppression: no row or column of a count table keeps a lone masked cell.

    A masked cell that is the only one in its row (or column) can be worked out as the
    row total minus the cells shown. For each such row and column the smallest other
    non-zero cell is masked too (the first one on ties), repeated until no row or column
    has exactly one masked cell. Zero cells are never masked: they identify nobody.

    Parameters
    ----------
    counts : numpy.ndarray
        2-D customer counts.
    masked : numpy.ndarray
        Boolean, same shape: the cells already masked (primary suppression).

    Returns
    -------
    numpy.ndarray
        Boolean mask including the complementary cells.
    """
    c = np.asarray(counts, dtype=float)
    m = np.asarray(masked, dtype=bool).copy()
    changed = True
    while changed:  # loops over the rows and columns of a small table, never customers
        changed = False
        for view_c, view_m in ((c, m), (c.T, m.T)):
            for i in np.flatnonzero(view_m.sum(axis=1) == 1):
                free = ~view_m[i] & (view_c[i] > 0)
                if free.any():
                    j = np.flatnonzero(free)[np.argmin(view_c[i][free])]
                    view_m[i, j] = True  # m.T is a view: this writes into m
                    changed = True
    return m
