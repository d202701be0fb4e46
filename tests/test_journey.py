"""The customer journey and tier flows, on hand-built histories with known answers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_FILES, write_org
from test_features import line, make_tables

from playbook import journey, tiers
from playbook.intake import run_intake
from playbook.privacy import OTHER
from playbook.render import render_season

AS_OF = pd.Timestamp("2025-08-31 23:59:59")

PRODUCTIONS = [
    {"production_id": "E1", "title": "Hamlet", "artform": "theatre"},
    {"production_id": "E2", "title": "Brahms", "artform": "classical"},
    {"production_id": "E3", "title": "Oliver!", "artform": "musical"},
]
PERFORMANCES = [
    {"performance_id": "P0", "production_id": "E1", "start_time": "2022-10-01 19:30"},
    {"performance_id": "P1", "production_id": "E1", "start_time": "2023-10-05 19:30"},
    {"performance_id": "P2", "production_id": "E1", "start_time": "2023-10-12 19:30"},
    {"performance_id": "P3", "production_id": "E2", "start_time": "2024-03-01 19:30"},
    # exactly 12 calendar months after P1 (366 days: February 2024 has 29 days)
    {"performance_id": "P4", "production_id": "E2", "start_time": "2024-10-05 14:30"},
    {"performance_id": "P5", "production_id": "E3", "start_time": "2025-06-01 19:30"},
    {
        "performance_id": "P7",
        "production_id": "E3",
        "start_time": "2025-08-10 19:30",
        "cancelled": True,
    },
    {"performance_id": "P8", "production_id": "E3", "start_time": "2025-10-01 19:30"},
]


def _lines() -> list[dict]:
    return [
        # books twice in one season (P1, P2); P1 in two orders, three tickets: one visit
        line("t1", "twice", "2023-09-01 10:00", "P1", paid=20.0, qty=2, order="O1"),
        line("t2", "twice", "2023-09-20 10:00", "P1", paid=15.0, qty=1, order="O2"),
        line("t3", "twice", "2023-10-06 09:00", "P2", paid=10.0, order="O3", channel="phone"),
        # comes back exactly 12 months after the first visit
        line("y1", "year", "2023-09-10 10:00", "P1", order="O4"),
        line("y2", "year", "2024-09-01 10:00", "P4", order="O5"),
        # first visit less than 12 months before the data end: censored
        line("l1", "late", "2025-05-01 10:00", "P5", order="O6"),
        line("l2", "late", "2025-07-01 10:00", "P8", order="O6b"),  # future: not a visit yet
        # one visit, long enough ago to be followed for 12 months
        line("o1", "once", "2024-02-01 10:00", "P3", order="O7", channel="box_office"),
        # first seen in the data's first season: not counted as a first-timer
        line("f1", "older", "2022-09-01 10:00", "P0", order="O8"),
        line("f2", "older", "2024-02-02 10:00", "P3", order="O9"),
        # the last booking, on the data end's last day (for a later performance: not a
        # visit yet): bookings run to the end of the data, so windows are followed to it
        line("z1", "future", "2025-08-31 23:00", "P8", order="O13"),
        # a cancelled performance and a returned ticket are not visits
        line("c1", "cancel", "2025-07-01 10:00", "P7", order="O10"),
        line("r1", "refund", "2024-01-01 10:00", "P3", order="O11"),
        line(
            "r2",
            "refund",
            "2024-01-05 10:00",
            "P3",
            paid=-10.0,
            order="O12",
            status="returned",
            parent_line_id="r1",
        ),
    ]


INTERACTIONS = [
    # a click 3 days before the first booking: discovered
    {"customer_id": "twice", "occurred_at": "2023-08-29 12:00", "kind": "email_click"},
    # a web visit 20 days before a booking: outside the 14-day window
    {"customer_id": "year", "occurred_at": "2023-08-21 09:00", "kind": "web_visit"},
    # pre-show email about the same production, between booking and performance
    {
        "customer_id": "twice",
        "occurred_at": "2023-10-03 09:00",
        "kind": "email_send",
        "campaign": "Pre-show: Hamlet",
        "production_id": "E1",
    },
    # an email about another production does not count as pre-show for P1
    {
        "customer_id": "year",
        "occurred_at": "2023-10-01 09:00",
        "kind": "email_send",
        "campaign": "Pre-show: Brahms",
        "production_id": "E2",
    },
    # a newsletter is not a pre-show email …
    {
        "customer_id": "once",
        "occurred_at": "2024-02-10 09:00",
        "kind": "email_send",
        "campaign": "Newsletter February",
    },
    # … but a campaign named like one, about no production, is
    {
        "customer_id": "late",
        "occurred_at": "2025-05-25 09:00",
        "kind": "email_send",
        "campaign": "Know before you go",
    },
    # a click followed by a booking two days later (converts), and one that is not
    {"customer_id": "year", "occurred_at": "2024-08-30 09:00", "kind": "email_click"},
    {"customer_id": "once", "occurred_at": "2024-06-01 09:00", "kind": "email_click"},
]
ATTENDANCE = [
    {"line_id": "t1", "scanned_at": "2023-10-05 19:00"},
    {"line_id": "y2", "scanned_at": "2024-10-05 14:00"},
    # P3 was scanned at the door (for another customer), P5 never was
    {"line_id": "f2", "scanned_at": "2024-03-01 19:00"},
]
SURVEYS = [
    {
        "response_id": "S1",
        "customer_id": "twice",
        "responded_at": "2023-10-06 10:00",
        "performance_id": "P1",
        "nps": 10,
        "intent_to_return": 1.0,
    },
    {
        "response_id": "S2",
        "customer_id": "once",
        "responded_at": "2024-03-02 10:00",
        "performance_id": "P3",
        "nps": 5,
        "intent_to_return": 0.25,
    },
]


@pytest.fixture(scope="module")
def tables():
    return make_tables(
        order_lines=_lines(),
        productions=PRODUCTIONS,
        performances=PERFORMANCES,
        interactions=INTERACTIONS,
        attendance=ATTENDANCE,
        survey_responses=SURVEYS,
    )


@pytest.fixture(scope="module")
def table(tables) -> pd.DataFrame:
    return journey.build_journey(tables, as_of=AS_OF)


def _yes(value: object) -> bool:
    """A known True (numpy, pandas or Python boolean)."""
    return not pd.isna(value) and bool(value) is True


def _no(value: object) -> bool:
    """A known False (not missing)."""
    return not pd.isna(value) and bool(value) is False


def _visit(table: pd.DataFrame, cust: str, n: int = 1) -> pd.Series:
    rows = table.loc[(table["customer_id"] == cust) & (table["visit_no"] == n)]
    assert len(rows) == 1, f"{cust} visit {n}"
    return rows.iloc[0]


# ---------------------------------------------------------------------------
# The journey table
# ---------------------------------------------------------------------------
def test_a_visit_is_a_customers_distinct_performance(table: pd.DataFrame) -> None:
    counts = table.groupby("customer_id").size().to_dict()
    assert counts == {"twice": 2, "year": 2, "late": 1, "once": 1, "older": 2}
    first = _visit(table, "twice")
    assert first["performance_id"] == "P1" and first["party_size"] == 3
    assert first["paid"] == pytest.approx(35.0) and first["booked_at"] == pd.Timestamp(
        "2023-09-01 10:00"
    )
    assert first["lead_days"] == pytest.approx(
        (pd.Timestamp("2023-10-05 19:30") - first["booked_at"]) / pd.Timedelta(days=1)
    )
    assert first["artform"] == "theatre" and first["season"] == "2023-24"


def test_the_journey_table_saves_as_parquet(table: pd.DataFrame, tmp_path: Path) -> None:
    table.to_parquet(tmp_path / "journey.parquet")  # attrs are plain values
    back = pd.read_parquet(tmp_path / "journey.parquet")
    assert len(back) == len(table) and back.attrs["as_of"] == str(AS_OF)


def test_the_customer_who_books_twice_in_one_season(table: pd.DataFrame) -> None:
    first, second = _visit(table, "twice", 1), _visit(table, "twice", 2)
    assert first["season"] == second["season"] == "2023-24"
    assert first["returned"] and first["days_to_next"] == 7
    assert first["next_booked_at"] == pd.Timestamp("2023-10-06 09:00")
    assert _yes(first["returned_in_window"])  # back within 90 days
    assert second["channel"] == "phone" and not second["booked_online"]


def test_discover_anticipate_attend_reflect(table: pd.DataFrame) -> None:
    twice = _visit(table, "twice")
    assert twice["clicks_before"] == 1 and _yes(twice["discovered"])
    assert twice["pre_show_emails"] == 1 and _yes(twice["pre_show"])
    assert _yes(twice["attended"]) and _no(twice["no_show"])
    assert twice["nps"] == 10 and _yes(twice["promoter"])
    year = _visit(table, "year")
    assert year["web_visits_before"] == 0 and _no(year["discovered"])  # 20 days before
    assert year["pre_show_emails"] == 0  # the email was about another production
    assert _visit(table, "late")["pre_show_emails"] == 1  # "Know before you go"
    assert _visit(table, "once")["pre_show_emails"] == 0  # a newsletter
    once = _visit(table, "once")
    assert _yes(once["no_show"])  # P3 was scanned, this ticket was not
    assert _no(once["promoter"]) and once["intent_to_return"] == 0.25
    assert pd.isna(_visit(table, "late")["attended"])  # nobody was scanned at P5
    assert pd.isna(_visit(table, "year")["promoter"])  # no survey answer


def test_scans_without_a_line_match_by_customer_and_performance() -> None:
    scans = [{"customer_id": "late", "performance_id": "P5", "scanned_at": "2025-06-01 19:00"}]
    t = make_tables(
        order_lines=_lines(), productions=PRODUCTIONS, performances=PERFORMANCES, attendance=scans
    )
    j = journey.build_journey(t, as_of=AS_OF)
    assert _yes(_visit(j, "late")["attended"])
    assert pd.isna(_visit(j, "twice")["attended"])  # nobody was scanned at P1 here


def test_stages_without_data_are_missing_not_zero() -> None:
    t = make_tables(order_lines=_lines(), productions=PRODUCTIONS, performances=PERFORMANCES)
    j = journey.build_journey(t, as_of=AS_OF)
    for col in ("discovered", "pre_show", "attended", "no_show", "surveyed", "promoter"):
        assert j[col].isna().all(), col
    visits = journey.season_visits(j, tiers.tier_history(t), "2023-24")
    jmap = journey.journey_map(visits, min_group=1)
    assert set(jmap.unavailable) == {"Discover", "Anticipate", "Attend", "Reflect"}
    assert jmap.rates.loc["Discover"].isna().all()
    # booked 7+ days ahead: all of 2023-24's five visits but twice's P2 (booked 6 days ahead)
    assert jmap.rates.loc["Book", "All visits"] == pytest.approx(0.8)
    defs = journey.stage_definitions(t).set_index("stage")
    assert defs.loc["Attend", "available"].startswith("no data")
    assert defs.loc["Book", "available"] == "yes"


# ---------------------------------------------------------------------------
# First-timers: windows and censoring
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def first(table: pd.DataFrame) -> pd.DataFrame:
    return journey.first_timers(table).set_index("customer_id")


def test_first_season_customers_are_not_first_timers(first: pd.DataFrame) -> None:
    assert sorted(first.index) == ["late", "once", "twice", "year"]
    assert first.attrs["excluded_season"] == "2022-23"


def test_return_after_exactly_twelve_months_counts(first: pd.DataFrame) -> None:
    year = first.loc["year"]
    assert year["duration_days"] == 366  # 2023-10-05 → 2024-10-05
    assert year["observed_12m"] and _yes(year["back_12m"])
    assert year["observed_90d"] and _no(year["back_90d"])


def test_censored_first_timer_is_excluded_from_the_window(first: pd.DataFrame) -> None:
    late = first.loc["late"]
    assert not late["returned"]
    assert not late["observed_12m"] and pd.isna(late["back_12m"])
    assert late["observed_90d"] and _no(late["back_90d"])  # 2025-06-01 + 90 days fits
    assert late["duration_days"] == 91  # censored at the data end


def test_return_rates_leave_out_the_censored(first: pd.DataFrame) -> None:
    summary = journey.first_timer_return_summary(first).set_index("window")
    assert summary.loc[
        "12 months", ["first_timers", "followed", "returned", "excluded"]
    ].tolist() == [4, 3, 2, 1]
    assert summary.loc["12 months", "rate"] == pytest.approx(2 / 3)
    assert summary.loc["90 days", "rate"] == pytest.approx(1 / 4)
    overall = journey.first_timer_return(first, min_group=1)
    assert overall["rate_12m"].iloc[0] == pytest.approx(2 / 3)


def test_kaplan_meier_median_on_known_examples(first: pd.DataFrame) -> None:
    # S(1)=4/5, S(2)=3/5, censored at 3, S(4)=3/5 × 1/2 = 0.3: the median is 4
    kmf = journey.fit_time_to_return([1, 2, 3, 4, 5], [True, True, False, True, True])
    assert kmf.median_survival_time_ == 4
    assert kmf.survival_function_at_times([3]).iloc[0] == pytest.approx(0.6)
    # the four first-timers: back after 7 days; censored at 91; back after 366 (two at
    # risk: S = 3/4 × 1/2 = 3/8); censored at 548. The median is 366.
    kmf = journey.time_to_second_visit(first)
    assert kmf.median_survival_time_ == 366
    assert kmf.survival_function_at_times([7, 365, 366]).tolist() == pytest.approx(
        [0.75, 0.75, 0.375]
    )
    table = journey.km_table(kmf, days=(30, 400)).set_index("days_after_first_visit")
    assert table.loc[400, "share_back"] == pytest.approx(0.625)


def test_time_to_return_stops_where_few_are_still_followed() -> None:
    # ten first-timers: back after 10, 20, 30, 40, 50, 60, 70, 80, 90 and 100 days.
    # At day 80 three are still followed (80, 90, 100): with a threshold of 4 the
    # curve and the table stop before day 80; day 70 (four followed) still shows.
    kmf = journey.fit_time_to_return(np.arange(10, 101, 10), np.ones(10, bool))
    assert journey.km_hidden_from(kmf, 4) == 80
    assert journey.km_hidden_from(kmf, 1) == np.inf
    table = journey.km_table(kmf, days=(30, 70, 80, 95), min_group=4)
    assert table["days_after_first_visit"].tolist() == [30, 70]
    assert table["share_back"].tolist() == pytest.approx([0.3, 0.7])
    assert "80, 95 days" in table.attrs["footnote"]
    full = journey.km_table(kmf, days=(30, 70, 80, 95), min_group=1)
    assert full["days_after_first_visit"].tolist() == [30, 70, 80, 95]
    assert "footnote" not in full.attrs
    fig = journey.km_chart(kmf, min_group=4)
    drawn = fig.axes[0].lines[0].get_xdata()
    assert max(drawn) == 70
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_click_conversion(tables) -> None:
    h = tiers.tier_history(tables)
    # 2022-23: one click, three days before the first booking (within 7 days)
    out = journey.click_conversion(tables, h, "2022-23", as_of=AS_OF, min_group=1)
    # the total row counts clicks (not visits), and says so
    row = out.set_index("tier").loc["All clicks"]
    assert (row["clicks"], row["converted"]) == (1, 1)
    # 2023-24: one click two days before a booking, one never followed by one
    out = journey.click_conversion(tables, h, "2023-24", as_of=AS_OF, min_group=1)
    by_tier = out.set_index("tier")
    assert (by_tier.loc["All clicks", "clicks"], by_tier.loc["All clicks", "converted"]) == (2, 1)
    assert by_tier.loc["All clicks", "conversion_rate"] == pytest.approx(0.5)
    assert set(by_tier.index) == {"New this season", "All clicks"}  # not customers by 2022-23


# ---------------------------------------------------------------------------
# Tier flows
# ---------------------------------------------------------------------------
HISTORY = pd.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3", "c4", "c5", "c1", "c2", "c3", "c4", "c5", "c6"],
        "season": ["2023-24"] * 5 + ["2024-25"] * 6,
        "tier": [
            "first_timer",
            "first_timer",
            "regular",
            "loyal",
            "lapsed",
            "returner",
            "lapsed",
            "regular",
            "champion",
            "lapsed",
            "first_timer",
        ],
    }
).astype({"customer_id": "string", "season": "string", "tier": tiers.tier_dtype()})


def test_transition_matrix_rows_sum_to_previous_tier_counts() -> None:
    m = journey.transition_matrix(HISTORY, "2023-24", "2024-25")
    before = HISTORY.loc[HISTORY["season"] == "2023-24", "tier"].astype("string").value_counts()
    for tier in tiers.ALL_TIERS:
        assert m.loc[tier].sum() == before.get(tier, 0)
    assert m.loc["new"].sum() == 1 and m.loc["new", "first_timer"] == 1
    assert m.loc["first_timer", "returner"] == 1 and m.loc["first_timer", "lapsed"] == 1
    rates = journey.transition_rates(m)
    assert rates.loc["first_timer"].sum() == pytest.approx(1.0)
    long = journey.tier_flows(HISTORY)
    assert long["customers"].sum() == 6


def test_conversion_and_churn_against_targets() -> None:
    conv = journey.tier_conversion(HISTORY, min_group=1).set_index("step")
    assert conv.loc["entry → mid", "customers"] == 2 and conv.loc["entry → mid", "rate"] == 0
    assert conv.loc["mid → top", "rate"] == pytest.approx(0.5)  # c4 loyal → champion
    assert conv.loc["mid → top", "verdict"] == "above the target band"
    assert conv.loc["entry → mid", "verdict"] == "below the target band"
    visits = pd.DataFrame(
        {"customer_id": ["c1", "c3", "c6"], "season": ["2024-25"] * 3}, dtype="string"
    )
    churn = journey.churn_by_tier(HISTORY, visits, min_group=1).set_index("tier")
    assert churn.loc["First-timer", "churn_rate"] == pytest.approx(0.5)  # c2 did not come
    assert churn.loc["Loyal", "churn_rate"] == pytest.approx(1.0)
    assert "Lapsed" not in churn.index
    move = journey.tier_movement(
        journey.transition_matrix(HISTORY, "2023-24", "2024-25"), min_group=1
    ).set_index("tier")
    assert move.loc["First-timer", "up_rate"] == pytest.approx(0.5)
    assert move.loc["First-timer", "lapse_rate"] == pytest.approx(0.5)


def test_small_cells_are_masked() -> None:
    m = journey.transition_matrix(HISTORY, "2023-24", "2024-25")
    counts, rates = journey.mask_transitions(m, min_group=2)
    assert counts.isna().to_numpy().sum() > 0
    assert counts.loc["First-timer", "Regular"] == 0  # an empty cell identifies nobody
    assert pd.isna(counts.loc["First-timer", "Returner"]) and pd.isna(
        rates.loc["Loyal", "Champion"]
    )


# ---------------------------------------------------------------------------
# The generated organisation
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generated(small_org: Path):
    from playbook.config import load_org
    from playbook.tables import load_tables

    cfg = load_org(small_org)
    t = load_tables(cfg)
    truth = json.loads((small_org / "truth" / "generator.json").read_text())
    j = journey.build_journey(t, cfg, as_of=pd.Timestamp(truth["data_end"]))
    return cfg, t, truth, j


def test_first_timer_return_matches_the_generator(generated) -> None:
    cfg, _, truth, j = generated
    summary = journey.first_timer_return_summary(journey.first_timers(j, cfg))
    row = summary.set_index("window").loc["12 months"]
    low, high = truth["first_timer_return_12m"]
    assert row["followed"] >= 300
    assert low <= row["rate"] <= high
    assert abs(row["rate"] - truth["observed"]["first_timer_return_12m"]) < 0.03


def test_flows_on_the_generated_organisation(generated) -> None:
    cfg, t, _, j = generated
    h = tiers.tier_history(t, cfg)
    seasons = journey.history_seasons(h)
    for a, b in zip(seasons[:-1], seasons[1:], strict=True):
        m = journey.transition_matrix(h, a, b)
        before = h.loc[h["season"] == a, "tier"].astype("string").value_counts()
        assert m.drop(index="new").sum(axis=1).to_dict() == {
            k: int(before.get(k, 0)) for k in tiers.ALL_TIERS
        }
        assert (
            m.loc["new"].sum()
            == (
                ~h.loc[h["season"] == b, "customer_id"].isin(h.loc[h["season"] == a, "customer_id"])
            ).sum()
        )
    visits = journey.season_visits(j, h, seasons[-1])
    jmap = journey.journey_map(visits, cfg, min_group=cfg.min_group)
    shown = jmap.rates.notna()
    assert shown.to_numpy().any()
    assert (jmap.customers.where(shown, cfg.min_group) >= cfg.min_group).to_numpy().all()
    first = journey.first_timers(j, cfg)
    by_art = journey.first_timer_return(first, "artform", min_group=150)
    assert (by_art.loc[by_art["artform"] != OTHER, "first_timers"] >= 150).all()
    assert by_art["first_timers"].sum() == len(first)
    assert (by_art["followed_12m"].fillna(0) >= 150).where(by_art["rate_12m"].notna(), True).all()
    cohorts = journey.cohort_retention(j, cfg.min_group)
    assert np.allclose(np.diag(cohorts.to_numpy()), 1.0)


# ---------------------------------------------------------------------------
# The notebook
# ---------------------------------------------------------------------------
def _assert_clean(out: Path, name: str = "30_journey_mapping") -> str:
    page = (out / f"{name}.html").read_text(encoding="utf-8")
    assert "hl-ipython3" not in page and "report.start(" not in page
    assert "Traceback" not in page and "Warning" not in page
    executed = nbformat.read(out / f"{name}.ipynb", as_version=4)
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                raise AssertionError(f"stderr output: {output.get('text', '')[:300]}")
    return page


def test_notebook_renders_on_the_small_organisation(small_org: Path, tmp_path: Path) -> None:
    result = render_season(small_org, reports_root=tmp_path / "reports", only=["30"])
    assert result.notebooks == ["30_journey_mapping.ipynb"]
    page = _assert_clean(result.output_dir)
    assert "journey map" in page.lower() and "Kaplan" in page


def test_notebook_degrades_without_optional_tables(tmp_path: Path) -> None:
    org = write_org(tmp_path / "tiny", TINY_FILES)
    run_intake(org, today="2025-01-01")
    result = render_season(org, reports_root=tmp_path / "reports", only=["30"])
    page = _assert_clean(result.output_dir)
    assert "Not available here" in page  # report.missing_note for absent tables
    shutil.rmtree(tmp_path / "reports", ignore_errors=True)


def test_tickets_without_a_performance_are_visits_of_their_order() -> None:
    lines = [
        line("n1", "walkin", "2024-03-01 10:00", order="OX", qty=2),
        line("n2", "walkin", "2024-03-01 10:05", order="OX"),
        line("n3", "walkin", "2024-05-01 10:00", order="OY"),
        line("n4", "member", "2024-04-01 10:00", "P3", order="OZ"),
    ]
    t = make_tables(productions=PRODUCTIONS, performances=PERFORMANCES, order_lines=lines)
    j = journey.build_journey(t, as_of=AS_OF).set_index(["customer_id", "visit_no"])
    assert j.loc[("walkin", 1), "visit_id"] == "order OX"
    assert j.loc[("walkin", 1), "party_size"] == 3
    assert j.loc[("walkin", 2), "visit_id"] == "order OY"
    assert pd.isna(j.loc[("walkin", 2), "performance_id"])
    assert j.loc[("member", 1), "visit_id"] == "P3"


def test_transition_matrix_reads_tiers_as_text_too() -> None:
    as_text = HISTORY.astype({"tier": "string"})
    pd.testing.assert_frame_equal(
        journey.transition_matrix(as_text, "2023-24", "2024-25"),
        journey.transition_matrix(HISTORY, "2023-24", "2024-25"),
    )


# ---------------------------------------------------------------------------
# Privacy of the tier-flow rates (a hand-made transition matrix)
# ---------------------------------------------------------------------------
KEYS = list(tiers.ALL_TIERS)
# rows: tier at the end of last season (then "new"); columns: tier a season later
FLOWS = pd.DataFrame(
    [
        [2350, 316, 138, 50, 3, 2293],  # first-timer: the 3 and a partner hidden
        [0, 553, 11, 301, 3, 1500],
        [0, 544, 72, 141, 4, 0],  # regular: the 4 (and the 72 with it) hidden
        [42, 39, 4, 1097, 100, 38],
        [0, 4, 0, 56, 774, 64],  # champion: the 4, and 56 / 64 with it
        [0, 146, 30, 2, 3, 5034],
        [2838, 0, 485, 171, 8, 0],  # new
    ],
    index=[*KEYS, "new"],
    columns=KEYS,
)
CATEGORIES = {  # the destination cells each rate of tier_movement adds up
    "up_rate": lambda i, j: (j > i and KEYS[j] != "lapsed") or (KEYS[i] == "lapsed" and j < 5),
    "stay_rate": lambda i, j: i == j,
    "down_rate": lambda i, j: j < i and KEYS[i] != "lapsed",
    "lapse_rate": lambda i, j: KEYS[j] == "lapsed" and KEYS[i] != "lapsed",
}


def _determined(equations: list[np.ndarray], unknowns: int) -> np.ndarray:
    """Which unknowns a set of linear equations (coefficient rows) pins down."""
    if not equations:
        return np.zeros(unknowns, dtype=bool)
    a = np.array(equations, dtype=float)
    full = np.linalg.matrix_rank(a)
    return np.array(
        [np.linalg.matrix_rank(np.delete(a, k, axis=1)) < full for k in range(unknowns)]
    )


def test_tier_movement_rates_never_give_a_hidden_cell_away() -> None:
    hidden = journey.transition_mask(FLOWS, min_group=10)
    move = journey.tier_movement(FLOWS, min_group=10).set_index("tier")
    names = journey.tier_display_names()
    v = FLOWS.to_numpy()
    h = hidden.to_numpy()
    cells = list(zip(*np.nonzero(h & (v > 0)), strict=True))  # the unknowns
    where = {c: k for k, c in enumerate(cells)}
    equations = []  # every figure the page shows, as an equation on the hidden cells
    for i in range(v.shape[0]):  # row totals (tier sizes are shown)
        equations.append(np.array([1.0 if r == i else 0.0 for r, _ in cells]))
    for j in range(v.shape[1]):  # column totals
        equations.append(np.array([1.0 if c == j else 0.0 for _, c in cells]))
    for i, key in enumerate(KEYS):
        total = v[i].sum()
        shown_sum = 0.0
        for rate, in_cat in CATEGORIES.items():
            r = move.loc[names[key], rate]
            cat = [j for j in range(len(KEYS)) if in_cat(i, j)]
            if pd.isna(r):
                # hidden only when the category holds a hidden cell
                assert rate == "lapse_rate" and key == "lapsed" or any(h[i, j] for j in cat)
                continue
            # a rate shown is a sum of cells shown, over the tier's size
            assert not any(h[i, j] and v[i, j] > 0 for j in cat), (key, rate)
            assert round(r * total) == sum(v[i, j] for j in cat), (key, rate)
            shown_sum += round(r * total)
            eq = np.zeros(len(cells))
            for j in cat:
                if (i, j) in where:
                    eq[where[(i, j)]] = 1.0
            equations.append(eq)
        # the rates left shown give away at most the sum of the hidden categories:
        # the tier's size minus the cells shown, which the count table already gives
        shown_cells = sum(v[i, j] for j in range(len(KEYS)) if not h[i, j])
        hidden_cats = total - shown_sum
        assert hidden_cats >= total - shown_cells
    assert not _determined(equations, len(cells)).any()
    # the old rates (from the unmasked counts) gave the regulars' hidden 72 away
    old_stay = 72 / 761
    eq = np.zeros(len(cells))
    eq[where[(2, 2)]] = 1.0
    assert round(old_stay * 761) == 72 and _determined([*equations, eq], len(cells))[where[(2, 2)]]
    assert move.attrs["hidden_rates"] > 0


def test_flow_chart_merges_every_hidden_cell() -> None:
    import matplotlib.pyplot as plt

    hidden = journey.transition_mask(FLOWS, min_group=10)
    fig = journey.flow_chart(FLOWS, min_group=10)
    ax = fig.axes[0]
    rows = FLOWS.iloc[::-1]  # the chart draws the first row at the top
    tot = rows.sum(axis=1).to_numpy(dtype=float)
    grey = ax.containers[-1]  # drawn last, after one segment per tier
    expected_grey = (rows.where(hidden.iloc[::-1], 0).sum(axis=1).to_numpy()) / tot
    assert np.allclose([p.get_width() for p in grey], expected_grey)
    champion = list(rows.index).index("champion")
    assert expected_grey[champion] == pytest.approx((4 + 56 + 64) / 898)
    for j, key in enumerate(KEYS):  # a segment per tier: only cells the table shows
        bars = ax.containers[j]
        widths = np.array([p.get_width() for p in bars])
        shown = ~hidden.iloc[::-1][key].to_numpy()
        assert np.allclose(widths, np.where(shown, rows[key].to_numpy() / tot, 0))
    assert grey.get_label() == "hidden cells (small groups)"
    plt.close(fig)


def _history(flows: dict[tuple[str, str], int], a: str = "2023-24", b: str = "2024-25"):
    """A tier history with ``n`` customers for each (tier in a, tier in b) pair."""
    ids, sa, ta, sb, tb = [], [], [], [], []
    k = 0
    for (frm, to), n in flows.items():
        for _ in range(n):  # a hand-made test history: a few thousand rows at most
            cid = f"c{k}"
            k += 1
            if frm != "new":
                ids.append(cid), sa.append(a), ta.append(frm)
            ids.append(cid), sa.append(b), ta.append(to)
    del sb, tb
    return pd.DataFrame({"customer_id": ids, "season": sa, "tier": ta}).astype(
        {"customer_id": "string", "season": "string", "tier": tiers.tier_dtype()}
    )


def test_band_conversion_is_hidden_when_it_adds_up_a_hidden_cell() -> None:
    h = _history(
        {
            ("regular", "regular"): 600,
            ("regular", "champion"): 4,  # hidden in the transition table
            ("loyal", "loyal"): 500,
            ("loyal", "champion"): 100,
            ("loyal", "regular"): 40,
        }
    )
    conv = journey.tier_conversion(h, min_group=10).set_index("step")
    assert pd.isna(conv.loc["mid → top", "rate"]) and pd.isna(conv.loc["mid → top", "converted"])
    assert conv.loc["mid → top", "verdict"] == "–"
    # with every cell of the block large enough, the rate shows
    h = _history({("regular", "regular"): 600, ("regular", "champion"): 40, ("loyal", "loyal"): 60})
    conv = journey.tier_conversion(h, min_group=10).set_index("step")
    assert conv.loc["mid → top", "rate"] == pytest.approx(40 / 700)


def test_conversion_verdict_is_decided_on_the_figure_shown() -> None:
    # 89 of 1,763 = 5.048%, printed "5.0%": within a band ending at 5%, not above it
    h = _history(
        {
            ("regular", "regular"): 855,
            ("regular", "champion"): 45,
            ("loyal", "loyal"): 819,
            ("loyal", "champion"): 44,
        }
    )
    row = journey.tier_conversion(h, min_group=10).set_index("step").loc["mid → top"]
    assert row["rate"] == pytest.approx(89 / 1763) and f"{row['rate']:.1%}" == "5.0%"
    assert row["verdict"] == "within the target band"
    assert journey._verdict(0.04998, 0.02, 0.05) == "within the target band"
    assert journey._verdict(0.0506, 0.02, 0.05) == "above the target band"  # prints 5.1%


def test_churn_changes_read_with_their_sign_and_in_points() -> None:
    seasons = {"2022-23": 20, "2023-24": 20}
    ids = [f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)]
    history = pd.DataFrame(
        {
            "customer_id": ids + ids,
            "season": ["2022-23"] * 20 + ["2023-24"] * 20 + ["2023-24"] * 20 + ["2024-25"] * 20,
            "tier": ["first_timer"] * 40 + ["lapsed"] * 20 + ["first_timer"] * 20,
        }
    ).astype({"customer_id": "string", "season": "string", "tier": tiers.tier_dtype()})
    history = history.drop_duplicates(["customer_id", "season"])
    del seasons
    # 2022-23's twenty first-timers: 10 back in 2023-24 (churn 50%); 2023-24's twenty
    # b-customers: 8 back in 2024-25 (churn 60%): +10 points, a relative rise of 20%
    visits = pd.DataFrame(
        {
            "customer_id": [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(8)],
            "season": ["2023-24"] * 10 + ["2024-25"] * 8,
        },
        dtype="string",
    )
    churn = journey.churn_by_tier(history, visits, min_group=5)
    row = churn.loc[(churn["season_to"] == "2024-25") & (churn["tier"] == "First-timer")].iloc[0]
    assert row["change_points"] == pytest.approx(0.10)
    assert row["change_yoy"] == pytest.approx(0.20)
    assert row["verdict"] == "short of the target band"  # a rise, against a wanted fall
    shown = journey.with_signed_changes(churn)
    row = shown.loc[(shown["season_to"] == "2024-25") & (shown["tier"] == "First-timer")].iloc[0]
    assert row["change_yoy"] == "+20.0%" and row["change_points"] == "+10.0 points"
    assert journey.signed_pct(-0.024) == "−2.4%" and "-" not in journey.signed_pct(-0.024)
    assert journey.signed_points(-0.014) == "−1.4 points"
    assert journey.signed_pct(0.0) == "0.0%"


def test_churn_of_a_handful_is_hidden() -> None:
    # 20 first-timers, 17 back: 3 churned, too few to show (and so the rate)
    history = pd.DataFrame(
        {
            "customer_id": [f"a{i}" for i in range(20)] * 2,
            "season": ["2023-24"] * 20 + ["2024-25"] * 20,
            "tier": ["first_timer"] * 20 + ["returner"] * 17 + ["lapsed"] * 3,
        }
    ).astype({"customer_id": "string", "season": "string", "tier": tiers.tier_dtype()})
    visits = pd.DataFrame(
        {"customer_id": [f"a{i}" for i in range(17)], "season": ["2024-25"] * 17},
        dtype="string",
    )
    row = journey.churn_by_tier(history, visits, min_group=10).iloc[0]
    assert row["customers"] == 20 and pd.isna(row["churned"]) and pd.isna(row["churn_rate"])


def test_return_windows_end_at_the_last_booking(tables) -> None:
    # without the booking of 31 August, the order lines stop on 1 July 2025: a window
    # running past that day cannot be followed, whatever the report's as-of date
    lines = [r for r in _lines() if r["line_id"] != "z1"]
    t = make_tables(
        order_lines=lines,
        productions=PRODUCTIONS,
        performances=PERFORMANCES,
        interactions=INTERACTIONS,
    )
    j = journey.build_journey(t, as_of=AS_OF)
    assert j.attrs["data_end"] == "2025-07-01 10:00:00"
    late = journey.first_timers(j).set_index("customer_id").loc["late"]
    assert not late["observed_90d"] and pd.isna(late["back_90d"])  # 2025-06-01 + 90 days
    assert late["duration_days"] == 30  # censored on 1 July
    # with bookings up to 31 August the same window is followed
    late = journey.first_timers(journey.build_journey(tables, as_of=AS_OF))
    assert late.set_index("customer_id").loc["late", "observed_90d"]


def test_the_journeys_say_who_they_leave_out() -> None:
    lines = [
        line("k1", "kept", "2024-01-01 10:00", "P3"),
        line("k2", "anon", "2024-01-02 10:00", "P3"),
        line("k3", "old", "2023-09-02 10:00", "P1"),
        line("k4", "old", "2024-01-03 10:00", "P3"),
    ]
    customers = [
        {"customer_id": "kept", "anonymised": False},
        {"customer_id": "anon", "anonymised": True},
        {"customer_id": "old", "anonymised": False},
    ]
    t = make_tables(
        order_lines=lines, productions=PRODUCTIONS, performances=PERFORMANCES, customers=customers
    )
    j = journey.build_journey(t, as_of=AS_OF)
    visits = j.loc[j["season"] == "2023-24"]
    counts = journey.left_out(t, visits, "2023-24", 9)
    assert counts == {
        "customers": 3,
        "in_journeys": 2,
        "anonymised": 1,
        "other": 0,
        "new": 3,
        "new_in_journeys": 2,
    }
    text = journey.left_out_text(counts)
    assert text.startswith(
        "The journeys leave out the 1 of this season's 3 customers whose customer records "
        "are anonymised"
    )
    assert "3 customers and 3 new customers where this page has 2 and 2" in text
    assert journey.left_out_text(counts | {"anonymised": 0}) is None


# ---------------------------------------------------------------------------
# Grouped tables with a total row: no hidden row can be worked out
# ---------------------------------------------------------------------------
def test_protect_groups_hides_a_partner_until_the_hidden_add_up() -> None:
    hide = journey.protect_groups
    # one hidden group: the smallest other non-zero one goes with it
    assert hide(np.array([846, 129, 56, 47]), np.array([0, 0, 0, 1], bool), 50).tolist() == [
        False,
        False,
        True,
        True,
    ]
    # two hidden groups adding up to 8 < 10: more are hidden (5, then 100), never a zero
    got = hide(np.array([100, 5, 0, 3, 5]), np.array([0, 0, 0, 1, 1], bool), 10)
    assert got.tolist() == [False, True, False, True, True]
    got = hide(np.array([100, 5, 0, 3]), np.array([0, 0, 0, 1], bool), 10)
    assert got.tolist() == [True, True, False, True]
    # nothing hidden, or hidden groups already safe: nothing more
    assert not hide(np.array([100, 5]), np.zeros(2, bool), 10).any()
    assert hide(np.array([9, 8, 50]), np.array([1, 1, 0], bool), 10).tolist() == [
        True,
        True,
        False,
    ]
    # 2-D: each column on its own; ties go to the first
    got = hide(np.array([[100, 9], [20, 20], [20, 20]]), np.array([[1, 1], [0, 0], [0, 0]]), 10)
    assert got.tolist() == [[True, True], [True, True], [False, False]]


def _visits(customers: dict[str, int], no_shows: dict[str, int]) -> pd.DataFrame:
    """One visit per customer, tiers as given; the first ``no_shows[t]`` were no-shows."""
    tier = np.repeat(list(customers), list(customers.values()))
    nth = np.concatenate([np.arange(n) for n in customers.values()])
    missed = nth < np.array([no_shows.get(t, 0) for t in tier])
    n = len(tier)
    return pd.DataFrame(
        {
            "customer_id": pd.array([f"c{i}" for i in range(n)], dtype="string"),
            "tier": pd.Categorical(tier, categories=journey._tier_keys(), ordered=True),
            "lead_days": np.full(n, 10.0),
            "party_size": np.full(n, 2, dtype=np.int64),
            "paid": np.full(n, 40.0),
            "channel": pd.array(np.where(nth % 2 == 0, "online", "phone"), dtype="string"),
            "no_show": pd.array(missed, dtype="boolean"),
            "attended": pd.array(~missed, dtype="boolean"),
            "booked_ahead": pd.array(np.ones(n, dtype=bool), dtype="boolean"),
            "returned_in_window": pd.array([None] * n, dtype="boolean"),
        }
    )


# the season of the privacy review (threshold 50): Lapsed = 1,455 − 1,408 = 47 customers
REVIEW_TIERS = {
    "new": 846,
    "first_timer": 129,
    "returner": 102,
    "regular": 56,
    "loyal": 128,
    "champion": 147,
    "lapsed": 47,
}
REVIEW_NO_SHOWS = {"new": 32, "first_timer": 3, "returner": 2, "regular": 2, "loyal": 10}
REVIEW_NO_SHOWS |= {"champion": 17, "lapsed": 1}


@pytest.mark.parametrize("table", ["booking", "no_show", "channel_mix"])
def test_a_lone_hidden_tier_is_not_the_total_minus_the_rest(table: str) -> None:
    visits = _visits(REVIEW_TIERS, REVIEW_NO_SHOWS)
    visits.attrs["available"] = ["order_lines", "attendance"]
    make = {
        "booking": journey.booking_by_tier,
        "no_show": journey.no_show_by_tier,
        "channel_mix": journey.channel_mix,
    }[table]
    out = make(visits, min_group=50)
    out = out.set_index("tier") if "tier" in out.columns else out
    first_col = out.columns[0]
    hidden = out[first_col].isna()
    # Lapsed (47) and the smallest other tier, Regular (56), are hidden: every figure
    assert hidden[hidden].index.tolist() == ["Regular", "Lapsed"]
    assert out.loc[["Regular", "Lapsed"]].isna().all().all()
    assert out.loc[~hidden].notna().all().all()  # the "All visits" row included
    if table != "channel_mix":
        assert out.loc["All visits", "customers"] == 1455
        shown = out.loc[~hidden & (out.index != "All visits"), "customers"].sum()
        assert 1455 - shown == 47 + 56  # only the sum of two tiers, not the 47
    if table == "no_show":
        assert out.loc["All visits", "no_shows"] == 67
    if table == "booking":  # lead time read in whole days
        assert out["median_lead_days"].dtype == "Int64"
    if table != "channel_mix":  # the table says why a tier of 56 is hidden
        assert out.attrs["footnote"].startswith("Regular is hidden too, though not a small")
    # the Attend stage of the journey map hides the same tiers as the no-show table
    jmap = journey.journey_map(visits, min_group=50)
    attend = jmap.rates.loc["Attend"]
    assert attend[attend.isna()].index.tolist() == ["Regular", "Lapsed"]


def test_click_conversion_hides_a_partner_for_a_lone_small_tier() -> None:
    customers = pd.Series({"new": 123, "first_timer": 103, "loyal": 75, "lapsed": 38, "all": 339})
    hidden = journey.tier_mask(customers, 50)
    assert hidden[hidden].index.tolist() == ["loyal", "lapsed"]
    # a total below the threshold is hidden with every tier
    assert journey.tier_mask(pd.Series({"new": 6, "lapsed": 3, "all": 9}), 10).all()


WINDOWS = {"90d": "90 days", "12m": "12 months"}


def _first(groups: dict[str, tuple[int, int, int, int, int]], by: str) -> pd.DataFrame:
    """First-timers by ``by``: per group (first-timers, followed 90d, back 90d, followed
    12m, back 12m)."""
    parts = []
    for name, (n, f90, b90, f12, b12) in groups.items():
        i = np.arange(n)
        parts.append(
            pd.DataFrame(
                {
                    by: pd.array([name] * n, dtype="string"),
                    "observed_90d": i < f90,
                    "back_90d": pd.array(np.where(i < f90, i < b90, None), dtype="boolean"),
                    "observed_12m": i < f12,
                    "back_12m": pd.array(np.where(i < f12, i < b12, None), dtype="boolean"),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    out.attrs.update(windows=dict(WINDOWS), start_month=9)
    return out


def _row(df: pd.DataFrame, label: str) -> list:
    return [None if pd.isna(v) else v for v in df.set_index(df.columns[0]).loc[label]]


def test_other_small_groups_is_not_the_summary_minus_the_rest() -> None:
    # threshold 50: August (35) is folded into "Other" and hidden; the summary gives
    # 663 − 443 − 185 = 35, so October, the smallest other month, is hidden too
    first = _first(
        {"Sep": (443, 443, 41, 387, 62), "Oct": (185, 185, 18, 118, 29), "Aug": (35, 35, 5, 0, 0)},
        "month",
    )
    summary = journey.first_timer_return_summary(first, 50).set_index("window")
    assert summary.loc["90 days", ["first_timers", "followed", "returned"]].tolist() == [
        663,
        663,
        64,
    ]
    out = journey.first_timer_return(first, "month", 50)
    assert _row(out, "Oct") == [None] * 7
    assert out.attrs["footnote"].startswith(
        '"Sep" and "Oct" are hidden too (in whole or in part), though not small groups'
    )
    assert _row(out, OTHER) == [None] * 7
    # the 12-month column: Other has none followed, so October's 118 would be 505 − 387
    # with September shown; September's 12-month figures are hidden with it
    assert _row(out, "Sep")[:4] == [443, 443, 41, pytest.approx(41 / 443)]
    assert _row(out, "Sep")[4:] == [None] * 3


def test_tiny_channel_table_hides_online_with_other() -> None:
    # the tiny organisation: online 18 | 15 | 2, Other 4 | 4 | 0, summary 22 | 19 | 2
    first = _first(
        {"online": (18, 15, 2, 7, 3), "box_office": (3, 3, 0, 1, 0), "phone": (1, 1, 0, 0, 0)},
        "channel",
    )
    out = journey.first_timer_return(first, "channel", 10)
    assert _row(out, "online") == [None] * 7
    assert _row(out, OTHER) == [None] * 7
    summary = journey.first_timer_return_summary(first, 10).set_index("window")
    assert summary.loc["90 days"].tolist() == [22, 19, 2, pytest.approx(2 / 19), 3]
    # 12 months: 8 followed, fewer than 10: the rate, its numerator and base are hidden,
    # and the excluded (22 − 8) with them
    assert summary.loc["12 months", "first_timers"] == 22
    assert summary.loc["12 months", ["followed", "returned", "rate", "excluded"]].isna().all()
    assert "fewer than 10" in summary.attrs["footnote"]


def test_a_hidden_rate_hides_its_numerator_and_base() -> None:
    # May: 125 first-timers, 9 followed for 90 days, none back. The rate was hidden but
    # "9" and "0" shown; now both go, with a partner so that the column cannot give them
    first = _first(
        {
            "Sep": (443, 443, 41, 387, 62),
            "Apr": (152, 122, 12, 122, 29),
            "May": (125, 9, 0, 9, 1),
            "Jun": (210, 109, 6, 109, 29),
        },
        "month",
    )
    out = journey.first_timer_return(first, "month", 10)
    assert _row(out, "May") == [125, None, None, None, None, None, None]
    # the smallest other followed count is hidden with it in each window (Jun: 109)
    assert _row(out, "Jun") == [210, None, None, None, None, None, None]
    assert _row(out, "Apr") == [152, 122, 12, pytest.approx(12 / 122), 122, 29, 29 / 122]


def test_a_count_the_summary_hides_is_hidden_in_every_table() -> None:
    # the tiny organisation's artforms: every artform small, "Other" is everyone; the
    # summary hides the 12-month return of 8 followed, so "Other" must hide it too
    first = _first(
        {
            "theatre": (6, 5, 1, 2, 1),
            "classical": (6, 5, 1, 2, 1),
            "musical": (5, 5, 0, 2, 1),
            "dance": (5, 4, 0, 2, 0),
        },
        "artform",
    )
    summary = journey.first_timer_return_summary(first, 10).set_index("window")
    assert summary.loc["12 months", ["followed", "returned"]].isna().all()
    for by in ("artform", None):
        out = journey.first_timer_return(first, by, 10)
        label = OTHER if by else "All first-timers"
        assert _row(out, label) == [22, 19, 2, pytest.approx(2 / 19), None, None, None]


def _page_tables(page: str) -> list[list[list[str]]]:
    """Every table of a rendered page, as rows of cell texts (headings included)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, "html.parser")
    return [
        [[c.get_text(" ", strip=True) for c in tr.find_all(["th", "td"])] for tr in t("tr")]
        for t in soup("table")
    ]


