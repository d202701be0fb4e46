"""The canonical tables reduced once to integer-coded arrays, for fast as-of evaluation.

:func:`prepare_moments` runs one pass over the data; every trigger then filters these
arrays by an as-of instant, so evaluating the whole library for a million customers, or
replaying it over fifty-two weekly dates, never loops over customers in Python.

Time travel is honest: a ticket counts at an as-of instant only if it was bought by then
and not yet returned or exchanged by then (a later return does not reach back).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from playbook.schema import Consents as CO
from playbook.schema import Customers as CU
from playbook.schema import Donations as DO
from playbook.schema import Interactions as IN
from playbook.schema import Memberships as ME
from playbook.schema import OrderLines as OL
from playbook.schema import Performances as PF
from playbook.schema import Productions as PR
from playbook.schema import SurveyResponses as SR
from playbook.tables import Tables

NS_PER_DAY = 86_400 * 10**9
NEVER = np.iinfo(np.int64).max  # "not (yet) happened"
Arrays = dict[str, np.ndarray]


def ns(s: pd.Series) -> np.ndarray:
    """Datetimes as int64 nanoseconds (missing becomes the minimum int64)."""
    return pd.to_datetime(s).astype("datetime64[ns]").to_numpy().view("int64")


def codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent or missing).

    The values are factorised first, so only their distinct values are looked up: a
    few hundred performances over millions of ticket lines cost almost nothing.
    """
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    local, uniques = pd.factorize(values.astype("string"))
    if len(uniques) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    pos = index.get_indexer(pd.Index(uniques, dtype="string"))
    return np.where(local >= 0, pos[np.maximum(local, 0)], -1).astype(np.int64)


def gather(values: np.ndarray, idx: np.ndarray, default: object) -> np.ndarray:
    """``values[idx]`` where ``idx >= 0``, ``default`` elsewhere (safe on empty ``values``)."""
    idx = np.asarray(idx, dtype=np.int64)
    if len(values) == 0:
        return np.full(len(idx), default, dtype=np.asarray(values).dtype)
    return np.where(idx >= 0, values[np.maximum(idx, 0)], default)


def lookup(keys: pd.Series, mapping: pd.Series) -> pd.Series:
    """``keys.map(mapping)`` that also works for an empty datetime ``mapping``."""
    out = mapping.reindex(pd.Index(keys.to_numpy()))
    out.index = keys.index
    return out


def take(arrays: Arrays, mask: np.ndarray) -> Arrays:
    """Rows of a dict of equal-length arrays."""
    return {k: v[mask] for k, v in arrays.items()}


