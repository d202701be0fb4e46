"""Backtests, outcomes, uplift intervals and sample sizes: known answers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_moments_triggers import History

from playbook.moments import (
    add_outcomes,
    backtest,
    backtest_summary,
    diff_ci,
    measure_uplift,
    measurement_plan,
    moment_settings,
    sample_size,
    weekly_volume,
)

DEFAULTS = moment_settings()


def first_timers() -> History:
    """Three first-timers (visits 8, 15 and 22 January) and one who booked again."""
    h = History()
    for i, day in enumerate(("08", "15", "22")):
        h.perf(f"V{i}", "P1", f"2025-01-{day} 19:30")
        h.book(f"C{i}", f"V{i}", "2024-12-20 10:00")
        h.consent(f"C{i}", "email")
    h.perf("LATER", "P2", "2025-03-01 19:30")
    h.book("AGAIN", "V0", "2024-12-20 10:00")
    h.book("AGAIN", "LATER", "2025-01-12 10:00")  # booked again before day 14
    h.consent("AGAIN", "email")
    h.book("MUTE", "V1", "2024-12-20 10:00")  # no consent: fires but cannot be reached
    return h


def test_backtest_counts_each_moment_once_in_the_week_it_came_due() -> None:
    bt = backtest(first_timers().tables(), "2025-01-06", "2025-02-17", settings=DEFAULTS,
                  triggers=["second_date"])  # fmt: skip
    assert len(bt.attrs["weeks"]) == 6
    assert bt.groupby("customer_id")["week"].first().to_dict() == {
        "C0": pd.Timestamp("2025-01-20"),
        "C1": pd.Timestamp("2025-01-27"),
        "MUTE": pd.Timestamp("2025-01-27"),
        "C2": pd.Timestamp("2025-02-03"),
    }
    summary = backtest_summary(bt, DEFAULTS, min_group=1).set_index("trigger")
    row = summary.loc["Second-date nudge"]
    assert (row["moments"], row["reachable"]) == (4, 3)
    assert row["cost"] == pytest.approx(3 * DEFAULTS.triggers["second_date"].unit_cost)
    assert row["per_week"] == pytest.approx(3 / 6)
    weekly = weekly_volume(bt, min_group=1)
    assert weekly["email"].tolist() == [0, 0, 1, 1, 1, 0]


def test_per_week_is_the_same_figure_in_the_replay_and_the_measurement_plan() -> None:
    h = first_timers()
    bt = backtest(h.tables(), "2025-01-06", "2025-02-24", settings=DEFAULTS,
                  triggers=["second_date"])  # fmt: skip
    replay = backtest_summary(bt, DEFAULTS, min_group=1).set_index("trigger")
    plan = measurement_plan(bt, h.tables(), DEFAULTS, min_group=1).set_index("trigger")
    assert replay.loc["Second-date nudge", "per_week"] == pytest.approx(3 / 7)
    assert plan.loc["Second-date nudge", "per_week"] == replay.loc["Second-date nudge", "per_week"]


def test_backtest_small_groups_are_masked() -> None:
    bt = backtest(first_timers().tables(), "2025-01-06", "2025-02-17", settings=DEFAULTS,
                  triggers=["second_date"])  # fmt: skip
    masked = backtest_summary(bt, DEFAULTS, min_group=10).set_index("trigger")
    assert pd.isna(masked.loc["Second-date nudge", "moments"])
    weekly = weekly_volume(bt, min_group=10)["email"]
    assert weekly.isna().tolist() == [False, False, True, True, True, False]  # empty weeks stay 0


def test_backtest_state_triggers_count_entrants_not_every_week() -> None:
    custom = {"any_visitor": {"epic": "connection", "stage": "return", "channel": "email",
                              "repeat_after_days": 0,
                              "when": [{"feature": "frequency", "op": ">=", "value": 1}]}}  # fmt: skip
    s = moment_settings(None, custom_triggers=custom)
    bt = backtest(first_timers().tables(), "2025-01-06", "2025-02-17", settings=s,
                  triggers=["any_visitor"])  # fmt: skip
    assert bt["customer_id"].value_counts().max() == 1
    assert set(bt["customer_id"]) == {"C0", "C1", "C2", "AGAIN", "MUTE"}
    assert bt.set_index("customer_id").loc["C2", "week"] == pd.Timestamp("2025-01-20")


def busy_history() -> History:
    """Most triggers at once, with returns, exchanges, a cancellation and leap days."""
    h = History()
    h.perf("LEAP", "P1", "2024-02-29 19:30")
    h.perf("OLD", "P1", "2024-01-20 19:30")
    h.perf("LATE", "P3", "2024-03-02 19:30")
    for i in range(12):  # weekly performances through the replayed season
        h.perf(f"W{i}", ("P1", "P2", "P3")[i % 3], f"2025-01-{6 + i % 4:02d} 19:30")
        h.perf(f"S{i}", ("P2", "P3", "P1")[i % 3], f"2025-02-{3 + 2 * i:02d} 19:30")
    h.perf("GONE", "P2", "2025-02-10 19:30", cancelled=True)
    h.perf("AHEAD", "P2", "2025-06-01 19:30")
    for c in ("A", "B", "C", "D", "E", "F"):
        h.customer(c, birth=(2, 29) if c in "AB" else (3, 4))
        h.consent(c, "email")
    h.book("A", "LEAP", "2024-02-01 10:00")  # first visit on 29 February
    for i in range(6):
        h.book("A", f"S{i}", f"2025-01-{10 + i:02d} 10:00")
    h.book("A", "S0", "2025-01-10 10:05")  # a second seat for one visit
    first = h.book("B", "OLD", "2024-01-02 10:00")
    h.reverse("B", first, "2025-01-15 12:00")  # the first visit, returned mid-season
    h.book("B", "LEAP", "2024-02-10 10:00")
    h.book("B", "W1", "2024-12-01 10:00")
    h.book("C", "LATE", "2024-03-05 10:00")  # bought after the performance
    h.book("C", "OLD", "2024-01-05 10:00")
    line = h.book("C", "S2", "2025-01-20 10:00")
    h.reverse("C", line, "2025-02-01 09:00", status="exchanged")
    h.book("C", "S3", "2025-02-01 09:00")
    h.book("C", "AHEAD", "2025-02-05 09:00")
    h.book("D", "GONE", "2025-01-05 10:00")
    h.book("D", "S1", "2025-01-06 10:00")
    h.book("D", "S4", "2025-01-06 11:00")
    h.book("E", "W2", "2025-01-02 10:00", paid=400.0)
    h.book("E", "W2", "2025-01-20 10:00", paid=700.0)  # a second booking of a production
    h.book("F", None, "2025-01-22 10:00", item="subscription", paid=90.0)
    h.book("G", "S5", "2025-01-08 10:00")  # a first booking during the season
    h.member("A", "2024-03-10", "2025-03-09").member("D", "2024-02-20", "2025-02-19")
    h.give("B", "2024-05-01", 50.0)
    for day in ("02-01", "02-03", "02-05"):
        h.click("F", "P2", f"2025-{day} 10:00")
    h.survey("A", "2025-01-25 10:00", 10, "S0").survey("D", "2025-02-02 10:00", 2, "S1")
    return h


def test_backtest_pruned_weeks_match_the_full_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each week only the customers who can have a moment due are looked at: same answer."""
    from playbook.moments import find
    from playbook.moments.triggers import Evaluation

    tables = busy_history().tables()
    fast = backtest(tables, "2025-01-06", "2025-03-31", settings=DEFAULTS)

    class Full(Evaluation):
        def __init__(self, *args: object, **kw: object) -> None:
            kw["exact"] = False
            super().__init__(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(find, "Evaluation", Full)
    full = backtest(tables, "2025-01-06", "2025-03-31", settings=DEFAULTS)
    pd.testing.assert_frame_equal(fast, full, check_exact=True)
    assert fast.attrs == full.attrs
    assert fast["trigger_id"].nunique() >= 8


def test_backtest_pruning_on_the_generated_organisation(
    small_org: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playbook.moments import find
    from playbook.moments.triggers import Evaluation
    from playbook.tables import load_tables

    tables = load_tables(small_org)
    end = tables.order_lines["purchase_time"].max().normalize()
    start = end - pd.Timedelta(days=26 * 7)
    fast = backtest(tables, start, end, settings=DEFAULTS)

    class Full(Evaluation):
        def __init__(self, *args: object, **kw: object) -> None:
            kw["exact"] = False
            super().__init__(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(find, "Evaluation", Full)
    full = backtest(tables, start, end, settings=DEFAULTS)
    pd.testing.assert_frame_equal(fast, full, check_exact=True)
    assert fast["trigger_id"].nunique() >= 8


def test_bookings_and_spend_of_some_customers_are_the_full_rows() -> None:
    from playbook.moments import prepare_moments
    from playbook.moments.data import rows_of

    data = prepare_moments(busy_history().tables())
    some = np.array([0, 2, 3])
    for when in ("2024-06-01", "2025-01-16", "2025-02-02"):
        t = np.int64(pd.Timestamp(when).value)
        full, part = data.bookings(t), data.bookings(t, some)
        keep = np.isin(full["cust"], some)
        for k in full:
            np.testing.assert_array_equal(part[k], full[k][keep])
        lo = t - np.int64(365 * 86_400 * 10**9)
        np.testing.assert_array_equal(
            data.spend_between(lo, t, some)[some], data.spend_between(lo, t)[some]
        )
    keys = np.array([0, 0, 2, 2, 2, 5])
    assert rows_of(keys, np.array([0, 2])).tolist() == [0, 1, 2, 3, 4]
    assert rows_of(keys, np.array([1, 5])).tolist() == [5]
    starts = np.searchsorted(keys, np.arange(7))
    assert rows_of(keys, np.array([2, 5]), starts).tolist() == [2, 3, 4, 5]
    assert rows_of(keys, np.zeros(0, dtype=np.int64)).tolist() == []


def test_backtest_skips_what_it_cannot_replay() -> None:
    bt = backtest(first_timers().tables(), "2025-01-06", "2025-01-20", settings=DEFAULTS)
    assert bt.attrs["skipped"]["at_risk_patron"].startswith("needs clv")
    assert bt.attrs["skipped"]["membership_renewal"] == "needs memberships"


def test_add_outcomes_counts_bookings_inside_the_window_only() -> None:
    h = History().perf("A", "P1", "2025-06-01 19:30")
    h.book("SAME_DAY", "A", "2025-03-01 18:00")
    h.book("NEXT_DAY", "A", "2025-03-02 09:00")
    h.book("DAY_60", "A", "2025-04-30 22:00")
    h.book("DAY_61", "A", "2025-05-01 09:00")
    ids = ["SAME_DAY", "NEXT_DAY", "DAY_60", "DAY_61", "NOBODY"]
    m = pd.DataFrame(
        {"customer_id": ids, "trigger_id": "x", "due_date": pd.Timestamp("2025-03-01")}
    )
    got = add_outcomes(m, h.tables(), window_days=60).set_index("customer_id")["booked"]
    assert got.to_dict() == {"SAME_DAY": False, "NEXT_DAY": True, "DAY_60": True, "DAY_61": False,
                             "NOBODY": False}  # fmt: skip


def test_newcombe_and_wald_intervals_match_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17: 873-890, Table II, 56/70 vs 48/80
    d, lo, hi = diff_ci(56, 70, 48, 80)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.0524, 0.3339)
    d, lo, hi = diff_ci(56, 70, 48, 80, method="wald")
    assert float(d) == pytest.approx(0.2)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.0575, 0.3425)
    d, lo, hi = diff_ci(9, 10, 3, 10)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.1705, 0.8090)


