"""The notebook-50 tables: upcoming moments counted in one unit, hidden rows, the library."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from playbook.moments import (
    MomentPlan,
    action_list_note,
    export_library,
    library_overview,
    library_table,
    moment_settings,
    upcoming_by_trigger,
    upcoming_by_week,
    upcoming_hidden_note,
    upcoming_shown,
)
from playbook.privacy import OTHER

SETTINGS = moment_settings()
AS_OF = pd.Timestamp("2025-08-31 23:59:59")
CUSTOMERS, TO_ACT_ON, HELD_BACK = "customers", "of whom to act on", "of whom held back (control)"
ACTIONS, DEFERRED = "actions to send", "of which deferred"


def plan_of(
    rows: list[tuple[str, str, str, bool]], skipped: dict[str, str] | None = None
) -> MomentPlan:
    """A plan whose action list is written by hand: (trigger id, customer, group, deferred).

    Every action costs 0.5; ``skipped`` names triggers that could not run, with their need.
    """
    actions = pd.DataFrame(rows, columns=["trigger_id", "customer_id", "group", "deferred"])
    actions["unit_cost"] = 0.5
    found = pd.DataFrame()
    found.attrs["skipped"] = dict(skipped or {})
    return MomentPlan(SETTINGS, None, AS_OF, found, actions)  # type: ignore[arg-type]


# Membership renewal: A gets the 60-day and the 30-day reminder (one of them deferred),
# B one reminder, C is held back and has two control rows. Second-date nudge: D alone.
RENEWAL_PLAN = [
    ("membership_renewal", "A", "treatment", False),
    ("membership_renewal", "A", "treatment", True),
    ("membership_renewal", "B", "treatment", False),
    ("membership_renewal", "C", "control", False),
    ("membership_renewal", "C", "control", False),
    ("second_date", "D", "treatment", False),
]


def test_upcoming_counts_customers_once_per_moment_and_actions_separately() -> None:
    table = upcoming_by_trigger(plan_of(RENEWAL_PLAN), min_group=1)
    row = table.set_index("moment").loc["Membership renewal reminder"]
    assert (row[CUSTOMERS], row[TO_ACT_ON], row[HELD_BACK]) == (3, 2, 1)
    assert row[TO_ACT_ON] + row[HELD_BACK] == row[CUSTOMERS]
    assert (row[ACTIONS], row[DEFERRED]) == (3, 1)  # A twice, B once; control rows not sent
    assert row["cost"] == pytest.approx(1.5)


def test_upcoming_counts_reconcile_on_every_row_shown() -> None:
    table = upcoming_shown(upcoming_by_trigger(plan_of(RENEWAL_PLAN), min_group=1))
    assert table["moment"].tolist() == ["Second-date nudge", "Membership renewal reminder"]
    assert (table[TO_ACT_ON] + table[HELD_BACK]).tolist() == table[CUSTOMERS].tolist()


def test_small_moments_are_masked_and_empty_ones_show_zero() -> None:
    table = upcoming_by_trigger(plan_of(RENEWAL_PLAN), min_group=3).set_index("moment")
    small = table.loc["Second-date nudge"]  # one customer: hidden
    assert small[[CUSTOMERS, TO_ACT_ON, HELD_BACK, ACTIONS, DEFERRED, "cost"]].isna().all()
    assert table.loc["Membership renewal reminder", CUSTOMERS] == 3
    empty = table.loc["Birthday card"]  # nobody due: zeros reveal nobody
    assert (empty[CUSTOMERS], empty[ACTIONS], empty["cost"]) == (0, 0, 0.0)
    assert table.attrs["small"] == 1
    assert len(table.attrs["nobody"]) == len(SETTINGS.enabled) - 2
    assert "Birthday card" in table.attrs["nobody"]


def test_hidden_note_tells_small_moments_from_moments_with_nobody_due() -> None:
    table = upcoming_by_trigger(plan_of(RENEWAL_PLAN), min_group=3)
    shown = upcoming_shown(table)
    assert shown["moment"].tolist() == ["Membership renewal reminder"]
    assert "note" not in shown  # no row shown has a note
    note = upcoming_hidden_note(shown, min_group=3)
    n_empty = len(SETTINGS.enabled) - 2
    assert note.startswith(
        "1 more moment falls due for between 1 and 2 customers; it is not listed, "
        "to protect privacy. "
        f"Nobody is due for the other {n_empty} switched-on moments: Welcome after a first"
    )
    assert "Second-date nudge" not in note  # the small one is counted, not named
    assert "Birthday card" in note


def test_hidden_note_is_empty_when_every_moment_is_listed() -> None:
    rows = [(tid, "A", "treatment", False) for tid in SETTINGS.triggers]
    assert upcoming_hidden_note(upcoming_by_trigger(plan_of(rows), min_group=1), 1) == ""


def test_hidden_note_counts_several_small_moments() -> None:
    rows = [("birthday", "A", "treatment", False), ("second_date", "B", "treatment", False)]
    note = upcoming_hidden_note(upcoming_by_trigger(plan_of(rows), min_group=10), 10)
    assert note.startswith("2 more moments fall due for between 1 and 9 customers each;")


def test_action_list_note_gives_no_row_count_when_a_moment_is_hidden() -> None:
    plan = plan_of(RENEWAL_PLAN)
    assert action_list_note(plan, "out/actions.csv", min_group=1) == (
        "Action list: actions.csv, 6 rows."
    )
    hidden = action_list_note(plan, "out/actions.csv", min_group=3)
    assert "6" not in hidden and hidden.startswith("Action list: actions.csv.")


def test_fires_when_writes_money_in_the_currency_and_shares_as_percentages() -> None:
    spend = SETTINGS.triggers["spend_milestone"]
    assert spend.describe_when("GBP").endswith("first passes £500, £1,000, £2,500, £5,000")
    assert spend.describe_when("EUR").endswith("first passes €500, €1,000, €2,500, €5,000")
    assert spend.describe_when().endswith("first passes 500, 1000, 2500, 5000")
    risk = SETTINGS.triggers["at_risk_patron"].describe_when("GBP")
    assert risk == (
        "a customer in the top 20% by lifetime value whose chance of still being active "
        "is below 50%"
    )


def test_library_overview_is_short_with_money_and_windows_in_words(tmp_path: Path) -> None:
    full = library_table(SETTINGS)
    view = library_overview(full, "GBP").set_index("moment")
    assert list(view.columns) == [
        "fires when",
        "action",
        "why",
        "channel and window",
        "unit cost",
        "control share",
    ]
    assert view.loc["Welcome after a first booking", "unit cost"] == "£0.05"
    assert view.loc["Detractor: a personal call", "unit cost"] == "£6.00"
    assert view.loc["Welcome after a first booking", "channel and window"] == "Email, 7 days"
    assert view.loc["Same production, second time", "channel and window"] == (
        "Note on the seat, the same day"
    )
    assert "£1,000" in view.loc["Cumulative support milestone", "fires when"]
    # the exported file keeps every column, numbers as numbers
    path = export_library(full, tmp_path)
    back = pd.read_csv(path, encoding="utf-8-sig")
    assert list(back.columns) == list(full.columns)
    assert back.loc[back["id"] == "first_booking_welcome", "unit cost"].item() == 0.05


def test_library_overview_names_what_a_trigger_not_on_needs() -> None:
    full = library_table(SETTINGS)
    full.loc[full["id"] == "birthday", "status"] = "needs customers.birth_month"
    view = library_overview(full, "GBP")
    assert "Birthday card (needs customers.birth_month)" in view["moment"].tolist()
    assert "Welcome after a first booking" in view["moment"].tolist()


def test_hidden_note_names_moments_that_cannot_run_apart_from_those_with_nobody_due() -> None:
    plan = plan_of([], skipped={"membership_renewal": "needs memberships"})
    table = upcoming_by_trigger(plan, min_group=10)
    assert table.attrs["cannot run"] == ["Membership renewal reminder (needs memberships)"]
    assert "Membership renewal reminder" not in table.attrs["nobody"]
    note = upcoming_hidden_note(upcoming_shown(table), 10)
    n_empty = len(SETTINGS.enabled) - 1
    assert note.startswith(f"Nobody is due for any of the {n_empty} switched-on moments: ")
    assert note.endswith(
        "Cannot run on this organisation's data: Membership renewal reminder (needs memberships)."
    )


def week_plan(people: dict[tuple[str, str], int]) -> MomentPlan:
    """Treatment actions by hand: ``people[(week, channel)]`` customers, one action each."""
    rows = [
        {"customer_id": f"{week}-{ch}-{i}", "channel": ch, "week": pd.Timestamp(week)}
        for (week, ch), n in people.items()
        for i in range(n)
    ]
    actions = pd.DataFrame(rows).assign(group="treatment", trigger_id="second_date")
    return MomentPlan(SETTINGS, None, AS_OF, pd.DataFrame(), actions)  # type: ignore[arg-type]


def test_upcoming_by_week_leaves_no_lone_masked_cell_in_a_row_or_column() -> None:
    from playbook.privacy import recoverable_cells

    weeks, chans = ["2025-09-01", "2025-09-08", "2025-09-15"], ["email", "post", "sms"]
    grid = [[30, 4, 25], [20, 15, 12], [40, 18, 11]]  # only 4 is below 10
    people = {(w, c): grid[i][j] for i, w in enumerate(weeks) for j, c in enumerate(chans)}
    out = upcoming_by_week(week_plan(people), min_group=10)
    assert list(out.columns) == ["Email", "Letter", "Text message"]
    masked = out.isna().to_numpy()
    # the 4 is masked; to keep it from being worked out from the week and channel totals
    # (the actions to send add up to them), letters and texts are masked in every week
    assert masked.tolist() == [[False, True, True]] * 3
    assert out["Email"].tolist() == [30, 20, 40]
    assert (masked.sum(axis=0) != 1).all() and (masked.sum(axis=1) != 1).all()
    assert not recoverable_cells(pd.DataFrame(grid).to_numpy(), masked).any()
    assert out.attrs["suppressed"] == 6


def test_upcoming_by_week_with_nothing_small_masks_nothing() -> None:
    people = {("2025-09-01", "email"): 12, ("2025-09-01", "post"): 0, ("2025-09-08", "post"): 10}
    out = upcoming_by_week(week_plan(people), min_group=10)
    assert out.fillna(-1).to_numpy().tolist() == [[12, 0], [0, 10]]


def test_a_channel_small_every_week_is_merged_instead_of_hiding_the_table() -> None:
    # three calls a week: masked alone they leak through the week totals, and masking
    # spread to every cell; merged with the letters (the smaller other channel) into
    # one column of 3 + 38 = 41 a week, nothing needs hiding
    weeks = ["2025-09-01", "2025-09-08", "2025-09-15"]
    people = {}
    for w in weeks:
        people |= {(w, "email"): 80, (w, "post"): 38, (w, "phone_call"): 3}
    out = upcoming_by_week(week_plan(people), min_group=10)
    assert list(out.columns) == ["Email", OTHER]
    assert out["Email"].tolist() == [80] * 3 and out[OTHER].tolist() == [41] * 3
    assert out.attrs["suppressed"] == 0


def test_channel_table_says_an_unsubscribe_closes_email() -> None:
    from playbook.moments import channel_table

    t = channel_table(SETTINGS).set_index("channel")["consent needed"]
    assert t["Email"] == "Email (and no unsubscribe since)"
    assert t["Letter"] == "Post"
    assert t["Note on the seat"] == "None (no contact details used)"


def test_channel_table_reads_consents_in_plain_words() -> None:
    from playbook.moments import channel_table

    t = channel_table(SETTINGS).set_index("channel")["consent needed"]
    assert t["Text message"] == "SMS" and t["Phone call"] == "Phone"
    assert not t.str.contains(r"^(?:post|sms|phone|email)\b").any()