@dataclass
class MomentData:
    """Everything the triggers read, as integer codes and int64 nanosecond times.

    Attributes
    ----------
    ids : pandas.Index
        Customer ids; position = integer code used in every array.
    anonymised : numpy.ndarray
        Per customer: flagged anonymised (never appears in moments).
    birth_month, birth_day : numpy.ndarray
        Per customer (0 when unknown).
    tickets : dict of arrays
        One row per original ticket line (``cust, purchase, event, perf, prod, art,
        order, visit, reversed_at, cancelled, paid``), sorted by customer and purchase.
    reversals : dict of arrays
        Returns and exchanges (``cust, time, reason, perf, prod``).
    money : dict of arrays
        Every payment (tickets, subscriptions, memberships, donations; returns net),
        sorted by customer and time, with the running total ``cum`` per customer.
    memberships, donations, clicks, surveys : dict of arrays
    perf_start, perf_prod, perf_cancelled : numpy.ndarray
        Per performance code.
    prod_ids, titles, artforms : pandas.Index
        Production ids and titles by production code; artform names by artform code.
    prod_art : numpy.ndarray
        Artform code per production code (-1 unknown).
    consent : dict of str to numpy.ndarray
        Per consent channel, a boolean per customer: status ``granted``.
    available : frozenset of str
        Tables with rows, plus ``table.column`` entries for optional columns with values.
    """

    ids: pd.Index
    anonymised: np.ndarray
    birth_month: np.ndarray
    birth_day: np.ndarray
    tickets: Arrays
    reversals: Arrays
    money: Arrays
    memberships: Arrays
    donations: Arrays
    clicks: Arrays
    surveys: Arrays
    perf_start: np.ndarray
    perf_prod: np.ndarray
    perf_cancelled: np.ndarray
    prod_ids: pd.Index
    titles: pd.Index
    artforms: pd.Index
    prod_art: np.ndarray
    consent: dict[str, np.ndarray]
    available: frozenset[str]
    tables: Tables | None = field(default=None, repr=False)
    cache: dict = field(default_factory=dict, repr=False)  # as-of independent results

    @property
    def n(self) -> int:
        """Number of customers (codes run from 0 to n - 1)."""
        return len(self.ids)

    def has(self, need: str) -> bool:
        """Whether a ``needs`` entry (table or ``table.column``) is satisfied."""
        return need in self.available

    # ----- as-of views ------------------------------------------------------
    def standing(self, t: np.int64) -> np.ndarray:
        """Mask of ticket rows bought by ``t`` and not returned or exchanged by ``t``."""
        tk = self.tickets
        return (tk["purchase"] <= t) & (tk["reversed_at"] > t)

    def bookings(self, t: np.int64) -> Arrays:
        """Distinct (customer, visit) bookings standing at ``t``, cancelled ones left out.

        Sorted by customer then purchase time; ``purchase`` is the first purchase.
        """
        tk = self.tickets
        m = self.standing(t) & ~tk["cancelled"]
        rows = {k: tk[k][m] for k in _BOOKING_COLUMNS}
        if len(rows["cust"]) == 0:
            return rows
        key = rows["cust"].astype(np.int64) * (np.int64(1) << 32) + rows["visit"]
        _, first = np.unique(key, return_index=True)
        first.sort()
        return take(rows, first)

    def visits(self, t: np.int64) -> Arrays:
        """Visits that happened by ``t``: standing bookings whose performance has started.

        Sorted by customer then performance time.
        """
        b = self.bookings(t)
        v = take(b, b["event"] <= t)
        order = np.lexsort((v["event"], v["cust"]))
        return take(v, order)

    def spend_between(self, lo: np.int64, hi: np.int64) -> np.ndarray:
        """Money paid per customer in ``(lo, hi]``."""
        m = self.money
        sel = (m["time"] > lo) & (m["time"] <= hi)
        return np.bincount(m["cust"][sel], weights=m["amount"][sel], minlength=self.n)


_BOOKING_COLUMNS = ("cust", "purchase", "event", "perf", "prod", "art", "visit")


_CUSTOMER_TABLES = (
    "order_lines",
    "customers",
    "consents",
    "memberships",
    "donations",
    "interactions",
    "survey_responses",
)


def _customer_codes(tables: Tables) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """Customer ids (in order of first appearance) and each table's codes, in one pass."""
    names = [t for t in _CUSTOMER_TABLES if len(tables[t])]
    cols = [tables[t]["customer_id"].astype("string") for t in names]
    if not cols:
        return pd.Index([], dtype="string"), {t: np.zeros(0, np.int64) for t in _CUSTOMER_TABLES}
    local, uniques = pd.factorize(pd.concat(cols, ignore_index=True))
    local = local.astype(np.int64)
    out = {t: np.zeros(0, dtype=np.int64) for t in _CUSTOMER_TABLES}
    start = 0
    for t, c in zip(names, cols, strict=True):
        out[t] = local[start : start + len(c)]
        start += len(c)
    return pd.Index(uniques, dtype="string"), out


