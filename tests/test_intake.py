"""Intake on hand-written exports: what is kept, what is dropped and why, and errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY_FILES, TINY_ORG_YAML, write_org

from playbook.cli import main as cli_main
from playbook.errors import ConfigError, IntakeError
from playbook.intake import pseudonymise, run_intake

TODAY = "2025-01-01"
HEADER = "Line ID,Order ID,Customer ID,Order Date,Channel,Instance ID,List Price,Paid,Status,Original Line ID"
GOOD = "L9,O9,1001,06/09/2024 10:00,Web,P1,£10.00,£10.00,Sold,"


def org_with_sales(tmp_path: Path, *lines: str, header: str = HEADER, **extra: str) -> Path:
    """The tiny organisation with its sales export replaced."""
    files = dict(TINY_FILES)
    files["sales.csv"] = "\n".join([header, *lines]) + "\n"
    files.update(extra)
    return write_org(tmp_path / "org", files)


def dropped(result, reason: str) -> pd.DataFrame:
    d = result.ledger.dropped_rows()
    return d[d["reason"] == reason]


def assert_reconciles(result) -> None:
    s = result.summary()
    assert (s["rows_read"] == s["rows_kept"] + s["rows_dropped"]).all()
    for table, frame in result.tables.items():
        files = s[s["table"] == table]
        if len(files) and table != "customers":  # customers may gain stub rows
            assert len(frame) == files["rows_kept"].sum(), table


# --- the happy path --------------------------------------------------------------------


def test_tiny_org_known_answers(tiny_org: Path) -> None:
    r = run_intake(tiny_org, today=TODAY)
    ol = r.tables.order_lines
    assert len(ol) == 5
    assert ol["paid_amount"].sum() == pytest.approx(25 + 20 + 1025.50 - 1025.50 + 40)
    ret = ol[ol["status"] == "returned"].iloc[0]
    assert ret["parent_line_id"] == "L3" and ret["paid_amount"] == -1025.50
    assert set(ol["channel"]) == {"online", "phone", "box_office"}
    cust = r.tables.customers.set_index("customer_id")
    assert sorted(cust["postcode_district"]) == ["EH1", "M1", "SE1"]
    alice = cust[cust["postcode_district"] == "SE1"].iloc[0]
    assert (alice["birth_month"], alice["birth_day"]) == (2, 14)
    assert_reconciles(r)
    assert (tiny_org / "canonical" / "order_lines.parquet").exists()
    assert (tiny_org / "canonical" / "ledger_summary.csv").exists()


def test_personal_data_never_reaches_canonical_tables(tiny_org: Path) -> None:
    run_intake(tiny_org, today=TODAY)
    blob = b"".join(p.read_bytes() for p in (tiny_org / "canonical").glob("*"))
    for secret in (
        b"zq.private@example.org",
        b"Quartermaine",
        b"Wolstenholme",
        b"SE1 7PB",
        b"1980",
    ):
        assert secret not in blob
    # customer numbers are pseudonymised; the map stays in private/
    assert b"1001" not in b"".join(
        p.read_bytes() for p in (tiny_org / "canonical").glob("*.parquet")
    )
    ids = pd.read_parquet(tiny_org / "private" / "id_map.parquet")
    assert set(ids["source_customer_id"]) == {"1001", "1002", "1003"}


def test_pseudonyms_depend_on_the_salt() -> None:
    ids = pd.Series(["1001", "1002", "1001", None], dtype="string")
    a = pseudonymise(ids, b"salt-a")
    assert a[0] == a[2] and a[0] != a[1] and pd.isna(a[3])
    assert pseudonymise(ids, b"salt-b")[0] != a[0]


def test_same_input_gives_identical_tables(tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        org = write_org(tmp_path / name, TINY_FILES)
        (org / "private").mkdir()
        (org / "private" / "salt").write_text("fixed-salt\n")
        run_intake(org, today=TODAY)
        outs.append({p.name: p.read_bytes() for p in (org / "canonical").glob("*.parquet")})
    assert outs[0] == outs[1]


def test_semicolon_file_is_sniffed(tmp_path: Path) -> None:
    text = HEADER.replace(",", ";") + "\n" + GOOD.replace(",", ";") + "\n"
    org = org_with_sales(tmp_path, GOOD)
    (org / "sales.csv").write_text(text)
    r = run_intake(org, today=TODAY)
    assert len(r.tables.order_lines) == 1


def test_header_under_a_title_block(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD, "L10,O10,1002,07/09/2024 10:00,Web,P1,£5.00,bad,Sold,")
    text = (org / "sales.csv").read_text()
    (org / "sales.csv").write_text("Sales report\nExported 01/01/2025,,,\n" + text)
    r = run_intake(org, today=TODAY)
    assert len(r.tables.order_lines) == 1
    bad = dropped(r, "unparseable_amount")
    assert bad["row"].tolist() == [5]  # title, export line, header, L9, L10
    assert_reconciles(r)


def test_latin1_file_with_pound_signs(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    (org / "sales.csv").write_bytes((HEADER + "\n" + GOOD + "\n").encode("cp1252"))
    r = run_intake(org, today=TODAY)
    assert r.tables.order_lines["paid_amount"].tolist() == [10.0]


def test_utf8_bom(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    (org / "sales.csv").write_bytes(b"\xef\xbb\xbf" + (HEADER + "\n" + GOOD + "\n").encode())
    r = run_intake(org, today=TODAY)
    assert len(r.tables.order_lines) == 1


def test_excel_export_with_title_rows(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    width = len(HEADER.split(","))
    rows = [
        ["Box office sales"] + [None] * (width - 1),
        [None] * width,
        HEADER.split(","),
        GOOD.split(","),
    ]
    pd.DataFrame(rows).to_excel(org / "sales.xlsx", header=False, index=False)
    (org / "org.yaml").write_text(TINY_ORG_YAML.replace("file: sales.csv", "file: sales.xlsx"))
    r = run_intake(org, today=TODAY)
    assert r.tables.order_lines["paid_amount"].tolist() == [10.0]


def test_excel_sales_sheet_behind_a_summary_is_read_and_said(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    with pd.ExcelWriter(org / "sales.xlsx") as book:
        pd.DataFrame({"Metric": ["Lines"], "Value": [1]}).to_excel(
            book, sheet_name="Summary", index=False
        )
        pd.DataFrame([GOOD.split(",")], columns=HEADER.split(",")).to_excel(
            book, sheet_name="Sales", index=False
        )
    (org / "org.yaml").write_text(TINY_ORG_YAML.replace("file: sales.csv", "file: sales.xlsx"))
    r = run_intake(org, today=TODAY)
    assert r.tables.order_lines["paid_amount"].tolist() == [10.0]
    assert any("read sheet 'Sales'" in note for note in r.console_notes())


def test_parquet_export(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    frame = pd.read_csv(org / "sales.csv", dtype=str)
    frame.to_parquet(org / "sales.parquet")
    (org / "org.yaml").write_text(TINY_ORG_YAML.replace("file: sales.csv", "file: sales.parquet"))
    r = run_intake(org, today=TODAY)
    assert len(r.tables.order_lines) == 1


def test_money_in_minor_units(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, "L9,O9,1001,06/09/2024 10:00,Web,P1,1050,1050,Sold,")
    yaml_text = TINY_ORG_YAML.replace(
        "    file: sales.csv\n", "    file: sales.csv\n    minor_units: true\n"
    )
    (org / "org.yaml").write_text(yaml_text)
    r = run_intake(org, today=TODAY)
    assert r.tables.order_lines["paid_amount"].tolist() == [10.5]


# --- rows dropped with a reason ---------------------------------------------------------

BAD_ROWS = [
    ("blank_row", ",,,,,,,,,", None),
    ("missing_customer", "L20,O20,,06/09/2024 10:00,Web,P1,£10.00,£10.00,Sold,", "Customer ID"),
    ("unparseable_date", "L21,O21,1001,31/02/2024 10:00,Web,P1,£10.00,£10.00,Sold,", "Order Date"),
    ("unparseable_amount", "L22,O22,1001,06/09/2024 10:00,Web,P1,£10.00,ten pounds,Sold,", "Paid"),
    ("unknown_value", "L23,O23,1001,06/09/2024 10:00,Web,P1,£10.00,£10.00,Pending,", "Status"),
    (
        "unknown_performance",
        "L24,O24,1001,06/09/2024 10:00,Web,P99,£10.00,£10.00,Sold,",
        "Instance ID",
    ),
    ("negative_not_return", "L25,O25,1001,06/09/2024 10:00,Web,P1,£10.00,-£10.00,Sold,", "Paid"),
    (
        "orphan_return",
        "L26,O26,1001,06/09/2024 10:00,Web,P1,-£10.00,-£10.00,Returned,L404",
        "Original Line ID",
    ),
    ("future_date", "L27,O27,1001,06/09/2031 10:00,Web,P1,£10.00,£10.00,Sold,", "Order Date"),
    ("implausible_amount", "L28,O28,1001,06/09/2024 10:00,Web,P1,£10.00,£9999999.00,Sold,", "Paid"),
    ("duplicate_line", GOOD, None),
    ("duplicate_id", "L9,O9,1002,06/09/2024 10:00,Web,P1,£10.00,£12.00,Sold,", "Line ID"),
]


@pytest.mark.parametrize(("reason", "line", "column"), BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_row_is_dropped_with_its_reason(tmp_path: Path, reason: str, line: str, column) -> None:
    org = org_with_sales(tmp_path, GOOD, line)
    r = run_intake(org, today=TODAY)
    d = dropped(r, reason)
    assert d["row"].tolist() == [3], r.ledger.dropped_rows()
    assert d["file"].iloc[0] == "sales.csv"
    if column:
        assert d["column"].iloc[0] == column
    assert len(r.ledger.dropped_rows()) == 1  # the good row is kept, nothing else dropped
    assert r.tables.order_lines["line_id"].tolist() == ["L9"]
    assert_reconciles(r)


def test_bad_quantity(tmp_path: Path) -> None:
    header = HEADER + ",Qty"
    org = org_with_sales(tmp_path, GOOD + ",2", GOOD.replace("L9", "L30") + ",two", header=header)
    yaml_text = TINY_ORG_YAML.replace(
        "      status: Status\n", "      status: Status\n      quantity: Qty\n", 1
    )
    (org / "org.yaml").write_text(yaml_text)
    r = run_intake(org, today=TODAY)
    assert dropped(r, "bad_quantity")["value"].tolist() == ["two"]
    assert r.tables.order_lines["quantity"].tolist() == [2]


def test_return_of_a_dropped_line_is_an_orphan(tmp_path: Path) -> None:
    org = org_with_sales(
        tmp_path,
        "L40,O40,1001,06/09/2024 10:00,Web,P1,£10.00,oops,Sold,",
        "L41,O41,1001,07/09/2024 10:00,Web,P1,-£10.00,-£10.00,Returned,L40",
    )
    r = run_intake(org, today=TODAY)
    assert set(r.ledger.dropped_rows()["reason"]) == {"unparseable_amount", "orphan_return"}
    assert_reconciles(r)


def test_messages_name_the_value_in_the_ledger(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD, "L21,O21,1001,31/02/2024 10:00,Web,P1,£10.00,£10.00,Sold,")
    r = run_intake(org, today=TODAY)
    row = dropped(r, "unparseable_date").iloc[0]
    assert row["value"] == "31/02/2024 10:00"
    assert "cannot be read" in row["message"]


# --- files that cannot be used at all ---------------------------------------------------


def test_missing_required_column(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD.rsplit(",", 3)[0], header=HEADER.rsplit(",", 3)[0])
    with pytest.raises(IntakeError) as err:
        run_intake(org, today=TODAY)
    msg = str(err.value)
    assert "sales.csv" in msg and "'Paid'" in msg and "What to do" in msg and "row 1" in msg


def test_renamed_column_gets_a_suggestion(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD, header=HEADER.replace("Order Date", "Order Dates"))
    with pytest.raises(IntakeError) as err:
        run_intake(org, today=TODAY)
    assert "'Order Dates'" in str(err.value) and "purchase_time" in str(err.value)


def test_wrong_delimiter_setting(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    (org / "sales.csv").write_text(HEADER.replace(",", ";") + "\n" + GOOD.replace(",", ";") + "\n")
    yaml_text = TINY_ORG_YAML.replace(
        "    file: sales.csv\n", "    file: sales.csv\n    delimiter: ','\n"
    )
    (org / "org.yaml").write_text(yaml_text)
    with pytest.raises(IntakeError) as err:
        run_intake(org, today=TODAY)
    assert "separator" in str(err.value) and "delimiter" in str(err.value)


def test_empty_file(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    (org / "sales.csv").write_bytes(b"")
    with pytest.raises(IntakeError, match=r"sales\.csv.*empty"):
        run_intake(org, today=TODAY)


def test_header_only(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path)
    with pytest.raises(IntakeError, match="no data rows"):
        run_intake(org, today=TODAY)


def test_missing_file(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    (org / "sales.csv").unlink()
    with pytest.raises(IntakeError, match="does not exist"):
        run_intake(org, today=TODAY)


def test_mapping_without_a_required_column(tmp_path: Path) -> None:
    org = org_with_sales(tmp_path, GOOD)
    (org / "org.yaml").write_text(TINY_ORG_YAML.replace("      paid_amount: Paid\n", ""))
    with pytest.raises(IntakeError, match="paid_amount"):
        run_intake(org, today=TODAY)


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("currency: GBP", "currency: pounds"), "currency"),
        (("season_start_month: 9", "season_start_month: 13"), "season_start_month"),
        (("timezone: Europe/London", "timezone: Mars/Olympus"), "timezone"),
        (("currency: GBP", "currency: GBP\ncurrancy: GBP"), "currancy"),
        (("  order_lines:\n", "  tickets:\n"), "tickets"),
        (("season_start_month: 9", "season_start_month: [9"), "not valid YAML"),
    ],
)
def test_bad_settings_are_explained(tiny_org: Path, change, needle: str) -> None:
    text = (tiny_org / "org.yaml").read_text().replace(*change)
    (tiny_org / "org.yaml").write_text(text)
    with pytest.raises(ConfigError, match=needle) as err:
        run_intake(tiny_org, today=TODAY)
    assert "What to do" in str(err.value) or "known" in str(err.value)


def test_yaml_cannot_run_code(tiny_org: Path) -> None:
    text = (
        tiny_org / "org.yaml"
    ).read_text() + "\nextra: !!python/object/apply:os.system ['echo hacked']\n"
    (tiny_org / "org.yaml").write_text(text)
    with pytest.raises(ConfigError):
        run_intake(tiny_org, today=TODAY)


def test_cli_prints_plain_message_without_traceback(tmp_path: Path, capsys) -> None:
    org = org_with_sales(tmp_path, GOOD)
    (org / "sales.csv").write_bytes(b"")
    code = cli_main(["intake", str(org), "--today", TODAY])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err and "sales.csv" in err and "What to do" in err


def test_cli_intake_reports_counts(tiny_org: Path, capsys) -> None:
    assert cli_main(["intake", str(tiny_org), "--today", TODAY]) == 0
    out = capsys.readouterr().out
    assert "13 rows read, 0 dropped" in out


def test_optional_tables_absent_give_empty_frames(tmp_path: Path) -> None:
    only_sales = textwrap.dedent(
        """\
        name: Sales Only
        sources:
          order_lines:
            file: sales.csv
            columns: {customer_id: Customer, purchase_time: Date, paid_amount: Amount}
        """
    )
    org = write_org(
        tmp_path / "s",
        {"sales.csv": "Customer,Date,Amount\n7,2024-05-01,12.5\n7,2024-06-01,3\n"},
        only_sales,
    )
    r = run_intake(org, today=TODAY)
    assert r.tables.has("order_lines") and not r.tables.has("donations")
    assert list(r.tables.donations.columns) == [
        "donation_id",
        "customer_id",
        "donation_date",
        "amount",
        "fund",
        "campaign",
    ]
    assert r.tables.order_lines["line_id"].tolist() == ["sales.csv:2", "sales.csv:3"]
    assert r.stub_customers == 1 and len(r.tables.customers) == 1


CONSENTS_YAML = """\
  consents:
    file: consents.csv
    date_format: "%d/%m/%Y"
    columns: {customer_id: Customer ID, channel: Channel, status: Status, consent_date: Updated}
    values:
      channel: {Email: email, Post: post}
      status: {Opted in: granted, Opted out: withdrawn, Not asked: unknown}
