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


def test_dates_with_an_offset_become_local_wall_clock_time() -> None:
    """UTC and offset times are converted to the organisation's zone; plain times are local."""
    s = pd.Series(
        [
            "2025-03-30T23:15:00Z",  # 00:15 BST on 31 March
            "2025-03-31T00:15:00+01:00",  # the same instant, written in BST
            "2025-01-15T10:00:00.000Z",  # winter: GMT is UTC
            "2024-10-01T10:00:00.000Z",  # summer: 11:00 BST (the PatronManager shape)
            "2025-03-01T19:30:00+00:00",  # offsets differ from row to row
            "25/12/2024 19:30",  # no offset: already local
            "",
        ]
    )
    out, bad, zoned = parse_dates(s, dayfirst=True, tz="Europe/London", zone_check=True)
    assert out.tolist()[:6] == [
        pd.Timestamp("2025-03-31 00:15"),
        pd.Timestamp("2025-03-31 00:15"),
        pd.Timestamp("2025-01-15 10:00"),
        pd.Timestamp("2024-10-01 11:00"),
        pd.Timestamp("2025-03-01 19:30"),
        pd.Timestamp("2024-12-25 19:30"),
    ]
    assert out.dtype == "datetime64[ns]" and pd.isna(out.iloc[6])
    assert zoned.tolist() == [True, True, True, True, True, False, False]
    assert not bad.any()


def test_dates_with_winter_and_summer_offsets_in_one_column() -> None:
    """+00:00 and +01:00 in one column read (pandas alone refuses), on many rows too."""
    s = pd.Series(["2024-12-01T19:30:00+00:00", "2025-04-10T19:30:00+01:00"] * 1_500)
    out, bad = parse_dates(s, fmt="%d/%m/%Y %H:%M", tz="Europe/London")
    assert out.iloc[:2].tolist() == [
        pd.Timestamp("2024-12-01 19:30"),
        pd.Timestamp("2025-04-10 19:30"),
    ]
    assert out.nunique() == 2 and not bad.any()
    # in New York the same instants are five (winter) and four (summer) hours earlier
    ny, _ = parse_dates(s.iloc[:2], tz="America/New_York")
    assert ny.tolist() == [pd.Timestamp("2024-12-01 14:30"), pd.Timestamp("2025-04-10 14:30")]


def test_dates_mixing_offsets_and_plain_times() -> None:
    s = pd.Series(["2025-06-30T23:15:00Z", "2025-06-30 23:15", "30/06/2025 23:15"] * 700)
    out, bad, order, zoned = parse_dates(
        s, dayfirst=True, tz="Europe/London", order_check=True, zone_check=True
    )
    assert out.iloc[:3].tolist() == [
        pd.Timestamp("2025-07-01 00:15"),  # converted from UTC
        pd.Timestamp("2025-06-30 23:15"),  # kept as written
        pd.Timestamp("2025-06-30 23:15"),
    ]
    assert zoned.iloc[:3].tolist() == [True, False, False] and int(zoned.sum()) == 700
    assert not bad.any()


def test_dates_in_a_format_ending_in_z_are_utc() -> None:
    s = pd.Series(["2025-07-01T09:00:00Z", "2025-02-01T09:00:00Z"])
    out, _, zoned = parse_dates(s, fmt="%Y-%m-%dT%H:%M:%SZ", tz="Europe/London", zone_check=True)
    assert out.tolist() == [pd.Timestamp("2025-07-01 10:00"), pd.Timestamp("2025-02-01 09:00")]
    assert zoned.all()


def test_plain_dates_are_unchanged_by_the_time_zone() -> None:
    s = pd.Series(["30/03/2025 01:30", "26/10/2025 01:30", "2025-03-30"])
    plain, _ = parse_dates(s, fmt="%d/%m/%Y %H:%M")
    local, _, zoned = parse_dates(s, fmt="%d/%m/%Y %H:%M", tz="Europe/London", zone_check=True)
    assert (
        local.tolist()
        == plain.tolist()
        == [
            pd.Timestamp("2025-03-30 01:30"),
            pd.Timestamp("2025-10-26 01:30"),
            pd.Timestamp("2025-03-30"),
        ]
    )
    assert not zoned.any()


def test_dates_already_read_with_a_zone_are_converted() -> None:
    s = pd.Series(pd.to_datetime(["2025-03-30T23:15:00Z", None], utc=True))
    out, bad = parse_dates(s, tz="Europe/London")
    assert out.iloc[0] == pd.Timestamp("2025-03-31 00:15") and pd.isna(out.iloc[1])
    assert out.dtype == "datetime64[ns]" and not bad.any()


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
