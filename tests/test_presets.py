"""Export presets: each system's fixture export read with no hand mapping, known answers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from playbook import presets
from playbook.cli import main as cli_main
from playbook.errors import ConfigError, IntakeError
from playbook.intake import run_intake
from playbook.readers import read_export
from playbook.tables import effective_tickets, net_revenue

FIXTURES = Path(__file__).parent / "fixtures" / "presets"
TODAY = "2025-01-01"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(FIXTURES / name, dest)
    return dest


@pytest.fixture(scope="module")
def taken(tmp_path_factory):
    """Intake of each untouched preset fixture, run once and shared by read-only tests."""
    cache: dict[str, tuple[Path, object]] = {}

    def get(name: str):
        if name not in cache:
            org = copy_fixture(name, tmp_path_factory.mktemp(name))
            cache[name] = (org, run_intake(org, today=TODAY))
        return cache[name]

    return get


def physical_rows(org: Path, file: str) -> int:
    return len(read_export(org / file, file, []).frame)


# Known answers, worked out by hand from each fixture export (see the CSVs).
KNOWN = {
    "spektrix": dict(
        tickets=3, revenue=105.0, comps=1, subscriptions=0, returns=1, exchanges=0,
        donations=1, memberships=2, attendance=0, dropped={"orphan_return": 1},
    ),
    "tessitura": dict(
        tickets=5, revenue=130.0, comps=1, subscriptions=1, returns=1, exchanges=0,
        donations=2, memberships=2, attendance=0, dropped={"missing_customer": 1},
    ),
    "eventbrite": dict(
        tickets=5, revenue=75.0, comps=1, subscriptions=0, returns=1, exchanges=1,
        donations=0, memberships=0, attendance=4, dropped={},
    ),
    "ticket_tailor": dict(
        tickets=4, revenue=42.5, comps=1, subscriptions=0, returns=1, exchanges=0,
        donations=0, memberships=0, attendance=3, dropped={},
    ),
    "patronmanager": dict(
        tickets=3, revenue=75.0, comps=1, subscriptions=0, returns=1, exchanges=1,
        donations=2, memberships=0, attendance=0, dropped={"filtered_out": 1},
    ),
    "audienceview": dict(
        tickets=6, revenue=125.0, comps=1, subscriptions=1, returns=1, exchanges=0,
        donations=0, memberships=0, attendance=3, dropped={},
    ),
    "archtics": dict(
        tickets=7, revenue=365.0, comps=0, subscriptions=1, returns=0, exchanges=0,
        donations=0, memberships=0, attendance=0, dropped={},
    ),
}  # fmt: skip


def test_every_preset_has_a_fixture_and_known_answers() -> None:
    assert set(presets.PRESETS) == set(KNOWN)
    for name in presets.PRESETS:
        assert (FIXTURES / name / "org.yaml").exists(), name
        for spec in presets.PRESETS[name].tables.values():
            if name != "eventbrite" or spec["file"] != "exports/events.csv":
                assert (FIXTURES / name / spec["file"]).exists(), (name, spec["file"])


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_preset_fixture_known_answers(name: str, taken) -> None:
    _, r = taken(name)
    want = KNOWN[name]
    ol = r.tables.order_lines
    tickets = effective_tickets(ol)
    assert len(tickets) == want["tickets"]
    assert net_revenue(ol) == pytest.approx(want["revenue"])
    assert int(ol["is_comp"].sum()) == want["comps"]
    assert int((ol["item_type"] == "subscription").sum()) == want["subscriptions"]
    assert int((ol["status"] == "returned").sum()) == want["returns"]
    assert int((ol["status"] == "exchanged").sum()) == want["exchanges"]
    assert len(r.tables.donations) == want["donations"]
    assert len(r.tables.memberships) == want["memberships"]
    assert len(r.tables.attendance) == want["attendance"]
    reasons = r.ledger.dropped_rows()["reason"].value_counts().to_dict()
    assert reasons == want["dropped"]


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_preset_ledger_reconciles_for_every_file(name: str, taken) -> None:
    org, r = taken(name)
    s = r.summary()
    assert (s["rows_read"] == s["rows_kept"] + s["rows_dropped"]).all()
    for _, row in s.iterrows():
        table = r.tables[row["table"]]
        if row["table"] != "customers":  # customers may gain stub rows
            assert len(table) == row["rows_kept"] + r.added.get(row["file"], 0), row["file"]
    # A file shared by several tables: every physical row is read by one of them or left
    # by a filter to the others, and the filters of complementary tables add up.
    by_file: dict[str, list] = {}
    for label in s["file"]:
        by_file.setdefault(label.split(" [")[0], []).append(label)
    for file, labels in by_file.items():
        rows = physical_rows(org, file)
        for label in labels:
            read = int(s.loc[s["file"] == label, "rows_read"].iloc[0])
            assert read + r.skipped.get(label, 0) == rows, label


def test_returns_link_to_their_original_lines(taken) -> None:
    for name in KNOWN:
        ol = taken(name)[1].tables.order_lines
        rev = ol[ol["status"].isin(["returned", "exchanged"])]
        originals = ol.set_index("line_id").loc[rev["parent_line_id"]]
        assert (originals["status"] == "active").all(), name
        assert (rev["paid_amount"].to_numpy() <= 0).all(), name
        # a return takes back exactly what its original paid
        assert rev["paid_amount"].to_numpy() == pytest.approx(
            -originals["paid_amount"].to_numpy()
        ), name


def test_spektrix_return_is_linked_by_ticket_and_orphan_is_dropped(taken) -> None:
    r = taken("spektrix")[1]
    ol = r.tables.order_lines.set_index("line_id")
    assert ol.loc["I5", "parent_line_id"] == "I4"
    assert ol.loc["I5", "paid_amount"] == -30.0  # written positive in the export
    orphan = r.ledger.dropped_rows().iloc[0]
    assert (orphan["reason"], orphan["row"]) == ("orphan_return", 9)


def test_exchange_moves_a_ticket_without_double_counting(taken) -> None:
    r = taken("eventbrite")[1]
    ol = r.tables.order_lines
    order = ol[ol["order_id"] == "A103"]
    # the transferred ticket and its reversal cancel; the new ticket stands once
    assert order["paid_amount"].sum() == pytest.approx(15.0)
    kept = effective_tickets(ol)
    assert kept.loc[kept["order_id"] == "A103", "line_id"].tolist() == ["AT7"]


def test_comps_count_as_attendance_with_zero_revenue(taken) -> None:
    for name in ("eventbrite", "audienceview", "ticket_tailor"):
        r = taken(name)[1]
        ol = r.tables.order_lines
        comps = effective_tickets(ol)
        comps = comps[comps["is_comp"]]
        assert len(comps) == 1 and (comps["paid_amount"] == 0).all(), name
        assert comps["line_id"].isin(r.tables.attendance["line_id"]).all(), name


def test_manual_eventbrite_order_is_a_comp_and_others_are_not(taken) -> None:
    ol = taken("eventbrite")[1].tables.order_lines
    assert ol.loc[ol["is_comp"], "line_id"].tolist() == ["AT5"]


def test_audienceview_used_in_implies_attendance_at_event_start(taken) -> None:
    r = taken("audienceview")[1]
    att = r.tables.attendance.sort_values("line_id")
    assert att["line_id"].tolist() == ["TK1", "TK4", "TK5"]
    assert (att["scanned_at"] == pd.Timestamp("2024-03-15 19:30")).all()
    ol = r.tables.order_lines.set_index("line_id")
    assert (att["customer_id"].to_numpy() == ol.loc[att["line_id"], "customer_id"]).all()


def test_eventbrite_check_in_is_timed_at_the_event_start(taken) -> None:
    att = taken("eventbrite")[1].tables.attendance
    times = dict(zip(att["line_id"], att["scanned_at"], strict=True))
    assert times["AT7"] == pd.Timestamp("2024-06-01 18:00")
    assert times["AT1"] == pd.Timestamp("2024-05-01 19:00")


def test_ticket_tailor_money_is_read_in_pence(taken) -> None:
    ol = taken("ticket_tailor")[1].tables.order_lines
    assert ol.set_index("line_id").loc["it_1", "paid_amount"] == 15.0


def test_tessitura_joins_order_header_on_order_no(taken) -> None:
    r = taken("tessitura")[1]
    ol = r.tables.order_lines.set_index("line_id")
    assert ol.loc["3", "channel"] == "phone"  # from T_ORDER.channel
    assert ol.loc["1", "purchase_time"] == pd.Timestamp("2024-08-01 10:00")
    assert ol.loc["1", "customer_id"] == ol.loc["2", "customer_id"]  # same order, same buyer
    # an SLI whose order header is missing has no customer: dropped with a reason
    d = r.ledger.dropped_rows().iloc[0]
    assert (d["reason"], d["row"], d["column"]) == ("missing_customer", 9, "customer_no")


@pytest.mark.parametrize(
    ("name", "order", "seats", "amount"),
    [("tessitura", "1004", 1, 90.0), ("archtics", "5001", 2, 300.0)],
)
def test_season_plan_counts_once(
    name: str, order: str, seats: int, amount: float, tmp_path, taken
) -> None:
    ol = taken(name)[1].tables.order_lines
    plan = ol[ol["order_id"] == order]
    subs = plan[plan["item_type"] == "subscription"]
    assert len(subs) == 1
    assert subs["quantity"].iloc[0] == seats and subs["paid_amount"].iloc[0] == amount
    seats_rows = plan[plan["item_type"] == "ticket"]
    assert (seats_rows["paid_amount"] == 0).all() and not seats_rows["is_comp"].any()
    assert plan["paid_amount"].sum() == pytest.approx(amount)  # revenue once, not per event


def test_plan_price_repeated_on_every_event_row_is_taken_once(tmp_path: Path) -> None:
    org = copy_fixture("archtics", tmp_path)
    path = org / "exports" / "tickets.csv"
    path.write_text(path.read_text().replace(",PL,50.00", ",PL,150.00"))
    yaml = (org / "org.yaml").read_text()
    (org / "org.yaml").write_text(yaml + "sources:\n  order_lines:\n    plan_amount: repeated\n")
    ol = run_intake(org, today=TODAY).tables.order_lines
    sub = ol[ol["item_type"] == "subscription"].iloc[0]
    assert sub["paid_amount"] == pytest.approx(300.0)  # 2 seats x 150, not x 3 events


def test_plan_with_its_own_row_keeps_that_row_as_the_subscription(tmp_path: Path) -> None:
    org = copy_fixture("archtics", tmp_path)
    path = org / "exports" / "tickets.csv"
    lines = path.read_text().splitlines()
    lines = [ln.replace(",PL,50.00", ",PL,0.00") for ln in lines]
    lines.append(
        "7001,5001,2024-06-01 10:00,,,25FS,101,A,1-2,PL,300.00,fan7001.archtics@example.org"
    )
    path.write_text("\n".join(lines) + "\n")
    ol = run_intake(org, today=TODAY).tables.order_lines
    subs = ol[ol["item_type"] == "subscription"]
    assert len(subs) == 1 and subs["paid_amount"].iloc[0] == 300.0
    assert subs["line_id"].iloc[0] == "tickets.csv:9"  # the export's own plan row


def test_memberships_and_donations_become_their_own_tables(taken) -> None:
    r = taken("spektrix")[1]
    assert "I6" not in set(r.tables.order_lines["line_id"])  # the gift is not a sale
    assert r.tables.donations["donation_id"].tolist() == ["I6"]
    assert r.tables.donations["amount"].tolist() == [50.0]
    m = r.tables.memberships.set_index("membership_id")
    assert m.loc["M2", "membership_type"] == "renewal" and m.loc["M1", "amount"] == 60.0


def test_patronmanager_account_is_the_household_and_won_gifts_only(taken) -> None:
    r = taken("patronmanager")[1]
    cu = r.tables.customers
    assert cu["household_id"].nunique() == 3
    assert r.tables.donations["donation_id"].tolist() == ["006A", "006C"]
    # the lost opportunity is no table's row: dropped with its reason, not lost
    assert r.skipped["exports/opportunities.csv"] == 0
    dropped = r.ledger.dropped_rows()
    lost = dropped[dropped["reason"] == "filtered_out"]
    assert lost[["file", "row", "column", "value"]].values.tolist() == [
        ["exports/opportunities.csv", 3, "StageName", "Closed Lost"]
    ]


def test_spektrix_anonymised_flag_is_carried(taken) -> None:
    r = taken("spektrix")[1]
    assert r.tables.customers["anonymised"].sum() == 1


@pytest.mark.parametrize("name", sorted(set(KNOWN) - {"tessitura"}))  # T_* hold no names
def test_personal_data_in_preset_exports_stays_out_of_canonical(name: str, taken) -> None:
    org, _ = taken(name)
    blob = b"".join(p.read_bytes() for p in (org / "canonical").iterdir())
    raw = b"".join(p.read_bytes() for p in (org / "exports").iterdir())
    planted = [b"@example.org", b"Lovelace-Spektrix", b"Quill-Eventbrite", b"Harrowgate-PM"]
    planted += [b"Tickettailor", b"Lantern Row", b"020 7946"]
    for secret in planted:
        assert secret not in blob, secret
    assert any(secret in raw for secret in planted)  # the fixture does hold them


# --- using presets from org.yaml and the command line ----------------------------------


def test_cli_preset_flag_overrides_org_yaml(tmp_path: Path, capsys) -> None:
    org = copy_fixture("archtics", tmp_path)
    (org / "org.yaml").write_text("name: No preset here\n")
    with pytest.raises(IntakeError, match="no source is configured"):
        run_intake(org, today=TODAY)
    assert cli_main(["intake", str(org), "--today", TODAY, "--preset", "archtics"]) == 0
    assert "7 rows read, 0 dropped" in capsys.readouterr().out


def test_cli_unknown_preset_is_a_plain_error(tmp_path: Path, capsys) -> None:
    org = copy_fixture("archtics", tmp_path)
    assert cli_main(["intake", str(org), "--preset", "ticketmaster"]) == 2
    err = capsys.readouterr().err
    assert "ticketmaster" in err and "archtics" in err and "Traceback" not in err


def test_per_source_preset_with_overrides(tmp_path: Path) -> None:
    org = copy_fixture("archtics", tmp_path)
    (org / "exports" / "tickets.csv").rename(org / "exports" / "plans 2024.csv")
    path = org / "exports" / "plans 2024.csv"
    path.write_text(path.read_text().replace("purchase_price", "Price Paid"))
    (org / "org.yaml").write_text(
        "name: Club\nsources:\n  order_lines:\n    preset: archtics\n"
        "    file: exports/plans 2024.csv\n    columns: {paid_amount: Price Paid}\n"
    )
    ol = run_intake(org, today=TODAY).tables.order_lines
    assert ol["paid_amount"].sum() == pytest.approx(365.0)


def test_preset_with_a_missing_required_column_names_the_preset(tmp_path: Path) -> None:
    org = copy_fixture("ticket_tailor", tmp_path)
    path = org / "exports" / "issued_tickets.csv"
    path.write_text(path.read_text().replace(",price,", ",amount,"))
    with pytest.raises(IntakeError) as err:
        run_intake(org, today=TODAY)
    msg = str(err.value)
    assert "'price'" in msg and "ticket_tailor" in msg and "What to do" in msg


def test_preset_columns_that_are_not_required_may_be_missing(tmp_path: Path) -> None:
    org = copy_fixture("tessitura", tmp_path)
    path = org / "exports" / "T_PERF.csv"
    text = path.read_text().splitlines()
    path.write_text("\n".join(",".join(ln.split(",")[:4]) for ln in text) + "\n")  # no venue
    r = run_intake(org, today=TODAY)
    assert r.tables.performances["venue"].isna().all() and len(r.tables.performances) == 3


def test_unknown_preset_names_in_org_yaml(tmp_path: Path) -> None:
    org = copy_fixture("archtics", tmp_path)
    for text, needle in [
        ("name: X\npreset: spektrixx\n", "spektrixx"),
        ("name: X\npreset: [spektrix]\n", "spektrix"),
        ("name: X\nsources:\n  order_lines: {preset: nope}\n", "nope"),
    ]:
        (org / "org.yaml").write_text(text)
        with pytest.raises(ConfigError, match=needle) as err:
            run_intake(org, today=TODAY)
        assert "archtics" in str(err.value)  # lists the presets there are


def test_preset_without_the_table_says_so(tmp_path: Path) -> None:
    org = copy_fixture("archtics", tmp_path)
    (org / "org.yaml").write_text(
        "name: X\nsources:\n  order_lines: {preset: archtics}\n"
        "  donations: {preset: archtics, file: exports/tickets.csv}\n"
    )
    with pytest.raises(ConfigError, match="no mapping for table 'donations'"):
        run_intake(org, today=TODAY)


def test_adding_a_system_is_adding_one_entry(tmp_path: Path) -> None:
    presets.register_preset(
        "toy_box_office",
        system="Toy",
        tables={
            "order_lines": {
                "file": "exports/toy.csv",
                "columns": {"customer_id": "Patron", "purchase_time": "When", "paid_amount": "£"},
            }
        },
    )
    try:
        org = tmp_path / "toy"
        (org / "exports").mkdir(parents=True)
        (org / "exports" / "toy.csv").write_text("Patron,When,£\n1,2024-01-02,5\n2,2024-01-03,7\n")
        (org / "org.yaml").write_text("name: Toy\npreset: toy_box_office\n")
        assert run_intake(org, today=TODAY).tables.order_lines["paid_amount"].sum() == 12.0
    finally:
        del presets.PRESETS["toy_box_office"]


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"join": {"file": "a.csv"}}, "join"),
        ({"join": {"file": "a.csv", "on": ["a", "b", "c"]}}, "join.on"),
        ({"filter": {"column": "X"}}, "filter"),
        ({"filter": {"column": "X", "in": "Donation"}}, "filter"),
        ({"returns": "sideways"}, "returns"),
        ({"returns": "match"}, "ticket_ref"),
        ({"plan_amount": "twice"}, "plan_amount"),
        ({"comp_when_zero": "yes"}, "comp_when_zero"),
    ],
)
def test_malformed_declarative_steps_are_explained(spec: dict, needle: str) -> None:
    base = {"file": "x.csv", "columns": {"customer_id": "C"}}
    with pytest.raises(ConfigError, match=needle) as err:
        presets.register_preset("broken", {"order_lines": {**base, **spec}})
    assert "What to do" in str(err.value)
    assert "broken" not in presets.PRESETS


def test_filter_on_a_missing_column_is_explained(tmp_path: Path) -> None:
    org = copy_fixture("spektrix", tmp_path)
    path = org / "exports" / "analysis.csv"
    path.write_text(path.read_text().replace("Item Type", "Kind"))
    with pytest.raises(IntakeError, match="'Item Type'") as err:
        run_intake(org, today=TODAY)
    assert "analysis.csv" in str(err.value) and "filter" in str(err.value)


def test_join_on_a_missing_key_is_explained(tmp_path: Path) -> None:
    org = copy_fixture("tessitura", tmp_path)
    path = org / "exports" / "T_ORDER.csv"
    path.write_text(path.read_text().replace("order_no", "order_number"))
    with pytest.raises(IntakeError, match="order_no") as err:
        run_intake(org, today=TODAY)
    assert "T_ORDER.csv" in str(err.value)


def test_describe_presets_lists_every_entry() -> None:
    names = [p["name"] for p in presets.describe_presets()]
    assert names == sorted(presets.PRESETS)
    assert all(p.assumed for p in presets.PRESETS.values())  # every guess is declared


# --- playbook mapping suggest ------------------------------------------------------------


def test_suggest_mapping_recovers_a_hand_written_mapping(tmp_path: Path) -> None:
    from conftest import TINY_FILES, TINY_ORG_YAML, write_org

    from playbook.mapping import suggest_mapping, suggestion_yaml

    org = write_org(tmp_path / "tiny", TINY_FILES)
    s = suggest_mapping(org / "sales.csv", label="sales.csv")
    assert s.table == "order_lines" and not s.missing_required
    hand = yaml.safe_load(TINY_ORG_YAML)["sources"]["order_lines"]
    assert s.columns == hand["columns"]
    assert s.values["status"] == {"Sold": "active", "Returned": "returned"}
    assert s.values["channel"] == {"Web": "online", "Phone": "phone", "Box Office": "box_office"}
    # the suggested section, dropped into org.yaml, reads the export like the hand mapping
    text = suggestion_yaml(s)
    assert yaml.safe_load(text)["sources"]["order_lines"]["columns"] == hand["columns"]
    other = yaml.safe_load(TINY_ORG_YAML)
    other["sources"]["order_lines"] = yaml.safe_load(text)["sources"]["order_lines"]
    (org / "org.yaml").write_text(yaml.safe_dump(other))
    suggested = run_intake(org, today=TODAY, write=False).tables.order_lines
    (org / "org.yaml").write_text(TINY_ORG_YAML)
    by_hand = run_intake(org, today=TODAY, write=False).tables.order_lines
    pd.testing.assert_frame_equal(suggested, by_hand)


def test_suggest_mapping_never_proposes_personal_columns(tmp_path: Path) -> None:
    from playbook.mapping import suggest_mapping

    path = FIXTURES / "patronmanager" / "exports" / "contacts.csv"
    s = suggest_mapping(path)
    assert s.table == "customers"
    personal = {"FirstName", "LastName", "Email", "Phone", "MailingStreet"}
    assert personal <= set(s.personal)
    assert not personal & set(s.columns.values())
    assert s.columns["customer_id"] == "Id" and s.columns["postcode"] == "MailingPostalCode"


@pytest.mark.parametrize(
    ("file", "table", "expected"),
    [
        ("tessitura/exports/T_CONTRIBUTION.csv", "donations", {"amount": "cont_amt"}),
        ("tessitura/exports/T_PERF.csv", "performances", {"start_time": "perf_dt"}),
        ("ticket_tailor/exports/check_ins.csv", "attendance", {"scanned_at": "check_in_at"}),
        ("spektrix/exports/memberships.csv", "memberships", {"end_date": "Expiry Date"}),
    ],
)
def test_suggest_mapping_guesses_the_table(file: str, table: str, expected: dict) -> None:
    from playbook.mapping import suggest_mapping

    s = suggest_mapping(FIXTURES / file)
    assert s.table == table
    assert expected.items() <= s.columns.items()


def test_suggest_mapping_sniffs_values_not_only_names(tmp_path: Path) -> None:
    from playbook.mapping import sniff_kind, suggest_mapping

    path = tmp_path / "export.csv"
    path.write_text(
        "Sales report\n,,\nRef,Who,When,Value,State,E\n"
        "A-1,501,25/12/2024 19:30,£12.50,OK,a@b.org\nA-2,502,26/12/2024 19:30,£8.00,REFUND,c@d.org\n"
    )
    s = suggest_mapping(path, table="order_lines")
    assert s.header_row == 3 and s.dayfirst is True
    assert s.columns["purchase_time"] == "When" and s.columns["paid_amount"] == "Value"
    assert s.values["status"] == {"OK": None, "REFUND": "returned"}
    assert "E" in s.personal
    assert sniff_kind(pd.Series(["07700 900123", "+44 20 7946 0000"])) == "phone"
    assert sniff_kind(pd.Series(["12 Acacia Avenue", "3 Mill Lane"])) == "address"
    assert sniff_kind(pd.Series(["Y", "N", "Y"])) == "bool"


def test_cli_mapping_suggest_prints_and_writes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "suggested.yaml"
    src = FIXTURES / "spektrix" / "exports" / "analysis.csv"
    assert cli_main(["mapping", "suggest", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sources:" in printed and "Personal data, never read by intake" in printed
    written = yaml.safe_load(out.read_text())
    assert written["sources"]["order_lines"]["columns"]["paid_amount"] == "Amount"
    assert cli_main(["mapping", "suggest", str(src), "--table", "tickets"]) == 2


def test_rows_no_filter_takes_are_dropped_with_a_reason(tmp_path: Path) -> None:
    """Two tables share an export and neither filter takes the membership row: it is
    dropped under the first table with its type, and the file's rows all add up."""
    org = copy_fixture("spektrix", tmp_path)
    yaml = (org / "org.yaml").read_text()
    yaml += (
        "sources:\n"
        "  order_lines:\n"
        "    filter: {column: Item Type, in: [Ticket]}\n"
        "  donations:\n"
        "    filter: {column: Item Type, in: [Donation]}\n"
    )
    (org / "org.yaml").write_text(yaml)
    r = run_intake(org, today=TODAY)
    dropped = r.ledger.dropped_rows()
    lost = dropped[dropped["reason"] == "filtered_out"]
    sales, gifts = "exports/analysis.csv [order_lines]", "exports/analysis.csv [donations]"
    assert lost[["file", "row", "column", "value"]].values.tolist() == [
        [sales, 8, "Item Type", "Membership"]
    ]
    s = r.summary().set_index("file")
    rows = physical_rows(org, "exports/analysis.csv")
    assert s.loc[sales, "rows_read"] + s.loc[gifts, "rows_read"] == rows
    assert s.loc[sales, "filtered_out"] == 1 and s.loc[gifts, "filtered_out"] == 0
    # left to the other table: the donation for the sales, everything else for the gifts
    assert r.skipped == {sales: 1, gifts: rows - 1 - 1}
    assert "I7" not in set(r.tables.order_lines["line_id"])


def test_own_filter_replaces_the_presets_and_null_removes_it() -> None:
    own = presets.resolve(
        "donations",
        {"preset": "patronmanager", "filter": {"column": "StageName", "not_in": ["Closed Lost"]}},
    )
    assert own["filter"] == {"column": "StageName", "not_in": ["Closed Lost"]}
    assert (
        presets.resolve("donations", {"preset": "patronmanager", "filter": None})["filter"] is None
    )
