"""Damaged exports: intake stops with a plain message, or keeps and says what it did.

Month-first dates in a day-first organisation, Excel day numbers, customer ids written
differently in two exports, typos in ``values:`` targets and words org.yaml does not map.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_FILES, TINY_ORG_YAML, write_org

from playbook import parsing
from playbook.errors import ConfigError, IntakeError
from playbook.intake import run_intake

TODAY = "2025-01-01"
HEADER = "Line ID,Order ID,Customer ID,Order Date,Channel,Instance ID,List Price,Paid,Status,Original Line ID"


def line(
    i: int, when: str, customer: str = "1001", channel: str = "Web", status: str = "Sold"
) -> str:
    return f"L{i},O{i},{customer},{when},{channel},P1,£10.00,£10.00,{status},"


def org_with(tmp_path: Path, lines: list[str], yaml: str = TINY_ORG_YAML, **files: str) -> Path:
    sales = dict(TINY_FILES)
    sales["sales.csv"] = "\n".join([HEADER, *lines]) + "\n"
    sales.update(files)
    return write_org(tmp_path / "org", sales, yaml)


# --- 1. day and month the other way round --------------------------------------------


def test_parse_dates_never_swaps_day_and_month() -> None:
    s = pd.Series(["09/13/2022 10:00", "25/12/2024 19:30", "01/12/2024 10:00", "2024-12-25"])
    values, bad, order = parsing.parse_dates(s, fmt="%d/%m/%Y %H:%M", order_check=True)
    # 09/13/2022 reads only month-first: left unread (and not counted as unreadable)
    assert pd.isna(values[0]) and not bad[0] and order[0] == -1
    assert values[1] == pd.Timestamp("2024-12-25 19:30") and order[1] == 1
    assert values[2] == pd.Timestamp("2024-12-01 10:00") and order[2] == 0
    assert values[3] == pd.Timestamp("2024-12-25") and order[3] == 0
    # month-first settings: the other way round
    values, bad, order = parsing.parse_dates(
        pd.Series(["25/12/2024"]), dayfirst=False, order_check=True
    )
    assert pd.isna(values[0]) and order[0] == -1


US_DATES = [
    line(i, f"{m:02d}/{d:02d}/2024 10:00")
    for i, (m, d) in enumerate([(9, 13), (1, 12), (10, 2), (11, 28), (12, 1), (9, 30)])
]


def test_month_first_sales_dates_stop_intake_with_the_format_to_set(tmp_path: Path) -> None:
    org = org_with(tmp_path, US_DATES)
    with pytest.raises(IntakeError) as err:
        run_intake(org, today=TODAY)
    msg = str(err.value)
    assert "sales.csv" in msg and "'Order Date'" in msg and "row 2" in msg
    assert "month-first" in msg and "'09/13/2024 10:00'" in msg
    assert 'date_format: "%m/%d/%Y %H:%M"' in msg


def test_month_first_dates_without_format_name_the_dayfirst_setting(tmp_path: Path) -> None:
    yaml = TINY_ORG_YAML.replace(
        '    file: sales.csv\n    date_format: "%d/%m/%Y %H:%M"\n', "    file: sales.csv\n"
    )
    with pytest.raises(IntakeError) as err:
        run_intake(org_with(tmp_path, US_DATES, yaml), today=TODAY)
    assert "dayfirst: false" in str(err.value) and "locale_dayfirst: false" in str(err.value)
    # with the setting the message names, every date reads month-first
    fixed = yaml.replace("    file: sales.csv\n", "    file: sales.csv\n    dayfirst: false\n")
    (tmp_path / "org" / "org.yaml").write_text(fixed)
    r = run_intake(tmp_path / "org", today=TODAY)
    got = r.tables.order_lines.set_index("line_id")["purchase_time"]
    assert got["L1"] == pd.Timestamp("2024-01-12 10:00")  # not 1 December
    assert got["L0"] == pd.Timestamp("2024-09-13 10:00")
    assert len(got) == 6


def test_a_stray_month_first_date_among_many_day_first_ones_is_dropped(tmp_path: Path) -> None:
    lines = [line(i, f"{13 + i % 15:02d}/{1 + i % 12:02d}/2024 10:00") for i in range(150)]
    lines.append(line(999, "09/13/2024 10:00"))
    r = run_intake(org_with(tmp_path, lines), today=TODAY)
    d = r.ledger.dropped_rows()
    assert d["reason"].tolist() == ["ambiguous_date_order"]
    assert d["value"].tolist() == ["09/13/2024 10:00"] and d["row"].tolist() == [152]
    assert len(r.tables.order_lines) == 150


def test_month_first_created_dates_of_customers_stop_intake(tmp_path: Path) -> None:
    customers = "Customer ID,Postcode,DOB,Created\n1001,SE1 7PB,,12/31/2020\n1002,,,01/02/2021\n1003,,,03/03/2021\n"
    with pytest.raises(IntakeError) as err:
        run_intake(
            org_with(tmp_path, [line(1, "05/09/2024 10:00")], **{"customers.csv": customers}),
            today=TODAY,
        )
    assert "customers.csv" in str(err.value) and "'Created'" in str(err.value)
    assert 'date_format: "%m/%d/%Y"' in str(err.value)


# --- 2. Excel day numbers, and a column no row can use --------------------------------


def test_excel_day_numbers_read_as_dates() -> None:
    got = parsing.excel_serial_dates(pd.Series(["45292.5", "44805.294444", "123", "x"]))
    assert got[0] == pd.Timestamp("2024-01-01 12:00")
    assert got[1] == pd.Timestamp("2022-09-01 07:04:00")  # 0.294444 days, to the second
    assert pd.isna(got[2]) and pd.isna(got[3])
    values, bad = parsing.parse_dates(pd.Series(["45292.5", "45293", ""]), fmt="%d/%m/%Y %H:%M")
    assert values.tolist()[:2] == [pd.Timestamp("2024-01-01 12:00"), pd.Timestamp("2024-01-02")]
    assert not bad.any()
    # a lone number among dates is not a day number
    values, bad = parsing.parse_dates(pd.Series(["45292", "01/01/2024", "02/01/2024"]))
    assert bad.tolist() == [True, False, False]


def test_sales_with_excel_day_numbers_are_kept(tmp_path: Path) -> None:
    lines = [line(i, f"{45536 + i}.75") for i in range(5)]  # 1 to 5 September 2024, 18:00
    r = run_intake(org_with(tmp_path, lines), today=TODAY)
    got = r.tables.order_lines.sort_values("line_id")["purchase_time"].tolist()
    assert got == [pd.Timestamp(f"2024-09-0{d} 18:00") for d in range(1, 6)]
    assert r.ledger.dropped_rows().empty


def test_unreadable_dates_in_every_sales_row_stop_intake(tmp_path: Path) -> None:
    lines = [line(i, "TBC" if i % 2 else "soon") for i in range(12)]
    with pytest.raises(IntakeError) as err:
        run_intake(org_with(tmp_path, lines), today=TODAY)
    msg = str(err.value)
    assert "'Order Date'" in msg and "12 of 12 rows" in msg
    assert "'soon' in row 2, 'TBC' in row 3" in msg and "date_format" in msg


def test_some_unreadable_dates_are_still_dropped_row_by_row(tmp_path: Path) -> None:
    lines = [line(i, "TBC" if i < 2 else "05/09/2024 10:00") for i in range(12)]
    r = run_intake(org_with(tmp_path, lines), today=TODAY)
    assert r.ledger.dropped_rows()["reason"].tolist() == ["unparseable_date"] * 2


# --- 3. customer ids written differently in the two exports ---------------------------

CUSTOMERS = "Customer ID,Postcode,DOB,Created\n" + "".join(
    f"{1000 + i},,,01/01/2020\n" for i in range(25)
)


def test_leading_zeros_in_sales_customer_ids_stop_intake(tmp_path: Path) -> None:
    lines = [line(i, "05/09/2024 10:00", customer=f"00{1000 + i}") for i in range(25)]
    with pytest.raises(IntakeError) as err:
        run_intake(org_with(tmp_path, lines, **{"customers.csv": CUSTOMERS}), today=TODAY)
    msg = str(err.value)
    assert "25 of the 25 customer ids" in msg and "leading zeros" in msg
    assert "sales '001000'" in msg and "customers '1000'" in msg


def test_a_few_unknown_customers_are_counted_and_explained(tmp_path: Path) -> None:
    lines = [line(i, "05/09/2024 10:00", customer=str(1000 + i)) for i in range(25)]
    lines.append(line(99, "05/09/2024 10:00", customer="1.02E+03"))
    r = run_intake(org_with(tmp_path, lines, **{"customers.csv": CUSTOMERS}), today=TODAY)
    assert r.stub_customers == 1
    (note,) = r.notes
    assert (
        "customers who bought but are not in 'customers.csv': 1." in note and "3.84288E+05" in note
    )
    info = json.loads((tmp_path / "org" / "canonical" / "intake.json").read_text())
    assert info["notes"] == [note] and info["stub_customers"] == 1


# --- 4. a typo in a values: target ----------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (
            "Exchanged: exchanged",
            "Exchanged: exchange",
            "values.status maps 'Exchanged' to 'exchange'",
        ),
        ("Web: online", "Web: web", "values.channel maps 'Web' to 'web'; allowed: online, phone"),
    ],
)
def test_values_target_typo_is_a_config_error(
    tmp_path: Path, old: str, new: str, needle: str
) -> None:
    org = org_with(tmp_path, [line(1, "05/09/2024 10:00")], TINY_ORG_YAML.replace(old, new))
    with pytest.raises(ConfigError) as err:
        run_intake(org, today=TODAY)
    assert "sources.order_lines." + needle in str(err.value)
    if "exchange'" in needle:
        assert "'Exchanged: exchanged'" in str(err.value)  # the likely word


# --- 5. words org.yaml does not map ---------------------------------------------------


def test_unmapped_status_word_says_which_line_to_add(tmp_path: Path) -> None:
    lines = [line(1, "05/09/2024 10:00"), line(2, "05/09/2024 10:00", status="Void")]
    lines.append(line(3, "05/09/2024 10:00", status="Void"))
    r = run_intake(org_with(tmp_path, lines), today=TODAY)
    d = r.ledger.dropped_rows()
    assert d["reason"].tolist() == ["unknown_value"] * 2
    assert "add `Void: void` under sources.order_lines.values.status" in d["message"].iloc[0]
    assert r.notes == [
        "sales.csv: 2 rows dropped, column 'Status': 'Void' is not in the org.yaml mapping: "
        "add `Void: void` under sources.order_lines.values.status."
    ]


def test_unmapped_channel_word_keeps_the_sale_as_other(tmp_path: Path) -> None:
    lines = [line(1, "05/09/2024 10:00"), line(2, "05/09/2024 10:00", channel="Kiosk")]
    r = run_intake(org_with(tmp_path, lines), today=TODAY)
    assert r.ledger.dropped_rows().empty
    ol = r.tables.order_lines.set_index("line_id")
    assert ol.loc["L2", "channel"] == "other" and ol.loc["L1", "channel"] == "online"
    (note,) = r.notes
    assert "'Kiosk' in column 'Channel' (1 row) is not in the org.yaml mapping" in note
    assert "add `Kiosk: <one of online, phone, box_office, other>`" in note


# --- 6. smaller: decimal comma on dot amounts, date_format, header and total rows -----


def test_decimal_comma_setting_on_amounts_with_a_point_stops_intake(tmp_path: Path) -> None:
    yaml = TINY_ORG_YAML.replace("    file: sales.csv\n", '    file: sales.csv\n    decimal: ","\n')
    with pytest.raises(IntakeError) as err:
        run_intake(org_with(tmp_path, [line(1, "05/09/2024 10:00")], yaml), today=TODAY)
    assert "decimal point (like '£10.00')" in str(err.value) and "'List Price'" in str(err.value)
    # amounts really written with a decimal comma still read
    yaml_ok = yaml
    lines = [line(1, "05/09/2024 10:00").replace("£10.00,£10.00", '"10,50","1.010,50"')]
    r = run_intake(org_with(tmp_path / "ok", lines, yaml_ok), today=TODAY)
    assert r.tables.order_lines["paid_amount"].tolist() == [1010.5]


def test_date_format_that_is_not_strftime_is_a_config_error(tmp_path: Path) -> None:
    yaml = TINY_ORG_YAML.replace(
        'date_format: "%d/%m/%Y %H:%M"\n    columns:\n      line_id',
        'date_format: "dd/mm/yyyy hh:mm"\n    columns:\n      line_id',
    )
    with pytest.raises(ConfigError) as err:
        run_intake(org_with(tmp_path, [line(1, "05/09/2024 10:00")], yaml), today=TODAY)
    assert "not a strftime format" in str(err.value)
    assert 'date_format: "%d/%m/%Y %H:%M"' in str(err.value)


def test_repeated_header_and_customers_total_row_are_dropped_with_their_reason(
    tmp_path: Path,
) -> None:
    lines = [line(1, "05/09/2024 10:00"), HEADER, line(2, "05/09/2024 10:00")]
    customers = textwrap.dedent(TINY_FILES["customers.csv"]) + "Total: 3 customers,,,,,\n"
    r = run_intake(org_with(tmp_path, lines, **{"customers.csv": customers}), today=TODAY)
    d = r.ledger.dropped_rows().set_index("reason")
    assert d.loc["repeated_header", "row"] == 3 and d.loc["repeated_header", "file"] == "sales.csv"
    assert d.loc["total_row", "value"] == "Total: 3 customers"
    assert len(d) == 2 and len(r.tables.order_lines) == 2
    assert r.stub_customers == 0


def test_empty_customer_column_in_every_sales_row_stops_intake(tmp_path: Path) -> None:
    lines = [line(i, "05/09/2024 10:00", customer="") for i in range(12)]
    with pytest.raises(IntakeError) as err:
        run_intake(org_with(tmp_path, lines), today=TODAY)
    assert "12 of 12 rows have no customer id in column 'Customer ID'" in str(err.value)