def _figure(text: str) -> float | None:
    """A cell as a number ("1,455" → 1455, "10.5%" → 10.5); "–" (hidden) → None."""
    if text in ("–", ""):
        return None
    return float(text.replace(",", "").replace("%", "").replace("£", ""))


def _check_group_column(shown: list, total: float | None, min_group: int, base: bool) -> None:
    """A column of a grouped table against its total shown elsewhere on the page."""
    hidden = [v is None for v in shown]
    known = sum(v for v in shown if v is not None)
    if total is None:  # hidden in the summary: no shown cells may add up to it
        assert known == 0 and any(hidden), (shown, total)
        return
    if any(hidden):
        assert sum(hidden) >= 2, ("a lone hidden figure", shown, total)
        if base:
            assert total - known >= min_group, ("hidden groups add up to too few", shown)
    else:
        assert known == total, (shown, total)


def _check_journey_page(page: str, min_group: int) -> None:
    """The privacy rules of the journey page, read from its HTML text."""
    tables = _page_tables(page)
    tier_tables = [
        t
        for t in tables
        if t[0][:2] == ["Tier", "Customers"] and t[-1][0] in ("All visits", "All clicks")
    ]
    assert len(tier_tables) >= 2  # booking and no-shows (and click → booking)
    for t in tier_tables:
        rows = [dict(zip(t[0][1:], map(_figure, r[1:]), strict=True)) for r in t[1:]]
        for r in rows:  # a row is hidden whole or shown whole
            values = list(r.values())
            assert all(v is None for v in values) or all(v is not None for v in values), r
        total = rows[-1]["Customers"]
        if total is not None:
            _check_group_column([r["Customers"] for r in rows[:-1]], total, min_group, True)
    summary = next(t for t in tables if t[0][0] == "Window")
    sums = {}
    for r in summary[1:]:
        number, unit = r[0].split()
        w = f"{number}{unit[0]}"  # "90 days" → "90d", "12 months" → "12m"
        sums["First timers"] = _figure(r[1])
        sums[f"Followed {w}"], sums[f"Back {w}"] = _figure(r[2]), _figure(r[3])
        if _figure(r[2]) is None:  # a hidden base: nothing in the window shows it
            assert all(_figure(c) is None for c in r[3:]), r
    groups = [t for t in tables if t[0][0] in ("Artform", "Channel", "Price band", "Month")]
    assert len(groups) == 4
    for t in groups:
        head = t[0]
        cols = {h: [_figure(r[i]) for r in t[1:]] for i, h in enumerate(head) if i}
        for name, total in sums.items():
            _check_group_column(cols[name], total, min_group, not name.startswith("Back"))
        for w in {n.split()[1] for n in sums if n.startswith("Followed")}:
            for f, b, rate in zip(
                cols[f"Followed {w}"], cols[f"Back {w}"], cols[f"Rate {w}"], strict=True
            ):
                assert (f is None) == (b is None)  # a base and its numerator go together
                assert rate is None or f is not None  # a rate shown: both shown