def prepare_moments(tables: Tables) -> MomentData:
    """Reduce the canonical tables to the arrays the triggers read (one pass).

    Parameters
    ----------
    tables : Tables
        Canonical tables (:func:`playbook.tables.load_tables`); only ``order_lines`` is
        required.

    Returns
    -------
    MomentData
    """
    ids, cust_codes = _customer_codes(tables)
    n = len(ids)
    available: set[str] = set(tables.available)

    # productions and performances -------------------------------------------------
    prods = tables.productions
    perfs = tables.performances
    ol = tables.order_lines
    prod_ids = pd.Index(
        pd.concat([prods[PR.production_id], perfs[PF.production_id]])
        .dropna()
        .astype("string")
        .unique()
    )
    titles_by = prods.set_index(PR.production_id)[PR.title]
    titles_by.index = titles_by.index.astype("string")
    titles = pd.Index(titles_by.reindex(prod_ids).astype("string").fillna(""))
    art_src = prods.set_index(PR.production_id)[PR.artform]
    art_src.index = art_src.index.astype("string")
    art_src = art_src.reindex(prod_ids).astype("string")
    artforms = pd.Index(art_src.dropna().unique()).sort_values()
    prod_art = codes(art_src, artforms) if len(prod_ids) else np.zeros(0, dtype=np.int64)
    if prods[PR.artform].notna().any():
        available.add("productions.artform")
    perf_ids = pd.Index(
        pd.concat([perfs[PF.performance_id], ol[OL.performance_id]])
        .dropna()
        .astype("string")
        .unique()
    )
    pf = perfs.set_index(perfs[PF.performance_id].astype("string"))
    pf = pf[~pf.index.duplicated()].reindex(perf_ids)
    perf_start = ns(pf[PF.start_time])
    perf_prod = codes(pf[PF.production_id], prod_ids)
    perf_cancelled = pf[PF.cancelled].fillna(False).to_numpy(dtype=bool)

    # tickets: original active lines, with the time they were reversed (if ever) -------
    item = ol[OL.item_type].astype("string")
    status = ol[OL.status].astype("string")
    is_ticket = (item == "ticket").to_numpy(dtype=bool, na_value=False)
    orig = is_ticket & (status == "active").to_numpy(dtype=bool, na_value=False)
    rev = is_ticket & status.isin(["returned", "exchanged"]).to_numpy(dtype=bool, na_value=False)
    ol_cust = cust_codes["order_lines"]
    ol_time = ns(ol[OL.purchase_time])
    ol_perf = codes(ol[OL.performance_id], perf_ids)
    # one code space for line ids and the parent ids of reversing lines
    line_ids = ol[OL.line_id].astype("string")
    lcodes, luniq = pd.factorize(
        pd.concat([line_ids, ol[OL.parent_line_id].astype("string")[rev]], ignore_index=True)
    )
    line_code, parent_code = lcodes[: len(ol)], lcodes[len(ol) :]
    row_of = np.full(len(luniq), -1, dtype=np.int64)
    orig_rows = np.flatnonzero(orig)
    row_of[line_code[orig_rows]] = orig_rows
    rev_rows = np.flatnonzero(rev)
    parent_row = np.where(parent_code >= 0, row_of[np.maximum(parent_code, 0)], -1)
    reversed_at = np.full(len(ol), NEVER, dtype=np.int64)
    linked = parent_row >= 0
    np.minimum.at(reversed_at, parent_row[linked], ol_time[rev_rows[linked]])

    cust = ol_cust[orig]
    purchase = ol_time[orig]
    perf = ol_perf[orig]
    has_perf = perf >= 0
    start = gather(perf_start, perf, np.iinfo(np.int64).min)
    start = np.where(start == np.iinfo(np.int64).min, purchase, start)
    prod = gather(perf_prod, perf, -1)
    order = pd.factorize(ol[OL.order_id].astype("string"))[0].astype(np.int64)[orig]
    # a visit is a performance; a ticket without one is its own order's visit
    visit = np.where(has_perf, perf, -(order + 2))
    tickets = {
        "cust": cust,
        "purchase": purchase,
        "event": start,
        "perf": perf,
        "prod": prod,
        "art": gather(prod_art, prod, -1),
        "order": order,
        "visit": visit.astype(np.int64),
        "reversed_at": reversed_at[orig],
        "cancelled": gather(perf_cancelled, perf, False).astype(bool),
        "paid": ol[OL.paid_amount].to_numpy(dtype=float)[orig],
    }
    tickets = take(tickets, cust >= 0)
    o = np.lexsort((tickets["purchase"], tickets["cust"]))
    tickets = take(tickets, o)

    # returns and exchanges -------------------------------------------------------
    rperf = ol_perf[rev]
    parent_perf = np.where(parent_row >= 0, ol_perf[np.maximum(parent_row, 0)], -1)
    rperf = np.where(rperf >= 0, rperf, parent_perf)
    reversals = {
        "cust": ol_cust[rev],
        "time": ol_time[rev],
        "reason": np.where(status.to_numpy(dtype=object)[rev] == "exchanged", "exchange", "return"),
        "perf": rperf,
        "prod": gather(perf_prod, rperf, -1),
    }
    reversals = take(reversals, reversals["cust"] >= 0)

    # money: tickets and subscriptions (returns net), memberships, donations ---------
    paid = (is_ticket | (item == "subscription").to_numpy(dtype=bool, na_value=False)) & (
        status != "void"
    ).to_numpy(dtype=bool, na_value=True)
    ms = tables.memberships
    do = tables.donations
    money = {
        "cust": np.concatenate([ol_cust[paid], cust_codes["memberships"], cust_codes["donations"]]),
        "time": np.concatenate([ol_time[paid], ns(ms[ME.start_date]), ns(do[DO.donation_date])]),
        "amount": np.concatenate(
            [
                ol[OL.paid_amount].to_numpy(dtype=float)[paid],
                ms[ME.amount].fillna(0.0).to_numpy(dtype=float),
                do[DO.amount].to_numpy(dtype=float),
            ]
        ),
    }
    money = take(money, money["cust"] >= 0)
    o = np.lexsort((money["time"], money["cust"]))
    money = take(money, o)
    money["cum"] = pd.Series(money["amount"]).groupby(money["cust"]).cumsum().to_numpy()

    # memberships -------------------------------------------------------------------
    mcust = cust_codes["memberships"]
    memberships = {
        "cust": mcust,
        "start": ns(ms[ME.start_date]),
        "end": ns(ms[ME.end_date]),
        "new": (ms[ME.membership_type].astype("string") == "new")
        .fillna(False)
        .to_numpy(dtype=bool),
        "scheme": ms[ME.scheme].astype("string").fillna("").to_numpy(dtype=object),
    }
    memberships = take(memberships, mcust >= 0)
    o = np.lexsort((memberships["start"], memberships["cust"]))
    memberships = take(memberships, o)
    # a customer's first term counts as a first year even when not typed "new"
    first_term = (
        np.r_[True, memberships["cust"][1:] != memberships["cust"][:-1]]
        if len(o)
        else np.zeros(0, bool)
    )
    memberships["first_year"] = memberships["new"] | first_term

    donations = {"cust": cust_codes["donations"], "time": ns(do[DO.donation_date])}
    donations = take(donations, donations["cust"] >= 0)

    # email clicks on a production --------------------------------------------------
    it = tables.interactions
    if it[IN.production_id].notna().any():
        available.add("interactions.production_id")
    is_click = ((it[IN.kind] == "email_click") & it[IN.production_id].notna()).to_numpy(
        dtype=bool, na_value=False
    )
    ck = it.loc[is_click]
    clicks = {
        "cust": cust_codes["interactions"][is_click],
        "time": ns(ck[IN.occurred_at]),
        "prod": codes(ck[IN.production_id], prod_ids),
    }
    clicks = take(clicks, (clicks["cust"] >= 0) & (clicks["prod"] >= 0))

    # surveys -----------------------------------------------------------------------
    sv = tables.survey_responses
    if sv[SR.nps].notna().any():
        available.add("survey_responses.nps")
    scored = sv[SR.nps].notna().to_numpy(dtype=bool)
    scust = cust_codes["survey_responses"][scored]
    sv = sv.loc[scored]
    sperf = codes(sv[SR.performance_id], perf_ids)
    surveys = {
        "cust": scust,
        "time": ns(sv[SR.responded_at]),
        "nps": sv[SR.nps].to_numpy(dtype=float),
        "prod": gather(perf_prod, sperf, -1),
    }
    surveys = take(surveys, surveys["cust"] >= 0)

    # customers and consents -------------------------------------------------------------
    cu = tables.customers
    ccode = cust_codes["customers"]
    ok = ccode >= 0
    anonymised = np.zeros(n, dtype=bool)
    anonymised[ccode[ok]] = cu[CU.anonymised].to_numpy(dtype=bool)[ok]
    birth_month = np.zeros(n, dtype=np.int64)
    birth_day = np.zeros(n, dtype=np.int64)
    bm = cu[CU.birth_month].fillna(0).to_numpy(dtype=np.int64)
    bd = cu[CU.birth_day].fillna(0).to_numpy(dtype=np.int64)
    birth_month[ccode[ok]] = bm[ok]
    birth_day[ccode[ok]] = bd[ok]
    if ((birth_month > 0) & (birth_day > 0)).any():
        available.add("customers.birth_month")
    consent: dict[str, np.ndarray] = {}
    cs = tables.consents
    granted = (cs[CO.status] == "granted").to_numpy(dtype=bool, na_value=False)
    channel = cs[CO.channel].astype("string").to_numpy(dtype=object)
    for name in pd.unique(channel[granted]):
        flag = np.zeros(n, dtype=bool)
        c = cust_codes["consents"][granted & (channel == name)]
        flag[c[c >= 0]] = True
        consent[str(name)] = flag

    return MomentData(
        ids=ids,
        anonymised=anonymised,
        birth_month=birth_month,
        birth_day=birth_day,
        tickets=tickets,
        reversals=reversals,
        money=money,
        memberships=memberships,
        donations=donations,
        clicks=clicks,
        surveys=surveys,
        perf_start=perf_start,
        perf_prod=perf_prod,
        perf_cancelled=perf_cancelled,
        prod_ids=prod_ids,
        titles=titles,
        artforms=artforms,
        prod_art=prod_art,
        consent=consent,
        available=frozenset(available),
        tables=tables,
    )
