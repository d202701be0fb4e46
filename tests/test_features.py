"""Customer features on a hand-built organisation with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from playbook import features
from playbook.features import FC
from playbook.schema import TABLE_NAMES, conform, empty_table
from playbook.tables import Tables

AS_OF = pd.Timestamp("2025-08-31 23:59:59")


def make_tables(**frames: pd.DataFrame | list[dict]) -> Tables:
    """Canonical tables from hand-written rows; absent tables are empty."""
    out = {}
    for name in TABLE_NAMES:
        rows = frames.get(name)
        if rows is None:
            out[name] = empty_table(name)
        else:
            out[name] = conform(pd.DataFrame(rows), name)
    available = frozenset(k for k, v in out.items() if len(v))
    return Tables(frames=out, available=available)


def line(lid, cust, when, perf=None, paid=10.0, qty=1, **kw) -> dict:
    """One order line (defaults: an active online ticket, list price = paid)."""
    row = {
        "line_id": lid,
        "order_id": kw.pop("order", f"O{lid}"),
        "customer_id": cust,
        "purchase_time": pd.Timestamp(when),
        "performance_id": perf,
        "quantity": qty,
        "paid_amount": paid,
        "list_price": kw.pop("list_price", paid),
        "channel": kw.pop("channel", "online"),
        "status": kw.pop("status", "active"),
        "item_type": kw.pop("item_type", "ticket"),
        "is_comp": kw.pop("is_comp", False),
    }
    row.update(kw)
    return row


PRODUCTIONS = [
    {"production_id": "E1", "title": "Hamlet", "artform": "theatre"},
    {"production_id": "E2", "title": "Brahms", "artform": "classical"},
    {"production_id": "E3", "title": "Oliver!", "artform": "musical"},
]
PERFORMANCES = [
    {"performance_id": "P1", "production_id": "E1", "start_time": "2024-10-05 19:30"},  # Sat
    {"performance_id": "P2", "production_id": "E1", "start_time": "2024-10-12 14:30"},  # Sat mat
    {"performance_id": "P3", "production_id": "E2", "start_time": "2024-11-20 19:30"},  # Wed
    {"performance_id": "P4", "production_id": "E3", "start_time": "2025-09-10 19:30"},  # future
    {
        "performance_id": "P5",
        "production_id": "E2",
        "start_time": "2024-12-01 19:30",
        "cancelled": True,
    },
]


@pytest.fixture
def org() -> Tables:
    lines = [
        # C1: two visits (P1 with 2 tickets online, P3 one concession by phone)
        line("L1", "C1", "2024-09-01 10:00", "P1", paid=40.0, qty=2, list_price=50.0),
        line(
            "L2",
            "C1",
            "2024-11-01 10:00",
            "P3",
            paid=30.0,
            channel="phone",
            ticket_type="Concession",
        ),
        # C2: a returned ticket (does not count) and a comp
        line("L3", "C2", "2024-09-02 10:00", "P2", paid=25.0),
        line(
            "L4", "C2", "2024-09-03 10:00", "P2", paid=-25.0, status="returned", parent_line_id="L3"
        ),
        line("L5", "C2", "2024-11-01 10:00", "P3", paid=0.0, is_comp=True, list_price=30.0),
        # C3: only a future performance; C4: only a cancelled one
        line("L6", "C3", "2025-08-01 10:00", "P4", paid=35.0),
        line("L7", "C4", "2024-11-01 10:00", "P5", paid=35.0),
        # C5: a line with no performance (visit dated by purchase) and P1
        line("L8", "C5", "2023-05-01 12:00", None, paid=15.0, channel="box_office"),
        line("L9", "C5", "2024-09-10 12:00", "P1", paid=20.0),
        line("L10", "C5", "2024-09-10 12:00", "P1", paid=20.0, order="OL9"),
        # C6: anonymised
        line("L11", "C6", "2024-09-10 12:00", "P1", paid=20.0),
        # bought after the as-of date: ignored
        line("L12", "C1", "2025-09-02 10:00", "P4", paid=99.0),
    ]
    return make_tables(
        productions=PRODUCTIONS,
        performances=PERFORMANCES,
        order_lines=lines,
        customers=[
            {"customer_id": "C1", "segment_code": "Metroculturals"},
            {"customer_id": "C6", "anonymised": True},
        ],
        memberships=[
            {
                "membership_id": "M1",
                "customer_id": "C1",
                "start_date": "2025-01-01",
                "end_date": "2025-12-31",
                "amount": 60.0,
            },
            {
                "membership_id": "M2",
                "customer_id": "C5",
                "start_date": "2023-01-01",
                "end_date": "2023-12-31",
                "amount": 50.0,
            },
        ],
        donations=[
            {
                "donation_id": "D1",
                "customer_id": "C5",
                "donation_date": "2022-01-01",
                "amount": 100.0,
            },
            {
                "donation_id": "D2",
                "customer_id": "C2",
                "donation_date": "2025-03-01",
                "amount": 5.0,
            },
        ],
        interactions=[
            {"customer_id": "C1", "occurred_at": f"2025-0{m}-01", "kind": "email_send"}
            for m in range(1, 5)
        ]
        + [{"customer_id": "C1", "occurred_at": "2025-02-02", "kind": "email_click"}],
        survey_responses=[
            {"response_id": "R1", "customer_id": "C1", "responded_at": "2024-10-06", "nps": 7},
            {"response_id": "R2", "customer_id": "C1", "responded_at": "2024-11-21", "nps": 10},
            {"response_id": "R3", "customer_id": "C2", "responded_at": "2025-09-21", "nps": 0},
        ],
    )


def test_population_and_visits(org: Tables) -> None:
    f = features.build_features(org, AS_OF)
    # C3 (future show only), C4 (cancelled only), C6 (anonymised) are not customers yet
    assert list(f.index) == ["C1", "C2", "C5"]
    assert f[FC.frequency].to_dict() == {"C1": 2, "C2": 1, "C5": 2}
    assert f[FC.tickets].to_dict() == {"C1": 3, "C2": 1, "C5": 3}
    assert f[FC.ticket_spend].to_dict() == {"C1": 70.0, "C2": 0.0, "C5": 55.0}
    assert f[FC.seasons_active].to_dict() == {"C1": 1, "C2": 1, "C5": 2}
    assert f.loc["C5", FC.first_visit] == pd.Timestamp("2023-05-01 12:00")
    assert f.loc["C1", FC.last_visit] == pd.Timestamp("2024-11-20 19:30")
    assert f.loc["C1", FC.recency_days] == pytest.approx(
        (AS_OF - pd.Timestamp("2024-11-20 19:30")) / pd.Timedelta(days=1)
    )
    assert f[FC.recent_visits].to_dict() == {"C1": 2, "C2": 1, "C5": 1}


def test_booking_habits(org: Tables) -> None:
    f = features.build_features(org, AS_OF)
    c1 = f.loc["C1"]
    assert c1[FC.avg_party_size] == pytest.approx(1.5)
    assert c1[FC.weekend_share] == pytest.approx(0.5)  # Saturday P1, Wednesday P3
    assert c1[FC.matinee_share] == 0.0
    assert c1[FC.online_share] == pytest.approx(2 / 3)
    assert c1[FC.phone_share] == pytest.approx(1 / 3)
    assert c1[FC.preferred_channel] == "online"
    assert c1[FC.concession_share] == pytest.approx(1 / 3)
    assert c1[FC.discount_share] == pytest.approx(1 - 70 / 80)
    assert c1[FC.avg_ticket_price] == pytest.approx(70 / 3)
    # P1 seats list at 50 (C1) and 20 (three others): median 20; P3 at 30 (only paid seat)
    assert c1[FC.price_index] == pytest.approx((2.5 * 2 + 1.0) / 3)
    # lead days: (2024-10-05 19:30 - 2024-09-01 10:00) and (2024-11-20 19:30 - 2024-11-01 10:00)
    lead = np.mean([34 + 9.5 / 24, 19 + 9.5 / 24])
    assert c1[FC.avg_lead_days] == pytest.approx(lead)
    assert c1[FC.artform_breadth] == 2
    assert c1[FC.favourite_artform] == "classical"  # 1–1 tie: alphabetical
    assert f.loc["C2", FC.comp_share] == 1.0
    assert f.loc["C2", FC.favourite_day] == "Wednesday"
    assert f.loc["C5", FC.avg_ticket_price] == pytest.approx(55 / 3)
    assert f.loc["C5", FC.box_office_share] == pytest.approx(1 / 3)


def test_money_flags_engagement(org: Tables) -> None:
    f = features.build_features(org, AS_OF)
    assert f[FC.is_member].to_dict() == {"C1": True, "C2": False, "C5": False}
    assert f[FC.ever_member].to_dict() == {"C1": True, "C2": False, "C5": True}
    assert f[FC.is_donor].to_dict() == {"C1": False, "C2": True, "C5": False}
    assert f.loc["C5", FC.donation_spend] == 100.0
    assert f.loc["C5", FC.total_spend] == 55.0 + 50.0 + 100.0
    assert f[FC.recent_spend].to_dict() == {"C1": 130.0, "C2": 5.0, "C5": 40.0}
    assert f.loc["C1", FC.email_click_rate] == pytest.approx(0.25)
    assert np.isnan(f.loc["C2", FC.email_click_rate])
    assert f.loc["C1", FC.latest_nps] == 10.0
    assert np.isnan(f.loc["C2", FC.latest_nps])  # answered after the as-of date
    assert f.loc["C1", FC.segment_code] == "Metroculturals"
    assert pd.isna(f.loc["C2", FC.segment_code])


def test_as_of_moves_the_window(org: Tables) -> None:
    early = features.build_features(org, "2024-10-31")
    assert list(early.index) == ["C1", "C5"]
    assert early.loc["C1", FC.frequency] == 1
    assert early.loc["C1", FC.is_member] == False  # noqa: E712  (joined in 2025)


def test_missing_optional_tables_give_neutral_columns() -> None:
    t = make_tables(order_lines=[line("L1", "C1", "2024-09-01"), line("L2", "C1", "2024-10-01")])
    f = features.build_features(t, AS_OF)
    assert f.loc["C1", FC.frequency] == 2  # lines without performance: one visit per order
    assert f.loc["C1", FC.donation_spend] == 0.0
    assert not f.loc["C1", FC.is_member]
    assert np.isnan(f.loc["C1", FC.latest_nps])
    assert pd.isna(f.loc["C1", FC.favourite_artform])
    assert list(f.columns) == list(features.FEATURE_COLUMNS)


def test_naive_baseline_agrees(org: Tables) -> None:
    fast = features.build_features(org, AS_OF)
    slow = features.naive_features_baseline(org, AS_OF)
    assert list(slow.index) == list(fast.index)
    for col in (FC.frequency, FC.tickets, FC.ticket_spend, FC.recency_days, FC.seasons_active):
        np.testing.assert_allclose(slow[col].astype(float), fast[col].astype(float))
    assert list(slow[FC.favourite_artform]) == list(fast[FC.favourite_artform])


def test_naive_baseline_agrees_on_random_frame() -> None:
    rng = np.random.default_rng(3)
    n = 400
    perfs = [
        {
            "performance_id": f"P{i}",
            "production_id": f"E{i % 5}",
            "start_time": pd.Timestamp("2022-01-01") + pd.Timedelta(days=int(i * 9)),
        }
        for i in range(150)
    ]
    prods = [{"production_id": f"E{i}", "title": f"T{i}", "artform": "abcde"[i]} for i in range(5)]
    lines = [
        line(
            f"L{i}",
            f"C{rng.integers(60)}",
            perfs[p]["start_time"] - pd.Timedelta(days=int(rng.integers(1, 60))),
            f"P{p}",
            paid=float(rng.integers(0, 50)),
            qty=int(rng.integers(1, 4)),
        )
        for i, p in enumerate(rng.integers(0, 150, n))
    ]
    t = make_tables(productions=prods, performances=perfs, order_lines=lines)
    fast = features.build_features(t, "2024-12-31")
    slow = features.naive_features_baseline(t, "2024-12-31")
    assert len(fast) > 40
    pd.testing.assert_index_equal(slow.index, fast.index)
    for col in (FC.frequency, FC.tickets, FC.ticket_spend, FC.recency_days, FC.seasons_active):
        np.testing.assert_allclose(slow[col].astype(float), fast[col].astype(float))
    assert list(slow[FC.favourite_artform]) == list(fast[FC.favourite_artform])


def test_summary_has_no_customer_rows(org: Tables) -> None:
    f = features.build_features(org, AS_OF)
    s = features.feature_summary(f, min_group=2)
    assert "customer_id" not in s.columns
    assert set(s["feature"]) <= set(features.FEATURE_COLUMNS)
    assert s.set_index("feature").loc[FC.frequency, "typical"] == "median 2"
    # channels read as the report names them ("online" is "Online")
    assert s.set_index("feature").loc[FC.preferred_channel, "typical"].startswith("Online (")
    hidden = features.feature_summary(f, min_group=10)  # three customers: too few to show
    assert (hidden["typical"] == "–").all() and hidden.attrs["suppressed"] == 1


def test_mode_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    cust = rng.integers(0, 50, 2000)
    val = rng.integers(-1, 6, 2000)
    w = rng.integers(1, 4, 2000).astype(float)
    table = features._mode(cust, val, 60, w)
    monkeypatch.setattr(features, "_MODE_TABLE_MAX", 0)
    np.testing.assert_array_equal(features._mode(cust, val, 60, w), table)
    assert (table[50:] == -1).all()  # customers without values have no mode


def test_feature_arrays_match_the_frame(org: Tables) -> None:
    prep = features.prepare(org)
    f = features.build_features(prep, AS_OF)
    arrays, population = features.feature_arrays(prep, AS_OF, features.LADDER_INPUTS)
    assert set(arrays) == set(features.LADDER_INPUTS)  # only what was asked for
    rows = np.flatnonzero(population)
    assert list(prep.ids[rows]) == list(f.index)
    for col in features.LADDER_INPUTS:
        want = f[col].to_numpy()
        got = arrays[col][rows]
        if col == FC.last_visit:
            got = got.view("datetime64[ns]")
        np.testing.assert_array_equal(got.astype(want.dtype), want)
    with pytest.raises(ValueError, match="Unknown feature columns: nope"):
        features.feature_arrays(prep, AS_OF, ["nope"])


def test_summary_typical_values_read_aloud() -> None:
    n = 11
    f = pd.DataFrame(
        {
            FC.recency_days: np.full(n, 695.4),
            FC.avg_lead_days: np.full(n, 9.34),
            FC.ticket_spend: np.full(n, 63.0),
            FC.avg_ticket_price: np.full(n, 28.25),
            FC.total_spend: np.full(n, 1234.5),
            FC.weekend_share: np.full(n, 0.25),
            FC.avg_party_size: np.full(n, 2.5),
        }
    )
    typical = features.feature_summary(f, min_group=10).set_index("feature")["typical"]
    assert typical[FC.recency_days] == "median 695 days"  # whole days
    assert typical[FC.avg_lead_days] == "median 9 days"
    assert typical[FC.ticket_spend] == "median £63"  # money in the currency
    assert typical[FC.avg_ticket_price] == "median £28.25"
    assert typical[FC.total_spend] == "median £1,234"
    assert typical[FC.weekend_share] == "median 25%"
    assert typical[FC.avg_party_size] == "median 2.50"
    euro = features.feature_summary(f, min_group=10, currency="EUR").set_index("feature")
    assert euro.loc[FC.ticket_spend, "typical"] == "median €63"
