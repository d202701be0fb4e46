"""Parsers on the values real exports hold, with hand-computed answers."""

from __future__ import annotations

import pandas as pd
import pytest

from playbook.parsing import (
    blank,
    clean_id,
    map_values,
    parse_dates,
    parse_int,
    parse_money,
    postcode_district,
)
from playbook.seasons import latest_complete_season, season_bounds, season_of


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("£1,234.50", 1234.50),
        ("1.234,50 €", 1234.50),
        ("€12,5", 12.5),
        ("$1,234", 1234.0),
        ("(12.00)", -12.0),
        ("-£5", -5.0),
        ("£-5.00", -5.0),
        ("GBP 7.25", 7.25),
        (" 42 ", 42.0),
        ("0", 0.0),
    ],
)
def test_money_formats(text: str, value: float) -> None:
    out, bad = parse_money(pd.Series([text]))
    assert out.iloc[0] == pytest.approx(value)
    assert not bad.iloc[0]


@pytest.mark.parametrize("text", ["twelve pounds", "1.2.3", "£12abc", "??"])
def test_money_junk_is_flagged(text: str) -> None:
    out, bad = parse_money(pd.Series([text]))
    assert bad.iloc[0] and pd.isna(out.iloc[0])


def test_money_blank_is_missing_not_bad() -> None:
    out, bad = parse_money(pd.Series(["", None, "  "], dtype="object"))
    assert out.isna().all() and not bad.any()


def test_money_decimal_comma_setting_and_minor_units() -> None:
    out, _ = parse_money(pd.Series(["1.234", "12,50"]), decimal=",")
    assert out.tolist() == [1234.0, 12.5]
    out, _ = parse_money(pd.Series(["1050", "99"]), minor_units=True)
    assert out.tolist() == [10.5, 0.99]


def test_dates_with_format_and_fallbacks() -> None:
    s = pd.Series(["25/12/2024 19:30", "2024-12-26", "03/04/2025 10:00", "31/02/2024 10:00", ""])
    out, bad = parse_dates(s, fmt="%d/%m/%Y %H:%M", dayfirst=True)
    assert out.iloc[0] == pd.Timestamp("2024-12-25 19:30")
    assert out.iloc[1] == pd.Timestamp("2024-12-26")
    assert out.iloc[2] == pd.Timestamp("2025-04-03 10:00")  # day first
    assert bad.tolist() == [False, False, False, True, False]


def test_dates_month_first() -> None:
    out, _ = parse_dates(pd.Series(["03/04/2025"]), dayfirst=False)
    assert out.iloc[0] == pd.Timestamp("2025-03-04")


def test_int_and_ids() -> None:
    out, bad = parse_int(pd.Series(["3", "3.0", "two", "", "2.5"]))
    assert out.tolist()[:2] == [3, 3]
    assert bad.tolist() == [False, False, True, False, True]
    assert clean_id(pd.Series([" 123.0", "A-7", ""])).tolist()[:2] == ["123", "A-7"]
    assert blank(pd.Series(["", "n/a", "x", None], dtype="object")).tolist() == [
        True,
        True,
        False,
        True,
    ]


def test_map_values_ignores_case_and_flags_unknown() -> None:
    out, unknown = map_values(
        pd.Series(["Sold", " returned ", "Pending", None]),
        {"Sold": "active", "Returned": "returned"},
    )
    assert out.tolist()[:2] == ["active", "returned"]
    assert unknown.tolist() == [False, False, True, False]
    flags, unknown = map_values(pd.Series(["Y", "no", "maybe"]), None, kind="bool")
    assert flags.tolist()[:2] == [True, False] and unknown.tolist() == [False, False, True]


def test_postcode_district() -> None:
    s = pd.Series(["SE1 7PB", "sw1a1aa", "M1  1AE", "", "EH1"])
    assert postcode_district(s).tolist()[:3] == ["SE1", "SW1A", "M1"]
    assert postcode_district(pd.Series(["90210"]), "prefix3").tolist() == ["902"]
    assert postcode_district(s, "none").isna().all()


def test_seasons() -> None:
    d = pd.Series(pd.to_datetime(["2025-08-31", "2025-09-01", "2026-01-15"]))
    assert season_of(d, 9).tolist() == ["2024-25", "2025-26", "2025-26"]
    assert season_of(d, 1).tolist() == ["2025", "2025", "2026"]
    assert season_bounds("2025-26", 9) == (pd.Timestamp("2025-09-01"), pd.Timestamp("2026-09-01"))
    assert latest_complete_season(pd.Timestamp("2026-08-31 23:00"), 9) == "2025-26"
    assert latest_complete_season(pd.Timestamp("2026-05-01"), 9) == "2024-25"
    assert latest_complete_season(pd.Timestamp("2026-07-29"), 9) == "2025-26"  # summer break


def test_default_season() -> None:
    from playbook.seasons import default_season

    times = pd.Series(pd.to_datetime(["2022-09-05", "2024-03-01", "2026-07-29"]))
    assert default_season(times, 9) == "2025-26"
    short = pd.Series(pd.to_datetime(["2024-09-05", "2024-11-01"]))  # less than a season
    assert default_season(short, 9) == "2024-25"
