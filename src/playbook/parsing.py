"""Vectorised parsers for the messy values found in exports.

Each parser returns the parsed values and a boolean mask of the values that were
present but could not be read, so intake can drop those rows with a reason instead of
silently turning them into blanks.

Speed: exports repeat the same few values (statuses, prices, dates) millions of times,
so the parsers work on the distinct values and spread the answers back; text the kit
reads as Arrow strings is trimmed and checked with Arrow compute functions, never a
Python loop. :func:`isin` and :func:`positions` are hash lookups for millions of ids.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_EMPTY = {"", "nan", "none", "null", "n/a", "na", "-"}
_EMPTY_RE = r"(?i)(?:|nan|none|null|n/a|na|-)"
# Every spelling of the 'empty' words in upper and lower case (what _EMPTY_RE matches).
_EMPTY_SPELLINGS = pa.array(
    sorted(
        {
            "".join(p)
            for w in _EMPTY
            for p in itertools.product(*[(c.lower(), c.upper()) for c in w])
        }
    ),
    pa.large_string(),
)
_EMPTY_LONGEST = max(len(w.encode()) for w in _EMPTY)  # bytes: longer text is never 'empty'
# Below this many values the parsers do not bother finding the distinct ones.
_DISTINCT_MIN_ROWS = 1_000
# Below this many values ids are looked up as text, not as numbers (:func:`decimal_ids`).
_NUMBERS_MIN_ROWS = 100_000
# Plain amounts (the vast majority): read directly, without the general parser.
_SIMPLE_MONEY = r"-?[£$€]?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
# Currency marks allowed around an amount; any other letters make the amount unreadable.
CURRENCY_CODES = (
    "GBP EUR USD CAD AUD NZD CHF SEK NOK DKK ISK PLN CZK HUF JPY CNY HKD SGD INR ZAR "
    "ILS MXN BRL AED KR ZŁ"
).split()
_CURRENCY = r"(?i)^(?:[£$€¥₹]|" + "|".join(CURRENCY_CODES) + r")?$"


# ---------------------------------------------------------------------------
# Arrow helpers
# ---------------------------------------------------------------------------
def _arrow_strings(s: pd.Series | pd.Index) -> pa.ChunkedArray | None:
    """The Arrow string array behind ``s`` (None when ``s`` is not Arrow-backed text)."""
    dtype = s.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        arr = s.array.__arrow_array__()
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])
    return None


def _text(s: pd.Series) -> pa.ChunkedArray | None:
    """``s`` as Arrow strings the way ``s.astype("string")`` reads it (None if not Arrow)."""
    arr = _arrow_strings(s)
    return arr if arr is not None else _arrow_strings(s.astype("string"))


def _trimmed_and_empty(arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray, np.ndarray]:
    """Values with surrounding whitespace removed, and where they are blank."""
    t = pc.utf8_trim_whitespace(arr)
    empty = pc.is_null(t)
    if pc.any(pc.less_equal(pc.binary_length(t), _EMPTY_LONGEST)).as_py():  # else no 'empty' word
        empty = pc.or_(empty, pc.is_in(t, value_set=_EMPTY_SPELLINGS.cast(t.type)))
    return t, empty.to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _string_series(arr: pa.ChunkedArray, like: pd.Series) -> pd.Series:
    """A ``string`` series (Arrow, ``pd.NA``) with the index and name of ``like``."""
    return pd.Series(pd.arrays.ArrowStringArray(arr), index=like.index, name=like.name)


def decimal_ids(arr: pa.ChunkedArray) -> np.ndarray | None:
    """Arrow text as ``int64`` when every present value is a plain whole number, else None.

    Plain means 1 to 18 ASCII digits without a leading zero (``"0"`` itself is plain), so
    two values are equal as text exactly when they are equal as numbers: lookups and
    duplicate checks can use the numbers, which is many times faster than hashing text.
    Missing values become -1. Most exports number things this way.
    """
    if len(arr) == 0 or arr.null_count == len(arr):
        return None
    length = pc.binary_length(arr)
    if not 1 <= pc.min_max(length)["max"].as_py() <= 18:
        return None
    plain = pc.and_(
        pc.ascii_is_decimal(arr), pc.or_(pc.equal(length, 1), pc.invert(pc.starts_with(arr, "0")))
    )
    if not pc.all(plain).as_py():  # missing values are left out
        return None
    return pc.cast(arr, pa.int64()).fill_null(-1).to_numpy()


def _first_positions(values: np.ndarray, keys: np.ndarray, *, found: bool = False) -> np.ndarray:
    """Position of each value's first occurrence among ``keys`` (-1 when absent).

    Both are whole numbers of at least 0 (-1 for missing, which matches nothing):
    looked up in a table indexed by the number when the keys are dense, else by binary
    search among the sorted distinct keys. With ``found``, only whether each value is
    among the keys (a table of one byte per number).
    """
    present = keys >= 0
    if not present.any():
        return np.full(len(values), False if found else -1)
    lo, hi = int(keys[present].min()), int(keys[present].max())
    inside = (values >= lo) & (values <= hi)
    if hi - lo < max(8 * len(keys), 1 << 24):  # a table of at most 8 entries a key (or 64 MB)
        if found:
            table = np.zeros(hi - lo + 1, dtype=bool)
            table[keys[present] - lo] = True
            out = np.zeros(len(values), dtype=bool)
            out[inside] = table[values[inside] - lo]
            return out
        kind = np.int32 if len(keys) < 2**31 else np.intp
        at = np.flatnonzero(present).astype(kind)
        table = np.full(hi - lo + 1, len(keys), dtype=kind)
        np.minimum.at(table, keys[at] - lo, at)
        table[table == len(keys)] = -1
        out = np.full(len(values), -1, dtype=np.intp)
        out[inside] = table[values[inside] - lo]
        return out
    distinct, first = np.unique(keys[present], return_index=True)
    i = np.minimum(np.searchsorted(distinct, values), len(distinct) - 1)
    hit = (distinct[i] == values) & inside
    return hit if found else np.where(hit, np.flatnonzero(present)[first][i], -1)


def factorize(s: pd.Series, *, use_na_sentinel: bool = True) -> tuple[np.ndarray, pd.Index]:
    """``pandas.factorize(s, use_na_sentinel=...)``: codes in order of first appearance,
    and the distinct values.

    Many plain whole numbers as text (:func:`decimal_ids`, none missing) are numbered as
    numbers, which is several times faster than hashing the text; the result is the same.
    """
    arr = _arrow_strings(s)
    if arr is not None and len(arr) >= _NUMBERS_MIN_ROWS and arr.null_count == 0:
        numbers = decimal_ids(arr)
        if numbers is not None:
            codes, distinct = pd.factorize(numbers)
            text = pc.cast(pa.array(distinct), arr.type)
            return codes, pd.Index(type(s.array)(pa.chunked_array([text]), dtype=s.dtype))
    return pd.factorize(s, use_na_sentinel=use_na_sentinel)


def positions(values: pd.Series, keys: pd.Series | pd.Index) -> np.ndarray:
    """Position of each value's first occurrence among ``keys`` (-1 when absent).

    What ``values.map()`` looks up after ``keys.drop_duplicates()``: a missing value
    matches a missing key. An Arrow hash lookup when both are Arrow text, or a lookup of
    numbers when both hold plain whole numbers (:func:`decimal_ids`).
    """
    a, k = _arrow_strings(values), _arrow_strings(keys)
    if a is not None and k is not None:
        nums = _decimal_pair(a, k)
        if nums is not None:
            pos = _first_positions(*nums)
            if a.null_count and k.null_count:  # missing matches the first missing key
                first_missing = int(pc.index(pc.is_null(k), True).as_py())
                pos[pc.is_null(a).to_numpy(zero_copy_only=False)] = first_missing
            return pos
        if a.type != k.type:
            k = k.cast(a.type)
        pos = pc.index_in(a, value_set=k, skip_nulls=False)
        return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
    index = pd.Index(keys)
    if index.is_unique:
        return index.get_indexer(values)
    first = ~index.duplicated(keep="first")
    pos = index[first].get_indexer(values)
    return np.where(pos >= 0, np.flatnonzero(first)[pos], -1)


def _decimal_pair(a: pa.ChunkedArray, k: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Both as numbers (:func:`decimal_ids`) when both are plain whole numbers, else None.

    Only tried on many values (below that, hashing the text is quick anyway).
    """
    if len(a) + len(k) < _NUMBERS_MIN_ROWS:
        return None
    na = decimal_ids(a)
    if na is None:
        return None
    nk = decimal_ids(k)
    return None if nk is None else (na, nk)


