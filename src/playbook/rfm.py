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
  is "new", not "loyal".
- ``first``: equal-sized bins, as in a textbook quintile split. Customers are sorted by
  the value and ties are broken by customer id (``rank(method="first")`` on the sorted
  frame, then cut into equal bins), so a large tied group is split in a fixed but
  arbitrary order.

Named segments come from a list of rules in ``rfm.segments`` (first match wins), each
giving inclusive R and F score ranges and optionally an M range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from playbook import charts
from playbook.config import OrgConfig
from playbook.features import FC, settings
from playbook.privacy import mask_small_cells, suppress_small_groups

R, F, M = "r_score", "f_score", "m_score"
SEGMENT = "rfm_segment"


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
    out[SEGMENT] = name_segments(out, s.get("segments", []), s.get("other", "other"))
    return out.reindex(features.index)


def name_segments(
    scores: pd.DataFrame, rules: Sequence[Mapping[str, Any]], other: str = "other"
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
    values = np.select(conditions, names, other) if conditions else np.full(len(scores), other)
    order = [*names, other]
    cats = list(dict.fromkeys(order))
    return pd.Series(pd.Categorical(values, categories=cats), index=scores.index, name=SEGMENT)


def segment_summary(
    scores: pd.DataFrame, features: pd.DataFrame, min_group: int = 10
) -> pd.DataFrame:
    """Customers, share, average visits, spend and recency per named segment (small masked)."""
    f = features.reindex(scores.index)
    g = f.groupby(scores[SEGMENT], observed=False)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "avg_visits": g[FC.frequency].mean(),
            "avg_spend": g[FC.total_spend].mean(),
            "avg_days_since_visit": g[FC.recency_days].mean(),
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
    return suppress_small_groups(out, "customers", min_group)


def rf_grid(scores: pd.DataFrame, value: str = "customers", min_group: int = 10) -> pd.DataFrame:
    """R (rows, 5 at the top) × F (columns) matrix of customers or mean monetary value.

    Cells with fewer than ``min_group`` customers are masked.
    """
    counts = pd.crosstab(scores[R], scores[F])
    if value == "customers":
        values = counts.astype(float)
    else:
        values = scores.pivot_table(index=R, columns=F, values="monetary", aggfunc="mean")
    values = values.sort_index(ascending=False)
    counts = counts.reindex_like(values)
    return mask_small_cells(counts, values, min_group)


def rfm_heatmap(
    scores: pd.DataFrame,
    value: str = "customers",
    min_group: int = 10,
    currency_symbol: str = "£",
) -> Figure:
    """Heatmap of R × F: customers per cell, or their average monetary value.

    Masked cells (fewer than ``min_group`` customers) are blank.
    """
    grid = rf_grid(scores, value, min_group)
    if value == "customers":
        annot = grid.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
        title = "Customers by recency (R) and frequency (F) score"
    else:
        annot = grid.map(lambda v: "" if pd.isna(v) else f"{currency_symbol}{v:,.0f}")
        title = "Average spend by recency (R) and frequency (F) score"
    return charts.heatmap(
        grid,
        title=title,
        xlabel="F score (5 = most visits)",
        ylabel="R score (5 = most recent)",
        annot=annot,
    )
