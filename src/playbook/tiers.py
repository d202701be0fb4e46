"""The Customer Maturity Model: every customer on one rung of a ladder, as of a date.

The ladder, entry to top::

    first_timer → returner → regular → loyal → champion        (and, separately, lapsed)

Rules (every threshold lives in ``defaults/tiers.yaml`` and can be changed in
``org.yaml``; the defaults are shown in brackets). A customer takes the *highest* rung
whose rule they meet:

- **lapsed** — no visit in the last ``lapsed_months`` [24]. The window is half-open: a
  last visit exactly 24 months before the as-of date is lapsed. A current subscriber or
  member is never lapsed. Lapsed is checked first and sits beside the ladder.
- **champion** — in the top ``champion_top_share`` [10%] of non-lapsed customers by
  visits or by total spend, with at least ``champion_min_visits`` [2] visits, *and* at
  least one of ``champion_needs`` [current member, donor, NPS promoter (9–10)]. "Top
  10%" means at least 90% of non-lapsed customers have a strictly lower value, so a tie
  at the boundary is left out rather than split arbitrarily.
- **loyal** — visits in ``loyal_seasons`` [3] or more seasons, or a current subscriber
  [on] or member [on].
- **regular** — ``regular_visits`` [2] or more distinct visits in the last
  ``window_months`` [12] (the Audience Data UK definition).
- **returner** — more than one visit ever, not (yet) regular.
- **first_timer** — exactly one visit ever.

Tier values are the stable keys above (an ordered categorical); display names come from
``tiers.labels`` in the settings (:func:`tier_labels`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from playbook.config import OrgConfig
from playbook.features import (
    FC,
    LADDER_INPUTS,
    PreparedLines,
    feature_arrays,
    prepare,
    settings,
)
from playbook.privacy import protect_lines, suppress_small_groups
from playbook.seasons import season_bounds, season_label, season_of, season_start_year
from playbook.tables import Tables

TIER_ORDER: tuple[str, ...] = ("first_timer", "returner", "regular", "loyal", "champion")
"""The ladder from entry to top (lapsed sits beside it, see :data:`LAPSED`)."""
LAPSED = "lapsed"
ALL_TIERS: tuple[str, ...] = (*TIER_ORDER, LAPSED)
TIER = "tier"
SEASON = "season"

# What each tier means, in plain words (the thresholds are filled in from the settings).
_RULES = {
    "first_timer": "exactly one visit so far",
    "returner": "came back at least once, but fewer than {regular_visits} visits in the last "
    "{window_months} months",
    "regular": "{regular_visits} or more visits in the last {window_months} months",
    "loyal": "visits in {loyal_seasons} or more seasons{loyal_extra}",
    "champion": "top {champion_pct} by visits or by spend, at least {champion_min_visits} "
    "visits, and {champion_needs_text}",
    "lapsed": "no visit in the last {lapsed_months} months (current members and subscribers "
    "excepted)",
}
_NEEDS_TEXT = {"member": "a current member", "donor": "a donor", "promoter": "an NPS promoter"}


# ---------------------------------------------------------------------------
# The ladder's vocabulary
# ---------------------------------------------------------------------------
def tier_settings(cfg: OrgConfig | None = None) -> dict[str, Any]:
    """The ``tiers`` settings in force (package defaults overridden by ``org.yaml``)."""
    return settings(cfg, "tiers")


def tier_order(cfg: OrgConfig | None = None, *, include_lapsed: bool = False) -> list[str]:
    """Tier keys from entry to top (``lapsed`` last when ``include_lapsed``)."""
    return list(ALL_TIERS if include_lapsed else TIER_ORDER)


def tier_labels(cfg: OrgConfig | None = None) -> dict[str, str]:
    """Display name of every tier key (``{"first_timer": "First-timer", …}``)."""
    labels = tier_settings(cfg).get("labels", {}) or {}
    return {t: str(labels.get(t, t.replace("_", " ").capitalize())) for t in ALL_TIERS}


def next_tier(tier: str, cfg: OrgConfig | None = None) -> str | None:
    """The rung above ``tier`` (``None`` for the top; a lapsed customer's next step is
    coming back, ``returner``)."""
    if tier == LAPSED:
        return "returner"
    order = tier_order(cfg)
    if tier not in order:
        raise ValueError(f"Unknown tier {tier!r}; tiers are: {', '.join(ALL_TIERS)}")
    i = order.index(tier)
    return order[i + 1] if i + 1 < len(order) else None


def tier_rank(tiers: pd.Series) -> pd.Series:
    """Position of each tier on the ladder (0 = first_timer … 4 = champion, lapsed = -1)."""
    ranks = {t: i for i, t in enumerate(TIER_ORDER)} | {LAPSED: -1}
    return tiers.astype("string").map(ranks).astype("Int64")


def tier_dtype() -> pd.CategoricalDtype:
    """The ordered categorical dtype of a tier column."""
    return pd.CategoricalDtype(list(ALL_TIERS), ordered=True)


def describe_tiers(cfg: OrgConfig | None = None) -> pd.DataFrame:
    """The rule of every tier in plain words, with the organisation's thresholds."""
    s = tier_settings(cfg)
    needs = [_NEEDS_TEXT.get(n, n) for n in s.get("champion_needs", [])]
    extra = []
    if s.get("loyal_if_subscriber", True):
        extra.append("a current subscriber")
    if s.get("loyal_if_member", True):
        extra.append("a current member")
    values = dict(s)
    values["champion_pct"] = f"{float(s['champion_top_share']):.0%}"
    values["champion_needs_text"] = " or ".join(needs) if needs else "nothing else"
    values["loyal_extra"] = (", or " + " or ".join(extra)) if extra else ""
    values.setdefault("champion_min_visits", 2)
    labels = tier_labels(cfg)
    rows = [
        {"tier": labels[t], "rule": _RULES[t].format(**values)}
        for t in (*reversed(TIER_ORDER), LAPSED)
    ]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Assigning tiers
