"""The season report (notebook 90): the page a director reads first.

For the chosen season, set against the one before:

- **headline figures** — customers, new customers, tickets, ticket revenue, attendance,
  members, donors and donations, with the change on last season;
- the **maturity scorecard** — four KPIs for every tier of the ladder, each with its
  year-on-year change and a status against the target bands in
  ``defaults/scorecard.yaml`` (``scorecard:`` in ``org.yaml`` overrides them);
- **first-timers coming back**, and one-year retention, against published sector figures;
- the **moments planned** for the weeks after the season (from :mod:`playbook.moments`);
- a few **findings**: plain sentences generated from the figures above.

The KPIs (:data:`KPIS`), each by tier:

- *lifetime value (CLTV)* — average predicted lifetime value at the season end
  (:mod:`playbook.clv`) of the customers in the tier at the season end;
- *engagement* — share of the tier at the season start (its tier at the end of the
  season before) that booked, clicked an email or attended during the season;
- *conversion* — share of the tier at the season start that had reached the next band
  of the ladder (entry → mid → top, ``tiers.bands``) by the season end;
- *churn* — share of the tier at the season start with no visit during the season.

CLTV, engagement and churn are judged on their change from last season (relative: 0.10
means 10% higher); conversion on its rate. Statuses use the words in
``scorecard.status_words``: "above target" is always *better* than the band, also for
churn, where a fall is the goal.

Every part that rests on another module (tiers, lifetime value, the journey, moments) is
computed separately: when one is missing or cannot be applied to this organisation's
data, its part of the report shows a plain note and the rest stands. Tiers with fewer
customers than the privacy threshold have their figures masked, and so has a rate resting
on a smaller group (a handful of regulars who became champions, say) or on a cell the journey
page's tier-flow table hides (:func:`hidden_rates`). Changes are shown with their sign,
relative ("+21.5%") and, for rates, in percentage points ("+10.1 points").
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from playbook.config import OrgConfig, package_defaults, thaw
from playbook.numbers import as_shown, signed_pct, signed_points
from playbook.parsing import factorize, isin, positions
from playbook.privacy import mask_count_table
from playbook.report import Context, format_money
from playbook.schema import Attendance as AT
from playbook.schema import Donations as DO
from playbook.schema import Interactions as IN
from playbook.schema import Memberships as ME
from playbook.schema import OrderLines as OL
from playbook.seasons import previous_season, season_bounds

# Tier keys (those of playbook.tiers; repeated here so the scorecard can still be laid out
# when that module cannot be imported).
LADDER: tuple[str, ...] = ("first_timer", "returner", "regular", "loyal", "champion")
LAPSED = "lapsed"
ALL = "all"
ROW_ORDER: tuple[str, ...] = (*reversed(LADDER), LAPSED, ALL)
"""Scorecard rows, top of the ladder first, then lapsed, then the ladder as a whole."""
_DEFAULT_LABELS = {
    "first_timer": "First-timer",
    "returner": "Returner",
    "regular": "Regular",
    "loyal": "Loyal",
    "champion": "Champion",
    LAPSED: "Lapsed",
    ALL: "All tiers (not lapsed)",
}

# Status keys (their words come from ``scorecard.status_words``).
ON, ABOVE, BELOW = "on_target", "above_target", "below_target"
NO_PREVIOUS = "no_previous"
NO_COMPARISON = "no_comparison"
NO_CUSTOMERS = "no_customers"
TOO_FEW = "too_few"
SMALL_GROUP = "small_group"
NO_DATA = "no_data"
NOT_APPLICABLE = "not_applicable"
JUDGED = (ON, ABOVE, BELOW)
_TOL = 1e-9  # values this close to a band's edge count as on it

CARD_COLUMNS = [
    "season",
    "previous_season",
    "tier",
    "tier_label",
    "kpi",
    "kpi_label",
    "customers",
    "value",
    "previous_customers",
    "previous_value",
    "change",
    "judged_on",
    "target_low",
    "target_high",
    "status",
]
"""Columns of the long scorecard (one row per tier and KPI), as exported to CSV."""


@dataclass(frozen=True)
class KPI:
    """One KPI of the maturity scorecard.

    ``basis`` says which customers a tier's figure is about: ``"end"`` (the tier at the
    season end) or ``"start"`` (the tier going into the season). ``judged_on`` is
    ``"change"`` (year on year) or ``"rate"`` (the figure itself).
    """

    key: str
    label: str
    noun: str
    basis: str
    judged_on: str
    lower_is_better: bool = False
    money: bool = False


KPIS: dict[str, KPI] = {
    k.key: k
    for k in (
        KPI("cltv", "Lifetime value (CLTV)", "average lifetime value", "end", "change", money=True),
        KPI("engagement", "Engagement rate", "engagement", "start", "change"),
        KPI(
            "conversion",
            "Conversion to the next band",
            "conversion to the next band",
            "start",
            "rate",
        ),  # fmt: skip
        KPI("churn", "Churn rate", "churn", "start", "change", lower_is_better=True),
    )
}
"""The scorecard's KPIs in display order; adding one is adding an entry (and its figure)."""

HEADLINE_MEASURES: dict[str, tuple[str, bool]] = {
    "customers": ("Customers", False),
    "new_customers": ("New customers", False),
    "tickets": ("Tickets", False),
    "ticket_revenue": ("Ticket revenue", True),
    "attendance": ("Attendance (tickets scanned)", False),
    "members": ("Members", False),
    "donors": ("Donors", False),
    "donations": ("Donations", True),
}
"""Headline measures: key → (label, is money)."""


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
def scorecard_settings(cfg: OrgConfig | None = None) -> dict[str, Any]:
    """The ``scorecard`` settings in force (package defaults overridden by ``org.yaml``).

    ``tier_bands`` and ``targets`` come from the ``tiers`` section (``bands``,
    ``targets``), their one home, shared with the journey notebook.
    """
    if cfg is not None and cfg.section("scorecard"):
        out = thaw(cfg.section("scorecard"))
    else:
        out = thaw(package_defaults().get("scorecard", {}))
    ladder = thaw(cfg.section("tiers")) if cfg is not None else package_defaults()["tiers"]
    out["tier_bands"] = thaw(ladder["bands"])
    out["targets"] = thaw(ladder["targets"])
    return out


