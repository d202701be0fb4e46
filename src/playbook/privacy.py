"""Privacy in reports: small groups hidden, personal data kept out.

Any grouped table a report shows passes through :func:`suppress_small_groups`: a group
of fewer customers than the organisation's threshold (default 10) could point at a
person, so its figures are masked (or folded into an "Other (small groups)" row).

Count tables whose row and column totals the report shows elsewhere (tier transitions:
a tier's size each season is in the tier tables) also get *secondary* suppression,
:func:`complementary_cells`: a lone masked cell in a row or column could be worked out
by subtraction, so a second cell is masked with it, and more where the masked cells
could still be worked out from the row and column totals together
(:func:`recoverable_cells`). :func:`mask_count_table` is the whole rule for such a table;
any rate shown beside it must rest only on cells it leaves shown
(:func:`touches_masked`). :func:`protect_lines` is the same rule for figures tied by
sums across several tables (a segment and the grid cells it is made of, every tier and
the customer total): no such line keeps one hidden figure, or hidden figures adding up
to fewer than the threshold; :func:`protect_groups` is its fast form for the groups of a
table with a total row (one line per column).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    while True:  # loops over the rows and columns of a small table, never customers
        changed = True
        while changed:
            changed = False
            for view_c, view_m in ((c, m), (c.T, m.T)):
                for i in np.flatnonzero(view_m.sum(axis=1) == 1):
                    free = ~view_m[i] & (view_c[i] > 0)
                    if free.any():
                        j = np.flatnonzero(free)[np.argmin(view_c[i][free])]
                        view_m[i, j] = True  # m.T is a view: this writes into m
                        changed = True
        # a masked cell may still follow from the totals of several rows and columns
        # together (e.g. a cell joining two blocks of masked cells): mask the smallest
        # further cell that makes fewer masked cells recoverable
        stuck = recoverable_cells(c, m)
        if not stuck.any():
            return m
        best = None
        for j in np.argsort(np.where(~m & (c > 0), c, np.inf), axis=None, kind="stable"):
            r, k = divmod(int(j), c.shape[1])
            if m[r, k] or c[r, k] <= 0:
                break
            trial = m.copy()
            trial[r, k] = True
            if recoverable_cells(c, trial).sum() < stuck.sum():
                best = (r, k)
                break
        if best is None:  # nothing more can be masked: leave it to the caller's check
            return m
        m[best] = True


def recoverable_cells(counts: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Masked cells whose value follows from the cells shown and all row and column totals.

    Masked cells are the unknowns; every row and column total is a linear equation on
    them. A cell is recoverable when the equations fix it: removing its column from the
    system lowers the system's rank. Zero cells count as shown.

    Returns
    -------
    numpy.ndarray
        Boolean, same shape as ``counts``: the masked cells that could be worked out.
    """
    m = np.asarray(masked, dtype=bool) & (np.asarray(counts) > 0)
    out = np.zeros(m.shape, dtype=bool)
    rows, cols = np.nonzero(m)
    if len(rows) == 0:
        return out
    n_r = m.shape[0]
    a = np.zeros((n_r + m.shape[1], len(rows)))
    a[rows, np.arange(len(rows))] = 1.0
    a[n_r + cols, np.arange(len(rows))] = 1.0
    full = np.linalg.matrix_rank(a)
    for i in range(len(rows)):  # a handful of cells in a small table
        if np.linalg.matrix_rank(np.delete(a, i, axis=1)) < full:
            out[rows[i], cols[i]] = True
    return out


def mask_count_table(counts: np.ndarray, min_group: int) -> np.ndarray:
    """The cells a count table (e.g. tier transitions) hides, whose totals are shown elsewhere.

    Primary: a cell with 1 to ``min_group - 1`` customers, and every non-zero cell of a
    row with fewer than ``min_group`` customers in all. Secondary:
    :func:`complementary_cells`, so no hidden cell can be worked out from the totals;
    and, since a row's (or column's) hidden cells add up to its total minus the cells
    shown, more cells are hidden until that sum is itself at least ``min_group`` (a
    row hiding a 2 and a 3 would otherwise show that 5 customers moved there).

    Returns
    -------
    numpy.ndarray
        Boolean mask, same shape as ``counts``.
    """
    c = np.asarray(counts, dtype=float)
    m = (c > 0) & (c < min_group)
    m |= (c.sum(axis=1) < min_group)[:, None] & (c > 0)
    while True:  # a small table: a few rounds at most
        m = complementary_cells(c, m)
        grew = False
        for view_c, view_m in ((c, m), (c.T, m.T)):
            hidden_sum = np.where(view_m, view_c, 0).sum(axis=1)
            for i in np.flatnonzero((hidden_sum > 0) & (hidden_sum < min_group)):
                free = ~view_m[i] & (view_c[i] > 0)
                if free.any():
                    j = np.flatnonzero(free)[np.argmin(view_c[i][free])]
                    view_m[i, j] = True  # m.T is a view: this writes into m
                    grew = True
        if not grew:
            return m


def touches_masked(masked: np.ndarray, cells: np.ndarray) -> bool:
    """Whether a figure resting on ``cells`` (boolean, same shape) uses a hidden cell.

    A rate or share may be shown beside a masked count table only when every cell it adds
    up is shown: otherwise, with the cells shown, it gives a hidden cell away.
    """
    return bool((np.asarray(masked, dtype=bool) & np.asarray(cells, dtype=bool)).any())


