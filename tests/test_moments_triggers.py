"""Each trigger of the moment library on hand-built histories: fires when it should, not otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from playbook.config import OrgConfig, deep_merge, package_defaults
from playbook.errors import ConfigError
from playbook.moments import (
    REGISTRY,
    find_moments,
    library_table,
    moment_settings,
    prepare_moments,
)
from playbook.schema import TABLE_NAMES, conform, empty_table
from playbook.tables import Tables


# ---------------------------------------------------------------------------
# A tiny history builder (imported by the other moment tests)
# ---------------------------------------------------------------------------
class History:
    """Canonical tables written by hand, one call per fact."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLE_NAMES}
        self._line = 0
        self._order = 0
        self.production("P1", "Hamlet", "Theatre")
        self.production("P2", "Giselle", "Dance")
        self.production("P3", "Brahms Night", "Classical Music")

    def production(self, pid: str, title: str, artform: str) -> History:
        self.rows["productions"].append({"production_id": pid, "title": title, "artform": artform})
        return self

    def perf(self, pid: str, prod: str, start: str, cancelled: bool = False) -> History:
        self.rows["performances"].append(
            {
                "performance_id": pid,
                "production_id": prod,
                "start_time": start,
                "cancelled": cancelled,
            }
        )
        return self

    def book(
        self, cust: str, perf: str | None, when: str, paid: float = 25.0, item: str = "ticket"
    ) -> str:
        self._line += 1
        self._order += 1
        line = f"L{self._line}"
        self.rows["order_lines"].append(
            {
                "line_id": line,
                "order_id": f"O{self._order}",
                "customer_id": cust,
                "purchase_time": when,
                "item_type": item,
                "performance_id": perf,
                "paid_amount": paid,
                "list_price": paid,
                "status": "active",
            }
        )
        return line

    def reverse(self, cust: str, line: str, when: str, status: str = "returned") -> History:
        self._line += 1
        orig = next(r for r in self.rows["order_lines"] if r["line_id"] == line)
        self.rows["order_lines"].append(
            {
                "line_id": f"L{self._line}",
                "order_id": orig["order_id"],
                "customer_id": cust,
                "purchase_time": when,
                "item_type": orig["item_type"],
                "performance_id": orig["performance_id"],
                "paid_amount": -orig["paid_amount"],
                "status": status,
                "parent_line_id": line,
            }
        )
        return self

    def customer(
        self, cust: str, birth: tuple[int, int] | None = None, anonymised: bool = False
    ) -> History:
        row: dict[str, Any] = {"customer_id": cust, "anonymised": anonymised}
        if birth:
            row["birth_month"], row["birth_day"] = birth
        self.rows["customers"].append(row)
        return self

    def consent(self, cust: str, channel: str, status: str = "granted") -> History:
        self.rows["consents"].append({"customer_id": cust, "channel": channel, "status": status})
        return self

    def member(
        self, cust: str, start: str, end: str, kind: str = "new", amount: float = 60.0
    ) -> History:
        n = len(self.rows["memberships"]) + 1
        self.rows["memberships"].append(
            {
                "membership_id": f"M{n}",
                "customer_id": cust,
                "start_date": start,
                "end_date": end,
                "membership_type": kind,
                "amount": amount,
            }  # fmt: skip
        )
        return self

    def give(self, cust: str, when: str, amount: float) -> History:
        n = len(self.rows["donations"]) + 1
        self.rows["donations"].append(
            {"donation_id": f"D{n}", "customer_id": cust, "donation_date": when, "amount": amount}
        )
        return self

    def click(self, cust: str, prod: str, when: str) -> History:
        self.rows["interactions"].append(
            {"customer_id": cust, "occurred_at": when, "kind": "email_click", "production_id": prod}
        )
        return self

    def survey(self, cust: str, when: str, nps: int, perf: str | None = None) -> History:
        n = len(self.rows["survey_responses"]) + 1
        self.rows["survey_responses"].append(
            {
                "response_id": f"R{n}",
                "customer_id": cust,
                "responded_at": when,
                "nps": nps,
                "performance_id": perf,
            }  # fmt: skip
        )
        return self

    def tables(self) -> Tables:
        frames = {}
        for name in TABLE_NAMES:
            rows = self.rows[name]
            frames[name] = conform(pd.DataFrame(rows), name) if rows else empty_table(name)
        available = frozenset(n for n, f in frames.items() if len(f))
        return Tables(frames=frames, available=available)


