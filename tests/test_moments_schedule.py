"""Scheduling an action list: spacing, staff capacity, fallbacks and earlier lists together.

Every expected answer is worked out by hand in the comments; AS_OF is Monday 3 March 2025.
"""

from __future__ import annotations

import pandas as pd
from test_moments_actions import AS_OF, moments, people, settings
from test_moments_triggers import History

from playbook.moments import build_action_list, excluded_table, find_moments

D = AS_OF.normalize()  # Monday 3 March 2025
DAY = pd.Timedelta(days=1)


def reasons(a: pd.DataFrame) -> dict[str, int]:
    ex = excluded_table(a)
    return ex.groupby("reason")["moments"].sum().to_dict()


def call(cust: str, value: float, **kw: object) -> dict:
    """A detractor call (phone only), priority = value × 0.1."""
    return {"customer_id": cust, "trigger_id": "nps_detractor", "kind": "service",
            "value": value, **kw}  # fmt: skip


def test_a_moment_deferred_for_capacity_is_spaced_again_at_its_new_date() -> None:
    # one call a week; C0's call (priority 10) takes week 1, so C1's call (5) moves to
    # 10 March. C1's letter on 27 March was 24 days after the 3 March call (kept under a
    # 21-day rule) but is only 17 days after the call's final date: it must go.
    h = people("C0", "C1", consent=("phone", "post"))
    m = moments(
        [
            call("C0", 100.0),
            call("C1", 50.0),
            {
                "customer_id": "C1",
                "trigger_id": "birthday",
                "value": 10.0,
                "due_date": D + 24 * DAY,
            },  # fmt: skip
        ]
    )
    s = settings(min_days_between=21, channels={"phone_call": {"weekly_capacity": 1}})
    a = build_action_list(m, h.tables(), settings=s)
    c1 = a.loc[a["customer_id"] == "C1"]
    assert c1["trigger_id"].tolist() == ["nps_detractor"]
    assert c1["due_date"].tolist() == [D + 7 * DAY]
    assert reasons(a) == {"spacing": 1}


def test_the_loser_on_spacing_gets_its_turn_when_the_winner_is_dropped() -> None:
    # C1's call (priority 5) beats C1's email (priority 1) on spacing, but C0's call (10)
    # takes the only place and C1's call cannot wait past 5 March: C1 gets the email.
    h = people("C0", "C1", consent=("phone", "email"))
    short = D + 2 * DAY
    m = moments(
        [
            call("C0", 100.0, expires=short),
            call("C1", 50.0, expires=short),
            {"customer_id": "C1", "trigger_id": "second_date", "value": 10.0},
        ]
    )
    s = settings(min_days_between=21, channels={"phone_call": {"weekly_capacity": 1}})
    a = build_action_list(m, h.tables(), settings=s)
    got = a.set_index("customer_id")[["trigger_id", "channel"]].to_dict("index")
    assert got == {
        "C0": {"trigger_id": "nps_detractor", "channel": "phone_call"},
        "C1": {"trigger_id": "second_date", "channel": "email"},
    }
    assert reasons(a) == {"over capacity": 1}


def test_a_full_staff_channel_falls_back_to_the_next_allowed_channel() -> None:
    # at_risk_patron goes by [phone_call, post]; one call a week. C0 (higher priority)
    # gets the call; C1 gets a letter the same day instead of waiting a week. C2 has no
    # post consent, so C2's call waits for week 2.
    h = people("C0", "C1", consent=("phone", "post"))
    h.book("C2", "A", "2025-01-01 10:00")
    h.consent("C2", "phone")
    m = moments(
        [
            {"customer_id": "C0", "trigger_id": "at_risk_patron", "value": 300.0},
            {"customer_id": "C1", "trigger_id": "at_risk_patron", "value": 200.0},
            {"customer_id": "C2", "trigger_id": "at_risk_patron", "value": 100.0},
        ]
    )
    s = settings(channels={"phone_call": {"weekly_capacity": 1}})
    a = build_action_list(m, h.tables(), settings=s).set_index("customer_id")
    assert a["channel"].to_dict() == {"C0": "phone_call", "C1": "post", "C2": "phone_call"}
    assert a["due_date"].to_dict() == {"C0": D, "C1": D, "C2": D + 7 * DAY}
    assert a["deferred"].to_dict() == {"C0": False, "C1": False, "C2": True}
    assert reasons(a) == {}


def test_calls_planned_in_earlier_lists_take_that_weeks_places() -> None:
    # an earlier list planned a call for C9 on Wednesday 5 March; with one call a week,
    # C1's call due 3 March goes to 10 March. C2's letter is 10 days from C2's call
    # planned in the earlier list (21-day rule): left out for spacing.
    h = people("C1", "C2", consent=("phone", "post"))
    previous = pd.DataFrame(
        {
            "customer_id": ["C9", "C2"],
            "trigger_id": ["nps_detractor", "nps_detractor"],
            "due_date": [D + 2 * DAY, D + 20 * DAY],
            "moment_key": ["k9", "k2"],
            "channel": ["phone_call", "phone_call"],
            "group": ["treatment", "treatment"],
        }
    )
    m = moments(
        [
            call("C1", 50.0),
            {"customer_id": "C2", "trigger_id": "birthday", "due_date": D + 10 * DAY},
        ]  # fmt: skip
    )
    s = settings(min_days_between=21, channels={"phone_call": {"weekly_capacity": 1}})
    a = build_action_list(m, h.tables(), settings=s, previous=previous)
    assert a["customer_id"].tolist() == ["C1"]
    assert a["due_date"].tolist() == [D + 7 * DAY]
    assert a["deferred_weeks"].tolist() == [1]
    assert reasons(a) == {"spacing": 1}
    # a control row in an earlier list takes no staff place
    ctrl = previous.assign(group=["control", "treatment"])
    b = build_action_list(m, h.tables(), settings=s, previous=ctrl)
    assert b.loc[b["customer_id"] == "C1", "due_date"].tolist() == [D]


def test_anonymised_customers_moments_are_counted_and_everything_reconciles() -> None:
    # GONE and HERE have the same history: the same moments fire for both; GONE's are
    # left out as "anonymised", and found = rows + left out.
    h = people("GONE", "HERE", anonymised=("GONE",))
    s = settings()
    found = find_moments(h.tables(), "2025-02-01 12:00", settings=s)
    n_here = int((found["customer_id"] == "HERE").sum())
    assert n_here >= 1 and "GONE" not in set(found["customer_id"])
    assert found.attrs["anonymised"] == found["trigger_id"].value_counts().to_dict()
    a = build_action_list(found, h.tables(), settings=s)
    assert reasons(a).get("anonymised") == n_here
    assert a.attrs["found"] == 2 * n_here
    assert a.attrs["found"] == len(a) + int(excluded_table(a)["moments"].sum())


def test_the_horizon_of_n_days_includes_the_as_of_day_and_ends_n_minus_1_days_later() -> None:
    # a birthday on 10 April: the card is due 7 days before, on 3 April
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("C1", "A", "2024-12-20 10:00")
    h.customer("C1", birth=(4, 10))

    def due(horizon: int) -> list[pd.Timestamp]:
        got = find_moments(
            h.tables(), "2025-03-31 12:00", triggers=["birthday"], horizon_days=horizon
        )
        return got["due_date"].tolist()

    assert due(3) == []  # 31 March, 1 and 2 April
    assert due(4) == [pd.Timestamp("2025-04-03")]  # 31 March … 3 April
