"""RFM: recency, frequency and monetary scores, and named segments from them.

Scores run from 1 to ``bins`` (default 5, quintiles); 5 is best (most recent, most
visits, most money). Scores come from each customer's rank, so they are relative to
this organisation's customers.

Ties are handled deterministically, in one of two ways (``rfm.ties``):

- ``together`` (default): customers with equal values always share a score, the
  score of the lowest rank the tied group reaches — ``score = floor(bins × share of
  customers with a strictly lower value) + 1``. Most arts customers have visited once,
  so all one-visit customers get F = 1 and some F scores may stay empty; in exchange a
  score never separates two people with the same history, and a recent one-time visitor
  is a "recent one-visit" customer, not a "repeat & recent" one.
- ``first``: equal-sized bins, as in a textbook quintile split. Customers are sorted by
  the value and ties are broken by customer id (``rank(method="first")`` on the sorted
  frame, then cut into equal bins), so a large tied group is split in a fixed but
  arbitrary order.

Named segments come from a list of rules in ``rfm.segments`` (first match wins), each
giving inclusive R and F score ranges and optionally an M range. Their default names
("Frequent & recent", "Repeat & recent" …) deliberately avoid the words of the maturity
ladder (Champion, Loyal, Regular …): they are different groups of people.

Privacy: the segment table and the R × F grid hide groups below the threshold, and
:func:`rfm_masks` hides further segments and cells so that a hidden figure cannot be
worked out from the others (the grid's rows and columns, each segment's cells, the
total of all customers): see :func:`protect_lines`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from playbook import charts
from playbook.config import OrgConfig
from playbook.features import FC, settings
from playbook.privacy import protect_lines, suppress_small_groups

R, F, M = "r_score", "f_score", "m_score"
SEGMENT = "rfm_segment"

# Words of the maturity ladder (playbook.tiers): an RFM segment named like a rung would
# be read as the same group of people. Used only to warn about such names in org.yaml.
_LADDER_WORDS = {"champion", "loyal", "regular", "returner", "first-timer", "lapsed"}


def rfm_settings(cfg: OrgConfig | None = None) -> dict[str, Any]:
    """The ``rfm`` settings in force."""
    return settings(cfg, "rfm")


def rank_scores(keys: Sequence[np.ndarray], bins: int = 5) -> np.ndarray:
    """Equal-sized scores 1..``bins`` from sort keys (first key decides, later keys break ties).

    Parameters
    ----------
    keys : sequence of arrays
        Sort keys, most important first; higher values get higher scores.
    bins : int
        Number of scores.

    Returns
    -------
    numpy.ndarray of int
        The customer at rank position ``p`` (0-based, of ``n``) scores
        ``floor(p * bins / n) + 1``.
    """
    n = len(keys[0])
    if n == 0:
        return np.array([], dtype=np.int64)
    order = np.lexsort(tuple(reversed([np.asarray(k, dtype=float) for k in keys])))
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n)
    return (pos * bins // n + 1).astype(np.int64)


def tied_scores(values: np.ndarray, bins: int = 5) -> np.ndarray:
    """Scores 1..``bins`` where equal values always share a score.

    ``score = floor(bins * (number of strictly lower values) / n) + 1``; higher values
    get higher scores.
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0:
        return np.array([], dtype=np.int64)
    lower = np.searchsorted(np.sort(v), v, side="left")
    return (lower * bins // n + 1).astype(np.int64)


def score_rfm(features: pd.DataFrame, cfg: OrgConfig | None = None) -> pd.DataFrame:
    """R, F and M scores and the named segment of every customer.

    Parameters
    ----------
    features : pandas.DataFrame
        From :func:`playbook.features.build_features` (needs ``recency_days``,
        ``frequency`` and the monetary column, default ``total_spend``).
    cfg : OrgConfig, optional
        Settings (``rfm`` section: ``bins``, ``monetary``, ``ties``, ``segments``).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``features``: ``recency_days``, ``frequency``, ``monetary``,
        ``r_score``, ``f_score``, ``m_score``, ``rfm_cell`` (e.g. ``"545"``) and
        ``rfm_segment``.
    """
    s = rfm_settings(cfg)
    bins = int(s.get("bins", 5))
    money_col = s.get("monetary", FC.total_spend)
    ties = s.get("ties", "together")
    if ties not in ("together", "first"):
        raise ValueError(f"rfm.ties must be 'together' or 'first', not {ties!r}")
    f = features.sort_index()  # sorted by customer id: position breaks 'first' ties
    idx = np.arange(len(f))
    recency = f[FC.recency_days].to_numpy(dtype=float)
    freq = f[FC.frequency].to_numpy(dtype=float)
    money = f[money_col].to_numpy(dtype=float)
    if ties == "together":
        r, fr, m = tied_scores(-recency, bins), tied_scores(freq, bins), tied_scores(money, bins)
    else:
        r = rank_scores([-recency, -idx], bins)
        fr = rank_scores([freq, -idx], bins)
        m = rank_scores([money, -idx], bins)
    out = pd.DataFrame(
        {
            FC.recency_days: recency,
            FC.frequency: f[FC.frequency].to_numpy(),
            "monetary": money,
            R: r,
            F: fr,
            M: m,
        },
        index=f.index,
    )
    out["rfm_cell"] = out[R].astype(str) + out[F].astype(str) + out[M].astype(str)
    out[SEGMENT] = name_segments(out, s.get("segments", []), s.get("other", "Other"))
    return out.reindex(features.index)


def name_segments(
    scores: pd.DataFrame, rules: Sequence[Mapping[str, Any]], other: str = "Other"
) -> pd.Series:
    """Named segment per customer: the first rule whose score ranges match.

    Parameters
    ----------
    scores : pandas.DataFrame
        With ``r_score``, ``f_score`` and ``m_score``.
    rules : sequence of mapping
        Each ``{name, r: [lo, hi], f: [lo, hi], m: [lo, hi] (optional)}``.
    other : str
        Name for customers no rule matches.
    """
    conditions, names = [], []
    for rule in rules:
        ok = np.ones(len(scores), dtype=bool)
        for key, col in (("r", R), ("f", F), ("m", M)):
            if key in rule and rule[key] is not None:
                lo, hi = rule[key]
                ok &= scores[col].between(int(lo), int(hi)).to_numpy()
        conditions.append(ok)
        names.append(str(rule["name"]))
    for name in dict.fromkeys(names):
        if name.strip().lower().rstrip("s") in _LADDER_WORDS:
            warnings.warn(
                f"The RFM segment name {name!r} (under rfm: segments: in org.yaml) is also "
                "the name of a rung of the maturity ladder, but it is a different group of "
                "people. The report uses it as written; rename it in org.yaml (for example "
                "'Frequent & recent' or 'Repeat & recent') so the two cannot be confused.",
                UserWarning,
                stacklevel=2,
            )
    values = np.select(conditions, names, other) if conditions else np.full(len(scores), other)
    order = [*names, other]
    cats = list(dict.fromkeys(order))
    return pd.Series(pd.Categorical(values, categories=cats), index=scores.index, name=SEGMENT)


def _grid_counts(scores: pd.DataFrame) -> pd.DataFrame:
    """Customers per R (rows, highest first) × F (columns, lowest first) score."""
    counts = pd.crosstab(scores[R], scores[F])
    return counts.sort_index(ascending=False).sort_index(axis=1)


def rfm_masks(scores: pd.DataFrame, min_group: int = 10) -> tuple[pd.Series, pd.DataFrame]:
    """Which named segments and which R × F cells the report must hide.

    Primary: segments and cells with 1 to ``min_group - 1`` customers. Secondary
    (:func:`protect_lines`): the segment table adds up to all customers; each row and
    column of the grid adds up to a total that could be known; each segment is the sum
    of the grid cells it is made of (segments with an M rule share cells: they are
    linked in one equation). Hidden segments and cells are chosen together so none of
    these sums gives a hidden figure away.

    Returns
    -------
    segments : pandas.Series
        Indexed by segment name (segments with customers only): True = hide.
    cells : pandas.DataFrame
        Same shape and order as :func:`rf_grid`: True = hide.
    """
    seg = scores[SEGMENT].astype(str)
    seg_counts = seg.value_counts().sort_index()
    grid = _grid_counts(scores)
    n_s, (n_r, n_f) = len(seg_counts), grid.shape
    counts = np.concatenate([seg_counts.to_numpy(), grid.to_numpy().ravel()]).astype(float)
    primary = (counts > 0) & (counts < min_group)
    cell_pos = np.arange(n_r * n_f).reshape(n_r, n_f) + n_s
    lines: list[tuple[np.ndarray, np.ndarray]] = [(np.arange(n_s), np.ones(n_s))]
    lines += [(cell_pos[i], np.ones(n_f)) for i in range(n_r)]
    lines += [(cell_pos[:, j], np.ones(n_r)) for j in range(n_f)]
    # segments and cells linked by sharing customers: one equation per connected group
    s_code = seg_counts.index.get_indexer(seg)
    r_code = grid.index.get_indexer(scores[R])
    f_code = grid.columns.get_indexer(scores[F])
    c_code = n_s + r_code * n_f + f_code
    n = n_s + n_r * n_f
    graph = coo_matrix((np.ones(len(seg)), (s_code, c_code)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    for k in np.unique(comp[:n_s]):
        idx = np.flatnonzero(comp == k)
        lines.append((idx, np.where(idx < n_s, 1, -1)))
    hidden = protect_lines(counts, primary, lines, min_group)
    seg_mask = pd.Series(hidden[:n_s], index=seg_counts.index, name="hidden")
    cell_mask = pd.DataFrame(hidden[n_s:].reshape(n_r, n_f), index=grid.index, columns=grid.columns)
    seg_mask.attrs["primary"] = int(primary[:n_s].sum())
    cell_mask.attrs["primary"] = int(primary[n_s:].sum())
    return seg_mask, cell_mask


def hide_rows(df: pd.DataFrame, hide: np.ndarray, n_primary: int) -> pd.DataFrame:
    """Mask every numeric figure of the rows ``hide``; record how many were hidden."""
    keep = df.assign(_show=np.where(hide, 0, 1))
    out = suppress_small_groups(keep, "_show", 1).drop(columns="_show")
    out.attrs["suppressed"] = n_primary
    out.attrs["complementary"] = int(hide.sum()) - n_primary
    return out


def segment_summary(
    scores: pd.DataFrame, features: pd.DataFrame, min_group: int = 10
) -> pd.DataFrame:
    """Customers, share, average visits, spend and recency per named segment.

    Segments below ``min_group`` customers are masked, and so are the segments
    :func:`rfm_masks` hides with them (else a hidden one is the total minus the rest).
    ``avg_days_since_visit`` is in whole days. ``attrs["suppressed"]`` counts the small
    segments, ``attrs["complementary"]`` those hidden with them.
    """
    f = features.reindex(scores.index)
    g = f.groupby(scores[SEGMENT], observed=False)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "avg_visits": g[FC.frequency].mean(),
            "avg_spend": g[FC.total_spend].mean(),
            "avg_days_since_visit": g[FC.recency_days].mean().round().astype("Int64"),
            "revenue_12m": g[FC.recent_spend].sum(),
        }
    )
    total = out["revenue_12m"].sum()
    out["share_customers"] = out["customers"] / max(int(out["customers"].sum()), 1)
    out["share_revenue"] = out["revenue_12m"] / total if total else np.nan
    out = out.rename_axis("segment").reset_index()
    out["segment"] = out["segment"].astype(str)
    out = out[
        [
            "segment",
            "customers",
            "share_customers",
            "avg_visits",
            "avg_days_since_visit",
            "avg_spend",
            "share_revenue",
        ]
    ]
    out = out.loc[out["customers"] > 0].reset_index(drop=True)
    seg_mask, _ = rfm_masks(scores, min_group)
    hide = seg_mask.reindex(out["segment"]).fillna(False).to_numpy(dtype=bool)
    return hide_rows(out, hide, seg_mask.attrs["primary"])


def rf_grid(scores: pd.DataFrame, value: str = "customers", min_group: int = 10) -> pd.DataFrame:
    """R (rows, 5 at the top) × F (columns, lowest at the left) matrix of customers or
    mean monetary value.

    The grid is drawn with R falling from top to bottom and F rising from left to
    right: the top-left corner is recent one-visit customers, the bottom-right corner
    is people who came often but not lately. Cells with fewer than ``min_group``
    customers are masked, and so are the cells :func:`rfm_masks` hides with them.
    ``attrs["suppressed"]`` counts the small cells, ``attrs["complementary"]`` the
    others hidden.
    """
    counts = _grid_counts(scores)
    if value == "customers":
        values = counts.astype(float)
    else:
        values = scores.pivot_table(index=R, columns=F, values="monetary", aggfunc="mean")
        values = values.reindex_like(counts).astype(float)
    _, hide = rfm_masks(scores, min_group)
    out = values.mask(hide.reindex_like(values).fillna(True).astype(bool))
    out.attrs["suppressed"] = hide.attrs["primary"]
    out.attrs["complementary"] = int(hide.to_numpy().sum()) - hide.attrs["primary"]
    return out


def f_score_labels(scores: pd.DataFrame) -> dict[int, str]:
    """What each F score in use holds, in visits (``{1: "1\n1 visit", 5: "5\n3+ visits"}``).

    The top score says "n+ visits", so the label never shows one person's visit count.
    """
    visits = scores.groupby(F)[FC.frequency].agg(["min", "max"]).sort_index()
    out = {}
    for i, (score, row) in enumerate(visits.iterrows()):  # one row per score (≤ bins)
        lo, hi = int(row["min"]), int(row["max"])
        if i == len(visits) - 1 and len(visits) > 1:
            text = f"{lo}+ visits"
        elif lo == hi:
            text = f"{lo} visit" + ("" if lo == 1 else "s")
        else:
            text = f"{lo}–{hi} visits"
        out[int(score)] = f"{int(score)}\n{text}"
    return out


def rfm_heatmap(
    scores: pd.DataFrame,
    value: str = "customers",
    min_group: int = 10,
    currency_symbol: str = "£",
) -> Figure:
    """Heatmap of R × F: customers per cell, or their average monetary value.

    Hidden cells (see :func:`rf_grid`) are blank. Each F column is labelled with the
    visits it holds: with ``ties: together`` one-visit customers all share F = 1 and the
    scores just above may be empty, so the columns in use can be e.g. 1, 4 and 5.
    """
    grid = rf_grid(scores, value, min_group)
    if value == "customers":
        annot = grid.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
        title = "Customers by recency (R) and frequency (F) score"
    else:
        annot = grid.map(lambda v: "" if pd.isna(v) else f"{currency_symbol}{v:,.0f}")
        title = "Average spend by recency (R) and frequency (F) score"
    fig = charts.heatmap(
        grid,
        title=title,
        xlabel="F score and the visits it holds (5 = most visits)",
        ylabel="R score (5 = most recent)",
        annot=annot,
    )
    labels = f_score_labels(scores)
    fig.axes[0].set_xticks(
        np.arange(len(grid.columns)) + 0.5, [labels.get(int(c), str(c)) for c in grid.columns]
    )
    return fig
