"""The synthetic demo organisation: contract, determinism, calibration, consistency.

Everything here re-reads the written CSV files and recomputes what it checks, so a
test fails when the files are wrong, not only when the generator's own bookkeeping is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from playbook.ledger import REASONS
from playbook.synth import SEGMENT_NAMES, SynthConfig, generate

TEMPLATE = Path(__file__).resolve().parents[1] / "src" / "playbook" / "templates" / "demo_org.yaml"
MONEY = r"^-?£\d{1,3}(,\d{3})*\.\d{2}$"
MESSY_KINDS = (
    "blank_row",
    "missing_customer",
    "unparseable_date",
    "unparseable_amount",
    "duplicate_line",
    "unknown_performance",
    "negative_not_return",
    "orphan_return",
    "unknown_value",
)


def _sources() -> dict:
    return yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))["sources"]


def _read(org: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(org / _sources()[table]["file"], dtype=str, keep_default_na=False)


def _pounds(s: pd.Series) -> pd.Series:
    return s.str.replace("£", "", regex=False).str.replace(",", "", regex=False).astype(float)


def _time(s: pd.Series, table: str) -> pd.Series:
    return pd.to_datetime(s, format=_sources()[table]["date_format"], errors="coerce")


def _season(t: pd.Series) -> pd.Series:
    return t.dt.year - (t.dt.month < 9).astype(int)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A moderately sized clean organisation (3,000 customers)."""
    path = tmp_path_factory.mktemp("synth") / "demo"
    generate(path, SynthConfig(seed=42, customers=3_000))
    return path