def test_rendered_pages_give_no_hidden_row_away(small_org: Path, tmp_path: Path) -> None:
    from playbook.synth import SynthConfig, generate

    # the generated organisation with a threshold of 50, and a tiny one (60 customers)
    big = tmp_path / "org50"
    shutil.copytree(small_org, big)
    with (big / "org.yaml").open("a", encoding="utf-8") as f:
        f.write("\nprivacy:\n  suppression_min_group: 50\n")
    tiny = tmp_path / "tiny"
    generate(tiny, SynthConfig(seed=42, customers=60))
    run_intake(tiny)
    for org, min_group in ((big, 50), (tiny, 10)):
        result = render_season(org, reports_root=tmp_path / f"reports-{org.name}", only=["30"])
        _check_journey_page(_assert_clean(result.output_dir), min_group)


def test_the_channel_chart_names_channels_in_plain_words() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mix = pd.DataFrame(
        {"online": [0.5, 0.7], "phone": [0.2, 0.1], "box_office": [0.3, 0.2]},
        index=pd.Index(["Loyal", "All visits"], name="tier"),
    )
    fig = journey.channel_chart(mix)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)
    assert legend == ["Online", "Phone", "Box office"]
    assert list(mix.columns) == ["online", "phone", "box_office"]  # the caller's frame stays


def test_the_first_timer_table_by_channel_shows_plain_words(monkeypatch) -> None:
    from playbook import report

    table = pd.DataFrame({"channel": ["online", "box_office", OTHER], "first_timers": [40, 25, 12]})
    shown: list[object] = []
    monkeypatch.setattr(report, "display", shown.append)
    journey.show_table(table)
    html = shown[0].to_html()
    assert ">Box office</td>" in html and ">Online</td>" in html and f">{OTHER}</td>" in html
    assert "box_office" not in html