DEFAULTS = moment_settings()


def fired(
    h: History | Tables, as_of: str, trigger: str, settings: Any = None, **kw: Any
) -> pd.DataFrame:
    """Moments of one trigger as of an instant (horizon 0 unless given)."""
    kw.setdefault("horizon_days", 0)
    tables = h.tables() if isinstance(h, History) else h
    return find_moments(tables, as_of, settings=settings or DEFAULTS, triggers=[trigger], **kw)


def with_clv(**clv: Any) -> OrgConfig:
    """Package default settings with these ``clv:`` settings."""
    settings = deep_merge(package_defaults(), {"clv": clv})
    return OrgConfig(Path("."), "t", "T", "GBP", 9, "UTC", settings)


def customers(df: pd.DataFrame) -> list[str]:
    return sorted(df["customer_id"].astype(str).unique())


# ---------------------------------------------------------------------------
# The registry itself
# ---------------------------------------------------------------------------
EXPECTED = {
    "first_booking_welcome",
    "second_date",
    "repeat_production",
    "visit_milestone",
    "first_visit_anniversary",
    "birthday",
    "at_risk_patron",
    "membership_invitation",
    "membership_renewal",
    "considered_ask",
    "service_recovery",
    "new_artform_insight",
    "email_click_no_booking",
    "nps_promoter",
    "nps_detractor",
    "spend_milestone",
}


def test_registry_holds_the_whole_library_with_complete_entries() -> None:
    assert EXPECTED <= set(REGISTRY)
    for spec in REGISTRY.values():
        assert spec.name and spec.when and spec.action and spec.rationale
        assert spec.epic in {"elevation", "insight", "pride", "connection"}
    # every trigger's own parameters have a package default and its text fills in
    table = library_table(DEFAULTS)
    assert set(table["id"]) == set(REGISTRY)
    assert not table["fires when"].str.contains("{", regex=False).any()
    assert {"elevation", "insight", "pride", "connection"} <= set(table["EPIC"])


# ---------------------------------------------------------------------------
# One test per trigger
# ---------------------------------------------------------------------------
def test_first_booking_welcome_fires_once_on_the_first_booking_only() -> None:
    h = History().perf("A", "P1", "2025-02-01 19:30")
    h.book("C1", "A", "2025-01-05 10:00")
    h.book("C2", "A", "2024-06-01 10:00")
    h.book("C2", "A", "2025-01-05 11:00")  # not C2's first booking
    today = fired(h, "2025-01-05 23:00", "first_booking_welcome")
    assert customers(today) == ["C1"]
    assert today["due_date"].iloc[0] == pd.Timestamp("2025-01-05")
    assert today["title"].iloc[0] == "Hamlet"
    assert customers(fired(h, "2025-01-04 23:00", "first_booking_welcome")) == []
    assert customers(fired(h, "2025-01-12 23:00", "first_booking_welcome")) == ["C1"]  # day 7
    assert customers(fired(h, "2025-01-13 23:00", "first_booking_welcome")) == []  # window over


@pytest.mark.parametrize(
    ("days_after", "fires"), [(13, False), (14, True), (90, True), (91, False)]
)
def test_second_date_boundaries(days_after: int, fires: bool) -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("C1", "A", "2024-12-20 10:00")
    as_of = pd.Timestamp("2025-01-10 12:00") + pd.Timedelta(days=days_after)
    got = fired(h, str(as_of), "second_date")
    assert customers(got) == (["C1"] if fires else [])
    if fires:
        assert got["due_date"].iloc[0] == pd.Timestamp("2025-01-24")
        assert got["expires"].iloc[0] == pd.Timestamp("2025-04-10")


