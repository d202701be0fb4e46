"""Property tests: random valid and invalid values fed to the parsers, schemas and ledger."""

from __future__ import annotations

import datetime as dt
import string

import numpy as np
import pandas as pd
import pandera.errors
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from playbook import parsing
from playbook.ledger import REASONS, Ledger
from playbook.schema import LINE_STATUSES, TABLES, conform, pandera_schema

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- money ------------------------------------------------------------------------------

pence = st.integers(min_value=-(10**9), max_value=10**9)


def _group(digits: str, sep: str) -> str:
    out = []
    while len(digits) > 3:
        out.insert(0, digits[-3:])
        digits = digits[:-3]
    out.insert(0, digits)
    return sep.join(out)


@st.composite
def formatted_amount(draw) -> tuple[str, float, str]:
    """An amount written the way exports write money, with its value and decimal mark."""
    p = draw(pence)
    units, cents = divmod(abs(p), 100)
    style = draw(st.sampled_from(["uk", "euro", "plain", "minus_after", "parens"]))
    symbol = draw(st.sampled_from(["", "£", "$", "€", "GBP ", "EUR "]))
    grouped = draw(st.booleans())
    if style == "euro":
        body = (_group(str(units), ".") if grouped else str(units)) + f",{cents:02d}"
        text = f"{body} {symbol.strip()}".strip() if symbol else body
        dec = ","
    else:
        body = (_group(str(units), ",") if grouped else str(units)) + f".{cents:02d}"
        text = f"{symbol}{body}"
        dec = "."
    if p < 0:
        text = {"minus_after": f"{text}-", "parens": f"({text})"}.get(style, f"-{text}")
    pad = draw(st.sampled_from(["", " ", "  "]))
    return pad + text + pad, p / 100, dec


@FAST
@given(st.lists(formatted_amount(), min_size=1, max_size=20))
def test_any_formatted_amount_round_trips(items) -> None:
    texts = pd.Series([t for t, _, _ in items], dtype="string")
    values, bad = parsing.parse_money(texts)
    assert not bad.any(), texts[bad].tolist()
    assert values.to_numpy() == pytest.approx([v for _, v, _ in items])
    # stating the decimal mark gives the same answer
    for dec in (".", ","):
        pick = [i for i, (_, _, d) in enumerate(items) if d == dec]
        if pick:
            v2, b2 = parsing.parse_money(texts.iloc[pick], decimal=dec)
            assert not b2.any()
            assert v2.to_numpy() == pytest.approx([items[i][1] for i in pick])


@FAST
@given(st.lists(pence, min_size=1, max_size=20))
def test_minor_units_round_trip(values) -> None:
    out, bad = parsing.parse_money(pd.Series([str(v) for v in values]), minor_units=True)
    assert not bad.any()
    assert out.to_numpy() == pytest.approx(np.array(values) / 100)


junk = st.text(alphabet=string.ascii_letters + "!?#@%&*_=", min_size=1, max_size=12)


@FAST
@given(junk, st.sampled_from(["", "£", "12", "3.50"]))
def test_random_junk_is_never_silently_money(word, around) -> None:
    assume(word.strip().lower() not in {"nan", "none", "null", "na", "n/a"})
    assume(word.upper() not in parsing.CURRENCY_CODES)
    text = pd.Series([around + word, word + around])
    values, bad = parsing.parse_money(text)
    assert bad.all(), (text.tolist(), values.tolist())
    assert values.isna().all()


# --- whole numbers ------------------------------------------------------------------------


@FAST
@given(st.lists(st.integers(min_value=-(10**12), max_value=10**12), min_size=1, max_size=20))
def test_whole_numbers_round_trip(values) -> None:
    texts = pd.Series([f" {v:,} " if i % 2 else f"{v}.0" for i, v in enumerate(values)])
    out, bad = parsing.parse_int(texts)
    assert not bad.any()
    assert out.tolist() == values


@FAST
@given(
    st.one_of(
        junk,
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)).map(str),
    )
)
def test_non_whole_quantities_are_flagged(text) -> None:
    assume(text.strip().lower() not in {"nan", "none", "null", "na", "n/a", "inf", "infinity"})
    out, bad = parsing.parse_int(pd.Series([text]))
    assert bad.iloc[0] and out.isna().iloc[0]


# --- dates -------------------------------------------------------------------------------

moments = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2035, 12, 31))


@FAST
@given(st.lists(moments, min_size=1, max_size=20), st.data())
def test_dates_in_the_usual_formats_round_trip(stamps, data) -> None:
    stamps = [s.replace(second=0, microsecond=0) for s in stamps]
    formats = ["%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:00", "%d %b %Y %H:%M"]
    texts = [s.strftime(data.draw(st.sampled_from(formats))) for s in stamps]
    out, bad = parsing.parse_dates(pd.Series(texts), fmt="%d/%m/%Y %H:%M", dayfirst=True)
    assert not bad.any(), texts
    assert out.tolist() == [pd.Timestamp(s) for s in stamps]


@FAST
@given(junk)
def test_junk_is_never_silently_a_date(word) -> None:
    assume(word.strip().lower() not in {"nan", "none", "null", "na", "n/a", "now", "today"})
    out, bad = parsing.parse_dates(pd.Series([word]))
    assert bad.iloc[0] and out.isna().iloc[0]