"""


def test_consent_history_keeps_the_latest_record_per_channel(tmp_path: Path) -> None:
    """A later opt-out must win over an older opt-in (never 'first one kept')."""
    files = dict(TINY_FILES)
    files["consents.csv"] = """\
        Customer ID,Channel,Status,Updated
        1001,Email,Opted in,01/01/2020
        1001,Post,Opted in,01/01/2020
        1001,Email,Opted out,30/08/2024
        1002,Email,Opted out,01/02/2021
        1002,Email,Opted in,01/03/2023
        1003,Email,Opted in,05/05/2022
        1003,Email,Opted out,05/05/2022
        1003,Post,Opted in,
        1003,Post,Opted in,
        """
    org = write_org(tmp_path / "org", files, TINY_ORG_YAML + CONSENTS_YAML)
    r = run_intake(org, today=TODAY)
    ids = pd.read_parquet(org / "private" / "id_map.parquet")
    source = dict(zip(ids["customer_id"], ids["source_customer_id"], strict=True))
    c = r.tables.consents
    rows = zip(c["customer_id"], c["channel"], c["status"], strict=True)
    got = {(source[k], ch): st for k, ch, st in rows}
    assert got == {
        ("1001", "email"): "withdrawn",  # opted out after opting in
        ("1001", "post"): "granted",
        ("1002", "email"): "granted",  # opted back in later
        ("1003", "email"): "withdrawn",  # same day: the opt-out wins
        ("1003", "post"): "granted",
    }
    dropped = r.ledger.dropped_rows()
    reasons = dropped.groupby("reason")["row"].apply(sorted).to_dict()
    assert reasons == {"superseded_consent": [2, 5, 7], "duplicate_line": [10]}
    summary = r.summary().set_index("table").loc["consents"]
    assert (summary["rows_read"], summary["rows_kept"], summary["rows_dropped"]) == (9, 5, 4)


def test_undated_opt_out_wins_over_dated_records(tmp_path: Path) -> None:
    """An opt-out without a date is taken as the latest; an opt-in without one as the oldest."""
    files = dict(TINY_FILES)
    files["consents.csv"] = """\
        Customer ID,Channel,Status,Updated
        1001,Email,Opted in,01/01/2024
        1001,Email,Opted out,
        1002,Email,Opted out,01/01/2024
        1002,Email,Opted in,
        1003,Email,Opted in,01/01/2024
        1003,Email,Not asked,
        1003,Post,Opted out,
        1003,Post,Opted in,
        """
    org = write_org(tmp_path / "org", files, TINY_ORG_YAML + CONSENTS_YAML)
    r = run_intake(org, today=TODAY)
    ids = pd.read_parquet(org / "private" / "id_map.parquet")
    source = dict(zip(ids["customer_id"], ids["source_customer_id"], strict=True))
    c = r.tables.consents
    rows = zip(c["customer_id"], c["channel"], c["status"], strict=True)
    got = {(source[k], ch): st for k, ch, st in rows}
    assert got == {
        ("1001", "email"): "withdrawn",  # the undated opt-out wins over a dated opt-in
        ("1002", "email"): "withdrawn",  # an undated opt-in loses to a dated opt-out
        ("1003", "email"): "granted",  # ... and 'not asked' to a dated opt-in
        ("1003", "post"): "withdrawn",  # both undated: the opt-out wins
    }
    d = dropped(r, "superseded_consent").set_index("row")
    assert sorted(d.index) == [2, 5, 7, 9]
    assert "an opt-out without a date for the" in d.loc[2, "message"]
    assert all("an opt-out without a date for the" not in m for m in d.loc[[5, 7, 9], "message"])


ZONED_INSTANCES = """\
    Instance ID,Event ID,Start,Capacity
    P1,E1,2024-10-05T18:30:00Z,500
    P2,E1,2024-10-12T19:30:00+01:00,500
    P3,E2,2024-11-20T19:30:00+00:00,900
    """


def test_times_with_an_offset_are_converted_to_the_org_time_zone(tmp_path: Path) -> None:
    """UTC and +01:00/+00:00 times become Europe/London wall-clock times (no traceback)."""
    files = dict(TINY_FILES)
    files["instances.csv"] = ZONED_INSTANCES
    files["sales.csv"] = "\n".join(
        [HEADER, "L1,O1,1001,2024-08-31T23:30:00.000Z,Web,P1,£25.00,£25.00,Sold,"]
    )
    r = run_intake(write_org(tmp_path / "org", files), today=TODAY)
    start = r.tables.performances.set_index("performance_id")["start_time"]
    assert start.to_dict() == {
        "P1": pd.Timestamp("2024-10-05 19:30"),  # BST
        "P2": pd.Timestamp("2024-10-12 19:30"),
        "P3": pd.Timestamp("2024-11-20 19:30"),  # GMT
    }
    # 23:30 UTC on 31 August is half past midnight on 1 September in London
    assert r.tables.order_lines["purchase_time"].tolist() == [pd.Timestamp("2024-09-01 00:30")]
    assert not any("time zone" in n for n in r.notes)  # every time had its zone


def test_a_column_mixing_zoned_and_plain_times_gets_a_note(tmp_path: Path) -> None:
    files = dict(TINY_FILES)
    files["instances.csv"] = """\
        Instance ID,Event ID,Start,Capacity
        P1,E1,2024-10-05T18:30:00Z,500
        P2,E1,12/10/2024 19:30,500
        P3,E2,20/11/2024 19:30,900
        """
    r = run_intake(write_org(tmp_path / "org", files), today=TODAY)
    start = r.tables.performances.set_index("performance_id")["start_time"]
    assert start["P1"] == pd.Timestamp("2024-10-05 19:30")  # converted
    assert start["P2"] == pd.Timestamp("2024-10-12 19:30")  # kept as written
    notes = [n for n in r.notes if "time zone" in n]
    assert len(notes) == 1
    assert "instances.csv" in notes[0] and "'Start'" in notes[0]
    assert "1 row" in notes[0] and "2 rows" in notes[0] and "Europe/London" in notes[0]
    assert "'2024-10-05T18:30:00Z' in row 2" in notes[0]


def test_do_not_contact_flag_is_read_with_its_words(tmp_path: Path) -> None:
    """A 'Contact Status' export column mapped to do_not_contact, words given in values."""
    files = dict(TINY_FILES)
    files["customers.csv"] = """\
        Customer ID,Postcode,DOB,Created,Contact Status
        1001,SE1 7PB,14/02/1980,01/01/2020,Deceased
        1002,M1 1AE,,03/03/2021,OK
        1003,EH1 1YZ,,05/05/2022,
        """
    org_yaml = TINY_ORG_YAML.replace(
        "      created_at: Created\n",
        "      created_at: Created\n"
        "      do_not_contact: Contact Status\n"
        "    values:\n"
        "      do_not_contact: {Deceased: true, Gone away: true, OK: false}\n",
        1,
    )
    assert org_yaml != TINY_ORG_YAML
    org = write_org(tmp_path / "org", files, org_yaml)
    r = run_intake(org, today=TODAY)
    ids = pd.read_parquet(org / "private" / "id_map.parquet")
    source = dict(zip(ids["customer_id"], ids["source_customer_id"], strict=True))
    cu = r.tables.customers
    got = {source[k]: v for k, v in zip(cu["customer_id"], cu["do_not_contact"], strict=True)}
    assert got == {"1001": True, "1002": False, "1003": False}  # blank: not flagged
    assert str(cu["do_not_contact"].dtype) == "bool"


def test_do_not_contact_defaults_to_false_when_not_mapped(tiny_org: Path) -> None:
    cu = run_intake(tiny_org, today=TODAY).tables.customers
    assert cu["do_not_contact"].tolist() == [False] * len(cu)