# ---------------------------------------------------------------------------
def _top_share(values: np.ndarray, eligible: np.ndarray, share: float) -> np.ndarray:
    """Whether a value is in the top ``share`` of the eligible customers.

    Top means at least ``1 - share`` of eligible customers have a strictly lower value,
    so ties at the boundary are all out (deterministic, never more than ``share``).
    ``values`` are floats, ``eligible`` bools.
    """
    pool = np.sort(values[eligible])
    if len(pool) == 0:
        return np.zeros(len(values), dtype=bool)
    lower = np.searchsorted(pool, values, side="left")
    return (lower >= (1 - share) * len(pool)) & eligible


def _ladder_codes(
    s: Mapping[str, Any],
    *,
    lapsed_by_date: np.ndarray,
    frequency: np.ndarray,
    recent_visits: np.ndarray,
    seasons_active: np.ndarray,
    total_spend: np.ndarray,
    subscriber: np.ndarray,
    member: np.ndarray,
    donor: np.ndarray,
    nps: np.ndarray,
) -> np.ndarray:
    """The ladder's rules on plain arrays: each customer's position in :data:`ALL_TIERS`.

    ``lapsed_by_date`` says whether the last visit is on or before the lapsed cutoff;
    counts and money are floats, flags bools, ``nps`` float with NaN for no answer.
    """
    lapsed = lapsed_by_date & ~(subscriber | member)
    share = float(s["champion_top_share"])
    active = ~lapsed
    top = _top_share(frequency, active, share) | _top_share(total_spend, active, share)
    qualifies = np.zeros(len(frequency), dtype=bool)
    needs = set(s.get("champion_needs", []))
    if "member" in needs:
        qualifies |= member
    if "donor" in needs:
        qualifies |= donor
    if "promoter" in needs:
        qualifies |= np.where(np.isnan(nps), -1.0, nps) >= 9
    champion = top & qualifies & (frequency >= int(s.get("champion_min_visits", 2)))

    loyal = seasons_active >= int(s["loyal_seasons"])
    if s.get("loyal_if_subscriber", True):
        loyal |= subscriber
    if s.get("loyal_if_member", True):
        loyal |= member
    regular = recent_visits >= int(s["regular_visits"])
    returner = frequency >= 2

    code = {t: i for i, t in enumerate(ALL_TIERS)}
    conditions = [lapsed, champion, loyal, regular, returner]
    choices = [code[t] for t in (LAPSED, "champion", "loyal", "regular", "returner")]
    return np.select(conditions, choices, code["first_timer"]).astype(np.int8)


def _lapsed_cutoff(s: Mapping[str, Any], as_of: pd.Timestamp) -> pd.Timestamp:
    return as_of - pd.DateOffset(months=int(s["lapsed_months"]))