def isin(values: pd.Series, members: Any) -> pd.Series:
    """``values.isin(members)`` as a boolean series; a hash lookup for Arrow text.

    (pandas' ``isin`` on Arrow strings converts every member to a Python object first,
    which takes seconds for a million ids.)
    """
    a = _arrow_strings(values)
    if a is not None and isinstance(members, pd.Series | pd.Index):
        m = _arrow_strings(members)
        if m is not None:
            nums = _decimal_pair(a, m)
            if nums is not None:
                hit = _first_positions(*nums, found=True)
                if a.null_count and m.null_count:  # missing is a member
                    hit |= pc.is_null(a).to_numpy(zero_copy_only=False)
                return pd.Series(hit, index=values.index, name=values.name)
            if m.type != a.type:
                m = m.cast(a.type)
            hit = pc.is_in(a, value_set=m, skip_nulls=False)
            return pd.Series(
                hit.to_numpy(zero_copy_only=False).astype(bool, copy=False),
                index=values.index,
                name=values.name,
            )
    return values.isin(members)


def _per_distinct(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a value-by-value parser once per distinct text value and spread the answers.

    Exports repeat values (a status word, a price, a performance time) thousands of
    times; the result is the same as parsing every row, because each value's answer
    depends on that value alone.
    """

    @functools.wraps(fn)
    def wrapper(s: pd.Series, *args: Any, **kwargs: Any) -> Any:
        if len(s) < _DISTINCT_MIN_ROWS or _arrow_strings(s) is None:
            return fn(s, *args, **kwargs)
        codes, uniques = pd.factorize(s, use_na_sentinel=False)
        if len(uniques) > len(s) // 2:
            return fn(s, *args, **kwargs)
        result = fn(pd.Series(uniques, name=s.name), *args, **kwargs)

        def spread(r: pd.Series) -> pd.Series:
            return pd.Series(r.array.take(codes), index=s.index, name=r.name)

        if isinstance(result, tuple):
            return tuple(spread(r) for r in result)
        return spread(result)

    return wrapper


# ---------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------
def blank(s: pd.Series) -> pd.Series:
    """True where a value is missing or only whitespace (or a usual 'empty' word)."""
    if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
        return s.isna()
    arr = _text(s)
    if arr is None:  # text not held by Arrow (pandas without pyarrow strings)
        t = s.astype("string").str.strip()
        return (t.isna() | t.str.fullmatch(_EMPTY_RE)).fillna(True).astype(bool)
    return pd.Series(_trimmed_and_empty(arr)[1], index=s.index, name=s.name)


def clean_text(s: pd.Series) -> pd.Series:
    """Strip whitespace; blanks become missing. Returns a ``string`` series."""
    arr = _text(s)
    if arr is None:
        t = s.astype("string").str.strip()
        return t.mask(blank(s))
    t, empty = _trimmed_and_empty(arr)
    if empty.any():
        t = pc.if_else(pa.chunked_array([empty]), pa.scalar(None, t.type), t)
    return _string_series(t, s)


def clean_id(s: pd.Series) -> pd.Series:
    """Identifiers as strings: trimmed, ``123.0`` read back as ``123``, blanks missing."""
    if pd.api.types.is_float_dtype(s):
        whole = s.notna() & (s == np.floor(s))
        out = s.astype("string")
        out = out.mask(whole, s[whole].astype("int64").astype("string"))
        return out
    t = clean_text(s)
    arr = _arrow_strings(t)
    if arr is not None and not pc.any(pc.ends_with(arr, ".0")).as_py():
        return t  # nothing written like "123.0"
    return t.str.replace(r"^(\d+)\.0$", r"\1", regex=True)


@_per_distinct
def parse_money(
    s: pd.Series, *, decimal: str = "auto", minor_units: bool = False
) -> tuple[pd.Series, pd.Series]:
    """Parse money written as text: ``£1,234.50``, ``1.234,50 €``, ``(12.00)``, ``-$5``.

    Parameters
    ----------
    s : pandas.Series
        Raw values (text or numbers).
    decimal : {"auto", ".", ","}
        Decimal separator. ``auto`` reads ``1.234,50`` and ``12,5`` as decimal comma and
        ``1,234.50`` and ``1,234`` as thousands separators.
    minor_units : bool
        Values are whole pence / cents; divide by 100.

    Returns
    -------
    values : pandas.Series of float64
        Missing where blank or unreadable.
    bad : pandas.Series of bool
        True where a value was present but could not be read.
    """
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        out = s.astype("float64")
        bad = pd.Series(False, index=s.index)
    else:
        t = s.astype("string").str.strip()
        out = pd.Series(np.nan, index=s.index, dtype="float64")
        bad = pd.Series(False, index=s.index)
        simple = t.str.fullmatch(_SIMPLE_MONEY).fillna(False).astype(bool)
        if decimal == ",":  # "1.234" means a thousand and more: leave it to the general parser
            simple[:] = False
        if simple.any():
            plain = t[simple].str.replace(r"[£$€,]", "", regex=True)
            out[simple] = pd.to_numeric(plain, errors="coerce").astype("float64")
        rest = ~simple
        if rest.any():
            out[rest], bad[rest] = _parse_money_text(s[rest], t[rest], decimal)
    if minor_units:
        out = out / 100.0
    return out, bad.astype(bool)


def _parse_money_text(s: pd.Series, t: pd.Series, decimal: str) -> tuple[pd.Series, pd.Series]:
    """The general money parser: symbols, codes, brackets, either decimal separator."""
    empty = blank(s)
    neg = t.str.startswith("-") | t.str.endswith("-") | t.str.match(r"^\(.*\)$")
    neg = neg | t.str.contains(r"^[^\d]*-", regex=True)
    # keep digits and separators only
    core = t.str.replace(r"[^\d.,]", "", regex=True)
    junk = t.str.replace(r"[\d.,\s()+\-]", "", regex=True).str.replace(_CURRENCY, "", regex=True)
    # which separator is the decimal one
    if decimal == ",":
        comma_dec = pd.Series(True, index=s.index)
    elif decimal == ".":
        comma_dec = pd.Series(False, index=s.index)
    else:
        last_comma = core.str.rfind(",")
        last_dot = core.str.rfind(".")
        after_comma = core.str.len() - last_comma - 1
        comma_dec = (last_comma > last_dot) & ((last_dot >= 0) | (after_comma != 3))
        comma_dec = comma_dec.fillna(False)
    num = core.where(~comma_dec, core.str.replace(".", "", regex=False))
    num = num.where(comma_dec, num.str.replace(",", "", regex=False))
    num = num.where(~comma_dec, num.str.replace(",", ".", regex=False))
    out = pd.to_numeric(num, errors="coerce").astype("float64")
    multi_dot = num.str.count(r"\.") > 1
    out = out.mask(multi_dot.fillna(False))
    out = out.where(~neg.fillna(False), -out)
    bad = (~empty) & (out.isna() | (junk.fillna("") != ""))
    return out.mask(bad), bad.astype(bool)


# Fields of a date format that Arrow reads exactly like pandas when written in full
# (two digits, a four-digit year from 1900 to 2099): field -> (width, pattern).
_STRICT_FIELDS = {
    "d": (2, r"(?:0[1-9]|[12]\d|3[01])"),
    "m": (2, r"(?:0[1-9]|1[0-2])"),
    "Y": (4, r"(?:19|20)\d\d"),
    "H": (2, r"(?:[01]\d|2[0-3])"),
    "M": (2, r"[0-5]\d"),
    "S": (2, r"[0-5]\d"),
}


def _strict_format(fmt: str) -> tuple[str, int | None] | None:
    """Regular expression of values written exactly in ``fmt``, and where the day starts.

    None when the format has a field the quick path does not handle (then pandas reads
    every value).
    """
    pattern, pos, day_at, i = "^", 0, None, 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            field = fmt[i + 1 : i + 2]
            if field not in _STRICT_FIELDS:
                return None
            width, regex = _STRICT_FIELDS[field]
            if field == "d":
                day_at = pos
            pattern += regex
            pos += width
            i += 2
        else:
            if not ch.isascii() or not ch.isprintable():
                return None
            pattern += re.escape(ch)
            pos += 1
            i += 1
    return pattern + "$", day_at


def _strict_dates(t: pd.Series, fmt: str) -> np.ndarray | None:
    """Values written exactly in ``fmt`` read with Arrow (``NaT`` for every other value).

    Arrow rolls an impossible day over into the next month (31 April becomes 1 May)
    where pandas refuses it, so the day read back must be the day written.
    """
    spec = _strict_format(fmt)
    arr = _arrow_strings(t)
    if spec is None or arr is None or len(arr) == 0:
        return None
    pattern, day_at = spec
    shaped = pc.match_substring_regex(arr, pattern)
    parsed = pc.strptime(arr, format=fmt, unit="ns", error_is_null=True)
    ok = pc.and_kleene(shaped, pc.is_valid(parsed))
    if day_at is not None:
        digits = pc.if_else(ok, pc.utf8_slice_codeunits(arr, day_at, day_at + 2), None)
        written = pc.cast(digits, pa.int64())
        ok = pc.and_kleene(ok, pc.equal(pc.day(parsed), written))
    ok = ok.fill_null(False)
    values = pc.if_else(ok, parsed, pa.scalar(None, parsed.type))
    return values.to_numpy(zero_copy_only=False).astype("datetime64[ns]", copy=False)


# Excel keeps dates as day numbers from 30 December 1899: 20000 is 1954, 80000 is 2119.
_SERIAL_DAYS = (20_000, 80_000)
_SERIAL_RE = r"^\d{5}(?:\.\d+)?$"
# Day and month written as numbers at the start of a date: 25/12/2024, 12-25-24, 25.12.2024.
_DAY_MONTH_RE = r"^(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-]\d{2,4}(?:$|[ T])"


def format_dayfirst(fmt: str | None, dayfirst: bool) -> bool:
    """Whether dates read day-first: as ``fmt`` writes them (``%d`` before ``%m``), else
    as ``dayfirst`` says."""
    if fmt and "%d" in fmt and "%m" in fmt:
        return fmt.index("%d") < fmt.index("%m")
    return dayfirst


def _day_month_order(t: pd.Series, dayfirst: bool) -> np.ndarray:
    """Per value: 1 when it reads only in the configured order, -1 only in the other one.

    0 for values that read both ways (01/02/2024) or are not written day and month first.
    """
    arr = _arrow_strings(t)
    if arr is None:
        arr = pa.chunked_array([pa.array(t.astype(object).where(t.notna(), None), pa.string())])
    parts = pc.extract_regex(arr, _DAY_MONTH_RE)
    a = pc.cast(pc.struct_field(parts, "a"), pa.int64()).to_numpy(zero_copy_only=False)
    b = pc.cast(pc.struct_field(parts, "b"), pa.int64()).to_numpy(zero_copy_only=False)
    a, b = np.nan_to_num(a.astype("float64")), np.nan_to_num(b.astype("float64"))
    day, month = (a, b) if dayfirst else (b, a)
    fits = (day <= 31) & (month >= 1) & (month <= 12)
    swapped = (month <= 31) & (day >= 1) & (day <= 12)
    return np.where(fits & ~swapped, 1, np.where(swapped & ~fits, -1, 0)).astype(np.int8)


def excel_serial_dates(s: pd.Series) -> pd.Series:
    """Excel day numbers (``44805.294444``) as dates, to the second; ``NaT`` for other values.

    Only numbers from 20000 to 80000 (years 1954 to 2119) count as day numbers.
    """
    v = pd.to_numeric(s.astype("string").str.strip(), errors="coerce").astype("float64")
    ok = (v >= _SERIAL_DAYS[0]) & (v <= _SERIAL_DAYS[1])
    seconds = (v.where(ok) * 86_400).round()
    out = pd.Timestamp("1899-12-30") + pd.to_timedelta(seconds, unit="s")
    return out.astype("datetime64[ns]")


# A time-zone mark after a time of day: 10:00Z, 10:00:00.000Z, 19:30+01:00, 19:30 -0500,
# 18:30 UTC, 18:30 GMT+1 (what pandas reads as an offset). Only used to split a column
# that mixes offsets, or offsets and plain times, which pandas refuses to read at once.
_OFFSET_RE = (
    r"(?i)\d:\d\d(?::\d\d)?(?:[.,]\d+)?\s*"
    r"(?:(?:z|utc|gmt)(?:\s*[+-]\d{1,2}(?::?\d\d)?)?|[+-]\d\d(?::?\d\d)?)$"
)


def _utc_format(fmt: str | None) -> bool:
    """Whether ``fmt`` ends in a literal ``Z`` (``%Y-%m-%dT%H:%M:%SZ``): its times are UTC."""
    if not fmt:
        return False
    f = fmt.rstrip()
    return f.endswith("Z") and not f.endswith("%Z")


def to_local(values: pd.Series, tz: str | None) -> pd.Series:
    """Instants with a time zone as naive wall-clock times in ``tz`` (UTC when None).

    Naive values are returned unchanged: they are already local times.
    """
    if getattr(values.dt, "tz", None) is None:
        return values
    return values.dt.tz_convert(tz or "UTC").dt.tz_localize(None)


def _has_offset(t: pd.Series) -> pd.Series:
    """Where a value ends in a time-zone mark (:data:`_OFFSET_RE`), as a boolean series."""
    arr = _arrow_strings(t)
    if arr is None:
        found = t.astype("string").str.contains(_OFFSET_RE, regex=True)
        return found.fillna(False).astype(bool)
    found = pc.match_substring_regex(arr, _OFFSET_RE).fill_null(False)
    return pd.Series(found.to_numpy(zero_copy_only=False).astype(bool), index=t.index)


def _read_zoned(t: pd.Series, tz: str | None, **kw: Any) -> tuple[pd.Series, pd.Series]:
    """``pandas.to_datetime(t, errors="coerce", **kw)`` as naive local times in ``tz``,
    and which values were written with an offset (converted from it).

    A column where offsets differ (winter ``+00:00``, summer ``+01:00``), or where only
    some values have one, is split: those with an offset are read as instants and
    converted, the others are kept as written (already local).
    """
    valid = t.notna().to_numpy(dtype=bool)
    first = str(t.iloc[int(valid.argmax())]) if valid.any() else ""
    part = None
    if not re.search(_OFFSET_RE, first):  # a first value with an offset: split at once
        try:  # the usual case: no offsets (or one offset throughout)
            part = pd.to_datetime(t, errors="coerce", **kw)
        except ValueError:  # pandas: "Mixed timezones detected"
            part = None
        if part is not None:
            if getattr(part.dt, "tz", None) is None:
                return part, pd.Series(False, index=t.index)
            return to_local(part, tz), part.notna()
    zoned = _has_offset(t)
    if zoned.all() or not zoned.any():  # cannot split further: read every value as an instant
        part = pd.to_datetime(t, errors="coerce", utc=True, **kw)
        return to_local(part, tz), part.notna()
    plain, plain_zoned = _read_zoned(t[~zoned], tz, **kw)
    instants = to_local(pd.to_datetime(t[zoned], errors="coerce", utc=True, **kw), tz)
    out = pd.concat([plain.astype("datetime64[ns]"), instants.astype("datetime64[ns]")])
    was_zoned = pd.concat([plain_zoned, instants.notna()])
    return out.reindex(t.index), was_zoned.reindex(t.index).astype(bool)


@_per_distinct
def parse_dates(
    s: pd.Series,
    *,
    fmt: str | None = None,
    dayfirst: bool = True,
    order_check: bool = False,
    tz: str | None = None,
    zone_check: bool = False,
) -> tuple[pd.Series, ...]:
    """Parse dates and times.

    Tries the configured ``fmt`` first (fast), then ISO 8601, then Excel day numbers
    (when most values are such numbers), then a flexible parse with the organisation's
    day-first setting, so a file mixing ``25/12/2024 19:30`` and ``2024-12-25`` still
    reads. A value that reads only with day and month the other way round than the
    settings say (``09/13/2022`` when day-first) is never read the other way round: it
    is left unread.

    Time zones: a value written with an offset or ``Z`` (``2025-03-30T23:15:00Z``,
    ``2025-03-31T00:15:00+01:00``) is converted to ``tz`` and kept as the wall-clock time
    there, without a zone (both examples become 31 March 00:15 in Europe/London). A value
    without an offset is taken as already local and kept as written. Offsets may differ
    from value to value, and a column may mix values with and without one.

    Parameters
    ----------
    s : pandas.Series
        Raw values.
    fmt : str, optional
        The ``strftime`` format most values are written in.
    dayfirst : bool
        Whether ``01/02/2024`` is 1 February (when ``fmt`` does not say).
    order_check : bool
        Also return, per value, whether day and month are in the expected order.
    tz : str, optional
        The organisation's time zone (``Europe/London``): values written with an offset
        are converted to it. Default UTC.
    zone_check : bool
        Also return, per value, whether it was written with an offset (and converted).

    Returns
    -------
    values : pandas.Series of datetime64[ns]
    bad : pandas.Series of bool
        True where a value was present but could not be read.
    order : pandas.Series of int8, only with ``order_check``
        1 where a value reads only in the expected order (25/12/2024 when day-first),
        -1 where it reads only the other way round (then it is missing in ``values``
        and False in ``bad``), 0 otherwise. Only filled in when some value is -1.
    zoned : pandas.Series of bool, only with ``zone_check``
        True where a value was written with an offset and converted to ``tz``.
    """

    def answer(
        out: pd.Series, bad: pd.Series, order: pd.Series, zoned: pd.Series
    ) -> tuple[pd.Series, ...]:
        return (out, bad, *((order,) if order_check else ()), *((zoned,) if zone_check else ()))

    if pd.api.types.is_datetime64_any_dtype(s):
        aware = getattr(s.dt, "tz", None) is not None
        return answer(
            to_local(s, tz).astype("datetime64[ns]"),
            pd.Series(False, index=s.index),
            pd.Series(np.int8(0), index=s.index),
            s.notna() if aware else pd.Series(False, index=s.index),
        )
    empty = blank(s)
    t = s.astype("string").str.strip().mask(empty)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    order = pd.Series(np.int8(0), index=s.index)
    other_way = pd.Series(False, index=s.index)
    todo = ~empty
    zoned = pd.Series(False, index=s.index)
    utc_fmt = _utc_format(fmt)
    quick = _strict_dates(t, fmt) if fmt else None
    if quick is not None:  # values written exactly in the format: read by Arrow
        hit = ~np.isnat(quick)
        if utc_fmt and hit.any():  # the format ends in a literal Z: UTC times
            quick = to_local(pd.Series(quick).dt.tz_localize("UTC"), tz).to_numpy()
            zoned[hit] = True
        out[hit] = quick[hit]
        todo = todo & ~hit
    day_first = format_dayfirst(fmt, dayfirst)
    attempts: list[dict] = []
    if fmt:
        attempts.append({"format": fmt})
    attempts.append({"format": "ISO8601"})
    attempts.append({"serial": True})
    attempts.append({"format": "mixed", "dayfirst": day_first})
    for kw in attempts:
        if not todo.any():
            break
        if "serial" in kw:
            serial = t[todo].str.fullmatch(_SERIAL_RE).fillna(False).astype(bool)
            if serial.sum() * 2 <= int((~empty).sum()):
                continue  # day numbers only where most values are day numbers
            part = excel_serial_dates(t[todo][serial])
        else:
            if kw.get("format") == "mixed":
                # never read a value that only reads with day and month swapped
                found = _day_month_order(t[todo], day_first)
                other_way[todo] = found == -1
                if other_way.any():
                    order = pd.Series(_day_month_order(t, day_first), index=s.index)
                    todo = todo & ~other_way
                    if not todo.any():
                        break
            part, part_zoned = _read_zoned(t[todo], tz, **kw)
            if utc_fmt and kw.get("format") == fmt and not part_zoned.any():
                part = to_local(part.dt.tz_localize("UTC"), tz)  # a literal Z: UTC times
                part_zoned = part.notna()
            zoned.loc[part_zoned.index[part_zoned.to_numpy(dtype=bool)]] = True
        ok = part.notna()
        idx = part.index[ok]
        out.loc[idx] = part[ok].astype("datetime64[ns]")
        todo = todo & out.isna()
    bad = (~empty) & out.isna() & ~other_way
    return answer(out, bad.astype(bool), order, zoned)


@_per_distinct
def parse_int(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse whole numbers (``3``, ``3.0``, `` 3 ``); anything else is bad."""
    empty = blank(s)
    v = pd.to_numeric(
        s.astype("string").str.strip().str.replace(",", "", regex=False), errors="coerce"
    )
    whole = v.notna() & (v == np.floor(v)) & (v.abs() < 2**53)
    bad = (~empty) & ~whole.fillna(False)
    out = v.where(whole).astype("Float64").round().astype("Int64")
    return out, bad.astype(bool)


@_per_distinct
def parse_float(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse decimal numbers (a decimal comma is accepted)."""
    empty = blank(s)
    v = pd.to_numeric(
        s.astype("string").str.strip().str.replace(",", ".", regex=False), errors="coerce"
    )
    bad = (~empty) & v.isna()
    return v.astype("float64"), bad.astype(bool)


_TRUE = {"y", "yes", "true", "t", "1", "1.0"}
_FALSE = {"n", "no", "false", "f", "0", "0.0"}


@_per_distinct
def map_values(
    s: pd.Series, mapping: Mapping[str, object] | None, *, kind: str = "cat"
) -> tuple[pd.Series, pd.Series]:
    """Translate an export's words into canonical values.

    Matching ignores case and surrounding spaces. For ``bool`` columns, the usual
    yes/no words work without a mapping. Values already canonical pass through. A
    ``"*"`` key gives the value for every present word the mapping does not list
    (e.g. ``{Manual: true, "*": false}`` for a comp flag read from a status column).

    Returns
    -------
    values : pandas.Series
    unknown : pandas.Series of bool
        True where a value is present but not in the mapping.
    """
    empty = blank(s)
    key = s.astype("string").str.strip().str.lower()
    table: dict[str, object] = {}
    if kind == "bool":
        table.update({k: True for k in _TRUE})
        table.update({k: False for k in _FALSE})
    fallback = None
    if mapping:
        fallback = mapping.get("*")
        table.update({str(k).strip().lower(): v for k, v in mapping.items() if k != "*"})
    mapped = key.map(table)
    if kind == "cat":
        canonical = set(table.values())
        passthrough = key.isin({str(v).lower() for v in canonical if v is not None})
        mapped = mapped.where(mapped.notna(), key.where(passthrough))
    if fallback is not None:
        mapped = mapped.where(mapped.notna() | empty, fallback)
    unknown = (~empty) & mapped.isna()
    if kind == "bool":
        return mapped.astype("boolean"), unknown.astype(bool)
    return mapped.astype("string"), unknown.astype(bool)


def _first_word(t: pd.Series) -> pd.Series:
    """``t.str.split(" ").str[0]`` computed by Arrow (pandas splits text in Python)."""
    arr = _arrow_strings(t)
    if arr is None:
        return t.str.split(" ").str[0]
    first = pc.list_element(pc.split_pattern(arr, pattern=" "), 0)
    return _string_series(first, t)


@_per_distinct
def postcode_district(s: pd.Series, mode: str = "uk") -> pd.Series:
    """Keep only the district (outward code) of a postcode.

    ``uk``: the part before the space (``SE1 7PB`` gives ``SE1``; without a space the
    last three characters are the inward code). ``prefix3``: first three characters
    (e.g. ZIP code prefixes). ``none``: drop postcodes entirely.
    """
    t = clean_text(s).str.upper()
    if mode == "none":
        return pd.Series(pd.NA, index=s.index, dtype="string")
    if mode == "prefix3":
        return t.str.replace(r"\s+", "", regex=True).str.slice(0, 3)
    compact = t.str.replace(r"\s+", " ", regex=True)
    has_space = compact.str.contains(" ", regex=False).fillna(False)
    out = _first_word(compact)
    nospace = compact.str.slice(0, -3)
    out = out.where(has_space, nospace.where(compact.str.len() > 4, compact))
    return out.mask(out == "").astype("string")