def test_second_date_not_for_returners_or_people_who_booked_again() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30").perf("B", "P2", "2025-03-01 19:30")
    h.perf("Z", "P3", "2024-11-01 19:30")
    h.book("ONE", "A", "2024-12-20 10:00")  # a first-timer: fires
    h.book("AGAIN", "A", "2024-12-20 10:00")
    h.book("AGAIN", "B", "2025-01-15 10:00")  # booked again after the visit
    h.book("TWO", "Z", "2024-10-01 10:00")
    h.book("TWO", "A", "2024-12-20 10:00")  # second visit: not a first-timer
    h.book("GAVE_BACK", "A", "2024-12-20 10:00")
    line = h.book("GAVE_BACK", "B", "2025-01-15 10:00")
    h.reverse("GAVE_BACK", line, "2025-01-16 10:00")  # the new booking was returned
    assert customers(fired(h, "2025-02-01 12:00", "second_date")) == ["GAVE_BACK", "ONE"]


def test_repeat_production_notes_the_second_performance_of_the_same_production() -> None:
    h = History().perf("A1", "P1", "2025-01-10 19:30").perf("A2", "P1", "2025-02-14 19:30")
    h.perf("B", "P2", "2025-02-14 19:30")
    h.book("SAME", "A1", "2025-01-01 10:00")
    h.book("SAME", "A2", "2025-01-20 10:00")
    h.book("OTHER", "A1", "2025-01-01 10:00")
    h.book("OTHER", "B", "2025-01-20 10:00")
    got = fired(h, "2025-01-25 12:00", "repeat_production", horizon_days=28)
    assert customers(got) == ["SAME"]
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-02-14")
    assert got["channel"].iloc[0] == "seat_note"
    # before the second booking nothing is known; after the performance it is too late
    assert customers(fired(h, "2025-01-19 12:00", "repeat_production", horizon_days=60)) == []
    assert customers(fired(h, "2025-02-15 12:00", "repeat_production")) == []


def test_visit_milestone_fires_on_the_fifth_visit_not_the_fourth() -> None:
    h = History()
    for i in range(6):
        h.perf(f"V{i}", "P1", f"2025-01-{10 + i:02d} 19:30")
    for i in range(5):
        h.book("FIVE", f"V{i}", "2025-01-01 10:00")
    for i in range(4):
        h.book("FOUR", f"V{i}", "2025-01-01 10:00")
    got = fired(h, "2025-01-15 12:00", "visit_milestone")
    assert customers(got) == ["FIVE"]
    assert got["detail"].iloc[0] == "5th visit"
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-01-15")  # the day after the visit
    assert customers(fired(h, "2025-01-13 12:00", "visit_milestone")) == []


def test_anniversary_of_the_first_visit_for_active_customers() -> None:
    h = History().perf("A", "P1", "2023-03-10 19:30").perf("B", "P2", "2024-11-01 19:30")
    h.perf("OLD", "P1", "2022-03-08 19:30")
    h.book("ACTIVE", "A", "2023-03-01 10:00")
    h.book("ACTIVE", "B", "2024-10-01 10:00")
    h.book("LAPSED", "OLD", "2022-03-01 10:00")  # only visit three years ago: not active
    got = fired(h, "2025-03-10 12:00", "first_visit_anniversary")
    assert customers(got) == ["ACTIVE"]
    assert got["detail"].iloc[0] == "2 years"
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-03-10")
    assert customers(fired(h, "2025-03-18 12:00", "first_visit_anniversary")) == []
    ahead = fired(h, "2025-03-01 12:00", "first_visit_anniversary", horizon_days=14)
    assert customers(ahead) == ["ACTIVE"]  # a date known in advance can be planned


def test_birthday_only_with_a_stored_birthday() -> None:
    h = History().perf("A", "P1", "2024-10-01 19:30")
    for c in ("BDAY", "NONE"):
        h.book(c, "A", "2024-09-01 10:00")
    h.customer("BDAY", birth=(2, 14)).customer("NONE")
    got = fired(h, "2025-02-01 12:00", "birthday", horizon_days=28)
    assert customers(got) == ["BDAY"]
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-02-07")  # a week ahead for the post
    nobody = History().perf("A", "P1", "2024-10-01 19:30").customer("NONE")
    nobody.book("NONE", "A", "2024-09-01 10:00")
    res = fired(nobody, "2025-02-01 12:00", "birthday", horizon_days=28)
    assert res.empty and res.attrs["skipped"]["birthday"] == "needs customers.birth_month"