@pytest.fixture(scope="module")
def messy_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small organisation with three messy sales rows of each kind."""
    path = tmp_path_factory.mktemp("synth") / "messy"
    generate(path, SynthConfig(seed=5, customers=1_200, messy=3))
    return path


@pytest.fixture(scope="module")
def truth(org: Path) -> dict:
    return json.loads((org / "truth" / "generator.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sales(org: Path) -> pd.DataFrame:
    s = _read(org, "order_lines")
    s["t"] = _time(s["Order Date"], "order_lines")
    s["paid"] = _pounds(s["Paid"])
    s["list"] = _pounds(s["List Price"])
    return s


@pytest.fixture(scope="module")
def instances(org: Path) -> pd.DataFrame:
    i = _read(org, "performances")
    i["start"] = _time(i["Start"], "performances")
    return i


# ---------------------------------------------------------------------------
# Determinism and the contract with the template
# ---------------------------------------------------------------------------
def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    # the same folder name in three places: org.yaml's slug is the folder's name
    a, b, c = tmp_path / "a" / "org", tmp_path / "b" / "org", tmp_path / "c" / "org"
    ra = generate(a, SynthConfig(seed=11, customers=700, messy=2))
    generate(b, SynthConfig(seed=11, customers=700, messy=2))
    generate(c, SynthConfig(seed=12, customers=700, messy=2))
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) >= 15
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{rel} differs between runs"
    assert (a / "exports/sales.csv").read_bytes() != (c / "exports/sales.csv").read_bytes()
    assert set(ra["files"]) >= {"exports/sales.csv", "truth/segments.csv"}
    assert ra["elapsed_seconds"] >= 0


def test_org_yaml_slug_is_the_folder_name(tmp_path: Path) -> None:
    """Two generated organisations must not share a slug (their reports would overwrite
    each other); the demo folder keeps the template's 'demo'."""
    import yaml

    from playbook.config import load_org
    from playbook.synth import folder_slug

    assert folder_slug(tmp_path / "City Theatre_2") == "city-theatre-2"
    assert folder_slug(tmp_path / "demo") == "demo"
    assert folder_slug(tmp_path / "--") == "demo"
    org = tmp_path / "North Hall"
    generate(org, SynthConfig(seed=3, customers=50))
    text = (org / "org.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(text)["slug"] == "north-hall" == load_org(org).slug
    template = TEMPLATE.read_text(encoding="utf-8")
    assert text == template.replace("\nslug: demo\n", "\nslug: north-hall\n")


def test_every_template_export_exists_with_its_mapped_headers(org: Path) -> None:
    template = TEMPLATE.read_text(encoding="utf-8")
    assert (org / "org.yaml").read_text(encoding="utf-8") == template
    for table, spec in _sources().items():
        path = org / spec["file"]
        assert path.exists(), f"{spec['file']} ({table}) was not written"
        header = pd.read_csv(path, nrows=0).columns.tolist()
        for canonical, raw in spec["columns"].items():
            assert header.count(raw) == 1, f"{spec['file']}: column {raw!r} ({canonical})"
        assert len(pd.read_csv(path, dtype=str)) > 0
    salt = (org / "private" / "salt").read_text().strip()
    assert len(salt) == 64 and int(salt, 16) >= 0


def test_coded_columns_use_only_the_template_vocabulary(org: Path) -> None:
    for table, spec in _sources().items():
        frame = _read(org, table)
        for canonical, mapping in spec.get("values", {}).items():
            seen = set(frame[spec["columns"][canonical]]) - {""}
            assert seen <= set(mapping), f"{table}.{canonical}: {seen - set(mapping)}"
            if table != "consents" or canonical != "status":
                assert seen, f"{table}.{canonical} is empty"


def test_money_and_dates_follow_the_export_formats(org: Path) -> None:
    money = {
        "order_lines": ("list_price", "paid_amount", "discount"),
        "memberships": ("amount",),
        "donations": ("amount",),
    }
    for table, cols in money.items():
        frame = _read(org, table)
        for c in cols:
            raw = frame[_sources()[table]["columns"][c]]
            assert raw.str.match(MONEY).all(), f"{table}.{c}: {raw[~raw.str.match(MONEY)][:3]}"
    sales = _read(org, "order_lines")
    assert (
        _pounds(sales["Discount"])
        .round(2)
        .equals((_pounds(sales["List Price"]) - _pounds(sales["Paid"])).round(2))
    )
    for table, spec in _sources().items():
        if "date_format" not in spec:
            continue
        frame = _read(org, table)
        for canonical, raw in spec["columns"].items():
            if canonical.endswith(("_time", "_at", "_date", "date")):
                values = frame[raw][frame[raw] != ""]
                parsed = _time(values, table)
                assert parsed.notna().all(), f"{table}.{raw}: {values[parsed.isna()][:3]}"


# ---------------------------------------------------------------------------
# Calibration, recomputed from the files
# ---------------------------------------------------------------------------
def test_first_timers_return_within_the_configured_range(
    org: Path, truth: dict, sales: pd.DataFrame, instances: pd.DataFrame
) -> None:
    tix = sales[(sales["Item Type"] == "Ticket") & (sales["Status"] == "Sold")]
    visits = tix.merge(instances[["Instance ID", "start"]], on="Instance ID")
    first = visits.groupby("Customer ID")["start"].transform("min")
    later = visits["start"] > first + pd.Timedelta(hours=12)
    within = later & (visits["start"] <= first + pd.Timedelta(days=365))
    per_customer = pd.DataFrame({"first": first, "back": within}).groupby(visits["Customer ID"])
    summary = per_customer.agg(first=("first", "min"), back=("back", "any"))
    data_start = pd.Timestamp(truth["data_start"])
    data_end = pd.Timestamp(truth["data_end"]).normalize() + pd.Timedelta(days=1)
    cohort = summary[
        (summary["first"] >= data_start + pd.DateOffset(years=1))
        & (summary["first"] <= data_end - pd.Timedelta(days=365))
    ]
    share = cohort["back"].mean()
    lo, hi = truth["first_timer_return_12m"]
    assert len(cohort) > 500
    assert lo <= share <= hi, f"first-timer 12-month return {share:.3f} not in [{lo}, {hi}]"
    assert share == pytest.approx(truth["observed"]["first_timer_return_12m"], abs=0.01)


def test_one_year_retention_is_near_a_third(
    truth: dict, sales: pd.DataFrame, instances: pd.DataFrame
) -> None:
    tix = sales[(sales["Item Type"] == "Ticket") & (sales["Status"] == "Sold")]
    visits = tix.merge(instances[["Instance ID", "start"]], on="Instance ID")
    active = pd.crosstab(visits["Customer ID"], _season(visits["start"])) > 0
    seasons = sorted(active.columns)
    kept = sum((active[s] & active[s + 1]).sum() for s in seasons[:-1])
    base = sum(active[s].sum() for s in seasons[:-1])
    lo, hi = truth["retention_1y"]
    assert lo <= kept / base <= hi


def test_subscribers_renew_plausibly(truth: dict, sales: pd.DataFrame) -> None:
    subs = sales[sales["Item Type"] == "Subscription"]
    assert (subs["paid"] == 0).all() and (subs["Instance ID"] == "").all()
    assert (subs["Status"] == "Sold").all()
    held = pd.crosstab(subs["Customer ID"], _season(subs["t"])) > 0
    seasons = sorted(held.columns)
    assert len(seasons) == truth["config"]["n_seasons"]
    renewed = sum((held[s] & held[s + 1]).sum() for s in seasons[:-1])
    share = renewed / sum(held[s].sum() for s in seasons[:-1])
    assert 0.6 <= share <= 0.92, f"subscriber renewal {share:.3f}"
    obs = truth["observed"]
    assert obs["subscriber_renewal_first_year"] < obs["subscriber_renewal_later"]
    assert obs["member_renewal_first_year"] < obs["member_renewal_later"]
    # Every package order holds one subscription line and its discounted tickets.
    pkg = sales[sales["Order ID"].isin(subs["Order ID"]) & (sales["Item Type"] == "Ticket")]
    assert (pkg["Ticket Type"] == "Subscription").all() and (pkg["paid"] < pkg["list"]).all()


def test_a_few_per_cent_of_customers_give_about_half_the_revenue(
    org: Path, truth: dict, sales: pd.DataFrame
) -> None:
    customers = _read(org, "customers")["Customer ID"]
    revenue = pd.Series(0.0, index=customers)
    lines = sales[sales["Status"] != "Void"]
    revenue = revenue.add(lines.groupby("Customer ID")["paid"].sum(), fill_value=0)
    for table in ("memberships", "donations"):
        frame = _read(org, table)
        revenue = revenue.add(
            _pounds(frame["Amount"]).groupby(frame["Customer ID"]).sum(), fill_value=0
        )
    top = revenue.sort_values(ascending=False).iloc[: round(0.03 * len(customers))]
    share = top.sum() / revenue.sum()
    lo, hi = truth["top_3pct_revenue_share"]
    assert lo <= share <= hi, f"top-3% revenue share {share:.3f} not in [{lo}, {hi}]"
    assert share == pytest.approx(truth["observed"]["top_3pct_revenue_share"], abs=0.01)


def test_about_five_ticket_lines_per_customer_and_online_majority(
    org: Path, sales: pd.DataFrame
) -> None:
    n = len(_read(org, "customers"))
    assert 4.0 <= (sales["Item Type"] == "Ticket").sum() / n <= 6.5
    orders = sales.drop_duplicates("Order ID")
    assert 0.5 <= (orders["Sales Channel"] == "Web").mean() <= 0.75
    tix = sales[sales["Item Type"] == "Ticket"]
    assert 0.02 <= (tix["Comp"] == "Y").mean() <= 0.045
    assert ((tix["Comp"] == "Y") == (tix["Ticket Type"] == "Comp")).all()


# ---------------------------------------------------------------------------
# Returns, exchanges, cancellations, scans
# ---------------------------------------------------------------------------
def test_returns_and_exchanges_reverse_existing_lines(
    sales: pd.DataFrame, instances: pd.DataFrame
) -> None:
    by_id = sales.set_index("Line ID")
    assert by_id.index.is_unique
    rev = sales[sales["Status"].isin(["Returned", "Exchanged"])]
    assert len(rev) > 0
    orig = by_id.loc[rev["Original Line ID"]]
    assert (orig["Status"].to_numpy() == "Sold").all()
    assert (orig["Item Type"].to_numpy() == "Ticket").all()
    assert (orig["Customer ID"].to_numpy() == rev["Customer ID"].to_numpy()).all()
    assert (orig["Instance ID"].to_numpy() == rev["Instance ID"].to_numpy()).all()
    assert (orig["t"].to_numpy() < rev["t"].to_numpy()).all()
    assert (rev["paid"] <= 0).all() and (rev["list"] < 0).all()
    assert not rev["Original Line ID"].duplicated().any()  # a ticket is reversed once
    tickets = (sales["Item Type"] == "Ticket") & (sales["Status"] == "Sold")
    assert 0.015 <= (rev["Status"] == "Returned").sum() / tickets.sum() <= 0.07


def test_an_exchange_adds_a_sold_ticket_for_another_performance_of_the_production(
    sales: pd.DataFrame, instances: pd.DataFrame
) -> None:
    production = instances.set_index("Instance ID")["Event ID"]
    exchanged = sales[sales["Status"] == "Exchanged"]
    new = sales[(sales["Status"] == "Sold") & (sales["Original Line ID"] != "")]
    assert len(exchanged) > 0
    assert sorted(exchanged["Original Line ID"]) == sorted(new["Original Line ID"])
    pair = exchanged.merge(new, on="Original Line ID", suffixes=("_x", "_new"))
    assert (pair["Instance ID_x"] != pair["Instance ID_new"]).all()
    assert (
        production[pair["Instance ID_x"]].to_numpy()
        == production[pair["Instance ID_new"]].to_numpy()
    ).all()
    assert (pair["Order ID_x"] == pair["Order ID_new"]).all()
    assert (pair["paid_new"] == -pair["paid_x"]).all()


def test_every_ticket_of_a_cancelled_performance_is_returned(
    sales: pd.DataFrame, instances: pd.DataFrame
) -> None:
    cancelled = set(instances.loc[instances["Cancelled"] == "Yes", "Instance ID"])
    assert cancelled
    sold = sales[
        (sales["Item Type"] == "Ticket")
        & (sales["Status"] == "Sold")
        & sales["Instance ID"].isin(cancelled)
    ]
    assert len(sold) > 0
    returned = set(sales.loc[sales["Status"] == "Returned", "Original Line ID"])
    assert sold["Line ID"].isin(returned).all()
    share = instances["Cancelled"].eq("Yes").mean()
    assert share < 0.05


def test_scans_cover_most_tickets_that_stood_and_nothing_else(
    org: Path, sales: pd.DataFrame, instances: pd.DataFrame
) -> None:
    scans = _read(org, "attendance")
    reversed_ids = set(
        sales.loc[sales["Status"].isin(["Returned", "Exchanged"]), "Original Line ID"]
    )
    stood = sales[
        (sales["Item Type"] == "Ticket")
        & (sales["Status"] == "Sold")
        & ~sales["Line ID"].isin(reversed_ids)
    ]
    assert scans["Ticket Line ID"].isin(set(stood["Line ID"])).all()
    assert 0.88 <= len(scans) / len(stood) <= 0.96
    line = stood.set_index("Line ID")
    assert (
        line.loc[scans["Ticket Line ID"], "Instance ID"].to_numpy() == scans["Instance ID"]
    ).all()
    start = instances.set_index("Instance ID")["start"][scans["Instance ID"]].to_numpy()
    before = (start - _time(scans["Scan Time"], "attendance").to_numpy()) / np.timedelta64(1, "m")
    assert before.min() >= 15 and before.max() <= 45
    occupancy = stood.groupby("Instance ID").size() / instances.set_index("Instance ID")[
        "Capacity"
    ].astype(int)
    assert occupancy.max() <= 1.0


# ---------------------------------------------------------------------------
# Messy rows
# ---------------------------------------------------------------------------
def _faults(org: Path) -> pd.DataFrame:
    """One boolean column per ledger reason, computed independently from the raw sales rows."""
    spec = _sources()["order_lines"]
    col, values = spec["columns"], spec["values"]
    raw = _read(org, "order_lines")
    perfs = set(_read(org, "performances")["Instance ID"])
    blank = (raw == "").all(axis=1)
    money_ok = pd.concat(
        [raw[col[c]].str.match(MONEY) for c in ("list_price", "paid_amount", "discount")], axis=1
    ).all(axis=1)
    paid = _pounds(raw[col["paid_amount"]].where(money_ok, "0"))
    vocab_ok = pd.concat(
        [raw[col[c]].isin(list(values[c])) for c in ("status", "channel", "item_type", "is_comp")],
        axis=1,
    ).all(axis=1)
    is_reversal = raw[col["status"]].isin(["Returned", "Exchanged"])
    f = pd.DataFrame(
        {
            "blank_row": blank,
            "missing_customer": ~blank & (raw[col["customer_id"]] == ""),
            "unparseable_date": ~blank & _time(raw[col["purchase_time"]], "order_lines").isna(),
            "unparseable_amount": ~blank & ~money_ok,
            "duplicate_line": ~blank & raw.duplicated(),
            "unknown_performance": (raw[col["performance_id"]] != "")
            & ~raw[col["performance_id"]].isin(perfs),
            "negative_not_return": ~blank & (paid < 0) & vocab_ok & ~is_reversal,
            "orphan_return": is_reversal
            & ~raw[col["parent_line_id"]].isin(set(raw[col["line_id"]])),
            "unknown_value": ~blank & ~vocab_ok,
        }
    )
    f["duplicate_id"] = ~blank & raw[col["line_id"]].duplicated() & ~raw.duplicated()
    return f


def test_messy_rows_are_planted_once_per_kind_each_with_one_fault(messy_org: Path) -> None:
    planted = json.loads((messy_org / "truth" / "messy.json").read_text(encoding="utf-8"))
    assert planted == dict.fromkeys(MESSY_KINDS, 3)
    assert set(planted) <= set(REASONS)
    faults = _faults(messy_org)
    assert faults.sum(axis=1).max() == 1, "a messy row has more than one fault"
    found = faults.sum().to_dict()
    assert found.pop("duplicate_id") == 0
    assert found == planted
    raw_lines = (messy_org / "exports" / "sales.csv").read_text(encoding="utf-8").splitlines()
    n_cols = len(raw_lines[0].split(","))
    assert raw_lines.count("," * (n_cols - 1)) == 3  # blank rows are really blank


def test_a_clean_organisation_has_no_faulty_rows_and_no_messy_file(org: Path) -> None:
    assert _faults(org).to_numpy().sum() == 0
    assert not (org / "truth" / "messy.json").exists()


# ---------------------------------------------------------------------------
# Customers and ground truth
# ---------------------------------------------------------------------------
def test_ground_truth_covers_every_customer_exactly_once(org: Path, truth: dict) -> None:
    customers = _read(org, "customers")
    segments = pd.read_csv(org / "truth" / "segments.csv", dtype=str, keep_default_na=False)
    assert segments.columns.tolist() == ["Customer ID", "segment"]
    assert segments["Customer ID"].is_unique and customers["Customer ID"].is_unique
    assert set(segments["Customer ID"]) == set(customers["Customer ID"])
    assert len(segments) == len(customers) == truth["config"]["customers"]
    assert set(segments["segment"]) == set(SEGMENT_NAMES)
    counts = segments["segment"].value_counts()
    assert counts.idxmax() == "casual_explorers"
    assert 0.01 <= counts["major_patrons"] / len(segments) <= 0.04
    assert segments.set_index("segment").index.value_counts().to_dict() == truth["segment_counts"]
    for table in ("order_lines", "memberships", "donations", "interactions", "consents"):
        ids = set(_read(org, table)["Customer ID"])
        assert ids <= set(customers["Customer ID"]), table
    rows = truth["rows"]
    assert rows["exports/sales.csv"] == len(_read(org, "order_lines"))


def test_segments_leave_distinct_behavioural_signatures(org: Path, sales: pd.DataFrame) -> None:
    segments = pd.read_csv(org / "truth" / "segments.csv", dtype=str).set_index("Customer ID")
    tix = sales[(sales["Item Type"] == "Ticket") & (sales["Status"] == "Sold")].join(
        segments, on="Customer ID"
    )
    party = tix.groupby(["segment", "Order ID"]).size().groupby("segment").median()
    assert party["family_weekenders"] >= 3 and party["young_adventurers"] == 1
    share = pd.crosstab(tix["segment"], tix["Ticket Type"], normalize="index")
    assert share.loc["young_adventurers", "Under 26"] > 0.5
    assert share.loc["family_weekenders", "Under 18"] > 0.3
    assert share.loc["classical_subscribers", "Subscription"] > 0.4
    band_a = pd.crosstab(tix["segment"], tix["Price Band"], normalize="index")["A"]
    assert band_a.idxmax() == "major_patrons" and band_a["major_patrons"] > 0.8


def test_customer_records_look_like_a_crm_export(org: Path) -> None:
    c = _read(org, "customers")
    assert c["Customer ID"].str.fullmatch(r"\d{6,7}").all()
    created = _time(c["Created"], "customers")
    assert not created.is_monotonic_increasing  # ids are not in order of creation
    anon = c["Anonymised"] == "Yes"
    assert 0.002 <= anon.mean() <= 0.03
    pii = ["First Name", "Last Name", "Email", "Phone", "Address Line 1", "Town", "Postcode"]
    assert (c.loc[anon, pii] == "").all().all() and (c.loc[~anon, pii] != "").all().all()
    postcode = r"[A-Z]{1,2}\d{1,2}[A-Z]? \d[A-Z]{2}"
    assert c.loc[~anon, "Postcode"].str.fullmatch(postcode).all()
    assert 0.12 <= c["Household ID"].duplicated(keep=False).mean() <= 0.18
    dob = c["Date of Birth"] != ""
    assert 0.25 <= dob.mean() <= 0.35
    assert (c.loc[~dob, "Birthday OK"] == "No").all()
    consents = _read(org, "consents")
    assert len(consents) == 4 * len(c)
    email = consents[consents["Channel"] == "Email"]
    assert 0.55 <= (email["Status"] == "Opted in").mean() <= 0.72


def test_email_activity_respects_consent(org: Path) -> None:
    activity = _read(org, "interactions")
    consents = _read(org, "consents")
    email = consents[consents["Channel"] == "Email"].set_index("Customer ID")["Status"]
    emails = activity[activity["Action"] != "Web visit"]
    status = email.reindex(emails["Customer ID"]).to_numpy()
    unsubscribed = set(activity.loc[activity["Action"] == "Unsubscribed", "Customer ID"])
    ok = (status == "Opted in") | emails["Customer ID"].isin(unsubscribed).to_numpy()
    assert ok.all()
    assert (email.reindex(sorted(unsubscribed)) == "Opted out").all()
    assert not activity.duplicated().any()
    assert len(activity) / len(email) <= 15
    t = _time(activity["Timestamp"], "interactions")
    last_unsub = t[activity["Action"] == "Unsubscribed"].groupby(activity["Customer ID"]).max()
    after = emails["Customer ID"].map(last_unsub)
    assert not (_time(emails["Timestamp"], "interactions") > after).any()


def test_memberships_renew_and_some_expire_just_after_the_data_end(org: Path, truth: dict) -> None:
    m = _read(org, "memberships")
    end = _time(m["Expiry Date"], "memberships")
    data_end = pd.Timestamp(truth["data_end"])
    assert ((end > data_end) & (end <= data_end + pd.Timedelta(days=60))).sum() >= 5
    assert set(m["Level"]) == {"Friend", "Supporter", "Patron"}
    fee = {"Friend": "£60.00", "Supporter": "£150.00", "Patron": "£500.00"}
    assert (m["Amount"] == m["Level"].map(fee)).all()
    survey = _read(org, "survey_responses")
    nps = survey["How likely are you to recommend us? (0-10)"].astype(int)
    assert nps.between(0, 10).all() and (nps <= 6).any() and nps.mean() > 7
