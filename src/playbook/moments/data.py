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
import pyarrow as pa
import pyarrow.compute as pc

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


def rows_of(keys: np.ndarray, wanted: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
    """Rows (ascending) of an array sorted by ``keys`` whose key is one of ``wanted``.

    ``wanted`` must be sorted and distinct (e.g. customer codes from ``np.unique``).
    Each key's rows are one run, found by binary search, or read from ``starts`` (for
    keys that are codes 0 … m - 1: ``starts[k]`` is the first row of key ``k``, with
    ``m + 1`` entries, as from ``np.searchsorted(keys, np.arange(m + 1))``).
    """
    wanted = np.asarray(wanted, dtype=np.int64)
    if starts is None:
        lo = np.searchsorted(keys, wanted, side="left")
        sizes = np.searchsorted(keys, wanted, side="right") - lo
    else:
        lo = starts[wanted]
        sizes = starts[wanted + 1] - lo
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(sizes)
    return np.arange(total, dtype=np.int64) + np.repeat(lo - (ends - sizes), sizes)


def lexsort(keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """``np.lexsort(keys)`` (last key first, stable), several times faster on codes.

    Every key but the first (the least significant, e.g. a time) must be integers, such
    as customer and production codes: they are packed with each row's position into one
    int64 and sorted with numpy's fast (SIMD) sort, after a stable sort by the first key
    when that is not already in order. Keys too wide to pack use ``np.lexsort``.
    """
    keys = tuple(np.asarray(k) for k in keys)
    n = len(keys[0])
    if n < 2 or len(keys) < 2 or any(k.dtype.kind not in "biu" for k in keys[1:]):
        return np.lexsort(keys)
    first = keys[0]
    by_first = None if bool((first[1:] >= first[:-1]).all()) else np.argsort(first, kind="stable")
    bits = (n - 1).bit_length()
    packed = np.arange(n, dtype=np.int64)
    shift = bits
    for k in keys[1:]:  # least significant first, above the positions
        lo = int(k.min())
        width = (int(k.max()) - lo).bit_length()
        if shift + width > 62:
            return np.lexsort(keys)
        if width:
            v = k if by_first is None else k[by_first]
            packed |= (v.astype(np.int64) - lo) << shift
        shift += width
    packed.sort()
    pos = packed & ((np.int64(1) << bits) - 1)
    return pos if by_first is None else by_first[pos]


def sort_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.lexsort((values, groups))`` for rows already sorted by ``groups``.

    Only the groups whose values are not already in order are sorted, so rows that are
    nearly in order (a customer's bookings by purchase, wanted by performance) cost
    little. ``groups`` are non-negative integer codes.
    """
    n = len(groups)
    order = np.arange(n)
    if n < 2:
        return order
    descent = (groups[1:] == groups[:-1]) & (values[1:] < values[:-1])
    if not descent.any():
        return order
    bad = np.zeros(int(groups.max()) + 1, dtype=bool)
    bad[groups[1:][descent]] = True
    rows = np.flatnonzero(bad[groups])
    order[rows] = rows[lexsort((values[rows], groups[rows]))]
    return order


def merge_sorted(a: Arrays, b: Arrays) -> Arrays:
    """Rows of ``a`` and ``b``, both sorted by ``cust`` then ``time``, merged in that order.

    The same as sorting ``a`` followed by ``b`` with a stable sort: on ties ``a``'s rows
    come first. Each row of ``b`` finds its place by binary search within its customer's
    rows of ``a`` (a few vectorised halvings), so ``a`` is never sorted again.
    """
    n_a, n_b = len(a["cust"]), len(b["cust"])
    lo = np.searchsorted(a["cust"], b["cust"], side="left")
    hi = np.searchsorted(a["cust"], b["cust"], side="right")
    active = np.flatnonzero(lo < hi)
    while len(active):  # rows of a at or before each row of b: lo ends past them
        mid = (lo[active] + hi[active]) // 2
        before = a["time"][mid] <= b["time"][active]
        lo[active] = np.where(before, mid + 1, lo[active])
        hi[active] = np.where(before, hi[active], mid)
        active = active[lo[active] < hi[active]]
    from_b = np.zeros(n_a + n_b, dtype=bool)
    from_b[lo + np.arange(n_b)] = True
    out = {}
    for k in a:
        col = np.empty(n_a + n_b, dtype=np.result_type(a[k], b[k]))
        col[~from_b] = a[k]
        col[from_b] = b[k]
        out[k] = col
    return out


def arrow_text(values: pd.Series) -> pa.ChunkedArray:
    """The values as an Arrow string array (no copy when they already are Arrow strings)."""
    arr = values.astype("string").array
    if hasattr(arr, "__arrow_array__"):
        out = arr.__arrow_array__()
    else:  # pragma: no cover - "string" is Arrow-backed whenever pyarrow is installed
        out = pa.array(arr.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])


def locate(keys: pd.Series | pd.Index, haystack: pd.Series | pd.Index) -> np.ndarray:
    """Position in ``haystack`` of each key, as text (its first, -1 when absent or missing).

    Built for a few keys in many values (a hundred thousand moments among a million
    customers): only the distinct keys are hashed, and the haystack is streamed past
    them, so nothing is built over the haystack.
    """
    keys = pd.Series(keys.array)
    code, uniq = pd.factorize(keys.astype("string"))
    if len(uniq) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    hit = pc.index_in(
        arrow_text(pd.Series(haystack.array)),
        value_set=arrow_text(pd.Series(uniq)).combine_chunks(),
    )
    hit = hit.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.flatnonzero(hit >= 0)[::-1]
    first = np.full(len(uniq), -1, dtype=np.int64)
    first[hit[rows]] = rows  # rows reversed: the first position is set last
    return gather(first, code, -1)


def _sorted_integers(text: pa.ChunkedArray) -> np.ndarray | None:
    """The text as int64 when it holds integers in ascending order, each written one way.

    Then every distinct text is one run of equal integers, so the runs number the texts
    in order of first appearance without hashing a single string (ids exported in
    ascending order, as order numbers usually are). None otherwise: not all integers,
    not sorted, missing values, or one integer written two ways ("7" and "007").
    """
    if len(text) == 0 or text.null_count:
        return None
    try:
        pc.cast(text.slice(0, 1000), pa.int64())  # fails fast on ids such as "C0a3…"
        ints = pc.cast(text, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    raw = ints.to_numpy().astype(np.int64, copy=False)
    if not bool((raw[1:] >= raw[:-1]).all()):
        return None
    same_int = raw[1:] == raw[:-1]
    if same_int.any():
        same_text = pc.equal(text.slice(1), text.slice(0, len(text) - 1))
        if bool((same_int & ~same_text.to_numpy(zero_copy_only=False)).any()):
            return None
    return raw


def _integer_runs(text: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes of ids that are integers in ascending order, and where each id first shows.

    None when :func:`_sorted_integers` finds they are not.
    """
    raw = _sorted_integers(arrow_text(text))
    if raw is None:
        return None
    new = np.r_[True, raw[1:] != raw[:-1]]  # one run per distinct text: count the runs
    return np.cumsum(new) - 1, np.flatnonzero(new)


def factorize_text(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(values.astype("string"))``, faster for ids that are integers in text.

    Returns int64 codes (-1 for missing) and the distinct values in order of first
    appearance, as a ``string`` index; both identical to the plain factorisation.
    """
    text = values.astype("string")
    runs = _integer_runs(text)
    if runs is None:
        local, uniques = pd.factorize(text)
        return local.astype(np.int64, copy=False), pd.Index(uniques, dtype="string")
    local, first = runs
    return local, pd.Index(text.iloc[first].to_numpy(), dtype="string")


def text_codes(values: pd.Series) -> np.ndarray:
    """The codes of :func:`factorize_text` alone (cheaper: the distinct values are not kept)."""
    text = values.astype("string")
    runs = _integer_runs(text)
    if runs is None:
        return pd.factorize(text)[0].astype(np.int64, copy=False)
    return runs[0]


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
    email_unsubscribed : numpy.ndarray
        Per customer, the time (int64 ns) of their first ``unsubscribe`` interaction
        after their latest email consent date (any unsubscribe when that date is
        missing); the maximum int64 when there is none. From that time on, email
        consent no longer counts (:func:`playbook.moments.resolve_channels`).
    withdrawn : dict of str to numpy.ndarray
        Per consent channel, a boolean per customer: status ``withdrawn`` (an explicit
        opt-out; no moment of any kind goes through that channel).
    do_not_contact : numpy.ndarray
        Per customer: flagged ``do_not_contact`` (deceased, gone away, do not contact).
        They stay in moments found but get no action of any kind.
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
    email_unsubscribed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    withdrawn: dict[str, np.ndarray] = field(default_factory=dict)
    do_not_contact: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    tables: Tables | None = field(default=None, repr=False)
    cache: dict = field(default_factory=dict, repr=False)  # as-of independent results

    @property
    def n(self) -> int:
        """Number of customers (codes run from 0 to n - 1)."""
        return len(self.ids)

    def has(self, need: str) -> bool:
        """Whether a ``needs`` entry (table or ``table.column``) is satisfied."""
        return need in self.available

    def starts(self, table: str) -> np.ndarray:
        """First row of each customer in a table sorted by customer (``tickets``, ``money``).

        ``n + 1`` entries: customer ``c``'s rows are ``starts[c]`` to ``starts[c + 1]``.
        """
        key = ("starts", table)
        if key not in self.cache:
            cust = getattr(self, table)["cust"]
            self.cache[key] = np.searchsorted(cust, np.arange(self.n + 1))
        return self.cache[key]

    # ----- as-of views ------------------------------------------------------
    def standing(self, t: np.int64) -> np.ndarray:
        """Mask of ticket rows bought by ``t`` and not returned or exchanged by ``t``."""
        tk = self.tickets
        return (tk["purchase"] <= t) & (tk["reversed_at"] > t)

    def bookings(self, t: np.int64, cust: np.ndarray | None = None) -> Arrays:
        """Distinct (customer, visit) bookings standing at ``t``, cancelled ones left out.

        Sorted by customer then purchase time; ``purchase`` is the first purchase.
        ``cust`` (sorted distinct customer codes): only these customers' bookings, the
        same rows as the full result has for them, found without scanning every ticket.
        """
        tk = self.tickets
        if cust is None:
            rows = np.flatnonzero(self.standing(t) & ~tk["cancelled"])
        else:
            rows = rows_of(tk["cust"], cust, self.starts("tickets"))
            ok = (tk["purchase"][rows] <= t) & (tk["reversed_at"][rows] > t)
            rows = rows[ok & ~tk["cancelled"][rows]]
        if len(rows):
            key = tk["cust"][rows].astype(np.int64) * (np.int64(1) << 32) + tk["visit"][rows]
            # the seats of one booking sit next to each other: drop those repeats first
            # (never a first occurrence), then find the first of each key among the rest
            runs = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            cust, visit = tk["cust"][rows[runs]], tk["visit"][rows[runs]]
            o = lexsort((np.arange(len(runs)), visit, cust))
            k = key[runs[o]]
            rows = rows[np.sort(runs[o[np.r_[True, k[1:] != k[:-1]]]])]
        return {k: tk[k][rows] for k in _BOOKING_COLUMNS}

    def visits(self, t: np.int64, bookings: Arrays | None = None) -> Arrays:
        """Visits that happened by ``t``: standing bookings whose performance has started.

        Sorted by customer then performance time. ``bookings`` is :meth:`bookings` at
        ``t`` when already at hand.
        """
        b = self.bookings(t) if bookings is None else bookings
        rows = np.flatnonzero(b["event"] <= t)
        rows = rows[sort_within(b["cust"][rows], b["event"][rows])]
        return take(b, rows)

    def spend_between(
        self, lo: np.int64, hi: np.int64, cust: np.ndarray | None = None
    ) -> np.ndarray:
        """Money paid per customer in ``(lo, hi]``.

        ``cust`` (sorted distinct customer codes): only these customers' sums are filled
        in (the others are 0), reading only their payments.
        """
        m = self.money
        if cust is None:
            sel = (m["time"] > lo) & (m["time"] <= hi)
        else:
            sel = rows_of(m["cust"], cust, self.starts("money"))
            sel = sel[(m["time"][sel] > lo) & (m["time"][sel] <= hi)]
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


def _run_starts(text: pa.ChunkedArray) -> np.ndarray | None:
    """Mask of the rows whose value differs from the previous row's (None: few repeats).

    Rows of one order, or a customer's consents and emails, sit next to each other:
    coding only the first row of each run and repeating its code saves most lookups.
    """
    n = len(text)
    if n < 2:
        return None
    same = pc.equal(text.slice(1), text.slice(0, n - 1)).fill_null(False)
    same = same.to_numpy(zero_copy_only=False)
    if same.mean() < 0.3:
        return None
    return np.r_[True, ~same]


def _customer_codes(tables: Tables) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """Customer ids (in order of first appearance) and each table's codes, in one pass.

    The tables' id columns are dictionary-encoded as one chunked Arrow array: one hash
    table for all of them, and no copy of their text. Within a table only the first row
    of each run of equal ids is looked up (a first appearance always starts a run).
    """
    out = {t: np.zeros(0, dtype=np.int64) for t in _CUSTOMER_TABLES}
    names = [t for t in _CUSTOMER_TABLES if len(tables[t])]
    cols = [arrow_text(tables[t]["customer_id"]).cast(pa.large_string()) for t in names]
    starts = [_run_starts(col) for col in cols]
    cols = [
        col if s is None else col.filter(pa.array(s)) for col, s in zip(cols, starts, strict=True)
    ]
    chunks = [c for col in cols for c in col.chunks]
    if not chunks:
        return pd.Index([], dtype="string"), out
    enc = pc.dictionary_encode(pa.chunked_array(chunks, type=pa.large_string()))
    ids = pd.Index(pd.arrays.ArrowStringArray(enc.chunk(enc.num_chunks - 1).dictionary))
    first = 0
    for t, col, s in zip(names, cols, starts, strict=True):
        part = enc.chunks[first : first + col.num_chunks]
        first += col.num_chunks
        indices = pa.chunked_array([c.indices for c in part], type=enc.type.index_type)
        codes_t = indices.fill_null(-1).to_numpy().astype(np.int64)
        out[t] = (
            codes_t if s is None else np.repeat(codes_t, np.diff(np.r_[np.flatnonzero(s), len(s)]))
        )
    return pd.Index(ids, dtype="string"), out


def _parent_rows(ol: pd.DataFrame, orig: np.ndarray, rev_rows: np.ndarray) -> np.ndarray:
    """Row of the original line each reversing line points to (-1 when none).

    A parent id held by several original lines points to the last of them. Line ids
    that are integers in ascending order are searched by bisection; others are matched
    with an Arrow ``is_in`` over the line ids, so they are never factorised.
    """
    parent = arrow_text(ol[OL.parent_line_id].iloc[rev_rows])
    none = np.full(len(rev_rows), -1, dtype=np.int64)
    if len(rev_rows) == 0 or parent.null_count == len(parent):
        return none
    line_ids = arrow_text(ol[OL.line_id])
    found = _bisect_parents(parent, line_ids, orig)
    if found is not None:
        return found
    hit = pc.is_in(line_ids, value_set=pc.unique(parent.drop_null()))
    cand = np.flatnonzero(hit.to_numpy(zero_copy_only=False) & orig)[::-1]  # last first
    pos = pc.index_in(parent, value_set=line_ids.take(pa.array(cand)).combine_chunks())
    return gather(cand, pos.fill_null(-1).to_numpy(zero_copy_only=False), -1)


def _bisect_parents(
    parent: pa.ChunkedArray, line_ids: pa.ChunkedArray, orig: np.ndarray
) -> np.ndarray | None:
    """:func:`_parent_rows` for line ids that are integers in ascending order (else None)."""
    ints = _sorted_integers(line_ids)
    if ints is None:
        return None
    try:
        wanted = pc.cast(parent, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    known = ~wanted.is_null().to_numpy(zero_copy_only=False)
    wanted = wanted.fill_null(0).to_numpy().astype(np.int64, copy=False)
    rows = np.flatnonzero(orig)
    at = np.searchsorted(ints[rows], wanted, side="right") - 1  # the last line with the id
    ok = np.flatnonzero(known & (at >= 0))
    ok = ok[ints[rows[at[ok]]] == wanted[ok]]
    out = np.full(len(wanted), -1, dtype=np.int64)
    if len(ok):  # the same integer, and the same text ("7" is not "007")
        same = pc.equal(parent.take(pa.array(ok)), line_ids.take(pa.array(rows[at[ok]])))
        ok = ok[same.to_numpy(zero_copy_only=False)]
        out[ok] = rows[at[ok]]
    return out


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
    # the lines' performances are coded once: performance ids are the performances
    # table's, then the lines' own ones in order of first appearance
    line_perf, line_perf_ids = factorize_text(ol[OL.performance_id])
    perf_ids = pd.Index(
        pd.concat([perfs[PF.performance_id].dropna().astype("string"), line_perf_ids.to_series()])
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
    exchanged = (status == "exchanged").to_numpy(dtype=bool, na_value=False)
    rev = is_ticket & ((status == "returned").to_numpy(dtype=bool, na_value=False) | exchanged)
    ol_cust = cust_codes["order_lines"]
    ol_time = ns(ol[OL.purchase_time])
    # performance code of a line: gather(perf_of, line_perf[rows], -1), for the rows used
    perf_of = perf_ids.get_indexer(line_perf_ids).astype(np.int64)
    rev_rows = np.flatnonzero(rev)
    parent_row = _parent_rows(ol, orig, rev_rows)
    linked = parent_row >= 0
    reversed_at = np.full(len(ol), NEVER, dtype=np.int64)
    np.minimum.at(reversed_at, parent_row[linked], ol_time[rev_rows[linked]])

    # lines paid for (tickets and subscriptions, returns net), sorted once by customer
    # then purchase: the money rows, and the original tickets among them
    paid = (is_ticket | (item == "subscription").to_numpy(dtype=bool, na_value=False)) & (
        status != "void"
    ).to_numpy(dtype=bool, na_value=True)
    lines = np.flatnonzero(paid & (ol_cust >= 0))
    lines = lines[lexsort((ol_time[lines], ol_cust[lines]))]
    rows = lines[orig[lines]]  # every original ticket line is paid for
    purchase = ol_time[rows]
    perf = gather(perf_of, line_perf[rows], -1)
    start = gather(perf_start, perf, np.iinfo(np.int64).min)
    start = np.where(start == np.iinfo(np.int64).min, purchase, start)
    prod = gather(perf_prod, perf, -1)
    order = text_codes(ol[OL.order_id])[rows]
    # a visit is a performance; a ticket without one is its own order's visit
    visit = np.where(perf >= 0, perf, -(order + 2))
    tickets = {
        "cust": ol_cust[rows],
        "purchase": purchase,
        "event": start,
        "perf": perf,
        "prod": prod,
        "art": gather(prod_art, prod, -1),
        "order": order,
        "visit": visit.astype(np.int64),
        "reversed_at": reversed_at[rows],
        "cancelled": gather(perf_cancelled, perf, False).astype(bool),
        "paid": ol[OL.paid_amount].to_numpy(dtype=float)[rows],
    }
    del reversed_at, rows

    # returns and exchanges -------------------------------------------------------
    rperf = gather(perf_of, line_perf[rev_rows], -1)
    parent_perf = gather(perf_of, np.where(linked, line_perf[np.maximum(parent_row, 0)], -1), -1)
    rperf = np.where(rperf >= 0, rperf, parent_perf)
    reversals = {
        "cust": ol_cust[rev_rows],
        "time": ol_time[rev_rows],
        "reason": np.where(exchanged[rev_rows], "exchange", "return"),
        "perf": rperf,
        "prod": gather(perf_prod, rperf, -1),
    }
    reversals = take(reversals, reversals["cust"] >= 0)
    del line_perf, parent_row, parent_perf, rperf

    # money: tickets and subscriptions (returns net), memberships, donations ---------
    ms = tables.memberships
    do = tables.donations
    extra = {
        "cust": np.concatenate([cust_codes["memberships"], cust_codes["donations"]]),
        "time": np.concatenate([ns(ms[ME.start_date]), ns(do[DO.donation_date])]),
        "amount": np.concatenate(
            [ms[ME.amount].fillna(0.0).to_numpy(dtype=float), do[DO.amount].to_numpy(dtype=float)]
        ),
    }
    keep = np.flatnonzero(extra["cust"] >= 0)
    extra = take(extra, keep[lexsort((extra["time"][keep], extra["cust"][keep]))])
    # both parts are sorted by customer then time: merge them, lines first on ties
    lined = {
        "cust": ol_cust[lines],
        "time": ol_time[lines],
        "amount": ol[OL.paid_amount].to_numpy(dtype=float)[lines],
    }
    del ol_cust, ol_time, lines, cust_codes["order_lines"]  # the lines are done
    money = merge_sorted(lined, extra)
    del lined, extra
    money["cum"] = pd.Series(money["amount"]).groupby(money["cust"], sort=False).cumsum().to_numpy()

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
    o = lexsort((memberships["start"], memberships["cust"]))
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
    clicks = {
        "cust": cust_codes["interactions"][is_click],
        "time": ns(it[IN.occurred_at][is_click]),
        "prod": codes(it[IN.production_id][is_click], prod_ids),
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
    do_not_contact = np.zeros(n, dtype=bool)
    if CU.do_not_contact in cu:  # tables from before the column existed have none
        dnc = cu[CU.do_not_contact].to_numpy(dtype=bool, na_value=False)
        do_not_contact[ccode[ok]] = dnc[ok]
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
    channel, names = factorize_text(cs[CO.channel])
    for code in pd.unique(channel[granted]):  # channels in order of first grant
        flag = np.zeros(n, dtype=bool)
        c = cust_codes["consents"][granted & (channel == code)]
        flag[c[c >= 0]] = True
        consent[str(names[code]) if code >= 0 else str(pd.NA)] = flag
    withdrawn: dict[str, np.ndarray] = {}
    said_no = (cs[CO.status] == "withdrawn").to_numpy(dtype=bool, na_value=False)
    for code in pd.unique(channel[said_no & (channel >= 0)]):
        flag = np.zeros(n, dtype=bool)
        c = cust_codes["consents"][said_no & (channel == code)]
        flag[c[c >= 0]] = True
        withdrawn[str(names[code])] = flag
    email_unsubscribed = _email_unsubscribed(
        n, it, cust_codes["interactions"], cs, cust_codes["consents"]
    )

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
        email_unsubscribed=email_unsubscribed,
        withdrawn=withdrawn,
        do_not_contact=do_not_contact,
        tables=tables,
    )


NEVER = np.iinfo(np.int64).max


def _email_unsubscribed(
    n: int,
    interactions: pd.DataFrame,
    it_cust: np.ndarray,
    consents: pd.DataFrame,
    cs_cust: np.ndarray,
) -> np.ndarray:
    """Per customer: first unsubscribe after their latest email consent date (ns; else NEVER).

    An unsubscribe dated on or before the consent date came before the consent and no
    longer counts; when the consent date is missing, every unsubscribe counts (the safe
    side: the customer may not want email).
    """
    out = np.full(n, NEVER, dtype=np.int64)
    is_unsub = (interactions[IN.kind] == "unsubscribe").to_numpy(dtype=bool, na_value=False)
    if not is_unsub.any():
        return out
    ucust = it_cust[is_unsub]
    utime = ns(interactions[IN.occurred_at][is_unsub])
    consented = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    email = (consents[CO.channel] == "email").to_numpy(dtype=bool, na_value=False)
    ecust = cs_cust[email]
    etime = ns(consents[CO.consent_date][email])
    ok = ecust >= 0
    np.maximum.at(consented, ecust[ok], etime[ok])  # the latest email consent row
    ok = (ucust >= 0) & (utime != np.iinfo(np.int64).min)
    ucust, utime = ucust[ok], utime[ok]
    after = utime > consented[ucust]
    np.minimum.at(out, ucust[after], utime[after])
    return out
