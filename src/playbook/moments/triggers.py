"""The built-in triggers: one registered function each, vectorised over all customers.

Each function receives an :class:`Evaluation` (the prepared data, the as-of instant,
the range of due dates asked for and the trigger's settings) and returns one row per
moment as a dict of equal-length arrays (:func:`frame`; times are int64 nanoseconds,
dates at midnight):

``cust`` (customer code), ``fired`` (the event that sparked it), ``due`` (when to act),
and optionally ``expires`` (last useful day, default ``due + window_days``), ``prod``
(production code), ``event`` (the performance time it refers to), ``detail`` (short
non-personal context such as "10th visit"), ``weight`` (multiplies the likelihood, e.g.
first-year members) and ``key`` (tells apart two moments of one trigger for one
customer on the same day).

Only facts known at the as-of instant are used. A trigger may return moments due in
the future only when they are certain given what is known (a birthday, a booked
performance, a membership end date); conditional ones (the second-date nudge) are
returned only once due.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from playbook.moments.data import (
    NEVER,
    NS_PER_DAY,
    Arrays,
    MomentData,
    gather,
    lexsort,
    locate,
    rows_of,
    take,
)
from playbook.moments.library import trigger


@dataclass
class Evaluation:
    """What a trigger function reads: data, the as-of instant and its settings."""

    data: MomentData
    t: np.int64  # as-of instant (ns)
    due_from: np.int64  # earliest due date asked for (ns, midnight)
    due_to: np.int64  # latest due date asked for (ns, midnight)
    params: Mapping[str, Any] = field(default_factory=dict)
    window_days: int = 0
    features: pd.DataFrame | None = None
    clv: pd.DataFrame | None = None
    currency: str = "GBP"
    shared: dict[str, Any] = field(default_factory=dict)  # views shared by all triggers
    # exact: only moments due in [due_from, due_to] are wanted (a backtest week), so a
    # trigger may leave out early the customers that cannot have one
    exact: bool = False
    only: np.ndarray | None = None  # sorted customer codes the views are restricted to

    @property
    def today(self) -> np.int64:
        """Midnight of the as-of day."""
        return day(self.t)

    def among(self, cust: np.ndarray) -> Evaluation:
        """The same evaluation with bookings and visits of the customers ``cust`` only.

        ``cust`` are sorted distinct codes. Every view is per customer, so a trigger run
        on it returns exactly the full run's rows for these customers, in the same order.
        """
        return replace(self, only=np.asarray(cust, dtype=np.int64), shared={})

    def due_in(self, due: np.ndarray) -> np.ndarray:
        """Mask: due dates within the range asked for."""
        return (due >= self.due_from) & (due <= self.due_to)

    @cached_property
    def bookings(self) -> Arrays:
        """Standing bookings at the as-of instant (shared between triggers)."""
        if "bookings" not in self.shared:
            self.shared["bookings"] = self.data.bookings(self.t, self.only)
        return self.shared["bookings"]

    @cached_property
    def visits(self) -> Arrays:
        """Visits that happened by the as-of instant (shared between triggers)."""
        if "visits" not in self.shared:
            self.shared["visits"] = self.data.visits(self.t, self.bookings)
        return self.shared["visits"]

    @cached_property
    def last_visits(self) -> Arrays:
        """Each customer's last visit by the as-of instant (shared between triggers)."""
        if "last_visits" not in self.shared:
            v = self.visits
            self.shared["last_visits"] = take(v, last_of_group(v["cust"]))
        return self.shared["last_visits"]


