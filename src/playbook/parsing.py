"""Vectorised parsers for the messy values found in exports.

Each parser returns the parsed values and a boolean mask of the values that were
present but could not be read, so intake can drop those rows with a reason instead of
silently turning them into blanks.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

_EMPTY = {"", "nan", "none", "null", "n/a", "na", "-"}
_EMPTY_RE = r"(?i)(?:|nan|none|null|n/a|na|-)"
# Plain amounts (the vast majority): read directly, without the general parser.
_SIMPLE_MONEY = r"-?[£$€]?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
# Currency marks allowed around an amount; any other letters make the amount unreadable.
CURRENCY_CODES = (
    "GBP EUR USD CAD AUD NZD CHF SEK NOK DKK ISK PLN CZK HUF JPY CNY HKD SGD INR ZAR "
    "ILS MXN BRL AED KR ZŁ"
).split()
_CURRENCY = r"(?i)^(?:[£$€¥₹]|" + "|".join(CURRENCY_CODES) + r")?$"


def blank(s: pd.Series) -> pd.Series:
    """True where a value is missing or only whitespace (or a usual 'empty' word)."""
    if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
        return s.isna()
    t = s.astype("string").str.strip()
    return (t.isna() | t.str.fullmatch(_EMPTY_RE)).fillna(True).astype(bool)


def clean_text(s: pd.Series) -> pd.Series:
    """Strip whitespace; blanks become missing. Returns a ``string`` series."""
    t = s.astype("string").str.strip()
    return t.mask(blank(s))


def clean_id(s: pd.Series) -> pd.Series:
    """Identifiers as strings: trimmed, ``123.0`` read back as ``123``, blanks missing."""
    if pd.api.types.is_float_dtype(s):
        whole = s.notna() & (s == np.floor(s))
        out = s.astype("string")
        out = out.mask(whole, s[whole].astype("int64").astype("string"))
        return out
    t = clean_text(s)
    return t.str.replace(r"^(\d+)\.0$", r"\1", regex=True)


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


def parse_dates(
    s: pd.Series, *, fmt: str | None = None, dayfirst: bool = True
) -> tuple[pd.Series, pd.Series]:
    """Parse dates and times.

    Tries the configured ``fmt`` first (fast), then ISO 8601, then a flexible parse with
    the organisation's day-first setting, so a file mixing ``25/12/2024 19:30`` and
    ``2024-12-25`` still reads.

    Returns
    -------
    values : pandas.Series of datetime64[ns]
    bad : pandas.Series of bool
        True where a value was present but could not be read.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        return out.astype("datetime64[ns]"), pd.Series(False, index=s.index)
    empty = blank(s)
    t = s.astype("string").str.strip().mask(empty)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    todo = ~empty
    attempts: list[dict] = []
    if fmt:
        attempts.append({"format": fmt})
    attempts.append({"format": "ISO8601"})
    attempts.append({"format": "mixed", "dayfirst": dayfirst})
    for kw in attempts:
        if not todo.any():
            break
        part = pd.to_datetime(t[todo], errors="coerce", **kw)
        if getattr(part.dt, "tz", None) is not None:
            part = part.dt.tz_localize(None)
        ok = part.notna()
        idx = part.index[ok]
        out.loc[idx] = part[ok].astype("datetime64[ns]")
        todo = todo & out.isna()
    bad = (~empty) & out.isna()
    return out, bad.astype(bool)


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
    out = compact.str.split(" ").str[0]
    nospace = compact.str.slice(0, -3)
    out = out.where(has_space, nospace.where(compact.str.len() > 4, compact))
    return out.mask(out == "").astype("string")
