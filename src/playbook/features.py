"""Customer features: one row per customer as of a date.

Everything the ladder, RFM, clustering and personas read about a customer is computed
here, once, from the canonical tables. The work is vectorised: customer ids become
integer codes and every aggregate is a ``numpy.bincount``, a sort or a grouped
reduction over those codes, so a million customers and five million order lines take
seconds, not hours. :func:`naive_features_baseline` computes a few of the same
columns the slow way (one Python call per customer) for the benchmark and the tests.

Who is a customer here
----------------------
A customer appears once they have *visited*: they hold an effective ticket (returns and
exchanges netted out by :func:`playbook.tables.effective_tickets`) bought on or before
the as-of date, for a performance that started on or before it (for ticket lines
without a performance, the purchase time stands in for the visit). Tickets for
cancelled performances do not count. A *visit* is one distinct performance (or, with no
performance on the line, one order). Customers flagged ``anonymised`` are left out.
Donations, memberships, email activity and surveys enrich these customers; only
records dated on or before the as-of date count.

Missing optional tables never raise: their columns come out neutral (zero spend,
``False`` flags) or missing (``NaN`` for rates nobody could have, such as the click
rate of a customer who was never emailed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from playbook.config import OrgConfig, package_defaults, thaw
from playbook.parsing import isin
from playbook.schema import SALES_CHANNELS
from playbook.schema import Customers as CU
from playbook.schema import Donations as DO
from playbook.schema import Interactions as IN
from playbook.schema import Memberships as ME
from playbook.schema import OrderLines as OL
from playbook.schema import Performances as PF
from playbook.schema import Productions as PR
from playbook.schema import SurveyResponses as SR
from playbook.seasons import default_season, season_bounds, season_of
from playbook.tables import Tables, effective_tickets

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NS_PER_DAY = 86_400 * 10**9
_MODE_TABLE_MAX = 50_000_000  # largest customers × values table _mode builds in memory


class FeatureCols:
    """Column names of the features frame (index: ``customer_id``)."""

    customer_id = "customer_id"
    first_visit = "first_visit"
    last_visit = "last_visit"
    recency_days = "recency_days"
    tenure_days = "tenure_days"
    frequency = "frequency"
    recent_visits = "recent_visits"
    seasons_active = "seasons_active"
    tickets = "tickets"
    ticket_spend = "ticket_spend"
    recent_spend = "recent_spend"
    subscription_spend = "subscription_spend"
    membership_spend = "membership_spend"
    donation_spend = "donation_spend"
    total_spend = "total_spend"
    avg_ticket_price = "avg_ticket_price"
    price_index = "price_index"
    artform_breadth = "artform_breadth"
    favourite_artform = "favourite_artform"
    avg_lead_days = "avg_lead_days"
    avg_party_size = "avg_party_size"
    weekend_share = "weekend_share"
    matinee_share = "matinee_share"
    favourite_day = "favourite_day"
    concession_share = "concession_share"
    subscription_share = "subscription_share"
    comp_share = "comp_share"
    discount_share = "discount_share"
    preferred_price_band = "preferred_price_band"
    online_share = "online_share"
    phone_share = "phone_share"
    box_office_share = "box_office_share"
    other_channel_share = "other_channel_share"
    preferred_channel = "preferred_channel"
    is_subscriber = "is_subscriber"
    is_member = "is_member"
    ever_member = "ever_member"
    is_donor = "is_donor"
    email_sends = "email_sends"
    email_clicks = "email_clicks"
    email_click_rate = "email_click_rate"
    latest_nps = "latest_nps"
    segment_code = "segment_code"


FC = FeatureCols

# Plain-language meaning of every feature (shown in notebook 10's data dictionary).
FEATURE_DOCS: dict[str, str] = {
    FC.first_visit: "date of the first visit",
    FC.last_visit: "date of the most recent visit",
    FC.recency_days: "days since the most recent visit",
    FC.tenure_days: "days since the first visit",
    FC.frequency: "distinct performances attended, ever",
    FC.recent_visits: "distinct performances attended in the recent window (default 12 months)",
    FC.seasons_active: "number of seasons with at least one visit",
    FC.tickets: "tickets held, ever (comps included)",
    FC.ticket_spend: "money paid for tickets, returns netted",
    FC.recent_spend: "money of every kind paid in the recent window (default 12 months)",
    FC.subscription_spend: "money paid for subscription packages",
    FC.membership_spend: "money paid for memberships",
    FC.donation_spend: "money given as donations",
    FC.total_spend: "tickets + subscriptions + memberships + donations",
    FC.avg_ticket_price: "average price paid per paid ticket",
    FC.price_index: "list price of the seats chosen relative to the typical seat at the same "
    "performance (1 = typical, above 1 = premium seats)",
    FC.artform_breadth: "number of different artforms seen",
    FC.favourite_artform: "artform seen most often (ties: alphabetical)",
    FC.avg_lead_days: "average days between booking and the performance",
    FC.avg_party_size: "average tickets per visit",
    FC.weekend_share: "share of visits on a weekend",
    FC.matinee_share: "share of visits to a matinee",
    FC.favourite_day: "day of the week visited most often",
    FC.concession_share: "share of tickets at a concession price",
    FC.subscription_share: "share of tickets bought as part of a subscription",
    FC.comp_share: "share of tickets that were complimentary",
    FC.discount_share: "share of list price not paid on paid tickets (price sensitivity)",
    FC.preferred_price_band: "price band bought most often",
    FC.online_share: "share of tickets bought online",
    FC.phone_share: "share of tickets bought by phone",
    FC.box_office_share: "share of tickets bought at the box office",
    FC.other_channel_share: "share of tickets bought through other channels",
    FC.preferred_channel: "channel used most often",
    FC.is_subscriber: "bought a subscription in the recent window",
    FC.is_member: "membership current on the as-of date",
    FC.ever_member: "has ever held a membership",
    FC.is_donor: "gave in the donor window (default 24 months)",
    FC.email_sends: "emails received in the recent window",
    FC.email_clicks: "email clicks in the recent window",
    FC.email_click_rate: "clicks per email received in the recent window",
    FC.latest_nps: "most recent likelihood-to-recommend score (0–10)",
    FC.segment_code: "external segment code (e.g. Audience Spectrum)",
}

FEATURE_COLUMNS: tuple[str, ...] = tuple(FEATURE_DOCS)

_CHANNEL_SHARES = {
    "online": FC.online_share,
    "phone": FC.phone_share,
    "box_office": FC.box_office_share,
    "other": FC.other_channel_share,
}


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
def settings(cfg: OrgConfig | None, section: str) -> dict[str, Any]:
    """A settings section as a plain dict: the organisation's, else the package defaults."""
    if cfg is not None:
        return thaw(cfg.section(section))
    return thaw(package_defaults().get(section, {}))