# --- words ------------------------------------------------------------------------------

word = st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=10).filter(
    lambda w: w.strip() and w.strip().lower() not in parsing._EMPTY
)


@FAST
@given(st.dictionaries(word, st.sampled_from(LINE_STATUSES), min_size=1, max_size=6), st.data())
def test_map_values_maps_known_words_and_flags_unknown_ones(mapping, data) -> None:
    keys = {k.strip().lower() for k in mapping}
    known = data.draw(st.lists(st.sampled_from(sorted(mapping)), max_size=10))
    unknown = data.draw(
        st.lists(
            word.filter(lambda w: w.strip().lower() not in keys | set(LINE_STATUSES)),
            max_size=5,
        )
    )
    # case and surrounding spaces do not matter
    series = pd.Series([f" {k.upper()} " for k in known] + unknown, dtype="string")
    out, flagged = parsing.map_values(series, mapping)
    table = {k.strip().lower(): v for k, v in mapping.items()}
    assert out[: len(known)].tolist() == [table[k.strip().lower()] for k in known]
    assert not flagged[: len(known)].any()
    assert flagged[len(known) :].all() and out[len(known) :].isna().all()
    # a wildcard gives every other present word a value, never a blank one
    out2, flagged2 = parsing.map_values(series, {**mapping, "*": "void"})
    assert not flagged2.any() and (out2[len(known) :] == "void").all()


# --- the canonical schemas ----------------------------------------------------------------


@st.composite
def order_lines_frame(draw) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=15))
    ids = [f"L{i}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "line_id": ids,
            "order_id": [f"O{draw(st.integers(0, 5))}" for _ in ids],
            "customer_id": [f"C{draw(st.integers(0, 5))}" for _ in ids],
            "purchase_time": [pd.Timestamp(draw(moments)) for _ in ids],
            "status": [draw(st.sampled_from(LINE_STATUSES)) for _ in ids],
            "quantity": [draw(st.integers(1, 20)) for _ in ids],
            "paid_amount": [draw(st.floats(-500, 500, allow_nan=False)) for _ in ids],
        }
    )
    return conform(frame, "order_lines")


@FAST
@given(order_lines_frame())
def test_valid_random_order_lines_pass_the_schema(frame) -> None:
    pandera_schema("order_lines").validate(frame, lazy=True)


@FAST
@given(
    order_lines_frame(),
    st.sampled_from(["bad_status", "negative_quantity", "missing_customer", "dup_key", "extra"]),
    st.data(),
)
def test_broken_order_lines_never_pass_the_schema(frame, fault, data) -> None:
    i = data.draw(st.integers(0, len(frame) - 1))
    if fault == "bad_status":
        frame.loc[i, "status"] = data.draw(word.filter(lambda w: w not in LINE_STATUSES))
    elif fault == "negative_quantity":
        frame.loc[i, "quantity"] = -data.draw(st.integers(1, 5))
    elif fault == "missing_customer":
        frame.loc[i, "customer_id"] = pd.NA
    elif fault == "dup_key":
        frame = pd.concat([frame, frame.iloc[[i]]], ignore_index=True)
    else:
        frame["email"] = "someone@example.org"  # strict: no column the model does not know
    with pytest.raises(pandera.errors.SchemaErrors):
        pandera_schema("order_lines").validate(frame, lazy=True)


@FAST
@given(st.sampled_from(sorted(TABLES)))
def test_every_empty_canonical_table_is_valid(name) -> None:
    pandera_schema(name).validate(conform(pd.DataFrame(), name), lazy=True)


# --- the ledger ---------------------------------------------------------------------------


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["a.csv", "b.csv", "c.xlsx"]),
        st.integers(min_value=0, max_value=200),
        min_size=1,
    ),
    st.data(),
)
def test_ledger_always_reconciles(files, data) -> None:
    ledger = Ledger()
    for name, rows in files.items():
        ledger.open_file(name, "order_lines", rows)
        left = list(range(2, rows + 2))
        while left and data.draw(st.booleans()):
            k = data.draw(st.integers(1, len(left)))
            chosen, left = left[:k], left[k:]
            ledger.drop(name, pd.Series(chosen), data.draw(st.sampled_from(sorted(REASONS))))
    ledger.check()
    s = ledger.summary()
    assert (s["rows_read"] == s["rows_kept"] + s["rows_dropped"]).all()
    assert (s["rows_kept"] >= 0).all()
    reasons = [r for r in REASONS if r in s.columns]
    assert (s[reasons].sum(axis=1) == s["rows_dropped"]).all()
    assert len(ledger.dropped_rows()) == s["rows_dropped"].sum()


def test_ledger_refuses_unknown_reasons_and_double_drops() -> None:
    ledger = Ledger()
    ledger.open_file("a.csv", "order_lines", 3)
    with pytest.raises(ValueError):
        ledger.drop("a.csv", pd.Series([2]), "because")
    ledger.drop("a.csv", pd.Series([2]), "blank_row")
    ledger.drop("a.csv", pd.Series([2]), "duplicate_line")
    with pytest.raises(AssertionError, match="twice"):
        ledger.check()