def test_birthday_on_29_february_falls_on_the_28th_in_other_years() -> None:
    h = History().perf("A", "P1", "2024-10-01 19:30").customer("LEAP", birth=(2, 29))
    h.book("LEAP", "A", "2024-09-01 10:00")
    got = fired(h, "2025-02-21 12:00", "birthday")
    assert got["due_date"].tolist() == [pd.Timestamp("2025-02-21")]


def test_at_risk_patron_needs_clv_and_picks_valuable_drifting_patrons() -> None:
    h = History().perf("A", "P1", "2024-10-01 19:30")
    ids = [f"C{i}" for i in range(10)]
    for c in ids:
        h.book(c, "A", "2024-09-01 10:00")
    clv = pd.DataFrame(
        {
            "customer_id": ids,
            "clv": [1000, 900, 800, 10, 10, 10, 10, 10, 10, 10],
            "p_alive": [0.2, 0.9, 0.3, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9],
            "expected_purchases": 1.0,
        }
    )
    settings = moment_settings(with_clv(at_risk_top_share=0.3))
    assert settings.triggers["at_risk_patron"].params["top_share"] == 0.3
    got = fired(h, "2025-01-01 12:00", "at_risk_patron", settings=settings, clv=clv)
    assert customers(got) == ["C0", "C2"]
    assert got["value"].max() == 1000  # lifetime value is the customer's value
    none = fired(h, "2025-01-01 12:00", "at_risk_patron")
    assert none.empty and none.attrs["skipped"] == {"at_risk_patron": "needs clv"}


def test_at_risk_thresholds_have_one_home_in_the_clv_settings() -> None:
    # the CLV page and the action list pick the same patrons: the trigger reads clv's
    # thresholds, and a different value under moments says where to set it instead
    cfg = with_clv(at_risk_p_alive=0.4)
    params = moment_settings(cfg).triggers["at_risk_patron"].params
    assert (params["p_alive_below"], params["top_share"]) == (0.4, 0.2)
    same = moment_settings(cfg, triggers={"at_risk_patron": {"p_alive_below": 0.4}})
    assert same.triggers["at_risk_patron"].params["p_alive_below"] == 0.4
    with pytest.raises(ConfigError) as err:
        moment_settings(cfg, triggers={"at_risk_patron": {"p_alive_below": 0.3}})
    assert "'clv: at_risk_p_alive: 0.3'" in str(err.value)
    assert "remove 'p_alive_below' from moments.triggers.at_risk_patron" in str(err.value)


def test_membership_invitation_for_regular_non_members_only() -> None:
    h = History()
    for i in range(3):
        h.perf(f"V{i}", "P1", f"2025-0{i + 1}-10 19:30")
    for c in ("REGULAR", "MEMBER", "TWICE"):
        for i in range(3 if c != "TWICE" else 2):
            h.book(c, f"V{i}", "2025-01-01 10:00")
    h.member("MEMBER", "2024-09-01", "2025-08-31")
    got = fired(h, "2025-03-12 12:00", "membership_invitation")
    assert customers(got) == ["REGULAR"]
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-03-12")
    no_table = History().perf("V0", "P1", "2025-01-10 19:30")
    no_table.book("X", "V0", "2025-01-01 10:00")
    res = fired(no_table, "2025-03-12 12:00", "membership_invitation")
    assert res.attrs["skipped"] == {"membership_invitation": "needs memberships"}


def test_membership_renewal_at_60_and_30_days_first_year_weighted() -> None:
    h = History().perf("A", "P1", "2024-10-01 19:30")
    h.member("FIRST", "2024-09-01", "2025-08-31", kind="new")
    h.member("LONG", "2022-09-01", "2023-08-31", kind="new")
    h.member("LONG", "2023-09-01", "2024-08-31", kind="renewal")
    h.member("LONG", "2024-09-01", "2025-08-31", kind="renewal")
    h.member("RENEWED", "2024-09-01", "2025-08-31", kind="renewal")
    h.member("RENEWED", "2025-09-01", "2026-08-31", kind="renewal")  # already in the export
    h.book("FIRST", "A", "2024-09-01 10:00")
    got = fired(h, "2025-07-02 12:00", "membership_renewal")
    assert customers(got) == ["FIRST", "LONG"]
    by = got.set_index("customer_id")
    assert by.loc["FIRST", "detail"] == "60 days before expiry, first year"
    assert by.loc["FIRST", "likelihood"] == pytest.approx(2 * by.loc["LONG", "likelihood"])
    assert by.loc["FIRST", "due_date"] == pd.Timestamp("2025-07-02")
    thirty = fired(h, "2025-08-01 12:00", "membership_renewal")
    assert set(thirty["detail"]) == {"30 days before expiry, first year", "30 days before expiry"}
    assert customers(fired(h, "2025-06-01 12:00", "membership_renewal")) == []