def currency_symbol(cfg: OrgConfig | None) -> str:
    """Symbol for chart labels (``£``), or the currency code and a space when unknown."""
    from playbook.report import CURRENCY_SYMBOLS

    code = cfg.currency if cfg is not None else "GBP"
    return CURRENCY_SYMBOLS.get(code, code + " ")


def default_as_of(tables: Tables, start_month: int = 9) -> pd.Timestamp:
    """The last instant of the latest complete season in the order lines."""
    label = default_season(tables.order_lines[OL.purchase_time], start_month)
    return season_bounds(label, start_month)[1] - pd.Timedelta(seconds=1)


# ---------------------------------------------------------------------------
# Preparation: every table reduced to integer-coded numpy columns, once
# ---------------------------------------------------------------------------
@dataclass
class PreparedLines:
    """Canonical tables reduced to integer codes, ready for fast as-of aggregation.

    Build it once with :func:`prepare` when computing features at several dates (the
    tier history does this); :func:`build_features` accepts it in place of ``Tables``.
    """

    ids: pd.Index  # customer ids, sorted; position = integer code
    tickets: dict[str, np.ndarray]
    subs: dict[str, np.ndarray]
    memberships: dict[str, np.ndarray]
    donations: dict[str, np.ndarray]
    emails: dict[str, np.ndarray]
    surveys: dict[str, np.ndarray]
    artforms: pd.Index
    bands: pd.Index
    segment: pd.api.extensions.ExtensionArray  # external segment code (string, NA if unknown)
    excluded: np.ndarray  # bool per customer: anonymised
    start_month: int
    options: dict[str, Any]
    available: frozenset[str]


def _ns(s: pd.Series) -> np.ndarray:
    """Datetimes as int64 nanoseconds (NaT becomes the minimum int64)."""
    return pd.to_datetime(s).astype("datetime64[ns]").to_numpy().view("int64")