def test_uplift_recovers_a_known_effect_in_a_synthetic_experiment() -> None:
    rng = np.random.default_rng(2024)
    n = 20_000
    treated = rng.random(n) < 0.15
    control = rng.random(n) < 0.10
    df = pd.DataFrame(
        {
            "trigger_id": "second_date",
            "group": ["treatment"] * n + ["control"] * n,
            "booked": np.r_[treated, control],
        }
    )
    for method in ("newcombe", "wald"):
        row = measure_uplift(df, method=method).iloc[0]
        assert row["ci_low"] < 0.05 < row["ci_high"]
        assert row["ci_low"] > 0 and bool(row["significant"])
        assert row["uplift"] == pytest.approx(0.05, abs=0.01)
        assert (row["treated"], row["control"]) == (n, n)


def test_newcombe_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    runs, n_t, n_c = 2_000, 900, 100  # a 10% control group, as in the defaults
    x_t = rng.binomial(n_t, 0.15, runs)
    x_c = rng.binomial(n_c, 0.10, runs)
    _, lo, hi = diff_ci(x_t, n_t, x_c, n_c)
    coverage = np.mean((lo <= 0.05) & (0.05 <= hi))
    assert 0.93 < coverage < 0.97


def test_sample_size_matches_the_hand_computed_formula() -> None:
    # equal groups, 10% vs 15%, alpha 0.05 two-sided, power 0.8: the textbook 686 per group
    assert sample_size(0.10, 0.05) == sample_size(0.10, 0.05, control_share=0.5)
    n = sample_size(0.10, 0.05)
    assert (n.treated, n.control, n.total) == (686, 686, 1372)
    # a 10% control group (k = 9 treated per control), computed by hand:
    z_a, z_b = 1.959963984540054, 0.8416212335729143
    k, p_c, p_t = 9.0, 0.10, 0.15
    p_bar = (p_c + k * p_t) / (1 + k)
    root = z_a * math.sqrt(p_bar * (1 - p_bar) * (1 + 1 / k)) + z_b * math.sqrt(
        p_c * (1 - p_c) + p_t * (1 - p_t) / k
    )
    n_c = math.ceil(root**2 / 0.05**2)
    assert n_c == 400
    assert sample_size(0.10, 0.05, control_share=0.1) == type(n)(treated=3600, control=400)
    with pytest.raises(ValueError):
        sample_size(0.98, 0.05)