def protect_lines(
    counts: np.ndarray,
    masked: np.ndarray,
    lines: Sequence[tuple[np.ndarray, np.ndarray]],
    min_group: int,
) -> np.ndarray:
    """Secondary suppression over any set of figures tied together by known sums.

    Generalises :func:`playbook.privacy.complementary_cells` (rows and columns of one
    table) to figures shown in several tables: a *line* is an equation between shown
    figures, ``sum(sign × figure) = 0`` (a row of a grid and its total shown elsewhere,
    a segment and the grid cells it is made of, all segments and the customer total).
    A line leaks when it holds exactly one hidden figure (worked out by subtraction),
    or when its hidden figures are all on one side and add up to fewer than
    ``min_group`` customers (their sum is a small group). In each leaking line the
    smallest other non-zero figure (the first on ties) is hidden too, until no line
    leaks; a figure that would be the only non-zero, hidden one of another line (so no
    partner could be found for it there) is chosen only when there is no other. Zero
    figures are never hidden: they identify nobody.

    Parameters
    ----------
    counts : numpy.ndarray
        1-D customer counts of every figure.
    masked : numpy.ndarray
        Boolean, same shape: the figures already hidden (primary suppression).
    lines : sequence of (indices, signs)
        Positions in ``counts`` and the side (+1 / -1) of each in the equation; a plain
        total shown elsewhere is a line of +1 signs.
    min_group : int
        Suppression threshold.

    Returns
    -------
    numpy.ndarray
        Boolean mask including the complementary figures.
    """
    c = np.asarray(counts, dtype=float)
    m = np.asarray(masked, dtype=bool).copy()
    lines = [(np.asarray(i, dtype=np.int64), np.asarray(s)) for i, s in lines]
    member: dict[int, list[int]] = {}
    for n, (idx, _) in enumerate(lines):
        for i in idx:
            member.setdefault(int(i), []).append(n)

    def stuck(i: int, this: int) -> bool:
        """Hiding ``i`` would leave another line with one hidden figure and no partner."""
        for n in member[i]:
            idx = lines[n][0]
            if n == this or (m[idx] & (c[idx] > 0)).any():
                continue
            if ((~m[idx]) & (c[idx] > 0)).sum() == 1:
                return True
        return False

    changed = True
    while changed:  # loops over the lines of small tables, never over customers
        changed = False
        for n, (idx, sign) in enumerate(lines):
            hidden = m[idx] & (c[idx] > 0)
            k = int(hidden.sum())
            if k == 0:
                continue
            one_side = bool((sign[hidden] > 0).all() or (sign[hidden] < 0).all())
            if k > 1 and not (one_side and c[idx][hidden].sum() < min_group):
                continue
            free = np.flatnonzero(~m[idx] & (c[idx] > 0))
            if len(free):
                # smallest first, but not one that would be alone in another line
                order = sorted(free, key=lambda j: (stuck(int(idx[j]), n), c[idx[j]], j))
                m[idx[order[0]]] = True
                changed = True
    return m


def protect_groups(counts: np.ndarray, hidden: np.ndarray, min_group: int) -> np.ndarray:
    """Secondary suppression for the rows of a grouped table whose total is shown.

    With the total shown (an "All" row, or the same figure in another table on the
    page), one hidden group is the total minus the groups shown, and several hidden
    groups give away their sum. So while a column hides exactly one non-zero group, or
    its hidden groups add up to fewer than ``min_group`` customers, the smallest other
    non-zero group (the first one on ties) is hidden too. A group of zero identifies
    nobody and is never added. The total itself is not among ``counts``: it is never
    hidden to protect its parts.

    Parameters
    ----------
    counts : numpy.ndarray
        Customers per group: 1-D (one column), or 2-D groups × columns, each column a
        separate set of groups adding up to its own total.
    hidden : numpy.ndarray
        Boolean, same shape: the groups already hidden (primary suppression).
    min_group : int
        Suppression threshold.

    Returns
    -------
    numpy.ndarray
        Boolean, same shape: ``hidden`` with the further groups to hide.

    Examples
    --------
    >>> protect_groups(np.array([846, 129, 47]), np.array([False, False, True]), 50)
    array([False,  True,  True])
    """
    c = np.asarray(counts, dtype=float)
    m = np.asarray(hidden, dtype=bool)
    flat = c.ndim == 1
    c, m = (c[:, None], m[:, None]) if flat else (c, m)
    m = m.copy()
    if c.shape[0] == 0:
        return m[:, 0] if flat else m
    gone = m & (c > 0)
    n_gone = gone.sum(axis=0)
    sum_gone = np.where(gone, c, 0).sum(axis=0)
    free = ~m & (c > 0)
    # the free groups of each column, smallest first (stable: the first one on ties)
    order = np.argsort(np.where(free, c, np.inf), axis=0, kind="stable")
    taken = np.take_along_axis(np.where(free, c, 0), order, axis=0)
    n_free = free.sum(axis=0)
    k = np.arange(1, c.shape[0] + 1)[:, None]  # hiding the k smallest free groups
    safe = (n_gone + k >= 2) & (sum_gone + np.cumsum(taken, axis=0) >= min_group)
    safe &= k <= n_free
    leaks = (n_gone > 0) & ~((n_gone >= 2) & (sum_gone >= min_group))
    # columns that never become safe hide every free group (the total is then a sum
    # of hidden groups only)
    n_more = np.where(leaks, np.where(safe.any(axis=0), safe.argmax(axis=0) + 1, n_free), 0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(k - 1, order.shape), axis=0)
    m |= free & (rank < n_more)
    return m[:, 0] if flat else m