def _codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent or missing).

    Factorises first, so the string lookup runs once per distinct value, not per row.
    """
    codes, uniques = pd.factorize(values)
    out = np.full(len(codes), -1, dtype=np.int64)
    if len(uniques) == 0 or len(index) == 0:
        return out
    positions = index.get_indexer(pd.Index(uniques).astype(index.dtype))
    ok = codes >= 0
    out[ok] = positions[codes[ok]]
    return out


def _season_year(ns: np.ndarray, start_month: int) -> np.ndarray:
    d = ns.view("datetime64[ns]")
    years = d.astype("datetime64[Y]").astype(np.int64) + 1970
    months = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return years - (months < start_month)


def _flag_codes(codes: np.ndarray, uniques: Any, pattern: str) -> np.ndarray:
    """Regex flag of factorised values, evaluated on the distinct values only."""
    if not pattern or len(uniques) == 0:
        return np.zeros(len(codes), dtype=bool)
    hits = pd.Series(uniques, dtype="string").str.contains(pattern, case=False, regex=True)
    hits = hits.fillna(False).to_numpy(dtype=bool)
    out = np.zeros(len(codes), dtype=bool)
    ok = codes >= 0
    out[ok] = hits[codes[ok]]
    return out


def _compact(codes: np.ndarray) -> np.ndarray:
    """Integer codes in the smallest signed dtype that holds them (less memory per row)."""
    if len(codes) == 0:
        return codes
    lo, hi = int(codes.min()), int(codes.max())
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return codes.astype(dtype)
    return codes.astype(np.int64)


def prepare(tables: Tables, cfg: OrgConfig | None = None) -> PreparedLines:
    """Reduce the canonical tables to integer-coded arrays (one pass over the data).

    Parameters
    ----------
    tables : Tables
        Canonical tables (see :func:`playbook.tables.load_tables`).
    cfg : OrgConfig, optional
        Settings (``features`` section, season start month); package defaults if absent.

    Returns
    -------
    PreparedLines
    """
    opts = settings(cfg, "features")
    start_month = cfg.season_start_month if cfg is not None else 9
    ol = tables.order_lines.reset_index(drop=True)
    # rows of the tickets that stood (returns and exchanges netted out)
    status_cols = [OL.line_id, OL.parent_line_id, OL.status, OL.item_type]
    rows = effective_tickets(ol[status_cols]).index.to_numpy()
    # customer ids: sorted, position = integer code (shared by every table)
    cust_all, ids = pd.factorize(ol[OL.customer_id], sort=True)
    ids = pd.Index(ids, dtype="string", name=FC.customer_id)

    # performances and artforms
    perf = tables.performances
    perf_index = pd.Index(perf[PF.performance_id].astype("string"))
    p = _codes(ol[OL.performance_id], perf_index)[rows]
    cancelled = perf[PF.cancelled].fillna(False).to_numpy(dtype=bool)
    # tickets for cancelled performances never count: drop their rows before anything else
    keep = np.ones(len(rows), dtype=bool)
    keep[p >= 0] = ~cancelled[p[p >= 0]]
    rows, p = rows[keep], p[keep]
    del keep
    has_perf = p >= 0
    start_ns = _ns(perf[PF.start_time])
    prod = tables.productions
    prod_index = pd.Index(prod[PR.production_id].astype("string"))
    art_codes_prod, artforms = pd.factorize(prod[PR.artform].astype("string"), sort=True)
    perf_prod = _codes(perf[PF.production_id], prod_index)
    perf_art = np.full(len(perf), -1, dtype=np.int64)
    linked = perf_prod >= 0
    perf_art[linked] = art_codes_prod[perf_prod[linked]]

    purchase = _ns(ol[OL.purchase_time])[rows]
    event = purchase.copy()
    event[has_perf] = start_ns[p[has_perf]]
    missing_start = has_perf & (event == np.iinfo(np.int64).min)
    event[missing_start] = purchase[missing_start]
    # a visit: one performance, or one order when the line names no performance (only
    # those lines' orders are coded: a visit code just has to tell visits apart)
    visit = p.copy()
    no_perf = np.flatnonzero(~has_perf)
    if len(no_perf):
        visit[no_perf] = len(perf) + pd.factorize(ol[OL.order_id].take(rows[no_perf]))[0]
    art = np.full(len(rows), -1, dtype=np.int64)
    art[has_perf] = perf_art[p[has_perf]]
    band_all, bands = pd.factorize(ol[OL.price_band], sort=True)
    channel_codes = _codes(ol[OL.channel], pd.Index(SALES_CHANNELS, dtype="string"))[rows]
    paid = ol[OL.paid_amount].to_numpy(dtype=float)[rows]
    listp = ol[OL.list_price].astype("Float64").to_numpy(dtype=float, na_value=np.nan)[rows]
    # price index: the seat's list price over the performance's median list price
    comp = ol[OL.is_comp].to_numpy(dtype=bool)[rows]
    priced = has_perf & ~comp & (listp > 0)
    pidx = np.full(len(rows), np.nan)
    if priced.any():
        med = pd.Series(listp[priced]).groupby(p[priced]).median()
        pidx[priced] = listp[priced] / med.reindex(p[priced]).to_numpy()
    del priced
    qty = ol[OL.quantity].astype("Float64").to_numpy(dtype=float, na_value=1.0)[rows]
    # ticket types: both patterns are matched on the distinct values of one factorisation
    type_codes, type_uniques = pd.factorize(ol[OL.ticket_type])
    type_codes = type_codes[rows]
    tickets = {
        "cust": cust_all[rows],
        "visit": _compact(visit),
        "event": event,
        "purchase": purchase,
        "has_start": has_perf & ~missing_start,
        "qty": qty,
        "paid": paid,
        "list": listp,
        "comp": comp,
        "pidx": pidx,
        "conc": _flag_codes(type_codes, type_uniques, opts.get("concession_pattern", "")),
        "subs": _flag_codes(type_codes, type_uniques, opts.get("subscription_pattern", "")),
        "channel": _compact(channel_codes),
        "band": _compact(band_all[rows]),
        "art": _compact(art),
        "season": _compact(_season_year(event, start_month)),
    }
    del visit, art, channel_codes, type_codes, band_all, p, has_perf, missing_start

    # subscription package lines (net of returns: all lines that are not void)
    status = ol[OL.status]
    sub_rows = np.flatnonzero(
        ((ol[OL.item_type] == "subscription") & (status != "void")).to_numpy(dtype=bool)
    )
    reversal = status.isin(["returned", "exchanged"]).to_numpy(dtype=bool)
    reversed_ids = pd.Index(ol[OL.parent_line_id].iloc[np.flatnonzero(reversal)].dropna().unique())
    sub_lines = ol[OL.line_id].iloc[sub_rows]
    not_reversed = reversed_ids.get_indexer(sub_lines) < 0 if len(reversed_ids) else True
    standing = (status.iloc[sub_rows] == "active").to_numpy(dtype=bool) & not_reversed
    subs = {
        "cust": cust_all[sub_rows],
        "time": _ns(ol[OL.purchase_time])[sub_rows],
        "paid": ol[OL.paid_amount].to_numpy(dtype=float)[sub_rows],
        "standing": np.asarray(standing, dtype=bool),
    }

    me = tables.memberships
    memberships = {
        "cust": _codes(me[ME.customer_id], ids),
        "start": _ns(me[ME.start_date]),
        "end": _ns(me[ME.end_date]),
        "amount": me[ME.amount].astype("Float64").fillna(0.0).to_numpy(dtype=float),
    }
    do = tables.donations
    donations = {
        "cust": _codes(do[DO.customer_id], ids),
        "time": _ns(do[DO.donation_date]),
        "amount": do[DO.amount].astype("Float64").fillna(0.0).to_numpy(dtype=float),
    }
    it = tables.interactions
    kind = it[IN.kind]
    clicks = (kind == "email_click").to_numpy(dtype=bool)
    email_rows = np.flatnonzero(clicks | (kind == "email_send").to_numpy(dtype=bool))
    emails = {
        "cust": _codes(it[IN.customer_id].take(email_rows), ids),
        "time": _ns(it[IN.occurred_at])[email_rows],
        "click": clicks[email_rows],
    }
    sr = tables.survey_responses
    sr = sr.loc[sr[SR.nps].notna()].sort_values(SR.responded_at, kind="stable")
    surveys = {
        "cust": _codes(sr[SR.customer_id], ids),
        "time": _ns(sr[SR.responded_at]),
        "nps": sr[SR.nps].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
    }

    cu = tables.customers
    cpos = _codes(cu[CU.customer_id], ids)
    ok = cpos >= 0
    seg_row = np.full(len(ids), -1, dtype=np.int64)  # the customers row of each customer
    seg_row[cpos[ok]] = np.flatnonzero(ok)
    segment = cu[CU.segment_code].astype("string").array.take(seg_row, allow_fill=True)
    excluded = np.zeros(len(ids), dtype=bool)
    excluded[cpos[ok]] = cu[CU.anonymised].fillna(False).to_numpy(dtype=bool)[ok]

    return PreparedLines(
        ids=ids,
        tickets=tickets,
        subs=subs,
        memberships=memberships,
        donations=donations,
        emails=emails,
        surveys=surveys,
        artforms=pd.Index(artforms, dtype="string"),
        bands=pd.Index(bands, dtype="string"),
        segment=segment,
        excluded=excluded,
        start_month=start_month,
        options=opts,
        available=frozenset(tables.available),
    )


# ---------------------------------------------------------------------------
# Vectorised helpers over integer customer codes
# ---------------------------------------------------------------------------
def _sum(cust: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    if weights is None:
        return np.bincount(cust, minlength=n).astype(float)
    return np.bincount(cust, weights=weights, minlength=n)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _unique_pairs(cust: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (customer, value) pairs; returns customers, values and a first row index."""
    base = np.int64(val.max()) + 1 if len(val) else np.int64(1)
    key = cust.astype(np.int64) * base + val.astype(np.int64)
    _, first = np.unique(key, return_index=True)
    return cust[first], val[first], first