def test_considered_ask_for_loyal_attenders_who_never_gave() -> None:
    h = History()
    for i in range(4):
        h.perf(f"V{i}", "P1", f"2025-0{i + 1}-10 19:30")
    for c in ("LOYAL", "DONOR"):
        for i in range(4):
            h.book(c, f"V{i}", "2025-01-01 10:00")
    h.give("DONOR", "2023-05-01", 50)
    got = fired(h, "2025-04-14 12:00", "considered_ask")
    assert customers(got) == ["LOYAL"]
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-04-13")
    assert got["channel"].iloc[0] == "post"


def test_service_recovery_after_cancellation_return_and_exchange() -> None:
    h = History().perf("OFF", "P1", "2025-02-10 19:30", cancelled=True)
    h.perf("ON", "P2", "2025-02-12 19:30").perf("ON2", "P2", "2025-02-13 19:30")
    h.book("CANCELLED", "OFF", "2025-01-05 10:00")
    ret = h.book("RETURNED", "ON", "2025-01-05 10:00")
    h.reverse("RETURNED", ret, "2025-02-01 09:00")
    exc = h.book("EXCHANGED", "ON", "2025-01-05 10:00")
    h.reverse("EXCHANGED", exc, "2025-02-01 09:00", status="exchanged")
    h.book("EXCHANGED", "ON2", "2025-02-01 09:00")
    h.book("HAPPY", "ON", "2025-01-05 10:00")
    got = fired(h, "2025-02-11 12:00", "service_recovery")
    assert customers(got) == ["CANCELLED", "EXCHANGED", "RETURNED"]
    detail = got.set_index("customer_id")["detail"]
    assert detail.to_dict() == {
        "CANCELLED": "cancellation",
        "RETURNED": "return",
        "EXCHANGED": "exchange",
    }
    assert got.set_index("customer_id").loc["CANCELLED", "kind"] == "service"
    before = fired(h, "2025-01-31 12:00", "service_recovery")
    assert customers(before) == []


def test_new_artform_insight_for_a_returning_customer_trying_something_new() -> None:
    h = History().perf("T", "P1", "2024-11-01 19:30").perf("D", "P2", "2025-03-01 19:30")
    h.perf("T2", "P1", "2025-03-02 19:30")
    h.book("NEW", "T", "2024-10-01 10:00")
    h.book("NEW", "D", "2025-02-01 10:00")  # dance for the first time
    h.book("FIRST", "D", "2025-02-01 10:00")  # first ever booking: a welcome, not this
    h.book("SAME", "T", "2024-10-01 10:00")
    h.book("SAME", "T2", "2025-02-01 10:00")  # theatre again
    got = fired(h, "2025-02-03 12:00", "new_artform_insight")
    assert customers(got) == ["NEW"]
    assert got["artform"].iloc[0] == "Dance"
    assert got["expires"].iloc[0] == pd.Timestamp("2025-03-01")
    assert customers(fired(h, "2025-03-02 12:00", "new_artform_insight")) == []


def test_email_clicks_without_booking() -> None:
    h = History().perf("A", "P1", "2025-03-01 19:30")
    for c in ("WINDOW", "ONCE", "BOOKED"):
        h.click(c, "P1", "2025-02-01 10:00")
        if c != "ONCE":
            h.click(c, "P1", "2025-02-03 10:00")
    h.book("BOOKED", "A", "2025-02-03 11:00")
    got = fired(h, "2025-02-04 12:00", "email_click_no_booking")
    assert customers(got) == ["WINDOW"]
    assert got["title"].iloc[0] == "Hamlet"
    # once the production is over there is nothing left to book
    assert customers(fired(h, "2025-03-02 12:00", "email_click_no_booking")) == []