def assign_tiers(
    features: pd.DataFrame,
    cfg: OrgConfig | None = None,
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.Series:
    """Put every customer on exactly one tier.

    Parameters
    ----------
    features : pandas.DataFrame
        From :func:`playbook.features.build_features`; needs ``last_visit``,
        ``frequency``, ``recent_visits``, ``seasons_active``, ``total_spend``,
        ``is_subscriber``, ``is_member``, ``is_donor``, ``latest_nps``.
    cfg : OrgConfig, optional
        Settings (``tiers`` section); package defaults if absent.
    as_of : Timestamp or str, optional
        The date the tiers are for; default ``features.attrs["as_of"]``.

    Returns
    -------
    pandas.Series
        Ordered categorical (categories :data:`ALL_TIERS`), indexed like ``features``,
        named ``tier``.
    """
    s = tier_settings(cfg)
    if as_of is None:
        as_of = features.attrs.get("as_of")
        if as_of is None:
            raise ValueError("as_of is needed (features.attrs has no 'as_of')")
    as_of = pd.Timestamp(as_of)
    f = features
    codes = _ladder_codes(
        s,
        lapsed_by_date=(f[FC.last_visit] <= _lapsed_cutoff(s, as_of)).to_numpy(dtype=bool),
        frequency=f[FC.frequency].to_numpy(dtype=float),
        recent_visits=f[FC.recent_visits].to_numpy(dtype=float),
        seasons_active=f[FC.seasons_active].to_numpy(dtype=float),
        total_spend=f[FC.total_spend].to_numpy(dtype=float),
        subscriber=f[FC.is_subscriber].astype(bool).to_numpy(dtype=bool),
        member=f[FC.is_member].astype(bool).to_numpy(dtype=bool),
        donor=f[FC.is_donor].astype(bool).to_numpy(dtype=bool),
        nps=f[FC.latest_nps].astype(float).to_numpy(dtype=float),
    )
    return pd.Series(_tier_categorical(codes), index=f.index, name=TIER)


def _tier_categorical(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, dtype=tier_dtype())


def _check_window(cfg: OrgConfig | None) -> None:
    """The 'recent visits' window of the features must match the ladder's."""
    f = settings(cfg, "features")
    t = tier_settings(cfg)
    if int(f.get("window_months", 12)) != int(t.get("window_months", 12)):
        raise ValueError(
            "tiers.window_months and features.window_months differ; set both to the same "
            "number of months in org.yaml."
        )


def season_end(label: str, start_month: int) -> pd.Timestamp:
    """The last instant of a season (the as-of date of its tiers)."""
    return season_bounds(label, start_month)[1] - pd.Timedelta(seconds=1)


def tier_history(
    tables: Tables | PreparedLines,
    cfg: OrgConfig | None = None,
    *,
    seasons: Iterable[str] | None = None,
    until: str | None = None,
) -> pd.DataFrame:
    """Each customer's tier at the end of every season (long format).

    Parameters
    ----------
    tables : Tables or PreparedLines
        Canonical tables (or :func:`playbook.features.prepare` output).
    cfg : OrgConfig, optional
        Settings; package defaults if absent.
    seasons : iterable of str, optional
        Season labels to evaluate. Default: every season from the first visit in the
        data up to ``until``.
    until : str, optional
        Last season (default: the season of the latest visit in the data).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id``, ``season``, ``tier`` (ordered categorical), sorted by
        season then customer. A customer not yet acquired at a season's end is absent
        from that season. Seasons are looped over; customers never are.
    """
    _check_window(cfg)
    prep = tables if isinstance(tables, PreparedLines) else prepare(tables, cfg)
    m = prep.start_month
    if seasons is None:
        events = prep.tickets["event"]
        if len(events) == 0:
            return _empty_history()
        first, last = events.min(), events.max()
        a = season_start_year(season_of(pd.Series([pd.Timestamp(first)]), m).iloc[0])
        b = season_start_year(
            until if until else season_of(pd.Series([pd.Timestamp(last)]), m).iloc[0]
        )
        seasons = [season_label(y, m) for y in range(a, b + 1)]
    s = tier_settings(cfg)
    labels: list[str] = []
    customers, season_codes, tier_codes = [], [], []
    for label in seasons:  # per season only integer codes; labels are attached once
        as_of = season_end(label, m)
        f, population = feature_arrays(prep, as_of, LADDER_INPUTS)
        rows = np.flatnonzero(population)
        if len(rows) == 0:
            continue
        cutoff = np.int64(_lapsed_cutoff(s, as_of).value)
        codes = _ladder_codes(
            s,
            lapsed_by_date=f[FC.last_visit][rows] <= cutoff,
            frequency=f[FC.frequency][rows],
            recent_visits=f[FC.recent_visits][rows],
            seasons_active=f[FC.seasons_active][rows],
            total_spend=f[FC.total_spend][rows],
            subscriber=f[FC.is_subscriber][rows],
            member=f[FC.is_member][rows],
            donor=f[FC.is_donor][rows],
            nps=f[FC.latest_nps][rows],
        )
        del f, population
        customers.append(rows)
        season_codes.append(np.full(len(rows), len(labels), dtype=np.int16))
        tier_codes.append(codes)
        labels.append(label)
    if not labels:
        return _empty_history()
    cust = np.concatenate(customers)
    del customers
    season_index = pd.array(labels, dtype="string")
    return pd.DataFrame(
        {
            FC.customer_id: pd.array(prep.ids, dtype="string").take(cust),
            SEASON: season_index.take(np.concatenate(season_codes)),
            TIER: _tier_categorical(np.concatenate(tier_codes)),
        }
    )


def _empty_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            FC.customer_id: pd.Series([], dtype="string"),
            SEASON: pd.Series([], dtype="string"),
            TIER: pd.Series([], dtype=tier_dtype()),
        }
    )