def _mode(
    cust: np.ndarray, val: np.ndarray, n: int, weights: np.ndarray | None = None
) -> np.ndarray:
    """Most frequent value code per customer (ties: the lowest code); -1 when none."""
    out = np.full(n, -1, dtype=np.int64)
    ok = val >= 0
    cust, val = cust[ok], val[ok]
    if len(cust) == 0:
        return out
    w = np.ones(len(cust)) if weights is None else weights[ok]
    base = np.int64(val.max()) + 1
    if base * n <= _MODE_TABLE_MAX:  # few distinct values: a customers × values count table
        table = np.bincount(cust.astype(np.int64) * base + val, weights=w, minlength=n * base)
        table = table.reshape(n, base)
        best = table.argmax(axis=1)  # ties: the lowest code
        has = table.max(axis=1) > 0
        out[has] = best[has]
        return out
    key = cust.astype(np.int64) * base + val.astype(np.int64)
    uk, inv = np.unique(key, return_inverse=True)
    totals = np.bincount(inv, weights=w)
    uc, uv = uk // base, uk % base
    order = np.lexsort((uv, -totals, uc))
    uc, uv = uc[order], uv[order]
    first = np.r_[True, uc[1:] != uc[:-1]]
    out[uc[first]] = uv[first]
    return out


def _group_extreme(cust: np.ndarray, values: np.ndarray, n: int, how: str) -> np.ndarray:
    """Per-customer min or max of int64 values (NaT-like minimum when a customer has none)."""
    fill = np.iinfo(np.int64).min
    out = np.full(n, fill, dtype=np.int64)
    if len(cust) == 0:
        return out
    s = pd.Series(values).groupby(cust, sort=False)
    agg = s.min() if how == "min" else s.max()
    out[agg.index.to_numpy()] = agg.to_numpy()
    return out


def _months_before(as_of: pd.Timestamp, months: int) -> np.int64:
    return np.int64((as_of - pd.DateOffset(months=int(months))).value)


