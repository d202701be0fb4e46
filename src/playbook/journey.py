"""The customer journey (notebook 30): every visit in its journey, and tier flows.

The journey table
-----------------
:func:`build_journey` gives one row per *visit*: a customer's distinct performance
(effective tickets grouped by customer × performance; tickets without a performance
are grouped per order). Returns and exchanges are netted out
(:func:`playbook.tables.effective_tickets`), tickets for cancelled performances and
customers flagged ``anonymised`` are left out, and only visits that happened by the
as-of date count (the performance started, and the tickets were bought, by then). Each
visit is placed in its journey:

- **discover** — email clicks and web visits by the customer in the
  ``discover_window_days`` before the booking (both ends included);
- **book** — when it was booked, channel, lead time, party size, price;
- **anticipate** — pre-show emails sent between booking and the performance (about
  the same production, or from a campaign named like a pre-show email);
- **attend** — whether a ticket was scanned (performances with no scans at all are
  treated as "not scanned here", not as no-shows);
- **reflect** — the post-show survey for that performance: NPS, intent to return;
- **return** — the customer's next visit, and how many days it took.

A stage whose table is absent is missing (``<NA>``) for every visit and is reported as
"no data", never as zero. The key rate of each stage is listed in :data:`STAGES`.

First-timers and censoring
--------------------------
A first-timer's *return* is their second visit. Windows ("back within 90 days", "…
within 12 months") run from the date of the first visit and include their last day, so
a second visit exactly 12 months later counts. First-timers whose first visit is less
than a window before the data end are **excluded** from that window's rate (we cannot
yet tell whether they will come back); the Kaplan–Meier curve keeps them as
**censored** at the data end. Customers first seen in the data's first season are left
out by default: they may have visited before the exports begin.

Tier flows
----------
Tiers come from :func:`playbook.tiers.tier_history` (each customer's tier at each season
end). A transition matrix counts customers by their tier at the end of one season (rows)
and the next (columns); a row ``new`` counts customers acquired during the later season.
Conversion between the three bands of the ladder (entry, mid, top; see
``tiers.bands``) and churn (no visit in the following season) are set against
the target bands in ``tiers.targets``. The count table hides small cells and enough
others that none can be worked out (:func:`transition_mask`); every rate, share and
chart segment built on it adds up shown cells only, and verdicts are read from rates
as printed.

Everything is vectorised: customer ids become integer codes, visits are segments of one
sort, and window counts are binary searches over sorted keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from matplotlib.figure import Figure

from playbook import charts, tiers
from playbook.config import OrgConfig
from playbook.features import FC, settings
from playbook.numbers import as_shown, signed_pct, signed_points
from playbook.privacy import (
    OTHER,
    mask_count_table,
    protect_groups,
    suppress_small_groups,
)
from playbook.schema import SALES_CHANNELS
from playbook.schema import Attendance as AT
from playbook.schema import Customers as CU
from playbook.schema import Interactions as IN
from playbook.schema import OrderLines as OL
from playbook.schema import Performances as PF
from playbook.schema import Productions as PR
from playbook.schema import SurveyResponses as SR
from playbook.seasons import (
    latest_complete_season,
    previous_season,
    season_bounds,
    season_label,
    season_start_year,
)
from playbook.tables import Tables, effective_tickets

_NS_PER_S = 10**9
_NS_PER_DAY = 86_400 * _NS_PER_S
_NAT = np.iinfo(np.int64).min
NEW = "new"
_MIN_GAP = 0.02  # a tier "trails" all visits at a stage only by at least 2 points
ALL = "all"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class JourneyCols:
    """Column names of the journey table (one row per visit)."""

    customer_id = "customer_id"
    visit_id = "visit_id"
    performance_id = "performance_id"
    production_id = "production_id"
    artform = "artform"
    order_id = "order_id"
    visit_time = "visit_time"
    season = "season"
    visit_no = "visit_no"
    # discover
    clicks_before = "clicks_before"
    web_visits_before = "web_visits_before"
    discovered = "discovered"
    # book
    booked_at = "booked_at"
    channel = "channel"
    booked_online = "booked_online"
    booked_ahead = "booked_ahead"
    lead_days = "lead_days"
    party_size = "party_size"
    paid = "paid"
    price_per_ticket = "price_per_ticket"
    price_band = "price_band"
    comp = "comp"
    # anticipate
    pre_show_emails = "pre_show_emails"
    pre_show = "pre_show"
    # attend
    attended = "attended"
    no_show = "no_show"
    # reflect
    surveyed = "surveyed"
    nps = "nps"
    intent_to_return = "intent_to_return"
    promoter = "promoter"
    # return
    next_visit_time = "next_visit_time"
    next_booked_at = "next_booked_at"
    days_to_next = "days_to_next"
    days_observed = "days_observed"
    returned = "returned"
    returned_in_window = "returned_in_window"
    # added by season_visits
    tier = "tier"


JC = JourneyCols


@dataclass(frozen=True)
class Stage:
    """One journey stage and its key rate.

    ``column`` is a boolean column of the journey table; the key rate is its mean over
    the visits where it is known (missing values are left out of the denominator).
    """

    name: str
    label: str
    column: str
    needs: tuple[str, ...]
    rate: str


STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            "discover",
            "Discover",
            JC.discovered,
            ("interactions",),
            "visits whose booking came after an email click or web visit in the "
            "{discover_window_days} days before",
        ),
        Stage(
            "book",
            "Book",
            JC.booked_ahead,
            (),
            "visits booked at least {planned_lead_days} days ahead (time to look forward to it)",
        ),
        Stage(
            "anticipate",
            "Anticipate",
            JC.pre_show,
            ("interactions",),
            "visits with a pre-show email between booking and the performance",
        ),
        Stage(
            "attend",
            "Attend",
            JC.attended,
            ("attendance",),
            "visits where a ticket was scanned at the door",
        ),
        Stage(
            "reflect",
            "Reflect",
            JC.promoter,
            ("survey_responses",),
            "survey answers from promoters (would recommend, 9–10 out of 10)",
        ),
        Stage(
            "return",
            "Return",
            JC.returned_in_window,
            (),
            "visits followed by another within {return_stage_days} days (visits we can "
            "follow that long)",
        ),
    )
}
"""The journey stages in order; adding a stage is adding one entry (and its column)."""


# ---------------------------------------------------------------------------
# Settings and small helpers
# ---------------------------------------------------------------------------
def journey_settings(cfg: OrgConfig | None = None) -> dict[str, Any]:
    """The ``journey`` settings in force (package defaults overridden by ``org.yaml``)."""
    return settings(cfg, "journey")


def _start_month(cfg: OrgConfig | None) -> int:
    return cfg.season_start_month if cfg is not None else 9


def _default_as_of(tables: Tables, start_month: int) -> pd.Timestamp:
    """The last instant of the latest complete season in the order lines.

    Same rule as :func:`playbook.features.default_as_of` (a season shorter than the
    data falls back to the last season seen), computed on season *years* so it stays
    fast on millions of lines.
    """
    times = tables.order_lines[OL.purchase_time]
    label = latest_complete_season(times.max(), start_month)
    seen = np.unique(_season_years(_ns(times.dropna()), start_month))
    if len(seen) and season_start_year(label) not in set(seen.tolist()):
        label = season_label(int(seen.max()), start_month)
    return season_bounds(label, start_month)[1] - pd.Timedelta(seconds=1)


def _ns(s: pd.Series) -> np.ndarray:
    """Datetimes as int64 nanoseconds (NaT becomes the minimum int64)."""
    return pd.to_datetime(s).astype("datetime64[ns]").to_numpy().view("int64")


def _dt(ns: np.ndarray) -> np.ndarray:
    return np.asarray(ns, dtype=np.int64).view("datetime64[ns]")


def _season_years(ns: np.ndarray, start_month: int) -> np.ndarray:
    d = _dt(ns)
    years = d.astype("datetime64[Y]").astype(np.int64) + 1970
    months = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return years - (months < start_month)


def _season_labels(years: np.ndarray, start_month: int) -> pd.Series:
    """Season labels for start years, built once per distinct year."""
    if len(years) == 0:
        return pd.Series([], dtype="string")
    uniq, inv = np.unique(years, return_inverse=True)
    labels = pd.array([season_label(int(y), start_month) for y in uniq], dtype="string")
    return pd.Series(labels.take(inv), dtype="string")


def _arrow(
    values: pd.Series | pd.Index | np.ndarray, *, combine: bool = True
) -> pa.Array | pa.ChunkedArray:
    """Values as Arrow strings (zero-copy for Arrow-backed string columns).

    With ``combine`` the chunks of an Arrow-backed column are copied into one array (a
    lookup's value set must be one array); without, they are left as they are.
    """
    arr = pa.array(pd.Series(values).astype("string"))
    return arr.combine_chunks() if combine and isinstance(arr, pa.ChunkedArray) else arr


def _positions(values: pd.Series | pd.Index, uniques: pd.Series | pd.Index) -> np.ndarray:
    """Position of each value in ``uniques`` (-1 when absent or missing).

    An Arrow hash lookup: several times faster than ``Index.get_indexer`` on millions of
    string ids. ``uniques`` must hold distinct values.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(uniques) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    found = pc.index_in(_arrow(values, combine=False), value_set=_arrow(uniques))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _take_strings(values: pd.Series | pd.Index, idx: np.ndarray) -> pd.Series:
    """``values`` at positions ``idx`` (-1 gives missing), as a string column."""
    idx = np.asarray(idx, dtype=np.int64)
    taken = pc.take(_arrow(values, combine=False), pa.array(idx, mask=idx < 0))
    if isinstance(taken, pa.ChunkedArray) and taken.num_chunks != 1:
        taken = taken.combine_chunks()
    return pd.Series(pd.array(taken, dtype="string"))


def _window_counts(
    ev_group: np.ndarray,
    ev_time: np.ndarray,
    q_group: np.ndarray,
    q_lo: np.ndarray,
    q_hi: np.ndarray,
    *,
    right_closed: bool,
) -> np.ndarray:
    """For each query, the number of events in the same group with ``lo <= t <= hi``
    (``t < hi`` when not ``right_closed``). Times are int64 seconds; groups int64."""
    out = np.zeros(len(q_group), dtype=np.int64)
    if len(ev_group) == 0 or len(q_group) == 0:
        return out
    t0 = min(ev_time.min(), q_lo.min())
    span = max(ev_time.max(), q_hi.max()) - t0 + 2
    eg, qg = ev_group.astype(np.int64), q_group.astype(np.int64)
    if (max(eg.max(), qg.max()) + 1) * span >= 2**62:  # group ids too sparse: densify
        _, inv = np.unique(np.concatenate([eg, qg]), return_inverse=True)
        eg, qg = inv[: len(eg)].astype(np.int64), inv[len(eg) :].astype(np.int64)
    key = np.sort(eg * span + (ev_time - t0))
    lo = qg * span + (q_lo - t0)
    hi = qg * span + (q_hi - t0)
    a = np.searchsorted(key, lo, side="left")
    b = np.searchsorted(key, hi, side="right" if right_closed else "left")
    return np.maximum(b - a, 0)


def _isin(values: pd.Series, members: pd.Series) -> np.ndarray:
    """Whether each value is among ``members`` (a hash lookup; fast on millions of strings,
    unlike ``Series.isin`` on Arrow strings, which converts the members one by one)."""
    if len(values) == 0 or len(members) == 0:
        return np.zeros(len(values), dtype=bool)
    hit = pc.is_in(_arrow(values, combine=False), value_set=_arrow(members.dropna()))
    return hit.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _masked_bool(values: np.ndarray, known: np.ndarray | bool) -> pd.arrays.BooleanArray:
    """A nullable boolean array: ``values`` where ``known``, missing elsewhere."""
    known = np.broadcast_to(np.asarray(known, dtype=bool), np.shape(values))
    return pd.arrays.BooleanArray(np.asarray(values, dtype=bool), ~known)


def _formats(
    df: pd.DataFrame,
    *,
    pct: Iterable[str] = (),
    money: Iterable[str] = (),
    empty: str | None = None,
) -> pd.DataFrame:
    """Record how a table reads aloud (percent and money columns) in its ``attrs``."""
    df.attrs["pct"] = [c for c in pct if c in df.columns]
    df.attrs["money"] = [c for c in money if c in df.columns]
    if empty:
        df.attrs["empty"] = empty
    return df


def _hide_rows(df: pd.DataFrame, rows: np.ndarray, columns: Iterable[str]) -> pd.DataFrame:
    """``df`` with ``columns`` missing (shown "–") in ``rows`` (boolean); integers and
    booleans become nullable so they can be missing."""
    out = df.copy()
    rows = np.asarray(rows, dtype=bool)
    for col in columns:
        s = out[col]
        if pd.api.types.is_bool_dtype(s):
            s = s.astype("boolean")
        elif pd.api.types.is_integer_dtype(s):
            s = s.astype("Int64")
        out[col] = s.mask(rows)
    return out


def _note(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(f"*{text}*"))


def with_signed_changes(df: pd.DataFrame) -> pd.DataFrame:
    """The columns named in ``attrs["signed"]`` as text with their sign, ready to show.

    ``{"change_yoy": "pct"}`` reads "+15.1%" / "−2.4%" (a relative change, true minus);
    ``{"change_points": "points"}`` reads "+11.7 points" (a difference of two shares).
    Other tables are returned as they are.
    """
    signed = df.attrs.get("signed", {})
    if not signed:
        return df
    out = df.copy()
    for col, kind in signed.items():
        fmt = signed_points if kind == "points" else signed_pct
        out[col] = pd.array([fmt(v) for v in out[col].to_numpy(dtype=float)], dtype="string")
    return out


def show_table(df: pd.DataFrame, ctx: Any = None) -> None:
    """Show a table of this module with :func:`playbook.report.show`, formatted as the
    function that made it asked (percentages, money, signed changes in ``attrs["signed"]``,
    the sentence for an empty table)."""
    from playbook.report import show

    df = with_signed_changes(df)
    show(
        df,
        pct=df.attrs.get("pct", ()),
        money=df.attrs.get("money", ()),
        ctx=ctx,
        empty=df.attrs.get("empty", "Nothing to show here."),
    )


# ---------------------------------------------------------------------------
# The journey table
# ---------------------------------------------------------------------------
def build_journey(
    tables: Tables,
    cfg: OrgConfig | None = None,
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """One row per visit, placed in its journey (see the module notes).

    Parameters
    ----------
    tables : Tables
        Canonical tables; only ``order_lines`` is required.
    cfg : OrgConfig, optional
        Settings (``journey`` section, season start month); package defaults if absent.
    as_of : Timestamp or str, optional
        The data end: visits after it are left out and return windows are censored at
        it. Default: the end of the latest complete season in the order lines.

    Returns
    -------
    pandas.DataFrame
        Columns of :class:`JourneyCols` (all but ``tier``), sorted by customer and visit
        time. ``attrs`` (plain values, so the table saves as Parquet) holds ``as_of``
        (ISO text), ``data_end`` (the last booking by ``as_of``: return windows are
        censored there, as the export may stop before ``as_of``), ``start_month``,
        ``available`` (tables with data) and ``first_season`` (season of the earliest
        visit).
    """
    opts = journey_settings(cfg)
    m = _start_month(cfg)
    as_of = pd.Timestamp(as_of) if as_of is not None else _default_as_of(tables, m)
    asof_ns = np.int64(as_of.as_unit("ns").value)

    ol = tables.order_lines
    # positions of the ticket lines that stood; each column is read (and copied) only for
    # these rows, when it is needed, so the whole table is never copied
    status_cols = [OL.line_id, OL.parent_line_id, OL.status, OL.item_type]
    eff = effective_tickets(ol[status_cols].reset_index(drop=True)).index.to_numpy()

    def tk(col: str, rows: np.ndarray = eff) -> pd.Series:
        """Column ``col`` of the order lines at positions ``rows``."""
        return ol[col].take(rows)

    cu = tables.customers
    anonymised = cu.loc[cu[CU.anonymised].fillna(False).astype(bool), CU.customer_id]

    # performances: start, cancelled flag and production, per distinct performance id
    p_codes, p_ids = pd.factorize(tk(OL.performance_id))
    p_ids = pd.Index(p_ids, dtype="string")
    perf = tables.performances
    prow = _positions(p_ids, perf[PF.performance_id])
    known = prow >= 0
    p_start = np.full(len(p_ids), _NAT, dtype=np.int64)
    p_start[known] = _ns(perf[PF.start_time])[prow[known]]
    p_cancelled = np.zeros(len(p_ids), dtype=bool)
    p_cancelled[known] = perf[PF.cancelled].fillna(False).to_numpy(dtype=bool)[prow[known]]
    p_prod = np.full(len(p_ids), -1, dtype=np.int64)
    prod = tables.productions
    prod_ids = pd.Index(prod[PR.production_id].astype("string"))
    p_prod[known] = _positions(perf[PF.production_id], prod_ids)[prow[known]]
    # production ids of performances whose production is not in the productions table
    perf_prod_str = perf[PF.production_id].astype("string").to_numpy(dtype=object)
    p_prod_str = np.full(len(p_ids), None, dtype=object)
    p_prod_str[known] = perf_prod_str[prow[known]]

    cust_codes, cust_ids = pd.factorize(tk(OL.customer_id))
    cust_ids = pd.Index(cust_ids, dtype="string")
    has_perf = p_codes >= 0
    o_codes = np.zeros(len(eff), dtype=np.int64)  # orders matter only for lines without one
    if not has_perf.all():
        o_codes[~has_perf] = pd.factorize(tk(OL.order_id, eff[~has_perf]))[0]
    purchase = _ns(ol[OL.purchase_time])[eff]
    keep = (purchase <= asof_ns) & (cust_codes >= 0)
    booked_by = purchase[keep & (purchase != _NAT)]
    data_end_ns = min(asof_ns, np.int64(booked_by.max())) if len(booked_by) else asof_ns
    keep[has_perf] &= ~p_cancelled[p_codes[has_perf]]
    if len(anonymised):  # looked up once per distinct customer, not per line
        anonymous = _isin(pd.Series(cust_ids), anonymised)
        keep[keep] &= ~anonymous[cust_codes[keep]]
    n_p = len(p_ids)
    visit_code = np.where(has_perf, p_codes, n_p + o_codes).astype(np.int64)
    n_v = np.int64(n_p + (o_codes.max() + 1 if len(o_codes) else 0))
    pair = cust_codes.astype(np.int64) * n_v + visit_code

    # scans per line (attendance joined by line id, else by customer × performance)
    has_att = tables.has("attendance")
    scanned = np.zeros(len(eff), dtype=bool)
    perf_scanned = np.zeros(n_p, dtype=bool)
    if has_att:
        at = tables.attendance
        line_of_scan = _positions(at[AT.line_id], tk(OL.line_id))  # one hash join
        scanned = np.zeros(len(eff), dtype=bool)
        scanned[line_of_scan[line_of_scan >= 0]] = True
        perf_scanned[p_codes[scanned & has_perf]] = True
        # scans that name no ticket line we know: matched by customer × performance
        loose = line_of_scan < 0
        if loose.any():
            ac = _positions(at.loc[loose, AT.customer_id], cust_ids)
            ap = _positions(at.loc[loose, AT.performance_id], p_ids)
            perf_scanned[ap[ap >= 0]] = True
            ok = (ac >= 0) & (ap >= 0)
            keys = np.sort(ac[ok] * np.int64(n_p) + ap[ok])
            line_keys = cust_codes.astype(np.int64) * n_p + p_codes
            pos = np.minimum(np.searchsorted(keys, line_keys), max(len(keys) - 1, 0))
            by_pair = (keys[pos] == line_keys) if len(keys) else np.zeros(len(eff), dtype=bool)
            scanned = scanned | (by_pair & has_perf)

    rows = np.flatnonzero(keep)
    order = rows[np.lexsort((purchase[rows], pair[rows]))]
    pair_s = pair[order]
    starts = np.flatnonzero(np.r_[True, pair_s[1:] != pair_s[:-1]]) if len(order) else order
    first_line = order[starts]
    qty = tk(OL.quantity, eff[order]).fillna(1).to_numpy(dtype=float)
    paid_l = ol[OL.paid_amount].to_numpy(dtype=float)[eff[order]]
    comp_l = ol[OL.is_comp].to_numpy(dtype=bool)[eff[order]]
    v_cust = cust_codes[first_line].astype(np.int64)
    v_p = p_codes[first_line]
    v_has_perf = v_p >= 0
    booked = purchase[first_line]
    if len(starts):
        party = np.add.reduceat(qty, starts)
        paid = np.add.reduceat(paid_l, starts)
        comp = np.minimum.reduceat(comp_l.astype(np.int8), starts).astype(bool)
        any_scan = np.maximum.reduceat(scanned[order].astype(np.int8), starts).astype(bool)
    else:
        party = paid = np.zeros(0)
        comp = any_scan = np.zeros(0, dtype=bool)
    v_start = np.full(len(starts), _NAT, dtype=np.int64)
    v_start[v_has_perf] = p_start[v_p[v_has_perf]]
    has_start = v_has_perf & (v_start != _NAT)
    event = np.where(has_start, v_start, booked)
    first_line = eff[first_line]  # positions in the order lines
    # the line-level arrays are done with: free them before the visit columns are built
    del eff, cust_codes, p_codes, o_codes, has_perf, purchase, keep, visit_code, pair
    del scanned, rows, order, pair_s, starts, qty, paid_l, comp_l, v_start

    # only visits that happened by the data end; sorted by customer, then time
    happened = event <= asof_ns
    idx = np.flatnonzero(happened)
    idx = idx[np.lexsort((booked[idx], event[idx], v_cust[idx]))]
    v_cust, v_p, v_has_perf, has_start = v_cust[idx], v_p[idx], v_has_perf[idx], has_start[idx]
    booked, event, first_line = booked[idx], event[idx], first_line[idx]
    party, paid, comp, any_scan = party[idx], paid[idx], comp[idx], any_scan[idx]
    n = len(idx)
    pos = np.arange(n)
    new_cust = np.r_[True, v_cust[1:] != v_cust[:-1]] if n else np.zeros(0, dtype=bool)
    visit_no = pos - np.maximum.accumulate(np.where(new_cust, pos, 0)) + 1
    has_next = np.r_[~new_cust[1:], False] if n else np.zeros(0, dtype=bool)
    next_event = np.where(has_next, np.roll(event, -1), _NAT)
    next_booked = np.where(has_next, np.roll(booked, -1), _NAT)
    day = event // _NS_PER_DAY
    # return windows are censored at the data end: the last booking in the order lines
    # (when the export stops before ``as_of``, nobody can be seen coming back after it)
    asof_day = data_end_ns // _NS_PER_DAY
    days_to_next = np.where(has_next, np.roll(day, -1) - day, 0).astype(float)
    days_to_next[~has_next] = np.nan
    days_observed = np.maximum(asof_day - day, 0).astype(np.int64)
    w = int(opts["return_stage_days"])
    window_known = days_observed >= w
    back_in_window = has_next & (days_to_next <= w)

    del pos, new_cust, day

    # productions (the visit's production id is needed to match pre-show emails)
    prod_str = pd.Series(p_prod_str, dtype="string")
    production_id = _take_strings(prod_str, np.where(v_has_perf, v_p, -1))

    # discover and anticipate (interactions)
    has_it = tables.has("interactions")
    clicks = webs = pre = np.zeros(n, dtype=np.int64)
    if has_it and n:
        clicks, webs, pre = _interaction_counts(
            tables.interactions,
            cust_ids,
            v_cust,
            booked // _NS_PER_S,
            event // _NS_PER_S,
            has_start,
            production_id,
            opts,
        )

    # reflect (surveys for the visit's performance: the latest answer)
    has_sr = tables.has("survey_responses")
    nps = np.full(n, np.nan)
    intent = np.full(n, np.nan)
    surveyed = np.zeros(n, dtype=bool)
    if has_sr and n:
        sr = tables.survey_responses.sort_values(SR.responded_at, kind="stable")
        sc = _positions(sr[SR.customer_id], cust_ids)
        sp = _positions(sr[SR.performance_id], p_ids)
        ok = (sc >= 0) & (sp >= 0) & (_ns(sr[SR.responded_at]) <= asof_ns)
        skey = sc[ok] * n_p + sp[ok]
        # keep the last answer per key
        rev_keys, rev_first = np.unique(skey[::-1], return_index=True)
        src = np.flatnonzero(ok)[::-1][rev_first]
        vkey = np.where(v_has_perf, v_cust * n_p + v_p, -1)
        hit = pd.Index(rev_keys).get_indexer(vkey)
        found = (hit >= 0) & v_has_perf
        surveyed = found
        sr_nps = sr[SR.nps].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        sr_int = sr[SR.intent_to_return].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        nps[found] = sr_nps[src[hit[found]]]
        intent[found] = sr_int[src[hit[found]]]

    # attend
    if has_att:
        scan_known = np.where(v_has_perf, perf_scanned[np.where(v_has_perf, v_p, 0)], any_scan)
        scan_known |= any_scan
    else:
        scan_known = np.zeros(n, dtype=bool)

    # the text columns last, after the work that needs the interaction-sized arrays
    v_prod = np.where(v_has_perf, p_prod[np.where(v_has_perf, v_p, 0)], -1)
    art = prod[PR.artform].astype("string").fillna("unknown")
    artform = _take_strings(art, v_prod).fillna("unknown")
    # the booking: channel, price band and order of the first line
    channel = _take_strings(ol[OL.channel], first_line)
    band = _take_strings(ol[OL.price_band], first_line)
    order_id = _take_strings(ol[OL.order_id], first_line)
    performance_id = _take_strings(pd.Series(p_ids), np.where(v_has_perf, v_p, -1))
    if v_has_perf.all():
        visit_id = performance_id.copy()
    else:
        visit_id = performance_id.where(v_has_perf, "order " + order_id)
    del v_prod, first_line

    lead = np.where(has_start, (event - booked) / _NS_PER_DAY, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        price = np.where(party > 0, paid / np.where(party > 0, party, 1), np.nan)
    years = _season_years(event, m)
    online = (channel == "online").to_numpy(dtype=bool, na_value=False)
    out = pd.DataFrame(
        {
            JC.customer_id: _take_strings(pd.Series(cust_ids), v_cust),
            JC.visit_id: visit_id,
            JC.performance_id: performance_id,
            JC.production_id: production_id,
            JC.artform: artform,
            JC.order_id: order_id,
            JC.visit_time: _dt(event),
            JC.season: _season_labels(years, m),
            JC.visit_no: visit_no.astype(np.int64),
            JC.clicks_before: pd.array(clicks, dtype="Int64"),
            JC.web_visits_before: pd.array(webs, dtype="Int64"),
            JC.discovered: _masked_bool((clicks + webs) > 0, has_it),
            JC.booked_at: _dt(booked),
            JC.channel: channel,
            JC.booked_online: online,
            JC.booked_ahead: _masked_bool(lead >= int(opts["planned_lead_days"]), has_start),
            JC.lead_days: lead,
            JC.party_size: party.astype(np.int64),
            JC.paid: paid,
            JC.price_per_ticket: price,
            JC.price_band: band.fillna("unknown"),
            JC.comp: comp,
            JC.pre_show_emails: pd.array(pre, dtype="Int64"),
            JC.pre_show: _masked_bool(pre > 0, has_it & has_start),
            JC.attended: _masked_bool(any_scan, scan_known),
            JC.no_show: _masked_bool(~any_scan, scan_known),
            JC.surveyed: _masked_bool(surveyed, has_sr),
            JC.nps: nps,
            JC.intent_to_return: intent,
            JC.promoter: _masked_bool(nps >= 9, ~np.isnan(nps)),
            JC.next_visit_time: _dt(next_event),
            JC.next_booked_at: _dt(next_booked),
            JC.days_to_next: days_to_next,
            JC.days_observed: days_observed,
            JC.returned: has_next,
            JC.returned_in_window: _masked_bool(back_in_window, window_known),
        },
        copy=False,  # every column is a fresh array: no consolidating copy of the table
    )
    if not has_it:
        for c in (JC.clicks_before, JC.web_visits_before, JC.pre_show_emails):
            out[c] = pd.arrays.IntegerArray(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))
    out.attrs.update(
        as_of=str(as_of),  # plain values only: the table can be saved as Parquet
        data_end=str(pd.Timestamp(int(data_end_ns))),
        start_month=m,
        available=sorted(tables.available),
        first_season=str(out[JC.season].min()) if n else None,
    )
    return out


def _interaction_counts(
    it: pd.DataFrame,
    cust_ids: pd.Index,
    v_cust: np.ndarray,
    t_book: np.ndarray,
    t_event: np.ndarray,
    has_start: np.ndarray,
    production_id: pd.Series,
    opts: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per visit: email clicks and web visits in the discover window before the booking,
    and pre-show emails between the booking and the performance.

    Times are int64 seconds; ``v_cust`` are positions in ``cust_ids``. Its own function,
    so the interaction-sized arrays are freed before the journey table is built.
    """
    n = len(v_cust)
    ic = _positions(it[IN.customer_id], cust_ids)
    kind = it[IN.kind].astype("string")
    t_it = _ns(it[IN.occurred_at]) // _NS_PER_S
    win = int(opts["discover_window_days"]) * 86_400

    def before_booking(k: str) -> np.ndarray:
        sel = (kind == k).to_numpy(dtype=bool, na_value=False) & (ic >= 0)
        return _window_counts(ic[sel], t_it[sel], v_cust, t_book - win, t_book, right_closed=True)

    clicks, webs = before_booking("email_click"), before_booking("web_visit")
    sends = (kind == "email_send").to_numpy(dtype=bool, na_value=False) & (ic >= 0)
    # about the same production … (the visits' productions: not missing, not empty)
    v_prod, v_prod_uniques = pd.factorize(production_id)
    named = np.asarray(pd.Index(v_prod_uniques, dtype="string") != "", dtype=bool)
    prod_uniques = pd.Index(v_prod_uniques[named], dtype="string")
    lookup = np.full(len(named) + 1, -1, dtype=np.int64)  # code -1 (missing) stays -1
    lookup[np.flatnonzero(named)] = np.arange(len(prod_uniques))
    vp = lookup[v_prod]
    send_rows = np.flatnonzero(sends)  # productions are looked up for sends only
    ip = _positions(it[IN.production_id].take(send_rows), prod_uniques)
    n_prod = np.int64(max(len(prod_uniques), 1))
    sel = send_rows[ip >= 0]
    ip = ip[ip >= 0]
    qv = np.flatnonzero(has_start & (vp >= 0))
    pre = np.zeros(n, dtype=np.int64)
    pre[qv] = _window_counts(
        ic[sel] * n_prod + ip,
        t_it[sel],
        v_cust[qv] * n_prod + vp[qv],
        t_book[qv],
        t_event[qv],
        right_closed=False,
    )
    # … or from a campaign named like a pre-show email, about no production
    pattern = str(opts.get("pre_show_campaign_pattern") or "")
    loose = np.flatnonzero(sends & it[IN.production_id].isna().to_numpy())
    if pattern and len(loose):
        codes, uniq = pd.factorize(it[IN.campaign])  # the whole column: no copy of the text
        codes = codes[loose]
        hits = pd.Series(uniq, dtype="string").str.contains(pattern, case=False, regex=True)
        ok = codes >= 0
        sel = loose[ok][hits.fillna(False).to_numpy(dtype=bool)[codes[ok]]]
        qv = np.flatnonzero(has_start)
        pre[qv] += _window_counts(
            ic[sel], t_it[sel], v_cust[qv], t_book[qv], t_event[qv], right_closed=False
        )
    return clicks, webs, pre


def stage_definitions(tables: Tables | None = None, cfg: OrgConfig | None = None) -> pd.DataFrame:
    """The journey stages, what each key rate measures and whether the data allow it."""
    opts = journey_settings(cfg)
    rows = []
    for s in STAGES.values():
        missing = [t for t in s.needs if tables is not None and not tables.has(t)]
        rows.append(
            {
                "stage": s.label,
                "key rate": "share of " + s.rate.format(**opts),
                "data needed": ", ".join(("order_lines", *s.needs)),
                "available": "no data (" + ", ".join(missing) + " absent)" if missing else "yes",
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Visits of one season, by tier
# ---------------------------------------------------------------------------
def _tier_keys(include_all: bool = False) -> list[str]:
    keys = [NEW, *tiers.ALL_TIERS]
    return [*keys, ALL] if include_all else keys


def tier_display_names(cfg: OrgConfig | None = None) -> dict[str, str]:
    """Display names of the tier keys used here (with ``new`` and ``all``)."""
    return {NEW: "New this season", **tiers.tier_labels(cfg), ALL: "All visits"}


def season_visits(
    journey: pd.DataFrame,
    history: pd.DataFrame,
    season: str,
    start_month: int | None = None,
) -> pd.DataFrame:
    """The visits of one season, each with the customer's tier *going into* it.

    The tier is the customer's tier at the end of the previous season (from
    :func:`playbook.tiers.tier_history`); customers not yet acquired then are ``new``.

    Returns
    -------
    pandas.DataFrame
        Journey rows of ``season`` with a ``tier`` column (ordered categorical, ``new``
        first).
    """
    m = start_month if start_month is not None else journey.attrs.get("start_month", 9)
    visits = journey.loc[(journey[JC.season] == season).to_numpy(dtype=bool, na_value=False)]
    visits = visits.copy()
    prev = history[tiers.SEASON] == previous_season(season, m)
    before = history.loc[prev.to_numpy(dtype=bool, na_value=False)]
    pos = _positions(visits[JC.customer_id], before[FC.customer_id])
    code = _tier_codes(before[tiers.TIER])
    codes = (
        np.where(pos >= 0, code[np.maximum(pos, 0)] + 1, 0)
        if len(code)
        else np.zeros(len(pos), dtype=np.int64)
    )
    visits[JC.tier] = pd.Categorical.from_codes(codes, categories=_tier_keys(), ordered=True)
    visits.attrs = dict(journey.attrs)
    return visits


def left_out(tables: Tables, visits: pd.DataFrame, season: str, start_month: int = 9) -> dict:
    """Customers the other pages count for ``season`` who are not in its journeys.

    The season report and the data audit count every customer with a ticket that stood
    for the season (:func:`playbook.audit.ticket_facts`); the journeys leave out
    customers whose records are anonymised (and tickets after the data end, or for
    cancelled performances). ``visits`` is :func:`season_visits` output.

    Returns
    -------
    dict
        ``customers`` (the other pages' count), ``in_journeys``, ``anonymised`` (left out
        because their record is anonymised), ``other`` (left out for another reason),
        ``new`` / ``new_in_journeys`` (customers whose first ticket is in ``season``, as
        the season report counts them, and those of them in the journeys).
    """
    from playbook.audit import ticket_facts

    facts = ticket_facts(tables, start_month)
    ids = facts[OL.customer_id].astype("string")
    in_season = (facts["season"] == season).to_numpy(dtype=bool, na_value=False)
    season_ids = pd.Series(ids[in_season].dropna().unique(), dtype="string")
    # first season of each customer: label order is season order ("2024-25" < "2025-26")
    first = facts.assign(_id=ids).dropna(subset=["_id"]).groupby("_id")["season"].min()
    new_ids = pd.Series(first.index[(first == season).to_numpy()], dtype="string")
    seen = visits[JC.customer_id].dropna()
    cu = tables.customers
    anon_ids = cu.loc[cu[CU.anonymised].fillna(False).astype(bool), CU.customer_id]
    missing = season_ids[~_isin(season_ids, seen)]
    anonymised = int(_isin(missing, anon_ids).sum()) if len(anon_ids) else 0
    return {
        "customers": len(season_ids),
        "in_journeys": int(seen.nunique()),
        "anonymised": anonymised,
        "other": len(missing) - anonymised,
        "new": len(new_ids),
        "new_in_journeys": int(_isin(new_ids, seen).sum()),
    }


def left_out_text(counts: Mapping[str, int]) -> str | None:
    """One plain line saying who :func:`left_out` found missing from the journeys."""
    gone = counts["anonymised"] + counts["other"]
    if gone <= 0:
        return None
    reasons = {
        "anonymised": "whose customer records are anonymised (personal data erased on request)",
        "other": "whose only tickets fall after the data end or were for cancelled performances",
    }
    given = [(counts[k], text) for k, text in reasons.items() if counts[k]]
    new_gone = counts["new"] - counts["new_in_journeys"]
    new = f"; {new_gone:,} of them are new this season" if new_gone > 0 else ""
    if len(given) == 1:
        who = f"the {gone:,} of this season's {counts['customers']:,} customers {given[0][1]}"
    else:
        who = f"{gone:,} of this season's {counts['customers']:,} customers: " + " and ".join(
            f"{n:,} {text}" for n, text in given
        )
    figures = f"{counts['customers']:,} customers"
    ours = f"{counts['in_journeys']:,}"
    if new_gone > 0:
        figures += f" and {counts['new']:,} new customers"
        ours += f" and {counts['new_in_journeys']:,}"
    return (
        f"The journeys leave out {who}{new}. The season report and the data audit count "
        f"them, so they show {figures} where this page has {ours}."
    )


def show_left_out(tables: Tables, visits: pd.DataFrame, season: str, start_month: int = 9) -> None:
    """Show :func:`left_out_text` as a note (nothing when nobody is left out)."""
    text = left_out_text(left_out(tables, visits, season, start_month))
    if text:
        _note(text)


# ---------------------------------------------------------------------------
# 1. The journey map
# ---------------------------------------------------------------------------
@dataclass
class JourneyMap:
    """Key rate of every stage by tier, with pits and peaks.

    Attributes
    ----------
    rates : pandas.DataFrame
        Stage labels (rows, journey order) × tier display names (columns, ``All visits``
        last); small cells masked (NaN), stages without data NaN.
    customers : pandas.DataFrame
        Distinct customers behind each rate (unmasked; for reference, not for display).
    pits, peaks : pandas.DataFrame
        One row per column: ``tier``, ``stage``, and ``drop`` (pits: the fall in the key
        rate from the stage before) or ``rate`` (peaks).
    unavailable : list of str
        Stages with no data.
    """

    rates: pd.DataFrame
    customers: pd.DataFrame
    pits: pd.DataFrame
    peaks: pd.DataFrame
    unavailable: list[str]


def journey_map(
    visits: pd.DataFrame, cfg: OrgConfig | None = None, min_group: int = 10
) -> JourneyMap:
    """Stages × tiers: the key rate of each stage (see :data:`STAGES`).

    A *pit* is the stage with the largest fall in its key rate from the stage before
    (within one tier's column); a *peak* is the stage with the highest key rate. Cells
    behind fewer than ``min_group`` customers are masked, with further cells of the same
    stage so that none can be worked out from the rate of all visits
    (:func:`tier_mask`); masked cells are ignored for pits and peaks.

    Parameters
    ----------
    visits : pandas.DataFrame
        From :func:`season_visits` (needs the ``tier`` column).
    cfg : OrgConfig, optional
        For tier display names.
    min_group : int
        Smallest number of customers a cell may describe.
    """
    names = tier_display_names(cfg)
    available = visits.attrs.get("available", frozenset())
    keys = [k for k in _tier_keys() if (visits[JC.tier] == k).any()] + [ALL]
    rates = pd.DataFrame(np.nan, index=[s.label for s in STAGES.values()], columns=keys)
    counts = pd.DataFrame(0, index=rates.index, columns=keys, dtype="int64")
    unavailable = []
    tier_str = visits[JC.tier].astype("string")
    for s in STAGES.values():
        if any(t not in available for t in s.needs):
            unavailable.append(s.label)
            continue
        col = visits[s.column]
        known = col.notna().to_numpy()
        if not known.any():
            unavailable.append(s.label)
            continue
        value = col[known].astype(float)
        sub = pd.DataFrame(
            {
                "tier": tier_str[known].to_numpy(),
                "v": value.to_numpy(),
                "c": visits.loc[known, JC.customer_id].to_numpy(),
            }
        )
        g = sub.groupby("tier")
        rates.loc[s.label, g["v"].mean().index] = g["v"].mean()
        counts.loc[s.label, g["c"].nunique().index] = g["c"].nunique()
        rates.loc[s.label, ALL] = float(value.mean())
        counts.loc[s.label, ALL] = int(sub["c"].nunique())
    # per stage, the tiers hidden as :func:`tier_mask` hides them (the All column is the
    # total): the Attend stage hides the no-show table's tiers, as it counts the same
    hidden = counts < min_group
    tier_cols = [k for k in keys if k != ALL]
    hidden[tier_cols] = protect_groups(
        counts[tier_cols].to_numpy().T, hidden[tier_cols].to_numpy().T, min_group
    ).T
    rates = rates.mask(hidden)
    rates.attrs["suppressed"] = int((hidden & (counts > 0)).to_numpy().sum())
    pits, peaks = [], []
    for k in keys:
        r = rates[k].dropna()
        if r.empty:
            continue
        peaks.append({"tier": names[k], "stage": r.idxmax(), "rate": float(r.max())})
        drops = (r.shift(1) - r).dropna()
        if len(drops) and drops.max() > 0:
            pits.append({"tier": names[k], "stage": drops.idxmax(), "drop": float(drops.max())})
    rates.columns = [names[k] for k in keys]
    counts.columns = rates.columns
    return JourneyMap(
        rates=rates,
        customers=counts,
        pits=pd.DataFrame(pits, columns=["tier", "stage", "drop"]),
        peaks=pd.DataFrame(peaks, columns=["tier", "stage", "rate"]),
        unavailable=unavailable,
    )


def pits_and_peaks(jmap: JourneyMap) -> pd.DataFrame:
    """One row per tier: its peak, its pit, and the stage where it trails all visits most.

    Returns
    -------
    pandas.DataFrame
        ``tier``, ``peak`` (stage), ``peak_rate``, ``pit`` (stage), ``fall_into_pit``
        (fall in the key rate from the stage before), ``furthest_behind`` (the stage
        where the tier's rate is furthest below the rate of all visits, when it trails
        by at least two percentage points) and ``gap``.
    """
    peaks = jmap.peaks.rename(columns={"stage": "peak", "rate": "peak_rate"})
    pits = jmap.pits.rename(columns={"stage": "pit", "drop": "fall_into_pit"})
    out = peaks.merge(pits, on="tier", how="outer")
    rates = jmap.rates
    overall = rates.iloc[:, -1]
    gaps = rates.iloc[:, :-1].rsub(overall, axis=0)
    behind = []
    for col in gaps.columns:
        g = gaps[col].dropna()
        if len(g) and g.max() >= _MIN_GAP:
            behind.append({"tier": col, "furthest_behind": g.idxmax(), "gap": float(g.max())})
    out = out.merge(
        pd.DataFrame(behind, columns=["tier", "furthest_behind", "gap"]), on="tier", how="left"
    )
    order = {t: i for i, t in enumerate(rates.columns)}
    out = out.sort_values("tier", key=lambda s: s.map(order)).reset_index(drop=True)
    out = out[["tier", "peak", "peak_rate", "pit", "fall_into_pit", "furthest_behind", "gap"]]
    return _formats(
        out,
        pct=["peak_rate", "fall_into_pit", "gap"],
        empty="No stage has enough customers behind it to show.",
    )


def journey_map_chart(jmap: JourneyMap, title: str = "") -> Figure | None:
    """The journey map as a heatmap, with each tier's pit (▼) and peak (▲) marked.

    When every cell is hidden or without data, a note is shown instead (``None``).
    """
    rates = jmap.rates
    if rates.isna().all().all():
        _note("Every cell of the journey map is hidden (too few customers) or has no data.")
        return None
    annot = rates.map(lambda v: "" if pd.isna(v) else f"{v:.0%}").astype(object)
    for r in jmap.peaks.itertuples():
        annot.loc[r.stage, r.tier] += "\n▲ peak"
    for r in jmap.pits.itertuples():
        annot.loc[r.stage, r.tier] += "\n▼ pit"
    fig = charts.heatmap(
        rates,
        title=title or "The journey map: key rate at each stage, by tier",
        xlabel="Tier going into the season",
        ylabel="Journey stage",
        annot=annot,
    )
    w, h = fig.get_size_inches()
    fig.set_size_inches(max(w, 11.0), h * 1.35)
    ax = fig.axes[0]
    ax.grid(False)
    for i, stage in enumerate(rates.index):
        for j in range(rates.shape[1]):
            if pd.isna(rates.iloc[i, j]):
                note = "no data" if stage in jmap.unavailable else "hidden"
                ax.text(j + 0.5, i + 0.5, note, ha="center", va="center", color="#777777")
    ax.tick_params(axis="x", rotation=30)
    return fig


# ---------------------------------------------------------------------------
# 2. First-timers: the second visit
# ---------------------------------------------------------------------------
def _window_names(opts: Mapping[str, Any]) -> tuple[str, str]:
    return f"{int(opts['short_window_days'])}d", f"{int(opts['long_window_months'])}m"


def first_timers(
    journey: pd.DataFrame,
    cfg: OrgConfig | None = None,
    *,
    as_of: pd.Timestamp | str | None = None,
) -> pd.DataFrame:
    """One row per first-timer: their first visit and whether (and when) they came back.

    A first-timer's first visit is their first visit in the data. Unless the data hold
    one season only, customers first seen in the data's first season are left out
    (``skip_first_season``): their history may start before the exports.

    Windows run from the date of the first visit and include their last day. A
    first-timer whose window has not ended by ``as_of`` (or by the journey's
    ``data_end``, the last booking in the data, when that is earlier) is *excluded* from
    that window (``observed_*`` is False and ``back_*`` missing): not yet known, not a
    non-returner.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``first_visit``, ``season``, ``artform``, ``channel``,
        ``price_band``, ``month`` (of the first visit), ``second_visit``, ``returned``
        (came back by ``as_of``), ``duration_days`` (days to the second visit, or to
        ``as_of`` when censored), and for each window (named like ``90d``, ``12m``)
        ``observed_<w>`` and ``back_<w>``. ``attrs``: ``windows``, ``as_of`` (the date
        the windows are followed to), ``excluded_season``.
    """
    opts = journey_settings(cfg)
    as_of = pd.Timestamp(as_of if as_of is not None else journey.attrs["as_of"])
    if journey.attrs.get("data_end"):  # the export may stop before as_of
        as_of = min(as_of, pd.Timestamp(journey.attrs["data_end"]))
    short, long = _window_names(opts)
    first = journey.loc[journey[JC.visit_no] == 1]
    excluded = None
    if opts.get("skip_first_season", True) and len(first):
        earliest = journey.attrs.get("first_season") or journey[JC.season].min()
        later = first[JC.season] != earliest
        if later.any():
            first = first.loc[later]
            excluded = str(earliest)
    day = first[JC.visit_time].dt.normalize().astype("datetime64[ns]")
    second = first[JC.next_visit_time]
    second_day = second.dt.normalize().astype("datetime64[ns]")
    returned = first[JC.returned].to_numpy(dtype=bool)
    asof_day = as_of.normalize()
    ends = {
        short: day + pd.Timedelta(days=int(opts["short_window_days"])),
        long: (day + pd.DateOffset(months=int(opts["long_window_months"]))).astype(
            "datetime64[ns]"
        ),
    }
    duration = np.where(
        returned,
        first[JC.days_to_next].to_numpy(dtype=float),
        first[JC.days_observed].to_numpy(dtype=float),
    )
    month = first[JC.visit_time].dt.month.to_numpy() - 1
    out = pd.DataFrame(
        {
            "customer_id": first[JC.customer_id].to_numpy(),
            "first_visit": first[JC.visit_time].to_numpy(),
            "season": first[JC.season].to_numpy(),
            "artform": first[JC.artform].to_numpy(),
            "channel": first[JC.channel].fillna("unknown").to_numpy(),
            "price_band": first[JC.price_band].to_numpy(),
            "month": pd.Categorical.from_codes(month, categories=list(MONTHS), ordered=True),
            "second_visit": second.to_numpy(),
            "returned": returned,
            "duration_days": duration,
        }
    )
    for w, end in ends.items():
        observed = (end <= asof_day).to_numpy()
        back = returned & (second_day <= end).to_numpy()
        out[f"observed_{w}"] = observed
        out[f"back_{w}"] = _masked_bool(back, observed)
    for c in ("customer_id", "season", "artform", "channel", "price_band"):
        out[c] = out[c].astype("string")
    out.attrs.update(
        windows={
            short: f"{int(opts['short_window_days'])} days",
            long: f"{int(opts['long_window_months'])} months",
        },
        as_of=str(as_of),
        excluded_season=excluded,
        start_month=int(journey.attrs.get("start_month", _start_month(cfg))),
    )
    return out


def first_timer_return_summary(first: pd.DataFrame, min_group: int = 1) -> pd.DataFrame:
    """The first-timer return rate for each window, with what was excluded.

    Parameters
    ----------
    first : pandas.DataFrame
        From :func:`first_timers`.
    min_group : int
        With fewer first-timers than this every figure is masked. A window with 1 to
        ``min_group - 1`` followed first-timers masks its rate with the figures it rests
        on: the followed and the returned, and the excluded (the first-timers minus the
        followed). The tables by group (:func:`first_timer_return`) hide the same figures.

    Returns
    -------
    pandas.DataFrame
        One row per window: ``window`` (e.g. "12 months"), ``first_timers`` (all),
        ``followed`` (whose window has ended), ``returned``, ``rate``, ``excluded``
        (too recent to tell; left out of the rate). ``attrs["footnote"]`` says why a
        window's figures are hidden, when one is.
    """
    rows = []
    for w, label in first.attrs["windows"].items():
        observed = first[f"observed_{w}"].to_numpy(dtype=bool)
        back = first[f"back_{w}"].fillna(False).to_numpy(dtype=bool)
        n_obs = int(observed.sum())
        rows.append(
            {
                "window": label,
                "first_timers": len(first),
                "followed": n_obs,
                "returned": int(back.sum()),
                "rate": back.sum() / n_obs if n_obs else np.nan,
                "excluded": len(first) - n_obs,
            }
        )
    out = pd.DataFrame(rows)
    small = ((out["followed"] > 0) & (out["followed"] < min_group)).to_numpy()
    out = _hide_rows(out, small, ["followed", "returned", "rate", "excluded"])
    out = suppress_small_groups(out, "first_timers", min_group)
    if small.any() and (out["first_timers"] >= min_group).any():
        out.attrs["footnote"] = (
            f"A window with fewer than {min_group:,} first-timers we can follow for all of "
            'it is hidden ("–"): its rate, how many came back, how many we followed and '
            "how many were left out, since each would give the others away."
        )
    return _formats(out, pct=["rate"])


def first_timer_return(
    first: pd.DataFrame, by: str | None = None, min_group: int = 10
) -> pd.DataFrame:
    """Share of first-timers back within each window, overall or by a column of ``first``.

    Parameters
    ----------
    first : pandas.DataFrame
        From :func:`first_timers`.
    by : str, optional
        ``artform``, ``channel``, ``price_band``, ``month`` or ``season`` (of the first
        visit); overall when absent.
    min_group : int
        Groups with fewer first-timers are merged into "Other (small groups)"; a rate
        resting on fewer followed first-timers is masked.

    Returns
    -------
    pandas.DataFrame
        The group column (``group`` when overall), ``first_timers``, and per window
        ``followed_<w>``, ``back_<w>``, ``rate_<w>`` (windows named like ``90d``).
        ``attrs["footnote"]`` names the groups hidden though they are not small.

    Notes
    -----
    Each column adds up to the figure of :func:`first_timer_return_summary`, shown on
    the same page, so no hidden figure may follow from the rows shown
    (:func:`protect_groups`):

    - a row with fewer than ``min_group`` first-timers ("Other (small groups)") is
      hidden whole, with further rows (the smallest first) until at least two rows and
      ``min_group`` first-timers are hidden;
    - in each window, a rate resting on 1 to ``min_group - 1`` followed first-timers is
      hidden with its followed and returned counts, and further rows' with it by the
      same rule (the rows hidden whole count as hidden there too).

    The hidden rows of a column then give away only their sum, a group of at least
    ``min_group`` first-timers. A window the summary hides (fewer than ``min_group``
    followed in all) has every non-zero row hidden here too.
    """
    windows = list(first.attrs["windows"])
    key = first[by].astype("string") if by else pd.Series("All first-timers", index=first.index)
    name = by or "group"
    frame = pd.DataFrame({name: key.fillna("unknown").to_numpy()})
    for w in windows:
        frame[f"followed_{w}"] = first[f"observed_{w}"].to_numpy(dtype=np.int64)
        frame[f"back_{w}"] = first[f"back_{w}"].fillna(False).to_numpy(dtype=np.int64)
    g = frame.groupby(name, sort=False)
    out = g.sum()
    out.insert(0, "first_timers", g.size())
    out = out.reset_index()
    if by == "month":  # in season order, from the month a season starts
        sm = int(first.attrs.get("start_month", 1))
        months = [*MONTHS[sm - 1 :], *MONTHS[: sm - 1]]
        out[name] = pd.Categorical(out[name], categories=months, ordered=True)
        out = out.sort_values(name).reset_index(drop=True)
        out[name] = out[name].astype("string")
    elif by == "price_band":  # bands read in their own order (A, B, C …)
        out = out.sort_values(name, kind="stable").reset_index(drop=True)
    else:
        out = out.sort_values("first_timers", ascending=False, kind="stable").reset_index(drop=True)
    counts = ["first_timers", *[f"{p}_{w}" for w in windows for p in ("followed", "back")]]
    merge = (out["first_timers"] < min_group).to_numpy()
    if merge.any():  # the small groups as one row, last
        other = pd.DataFrame([out.loc[merge, counts].sum()], columns=counts)
        other.insert(0, name, OTHER)
        out = pd.concat([out.loc[~merge], other], ignore_index=True)
    out[name] = out[name].astype("string")
    out[counts] = out[counts].astype(np.int64)
    # rows hidden whole, then per window the rows whose rate is hidden
    size = out["first_timers"].to_numpy(dtype=float)
    whole = protect_groups(size, size < min_group, min_group)
    followed = out[[f"followed_{w}" for w in windows]].to_numpy(dtype=float)
    small = (followed > 0) & (followed < min_group)
    per_window = protect_groups(followed, small | whole[:, None], min_group)
    for i, w in enumerate(windows):
        rate = out[f"back_{w}"] / out[f"followed_{w}"].where(out[f"followed_{w}"] > 0)
        out[f"rate_{w}"] = rate.astype(float).mask(per_window[:, i])
        out = _hide_rows(out, per_window[:, i], [f"followed_{w}", f"back_{w}"])
    out = _hide_rows(out, whole, ["first_timers"])
    big = (whole & (size >= min_group)) | (per_window & (followed >= min_group)).any(axis=1)
    if big.any():
        also = [f'"{g}"' for g in out.loc[big, name].tolist()]
        out.attrs["footnote"] = (
            f"{_and(also)} {'is' if len(also) == 1 else 'are'} hidden too (in whole or in "
            f"part), though {'not a small group' if len(also) == 1 else 'not small groups'}: "
            "the summary above shows the totals, so a small group hidden alone could be "
            "worked out by subtraction."
        )
    out = out[
        [name, "first_timers", *[f"{p}_{w}" for w in windows for p in ("followed", "back", "rate")]]
    ]
    out.attrs["suppressed"] = int(merge.sum())
    out.attrs["hidden_rows"] = int(whole.sum())
    return _formats(
        out,
        pct=[f"rate_{w}" for w in windows],
        empty="No first-timers we can follow yet.",
    )


def fit_time_to_return(durations: Iterable[float], returned: Iterable[bool], label: str = ""):
    """Kaplan–Meier estimate of the time to come back.

    Parameters
    ----------
    durations : iterable of float
        Days to the second visit (returned) or to the data end (not yet returned).
    returned : iterable of bool
        Whether the second visit was seen (False: censored at the data end).

    Returns
    -------
    lifelines.KaplanMeierFitter
        Fitted; ``median_survival_time_`` is the median time to come back (``inf`` when
        fewer than half ever come back within the data).
    """
    from lifelines import KaplanMeierFitter

    d = np.asarray(list(durations) if not hasattr(durations, "__array__") else durations, float)
    e = np.asarray(list(returned) if not hasattr(returned, "__array__") else returned, bool)
    return KaplanMeierFitter(label=label or "first-timers").fit(d, event_observed=e)


def time_to_second_visit(first: pd.DataFrame, min_group: int = 1):
    """Kaplan–Meier fit of days from the first to the second visit (censored at the data
    end), or ``None`` with fewer than ``min_group`` first-timers. See
    :func:`fit_time_to_return`."""
    if len(first) == 0 or len(first) < min_group:
        return None
    return fit_time_to_return(
        first["duration_days"].to_numpy(dtype=float),
        first["returned"].to_numpy(dtype=bool),
        label="first-timers",
    )


def km_hidden_from(kmf, min_group: int = 1) -> float:
    """The first day the time-to-return curve is not shown: fewer than ``min_group``
    first-timers are still followed (at risk) from then on.

    From that day every step of the curve is the return of someone in a group smaller
    than the suppression threshold, so the curve and its table stop before it.

    Returns
    -------
    float
        Days; ``inf`` when the whole curve is shown.
    """
    table = kmf.event_table
    small = table.index[table["at_risk"].to_numpy() < max(int(min_group), 1)]
    return float(small.min()) if len(small) else float("inf")


def km_table(
    kmf, days: Iterable[int] = (30, 90, 180, 365, 730), min_group: int = 1
) -> pd.DataFrame:
    """Share of first-timers back by each day (1 − survival), with a 95% interval.

    Parameters
    ----------
    kmf : lifelines.KaplanMeierFitter or None
        From :func:`time_to_second_visit`.
    days : iterable of int
        Days after the first visit to read the curve at.
    min_group : int
        Suppression threshold: days by which fewer first-timers are still followed are
        left out (:func:`km_hidden_from`), with a footnote.

    Returns
    -------
    pandas.DataFrame
        ``days_after_first_visit``, ``share_back``, ``share_low``, ``share_high``
        (days beyond the longest follow-up are left out; empty when ``kmf`` is None).
    """
    cols = ["days_after_first_visit", "share_back", "share_low", "share_high"]
    if kmf is None:
        return _formats(pd.DataFrame(columns=cols), empty="Too few first-timers to show.")
    days = [int(d) for d in days]
    timeline = kmf.survival_function_.index.to_numpy(dtype=float)
    days = [d for d in days if d <= timeline.max()]
    hidden = km_hidden_from(kmf, min_group)
    cut = [d for d in days if d >= hidden]
    days = [d for d in days if d < hidden]
    surv = kmf.survival_function_at_times(days).to_numpy()
    ci = kmf.confidence_interval_survival_function_
    pos = np.searchsorted(timeline, days, side="right") - 1
    lower = 1 - ci.iloc[pos, 1].to_numpy()
    upper = 1 - ci.iloc[pos, 0].to_numpy()
    out = pd.DataFrame(dict(zip(cols, [days, 1 - surv, lower, upper], strict=True)))
    if cut:
        out.attrs["footnote"] = (
            f"Not shown for {', '.join(f'{d:,}' for d in cut)} days: by then fewer than "
            f"{min_group} first-timers are still followed."
        )
    return _formats(out, pct=cols[1:], empty="Too few first-timers followed to show.")


def km_chart(kmf, first: pd.DataFrame | None = None, min_group: int = 1) -> Figure | None:
    """Cumulative share of first-timers back, by days since the first visit (Kaplan–Meier).

    The curve stops where fewer than ``min_group`` first-timers are still followed
    (:func:`km_hidden_from`). With no fit (too few first-timers) a note is shown
    instead and ``None`` returned.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    if kmf is None:
        _note("Too few first-timers to draw the time to a second visit.")
        return None
    hidden = km_hidden_from(kmf, min_group)
    keep = kmf.survival_function_.index.to_numpy(dtype=float) < hidden
    if keep.sum() < 2:
        _note(f"Too few first-timers followed (fewer than {min_group}) to draw the curve.")
        return None
    sf = kmf.survival_function_.iloc[keep, 0]
    ci = kmf.confidence_interval_survival_function_.iloc[keep]
    fig, ax = plt.subplots(figsize=charts.FIGSIZE)
    t = sf.index.to_numpy(dtype=float)
    ax.step(t, 1 - sf.to_numpy(), where="post", lw=2.5, label="came back (estimate)")
    ax.fill_between(
        t, 1 - ci.iloc[:, 1], 1 - ci.iloc[:, 0], step="post", alpha=0.25, label="95% interval"
    )
    if first is not None:
        for label in first.attrs.get("windows", {}).values():
            n, unit = label.split()
            x = int(n) if unit.startswith("day") else int(n) * 365.25 / 12
            ax.axvline(x, color="#777777", ls="--", lw=1)
            ax.text(x, 0.02, f" {label}", color="#555555", va="bottom")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, None)
    ax.set_xlim(0, None)
    title = "How soon first-timers come back (censored at the data end)"
    if hidden < np.inf:
        title += f"\nThe curve stops where fewer than {min_group} are still followed"
    ax.set_title(title)
    ax.set_xlabel("Days since the first visit")
    ax.set_ylabel("Share who have come back")
    ax.legend(frameon=False, loc="upper left")
    return fig


# ---------------------------------------------------------------------------
# 3. Booking habits by tier, no-shows, click → booking
# ---------------------------------------------------------------------------
def _order_tiers(df: pd.DataFrame, cfg: OrgConfig | None, col: str = "tier") -> pd.DataFrame:
    names = tier_display_names(cfg)
    order = {k: i for i, k in enumerate(_tier_keys(include_all=True))}
    df = df.loc[df[col].map(order).notna()]
    df = df.sort_values(col, key=lambda s: s.map(order)).reset_index(drop=True)
    df[col] = df[col].map(names).astype("string")
    return df


def tier_mask(customers: pd.Series, min_group: int = 10) -> pd.Series:
    """The tier rows a table hides, given its customers per tier and its total row.

    A tier with fewer than ``min_group`` customers is hidden, and further tiers with it
    (:func:`protect_groups`) so that none can be worked out from the total row
    (``all``), which is hidden only when it is itself below ``min_group``. Tables on
    the page built on the same customers (the booking table and the channel chart; the
    no-show table and the journey map's Attend stage) get the same mask this way.

    Parameters
    ----------
    customers : pandas.Series
        Distinct customers per tier key (``new``, tier keys, and ``all``).
    min_group : int
        Suppression threshold.

    Returns
    -------
    pandas.Series of bool
        Same index: True where the row is hidden.
    """
    c = customers.to_numpy(dtype=float)
    total = (customers.index == ALL).astype(bool)
    hidden = c < min_group
    hidden[~total] = protect_groups(c[~total], hidden[~total], min_group)
    return pd.Series(hidden, index=customers.index)


def _hide_tiers(out: pd.DataFrame, min_group: int, cfg: OrgConfig | None) -> pd.DataFrame:
    """Every figure of the tier rows :func:`tier_mask` hides, then the rows in ladder order
    with display names (:func:`_order_tiers`).

    ``out`` is indexed by tier key and has a ``customers`` column. ``attrs["suppressed"]``
    counts the hidden rows; ``attrs["footnote"]`` names the tiers hidden though they are
    not small, and says why.
    """
    hidden = tier_mask(out["customers"], min_group)
    cols = [c for c in out.columns if pd.api.types.is_numeric_dtype(out[c])]
    shown = _hide_rows(out, hidden.to_numpy(), cols)
    shown = _order_tiers(shown.rename_axis("tier").reset_index(), cfg)
    shown.attrs["suppressed"] = int(hidden.sum())
    names = tier_display_names(cfg)
    big = hidden & (out["customers"] >= min_group)
    also = [names[k] for k in _tier_keys() if big.get(k, False)]
    if also:
        shown.attrs["footnote"] = (
            f"{_and(also)} {'is' if len(also) == 1 else 'are'} hidden too, though "
            f"{'not a small group' if len(also) == 1 else 'not small groups'}: the total row "
            "is shown, so a small tier hidden alone could be worked out by subtraction."
        )
    return shown


def _and(words: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def booking_by_tier(
    visits: pd.DataFrame, cfg: OrgConfig | None = None, min_group: int = 10
) -> pd.DataFrame:
    """Per tier: visits, lead time, party size, ticket price and channel shares.

    Returns
    -------
    pandas.DataFrame
        ``tier`` (display name; ``All visits`` last), ``customers``, ``visits``,
        ``median_lead_days``, ``avg_party_size``, ``avg_ticket_price``, ``share_<channel>``
        for each sales channel seen. Tiers with fewer than ``min_group`` customers are
        masked, with further tiers so that none can be worked out from the total
        (:func:`tier_mask`).
    """
    frame = visits.assign(**{JC.tier: visits[JC.tier].astype("string")})
    whole = frame.assign(**{JC.tier: ALL})
    both = pd.concat([frame, whole], ignore_index=True)
    g = both.groupby(JC.tier, sort=False)
    out = pd.DataFrame(
        {
            "customers": g[JC.customer_id].nunique(),
            "visits": g.size(),
            "median_lead_days": g[JC.lead_days].median().round().astype("Int64"),  # whole days
            "avg_party_size": g[JC.party_size].mean(),
            "avg_ticket_price": g[JC.paid].sum() / g[JC.party_size].sum().replace(0, np.nan),
        }
    )
    channel = both[JC.channel].fillna("other")
    for ch in [c for c in SALES_CHANNELS if (channel == c).any()]:
        out[f"share_{ch}"] = (channel == ch).groupby(both[JC.tier], sort=False).mean()
    out = _hide_tiers(out, min_group, cfg)
    return _formats(
        out, pct=[c for c in out.columns if c.startswith("share_")], money=["avg_ticket_price"]
    )


def no_show_by_tier(
    visits: pd.DataFrame, cfg: OrgConfig | None = None, min_group: int = 10
) -> pd.DataFrame:
    """Per tier: visits with scan data, no-shows and the no-show rate.

    Visits to performances where nobody was scanned are left out (the door did not
    scan), so they do not count as no-shows. Empty without attendance data.

    Returns
    -------
    pandas.DataFrame
        ``tier``, ``customers``, ``visits``, ``no_shows``, ``no_show_rate``; ``All
        visits`` last; tiers with fewer than ``min_group`` customers masked, with further
        tiers so that none can be worked out from the total (:func:`tier_mask`).
    """
    known = visits.loc[visits[JC.no_show].notna()]
    frame = pd.DataFrame(
        {
            "tier": known[JC.tier].astype("string").to_numpy(),
            "customer": known[JC.customer_id].to_numpy(),
            "no_show": known[JC.no_show].astype(bool).to_numpy(),
        }
    )
    both = pd.concat([frame, frame.assign(tier=ALL)], ignore_index=True)
    g = both.groupby("tier", sort=False)
    out = pd.DataFrame(
        {"customers": g["customer"].nunique(), "visits": g.size(), "no_shows": g["no_show"].sum()}
    )
    out["no_show_rate"] = out["no_shows"] / out["visits"]
    out = _hide_tiers(out, min_group, cfg)
    return _formats(out, pct=["no_show_rate"], empty="No scan data for this season.")


def lead_time_bands(
    visits: pd.DataFrame, cfg: OrgConfig | None = None, min_group: int = 10
) -> pd.DataFrame:
    """Share of each tier's visits in each lead-time band (rows: tiers; columns: bands).

    Tiers with fewer than ``min_group`` customers are masked (a row of missing values).
    """
    edges = [int(x) for x in journey_settings(cfg)["lead_time_bands_days"]]
    labels = _band_labels(edges)
    known = visits.loc[visits[JC.lead_days].notna()]
    band = pd.cut(
        known[JC.lead_days].clip(lower=0),
        bins=[-np.inf, *edges, np.inf],
        right=False,
        labels=labels,
    )
    return _share_table(known, band, labels, cfg, min_group)


def _band_labels(edges: list[int]) -> list[str]:
    labels = [f"under {edges[0]} days"]
    labels += [f"{a}–{b - 1} days" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    labels.append(f"{edges[-1]}+ days")
    return labels


def channel_mix(
    visits: pd.DataFrame, cfg: OrgConfig | None = None, min_group: int = 10
) -> pd.DataFrame:
    """Share of each tier's visits booked through each sales channel."""
    channel = visits[JC.channel].fillna("other")
    labels = [c for c in SALES_CHANNELS if (channel == c).any()]
    return _share_table(visits, channel, labels, cfg, min_group)


def _share_table(
    visits: pd.DataFrame,
    category: pd.Series,
    labels: list[str],
    cfg: OrgConfig | None,
    min_group: int,
) -> pd.DataFrame:
    tier = visits[JC.tier].astype("string")
    both_tier = pd.concat([tier, pd.Series(ALL, index=tier.index, dtype="string")])
    both_cat = pd.concat([category.astype("string"), category.astype("string")])
    counts = pd.crosstab(both_tier.to_numpy(), both_cat.to_numpy())
    counts = counts.reindex(columns=labels, fill_value=0)
    customers = (
        pd.concat([visits[JC.customer_id], visits[JC.customer_id]])
        .groupby(both_tier.to_numpy())
        .nunique()
    )
    shares = counts.div(counts.sum(axis=1).replace(0, np.nan), axis=0)
    hidden = tier_mask(customers.reindex(shares.index).fillna(0), min_group)
    shares = shares.mask(hidden.to_numpy()[:, None] & np.ones(shares.shape, dtype=bool))
    shares = _order_tiers(shares.rename_axis("tier").reset_index(), cfg).set_index("tier")
    shares.columns.name = None
    shares.attrs["suppressed"] = int(hidden.sum())
    return _formats(shares, pct=list(shares.columns))


def lead_time_chart(bands: pd.DataFrame) -> Figure | None:
    """How far ahead each tier books (from :func:`lead_time_bands`)."""
    return share_chart(
        bands,
        title="How far ahead each tier books",
        legend="Booked ahead",
        xlabel="Share of the tier's visits",
    )


def channel_chart(mix: pd.DataFrame) -> Figure | None:
    """How each tier books (from :func:`channel_mix`); channels in plain words ("Box office")."""
    from playbook.report import channel_words

    return share_chart(
        mix.rename(columns=channel_words),
        title="How each tier books",
        legend="Channel",
        xlabel="Share of the tier's visits",
    )


def share_chart(
    shares: pd.DataFrame, *, title: str, legend: str, xlabel: str = ""
) -> Figure | None:
    """100% stacked horizontal bars: one bar per row of ``shares``, one colour per column.

    Rows that are entirely missing (masked) are drawn as a "hidden" note; with no rows a
    note is shown instead of a chart.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import PercentFormatter

    if shares.empty or shares.shape[1] == 0 or shares.isna().all().all():
        _note("Nothing to draw: no tier has enough customers to show.")
        return None
    rows = shares.iloc[::-1]
    colours = sns.color_palette(charts.PALETTE, len(shares.columns))
    fig, ax = plt.subplots(figsize=(charts.FIGSIZE[0], max(3.5, 0.6 * len(rows) + 2)))
    left = np.zeros(len(rows))
    values = rows.to_numpy(dtype=float)
    hidden = np.isnan(values).all(axis=1)
    values = np.nan_to_num(values)
    for j, col in enumerate(rows.columns):
        ax.barh(range(len(rows)), values[:, j], left=left, color=colours[j], label=str(col))
        for i, v in enumerate(values[:, j]):
            if v >= 0.07:
                ax.text(left[i] + v / 2, i, f"{v:.0%}", ha="center", va="center", fontsize=10)
        left += values[:, j]
    for i in np.flatnonzero(hidden):
        note = "hidden: too few customers, or hidden with a small tier"
        ax.text(0.5, i, note, ha="center", va="center", color="#777777")
    ax.set_yticks(range(len(rows)), rows.index)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.set_xlabel(xlabel or "Share")
    ax.set_ylabel("")
    ax.grid(axis="y", visible=False)
    ax.legend(title=legend, frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def click_conversion(
    tables: Tables,
    history: pd.DataFrame,
    season: str,
    cfg: OrgConfig | None = None,
    *,
    as_of: pd.Timestamp | str | None = None,
    min_group: int = 10,
) -> pd.DataFrame:
    """Email clicks in ``season`` followed by a booking within ``click_conversion_days``.

    A click converts when the same customer buys a ticket that stood (returns netted
    out) in the days after it (the click day included). Clicks too close to ``as_of`` to
    have had the whole window are left out. The tier is the customer's tier going into
    the season; clickers who had not visited by then are ``new``.

    Returns
    -------
    pandas.DataFrame
        ``tier``, ``customers`` (who clicked), ``clicks``, ``converted``,
        ``conversion_rate``; an ``All clicks`` row last. Small tiers masked, with
        further tiers so that none can be worked out from the total (:func:`tier_mask`).
    """
    opts = journey_settings(cfg)
    m = _start_month(cfg)
    as_of = pd.Timestamp(as_of) if as_of is not None else _default_as_of(tables, m)
    start, end = season_bounds(season, m)
    days = int(opts["click_conversion_days"])
    it = tables.interactions
    t = it[IN.occurred_at]
    limit = min(end, as_of - pd.Timedelta(days=days))
    sel = (it[IN.kind] == "email_click") & (t >= start) & (t < limit)
    clicks = it.loc[sel.to_numpy(dtype=bool, na_value=False), [IN.customer_id, IN.occurred_at]]
    tk = effective_tickets(tables.order_lines)
    bt = _ns(tk[OL.purchase_time])
    booked = bt <= np.int64(as_of.as_unit("ns").value)
    bc, ids = pd.factorize(tk[OL.customer_id])
    cc = _positions(clicks[IN.customer_id], pd.Index(ids, dtype="string"))
    ct = _ns(clicks[IN.occurred_at]) // _NS_PER_S
    known = cc >= 0  # a clicker who never bought cannot have converted
    ok = booked & (bc >= 0)
    n_booked = np.zeros(len(clicks), dtype=np.int64)
    n_booked[known] = _window_counts(
        bc[ok].astype(np.int64),
        bt[ok] // _NS_PER_S,
        cc[known],
        ct[known],
        ct[known] + days * 86_400,
        right_closed=True,
    )
    prev = history[tiers.SEASON] == previous_season(season, m)
    before = history.loc[prev.to_numpy(dtype=bool, na_value=False)]
    pos = _positions(clicks[IN.customer_id], before[FC.customer_id])
    code = _tier_codes(before[tiers.TIER])
    keys = np.array([NEW, *tiers.ALL_TIERS], dtype=object)
    tier_of = keys[np.where(pos >= 0, code[np.maximum(pos, 0)] + 1, 0)] if len(code) else NEW
    frame = pd.DataFrame(
        {
            "tier": pd.Series(tier_of, index=range(len(clicks)), dtype="string"),
            "customer": clicks[IN.customer_id].to_numpy(),
            "converted": n_booked > 0,
        }
    )
    both = pd.concat([frame, frame.assign(tier=ALL)], ignore_index=True)
    g = both.groupby("tier", sort=False)
    out = pd.DataFrame(
        {
            "customers": g["customer"].nunique(),
            "clicks": g.size(),
            "converted": g["converted"].sum(),
        }
    )
    out["conversion_rate"] = out["converted"] / out["clicks"]
    out = _hide_tiers(out, min_group, cfg)
    all_label = tier_display_names(cfg)[ALL]
    out["tier"] = out["tier"].replace(all_label, "All clicks")
    return _formats(out, pct=["conversion_rate"], empty="No email clicks this season.")


# ---------------------------------------------------------------------------
# 4. Tier flows between seasons
# ---------------------------------------------------------------------------
def history_seasons(history: pd.DataFrame) -> list[str]:
    """Season labels present in a tier history, oldest first."""
    return sorted(history[tiers.SEASON].dropna().unique().tolist(), key=season_start_year)


def transition_matrix(history: pd.DataFrame, season_from: str, season_to: str) -> pd.DataFrame:
    """Customers by tier at the end of ``season_from`` (rows) and ``season_to`` (columns).

    Rows are every tier key (entry to top, then lapsed) and, last, ``new`` (customers
    acquired during ``season_to``); columns every tier key. Each tier row sums to the
    number of customers in that tier at the end of ``season_from``. A customer in
    ``season_from`` who is absent from ``season_to`` (e.g. anonymised since) is left out
    of both.

    Returns
    -------
    pandas.DataFrame of int64
    """
    keys = list(tiers.ALL_TIERS)
    season = history[tiers.SEASON]
    a = history.loc[(season == season_from).to_numpy(dtype=bool, na_value=False)]
    b = history.loc[(season == season_to).to_numpy(dtype=bool, na_value=False)]
    a_tier = _tier_codes(a[tiers.TIER])
    b_tier = _tier_codes(b[tiers.TIER])
    pos = _positions(b[FC.customer_id], a[FC.customer_id])  # where each customer was
    frm = np.where(pos >= 0, a_tier[np.maximum(pos, 0)], len(keys))  # absent: new
    ok = b_tier >= 0
    flat = np.bincount(
        frm[ok] * len(keys) + b_tier[ok], minlength=(len(keys) + 1) * len(keys)
    ).reshape(len(keys) + 1, len(keys))
    counts = pd.DataFrame(flat.astype(np.int64), index=[*keys, NEW], columns=keys)
    counts.index.name = f"end of {season_from}"
    counts.columns.name = f"end of {season_to}"
    return counts


def _tier_codes(values: pd.Series) -> np.ndarray:
    """Position of each tier key in :data:`playbook.tiers.ALL_TIERS` (-1 if unknown)."""
    keys = list(tiers.ALL_TIERS)
    if isinstance(values.dtype, pd.CategoricalDtype):  # one lookup per category, not per row
        known = pd.Categorical(values.cat.categories.astype("string"), categories=keys).codes
        lookup = np.append(np.asarray(known, dtype=np.int64), -1)  # code -1 (missing) stays -1
        return lookup[values.cat.codes.to_numpy()]
    cat = pd.Categorical(values.astype("string"), categories=keys)
    return np.asarray(cat.codes, dtype=np.int64)


def transition_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """Row shares of a transition matrix (where each origin tier went)."""
    totals = counts.sum(axis=1)
    return counts.div(totals.where(totals > 0), axis=0)


def transition_mask(counts: pd.DataFrame, min_group: int = 10) -> pd.DataFrame:
    """The cells of a transition matrix that are hidden wherever it is shown.

    :func:`playbook.privacy.mask_count_table`: cells of 1 to ``min_group - 1``
    customers, every non-zero cell of an origin tier smaller than ``min_group``, and the
    complementary cells that keep them from being worked out (tier sizes are shown
    elsewhere). The count table, its row shares, the flow chart, the up / stay / down
    rates and the band conversions all use this one mask.

    Returns
    -------
    pandas.DataFrame of bool
        Same index and columns as ``counts``.
    """
    if counts.empty:
        return counts.astype(bool)
    return pd.DataFrame(
        mask_count_table(counts.to_numpy(), min_group), index=counts.index, columns=counts.columns
    )


def mask_transitions(
    counts: pd.DataFrame, min_group: int = 10, cfg: OrgConfig | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts and rates ready to show: small cells and small origin tiers masked.

    A cell with 1 to ``min_group - 1`` customers is masked; an origin row with fewer
    than ``min_group`` customers in all is masked whole. A row or column left with a
    single masked cell gets a second one (:func:`playbook.privacy.complementary_cells`),
    since tier sizes are shown elsewhere and the cell could be worked out. Rates are
    computed before masking. Rows and columns get display names; empty rows are dropped.

    Returns
    -------
    (counts, rates) : tuple of pandas.DataFrame
        ``counts`` as nullable integers, ``rates`` as floats; ``attrs["suppressed"]``
        counts masked cells.
    """
    names = tier_display_names(cfg)
    names[NEW] = "New (acquired this season)"
    rates = transition_rates(counts)
    totals = counts.sum(axis=1)
    small = transition_mask(counts, min_group)
    shown = counts.astype("Int64").mask(small)
    rates = rates.mask(small | (totals < min_group).to_numpy()[:, None])
    keep = totals > 0
    shown, rates = shown.loc[keep], rates.loc[keep]
    for df in (shown, rates):
        df.index = [names[k] for k in df.index]
        df.columns = [names[k] for k in df.columns]
        df.index.name = counts.index.name
        df.columns.name = counts.columns.name
        df.attrs["suppressed"] = int(small.to_numpy().sum())
    return shown, rates


@dataclass
class TierTransitions:
    """Tier flows into one season, ready to show.

    Attributes
    ----------
    season_from, season_to : str
        The season before (``None`` when the data do not reach back) and the season.
    counts : pandas.DataFrame
        :func:`transition_matrix` (tier keys; unmasked, for computing only).
    shown_counts, shown_rates : pandas.DataFrame
        :func:`mask_transitions` output (display names, small cells masked).
    min_group : int
        The suppression threshold used.
    """

    season_from: str | None
    season_to: str
    counts: pd.DataFrame
    shown_counts: pd.DataFrame
    shown_rates: pd.DataFrame
    min_group: int


def tier_transitions(
    history: pd.DataFrame, season: str, cfg: OrgConfig | None = None, min_group: int = 10
) -> TierTransitions:
    """Transitions from the end of the season before ``season`` to the end of ``season``.

    When the history does not hold the season before, the tables are empty and say so.
    """
    prev = previous_season(season, _start_month(cfg))
    seasons = set(history_seasons(history))
    if prev not in seasons or season not in seasons:
        empty = pd.DataFrame()
        _formats(empty, empty="Tier flows need the season before this one in the data.")
        return TierTransitions(None, season, empty, empty, empty, min_group)
    counts = transition_matrix(history, prev, season)
    shown, rates = mask_transitions(counts, min_group, cfg)
    _formats(shown)
    _formats(rates, pct=list(rates.columns))
    return TierTransitions(prev, season, counts, shown, rates, min_group)


def flow_chart(
    flows: TierTransitions | pd.DataFrame, min_group: int = 10, cfg: OrgConfig | None = None
) -> Figure | None:
    """Where each tier's customers were a season later: one 100% bar per origin tier.

    ``flows`` is a :class:`TierTransitions` (its threshold is used) or a
    :func:`transition_matrix`. Every cell the count table hides (:func:`transition_mask`:
    small cells and the complementary cells hidden with them) is merged into one grey
    segment; origin tiers with fewer than ``min_group`` customers are drawn as hidden.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import PercentFormatter

    if isinstance(flows, TierTransitions):
        counts, min_group = flows.counts, flows.min_group
    else:
        counts = flows
    if counts.empty or counts.to_numpy().sum() == 0:
        _note("Tier flows need two consecutive seasons in the data; none to draw yet.")
        return None
    names = tier_display_names(cfg)
    names[NEW] = "New (acquired)"
    totals = counts.sum(axis=1)
    rows = counts.loc[totals > 0].iloc[::-1]
    tot = rows.sum(axis=1).to_numpy(dtype=float)
    values = rows.to_numpy(dtype=float)
    small = transition_mask(counts, min_group).loc[rows.index].to_numpy()
    merged = np.where(small, values, 0).sum(axis=1)
    values = np.where(small, 0, values)
    hidden = tot < min_group
    colours = dict(
        zip(
            tiers.TIER_ORDER,
            sns.color_palette(charts.SEQUENTIAL, len(tiers.TIER_ORDER)),
            strict=True,
        )
    )
    colours[tiers.LAPSED] = "#c44e52"
    fig, ax = plt.subplots(figsize=(12, max(4.0, 0.7 * len(rows) + 2)))
    left = np.zeros(len(rows))
    for j, col in enumerate(rows.columns):
        share = np.where(hidden, 0, values[:, j] / np.where(tot > 0, tot, 1))
        ax.barh(range(len(rows)), share, left=left, color=colours[col], label=names[col])
        for i, v in enumerate(share):
            if v >= 0.06:
                colour = "white" if col in ("loyal", "champion", tiers.LAPSED) else "black"
                ax.text(
                    left[i] + v / 2,
                    i,
                    f"{v:.0%}",
                    ha="center",
                    va="center",
                    fontsize=10,
                    color=colour,
                )
        left += share
    rest = np.where(hidden, 0, merged / np.where(tot > 0, tot, 1))
    ax.barh(range(len(rows)), rest, left=left, color="#bbbbbb", label="hidden cells (small groups)")
    for i in np.flatnonzero(hidden):
        ax.text(0.5, i, "hidden: too few customers", ha="center", va="center", color="#777777")
    labels = [
        f"{names[k]} ({int(t):,})" if t >= min_group else names[k]
        for k, t in zip(rows.index, tot, strict=True)
    ]
    ax.set_yticks(range(len(rows)), labels)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, 1)
    ax.set_title(f"Where customers went: {counts.index.name} → {counts.columns.name}")
    ax.set_xlabel("Share of the tier's customers, by their tier a season later")
    ax.set_ylabel("Tier at the start")
    ax.grid(axis="y", visible=False)
    ax.legend(title="A season later", frameon=False, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


def tier_flows(history: pd.DataFrame) -> pd.DataFrame:
    """Transition counts for every pair of consecutive seasons, in long format.

    Returns
    -------
    pandas.DataFrame
        ``season_from``, ``season_to``, ``tier_from`` (a tier key or ``new``),
        ``tier_to``, ``customers``; zero cells left out.
    """
    seasons = history_seasons(history)
    parts = []
    for a, b in zip(seasons[:-1], seasons[1:], strict=True):
        c = transition_matrix(history, a, b)
        long = c.stack().rename("customers").reset_index()
        long.columns = ["tier_from", "tier_to", "customers"]
        long.insert(0, "season_to", b)
        long.insert(0, "season_from", a)
        parts.append(long.loc[long["customers"] > 0])
    if not parts:
        return pd.DataFrame(
            columns=["season_from", "season_to", "tier_from", "tier_to", "customers"]
        )
    return pd.concat(parts, ignore_index=True)


def tier_movement(
    counts: pd.DataFrame, min_group: int = 10, cfg: OrgConfig | None = None
) -> pd.DataFrame:
    """Per origin tier: how many moved up the ladder, stayed, moved down or lapsed.

    Returns
    -------
    pandas.DataFrame
        ``tier`` (display name), ``customers``, ``up_rate`` (reached a higher rung;
        for lapsed customers: came back), ``stay_rate``, ``down_rate`` (a lower rung, not
        lapsed), ``lapse_rate``; small tiers masked.

    Notes
    -----
    A rate is shown only when every cell it adds up is shown in the count table
    (:func:`transition_mask`); a rate that includes a hidden cell is hidden too, or the
    cells shown would give that cell away. The rates left shown then reveal at most the
    sum of a row's hidden cells, which the count table already gives (the tier's size
    minus the cells shown), so nothing further is hidden. ``attrs["hidden_rates"]``
    counts the rates hidden this way.
    """
    keys = list(tiers.ALL_TIERS)
    c = counts.reindex(index=keys, columns=keys, fill_value=0)
    rank = {t: i for i, t in enumerate(tiers.TIER_ORDER)} | {tiers.LAPSED: -1}
    r_from = np.array([rank[k] for k in c.index])[:, None]
    r_to = np.array([rank[k] for k in c.columns])[None, :]
    v = c.to_numpy(dtype=float)
    # the mask of the table as shown (with its "new" row), read for the tier rows
    hidden = (
        transition_mask(counts, min_group)
        .reindex(index=keys, columns=keys, fill_value=False)
        .to_numpy(dtype=bool)
    )
    lapsed_to = (r_to == -1) & np.ones_like(r_from, dtype=bool)
    categories = {
        "up_rate": (r_to > r_from) & ~lapsed_to,
        "stay_rate": (r_to == r_from) & np.ones_like(lapsed_to),
        "down_rate": (r_to < r_from) & ~lapsed_to,
        "lapse_rate": lapsed_to,
    }
    total = v.sum(axis=1)
    den = np.where(total > 0, total, np.nan)
    out = pd.DataFrame({"tier": c.index, "customers": total.astype(np.int64)})
    n_hidden = 0
    for name, cells in categories.items():
        uses_hidden = (cells & hidden & (v > 0)).any(axis=1)
        out[name] = np.where(uses_hidden, np.nan, (cells * v).sum(axis=1) / den)
        n_hidden += int((uses_hidden & (total >= min_group)).sum())
    out.loc[out["tier"] == tiers.LAPSED, "lapse_rate"] = np.nan  # staying lapsed is "stay"
    out = _order_tiers(out.loc[out["customers"] > 0], cfg)
    out = suppress_small_groups(out, "customers", min_group)
    out.attrs["hidden_rates"] = n_hidden
    return _formats(
        out,
        pct=["up_rate", "stay_rate", "down_rate", "lapse_rate"],
        empty="Tier flows need the season before this one in the data.",
    )


def _verdict(rate: float, low: float, high: float, *, lower_is_better: bool = False) -> str:
    """Where a rate (as printed: :func:`as_shown`) stands against its target band."""
    if pd.isna(rate):
        return "–"
    rate = as_shown(rate)
    if rate < low:
        return "better than the target band" if lower_is_better else "below the target band"
    if rate > high:
        return "short of the target band" if lower_is_better else "above the target band"
    return "within the target band"


def tier_conversion(
    history: pd.DataFrame, cfg: OrgConfig | None = None, min_group: int = 10
) -> pd.DataFrame:
    """Conversion entry → mid and mid → top for every pair of consecutive seasons.

    The denominator is the customers in a band at the end of one season; they convert
    when they are in the next band *or higher* at the end of the next season. Bands and
    targets come from ``tiers.bands`` and ``tiers.targets``.

    Returns
    -------
    pandas.DataFrame
        ``season_from``, ``season_to``, ``step`` ("entry → mid", "mid → top"),
        ``customers``, ``converted``, ``rate``, ``target_low``, ``target_high``,
        ``verdict``. A rate is masked when it rests on fewer than ``min_group``
        customers, when fewer than ``min_group`` converted (or did not), or when it adds
        up a cell that season pair's transition table hides (:func:`transition_mask`).
        The verdict is decided on the rate as printed (one decimal).
    """
    ladder = settings(cfg, "tiers")
    bands = {k: set(v) for k, v in ladder["bands"].items()}
    targets = ladder["targets"]
    steps = [
        ("entry → mid", bands["entry"], bands["mid"] | bands["top"], targets["conversion_entry"]),
        ("mid → top", bands["mid"], bands["top"], targets["conversion_mid"]),
    ]
    seasons = history_seasons(history)
    rows = []
    for a, b in zip(seasons[:-1], seasons[1:], strict=True):
        c = transition_matrix(history, a, b)
        hidden = transition_mask(c, min_group).to_numpy()
        for step, src, dst, (low, high) in steps:
            cells = np.outer(c.index.isin(list(src)), c.columns.isin(list(dst)))
            n = int(c.to_numpy()[c.index.isin(list(src))].sum())
            conv = int(c.to_numpy()[cells].sum())
            ok = (
                n >= min_group
                and not (0 < conv < min_group or 0 < n - conv < min_group)
                and not (hidden & cells).any()
            )
            rate = conv / n if ok else np.nan
            rows.append(
                {
                    "season_from": a,
                    "season_to": b,
                    "step": step,
                    "customers": n,
                    "converted": conv if ok else pd.NA,
                    "rate": rate,
                    "target_low": float(low),
                    "target_high": float(high),
                    "verdict": _verdict(rate, float(low), float(high)),
                }
            )
    out = pd.DataFrame(
        rows,
        columns=[
            "season_from",
            "season_to",
            "step",
            "customers",
            "converted",
            "rate",
            "target_low",
            "target_high",
            "verdict",
        ],
    )
    out["converted"] = out["converted"].astype("Int64")
    return _formats(
        out,
        pct=["rate", "target_low", "target_high"],
        empty="Tier flows need at least two seasons of data.",
    )


def conversion_chart(conversion: pd.DataFrame) -> Figure | None:
    """Conversion between bands per season, with the target band shaded.

    ``conversion`` is :func:`tier_conversion` output; one panel per step. Masked rates are
    left out; with nothing to draw a note is shown instead (``None``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    data = conversion.dropna(subset=["rate"])
    if data.empty:
        _note("Conversion between tiers needs two seasons of data with enough customers.")
        return None
    steps = list(data["step"].drop_duplicates())
    fig, axes = plt.subplots(1, len(steps), figsize=charts.FIGSIZE, squeeze=False)
    for ax, step in zip(axes[0], steps, strict=True):
        d = data.loc[data["step"] == step]
        low, high = float(d["target_low"].iloc[0]), float(d["target_high"].iloc[0])
        ax.axhspan(low, high, color="#009E73", alpha=0.2, label="target band")
        labels = d["season_from"] + " → " + d["season_to"]
        ax.bar(labels, d["rate"], color="#0072B2", label="conversion")
        for x, v in enumerate(d["rate"]):
            ax.text(x, v, f"{v:.1%}", ha="center", va="bottom")
        ax.set_title(step)
        ax.set_xlabel("Seasons")
        ax.set_ylabel("Share of the band converted")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, max(float(d["rate"].max()), high) * 1.5)
        ax.tick_params(axis="x", rotation=20)
        ax.legend(frameon=False, loc="upper left", ncol=2, fontsize=11)
    fig.suptitle("Conversion between tiers against the target bands", fontweight="bold")
    return fig


def churn_by_tier(
    history: pd.DataFrame,
    journey: pd.DataFrame,
    cfg: OrgConfig | None = None,
    min_group: int = 10,
) -> pd.DataFrame:
    """Churn by tier for every pair of consecutive seasons, and its change year on year.

    Churn: a customer on the ladder (not lapsed) at the end of one season who made no
    visit during the next. ``change_points`` is the difference from the previous pair of
    seasons in percentage points (47% → 57%: +10 points); ``change_yoy`` the relative
    change (+21%), which the target band judges (a fall of 15–20% a year,
    ``tiers.targets.churn_change``). Both are shown with their sign.

    Returns
    -------
    pandas.DataFrame
        ``season_from``, ``season_to``, ``tier`` (display name), ``customers``,
        ``churned``, ``churn_rate``, ``change_points``, ``change_yoy``, ``verdict``;
        tiers with fewer than ``min_group`` customers masked, and the churn of a tier
        where fewer than ``min_group`` churned (or stayed).
    """
    low, high = (float(x) for x in settings(cfg, "tiers")["targets"]["churn_change"])
    seasons = history_seasons(history)
    rows = []
    for a, b in zip(seasons[:-1], seasons[1:], strict=True):
        h = history.loc[history[tiers.SEASON] == a]
        h = h.loc[h[tiers.TIER].astype("string") != tiers.LAPSED]
        came = _isin(h[FC.customer_id], journey.loc[journey[JC.season] == b, JC.customer_id])
        g = pd.Series(~came, index=h.index).groupby(h[tiers.TIER].astype("string"))
        part = pd.DataFrame({"customers": g.size(), "churned": g.sum()})
        part = part.reindex(list(tiers.TIER_ORDER)).dropna()
        part.insert(0, "season_to", b)
        part.insert(0, "season_from", a)
        rows.append(part.rename_axis("tier").reset_index())
    cols = [
        "season_from",
        "season_to",
        "tier",
        "customers",
        "churned",
        "churn_rate",
        "change_points",
        "change_yoy",
        "verdict",
    ]
    if not rows:
        return _formats(pd.DataFrame(columns=cols), empty="Churn needs two seasons of data.")
    out = pd.concat(rows, ignore_index=True)
    out["customers"] = out["customers"].astype("int64")
    out["churned"] = out["churned"].astype("int64")
    stayed = out["customers"] - out["churned"]
    small_split = ((out["churned"] > 0) & (out["churned"] < min_group)) | (
        (stayed > 0) & (stayed < min_group)
    )
    shown = (out["customers"] >= min_group) & ~small_split
    out["churn_rate"] = (out["churned"] / out["customers"]).where(shown)
    prev = out.groupby("tier")["churn_rate"].shift(1)
    # points between the rates as printed (60.1% → 61.5% reads −1.4 points, as shown)
    printed = np.array([as_shown(x) for x in out["churn_rate"].to_numpy(dtype=float)])
    out["change_points"] = printed - pd.Series(printed).groupby(out["tier"]).shift(1).to_numpy()
    out["change_yoy"] = (out["churn_rate"] - prev) / prev.where(prev > 0)
    out["verdict"] = [
        _verdict(v, low, high, lower_is_better=True) for v in out["change_yoy"].to_numpy()
    ]
    names = tier_display_names(cfg)
    out["tier"] = out["tier"].map(names).astype("string")
    out["churned"] = out["churned"].astype("Int64").mask(small_split)
    out = suppress_small_groups(out, "customers", min_group, columns=["customers", "churned"])
    out = _formats(out[cols], pct=["churn_rate"], empty="Churn needs at least two seasons of data.")
    out.attrs["signed"] = {"change_points": "points", "change_yoy": "pct"}
    return out


def churn_matrix(churn: pd.DataFrame) -> pd.DataFrame:
    """Churn rates from :func:`churn_by_tier` as tiers (rows) × next season (columns)."""
    m = churn.pivot(index="tier", columns="season_to", values="churn_rate")
    order = {n: i for i, n in enumerate(churn["tier"].drop_duplicates())}
    m = m.sort_index(key=lambda s: s.map(order))
    m.columns.name = "churn during"
    return m


# ---------------------------------------------------------------------------
# 5. Cohort retention
# ---------------------------------------------------------------------------
def cohort_retention(journey: pd.DataFrame, min_group: int = 10) -> pd.DataFrame:
    """Share of each first-season cohort with a visit in each season.

    Rows: the season of a customer's first visit (the cohort); columns: seasons. The
    cohort's own season is 100% by definition. Cohorts smaller than ``min_group`` and
    cells with 1 to ``min_group - 1`` customers are masked. ``attrs["sizes"]`` holds the
    cohort sizes.
    """
    cust, _ = pd.factorize(journey[JC.customer_id])
    scode, labels = pd.factorize(journey[JC.season])
    seasons = sorted((str(x) for x in labels), key=season_start_year)
    rank = np.array([seasons.index(str(x)) for x in labels], dtype=np.int64)
    sidx = rank[scode] if len(scode) else scode.astype(np.int64)
    ns = np.int64(len(seasons))
    first = (journey[JC.visit_no] == 1).to_numpy()
    cohort = np.full(cust.max() + 1 if len(cust) else 0, -1, dtype=np.int64)
    cohort[cust[first]] = sidx[first]
    pairs = np.unique(cust.astype(np.int64) * ns + sidx)  # distinct customer × season
    pc_, ps_ = cohort[pairs // ns], pairs % ns
    ok = pc_ >= 0
    flat = np.bincount(pc_[ok] * ns + ps_[ok], minlength=int(ns * ns)).reshape(ns, ns)
    counts = pd.DataFrame(flat, index=seasons, columns=seasons)
    counts = counts.loc[np.diag(flat) > 0]
    sizes = pd.Series(np.diag(counts.loc[:, counts.index].to_numpy()), index=counts.index)
    shares = counts.div(sizes.where(sizes > 0), axis=0)
    for s in counts.index:
        shares.loc[s, seasons[: seasons.index(s)]] = np.nan
    small = (counts > 0) & (counts < min_group)
    shares = shares.mask(small).mask(
        (sizes < min_group).to_numpy()[:, None] & np.ones(shares.shape, bool)
    )
    shares.index = [
        f"{s} ({int(n):,})" if n >= min_group else f"{s} (small)" for s, n in sizes.items()
    ]
    shares.index.name = "first season (customers)"
    shares.columns.name = "season"
    shares.attrs["sizes"] = {str(k): int(v) for k, v in sizes.items()}
    shares.attrs["suppressed"] = int(small.to_numpy().sum())
    return _formats(shares, pct=list(shares.columns))


def cohort_chart(shares: pd.DataFrame) -> Figure | None:
    """Cohort retention as a heatmap (share of each cohort active in each season).

    When every cohort is too small to show, a note is shown instead (``None``).
    """
    if shares.empty or shares.isna().all().all():
        _note("Every cohort is below the privacy threshold, so no chart is drawn.")
        return None
    fig = charts.heatmap(
        shares,
        title="Cohort retention: share of each cohort who visited, by season",
        xlabel="Season",
        ylabel="First season (cohort size)",
    )
    w, h = fig.get_size_inches()
    fig.set_size_inches(max(w, 10.0), h)
    fig.axes[0].grid(False)
    return fig
