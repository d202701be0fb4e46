"""The maturity ladder: every rule at its boundary, on hand-built customers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_features import line, make_tables

from playbook import features, tiers
from playbook.config import deep_merge, package_defaults, validate
from playbook.features import FC

AS_OF = pd.Timestamp("2025-08-31 23:59:59")


def make_cfg(**sections) -> object:
    """Settings with some sections overridden (as org.yaml would)."""
    return validate(deep_merge(package_defaults(), sections), Path("test-org"))


def visits(cust: str, *times: str, start: int = 0) -> list[dict]:
    """Order lines without a performance: each is one visit dated at its purchase time."""
    return [line(f"{cust}-{start + i}", cust, t) for i, t in enumerate(times)]


@pytest.fixture
def ladder() -> pd.Series:
    lines = [
        *visits("A_first", "2025-03-01"),
        *visits("B_returner", "2022-10-01", "2025-03-01"),
        # exactly two visits inside the last 12 months
        *visits("C_regular", "2024-09-01 00:00:00", "2025-05-01"),
        # the older visit is exactly 12 months before: outside the window
        *visits("C_boundary", "2024-08-31 23:59:59", "2025-05-01"),
        # last visit exactly 24 months before the as-of date: lapsed
        *visits("D_lapsed", "2021-10-01", "2023-08-31 23:59:59"),
        # one second later: not lapsed
        *visits("D_not_lapsed", "2021-10-01", "2023-09-01 00:00:00"),
        # a subscriber with one visit long ago: loyal, never lapsed
        *visits("E_subscriber", "2022-12-01"),
        line("E-sub", "E_subscriber", "2025-06-01", item_type="subscription", paid=120.0),
        # visits in three seasons
        *visits("F_three_seasons", "2022-10-01", "2023-10-01", "2024-10-01"),
    ]
    t = make_tables(order_lines=lines)
    f = features.build_features(t, AS_OF)
    return tiers.assign_tiers(f)


@pytest.mark.parametrize(
    "customer, tier",
    [
        ("A_first", "first_timer"),
        ("B_returner", "returner"),
        ("C_regular", "regular"),
        ("C_boundary", "returner"),
        ("D_lapsed", "lapsed"),
        ("D_not_lapsed", "returner"),
        ("E_subscriber", "loyal"),
        ("F_three_seasons", "loyal"),
    ],
)
def test_tier_rules_at_boundaries(ladder: pd.Series, customer: str, tier: str) -> None:
    assert ladder[customer] == tier


def test_every_customer_has_exactly_one_tier(ladder: pd.Series) -> None:
    assert ladder.notna().all()
    assert ladder.index.is_unique
    assert list(ladder.cat.categories) == list(tiers.ALL_TIERS)


def feature_frame(rows: dict[str, dict]) -> pd.DataFrame:
    """A features frame from a few hand-set columns (others neutral)."""
    base = {
        FC.last_visit: AS_OF - pd.Timedelta(days=30),
        FC.frequency: 2,
        FC.recent_visits: 1,
        FC.seasons_active: 1,
        FC.total_spend: 50.0,
        FC.recent_spend: 20.0,
        FC.is_subscriber: False,
        FC.is_member: False,
        FC.is_donor: False,
        FC.latest_nps: np.nan,
    }
    f = pd.DataFrame([{**base, **r} for r in rows.values()], index=list(rows))
    f.attrs["as_of"] = AS_OF
    return f


def test_champion_rule() -> None:
    rows = {f"x{i}": {} for i in range(16)}  # sixteen ordinary returners
    rows |= {
        "member_top": {FC.frequency: 12, FC.is_member: True},
        "donor_top_spend": {FC.total_spend: 5000.0, FC.is_donor: True},
        "promoter_top": {FC.frequency: 11, FC.latest_nps: 9},
        "passive_top": {FC.frequency: 10, FC.latest_nps: 8},  # top, but nothing else
        "member_not_top": {FC.is_member: True},
        "lapsed_top": {
            FC.frequency: 30,
            FC.is_donor: True,
            FC.last_visit: pd.Timestamp("2020-01-01"),
        },
        "one_visit_big_donor": {FC.frequency: 1, FC.total_spend: 9000.0, FC.is_donor: True},
    }
    cfg = make_cfg(tiers={"champion_top_share": 0.25})
    t = tiers.assign_tiers(feature_frame(rows), cfg)
    assert t["member_top"] == "champion"
    assert t["donor_top_spend"] == "champion"
    assert t["promoter_top"] == "champion"
    assert t["passive_top"] != "champion"
    assert t["member_not_top"] == "loyal"
    assert t["lapsed_top"] == "lapsed"
    assert t["one_visit_big_donor"] == "first_timer"  # champions need 2+ visits
    assert (t == "champion").sum() == 3


def test_top_share_ties_are_left_out() -> None:
    # 10 customers with 1 visit and 10 with 2: "top 10%" by visits is nobody (all tied)
    rows = {f"a{i}": {FC.frequency: 1, FC.is_member: True} for i in range(10)}
    rows |= {f"b{i}": {FC.frequency: 2, FC.is_member: True} for i in range(10)}
    t = tiers.assign_tiers(feature_frame(rows))
    assert (t == "champion").sum() == 0


def test_thresholds_come_from_settings() -> None:
    lines = visits("Z", "2024-10-01", "2025-03-01")
    f = features.build_features(make_tables(order_lines=lines), AS_OF)
    assert tiers.assign_tiers(f)["Z"] == "regular"
    cfg = make_cfg(tiers={"regular_visits": 3, "labels": {"regular": "Habitué"}})
    assert tiers.assign_tiers(f, cfg)["Z"] == "returner"
    assert tiers.tier_labels(cfg)["regular"] == "Habitué"
    lapsed_cfg = make_cfg(tiers={"lapsed_months": 5})
    assert tiers.assign_tiers(f, lapsed_cfg)["Z"] == "lapsed"


def test_helpers() -> None:
    assert tiers.tier_order() == ["first_timer", "returner", "regular", "loyal", "champion"]
    assert tiers.next_tier("first_timer") == "returner"
    assert tiers.next_tier("champion") is None
    assert tiers.next_tier("lapsed") == "returner"
    assert list(tiers.tier_rank(pd.Series(["lapsed", "loyal"]))) == [-1, 3]
    rules = tiers.describe_tiers()
    assert len(rules) == 6 and rules["rule"].str.contains("24 months").any()


def test_tier_history() -> None:
    lines = [
        *visits("old", "2022-10-01", "2023-03-01"),
        *visits("new", "2024-10-01"),
        *visits("steady", "2022-10-01", "2023-10-01", "2024-10-01", "2025-02-01"),
    ]
    h = tiers.tier_history(make_tables(order_lines=lines))
    got = {(r.customer_id, r.season): r.tier for r in h.itertuples()}
    assert got[("old", "2022-23")] == "regular"  # two visits within 12 months
    assert got[("old", "2023-24")] == "returner"
    assert got[("old", "2024-25")] == "lapsed"  # last visit 2023-03, end 2025-08: 29 months
    assert ("new", "2023-24") not in got  # not yet acquired
    assert got[("new", "2024-25")] == "first_timer"
    assert got[("steady", "2022-23")] == "first_timer"
    assert got[("steady", "2023-24")] == "returner"
    assert got[("steady", "2024-25")] == "loyal"  # three seasons
    assert list(h.columns) == ["customer_id", "season", "tier"]
    flow = tiers.tier_flow(h, "2023-24", "2024-25")
    assert flow.loc["new", "first_timer"] == 1
    assert flow.loc["returner", "loyal"] == 1


def test_summary_masks_small_tiers() -> None:
    rows = {f"r{i}": {FC.frequency: 2} for i in range(12)}  # 12 returners
    rows |= {f"f{i}": {FC.frequency: 1} for i in range(3)}  # 3 first-timers
    rows |= {f"l{i}": {FC.last_visit: AS_OF - pd.Timedelta(days=900)} for i in range(20)}
    rows |= {
        f"g{i}": {FC.frequency: 6, FC.seasons_active: 3, FC.recent_visits: 3} for i in range(30)
    }
    f = feature_frame(rows)  # 30 loyal, 20 lapsed, 12 returners, 3 first-timers
    summary = tiers.tier_summary(f, tiers.assign_tiers(f), min_group=10)
    s = summary.set_index("tier")
    assert pd.isna(s.loc["first_timer", "customers"])
    assert pd.isna(s.loc["first_timer", "share_revenue"])
    # the 65 customers are shown elsewhere: 65 - 30 - 20 - 12 would give the 3 away, so
    # the smallest other tier is hidden with them
    assert pd.isna(s.loc["returner", "customers"]) and pd.isna(s.loc["returner", "share_customers"])
    assert s.loc["loyal", "customers"] == 30 and s.loc["lapsed", "customers"] == 20
    assert s.loc["champion", "customers"] == 0  # empty is not small
    assert summary.attrs["suppressed"] == 1 and summary.attrs["complementary"] == 1
    fig = tiers.pyramid_chart(summary)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "hidden" in texts and "30 customers" in texts and "12 customers" not in texts


def test_tier_shares_by_season_leave_no_lone_hidden_cell() -> None:
    history = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(80)],
            "season": ["2024-25"] * 45 + ["2025-26"] * 35,
            # 2024-25: 20 first-timers, 22 returners, 3 loyal; 2025-26: 15, 20, 0 loyal
            "tier": ["first_timer"] * 20 + ["returner"] * 22 + ["loyal"] * 3
            + ["first_timer"] * 15 + ["returner"] * 20,
        }
    )  # fmt: skip
    table = tiers.tier_share_by_season(history, min_group=10).set_index("season")
    assert pd.isna(table.loc["2024-25", "Loyal"])
    assert pd.isna(table.loc["2024-25", "First-timer"])  # 45 - 22 - 20 = 3 otherwise
    assert table.loc["2024-25", "Returner"] == 22
    assert table.loc["2025-26"].tolist() == [15, 20, 0]
    assert table.attrs["complementary"] == 1


def test_tier_history_agrees_with_assign_tiers_at_each_season_end() -> None:
    lines = [
        *visits("old", "2022-10-01", "2023-03-01"),
        *visits("new", "2024-10-01"),
        *visits("steady", "2022-10-01", "2023-10-01", "2024-10-01", "2025-02-01"),
        line("sub", "new", "2025-01-01", item_type="subscription", paid=120.0),
    ]
    t = make_tables(order_lines=lines)
    h = tiers.tier_history(t, seasons=["2021-22", "2023-24", "2024-25"])
    assert h["customer_id"].dtype == "string" and h["season"].dtype == "string"
    assert h["tier"].dtype == tiers.tier_dtype()
    assert list(h["season"].unique()) == ["2023-24", "2024-25"]  # nobody yet in 2021-22
    for label in ("2023-24", "2024-25"):
        as_of = tiers.season_end(label, 9)
        expected = tiers.assign_tiers(features.build_features(t, as_of), as_of=as_of)
        got = h.loc[h["season"] == label]
        assert list(got["customer_id"]) == list(expected.index)
        assert list(got["tier"]) == list(expected)