def test_nps_promoter_and_detractor_thresholds() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    for c, score in (("P9", 9), ("P8", 8), ("D6", 6), ("D7", 7)):
        h.book(c, "A", "2025-01-01 10:00")
        h.survey(c, "2025-01-11 10:00", score, perf="A")
    assert customers(fired(h, "2025-01-13 12:00", "nps_promoter")) == ["P9"]
    det = fired(h, "2025-01-12 12:00", "nps_detractor")
    assert customers(det) == ["D6"]
    assert det["channel"].iloc[0] == "phone_call" and det["title"].iloc[0] == "Hamlet"


def test_spend_milestone_fires_once_when_the_total_first_passes_a_threshold() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("BIG", "A", "2024-06-01 10:00", paid=300)
    h.give("BIG", "2025-01-05", 250)  # 550 in total: passes 500 on 5 January
    h.book("SMALL", "A", "2024-06-01 10:00", paid=300)
    got = fired(h, "2025-01-08 12:00", "spend_milestone")
    assert customers(got) == ["BIG"]
    assert got["detail"].iloc[0] == "passed £500"
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-01-08")
    assert customers(fired(h, "2025-01-04 12:00", "spend_milestone")) == []


# ---------------------------------------------------------------------------
# Settings: disable, tune, custom triggers
# ---------------------------------------------------------------------------
def test_a_disabled_trigger_does_not_fire() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("C1", "A", "2024-12-20 10:00")
    off = moment_settings(None, triggers={"second_date": {"enabled": False}})
    assert customers(fired(h, "2025-02-01 12:00", "second_date")) == ["C1"]
    assert fired(h, "2025-02-01 12:00", "second_date", settings=off).empty
    assert "second_date" not in set(
        find_moments(h.tables(), "2025-02-01", settings=off)["trigger_id"]
    )


def test_thresholds_are_tuned_in_settings() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("C1", "A", "2024-12-20 10:00")
    later = moment_settings(None, triggers={"second_date": {"min_days": 21}})
    assert fired(h, "2025-01-28 12:00", "second_date", settings=later).empty
    assert not fired(h, "2025-01-31 12:00", "second_date", settings=later).empty


def test_custom_trigger_from_safe_condition_primitives() -> None:
    h = History()
    for i in range(3):
        h.perf(f"V{i}", "P1", f"2025-0{i + 1}-10 19:30")
    for i in range(3):
        h.book("THREE", f"V{i}", "2025-01-01 10:00")
    h.book("ONE", "V0", "2025-01-01 10:00")
    custom = {
        "frequent_friend": {
            "name": "Frequent friend",
            "epic": "connection",
            "stage": "return",
            "channel": "email",
            "when": [
                {"feature": "frequency", "op": ">=", "value": 3},
                {"feature": "favourite_artform", "op": "in", "value": ["Theatre", "Dance"]},
            ],
        }
    }
    s = moment_settings(None, custom_triggers=custom)
    got = find_moments(h.tables(), "2025-04-01 12:00", settings=s, triggers=["frequent_friend"])
    assert customers(got) == ["THREE"]
    assert got["due_date"].iloc[0] == pd.Timestamp("2025-04-01")
    # the same trigger over a hand-made feature table
    feats = pd.DataFrame({"frequency": [5, 1], "favourite_artform": ["Dance", "Dance"]},
                         index=pd.Index(["THREE", "ONE"], name="customer_id"))  # fmt: skip
    got = find_moments(
        h.tables(), "2025-04-01", settings=s, features=feats, triggers=["frequent_friend"]
    )
    assert customers(got) == ["THREE"]
    assert (
        "customer features: frequency >= 3"
        in library_table(s).set_index("id").loc["frequent_friend", "fires when"]
    )