def test_measure_uplift_per_trigger_with_empty_groups() -> None:
    df = pd.DataFrame(
        {
            "trigger_id": ["a", "a", "a", "b"],
            "group": ["treatment", "treatment", "control", "treatment"],
            "booked": [True, False, False, True],
        }
    )
    out = measure_uplift(df).set_index("trigger_id")
    assert out.loc["a", "treated_rate"] == 0.5 and out.loc["a", "control_rate"] == 0.0
    assert out.loc["b", "control"] == 0 and np.isnan(out.loc["b", "uplift"])
    assert not out.loc["b", "significant"]


def hand_backtest(people: dict[tuple[str, str], int]) -> pd.DataFrame:
    """A replay written by hand: ``people[(week, channel)]`` customers, one moment each."""
    rows = [
        {"customer_id": f"{w}-{ch}-{i}", "channel": ch, "week": pd.Timestamp(w)}
        for (w, ch), n in people.items()
        for i in range(n)
    ]
    bt = pd.DataFrame(rows)
    bt.attrs["weeks"] = sorted({pd.Timestamp(w) for w, _ in people})
    return bt


def test_weekly_volume_leaves_no_masked_cell_that_the_totals_give_away() -> None:
    from playbook.privacy import recoverable_cells

    weeks, chans = ["2025-09-01", "2025-09-08", "2025-09-15"], ["email", "phone_call"]
    grid = [[30, 12], [40, 3], [50, 15]]  # the 3 calls are too few to show
    bt = hand_backtest(
        {(w, c): grid[i][j] for i, w in enumerate(weeks) for j, c in enumerate(chans)}
    )
    w = weekly_volume(bt, min_group=10)
    masked = w.isna().to_numpy()
    # the 3 alone would be the calls' season total minus 12 and 15: the smallest other
    # call (12) is hidden too, then that week's and the 3's emails (30, 40) with them
    assert masked.tolist() == [[True, True], [True, True], [False, False]]
    assert not recoverable_cells(np.array(grid), masked).any()
    assert w.loc[pd.Timestamp("2025-09-15")].tolist() == [50, 15]


def test_the_volume_chart_uses_the_organisations_threshold() -> None:
    from playbook.moments import Replay, volume_chart

    # 20 calls a week: shown at the default 10, hidden at a threshold of 50
    bt = hand_backtest({("2025-09-01", "phone_call"): 20, ("2025-09-08", "phone_call"): 20})
    replay = Replay(DEFAULTS, None, "2025-26", bt)  # type: ignore[arg-type]
    assert volume_chart(replay, min_group=10) is not None
    assert volume_chart(replay, min_group=50) is None