# ---------------------------------------------------------------------------
# Small vectorised helpers
# ---------------------------------------------------------------------------
def day(x: np.ndarray | np.int64 | int) -> Any:
    """Midnight of each instant (int64 ns)."""
    return (np.asarray(x, dtype=np.int64) // NS_PER_DAY) * NS_PER_DAY


def days(n: Any) -> Any:
    """``n`` days in nanoseconds."""
    return np.asarray(n, dtype=np.int64) * NS_PER_DAY


# Columns a trigger may return, with the value used when it does not.
DEFAULTS: dict[str, Any] = {
    "expires": -1,  # -1: due + the trigger's window_days
    "prod": -1,
    "event": -1,
    "art": -1,
    "weight": 1.0,
    "key": 0,
    "detail": None,
}


def frame(cust: Any, fired: Any, due: Any, **extra: Any) -> Arrays:
    """The standard result of a trigger: equal-length arrays (scalars are repeated)."""
    out = {"cust": np.asarray(cust, dtype=np.int64), "fired": np.asarray(fired, dtype=np.int64)}
    out["due"] = np.asarray(due, dtype=np.int64)
    n = len(out["cust"])
    for k, v in extra.items():
        dtype = object if k == "detail" else (float if k == "weight" else np.int64)
        out[k] = np.full(n, v, dtype=dtype) if np.ndim(v) == 0 else np.asarray(v, dtype=dtype)
    return out


def complete(part: Arrays) -> Arrays:
    """Add every optional column (with its default) a trigger did not return."""
    n = len(part["cust"])
    out = dict(part)
    for k, v in DEFAULTS.items():
        if k not in out:
            dtype = object if k == "detail" else (float if k == "weight" else np.int64)
            out[k] = np.full(n, v, dtype=dtype)
    return out


def stack(parts: list[Arrays]) -> Arrays:
    """Concatenate trigger results column by column."""
    parts = [complete(p) for p in parts] or [complete(frame([], [], []))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def first_of_group(keys: np.ndarray) -> np.ndarray:
    """Mask of the first row of each run of equal keys (rows sorted by key)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    return np.r_[True, keys[1:] != keys[:-1]]


def last_of_group(keys: np.ndarray) -> np.ndarray:
    """Mask of the last row of each run of equal keys (rows sorted by key)."""
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    return np.r_[keys[1:] != keys[:-1], True]


def rank_in_group(keys: np.ndarray) -> np.ndarray:
    """0, 1, 2 … within each run of equal keys (rows sorted by key)."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(first_of_group(keys))
    sizes = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, sizes)


def repeated(keys: np.ndarray) -> np.ndarray:
    """Mask of the rows whose key occurs more than once (one sort, no hashing)."""
    s = np.sort(keys)
    twice = s[1:][s[1:] == s[:-1]]
    if len(twice) == 0:
        return np.zeros(len(keys), dtype=bool)
    twice = twice[first_of_group(twice)]
    pos = np.minimum(np.searchsorted(twice, keys), len(twice) - 1)
    return twice[pos] == keys


def pair_key(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One int64 key for two small non-negative integer columns."""
    return np.asarray(a, dtype=np.int64) * (np.int64(1) << 32) + np.asarray(b, dtype=np.int64)


def dates_in_years(month: np.ndarray, dom: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Midnight of (year, month, day) as int64 ns; 29 February becomes 28 in other years."""
    ym = (np.asarray(years, dtype=np.int64) - 1970) * 12 + (np.asarray(month, dtype=np.int64) - 1)
    start = ym.astype("datetime64[M]").astype("datetime64[D]")
    length = ((ym + 1).astype("datetime64[M]").astype("datetime64[D]") - start).astype(np.int64)
    d = np.minimum(np.asarray(dom, dtype=np.int64), length) - 1
    return (start + d.astype("timedelta64[D]")).astype("datetime64[ns]").view(np.int64)


def year_of(x: np.ndarray | np.int64) -> np.ndarray:
    """Calendar year of each instant."""
    return (
        np.asarray(x, dtype=np.int64)
        .view("datetime64[ns]")
        .astype("datetime64[Y]")
        .astype(np.int64)
        + 1970
    )


def month_day(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Month (1–12) and day of month of each instant."""
    d = np.asarray(x, dtype=np.int64).view("datetime64[ns]").astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    return m.astype(np.int64) % 12 + 1, (d - m.astype("datetime64[D]")).astype(np.int64) + 1


def yearly(
    ev: Evaluation, month: np.ndarray, dom: np.ndarray, lead_days: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and dates of a yearly date (minus ``lead_days``) falling in the due range."""
    lo, hi = ev.due_from + days(lead_days), ev.due_to + days(lead_days)
    rows, dates = [], []
    for y in range(int(year_of(lo)), int(year_of(hi)) + 1):
        d = dates_in_years(month, dom, np.full(len(month), y))
        ok = (d >= lo) & (d <= hi)
        rows.append(np.flatnonzero(ok))
        dates.append(d[ok])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    d = np.concatenate(dates) if dates else np.zeros(0, dtype=np.int64)
    return r, d - days(lead_days)


_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$", "AUD": "A$", "CAD": "C$", "NZD": "NZ$"}


def money_label(x: float, currency: str) -> str:
    """``£1,000`` (the code as a suffix for currencies without a symbol here)."""
    sym = _SYMBOLS.get(currency)
    return f"{sym}{x:,.0f}" if sym else f"{x:,.0f} {currency}"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th … 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def current_members(ev: Evaluation) -> np.ndarray:
    """Per customer: a membership term covers the as-of instant."""
    ms = ev.data.memberships
    now = (ms["start"] <= ev.t) & (ms["end"] + NS_PER_DAY > ev.t)
    flag = np.zeros(ev.data.n, dtype=bool)
    flag[ms["cust"][now]] = True
    return flag


def recent_visit_counts(ev: Evaluation, within_days: int) -> tuple[np.ndarray, Arrays]:
    """Visits per customer in the last ``within_days``, and each customer's last visit row."""
    v = ev.visits
    recent = v["event"] > ev.t - days(within_days)
    counts = np.bincount(v["cust"][recent], minlength=ev.data.n)
    return counts, ev.last_visits


def distinct(cust: np.ndarray, n: int) -> np.ndarray:
    """Sorted distinct customer codes (``np.unique``, by marking a flag per customer)."""
    flag = np.zeros(n, dtype=bool)
    flag[cust] = True
    return np.flatnonzero(flag)


def _by_day(data: MomentData, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Ticket lines sorted by the day of ``col``: those days and the lines' customers."""
    key = ("tickets_by_day", col)
    if key not in data.cache:
        d = (data.tickets[col] // NS_PER_DAY).astype(np.int32)  # days since 1970
        order = np.argsort(d, kind="stable")
        data.cache[key] = (d[order], data.tickets["cust"][order].astype(np.int32))
    return data.cache[key]


def customers_due(ev: Evaluation, col: str, lag_days: Any) -> np.ndarray:
    """Customers with a ticket line whose ``col`` day plus ``lag_days`` falls in the due range.

    For :attr:`Evaluation.exact` runs: a trigger whose moment is due ``lag_days`` after
    the day of a booking's ``event`` or ``purchase`` only needs these customers.
    """
    days_sorted, cust = _by_day(ev.data, col)
    lag = int(lag_days)
    lo = int(ev.due_from // NS_PER_DAY) - lag
    hi = int(ev.due_to // NS_PER_DAY) - lag
    bounds = np.array([lo, hi + 1], dtype=days_sorted.dtype)  # no cast of the whole array
    a, b = np.searchsorted(days_sorted, bounds, side="left")
    return distinct(cust[a:b], ev.data.n)


def _code(month: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """One small code per (month, day of month): 0 for 1 January … 371 for 31 December."""
    return (np.asarray(month, dtype=np.int64) - 1) * 31 + (np.asarray(dom, dtype=np.int64) - 1)


def _yearly_codes(ev: Evaluation, lead_days: int = 0) -> np.ndarray:
    """The (month, day) codes for which :func:`yearly` finds a date in the due range."""
    month = np.repeat(np.arange(1, 13), 31)
    dom = np.tile(np.arange(1, 32), 12)
    rows, _ = yearly(ev, month, dom, lead_days)
    return np.unique(_code(month[rows], dom[rows]))


def anniversary_customers(ev: Evaluation) -> np.ndarray:
    """Customers who may have a first visit whose day recurs in the due range.

    A first visit is a ticket line, not for a cancelled performance, that happened on or
    before the day of the customer's earliest line never returned and bought by its
    performance: once that performance has started it is a visit, so no later line can
    be the first. Only those lines are indexed, by (month, day) of the performance.
    """
    key = "first_visit_lines_by_month_day"
    if key not in ev.data.cache:
        tk = ev.data.tickets
        event = tk["event"]
        sure = ~tk["cancelled"] & (tk["reversed_at"] == NEVER) & (tk["purchase"] <= event)
        bound = np.full(ev.data.n, NEVER, dtype=np.int64)
        np.minimum.at(bound, tk["cust"][sure], event[sure])
        rows = np.flatnonzero(~tk["cancelled"] & (event <= bound[tk["cust"]]))
        code = _code(*month_day(event[rows]))
        order = np.argsort(code, kind="stable")
        ev.data.cache[key] = (code[order], tk["cust"][rows[order]].astype(np.int32))
    codes, cust = ev.data.cache[key]
    rows = rows_of(codes, _yearly_codes(ev))
    return distinct(cust[rows], ev.data.n)


# ---------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------
@trigger(
    "first_booking_welcome",
    name="Welcome after a first booking",
    epic="connection",
    stage="anticipate",
    when="a customer books for the very first time",
    action="a welcome with what to expect on the day: doors, the bar, getting home",
    rationale="most first-timers never return; the first contact after booking sets the tone",
)
def first_booking_welcome(ev: Evaluation) -> Arrays:
    cache = ev.data.cache
    if "first_booking" not in cache:  # every original ticket line, returned or not
        tk = ev.data.tickets
        rows = np.flatnonzero(first_of_group(tk["cust"]))
        cache["first_booking"] = {k: tk[k][rows] for k in ("cust", "purchase", "prod", "event")}
    first = cache["first_booking"]
    known = first["purchase"] <= ev.t
    if ev.exact:
        known &= ev.due_in(day(first["purchase"]))
    first = take(first, known)
    return frame(
        first["cust"],
        first["purchase"],
        day(first["purchase"]),
        prod=first["prod"],
        event=first["event"],
    )


@trigger(
    "second_date",
    name="Second-date nudge",
    epic="connection",
    stage="return",
    when="a first-timer has not booked again {min_days}–{max_days} days after their visit",
    action="an invitation back, picked for what they saw, with a modest offer",
    rationale="a 'second date' offer to new buyers tripled new-buyer retention at Seattle Rep",
    params=("min_days", "max_days"),
)
def second_date(ev: Evaluation) -> Arrays:
    if ev.exact:
        ev = ev.among(customers_due(ev, "event", ev.params["min_days"]))
    b = ev.bookings
    n_booked = np.bincount(b["cust"], minlength=ev.data.n)
    one = (n_booked[b["cust"]] == 1) & (b["event"] <= ev.t)
    v = take(b, one)
    seen = day(v["event"])
    due = seen + days(ev.params["min_days"])
    ok = due <= ev.today  # only once the quiet spell has really happened
    v, seen, due = take(v, ok), seen[ok], due[ok]
    return frame(
        v["cust"],
        v["event"],
        due,
        expires=seen + days(ev.params["max_days"]),
        prod=v["prod"],
        event=v["event"],
    )


@trigger(
    "repeat_production",
    name="Same production, second time",
    epic="elevation",
    stage="attend",
    needs=("performances",),
    when="a customer holds tickets for a second performance of a production they already booked",
    action="a note on the seat: a word from the director, a programme or the source book",
    rationale="a near-free seat note for returning audiences drew handwritten thank-you letters",
)
def repeat_production(ev: Evaluation) -> Arrays:
    if ev.exact:
        ev = ev.among(customers_due(ev, "event", 0))
    b = ev.bookings
    rows = np.flatnonzero(b["prod"] >= 0)
    # only (customer, production) pairs booked more than once can have a second booking
    key = pair_key(b["cust"][rows], b["prod"][rows])
    rows = rows[repeated(key)]
    b = take(b, rows[lexsort((b["event"][rows], b["prod"][rows], b["cust"][rows]))])
    second = rank_in_group(pair_key(b["cust"], b["prod"])) == 1
    s = take(b, second)
    on_day = day(s["event"])
    return frame(s["cust"], s["purchase"], on_day, expires=on_day, prod=s["prod"], event=s["event"])


@trigger(
    "visit_milestone",
    name="Visit milestone",
    epic="pride",
    stage="reflect",
    when="a customer's visit number {milestones} has just happened",
    action="a thank-you that names the milestone, with a small token for next time",
    rationale="people value milestones they did not know they were counting",
    params=("milestones", "delay_days"),
)
def visit_milestone(ev: Evaluation) -> Arrays:
    if ev.exact:
        ev = ev.among(customers_due(ev, "event", ev.params["delay_days"]))
    v = ev.visits
    number = rank_in_group(v["cust"]) + 1
    marks = [int(m) for m in ev.params["milestones"]]
    hit = np.isin(number, marks)
    m = take(v, hit)
    labels = {k: f"{ordinal(k)} visit" for k in marks}
    detail = pd.Series(number[hit]).map(labels).to_numpy(dtype=object)
    due = day(m["event"]) + days(ev.params["delay_days"])
    return frame(
        m["cust"], m["event"], due, prod=m["prod"], event=m["event"], detail=detail, key=number[hit]
    )


@trigger(
    "first_visit_anniversary",
    name="Anniversary of the first visit",
    epic="connection",
    stage="return",
    when="a year (or several) since a customer's first visit, if they visited in the last {active_within_days} days",
    action="a short note marking the anniversary, with a look at what is coming up",
    rationale="shared history is a bond; marking it reminds people they belong here",
    params=("active_within_days",),
)
def first_visit_anniversary(ev: Evaluation) -> Arrays:
    if ev.exact:
        ev = ev.among(anniversary_customers(ev))
    v = ev.visits
    last_event = ev.last_visits["event"]
    active = last_event > ev.t - days(ev.params["active_within_days"])
    rows = np.flatnonzero(first_of_group(v["cust"]))[active]
    first = {k: v[k][rows] for k in ("cust", "event")}
    month, dom = month_day(first["event"])
    rows, due = yearly(ev, month, dom)
    years = year_of(due) - year_of(first["event"][rows])
    ok = years >= 1
    rows, due, years = rows[ok], due[ok], years[ok]
    detail = np.where(years == 1, "1 year", pd.Series(years).astype(str).to_numpy() + " years")
    return frame(
        first["cust"][rows], first["event"][rows], due, detail=detail.astype(object), key=years
    )


@trigger(
    "birthday",
    name="Birthday card",
    epic="elevation",
    stage="return",
    needs=("customers.birth_month",),
    when="{lead_days} days before the birthday of a customer who shared it, if they visited in the last {active_within_days} days",
    action="a card in the post with a treat worth noticing on their next visit",
    rationale="a birthday card with a generous offer is remembered long after the day",
    params=("lead_days", "active_within_days"),
)
def birthday(ev: Evaluation) -> Arrays:
    d = ev.data
    if ev.exact:  # only customers whose birthday (less the lead) recurs in the range
        bcode = d.cache.get("birthday_code")
        if bcode is None:  # -1: unknown; 372: a month out of range (always looked at)
            known = (d.birth_month > 0) & (d.birth_day > 0)
            usual = d.birth_month <= 12
            bcode = np.where(usual, _code(d.birth_month, np.minimum(d.birth_day, 31)), 372)
            bcode = d.cache["birthday_code"] = np.where(known, bcode, -1)
        hit = np.zeros(12 * 31 + 2, dtype=bool)  # the last slot is code -1
        hit[_yearly_codes(ev, int(ev.params["lead_days"]))] = True
        hit[372] = True
        ev = ev.among(np.flatnonzero(hit[bcode]))
    last = ev.last_visits
    active = last["cust"][last["event"] > ev.t - days(ev.params["active_within_days"])]
    known = (d.birth_month[active] > 0) & (d.birth_day[active] > 0)
    cust = active[known]
    rows, due = yearly(
        ev, d.birth_month[cust], d.birth_day[cust], lead_days=int(ev.params["lead_days"])
    )
    birthday_date = due + days(ev.params["lead_days"])
    return frame(cust[rows], birthday_date, due, key=year_of(birthday_date))


@trigger(
    "at_risk_patron",
    name="High-value patron drifting away",
    epic="connection",
    stage="return",
    needs=("clv",),
    when="a customer in the top {top_share} by lifetime value whose chance of still being active is below {p_alive_below}",
    action="a personal call from a senior member of staff: thanks, and what would bring them back",
    rationale="a small share of patrons brings most of the revenue; losing one quietly is costly",
    timing="state",
    params=("p_alive_below", "top_share"),
    share_params=("p_alive_below", "top_share"),
)
def at_risk_patron(ev: Evaluation) -> Arrays:
    pred = ev.clv
    below, share = float(ev.params["p_alive_below"]), float(ev.params["top_share"])
    try:
        from playbook.clv import at_risk_patrons
    except ImportError:  # the lifetime-value module is optional here
        cut = pred["clv"].quantile(1.0 - share)
        risk = pred.loc[(pred["clv"] >= cut) & (pred["p_alive"] < below)]
    else:
        risk = at_risk_patrons(pred, p_alive_below=below, top_share=share)
    cust = locate(risk["customer_id"], ev.data.ids)
    cust = cust[cust >= 0]
    return frame(cust, np.full(len(cust), ev.t), np.full(len(cust), ev.today))


@trigger(
    "membership_invitation",
    name="Membership invitation for a regular",
    epic="connection",
    stage="reflect",
    needs=("memberships",),
    when="a customer with {min_visits}+ visits in {within_days} days who is not a member has just visited",
    action="an invitation to join, with the benefits that fit how they book",
    rationale="regulars who are not yet members are the warmest prospects for the next rung",
    params=("min_visits", "within_days", "delay_days"),
)
def membership_invitation(ev: Evaluation) -> Arrays:
    if ev.exact:
        ev = ev.among(customers_due(ev, "event", ev.params["delay_days"]))
    counts, last = recent_visit_counts(ev, int(ev.params["within_days"]))
    members = current_members(ev)
    ok = (counts[last["cust"]] >= int(ev.params["min_visits"])) & ~members[last["cust"]]
    last = take(last, ok)
    due = day(last["event"]) + days(ev.params["delay_days"])
    return frame(last["cust"], last["event"], due, prod=last["prod"], event=last["event"])


@trigger(
    "membership_renewal",
    name="Membership renewal reminder",
    epic="connection",
    stage="return",
    needs=("memberships",),
    when="{days_before} days before a membership ends with no renewal yet; first-year members weighted ×{first_year_weight}",
    action="a reminder of what membership brought this year; a call for first-year members",
    rationale="first-year members renew far less often than long-standing ones",
    params=("days_before", "first_year_weight"),
)
def membership_renewal(ev: Evaluation) -> Arrays:
    ms = ev.data.memberships
    if "export_end" not in ev.data.cache:
        ev.data.cache["export_end"] = ev.data.tickets["purchase"].max(initial=0)
    export_end = ev.data.cache["export_end"]
    known_at = np.minimum(ms["start"], export_end)  # a future term shows once exported
    running = ms["start"] <= ev.t
    # superseded: a later term of the same customer that is known by now
    later_known = np.zeros(len(ms["cust"]), dtype=bool)
    if len(ms["cust"]) > 1:
        same = ms["cust"][1:] == ms["cust"][:-1]
        # terms are sorted by customer then start: look at the next term only
        later_known[:-1] = same & (known_at[1:] <= ev.t)
    cand = running & ~later_known
    rows, dues, details, weights, keys = [], [], [], [], []
    w = float(ev.params["first_year_weight"])
    for before in [int(x) for x in ev.params["days_before"]]:
        due = day(ms["end"]) - days(before)
        ok = cand & (due >= ev.due_from) & (due <= ev.due_to)
        idx = np.flatnonzero(ok)
        rows.append(idx)
        dues.append(due[idx])
        first = ms["first_year"][idx]
        details.append(
            np.where(
                first, f"{before} days before expiry, first year", f"{before} days before expiry"
            )
        )
        weights.append(np.where(first, w, 1.0))
        keys.append(np.full(len(idx), before))
    idx = np.concatenate(rows)
    expires = np.minimum(np.concatenate(dues) + days(ev.window_days), day(ms["end"][idx]))
    return frame(
        ms["cust"][idx],
        ms["start"][idx],
        np.concatenate(dues),
        expires=expires,
        detail=np.concatenate(details).astype(object),
        weight=np.concatenate(weights),
        key=np.concatenate(keys),
        event=ms["end"][idx],
    )


@trigger(
    "considered_ask",
    name="A considered ask for a loyal non-donor",
    epic="pride",
    stage="reflect",
    needs=("donations",),
    when="a customer with {min_visits}+ visits in {within_days} days who has never given has just visited",
    action="a personal letter on what giving makes possible, with a specific, modest ask",
    rationale="loyal attenders who have never been asked are the natural next donors",
    params=("min_visits", "within_days", "delay_days"),
)
def considered_ask(ev: Evaluation) -> Arrays:
    if ev.exact:
        ev = ev.among(customers_due(ev, "event", ev.params["delay_days"]))
    counts, last = recent_visit_counts(ev, int(ev.params["within_days"]))
    do = ev.data.donations
    gave = np.zeros(ev.data.n, dtype=bool)
    gave[do["cust"][do["time"] <= ev.t]] = True
    ok = (counts[last["cust"]] >= int(ev.params["min_visits"])) & ~gave[last["cust"]]
    last = take(last, ok)
    due = day(last["event"]) + days(ev.params["delay_days"])
    return frame(last["cust"], last["event"], due, prod=last["prod"], event=last["event"])


@trigger(
    "service_recovery",
    name="Service recovery",
    epic="connection",
    stage="reflect",
    when="after a {reasons} (weights: {reason_weights})",
    action="an apology or acknowledgement, and who to contact to put it right (a service message: no offers)",
    rationale="a problem handled well can leave people more loyal than no problem at all",
    kind="service",
    params=("reasons", "reason_weights", "delay_days"),
)
def service_recovery(ev: Evaluation) -> Arrays:
    d = ev.data
    reasons = set(ev.params["reasons"])
    weights = dict(ev.params["reason_weights"])
    parts = []
    if "cancellation" in reasons:
        if "cancelled_tickets" not in d.cache:  # the few tickets for cancelled performances
            d.cache["cancelled_tickets"] = take(d.tickets, d.tickets["cancelled"])
        c = d.cache["cancelled_tickets"]
        c = take(c, c["purchase"] <= ev.t)
        # known when the refund went through, else on the day of the performance
        known = np.where(c["reversed_at"] < NEVER, c["reversed_at"], c["event"])
        order = lexsort((known, c["perf"], c["cust"]))
        c, known = take(c, order), known[order]
        first = first_of_group(pair_key(c["cust"], c["perf"]))
        c, known = take(c, first), known[first]
        ok = known <= ev.t
        parts.append(
            frame(
                c["cust"][ok],
                known[ok],
                day(known[ok]),
                prod=c["prod"][ok],
                event=c["event"][ok],
                detail="cancellation",
                key=c["perf"][ok],
            )
        )
    delay = days(ev.params["delay_days"])
    for reason in ("return", "exchange"):
        if reason not in reasons:
            continue
        key = ("first_reversals", reason)
        if key not in d.cache:  # the first of each (customer, performance), known or not
            rv = d.reversals
            cancelled = gather(d.perf_cancelled, rv["perf"], False).astype(bool)
            r = take(rv, (rv["reason"] == reason) & ~cancelled)
            r = take(r, lexsort((r["time"], r["perf"], r["cust"])))
            d.cache[key] = take(r, first_of_group(pair_key(r["cust"], r["perf"] + 1)))
        r = d.cache[key]
        # the first known by now is the very first, when that is known by now
        known = r["time"] <= ev.t
        if ev.exact:
            known &= ev.due_in(day(r["time"]) + delay)
        r = take(r, known)
        parts.append(
            frame(
                r["cust"], r["time"], day(r["time"]), prod=r["prod"], detail=reason, key=r["perf"]
            )
        )
    out = stack(parts)
    out["due"] = out["due"] + delay
    out["weight"] = pd.Series(out["detail"]).map(weights).fillna(1.0).to_numpy(dtype=float)
    return out


@trigger(
    "new_artform_insight",
    name="First time in a new artform",
    epic="insight",
    stage="anticipate",
    needs=("performances", "productions.artform"),
    when="a returning customer books an artform they have never booked before",
    action="an invitation to a pre-show talk, an open rehearsal or a backstage tour",
    rationale="a little insight turns a first try of something new into a taste for it",
    params=("delay_days",),
)
def new_artform_insight(ev: Evaluation) -> Arrays:
    if ev.exact:
        ev = ev.among(customers_due(ev, "purchase", ev.params["delay_days"]))
    b = ev.bookings  # sorted by customer then first purchase
    start = np.flatnonzero(first_of_group(b["cust"]))
    sizes = np.diff(np.r_[start, len(b["cust"])])
    first_buy = np.repeat(b["purchase"][start], sizes)
    # only customers holding a booking for a performance still ahead can qualify
    ahead = np.zeros(ev.data.n, dtype=bool)
    ahead[b["cust"][b["event"] > ev.t]] = True
    rows = np.flatnonzero((b["art"] >= 0) & ahead[b["cust"]])
    rows = rows[lexsort((b["purchase"][rows], b["art"][rows], b["cust"][rows]))]
    a, first_buy = take(b, rows), first_buy[rows]
    new = (
        first_of_group(pair_key(a["cust"], a["art"]))
        & (a["purchase"] > first_buy)
        & (a["event"] > ev.t)
    )
    a = take(a, new)
    due = day(a["purchase"]) + days(ev.params["delay_days"])
    return frame(
        a["cust"],
        a["purchase"],
        due,
        expires=day(a["event"]),
        prod=a["prod"],
        event=a["event"],
        art=a["art"],
    )


@trigger(
    "email_click_no_booking",
    name="Clicked again and again, not booked",
    epic="connection",
    stage="discover",
    needs=("interactions.production_id", "performances"),
    when="{min_clicks}+ email clicks on one production within {within_days} days, no booking for it, performances still ahead",
    action="a helpful note: the best seats left, access information, a number to call",
    rationale="repeated clicks show real interest; something small is in the way",
    params=("min_clicks", "within_days", "delay_days"),
)
def email_click_no_booking(ev: Evaluation) -> Arrays:
    d = ev.data
    ck = d.clicks
    recent = (ck["time"] <= ev.t) & (ck["time"] > ev.t - days(ev.params["within_days"]))
    if ev.exact:  # only the customers with a click that could come due in the range
        soon = recent & ev.due_in(day(ck["time"]) + days(ev.params["delay_days"]))
        ev = ev.among(distinct(ck["cust"][soon], d.n))
        chosen = np.zeros(d.n, dtype=bool)
        chosen[ev.only] = True
        recent &= chosen[ck["cust"]]
    c = take(ck, recent)
    order = lexsort((c["time"], c["prod"], c["cust"]))
    c = take(c, order)
    k = pair_key(c["cust"], c["prod"])
    nth = rank_in_group(k) + 1 == int(ev.params["min_clicks"])
    hit = take(c, nth)
    b = ev.bookings
    clicked = np.zeros(d.n, dtype=bool)
    clicked[hit["cust"]] = True
    near = clicked[b["cust"]]  # only the clickers' bookings need comparing
    booked = np.isin(pair_key(hit["cust"], hit["prod"]), pair_key(b["cust"][near], b["prod"][near]))
    ahead = np.zeros(len(d.titles), dtype=bool)
    upcoming = (d.perf_start > ev.t) & ~d.perf_cancelled & (d.perf_prod >= 0)
    ahead[d.perf_prod[upcoming]] = True
    ok = ~booked & ahead[hit["prod"]]
    hit = take(hit, ok)
    due = day(hit["time"]) + days(ev.params["delay_days"])
    return frame(hit["cust"], hit["time"], due, prod=hit["prod"], key=hit["prod"])


def _nps(ev: Evaluation, ok: np.ndarray) -> Arrays:
    sv = ev.data.surveys
    ok = ok & (sv["time"] <= ev.t)
    if ev.exact:
        ok &= ev.due_in(day(sv["time"]) + days(ev.params["delay_days"]))
    s = take(sv, ok)
    due = day(s["time"]) + days(ev.params["delay_days"])
    return frame(
        s["cust"],
        s["time"],
        due,
        prod=s["prod"],
        detail=np.char.add("score ", s["nps"].astype(int).astype(str)).astype(object),
    )


@trigger(
    "nps_promoter",
    name="Promoter to ambassador",
    epic="pride",
    stage="reflect",
    needs=("survey_responses.nps",),
    when="a customer scores {min_score} or more out of 10 for recommending us",
    action="thanks, and an invitation to bring a friend or to join the ambassadors",
    rationale="people who already recommend us are the most credible recruiters",
    params=("min_score", "delay_days"),
)
def nps_promoter(ev: Evaluation) -> Arrays:
    return _nps(ev, ev.data.surveys["nps"] >= float(ev.params["min_score"]))


@trigger(
    "nps_detractor",
    name="Detractor: a personal call",
    epic="connection",
    stage="reflect",
    needs=("survey_responses.nps",),
    when="a customer scores {max_score} or less out of 10 for recommending us",
    action="a personal call to listen, apologise where due and put it right",
    rationale="a pit handled in person can turn a critic round; ignored, it spreads",
    kind="service",
    params=("max_score", "delay_days"),
)
def nps_detractor(ev: Evaluation) -> Arrays:
    return _nps(ev, ev.data.surveys["nps"] <= float(ev.params["max_score"]))


@trigger(
    "spend_milestone",
    name="Cumulative support milestone",
    epic="pride",
    stage="return",
    when="a customer's total spend and giving first passes {thresholds}",
    action="a handwritten thank-you card from a member of staff",
    rationale="recognising cumulative support, not just single big gifts, builds loyalty",
    params=("thresholds", "delay_days"),
    money_params=("thresholds",),
)
def spend_milestone(ev: Evaluation) -> Arrays:
    d = ev.data
    m = d.money
    thresholds = tuple(float(x) for x in ev.params["thresholds"])
    cache = d.cache.setdefault(("spend_milestone", thresholds), {})
    if not cache:  # crossing points do not depend on the as-of date: compute once
        parts = []
        for thr in thresholds:
            idx = np.flatnonzero(m["cum"] >= thr)
            idx = idx[first_of_group(m["cust"][idx])]
            parts.append(pd.DataFrame({"row": idx, "thr": thr}))
        cache["rows"] = pd.concat(parts, ignore_index=True)
    rows = cache["rows"]
    r = rows["row"].to_numpy()
    ok = m["time"][r] <= ev.t
    if ev.exact:
        ok &= ev.due_in(day(m["time"][r]) + days(ev.params["delay_days"]))
    r, thr = r[ok], rows["thr"].to_numpy()[ok]
    due = day(m["time"][r]) + days(ev.params["delay_days"])
    labels = {x: f"passed {money_label(x, ev.currency)}" for x in thresholds}
    detail = pd.Series(thr).map(labels).to_numpy(dtype=object)
    return frame(m["cust"][r], m["time"][r], due, detail=detail, key=thr.astype(np.int64))