def tier_flow(history: pd.DataFrame, season_from: str, season_to: str) -> pd.DataFrame:
    """Customers by tier at the end of ``season_from`` (rows) and ``season_to`` (columns).

    A row ``new`` counts customers acquired during ``season_to``.
    """
    a = history.loc[history[SEASON] == season_from].set_index(FC.customer_id)[TIER]
    b = history.loc[history[SEASON] == season_to].set_index(FC.customer_id)[TIER]
    frm = a.reindex(b.index).astype("string").fillna("new")
    flow = pd.crosstab(frm, b.astype("string"))
    rows = [t for t in ("new", *ALL_TIERS) if t in flow.index]
    cols = [t for t in ALL_TIERS if t in flow.columns]
    return flow.loc[rows, cols]


# ---------------------------------------------------------------------------
# Reporting: the tier table and the pyramid
# ---------------------------------------------------------------------------
def tier_summary(
    features: pd.DataFrame,
    tiers: pd.Series,
    min_group: int = 10,
    cfg: OrgConfig | None = None,
) -> pd.DataFrame:
    """Customers, revenue share and spend per tier, small tiers masked.

    Returns
    -------
    pandas.DataFrame
        One row per tier (top of the ladder first, lapsed last): ``tier`` (key),
        ``label``, ``customers``, ``share_customers``, ``revenue_12m`` (money of every
        kind in the recent window), ``share_revenue``, ``avg_spend_12m``,
        ``avg_lifetime_spend``, ``avg_visits``. Tiers with fewer than ``min_group``
        customers have their figures masked; ``attrs["suppressed"]`` counts them.
    """
    labels = tier_labels(cfg)
    g = features.groupby(tiers.astype("string"), observed=True)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "revenue_12m": g[FC.recent_spend].sum(),
            "avg_lifetime_spend": g[FC.total_spend].mean(),
            "avg_visits": g[FC.frequency].mean(),
        }
    )
    order = [*reversed(TIER_ORDER), LAPSED]
    out = out.reindex(order)
    out["customers"] = out["customers"].fillna(0).astype("int64")
    out["revenue_12m"] = out["revenue_12m"].fillna(0.0)
    total_c = max(int(out["customers"].sum()), 1)
    total_r = float(out["revenue_12m"].sum())
    out["share_customers"] = out["customers"] / total_c
    out["share_revenue"] = out["revenue_12m"] / total_r if total_r else np.nan
    out["avg_spend_12m"] = out["revenue_12m"] / out["customers"].where(out["customers"] > 0)
    out = out.rename_axis("tier").reset_index()
    out.insert(1, "label", [labels[t] for t in out["tier"]])
    out = out[
        [
            "tier",
            "label",
            "customers",
            "share_customers",
            "revenue_12m",
            "share_revenue",
            "avg_spend_12m",
            "avg_lifetime_spend",
            "avg_visits",
        ]
    ]
    # an empty tier is simply empty: zero customers identify nobody, so it stays visible
    empty = out["customers"] == 0
    n = out["customers"].to_numpy()
    small = (n < min_group) & ~empty.to_numpy()
    # all customers (and all revenue) are shown elsewhere: a lone hidden tier, or hidden
    # tiers adding up to a small group, would be the total minus the tiers shown
    hide = protect_lines(n, small, [(np.arange(len(n)), np.ones(len(n)))], min_group)
    flag = out.assign(_shown=np.where(hide, 0, min_group))
    masked = suppress_small_groups(flag, "_shown", min_group).drop(columns="_shown")
    masked.loc[empty, "customers"] = 0
    masked.attrs["suppressed"] = int(small.sum())
    masked.attrs["complementary"] = int((hide & ~small).sum())
    return masked