def status_words(settings: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Status key → the word shown (``{"on_target": "on target", …}``)."""
    defaults = {
        ON: "on target",
        ABOVE: "above target",
        BELOW: "below target",
        NO_PREVIOUS: "no previous season",
        NO_COMPARISON: "nothing to compare",
        NO_CUSTOMERS: "no customers",
        TOO_FEW: "too few customers",
        SMALL_GROUP: "hidden (small group)",
        NO_DATA: "no data",
        NOT_APPLICABLE: "–",
    }
    given = (settings or {}).get("status_words", {}) or {}
    return defaults | {k: str(v) for k, v in given.items()}


def kpi_target(kpi: str, tier: str, settings: Mapping[str, Any]) -> tuple[float, float] | None:
    """The target band (low, high) of ``kpi`` for ``tier``, or None when there is none.

    Conversion has a band per step of the ladder (entry → mid, mid → top): a tier takes
    the band of its own band's step; the top band and lapsed customers have none.
    """
    targets = settings.get("targets", {}) or {}
    if kpi == "conversion":
        band = tier_band(tier, settings)
        pair = targets.get(f"conversion_{band}") if band else None
    elif kpi == "churn" and tier == LAPSED:
        pair = None
    else:
        pair = targets.get(f"{kpi}_change")
    if pair is None:
        return None
    low, high = (float(x) for x in pair)
    return (min(low, high), max(low, high))


def tier_band(tier: str, settings: Mapping[str, Any]) -> str | None:
    """The band (``entry``, ``mid``, ``top``) a tier belongs to, or None."""
    for band, members in (settings.get("tier_bands", {}) or {}).items():
        if tier in members:
            return str(band)
    return None


def _band_names(settings: Mapping[str, Any]) -> list[str]:
    return list((settings.get("tier_bands", {}) or {}).keys())


# ---------------------------------------------------------------------------
# Status and change: the small rules everything else rests on
# ---------------------------------------------------------------------------
def judge_status(
    value: float,
    low: float,
    high: float,
    *,
    lower_is_better: bool = False,
    words: Mapping[str, str] | None = None,
) -> str:
    """The status of ``value`` against the band ``[low, high]`` (both ends included).

    "above target" is better than the band and "below target" worse: for a KPI where
    lower is better (churn), a value under ``low`` is above target.

    Examples
    --------
    >>> judge_status(0.12, 0.10, 0.15)
    'on target'
    >>> judge_status(-0.25, -0.20, -0.15, lower_is_better=True)
    'above target'
    """
    w = status_words({"status_words": dict(words or {})})
    if value is None or pd.isna(value):
        return w[NO_DATA]
    value = float(value)
    if value < low - _TOL:
        key = ABOVE if lower_is_better else BELOW
    elif value > high + _TOL:
        key = BELOW if lower_is_better else ABOVE
    else:
        key = ON
    return w[key]


def yoy_change(current: Any, previous: Any) -> Any:
    """Relative change on last season: ``(current - previous) / |previous|``.

    Missing when either figure is missing or the previous one is zero. Works on numbers
    and, element-wise, on pandas Series.
    """
    if isinstance(current, pd.Series) or isinstance(previous, pd.Series):
        cur = pd.Series(current, dtype="float64")
        prev = pd.Series(previous, dtype="float64")
        den = prev.abs().where(prev != 0)
        return (cur - prev) / den
    if current is None or previous is None or pd.isna(current) or pd.isna(previous):
        return np.nan
    if float(previous) == 0:
        return np.nan
    return (float(current) - float(previous)) / abs(float(previous))


# ---------------------------------------------------------------------------
# Figures per tier for one season
# ---------------------------------------------------------------------------
def measure_tiers(
    start_tiers: pd.Series | None,
    end_tiers: pd.Series,
    engaged: Iterable[str],
    visited: Iterable[str],
    clv: pd.Series | None = None,
    settings: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The raw figures of every tier for one season (nothing masked yet).

    Parameters
    ----------
    start_tiers : pandas.Series or None
        Tier key per customer (index: ``customer_id``) at the end of the season before;
        None or empty when the data do not reach back that far.
    end_tiers : pandas.Series
        Tier key per customer at the end of the season.
    engaged : iterable of str
        Customers who booked, clicked an email or attended during the season.
    visited : iterable of str
        Customers with a visit (a ticket for a performance) during the season.
    clv : pandas.Series, optional
        Predicted lifetime value per customer at the season end.
    settings : mapping, optional
        ``scorecard`` settings (for the bands); package defaults when absent.

    Returns
    -------
    pandas.DataFrame
        Indexed by :data:`ROW_ORDER`: ``customers_start``, ``engagement``,
        ``conversion``, ``churn``, ``customers_end``, ``cltv``, and the counts behind the
        rates (``engaged_n``, ``churned_n``, ``converted_n`` and ``conversion_n``, the
        customers conversion is a share of), so small groups can be hidden. ``attrs``
        say whether the start tiers and the lifetime values were known (``start_known``,
        ``clv_known``) and hold ``transitions``: customers by tier at the start (rows,
        then ``new``) and at the end (columns), laid out as
        :func:`playbook.journey.transition_matrix`, so the scorecard hides what the
        journey page's tier-flow table hides.
    """
    s = settings if settings is not None else scorecard_settings()
    rank = _band_ranks(s)
    words = tuple(dict.fromkeys((*ROW_ORDER, *rank)))  # tier words given a code
    other = len(words)  # the code of any other tier word
    start_ids, start = _coded_tiers(start_tiers, words)
    end_ids, end = _coded_tiers(end_tiers, words)
    lapsed = words.index(LAPSED)
    active_start = start != lapsed
    active_end = end != lapsed

    is_engaged = _isin(start_ids, _ids(engaged).dropna())
    churned = ~_isin(start_ids, _ids(visited).dropna())[active_start]

    def by_tier(values: np.ndarray) -> np.ndarray:
        """Per-code figures laid out by :data:`ROW_ORDER`."""
        return values[[words.index(t) for t in ROW_ORDER]]

    out = pd.DataFrame(index=pd.Index(ROW_ORDER, name="tier"))
    out["customers_start"] = by_tier(np.bincount(start, minlength=other + 1))
    out.loc[ALL, "customers_start"] = int(active_start.sum())
    out["engagement"] = by_tier(_rates(is_engaged, start, other + 1))
    out.loc[ALL, "engagement"] = _rate(is_engaged[active_start])
    out["churn"] = by_tier(_rates(churned, start[active_start], other + 1))
    out.loc[ALL, "churn"] = _rate(churned)
    conv_rate, conv_hits, conv_rows = _conversion(start_ids, start, end_ids, end, words, rank, s)
    out["conversion"] = by_tier(conv_rate)
    out["engaged_n"] = by_tier(np.bincount(start, weights=is_engaged, minlength=other + 1))
    out.loc[ALL, "engaged_n"] = int(is_engaged[active_start].sum())
    out["churned_n"] = by_tier(
        np.bincount(start[active_start], weights=churned, minlength=other + 1)
    )
    out.loc[ALL, "churned_n"] = int(churned.sum())
    out["converted_n"] = by_tier(conv_hits)
    out["conversion_n"] = by_tier(conv_rows)

    out["customers_end"] = by_tier(np.bincount(end, minlength=other + 1))
    out.loc[ALL, "customers_end"] = int(active_end.sum())
    if clv is not None and len(clv):
        at = positions(end_ids, clv.index.astype("string"))
        values = clv.to_numpy(dtype=float)
        v = pd.Series(np.where(at >= 0, values[np.maximum(at, 0)], np.nan))
        # pandas' own means (row order kept), so the figures do not move in the last digit
        means = v.groupby(end).mean().reindex(range(other + 1)).to_numpy()
        out["cltv"] = by_tier(means)
        out.loc[ALL, "cltv"] = v.loc[active_end].mean()
    else:
        out["cltv"] = np.nan
    out.loc[
        [t for t in ROW_ORDER if out.loc[t, "customers_start"] == 0], ["engagement", "churn"]
    ] = np.nan
    for c in ("customers_start", "customers_end"):
        out[c] = out[c].astype("int64")
    for c in ("engagement", "conversion", "churn", "cltv"):
        out[c] = out[c].astype("float64")
    for c in ("engaged_n", "churned_n", "converted_n", "conversion_n"):
        out[c] = out[c].astype("int64")
    out.attrs["start_known"] = len(start) > 0
    out.attrs["clv_known"] = clv is not None and len(clv) > 0
    out.attrs["transitions"] = _transitions(start_ids, start, end_ids, end, words)
    return out


def _transitions(
    start_ids: pd.Series,
    start: np.ndarray,
    end_ids: pd.Series,
    end: np.ndarray,
    words: tuple[str, ...],
) -> pd.DataFrame:
    """Customers by tier at the start (rows: ladder, lapsed, then ``new``) and at the end.

    The layout of :func:`playbook.journey.transition_matrix`: a customer with a tier at
    the end but none at the start is ``new``; tiers outside the ladder are left out.
    """
    keys = [*LADDER, LAPSED]
    key_of = np.array([keys.index(w) if w in keys else -1 for w in words] + [-1])
    at = positions(end_ids, start_ids)
    frm = np.where(at >= 0, key_of[start[np.maximum(at, 0)]] if len(start) else -1, len(keys))
    to = key_of[end]
    ok = (frm >= 0) & (to >= 0)
    size = (len(keys) + 1) * len(keys)
    flat = np.bincount(frm[ok] * len(keys) + to[ok], minlength=size)[:size]
    return pd.DataFrame(
        flat.reshape(len(keys) + 1, len(keys)).astype(np.int64),
        index=[*keys, "new"],
        columns=keys,
    )


def hidden_rates(frame: pd.DataFrame, min_group: int, settings: Mapping[str, Any]) -> pd.DataFrame:
    """Which per-tier rates of a :func:`measure_tiers` result must be hidden.

    A rate is hidden when fewer than ``min_group`` customers (but some) are behind it or
    behind its complement (engaged or not, churned or not, converted or not), or, for
    conversion, when it adds up a cell that the journey page's tier-flow table hides
    (:func:`playbook.privacy.mask_count_table` on ``attrs["transitions"]``): shown, it
    would give that cell away. The whole ladder's figure is hidden with any of its tiers
    (else the hidden tier is the whole minus the others).

    Returns
    -------
    pandas.DataFrame of bool
        Index: the tiers of ``frame``; columns ``engagement``, ``churn``, ``conversion``.
    """
    out = pd.DataFrame(False, index=frame.index, columns=["engagement", "churn", "conversion"])
    parts = {
        "engagement": ("engaged_n", "customers_start"),
        "churn": ("churned_n", "customers_start"),
        "conversion": ("converted_n", "conversion_n"),
    }
    for kpi, (hits_col, base_col) in parts.items():
        if hits_col not in frame.columns or base_col not in frame.columns:
            continue
        hits = frame[hits_col].astype(float)
        rest = frame[base_col].astype(float) - hits
        out[kpi] = (
            ((hits > 0) & (hits < min_group)) | ((rest > 0) & (rest < min_group))
        ).to_numpy()
    moves = frame.attrs.get("transitions")
    if moves is not None and len(moves):
        mask = mask_count_table(moves.to_numpy(), min_group)
        rank = _band_ranks(settings)
        col_rank = np.array([rank.get(c, -1) for c in moves.columns])
        for i, tier in enumerate(moves.index):
            if tier in out.index and tier in rank:
                up = col_rank >= rank[tier] + 1
                out.loc[tier, "conversion"] |= bool((mask[i] & up).any())
    ladder = [t for t in LADDER if t in out.index]
    if ALL in out.index:
        out.loc[ALL] |= out.loc[ladder].any(axis=0)
    return out


def _ids(values: Iterable[Any]) -> pd.Series:
    """Customer ids as a string Series."""
    if not isinstance(values, pd.Index | pd.Series | pd.api.extensions.ExtensionArray):
        values = list(values)
    return pd.Series(values, dtype="string")


def _isin(values: Iterable[Any], members: Iterable[Any]) -> np.ndarray:
    """Element-wise membership of string ids (a missing id is a member when one is).

    A hash lookup (:func:`playbook.parsing.isin`) where pandas' isin is slow.
    """
    return isin(_ids(values), _ids(members)).fillna(False).to_numpy(dtype=bool)


def _coded_tiers(tiers: pd.Series | None, words: tuple[str, ...]) -> tuple[pd.Series, np.ndarray]:
    """Customer ids (string) and tier codes (position in ``words``, ``len(words)`` for any
    other word); one row per customer (its first), customers without a tier left out.
    """
    if tiers is None or len(tiers) == 0:
        return pd.Series([], dtype="string"), np.zeros(0, dtype=np.intp)
    lookup = pd.Index(words, dtype="string")
    if isinstance(tiers.dtype, pd.CategoricalDtype):
        by_category = lookup.get_indexer(tiers.cat.categories.astype("string"))
        by_category = np.where(by_category < 0, len(words), by_category)
        raw = tiers.cat.codes.to_numpy()
        codes = np.append(by_category, -1)[raw]  # -1 (missing) stays -1
    else:
        text = tiers.astype("string")
        codes = positions(text, lookup.to_series())
        codes = np.where(codes < 0, len(words), codes)
        codes[text.isna().to_numpy()] = -1
    ids = tiers.index.astype("string")
    keep = codes >= 0
    if not ids.is_unique:
        keep &= ~ids.duplicated()
    if keep.all():
        return pd.Series(ids), codes.astype(np.intp)
    return pd.Series(ids[keep]), codes[keep].astype(np.intp)


def _rates(flags: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """Share of true ``flags`` per code (missing where a code has no rows)."""
    hits = np.bincount(codes, weights=flags.astype(float), minlength=n)
    rows = np.bincount(codes, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, hits / rows, np.nan)


def _rate(flags: np.ndarray) -> float:
    """Share of true ``flags`` (missing when there are none)."""
    return float(flags.sum() / len(flags)) if len(flags) else np.nan


def _band_ranks(settings: Mapping[str, Any]) -> dict[str, int]:
    """Tier word → the position of its band on the ladder."""
    bands = _band_names(settings)
    return {t: bands.index(b) for b in bands for t in settings["tier_bands"][b]}


def _conversion(
    start_ids: pd.Series,
    start: np.ndarray,
    end_ids: pd.Series,
    end: np.ndarray,
    words: tuple[str, ...],
    rank: Mapping[str, int],
    settings: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tier code: share of the start tier in the next band (or a higher one) at the
    season end, among customers with a tier at both ends (missing for the top band);
    with the counts behind it (converted, customers with a tier at both ends)."""
    ranks = np.array([rank.get(w, np.nan) for w in words] + [np.nan], dtype=float)
    at = positions(start_ids, end_ids)
    known = at >= 0
    r_from = ranks[start[known]]
    r_to = ranks[end[at[known]]]
    moved = r_to >= r_from + 1  # False where either band is unknown
    rates = _rates(moved, start[known], len(words) + 1)
    hits = np.bincount(start[known], weights=moved.astype(float), minlength=len(words) + 1)
    rows = np.bincount(start[known], minlength=len(words) + 1)
    top = len(_band_names(settings)) - 1
    judged = np.array([w in rank and rank[w] < top for w in words] + [False])
    return np.where(judged, rates, np.nan), np.where(judged, hits, 0), np.where(judged, rows, 0)


# ---------------------------------------------------------------------------
# The scorecard: figures, changes and statuses, small tiers masked
# ---------------------------------------------------------------------------
def build_scorecard(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    *,
    season: str = "",
    previous_label: str | None = None,
    settings: Mapping[str, Any] | None = None,
    min_group: int = 10,
    labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The long scorecard: one row per tier and KPI, with change, target and status.

    Parameters
    ----------
    current, previous : pandas.DataFrame
        :func:`measure_tiers` for the season and for the season before (None when there
        is no season before in the data).
    season, previous_label : str
        Season labels, written into the table.
    settings : mapping, optional
        ``scorecard`` settings (targets, bands, status words).
    min_group : int
        A tier figure resting on fewer customers than this is masked ("too few
        customers"), and so is a rate with fewer customers behind it (or its
        complement), or a conversion adding up a cell the tier-flow table hides
        ("hidden (small group)", :func:`hidden_rates`); an empty tier shows 0 customers
        and "no data". Statuses are decided on the figures as printed (one decimal).
    labels : mapping, optional
        Display names of the tier keys.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CARD_COLUMNS`.
    """
    s = settings if settings is not None else scorecard_settings()
    words = status_words(s)
    names = _DEFAULT_LABELS | dict(labels or {})
    hidden = {
        "current": hidden_rates(current, min_group, s),
        "previous": hidden_rates(previous, min_group, s) if previous is not None else None,
    }
    rows = []
    for tier in ROW_ORDER:
        if tier not in current.index:
            continue
        for kpi in KPIS.values():
            rows.append(
                _card_row(current, previous, tier, kpi, s, words, min_group, hidden)
                | {
                    "season": season,
                    "previous_season": previous_label,
                    "tier": tier,
                    "tier_label": names.get(tier, tier),
                    "kpi": kpi.key,
                    "kpi_label": kpi.label,
                    "judged_on": kpi.judged_on,
                }
            )
    card = pd.DataFrame(rows, columns=CARD_COLUMNS)
    for c in ("customers", "previous_customers"):
        card[c] = card[c].astype("Int64")
    for c in ("value", "previous_value", "change", "target_low", "target_high"):
        card[c] = card[c].astype("float64")
    card["previous_season"] = card["previous_season"].astype("object")
    return card


def _card_row(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    tier: str,
    kpi: KPI,
    s: Mapping[str, Any],
    words: Mapping[str, str],
    min_group: int,
    hidden: Mapping[str, pd.DataFrame | None] | None = None,
) -> dict[str, Any]:
    basis = f"customers_{kpi.basis}"
    target = kpi_target(kpi.key, tier, s)

    def is_hidden(which: str) -> bool:
        h = (hidden or {}).get(which)
        return h is not None and kpi.key in h.columns and tier in h.index and h.loc[tier, kpi.key]

    def figure(frame: pd.DataFrame | None, which: str) -> tuple[Any, float, str | None]:
        """(customers, value, why missing) of one season, masked when too few."""
        if frame is None or tier not in frame.index:
            return pd.NA, np.nan, NO_PREVIOUS
        n = int(frame.loc[tier, basis])
        v = float(frame.loc[tier, kpi.key])
        if kpi.basis == "start" and not frame.attrs.get("start_known", True):
            return pd.NA, np.nan, NO_PREVIOUS
        if n == 0:
            return 0, np.nan, NO_CUSTOMERS
        if n < min_group:
            return pd.NA, np.nan, TOO_FEW
        if math.isnan(v):
            return n, np.nan, NO_DATA
        if is_hidden(which):
            return n, np.nan, SMALL_GROUP
        return n, v, None

    n, value, why = figure(current, "current")
    pn, prev, pwhy = figure(previous, "previous")
    change = yoy_change(value, prev) if why is None and pwhy is None else np.nan
    low, high = target if target else (np.nan, np.nan)
    if target is None or (kpi.key == "conversion" and tier == ALL):
        status = NOT_APPLICABLE
    elif why is not None:
        status = why
    elif kpi.judged_on == "rate":
        status = None
        judged = value
    elif pwhy is not None:
        status = NO_COMPARISON if pwhy in (NO_CUSTOMERS, NO_DATA, SMALL_GROUP) else pwhy
    elif pd.isna(change):
        status = NO_COMPARISON
    else:
        status = None
        judged = change
    if status is None:  # judged on the figure as the tables print it (one decimal)
        text = judge_status(
            as_shown(judged), low, high, lower_is_better=kpi.lower_is_better, words=words
        )
    else:
        text = words[status]
    return {
        "customers": n,
        "value": value,
        "previous_customers": pn,
        "previous_value": prev,
        "change": change,
        "target_low": low,
        "target_high": high,
        "status": text,
    }


def status_key(text: str, words: Mapping[str, str]) -> str:
    """The status key of a status word (the reverse of :func:`status_words`)."""
    for k, v in words.items():
        if v == text:
            return k
    return NO_DATA


# ---------------------------------------------------------------------------
# Findings: plain sentences from the figures
# ---------------------------------------------------------------------------
def _pct(x: float, signed: bool = False) -> str:
    """12%, 3.4% (one decimal under 10%), with a sign when asked."""
    a = abs(x) * 100
    body = f"{a:.1f}".removesuffix(".0") + "%" if 0 < a < 9.95 else f"{a:.0f}%"
    if signed:
        return ("+" if x > 0 else "−" if x < 0 else "") + body
    return ("−" if x < 0 else "") + body


def change_text(row: Mapping[str, Any]) -> str:
    """A scorecard row's change on last season, in words a reader cannot misread.

    Lifetime value: the relative change ("+9.1%"). Rates judged on their change
    (engagement, churn): the relative change that is judged, and the difference in
    percentage points ("+21.5% (+10.1 points)"). Conversion, judged on its rate: the
    difference in points ("−3.4 points").
    """
    kpi = KPIS[row["kpi"]]
    value, prev = row["value"], row["previous_value"]
    if pd.isna(value) or pd.isna(prev):
        return "–"
    if kpi.money:
        return signed_pct(row["change"])
    points = signed_points(as_shown(value) - as_shown(prev))
    if kpi.judged_on == "rate":
        return points
    return f"{signed_pct(row['change'])} ({points})"


def band_text(low: float, high: float, judged_on: str) -> str:
    """A target band in words: "a rise of 10% to 15%", "a fall of 15% to 20%", "8% to 12%"."""
    if pd.isna(low) or pd.isna(high):
        return "–"
    if judged_on == "change":
        if low >= 0:
            return f"a rise of {_pct(low)} to {_pct(high)}"
        if high <= 0:
            return f"a fall of {_pct(abs(high))} to {_pct(abs(low))}"
        return f"{_pct(low, True)} to {_pct(high, True)}"
    return f"{_pct(low)} to {_pct(high)}"


def _tier_phrase(row: Mapping[str, Any]) -> str:
    if row["tier"] == ALL:
        return "across the ladder"
    return f"in the {row['tier_label']} tier"


def _gap(row: Mapping[str, Any], words: Mapping[str, str]) -> float:
    """How far a judged figure sits outside its band, in band widths (0 inside)."""
    kpi = KPIS[row["kpi"]]
    v = row["change"] if kpi.judged_on == "change" else row["value"]
    low, high = row["target_low"], row["target_high"]
    width = max(high - low, 0.01)
    if pd.isna(v):
        return 0.0
    return max(low - v, v - high, 0.0) / width


def _kpi_sentence(row: Mapping[str, Any], words: Mapping[str, str], money: Callable) -> str:
    kpi = KPIS[row["kpi"]]
    band = band_text(row["target_low"], row["target_high"], kpi.judged_on)
    where = _tier_phrase(row)
    if kpi.judged_on == "change" and not kpi.money:
        # a rate: the move in points, and the relative change the target is set on
        prev, cur = as_shown(row["previous_value"]), as_shown(row["value"])
        change = as_shown(row["change"])
        subject = f"{kpi.noun.capitalize()} {where}"
        if change == 0:
            return f"{subject} held steady at {cur:.1%}, against a target of {band}"
        verb, noun = ("rose", "rise") if change > 0 else ("fell", "fall")
        return (
            f"{subject} {verb} from {prev:.1%} to {cur:.1%} on last season "
            f"({abs(cur - prev) * 100:.1f} points, a relative {noun} of {abs(change):.1%}), "
            f"against a target of {band}"
        )
    if kpi.judged_on == "change":
        verb = "rose" if row["change"] > 0 else "fell" if row["change"] < 0 else "held"
        amount = f" {_pct(abs(row['change']))}" if row["change"] != 0 else " steady"
        return (
            f"{kpi.noun.capitalize()} {where} {verb}{amount} on last season "
            f"({money(row['previous_value'])} → {money(row['value'])}), "
            f"against a target of {band}"
        )
    subject = f"{kpi.noun.capitalize()} {where}"
    if kpi.key == "conversion":
        source = "the ladder" if row["tier"] == ALL else f"the {row['tier_label']} tier"
        subject = f"Conversion from {source} to the next band"
    return f"{subject} was {_pct(row['value'])}, against a target of {band}"


def write_findings(
    card: pd.DataFrame,
    headline: pd.DataFrame | None = None,
    returns: pd.DataFrame | None = None,
    *,
    settings: Mapping[str, Any] | None = None,
    currency: str = "GBP",
    max_findings: int = 6,
) -> list[str]:
    """A few plain sentences generated from the report's figures.

    Parameters
    ----------
    card : pandas.DataFrame
        :func:`build_scorecard` output.
    headline : pandas.DataFrame, optional
        :func:`headline_figures` output (``measure``, ``label``, ``this_season``,
        ``previous_season``, ``change``, ``money``).
    returns : pandas.DataFrame, optional
        :func:`sector_comparison` output (its first row is this organisation's
        first-timers).
    settings : mapping, optional
        ``scorecard`` settings (status words, benchmarks).
    currency : str
        For money in sentences.

    Returns
    -------
    list of str
        The largest change in the headline figures, the largest change in tier sizes,
        the biggest pit (furthest below its target band), the strongest result, how many
        measures are on target, and the first-timers against the sector.
    """
    s = settings if settings is not None else scorecard_settings()
    words = status_words(s)

    def money(v: float) -> str:
        return format_money(v, currency)

    out: list[str] = []
    has_previous = headline is not None and headline["previous_season"].notna().any()
    if headline is not None and not has_previous:
        out.append(
            "There is no previous season in the data, so this report shows this season's "
            "figures without year-on-year changes."
        )
    if headline is not None and has_previous:
        h = headline.dropna(subset=["change"])
        h = h.loc[np.isfinite(h["change"].astype(float))]
        if len(h):
            r = h.loc[h["change"].abs().astype(float).idxmax()]
            fmt = money if bool(r["money"]) else (lambda v: f"{v:,.0f}")
            verb = "rose" if r["change"] > 0 else "fell" if r["change"] < 0 else "held steady"
            amount = f" {_pct(abs(r['change']))}" if r["change"] != 0 else ""
            out.append(
                f"{r['label']} {verb}{amount} on last season ({fmt(r['previous_season'])} → "
                f"{fmt(r['this_season'])}), the largest change among the headline figures."
            )
    sizes = card.loc[(card["kpi"] == "cltv") & (card["tier"] != ALL)] if len(card) else card
    if len(sizes):
        cur = sizes["customers"].astype("Float64")
        prev = sizes["previous_customers"].astype("Float64")
        ch = yoy_change(cur.astype(float), prev.astype(float))
        ch.index = sizes.index
        ch = ch.dropna()
        if len(ch):
            i = ch.abs().idxmax()
            r = sizes.loc[i]
            verb = "grew" if ch[i] > 0 else "shrank" if ch[i] < 0 else "held steady"
            amount = f" {_pct(abs(ch[i]))}" if ch[i] != 0 else ""
            out.append(
                f"The {r['tier_label']} tier {verb}{amount} on last season "
                f"({int(r['previous_customers']):,} → {int(r['customers']):,} customers), "
                "the largest change among the tiers."
            )
    if len(card):
        judged = card.loc[card["status"].isin([words[k] for k in JUDGED])]
        below = judged.loc[judged["status"] == words[BELOW]]
        above = judged.loc[judged["status"] == words[ABOVE]]
        if len(below):
            gaps = below.apply(lambda r: _gap(r, words), axis=1)
            r = below.loc[gaps.idxmax()]
            out.append(f"The biggest pit: {_lower_first(_kpi_sentence(r, words, money))}.")
        if len(above):
            gaps = above.apply(lambda r: _gap(r, words), axis=1)
            r = above.loc[gaps.idxmax()]
            out.append(f"The strongest result: {_lower_first(_kpi_sentence(r, words, money))}.")
        if len(judged):
            good = int(judged["status"].isin([words[ON], words[ABOVE]]).sum())
            out.append(
                f"{good} of {len(judged)} scorecard measures that could be judged are on "
                "target or above."
            )
    if returns is not None and len(returns):
        sentence = _returns_sentence(returns)
        if sentence:
            out.append(sentence)
    return out[:max_findings]


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text


def _returns_sentence(sector: pd.DataFrame) -> str | None:
    own = sector.loc[(sector["who"] == "this organisation") & (sector["measure"] == FIRST_TIMERS)]
    bench = sector.loc[(sector["who"] == "sector") & (sector["measure"] == FIRST_TIMERS)]
    if own.empty or pd.isna(own["low"].iloc[0]):
        return None
    r = own.iloc[0]
    nr = float(r["low"])
    text = (
        f"Of the first-timers of {r['cohort']}, {_pct(1 - nr)} came back within "
        f"{r['window']}: a non-return rate of {_pct(nr)}"
    )
    if bench.empty:
        return text + "."
    lo, hi = float(bench["low"].min()), float(bench["high"].max())
    if nr < lo - _TOL:
        where = "better than every published sector figure"
    elif nr > hi + _TOL:
        where = "worse than every published sector figure"
    else:
        where = "within the range of published sector figures"
    return f"{text}, {where} ({_pct(lo)} to {_pct(hi)} do not return)."


# ---------------------------------------------------------------------------
# Headline figures
# ---------------------------------------------------------------------------
def headline_figures(
    ctx: Context, previous: str | None, facts: pd.DataFrame | None = None
) -> pd.DataFrame:
    """This season against the one before: customers, revenue, attendance, members, donors.

    Parameters
    ----------
    ctx : Context
    previous : str or None
        The season before (None when the data do not reach back).
    facts : pandas.DataFrame, optional
        :func:`playbook.audit.ticket_facts` (computed when absent).

    Returns
    -------
    pandas.DataFrame
        ``measure``, ``label``, ``this_season``, ``previous_season``, ``change``,
        ``money`` (bool). A measure whose table is absent is missing, never zero. A count
    of fewer than ``ctx.min_group`` people (one donor, say) is hidden, with the figures
    that describe the same people (that donor's gifts).
    """
    from playbook import audit

    if facts is None:
        facts = audit.ticket_facts(ctx.tables, ctx.config.season_start_month)
    seasons = [ctx.season] + ([previous] if previous else [])
    new_customers = _new_customers(facts, seasons)
    values: dict[str, dict[str, float]] = {k: {} for k in HEADLINE_MEASURES}
    m = ctx.config.season_start_month
    t = ctx.tables
    for label in seasons:
        f = facts.loc[facts["season"] == label]
        start, end = season_bounds(label, m)
        values["customers"][label] = f[OL.customer_id].nunique()
        values["new_customers"][label] = new_customers[label]
        values["tickets"][label] = f[OL.quantity].sum()
        values["ticket_revenue"][label] = f[OL.paid_amount].sum()
        if t.has("attendance"):
            values["attendance"][label] = f.loc[f["attended"] == True, OL.quantity].sum()  # noqa: E712
        if t.has("memberships"):
            ms = t.memberships
            live = (ms[ME.start_date] < end) & (ms[ME.end_date] >= start)
            values["members"][label] = ms.loc[live, ME.customer_id].nunique()
        if t.has("donations"):
            d = t.donations
            inside = (d[DO.donation_date] >= start) & (d[DO.donation_date] < end)
            values["donors"][label] = d.loc[inside, DO.customer_id].nunique()
            values["donations"][label] = d.loc[inside, DO.amount].sum()
    _hide_small_headlines(values, ctx.min_group)
    rows = []
    for key, (label, is_money) in HEADLINE_MEASURES.items():
        now = values[key].get(ctx.season, np.nan)
        before = values[key].get(previous, np.nan) if previous else np.nan
        rows.append(
            {
                "measure": key,
                "label": label,
                "this_season": float(now),
                "previous_season": float(before),
                "change": yoy_change(now, before),
                "money": is_money,
            }
        )
    return pd.DataFrame(rows)


# a count of people in a season, and the figures that describe those same people
_HEADLINE_PEOPLE = {
    "customers": ("customers", "tickets", "ticket_revenue", "attendance"),
    "new_customers": ("new_customers",),
    "members": ("members",),
    "donors": ("donors", "donations"),
}


def _hide_small_headlines(values: dict[str, dict[str, float]], min_group: int) -> None:
    """Hide (in place) a season's count of 1 to ``min_group - 1`` people and its figures."""
    for people, measures in _HEADLINE_PEOPLE.items():
        for season, n in list(values[people].items()):
            if 0 < n < min_group:
                for m in measures:
                    if season in values[m]:
                        values[m][season] = np.nan


def _new_customers(facts: pd.DataFrame, seasons: Iterable[str]) -> dict[str, int]:
    """Season → customers whose first ticket (earliest season label) is in that season.

    ``facts.groupby(customer_id)["season"].min()`` counted per season, on integer codes.
    """
    customer, _ = factorize(facts[OL.customer_id])
    season, labels = pd.factorize(facts["season"])
    # rank of each season label in text order (the order ``min`` compares labels in)
    order = np.argsort(np.asarray(labels.astype(object)), kind="stable")
    rank = np.empty(len(labels) + 1, dtype=np.int64)
    rank[order] = np.arange(len(labels))
    rank[-1] = len(labels)  # a missing season (code -1) is never a first season
    keep = customer >= 0
    first = np.full(int(customer.max()) + 1 if keep.any() else 0, len(labels), dtype=np.int64)
    np.minimum.at(first, customer[keep], rank[season[keep]])
    counts = np.bincount(first, minlength=len(labels) + 1)
    where = dict(zip(labels, rank[: len(labels)], strict=True))
    return {s: int(counts[where[s]]) if s in where else 0 for s in seasons}


def headline_tables(sr: SeasonReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The headline figures for reading aloud: (people and tickets, money)."""
    h = sr.headline
    this, prev = f"season {sr.season}", f"season {sr.previous or 'before'}"

    def part(is_money: bool) -> pd.DataFrame:
        p = h.loc[h["money"] == is_money]
        out = pd.DataFrame(
            {
                "measure": p["label"].to_numpy(),
                this: p["this_season"].to_numpy(),
                prev: p["previous_season"].to_numpy(),
                "change": pd.array([signed_pct(v) for v in p["change"]], dtype="string"),
            }
        )
        if not is_money:
            for c in (this, prev):
                out[c] = out[c].round().astype("Int64")
        return out

    return part(False), part(True)


# ---------------------------------------------------------------------------
# First-timers and retention against the sector
# ---------------------------------------------------------------------------
FIRST_TIMERS = "first-timers who did not come back"
RETENTION = "customers back the next season"


def sector_comparison(
    first_timer_rates: Mapping[str, tuple[float, int]],
    retention: Mapping[str, tuple[float, int]],
    *,
    window: str = "12 months",
    settings: Mapping[str, Any] | None = None,
    min_group: int = 10,
) -> pd.DataFrame:
    """This organisation's first-timer non-return and retention beside the sector's.

    Parameters
    ----------
    first_timer_rates : mapping
        Cohort season → (share of its first-timers back within ``window``, first-timers
        followed). Ordered: this report's cohort first, then the one before.
    retention : mapping
        "2023-24 → 2024-25" → (share of the first season's customers with a visit in the
        second, customers of the first season).
    window : str
        The return window, in words.
    settings : mapping, optional
        ``scorecard`` settings (``first_timer_benchmarks``, ``retention_benchmarks``).
    min_group : int
        A rate resting on fewer customers is masked.

    Returns
    -------
    pandas.DataFrame
        ``measure``, ``who`` ("this organisation" / "sector"), ``figure``, ``cohort``,
        ``window``, ``customers``, ``low``, ``high``, ``source``. For this organisation
        ``low`` = ``high`` = its rate (non-return for first-timers).
    """
    s = settings if settings is not None else scorecard_settings()
    rows = []
    for cohort, (rate, n) in first_timer_rates.items():
        if not n:  # nobody to follow (e.g. the data's first season, left out on purpose)
            continue
        nr = 1 - rate if n >= min_group and pd.notna(rate) else np.nan
        rows.append(
            {
                "measure": FIRST_TIMERS,
                "who": "this organisation",
                "figure": f"First-timers of {cohort}, not back within {window}",
                "cohort": cohort,
                "window": window,
                "customers": n if n >= min_group else pd.NA,
                "low": nr,
                "high": nr,
                "source": "this organisation's data",
            }
        )
    for b in s.get("first_timer_benchmarks", []) or []:
        rows.append(_bench_row(FIRST_TIMERS, b))
    for pair, (rate, n) in retention.items():
        r = rate if n >= min_group and pd.notna(rate) else np.nan
        rows.append(
            {
                "measure": RETENTION,
                "who": "this organisation",
                "figure": f"Customers of {pair.split(' → ')[0]} back in {pair.split(' → ')[-1]}",
                "cohort": pair,
                "window": "the next season",
                "customers": n if n >= min_group else pd.NA,
                "low": r,
                "high": r,
                "source": "this organisation's data",
            }
        )
    for b in s.get("retention_benchmarks", []) or []:
        rows.append(_bench_row(RETENTION, b))
    out = pd.DataFrame(
        rows,
        columns=[
            "measure",
            "who",
            "figure",
            "cohort",
            "window",
            "customers",
            "low",
            "high",
            "source",
        ],
    )
    out["customers"] = out["customers"].astype("Int64")
    return out


def _bench_row(measure: str, b: Mapping[str, Any]) -> dict[str, Any]:
    low = float(b.get("low", b.get("value", np.nan)))
    high = float(b.get("high", low))
    return {
        "measure": measure,
        "who": "sector",
        "figure": str(b.get("figure", "")),
        "cohort": None,
        "window": None,
        "customers": pd.NA,
        "low": low,
        "high": high,
        "source": str(b.get("source", "")),
    }


def sector_table(sr: SeasonReport, measure: str = FIRST_TIMERS) -> pd.DataFrame:
    """One measure of :func:`sector_comparison` for reading aloud (ranges as "74% to 83%")."""
    if sr.sector is None:
        return pd.DataFrame()
    p = sr.sector.loc[sr.sector["measure"] == measure]

    def rng(lo: float, hi: float) -> str:
        if pd.isna(lo):
            return "–"
        return _pct(lo) if abs(hi - lo) < _TOL else f"{_pct(lo)} to {_pct(hi)}"

    label = "did not come back" if measure == FIRST_TIMERS else "came back"
    return pd.DataFrame(
        {
            "figure": p["figure"].to_numpy(),
            "customers": p["customers"].to_numpy(),
            label: [rng(lo, hi) for lo, hi in zip(p["low"], p["high"], strict=True)],
            "source": p["source"].to_numpy(),
        }
    ).astype({"customers": "Int64"})


# ---------------------------------------------------------------------------
# The whole report
# ---------------------------------------------------------------------------
@dataclass
class SeasonReport:
    """Everything notebook 90 shows, computed once.

    A part that could not be computed is None and ``notes`` says why, in plain words
    (keys: ``tiers``, ``clv``, ``returns``, ``moments``, ``engagement``).
    """

    org: str
    season: str
    previous: str | None
    currency: str
    min_group: int
    settings: dict[str, Any]
    headline: pd.DataFrame
    card: pd.DataFrame
    sector: pd.DataFrame | None = None
    moments_by_trigger: pd.DataFrame | None = None
    moments_by_week: pd.DataFrame | None = None
    moments_horizon_days: int | None = None
    notes: dict[str, str] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    first_timer_window: str | None = None
    journey_gap: str | None = None

    @property
    def words(self) -> dict[str, str]:
        """Status words in force."""
        return status_words(self.settings)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0].strip().rstrip(".") if text else ""
    if isinstance(exc, ImportError):
        return "the module it needs is not installed in this version of the kit"
    return first or type(exc).__name__


def _attempt(notes: dict[str, str], part: str, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # fmt: skip
    """Run one part of the report; on failure keep a plain note and carry on."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except Exception as exc:  # a part of the report must never stop the rest
        notes[part] = f"{what} could not be worked out for this organisation: {_reason(exc)}."
        return None


def _previous_in_data(facts: pd.DataFrame, season: str, start_month: int) -> str | None:
    prev = previous_season(season, start_month)
    return prev if (facts["season"] == prev).any() else None


def season_activity(ctx: Context, facts: pd.DataFrame, season: str) -> tuple[pd.Index, pd.Index]:
    """Who engaged with, and who visited, the organisation during ``season``.

    Engaged: bought a ticket or subscription, clicked an email, or attended (a ticket
    scanned at the door; with no attendance data, a ticket for a performance in the
    season). Visited: a ticket for a performance in the season.

    Returns
    -------
    (engaged, visited) : tuple of pandas.Index of customer ids
    """
    t = ctx.tables
    start, end = season_bounds(season, ctx.config.season_start_month)
    ol = t.order_lines
    booked = ol.loc[
        ol[OL.item_type].isin(["ticket", "subscription"])
        & (ol[OL.status] == "active")
        & (ol[OL.purchase_time] >= start)
        & (ol[OL.purchase_time] < end),
        OL.customer_id,
    ]
    visited = facts.loc[facts["season"] == season, OL.customer_id]
    parts = [booked, visited if not t.has("attendance") else pd.Series([], dtype="string")]
    if t.has("attendance"):
        a = t.attendance
        parts.append(a.loc[(a[AT.scanned_at] >= start) & (a[AT.scanned_at] < end), AT.customer_id])
    if t.has("interactions"):
        i = t.interactions
        clicks = (
            (i[IN.kind] == "email_click") & (i[IN.occurred_at] >= start) & (i[IN.occurred_at] < end)
        )
        parts.append(i.loc[clicks, IN.customer_id])
    engaged = pd.Index(
        pd.concat([p.astype("string") for p in parts], ignore_index=True).dropna().unique()
    )
    return engaged, pd.Index(visited.astype("string").dropna().unique())


def engagement_basis(ctx: Context) -> str:
    """What counts as engaged for this organisation's data, in words."""
    t = ctx.tables
    parts = ["a booking"]
    parts.append("an email click" if t.has("interactions") else None)
    parts.append(
        "a ticket scanned at the door" if t.has("attendance") else "a ticket for a performance"
    )
    return ", ".join(p for p in parts[:-1] if p) + " or " + parts[-1]


def clv_at(ctx: Context, as_of: pd.Timestamp, settings: Any = None) -> pd.Series:
    """Predicted lifetime value per customer as of a date (the organisation's CLV settings).

    As :func:`playbook.clv.forecast` makes it for the CLV notebook. ``settings`` (from
    :func:`playbook.clv.clv_settings`) saves reading them again when already at hand.
    """
    from playbook.clv import clv_settings, forecast

    as_of_day = pd.Timestamp(as_of).normalize()
    cs = settings if settings is not None else clv_settings(ctx.config)
    return _clv_by_customer(forecast(ctx.tables, as_of_day, cs).predictions)


def _clv_by_customer(pred: pd.DataFrame) -> pd.Series:
    """Predictions (``customer_id``, ``clv``) as lifetime value by customer id."""
    return pd.Series(pred["clv"].to_numpy(dtype=float), index=pred["customer_id"].astype("string"))


def _clv_settings(ctx: Context) -> Any:
    from playbook.clv import clv_settings

    return clv_settings(ctx.config)


def _tier_history(ctx: Context, seasons: list[str]) -> pd.DataFrame:
    from playbook import tiers

    return tiers.tier_history(ctx.tables, ctx.config, seasons=seasons)


def _tier_labels(ctx: Context) -> dict[str, str]:
    try:
        from playbook import tiers

        return dict(tiers.tier_labels(ctx.config))
    except Exception:  # fall back to the built-in names
        return {}


@dataclass
class _JourneyFigures:
    """What the season report takes from the journeys (:mod:`playbook.journey`)."""

    rates: dict[str, tuple[float, int]]
    window: str
    window_note: str | None
    left_out: str | None


def _first_timer_rates(ctx: Context, cohorts: list[str]) -> _JourneyFigures:
    """First-timers' return within the long window per cohort, what the window leaves out,
    and who the journeys leave out of this season (all in plain words)."""
    from playbook import journey

    trips = journey.build_journey(ctx.tables, ctx.config, as_of=ctx.as_of)
    first = journey.first_timers(trips, ctx.config, as_of=ctx.as_of)
    windows = first.attrs["windows"]
    w = list(windows)[-1]  # the long window (12 months by default)
    out = {}
    notes = []
    followed_to = pd.Timestamp(first.attrs["as_of"])
    months = int(journey.journey_settings(ctx.config)["long_window_months"])
    for c in cohorts:
        f = first.loc[first["season"] == c]
        followed = f[f"observed_{w}"].to_numpy(dtype=bool)
        back = f[f"back_{w}"].fillna(False).to_numpy(dtype=bool)
        n = int(followed.sum())
        out[c] = (back.sum() / n if n else np.nan, n)
        short = len(f) - n
        if short > 0 and n >= ctx.min_group and short >= ctx.min_group:
            since = (followed_to.normalize() - pd.DateOffset(months=months)).strftime("%-d %B %Y")
            notes.append(
                f"Of the {len(f):,} first-timers of {c}, {n:,} are counted: the data run to "
                f"{followed_to:%-d %B %Y}, so the {short:,} whose first visit came after "
                f"{since} have not yet had {windows[w]} to come back and are left out."
            )
        elif short > 0:
            notes.append(
                f"Some first-timers of {c} have not yet had {windows[w]} to come back (the "
                f"data run to {followed_to:%-d %B %Y}) and are left out."
            )
    counts = journey.left_out(
        ctx.tables,
        trips.loc[(trips["season"] == ctx.season).to_numpy(dtype=bool, na_value=False)],
        ctx.season,
        ctx.config.season_start_month,
    )
    return _JourneyFigures(out, windows[w], " ".join(notes) or None, _left_out_text(counts))


def _left_out_text(counts: Mapping[str, int]) -> str | None:
    """Why the journey page counts fewer customers than the headline figures, or None."""
    gone = counts["anonymised"] + counts["other"]
    if gone <= 0:
        return None
    new_gone = counts["new"] - counts["new_in_journeys"]
    ours = f"{counts['in_journeys']:,} customers"
    if new_gone > 0:
        ours += f" and {counts['new_in_journeys']:,} new customers"
    reasons = {
        "anonymised": "whose customer records are anonymised (personal data erased on request)",
        "other": "whose only tickets fall after the data end or were for cancelled performances",
    }
    given = [(counts[k], text) for k, text in reasons.items() if counts[k]]
    new = f" ({new_gone:,} of them new this season)" if new_gone > 0 else ""
    if len(given) == 1:
        who = f"the {gone:,} customers{new} {given[0][1]}"
    else:
        who = f"{gone:,} customers{new}: " + " and ".join(f"{n:,} {text}" for n, text in given)
    return f"The journey-mapping page counts {ours} for this season: it leaves out {who}."


def _retention(facts: pd.DataFrame, pairs: list[tuple[str, str]]) -> dict[str, tuple[float, int]]:
    """Per pair, "a → b": (share of season a's customers with a ticket in b, their number).

    A missing customer id counts as one customer, as ``unique()`` counts it.
    """
    customer, _ = factorize(facts[OL.customer_id], use_na_sentinel=False)
    size = int(customer.max()) + 1 if len(customer) else 0
    season = facts["season"]
    seen: dict[str, np.ndarray] = {}

    def customers(label: str) -> np.ndarray:
        if label not in seen:
            present = np.zeros(size, dtype=bool)
            present[customer[(season == label).to_numpy(dtype=bool, na_value=False)]] = True
            seen[label] = present
        return seen[label]

    out = {}
    for a, b in pairs:
        in_a = customers(a)
        n = int(in_a.sum())
        out[f"{a} → {b}"] = (customers(b)[in_a].mean() if n else np.nan, n)
    return out


def _plan(ctx: Context) -> tuple[pd.DataFrame, pd.DataFrame, int | None, pd.DataFrame | None]:
    """The moments tables, and the lifetime-value predictions the plan was made with.

    Those predictions are :func:`playbook.clv.forecast` as of the season end with the
    organisation's settings (:func:`playbook.moments.views.clv_snapshot`): the very ones
    :func:`clv_at` makes for ``ctx.as_of``, so the scorecard reuses them.
    """
    from playbook import moments
    from playbook.moments import views

    plan = moments.plan_moments(ctx)
    # moments due for too few customers to show are counted, not listed (attrs)
    by_trigger = views.upcoming_shown(
        views.upcoming_by_trigger(plan, ctx.min_group),
        ["moment", "EPIC", views.CUSTOMERS, views.TO_ACT_ON, views.HELD_BACK, "cost"],
    )
    by_week = moments.upcoming_by_week(plan, ctx.min_group)
    horizon = int(plan.settings.horizon_days) if hasattr(plan.settings, "horizon_days") else None
    same_date = pd.Timestamp(plan.as_of) == pd.Timestamp(ctx.as_of)
    return by_trigger, by_week, horizon, plan.clv if same_date else None


def build_season_report(ctx: Context, *, with_moments: bool = True) -> SeasonReport:
    """Compute the whole season report for ``ctx.season`` against the season before.

    Each part rests on other modules (tiers, lifetime value, journey, moments); a part
    that cannot be computed leaves a note in ``notes`` and the rest stands.
    """
    from playbook import audit

    s = scorecard_settings(ctx.config)
    m = ctx.config.season_start_month
    notes: dict[str, str] = {}
    facts = audit.ticket_facts(ctx.tables, m)
    prev = _previous_in_data(facts, ctx.season, m)
    before_prev = previous_season(prev, m) if prev else None
    headline = headline_figures(ctx, prev, facts)

    # tiers at the end of this season, the one before, and the one before that
    wanted = [x for x in (before_prev, prev, ctx.season) if x]
    history = _attempt(notes, "tiers", "The maturity tiers", _tier_history, ctx, wanted)
    labels = _tier_labels(ctx)
    at: dict[str, pd.Series] = {}
    if history is not None:
        for x in wanted:
            h = history.loc[history["season"] == x]
            if len(h):  # tiers as read by measure_tiers (categories kept: no text to copy)
                at[x] = pd.Series(h["tier"].to_numpy(), index=h["customer_id"].astype("string"))

    # the moments plan first: it forecasts lifetime value as of the season end, which the
    # scorecard then reuses (its note is filed last, where it has always been)
    moment_notes: dict[str, str] = {}
    by_trigger = by_week = horizon = plan_clv = None
    if with_moments:
        got = _attempt(moment_notes, "moments", "The moments for the coming weeks", _plan, ctx)
        if got is not None:
            by_trigger, by_week, horizon, plan_clv = got

    cs = _attempt(notes, "clv", "Lifetime value", _clv_settings, ctx)
    if plan_clv is not None:
        clv_now = _clv_by_customer(plan_clv)
    else:
        clv_now = _attempt(notes, "clv", "Lifetime value", clv_at, ctx, ctx.as_of, cs)
    clv_prev = None
    if prev and clv_now is not None:
        prev_end = season_bounds(prev, m)[1] - pd.Timedelta(seconds=1)
        clv_prev = _attempt(notes, "clv", "Last season's lifetime value", clv_at, ctx, prev_end, cs)

    card = pd.DataFrame(columns=CARD_COLUMNS)
    if ctx.season in at:
        engaged, visited = season_activity(ctx, facts, ctx.season)
        current = measure_tiers(
            at.get(prev) if prev else None, at[ctx.season], engaged, visited, clv_now, s
        )
        previous = None
        if prev and prev in at:
            engaged_p, visited_p = season_activity(ctx, facts, prev)
            previous = measure_tiers(
                at.get(before_prev), at[prev], engaged_p, visited_p, clv_prev, s
            )
        card = build_scorecard(
            current, previous, season=ctx.season, previous_label=prev, settings=s,
            min_group=ctx.min_group, labels=labels,
        )  # fmt: skip
        notes["engagement"] = f"Engaged means {engagement_basis(ctx)} during the season."
    elif "tiers" not in notes:
        notes["tiers"] = (
            "No customer has a tier at the end of this season, so there is no scorecard."
        )

    sector = ft = None
    cohorts = [x for x in (prev, before_prev) if x]
    if cohorts:
        ft = _attempt(notes, "returns", "First-timers' return", _first_timer_rates, ctx, cohorts)
        pairs = [(prev, ctx.season)] + ([(before_prev, prev)] if before_prev else [])
        retention = _retention(facts, pairs)
        rates, window = (ft.rates, ft.window) if ft is not None else ({}, "12 months")
        sector = sector_comparison(
            rates, retention, window=window, settings=s, min_group=ctx.min_group
        )
    else:
        notes["returns"] = (
            "Following first-timers needs the season before this one in the data; there is "
            "none yet."
        )

    notes.update(moment_notes)

    report = SeasonReport(
        org=ctx.config.name,
        season=ctx.season,
        previous=prev,
        currency=ctx.config.currency,
        min_group=ctx.min_group,
        settings=s,
        headline=headline,
        card=card,
        sector=sector,
        moments_by_trigger=by_trigger,
        moments_by_week=by_week,
        moments_horizon_days=horizon,
        notes=notes,
    )
    if ft is not None:
        report.first_timer_window = ft.window_note
        report.journey_gap = ft.left_out
    report.findings = write_findings(
        card, headline, sector, settings=s, currency=ctx.config.currency
    )
    return report


# ---------------------------------------------------------------------------
# Display: tables, charts and notes for the notebook
# ---------------------------------------------------------------------------
def _markdown(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_note(sr: SeasonReport, part: str) -> bool:
    """Show the note of a part that could not be computed; True when there is none."""
    note = sr.notes.get(part)
    if note and part != "engagement":
        _markdown(f"*{note}*")
        return False
    return True


def show_findings(sr: SeasonReport) -> None:
    """The findings as a bulleted list."""
    if not sr.findings:
        _markdown("*There are not enough figures yet to draw findings from.*")
        return
    _markdown("\n".join(f"- {f}" for f in sr.findings))


def kpi_table(sr: SeasonReport, kpi: str) -> pd.DataFrame:
    """One KPI of the scorecard for reading aloud: tier, customers, figures, target, status.

    The change is text with its sign (:func:`change_text`): relative changes in "%",
    differences between two percentages in "points".
    """
    k = KPIS[kpi]
    c = sr.card.loc[sr.card["kpi"] == kpi]
    if c.empty:
        return pd.DataFrame()
    this, prev = f"season {sr.season}", f"season {sr.previous or 'before'}"
    who = "customers at season end" if k.basis == "end" else "customers at season start"
    out = pd.DataFrame(
        {
            "tier": c["tier_label"].to_numpy(),
            who: c["customers"].to_numpy(),
            this: c["value"].to_numpy(dtype=float),
            prev: c["previous_value"].to_numpy(dtype=float),
            "change": pd.array([change_text(r) for _, r in c.iterrows()], dtype="string"),
            "target": [
                band_text(lo, hi, k.judged_on)
                for lo, hi in zip(c["target_low"], c["target_high"], strict=True)
            ],
            "status": c["status"].to_numpy(),
        }
    )
    out[who] = out[who].astype("Int64")
    out.attrs["money"] = [this, prev] if k.money else []
    out.attrs["pct"] = [] if k.money else [this, prev]
    return out


def show_kpi(sr: SeasonReport, kpi: str, ctx: Context | None = None) -> None:
    """Show one KPI's table (or the note saying why there is none)."""
    from playbook.report import show

    if not show_note(sr, "tiers"):
        return
    if kpi == "cltv" and not show_note(sr, "clv"):
        return
    reason = _no_figures(sr, sr.card.loc[sr.card["kpi"] == kpi])
    if reason:
        _markdown(f"*No figures for {KPIS[kpi].noun} this season: {reason}.*")
        return
    t = kpi_table(sr, kpi)
    show(
        t,
        money=t.attrs.get("money", ()),
        pct=t.attrs.get("pct", ()),
        ctx=ctx,
        empty="No scorecard for this season.",
    )
    if kpi == "engagement" and sr.notes.get("engagement"):
        _markdown(f"*{sr.notes['engagement']}*")


def _no_figures(sr: SeasonReport, card: pd.DataFrame) -> str | None:
    """Why a part of the scorecard has no figure at all (None when it has some)."""
    if card.empty or card["value"].notna().any():
        return None
    statuses = set(card["status"])
    words = sr.words
    if words[NO_PREVIOUS] in statuses:
        return (
            "they follow customers from the tier they were in when the season began, and "
            "there is no earlier season in the data to take those tiers from"
        )
    if words[TOO_FEW] in statuses:
        return f"every tier has fewer than {sr.min_group} customers, so all are hidden"
    return "no tier has any customers yet"


def show_headline(sr: SeasonReport, ctx: Context | None = None) -> None:
    """The headline figures: people and tickets, then money."""
    from playbook.report import show

    people, money = headline_tables(sr)
    this, prev = people.columns[1], people.columns[2]
    show(people, ctx=ctx)
    if sr.journey_gap:
        _markdown(f"*{sr.journey_gap}*")
    show(money, money=[this, prev], ctx=ctx)


def show_sector(sr: SeasonReport, measure: str = FIRST_TIMERS) -> None:
    """Sector comparison of one measure (or the note saying why there is none)."""
    from playbook.report import show

    if sr.sector is None:
        show_note(sr, "returns")
        return
    if measure == FIRST_TIMERS:
        show_note(sr, "returns")
    show(sector_table(sr, measure), empty="Nothing to compare yet.")
    if measure == FIRST_TIMERS and sr.first_timer_window:
        _markdown(f"*{sr.first_timer_window}*")


def show_moments(sr: SeasonReport, ctx: Context | None = None) -> None:
    """Moments planned for the weeks after the season, by moment and by week."""
    from playbook.report import show

    if sr.moments_by_trigger is None:
        show_note(sr, "moments")
        return
    horizon = (
        f" (the {sr.moments_horizon_days} days after the season)" if sr.moments_horizon_days else ""
    )
    _markdown(f"**Moments due in the coming weeks{horizon}, by moment**")
    show(
        sr.moments_by_trigger,
        money=["cost"] if "cost" in sr.moments_by_trigger else [],
        ctx=ctx,
        empty="No moments fall due in the coming weeks.",
    )
    from playbook.moments.views import upcoming_hidden_note

    note = upcoming_hidden_note(sr.moments_by_trigger, sr.min_group)
    if note:
        _markdown(f"*{note}*")
    if sr.moments_by_week is not None and not sr.moments_by_week.empty:
        w = sr.moments_by_week.reset_index()
        num = [c for c in w.columns if c != "week"]
        w[num] = w[num].round().astype("Int64")
        _markdown("**Moments to act on, by week and channel** (control group left out)")
        show(w.rename(columns={"week": "week starting"}))


# Okabe-Ito colours: readable with every common colour-vision deficiency.
STATUS_COLOURS = {
    ABOVE: "#0072B2",  # blue
    ON: "#009E73",  # bluish green
    BELOW: "#D55E00",  # vermillion
    "other": "#E6E6E6",  # light grey: no judgement possible
}


def scorecard_chart(sr: SeasonReport) -> Figure | None:
    """The scorecard as a grid: tiers × KPIs, each cell coloured by its status.

    Each cell reads the season's figure, its change on last season and the status word.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    card = sr.card
    if card.empty:
        show_note(sr, "tiers")
        return None
    if card["value"].isna().all():
        _markdown(
            "*No tier has a scorecard figure yet (too few customers, or no earlier season), "
            "so the grid is not drawn; the tables below say why for each measure.*"
        )
        return None
    words = sr.words
    tiers_shown = [t for t in ROW_ORDER if t in set(card["tier"])]
    kpis = list(KPIS)
    codes = {ABOVE: 0, ON: 1, BELOW: 2}
    grid = np.full((len(tiers_shown), len(kpis)), 3)
    fig, ax = plt.subplots(figsize=(13, 1.25 * len(tiers_shown) + 2.4))
    for i, tier in enumerate(tiers_shown):
        for j, kpi in enumerate(kpis):
            r = card.loc[(card["tier"] == tier) & (card["kpi"] == kpi)].iloc[0]
            key = status_key(r["status"], words)
            grid[i, j] = codes.get(key, 3)
            colour = "white" if key in codes else "#333333"
            lines = [_cell_value(r, sr.currency)]
            if KPIS[kpi].judged_on == "change" and pd.notna(r["change"]):
                lines.append(change_text(r))
            if key != NOT_APPLICABLE:
                lines.append(r["status"])
            offsets = {1: [0.0], 2: [-0.15, 0.17], 3: [-0.26, 0.0, 0.26]}[len(lines)]
            for k, (text, dy) in enumerate(zip(lines, offsets, strict=True)):
                ax.text(j, i + dy, text, ha="center", va="center", color=colour,
                        fontsize=14 if k == 0 else 11.5, fontweight="bold" if k == 0 else "normal")  # fmt: skip
    cmap = ListedColormap([STATUS_COLOURS[ABOVE], STATUS_COLOURS[ON], STATUS_COLOURS[BELOW], STATUS_COLOURS["other"]])  # fmt: skip
    ax.imshow(grid, cmap=cmap, vmin=0, vmax=3, aspect="auto")
    names = dict(zip(card["tier"], card["tier_label"], strict=False))
    ax.set_yticks(range(len(tiers_shown)), [names[t] for t in tiers_shown])
    ax.set_xticks(range(len(kpis)), [KPIS[k].label for k in kpis])
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(-0.5, len(kpis)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(tiers_shown)), minor=True)
    ax.grid(which="minor", color="white", linewidth=3)
    ax.grid(which="major", visible=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("KPI (figure for the season, change on last season, status)")
    ax.set_ylabel("Tier")
    against = f" against {sr.previous}" if sr.previous else ""
    ax.set_title(f"Maturity scorecard, season {sr.season}{against}", pad=14)
    handles = [
        Patch(color=STATUS_COLOURS[ABOVE], label=f"{words[ABOVE]} (better than the band)"),
        Patch(color=STATUS_COLOURS[ON], label=words[ON]),
        Patch(color=STATUS_COLOURS[BELOW], label=f"{words[BELOW]} (short of the band)"),
        Patch(color=STATUS_COLOURS["other"], label="not judged"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=4, frameon=False, fontsize=11)  # fmt: skip
    return fig


def _cell_value(row: Mapping[str, Any], currency: str) -> str:
    v = row["value"]
    if pd.isna(v):
        return "–"
    return format_money(v, currency) if KPIS[row["kpi"]].money else _pct(v)


def headline_chart(sr: SeasonReport) -> Figure | None:
    """Change on last season of each headline figure (horizontal bars)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    h = sr.headline.dropna(subset=["change"])
    if sr.previous is None or h.empty:
        _markdown("*No previous season in the data: no changes to chart.*")
        return None
    h = h.iloc[::-1]
    values = h["change"].to_numpy(dtype=float)
    colours = np.where(values >= 0, STATUS_COLOURS[ABOVE], "#E69F00")
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(h) + 2))
    ax.barh(h["label"], values, color=colours)
    span = max(float(np.abs(values).max()), 0.05)
    for y, v in enumerate(values):
        ax.text(v + (span * 0.02 if v >= 0 else -span * 0.02), y, _pct(v, True),
                va="center", ha="left" if v >= 0 else "right", fontsize=12)  # fmt: skip
    ax.axvline(0, color="#555555", linewidth=1)
    ax.set_xlim(-span * 1.35 if values.min() < 0 else -span * 0.1, span * 1.35)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(f"Season {sr.season} against {sr.previous}: change in the headline figures")
    ax.set_xlabel("Change on last season")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    return fig


def sector_chart(sr: SeasonReport) -> Figure | None:
    """First-timers who did not come back: this organisation beside the sector figures."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    if sr.sector is None:
        return None
    p = sr.sector.loc[(sr.sector["measure"] == FIRST_TIMERS)].dropna(subset=["low"])
    if p.loc[p["who"] == "this organisation"].empty:
        _markdown("*Too few first-timers could be followed to compare with the sector.*")
        return None
    p = p.iloc[::-1]
    fig, ax = plt.subplots(figsize=(11, 0.7 * len(p) + 2))
    for y, (_, r) in enumerate(p.iterrows()):
        ours = r["who"] == "this organisation"
        colour = STATUS_COLOURS[ABOVE] if ours else "#BBBBBB"
        label = r["figure"] if ours else f"{r['figure']} ({r['source']})"
        ax.barh(y, r["low"], color=colour, height=0.6)
        text = _pct(r["low"])
        if r["high"] - r["low"] > _TOL:  # a published range: the span drawn darker
            ax.barh(y, r["high"] - r["low"], left=r["low"], color="#777777", height=0.6)
            text = f"{_pct(r['low'])} to {_pct(r['high'])}"
        ax.text(r["high"] + 0.01, y, text, va="center", fontsize=12)
        ax.text(0.01, y, label, va="center", ha="left", fontsize=11,
                color="white" if ours else "black")  # fmt: skip
    ax.set_yticks([])
    ax.set_xlim(0, 1.08)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("First-timers who did not come back: this organisation and the sector")
    ax.set_xlabel("Share of first-timers not back within the window")
    ax.set_ylabel("Organisation or published figure")
    ax.grid(axis="y", visible=False)
    return fig


# ---------------------------------------------------------------------------
# Exports: scorecard.csv and the headline fragment for index.html
# ---------------------------------------------------------------------------
SCORECARD_FILE = "scorecard.csv"
HEADLINE_FILE = "headline.html"


def write_scorecard_csv(sr: SeasonReport, folder: str | Path) -> Path:
    """Write the long scorecard (:data:`CARD_COLUMNS`) to ``scorecard.csv``; masked cells blank."""
    path = Path(folder) / SCORECARD_FILE
    card = sr.card.reindex(columns=CARD_COLUMNS)
    if card.empty:
        card = pd.DataFrame(columns=CARD_COLUMNS)
    card.to_csv(path, index=False, float_format="%.6g")
    return path


def headline_html(sr: SeasonReport) -> str:
    """A small HTML fragment with the report's key figures (no customer-level data)."""

    def esc(x: Any) -> str:
        return html.escape(str(x))

    h = sr.headline.set_index("measure")
    against = f" against {sr.previous}" if sr.previous else " (no previous season in the data)"
    items = []

    def change(key: str) -> str:
        c = h.loc[key, "change"]
        return f", {_pct(c, True)} on last season" if pd.notna(c) else ""

    customers = h.loc["customers", "this_season"]
    if pd.notna(customers):
        items.append(
            f"<li><strong>{customers:,.0f}</strong> customers{esc(change('customers'))}</li>"
        )
        items.append(
            f"<li><strong>{esc(format_money(h.loc['ticket_revenue', 'this_season'], sr.currency))}"
            f"</strong> ticket revenue{esc(change('ticket_revenue'))}</li>"
        )
    else:  # hidden: too few to show
        items.append(f"<li>fewer than {sr.min_group} customers this season</li>")
    if sr.sector is not None:
        own = sr.sector.loc[
            (sr.sector["who"] == "this organisation") & (sr.sector["measure"] == FIRST_TIMERS)
        ]
        if len(own) and pd.notna(own["low"].iloc[0]):
            r = own.iloc[0]
            items.append(
                f"<li><strong>{esc(_pct(1 - r['low']))}</strong> of the first-timers of "
                f"{esc(r['cohort'])} came back within {esc(r['window'])}</li>"
            )
    words = sr.words
    judged = (
        sr.card.loc[sr.card["status"].isin([words[k] for k in JUDGED])] if len(sr.card) else sr.card
    )
    if len(judged):
        good = int(judged["status"].isin([words[ON], words[ABOVE]]).sum())
        items.append(
            f"<li><strong>{good} of {len(judged)}</strong> maturity scorecard measures on "
            "target or above</li>"
        )
    return (
        f"<p><strong>Season {esc(sr.season)} at a glance</strong>{esc(against)}</p>"
        f"<ul>{''.join(items)}</ul>"
    )


def write_headline(sr: SeasonReport, folder: str | Path) -> Path:
    """Write ``headline.html`` (shown at the top of the report's ``index.html``)."""
    path = Path(folder) / HEADLINE_FILE
    path.write_text(headline_html(sr), encoding="utf-8")
    return path


def export_report(sr: SeasonReport, folder: str | Path) -> list[Path]:
    """Write ``scorecard.csv`` and ``headline.html`` into ``folder``."""
    return [write_scorecard_csv(sr, folder), write_headline(sr, folder)]