def test_custom_trigger_values_are_data_never_code() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("C1", "A", "2024-12-20 10:00")
    sneaky = {"x": {"epic": "pride", "stage": "return", "channel": "email",
                    "when": [{"feature": "favourite_artform", "op": "==", "value": "__import__('os').getcwd()"}]}}  # fmt: skip
    s = moment_settings(None, custom_triggers=sneaky)
    assert find_moments(h.tables(), "2025-02-01", settings=s, triggers=["x"]).empty


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"triggers": {"second_dates": {"enabled": False}}}, "unknown trigger"),
        ({"triggers": {"second_date": {"min_dayz": 3}}}, "unknown setting"),
        ({"triggers": {"second_date": {"channel": "pigeon"}}}, "not a known channel"),
        ({"triggers": {"second_date": {"wording": "Dear {first_name}"}}}, "placeholders"),
        ({"triggers": {"second_date": {"control_share": 1.5}}}, "control_share"),
        (
            {
                "custom_triggers": {
                    "x": {
                        "epic": "joy",
                        "stage": "return",
                        "channel": "email",
                        "when": [{"feature": "frequency", "op": ">", "value": 1}],
                    }
                }
            },
            "epic",
        ),  # fmt: skip
        (
            {
                "custom_triggers": {
                    "x": {
                        "epic": "pride",
                        "stage": "return",
                        "channel": "email",
                        "when": [{"feature": "frequency", "op": "eval", "value": 1}],
                    }
                }
            },
            "operator",
        ),  # fmt: skip
        (
            {
                "custom_triggers": {
                    "x": {
                        "epic": "pride",
                        "stage": "return",
                        "channel": "email",
                        "when": [{"feature": "shoe_size", "op": ">", "value": 1}],
                    }
                }
            },
            "not a customer feature",
        ),  # fmt: skip
        (
            {
                "custom_triggers": {
                    "second_date": {
                        "epic": "pride",
                        "stage": "return",
                        "channel": "email",
                        "when": [{"feature": "frequency", "op": ">", "value": 1}],
                    }
                }
            },
            "built-in",
        ),  # fmt: skip
    ],
)
def test_bad_moment_settings_are_reported_plainly(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        moment_settings(None, **settings)


def test_org_yaml_overrides_reach_the_moment_settings(tmp_path) -> None:
    from conftest import write_org

    from playbook.config import load_org

    org = write_org(
        tmp_path / "o",
        {},
        "moments:\n  min_days_between: 7\n  triggers:\n    birthday: {enabled: false}\n",
    )
    s = moment_settings(load_org(org))
    assert s.min_days_between == 7 and not s.triggers["birthday"].enabled
    (org / "org.yaml").write_text("moments:\n  min_dayz_between: 7\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="min_dayz_between"):
        load_org(org)


def test_missing_optional_tables_skip_triggers_without_error() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("C1", "A", "2024-12-20 10:00")
    got = find_moments(h.tables(), "2025-02-01 12:00", settings=DEFAULTS)
    skipped = got.attrs["skipped"]
    for tid in ("membership_invitation", "membership_renewal", "considered_ask", "nps_promoter",
                "birthday", "at_risk_patron", "email_click_no_booking"):  # fmt: skip
        assert skipped[tid].startswith("needs ")
    only_lines = History()
    only_lines.book("C1", None, "2025-01-05 10:00")
    got = find_moments(only_lines.tables(), "2025-01-06", settings=DEFAULTS)
    assert set(got["trigger_id"]) == {"first_booking_welcome"}
    assert "performances" in got.attrs["skipped"]["repeat_production"]


def test_anonymised_customers_never_appear_in_moments() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    h.book("GONE", "A", "2024-12-20 10:00")
    h.book("HERE", "A", "2024-12-20 10:00")
    h.customer("GONE", anonymised=True).customer("HERE")
    got = find_moments(h.tables(), "2025-02-01 12:00", settings=DEFAULTS)
    assert "GONE" not in set(got["customer_id"]) and "HERE" in set(got["customer_id"])


def test_prepared_data_gives_the_same_answer_and_no_loop_over_customers() -> None:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    for i in range(200):
        h.book(f"C{i:03d}", "A", "2024-12-20 10:00")
    tables = h.tables()
    a = find_moments(tables, "2025-02-01", settings=DEFAULTS)
    b = find_moments(prepare_moments(tables), "2025-02-01", settings=DEFAULTS)
    pd.testing.assert_frame_equal(a, b)
    assert (a["trigger_id"] == "second_date").sum() == 200
    assert np.all(a["priority"] == a["value"] * a["likelihood"])