def _labels(index: pd.Index, codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Labels of integer codes (-1 gives missing) as a string array."""
    values = pd.array(np.asarray(index.astype(object)), dtype="string")
    return values.take(np.asarray(codes, dtype=np.int64), allow_fill=True)


# ---------------------------------------------------------------------------
# The features
# ---------------------------------------------------------------------------
# columns that need the ticket quantities
_QTY_COLUMNS: tuple[str, ...] = (
    FC.tickets,
    FC.avg_ticket_price,
    FC.price_index,
    FC.avg_lead_days,
    FC.avg_party_size,
    FC.concession_share,
    FC.subscription_share,
    FC.comp_share,
    FC.discount_share,
    FC.preferred_price_band,
    FC.preferred_channel,
    *_CHANNEL_SHARES.values(),
)
_COUNT_COLUMNS = (
    FC.frequency,
    FC.recent_visits,
    FC.seasons_active,
    FC.artform_breadth,
    FC.email_sends,
    FC.email_clicks,
)
_LABEL_COLUMNS = (
    FC.favourite_artform,
    FC.favourite_day,
    FC.preferred_price_band,
    FC.preferred_channel,
)


LADDER_INPUTS: tuple[str, ...] = (
    FC.last_visit,
    FC.frequency,
    FC.recent_visits,
    FC.seasons_active,
    FC.total_spend,
    FC.is_subscriber,
    FC.is_member,
    FC.is_donor,
    FC.latest_nps,
)
"""The features the ladder reads (:func:`playbook.tiers.assign_tiers`)."""


def feature_arrays(
    prep: PreparedLines,
    as_of: pd.Timestamp | str,
    columns: Iterable[str] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features of every coded customer as plain arrays (position = customer code).

    The engine behind :func:`build_features`; ask for a few ``columns`` to skip the
    work the others need (the tier history asks for :data:`LADDER_INPUTS` only).

    Parameters
    ----------
    prep : PreparedLines
        From :func:`prepare`.
    as_of : Timestamp or str
        Only records on or before this instant count.
    columns : iterable of str, optional
        Feature names (:data:`FEATURE_COLUMNS`) to compute; all of them by default.

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        One array per requested column, ``len(prep.ids)`` long, in raw form: visit dates
        as int64 nanoseconds, counts as float, labels as integer codes (-1 for none),
        ``segment_code`` as a string array.
    population : numpy.ndarray of bool
        Customers who had visited by ``as_of`` and are not anonymised (the rows of
        :func:`build_features`).
    """
    want = set(FEATURE_COLUMNS if columns is None else columns)
    unknown = want - set(FEATURE_COLUMNS)
    if unknown:
        raise ValueError(f"Unknown feature columns: {', '.join(sorted(unknown))}")

    def need(*cols: str) -> bool:
        return not want.isdisjoint(cols)

    as_of = pd.Timestamp(as_of)
    now = np.int64(as_of.value)
    opts = prep.options
    window = _months_before(as_of, opts.get("window_months", 12))
    donor_from = _months_before(as_of, opts.get("donor_months", 24))
    n = len(prep.ids)
    out: dict[str, Any] = {}

    tk = prep.tickets
    m = (tk["purchase"] <= now) & (tk["event"] <= now) & (tk["cust"] >= 0)
    everything = bool(m.all())

    def col(key: str) -> np.ndarray:
        """A ticket column restricted to the lines that count (no copy when all do)."""
        return tk[key] if everything else tk[key][m]

    c = col("cust")
    event = col("event")

    # visits: distinct (customer, performance)
    vc, _, vfirst = _unique_pairs(c, col("visit"))
    v_event = event[vfirst]
    frequency = _sum(vc, n)
    population = (frequency > 0) & ~prep.excluded
    if need(FC.recent_visits):
        out[FC.recent_visits] = _sum(vc, n, (v_event > window).astype(float))
    if need(FC.first_visit, FC.tenure_days):
        first = _group_extreme(vc, v_event, n, "min")
        out[FC.first_visit] = first
        out[FC.tenure_days] = (now - np.where(population, first, now)) / _NS_PER_DAY
    if need(FC.last_visit, FC.recency_days):
        last = _group_extreme(vc, v_event, n, "max")
        out[FC.last_visit] = last
        out[FC.recency_days] = (now - np.where(population, last, now)) / _NS_PER_DAY
    out[FC.frequency] = frequency
    if need(FC.seasons_active):
        sc, _, _ = _unique_pairs(vc, col("season")[vfirst])
        out[FC.seasons_active] = _sum(sc, n)
    if need(FC.artform_breadth, FC.favourite_artform):
        v_art = col("art")[vfirst]
        has_art = v_art >= 0
        ac, _, _ = _unique_pairs(vc[has_art], v_art[has_art])
        out[FC.artform_breadth] = _sum(ac, n)
        out[FC.favourite_artform] = _mode(vc, v_art, n)
        del v_art, has_art, ac
    if need(FC.weekend_share, FC.matinee_share, FC.favourite_day):
        dow = ((v_event // _NS_PER_DAY) + 3) % 7  # 1970-01-01 was a Thursday (3)
        hour = (v_event % _NS_PER_DAY) // (3600 * 10**9)
        weekend = np.isin(dow, list(opts.get("weekend_days", [5, 6])))
        matinee = hour < int(opts.get("matinee_before_hour", 17))
        out[FC.weekend_share] = _ratio(_sum(vc, n, weekend.astype(float)), frequency)
        out[FC.matinee_share] = _ratio(_sum(vc, n, matinee.astype(float)), frequency)
        out[FC.favourite_day] = _mode(vc, dow, n)
        del dow, hour, weekend, matinee
    del vc, vfirst, v_event

    # ticket lines: money, party sizes, prices and shares
    paid = col("paid")
    spend = _sum(c, n, paid)
    out[FC.ticket_spend] = spend
    qty = col("qty") if need(*_QTY_COLUMNS) else None
    if qty is not None:
        tickets = _sum(c, n, qty)
        out[FC.tickets] = tickets

    # subscriptions
    s = prep.subs
    sm = (s["time"] <= now) & (s["cust"] >= 0)
    sub_spend = _sum(s["cust"][sm], n, s["paid"][sm])
    if need(FC.is_subscriber):
        recent_sub = sm & s["standing"] & (s["time"] > window)
        subscriber = _sum(s["cust"][recent_sub], n) > 0
        subscriber |= _sum(c, n, (col("subs") & (event > window)).astype(float)) > 0
        out[FC.is_subscriber] = subscriber

    # memberships
    me = prep.memberships
    mm = (me["start"] <= now) & (me["cust"] >= 0)
    mem_spend = _sum(me["cust"][mm], n, me["amount"][mm])
    ever_member = _sum(me["cust"][mm], n) > 0
    current = mm & (me["end"] + _NS_PER_DAY > now)
    member = _sum(me["cust"][current], n) > 0

    # donations
    do = prep.donations
    dm = (do["time"] <= now) & (do["cust"] >= 0)
    don_spend = _sum(do["cust"][dm], n, do["amount"][dm])
    donor = _sum(do["cust"][dm & (do["time"] > donor_from)], n) > 0

    out[FC.subscription_spend] = sub_spend
    out[FC.membership_spend] = mem_spend
    out[FC.donation_spend] = don_spend
    out[FC.total_spend] = spend + sub_spend + mem_spend + don_spend
    if need(FC.recent_spend):
        out[FC.recent_spend] = (
            _sum(c, n, paid * (col("purchase") > window))
            + _sum(s["cust"][sm], n, s["paid"][sm] * (s["time"][sm] > window))
            + _sum(me["cust"][mm], n, me["amount"][mm] * (me["start"][mm] > window))
            + _sum(do["cust"][dm], n, do["amount"][dm] * (do["time"][dm] > window))
        )
    if qty is not None:
        comp = col("comp")
        if need(FC.avg_ticket_price):
            out[FC.avg_ticket_price] = _ratio(spend, _sum(c, n, qty * ~comp))
        if need(FC.avg_lead_days):
            lead_ok = col("has_start")
            lead = (event[lead_ok] - col("purchase")[lead_ok]) / _NS_PER_DAY
            out[FC.avg_lead_days] = _ratio(_sum(c[lead_ok], n, lead), _sum(c[lead_ok], n))
            del lead_ok, lead
        if need(FC.price_index):
            pidx = col("pidx")
            has_pidx = np.isfinite(pidx)
            out[FC.price_index] = _ratio(
                _sum(c[has_pidx], n, (pidx * qty)[has_pidx]), _sum(c[has_pidx], n, qty[has_pidx])
            )
            del pidx, has_pidx
        out[FC.avg_party_size] = _ratio(tickets, frequency)
        if need(FC.concession_share):
            out[FC.concession_share] = _ratio(_sum(c, n, qty * col("conc")), tickets)
        if need(FC.subscription_share):
            out[FC.subscription_share] = _ratio(_sum(c, n, qty * col("subs")), tickets)
        out[FC.comp_share] = _ratio(_sum(c, n, qty * comp), tickets)
        if need(FC.discount_share):
            listp = col("list")
            priced = ~comp & (listp > 0) & np.isfinite(listp)
            list_sum = _sum(c[priced], n, listp[priced])
            paid_on_list = _sum(c[priced], n, paid[priced])
            out[FC.discount_share] = np.clip(1 - _ratio(paid_on_list, list_sum), 0, 1)
            del listp, priced
        if need(FC.preferred_price_band):
            out[FC.preferred_price_band] = _mode(c, col("band"), n, qty)
        if need(FC.preferred_channel, *_CHANNEL_SHARES.values()):
            channel = col("channel")
            for code, name in enumerate(SALES_CHANNELS):
                share = _ratio(_sum(c, n, qty * (channel == code)), tickets)
                out[_CHANNEL_SHARES[name]] = share
            out[FC.preferred_channel] = _mode(c, channel, n, qty)
            del channel
        del comp
    out[FC.is_member] = member
    out[FC.ever_member] = ever_member
    out[FC.is_donor] = donor

    if need(FC.email_sends, FC.email_clicks, FC.email_click_rate):
        # email engagement in the recent window
        e = prep.emails
        em = (e["time"] <= now) & (e["time"] > window) & (e["cust"] >= 0)
        sends = _sum(e["cust"][em & ~e["click"]], n)
        clicks = _sum(e["cust"][em & e["click"]], n)
        out[FC.email_sends] = sends
        out[FC.email_clicks] = clicks
        out[FC.email_click_rate] = np.clip(_ratio(clicks, sends), 0, 1)

    if need(FC.latest_nps):
        # latest NPS (survey rows are sorted by time, so the last one per customer wins)
        sv = prep.surveys
        svm = (sv["time"] <= now) & (sv["cust"] >= 0)
        nps = np.full(n, np.nan)
        nps[sv["cust"][svm]] = sv["nps"][svm]
        out[FC.latest_nps] = nps
    if need(FC.segment_code):
        out[FC.segment_code] = prep.segment
    return {k: out[k] for k in FEATURE_COLUMNS if k in want}, population


def build_features(
    tables: Tables | PreparedLines,
    as_of: pd.Timestamp | str | None = None,
    cfg: OrgConfig | None = None,
) -> pd.DataFrame:
    """One row per customer with their behaviour up to ``as_of``.

    Parameters
    ----------
    tables : Tables or PreparedLines
        Canonical tables, or the result of :func:`prepare` (faster when called for
        several dates).
    as_of : Timestamp or str, optional
        Only records on or before this instant count. Default: the end of the latest
        complete season (use ``ctx.as_of`` in notebooks).
    cfg : OrgConfig, optional
        Organisation settings (the ``features`` section); package defaults if absent.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (sorted), columns listed in :data:`FEATURE_DOCS`
        (names in :class:`FeatureCols`). Customers who have not visited by ``as_of`` are
        absent; anonymised customers are left out.
    """
    prep = tables if isinstance(tables, PreparedLines) else prepare(tables, cfg)
    if as_of is None:
        if isinstance(tables, PreparedLines):
            raise ValueError("as_of is required when passing prepared lines")
        as_of = default_as_of(tables, prep.start_month)
    as_of = pd.Timestamp(as_of)
    arrays, population = feature_arrays(prep, as_of)
    rows = np.flatnonzero(population)
    label_index = {
        FC.favourite_artform: prep.artforms,
        FC.favourite_day: pd.Index(DAY_NAMES),
        FC.preferred_price_band: prep.bands,
        FC.preferred_channel: pd.Index(SALES_CHANNELS),
    }
    data: dict[str, Any] = {}
    for name in FEATURE_COLUMNS:  # each full-length array is dropped once its rows are taken
        values = arrays.pop(name)[rows]
        if name in (FC.first_visit, FC.last_visit):
            values = values.view("datetime64[ns]")
        elif name in _COUNT_COLUMNS:
            values = values.astype("int64")
        elif name == FC.tickets:
            values = values.round().astype("int64")
        elif name in _LABEL_COLUMNS:
            values = _labels(label_index[name], values)
        elif name == FC.segment_code:
            values = pd.array(values, dtype="string")
        data[name] = values
    # every column is a fresh array: no consolidating copy of the table
    frame = pd.DataFrame(data, index=prep.ids[rows], copy=False)
    del data
    frame.index.name = FC.customer_id
    frame.attrs["as_of"] = as_of
    frame.attrs["available"] = sorted(prep.available)
    return frame


def empty_features() -> pd.DataFrame:
    """A features frame with no rows (right columns, right index name)."""
    frame = pd.DataFrame(columns=list(FEATURE_COLUMNS))
    frame.index = pd.Index([], dtype="string", name=FC.customer_id)
    return frame


_SUMMARY_DAYS = (FC.recency_days, FC.tenure_days, FC.avg_lead_days)
_SUMMARY_MONEY = (
    FC.ticket_spend,
    FC.recent_spend,
    FC.subscription_spend,
    FC.membership_spend,
    FC.donation_spend,
    FC.total_spend,
    FC.avg_ticket_price,
)


def _typical(col: str, value: float, currency: str) -> str:
    """A median in words: whole days, money in the currency, shares as percentages."""
    from playbook.report import format_money

    if col in _SUMMARY_DAYS:
        days = int(round(value))
        return f"median {days:,} day" + ("" if days == 1 else "s")
    if col in _SUMMARY_MONEY:
        whole = abs(value) >= 100 or float(value).is_integer()
        return f"median {format_money(value, currency, 0 if whole else 2)}"
    if col.endswith("_share") or col == FC.email_click_rate:
        return f"median {value:.0%}"
    if float(value).is_integer():
        return f"median {value:,.0f}"
    return f"median {value:,.2f}"


def feature_summary(
    features: pd.DataFrame, min_group: int = 10, currency: str = "GBP"
) -> pd.DataFrame:
    """A data dictionary of the features: meaning, a typical value and the share filled.

    Only whole-population statistics are shown, never a single customer; with fewer
    customers than ``min_group`` the typical values are hidden too. Typical values are
    written for reading aloud: days as whole days, money in ``currency`` (``£63``,
    ``£28.25``), shares as percentages.
    """
    if len(features) < min_group:
        out = pd.DataFrame({"feature": list(FEATURE_DOCS), "meaning": list(FEATURE_DOCS.values())})
        out["typical"] = "–"
        out["filled"] = np.nan
        out.attrs["suppressed"] = 1
        return out
    rows = []
    for col, doc in FEATURE_DOCS.items():
        if col not in features or col in (FC.first_visit, FC.last_visit):
            continue
        s = features[col]
        if pd.api.types.is_bool_dtype(s):
            rows.append({"feature": col, "meaning": doc, "typical": f"{s.mean():.0%} yes"})
            continue
        if not pd.api.types.is_numeric_dtype(s):
            top = s.dropna().value_counts()
            name = top.index[0] if len(top) else ""
            if col == FC.preferred_channel:
                from playbook.report import channel_words  # as the report names channels

                name = channel_words(name)
            typical = f"{name} ({top.iloc[0] / len(s):.0%})" if len(top) else "–"
            rows.append({"feature": col, "meaning": doc, "typical": typical})
            continue
        filled = s.notna().mean() if len(s) else 0.0
        med = s.median()
        rows.append(
            {
                "feature": col,
                "meaning": doc,
                "typical": "–" if pd.isna(med) else _typical(col, float(med), currency),
                "filled": filled,
            }
        )
    out = pd.DataFrame(rows)
    if "filled" not in out:
        out["filled"] = np.nan
    out["filled"] = out["filled"].fillna(1.0)
    return out


def artform_shares(
    tables: Tables | PreparedLines,
    as_of: pd.Timestamp | str,
    cfg: OrgConfig | None = None,
    *,
    top: int = 8,
) -> pd.DataFrame:
    """Share of each customer's visits by artform (the ``top`` commonest artforms).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (same customers as :func:`build_features`), one
        column ``art_<artform>`` per artform; rows sum to at most 1.
    """
    prep = tables if isinstance(tables, PreparedLines) else prepare(tables, cfg)
    now = np.int64(pd.Timestamp(as_of).value)
    t = prep.tickets
    m = (t["purchase"] <= now) & (t["event"] <= now) & (t["cust"] >= 0)
    vc, _, vfirst = _unique_pairs(t["cust"][m], t["visit"][m])
    v_art = t["art"][m][vfirst]
    n = len(prep.ids)
    freq = _sum(vc, n)
    rows = np.flatnonzero((freq > 0) & ~prep.excluded)
    counts = np.bincount(v_art[v_art >= 0], minlength=len(prep.artforms))
    keep = np.argsort(-counts, kind="stable")[: max(top, 0)]
    keep = [k for k in keep if counts[k] > 0]
    data = {}
    for k in keep:
        data[f"art_{prep.artforms[k]}"] = _ratio(_sum(vc, n, (v_art == k).astype(float)), freq)[
            rows
        ]
    frame = pd.DataFrame(data, index=prep.ids[rows])
    frame.index.name = FC.customer_id
    return frame


# ---------------------------------------------------------------------------
# The slow way, for the benchmark and as an independent check in the tests
# ---------------------------------------------------------------------------
def naive_features_baseline(
    tables: Tables, as_of: pd.Timestamp | str, start_month: int = 9
) -> pd.DataFrame:
    """A few feature columns computed the slow way: ``groupby(customer).apply``.

    Deliberately naive (one Python function call per customer), kept only as the
    benchmark's baseline and as an independent check of :func:`build_features`.
    Same population rules (visits by ``as_of``, cancelled performances and anonymised
    customers left out).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``frequency``, ``tickets``, ``ticket_spend``,
        ``recency_days``, ``seasons_active``, ``favourite_artform``.
    """
    as_of = pd.Timestamp(as_of)
    tk = effective_tickets(tables.order_lines)
    tk = tk.loc[tk[OL.purchase_time] <= as_of]
    perf = tables.performances[[PF.performance_id, PF.production_id, PF.start_time, PF.cancelled]]
    lines = tk.merge(perf, on=OL.performance_id, how="left").merge(
        tables.productions[[PR.production_id, PR.artform]], on=PR.production_id, how="left"
    )
    lines = lines.loc[~lines[PF.cancelled].fillna(False).astype(bool)]
    lines["event"] = lines[PF.start_time].fillna(lines[OL.purchase_time])
    lines = lines.loc[lines["event"] <= as_of]
    anonymised = tables.customers.loc[tables.customers[CU.anonymised], CU.customer_id]
    lines = lines.loc[~isin(lines[OL.customer_id], anonymised)]
    lines["visit"] = lines[OL.performance_id].fillna("order " + lines[OL.order_id])

    def one(g: pd.DataFrame) -> pd.Series:
        visits = g.drop_duplicates("visit")
        arts = visits[PR.artform].dropna().value_counts()
        fav = sorted(arts[arts == arts.max()].index)[0] if len(arts) else pd.NA
        seasons = season_of(visits["event"], start_month).nunique()
        return pd.Series(
            {
                FC.frequency: len(visits),
                FC.tickets: g[OL.quantity].sum(),
                FC.ticket_spend: g[OL.paid_amount].sum(),
                FC.recency_days: (as_of - g["event"].max()) / pd.Timedelta(days=1),
                FC.seasons_active: seasons,
                FC.favourite_artform: fav,
            }
        )

    out = lines.groupby(OL.customer_id).apply(one)
    out.index = out.index.astype("string")
    out.index.name = FC.customer_id
    return out


def feature_options(cfg: OrgConfig | None = None) -> Mapping[str, Any]:
    """The ``features`` settings in force (for the notebook's 'how we counted' note)."""
    return settings(cfg, "features")