def pyramid_chart(summary: pd.DataFrame, currency_symbol: str = "£") -> Figure:
    """The maturity pyramid: customers per tier, annotated with revenue share and spend.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`tier_summary` (masked tiers are drawn as a "hidden" note).
    currency_symbol : str
        Symbol for the average spend labels.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    ladder = summary.loc[summary["tier"] != LAPSED].iloc[::-1]  # entry at the bottom
    lapsed = summary.loc[summary["tier"] == LAPSED]
    rows = pd.concat([lapsed, ladder], ignore_index=True)
    colours = sns.color_palette("crest", len(TIER_ORDER))
    fig, ax = plt.subplots(figsize=(11, 6.5))
    counts = rows["customers"].astype("Float64").fillna(0).to_numpy(dtype=float)
    width = counts.max() if counts.max() > 0 else 1.0
    for i, row in rows.iterrows():
        n = row["customers"]
        is_lapsed = row["tier"] == LAPSED
        colour = "#9e9e9e" if is_lapsed else colours[TIER_ORDER.index(row["tier"])]
        y = float(i) if is_lapsed else i + 0.5  # a gap between lapsed and the ladder
        if pd.isna(n):
            ax.text(0, y, "hidden: too few customers to show", ha="center", va="center")
            continue
        ax.barh(y, n, left=-n / 2, color=colour, height=0.8)
        if n == 0:
            note = "no customers"
        else:
            rev = row["share_revenue"]
            spend = row["avg_spend_12m"]
            rev_text = "–" if pd.isna(rev) else f"{rev:.0%}"
            spend_text = "–" if pd.isna(spend) else f"{currency_symbol}{spend:,.0f}"
            note = f"{int(n):,} customers · {rev_text} of revenue · avg {spend_text}"
        ax.text(width / 2 + width * 0.03, y, note, va="center", ha="left", fontsize=11)
    ys = [float(i) if t == LAPSED else i + 0.5 for i, t in enumerate(rows["tier"])]
    if (rows["tier"] == LAPSED).any():
        ax.axhline(0.75, color="#bbbbbb", linewidth=1, linestyle="--")
    ax.set_yticks(ys, rows["label"])
    ax.set_xlim(-width / 2 - width * 0.05, width * 1.45)
    ax.set_xticks([])  # bars are centred; the exact counts are written beside them
    ax.set_title("The maturity ladder: customers per tier (lapsed shown apart)")
    ax.set_xlabel("Customers (bar length in proportion; counts on the right)")
    ax.set_ylabel("Tier")
    ax.grid(axis="y", visible=False)
    return fig


def tier_share_by_season(
    history: pd.DataFrame, min_group: int = 10, cfg: OrgConfig | None = None
) -> pd.DataFrame:
    """Customers per tier at each season end (one row per season), small cells masked.

    Columns carry the tiers' display names; a cell with fewer than ``min_group``
    customers (but not zero) is masked.
    """
    counts = pd.crosstab(history[SEASON], history[TIER].astype("string"))
    counts = counts.reindex(columns=[t for t in ALL_TIERS if t in counts.columns])
    small = (counts < min_group) & (counts > 0)
    # each season's customer total is shown elsewhere: no lone hidden cell in a season
    n_rows, n_cols = counts.shape
    rows = [(np.arange(r * n_cols, (r + 1) * n_cols), np.ones(n_cols)) for r in range(n_rows)]
    hide = protect_lines(counts.to_numpy().ravel(), small.to_numpy().ravel(), rows, min_group)
    masked = counts.astype("Int64").mask(hide.reshape(counts.shape))
    labels = tier_labels(cfg)
    masked.columns = [labels[t] for t in masked.columns]
    masked = masked.rename_axis(index=SEASON, columns=None).reset_index()
    masked.attrs["suppressed"] = int(small.to_numpy().sum())
    masked.attrs["complementary"] = int(hide.sum() - small.to_numpy().sum())
    return masked


def label_tiers(values: pd.Series | pd.Index, cfg: OrgConfig | None = None) -> pd.Series:
    """Tier keys replaced by their display names."""
    labels = tier_labels(cfg)
    return pd.Series(values).astype("string").map(labels)


def tier_counts(tiers: pd.Series) -> Mapping[str, int]:
    """Customers per tier key (every tier present, zero when empty)."""
    counts = tiers.astype("string").value_counts()
    return {t: int(counts.get(t, 0)) for t in ALL_TIERS}
