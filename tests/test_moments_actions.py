"""From moments to an action list: consent, spacing, capacity, control groups, safe CSV, CLI."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_moments_triggers import History

from playbook.cli import main
from playbook.moments import (
    ACTION_COLUMNS,
    MOMENT_COLUMNS,
    build_action_list,
    control_draw,
    excluded_table,
    find_moments,
    moment_settings,
    neutralise_cells,
    read_action_lists,
    write_action_list,
)

AS_OF = pd.Timestamp("2025-03-03 12:00")  # a Monday
NO_CONTROL = {
    tid: {"control_share": 0.0}
    for tid in moment_settings().triggers  # every built-in trigger
}


def settings(**over: Any) -> Any:
    """Package defaults without control groups (unless a test asks), plus overrides."""
    from playbook.config import deep_merge

    return moment_settings(None, **deep_merge({"triggers": NO_CONTROL}, over))


def moments(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A moments frame written by hand (defaults for every column not given)."""
    base = {
        "trigger": "x",
        "epic": "connection",
        "stage": "return",
        "kind": "marketing",
        "fired_at": AS_OF,
        "due_date": AS_OF.normalize(),
        "expires": AS_OF.normalize() + pd.Timedelta(days=60),
        "channel": "email",
        "unit_cost": 1.0,
        "value": 100.0,
        "likelihood": 0.1,
    }
    recs = []
    for i, r in enumerate(rows):
        rec = {**base, **r}
        rec.setdefault("priority", rec["value"] * rec["likelihood"])
        rec.setdefault("moment_key", f"{rec['trigger_id']}|{rec['customer_id']}|{i}")
        recs.append(rec)
    df = pd.DataFrame(recs).reindex(columns=list(MOMENT_COLUMNS))
    for c in ("production_id", "title", "artform", "detail"):
        df[c] = df[c].astype("string")
    df["event_date"] = pd.to_datetime(df["event_date"])
    df.attrs["as_of"] = AS_OF
    return df


def people(
    *ids: str, consent: tuple[str, ...] = ("email",), anonymised: tuple[str, ...] = ()
) -> History:
    h = History().perf("A", "P1", "2025-01-10 19:30")
    for c in ids:
        h.book(c, "A", "2025-01-01 10:00")
        h.customer(c, anonymised=c in anonymised)
        for ch in consent:
            h.consent(c, ch)
    return h


# ---------------------------------------------------------------------------
# Consent and anonymised customers
# ---------------------------------------------------------------------------
def test_marketing_needs_consent_on_the_channel_and_falls_back_in_order() -> None:
    h = people("EMAIL", consent=("email",))
    h.book("POST", "A", "2025-01-01 10:00")
    h.consent("POST", "email", "withdrawn").consent("POST", "post")
    h.book("NONE", "A", "2025-01-01 10:00")
    h.consent("NONE", "email", "unknown")
    m = moments(
        [{"customer_id": c, "trigger_id": "second_date"} for c in ("EMAIL", "POST", "NONE")]
    )
    a = build_action_list(m, h.tables(), settings=settings())
    assert a.set_index("customer_id")["channel"].to_dict() == {"EMAIL": "email", "POST": "post"}
    ex = excluded_table(a)
    assert ex.loc[ex["reason"] == "no consent", "moments"].sum() == 1


def test_service_moments_follow_the_consent_policy() -> None:
    h = people("QUIET", consent=())
    m = moments([{"customer_id": "QUIET", "trigger_id": "nps_detractor", "kind": "service"}])
    assert build_action_list(m, h.tables(), settings=settings())["channel"].tolist() == [
        "phone_call"
    ]
    strict = settings(service_requires_consent=True)
    assert build_action_list(m, h.tables(), settings=strict).empty
    # marketing moments are never sent without consent, whatever the policy
    mk = moments([{"customer_id": "QUIET", "trigger_id": "second_date"}])
    assert build_action_list(mk, h.tables(), settings=settings()).empty


def test_channels_without_contact_details_need_no_consent() -> None:
    h = people("SEAT", consent=())
    m = moments([{"customer_id": "SEAT", "trigger_id": "repeat_production"}])
    assert build_action_list(m, h.tables(), settings=settings())["channel"].tolist() == [
        "seat_note"
    ]


def test_anonymised_customers_never_appear_in_the_action_list() -> None:
    h = people("GONE", "HERE", anonymised=("GONE",))
    m = moments([{"customer_id": c, "trigger_id": "second_date"} for c in ("GONE", "HERE")])
    a = build_action_list(m, h.tables(), settings=settings())
    assert a["customer_id"].tolist() == ["HERE"]
    # and end to end: find_moments already leaves them out
    found = find_moments(h.tables(), "2025-02-01 12:00", settings=settings())
    assert "GONE" not in set(found["customer_id"])


def test_do_not_contact_customers_get_no_action_of_any_kind() -> None:
    h = people("DEAD", "HERE", "GONEAWAY")
    for c, flag in (("DEAD", True), ("HERE", False), ("GONEAWAY", True)):
        h.rows["customers"] = [r for r in h.rows["customers"] if r["customer_id"] != c]
        h.rows["customers"].append({"customer_id": c, "anonymised": False, "do_not_contact": flag})
    m = moments(
        [
            {"customer_id": "DEAD", "trigger_id": "second_date"},
            {"customer_id": "HERE", "trigger_id": "second_date"},
            # service moments need no consent, but not even they reach a flagged customer
            {"customer_id": "GONEAWAY", "trigger_id": "service_recovery", "kind": "service"},
        ]
    )
    a = build_action_list(m, h.tables(), settings=settings())
    assert a["customer_id"].tolist() == ["HERE"]
    ex = excluded_table(a).sort_values("trigger_id").reset_index(drop=True)
    assert ex.to_dict(orient="records") == [
        {"trigger_id": "second_date", "reason": "do not contact", "moments": 1},
        {"trigger_id": "service_recovery", "reason": "do not contact", "moments": 1},
    ]
    assert a.attrs["found"] == 3 == len(a) + ex["moments"].sum()
    # they stay in the data: find_moments still finds their moments
    found = find_moments(h.tables(), "2025-02-01 12:00", settings=settings())
    assert {"DEAD", "HERE", "GONEAWAY"} <= set(found["customer_id"])
    # and the backtest's channels (resolve_channels) give them none, not even a seat note
    from playbook.moments import prepare_moments, resolve_channels

    seat = moments(
        [{"customer_id": c, "trigger_id": "repeat_production"} for c in ("DEAD", "HERE")]
    )
    got = resolve_channels(seat, prepare_moments(h.tables()), settings())
    assert pd.isna(got.iloc[0]) and got.iloc[1] == "seat_note"


def test_service_moments_never_use_a_channel_the_customer_opted_out_of() -> None:
    h = people("QUIET", consent=())
    for c in ("UNSURE", "NOEMAIL", "NOMAIL", "NOPHONE"):
        h.book(c, "A", "2025-01-01 10:00")
    h.consent("UNSURE", "email", "unknown").consent("NOEMAIL", "email", "withdrawn")
    h.consent("NOMAIL", "email", "withdrawn").consent("NOMAIL", "post", "withdrawn")
    h.consent("NOPHONE", "phone", "withdrawn")
    sr = {"trigger_id": "service_recovery", "kind": "service"}
    nps = {"trigger_id": "nps_detractor", "kind": "service"}
    m = moments(
        [
            {"customer_id": "QUIET", **nps},  # never asked: a call, no consent needed
            {"customer_id": "UNSURE", **sr},  # status unknown: not a no, email
            {"customer_id": "NOEMAIL", **sr},  # said no to email: the letter instead
            {"customer_id": "NOMAIL", **sr},  # said no to email and post: left out
            {"customer_id": "NOPHONE", **nps},  # said no to phone: no call
        ]
    )
    a = build_action_list(m, h.tables(), settings=settings())
    assert a.set_index("customer_id")["channel"].to_dict() == {
        "QUIET": "phone_call",
        "UNSURE": "email",
        "NOEMAIL": "post",
    }
    ex = excluded_table(a).sort_values("trigger_id").reset_index(drop=True)
    assert ex.to_dict(orient="records") == [
        {"trigger_id": "nps_detractor", "reason": "opted out", "moments": 1},
        {"trigger_id": "service_recovery", "reason": "opted out", "moments": 1},
    ]
    assert a.attrs["found"] == 5 == len(a) + ex["moments"].sum()


def unsubscribe_history() -> History:
    """Email consent dated 1 Feb 2025 for everyone; unsubscribes around it.

    - ``LATER``: unsubscribed 20 Feb (after the consent): email closed, post open.
    - ``EMAILONLY``: unsubscribed 20 Feb, no post consent: no channel left.
    - ``BEFORE``: unsubscribed 10 Jan, then consented again 1 Feb: email open.
    - ``FUTURE``: unsubscribes 5 Mar, after the list's day (3 Mar): email open.
    - ``SAMEDAY``: unsubscribed on the list's day at 18:00: email closed.
    """
    h = History().perf("A", "P1", "2025-01-10 19:30")
    when = {
        "LATER": "2025-02-20 10:00",
        "EMAILONLY": "2025-02-20 10:00",
        "BEFORE": "2025-01-10 10:00",
        "FUTURE": "2025-03-05 10:00",
        "SAMEDAY": "2025-03-03 18:00",
    }
    for c, t in when.items():
        h.book(c, "A", "2025-01-01 10:00")
        h.customer(c)
        h.rows["consents"].append(
            {
                "customer_id": c,
                "channel": "email",
                "status": "granted",
                "consent_date": "2025-02-01",
            }
        )
        if c != "EMAILONLY":
            h.rows["consents"].append(
                {
                    "customer_id": c,
                    "channel": "post",
                    "status": "granted",
                    "consent_date": "2025-02-01",
                }
            )
        h.rows["interactions"].append({"customer_id": c, "occurred_at": t, "kind": "unsubscribe"})
    return h


def test_an_email_unsubscribe_after_the_consent_closes_email() -> None:
    h = unsubscribe_history()
    ids = ("LATER", "EMAILONLY", "BEFORE", "FUTURE", "SAMEDAY")
    m = moments([{"customer_id": c, "trigger_id": "second_date"} for c in ids])
    a = build_action_list(m, h.tables(), as_of=AS_OF, settings=settings())
    assert a.set_index("customer_id")["channel"].to_dict() == {
        "LATER": "post",
        "BEFORE": "email",
        "FUTURE": "email",
        "SAMEDAY": "post",
    }
    ex = excluded_table(a)
    assert ex.to_dict(orient="records") == [
        {"trigger_id": "second_date", "reason": "unsubscribed", "moments": 1}
    ]
    # an email-only moment for the unsubscribed customers is left out, not sent
    m1 = moments([{"customer_id": c, "trigger_id": "first_booking_welcome"} for c in ids])
    a1 = build_action_list(m1, h.tables(), as_of=AS_OF, settings=settings())
    assert sorted(a1["customer_id"]) == ["BEFORE", "FUTURE"]
    ex1 = excluded_table(a1)
    assert ex1.set_index("reason")["moments"].to_dict() == {"unsubscribed": 3}
    # a week later the FUTURE unsubscribe has happened too
    later = build_action_list(
        m, h.tables(), as_of=AS_OF + pd.Timedelta(days=7), settings=settings()
    )
    assert later.set_index("customer_id")["channel"].to_dict()["FUTURE"] == "post"


def test_an_unsubscribe_closes_email_for_service_moments_too() -> None:
    h = unsubscribe_history()
    m = moments([{"customer_id": "EMAILONLY", "trigger_id": "service_recovery", "kind": "service"}])
    # service moments need no consent by default, but never by email after an unsubscribe
    a = build_action_list(m, h.tables(), as_of=AS_OF, settings=settings())
    assert a["channel"].tolist() == ["post"]


def test_the_backtest_counts_unsubscribes_week_by_week() -> None:
    from playbook.moments import prepare_moments, resolve_channels

    data = prepare_moments(unsubscribe_history().tables())
    m = moments([{"customer_id": "FUTURE", "trigger_id": "first_booking_welcome"}] * 2)
    weeks = pd.Series(pd.to_datetime(["2025-03-03 23:59", "2025-03-10 23:59"]), index=m.index)
    got = resolve_channels(m, data, settings(), as_of=weeks)
    assert got.iloc[0] == "email"  # the week of 3 March: not unsubscribed yet
    assert pd.isna(got.iloc[1])  # the week of 10 March: unsubscribed on the 5th


# ---------------------------------------------------------------------------
# One moment per customer per N days, highest priority first
# ---------------------------------------------------------------------------
def test_one_moment_per_customer_per_n_days_highest_priority_wins() -> None:
    h = people("C1", "C2")
    d = AS_OF.normalize()
    m = moments(
        [
            {"customer_id": "C1", "trigger_id": "second_date", "likelihood": 0.1, "due_date": d},
            {
                "customer_id": "C1",
                "trigger_id": "birthday",
                "likelihood": 0.3,
                "due_date": d + pd.Timedelta(days=5),
            },  # fmt: skip
            {
                "customer_id": "C1",
                "trigger_id": "nps_promoter",
                "likelihood": 0.2,
                "due_date": d + pd.Timedelta(days=21),
            },  # fmt: skip
            {"customer_id": "C2", "trigger_id": "second_date", "due_date": d},
        ]
    )
    a = build_action_list(m, h.tables(), settings=settings(min_days_between=21))
    got = a.groupby("customer_id")["trigger_id"].apply(sorted).to_dict()
    assert got == {"C1": ["birthday"], "C2": ["second_date"]}  # 21 days from the 5th is the 26th
    a = build_action_list(m, h.tables(), settings=settings(min_days_between=14))
    assert sorted(a.loc[a["customer_id"] == "C1", "trigger_id"]) == ["birthday", "nps_promoter"]
    a = build_action_list(m, h.tables(), settings=settings(min_days_between=0))
    assert (a["customer_id"] == "C1").sum() == 3


def test_earlier_lists_stop_repeats(tmp_path: Path) -> None:
    h = people("C1", "C2")
    m = moments([{"customer_id": c, "trigger_id": "second_date"} for c in ("C1", "C2")])
    first = build_action_list(m, h.tables(), settings=settings())
    write_action_list(first, tmp_path / "actions_2025-03-03.csv")
    previous = read_action_lists(tmp_path, before="2025-03-10")
    again = build_action_list(m, h.tables(), settings=settings(), previous=previous)
    assert again.empty
    assert set(excluded_table(again)["reason"]) == {"already planned"}
    assert read_action_lists(tmp_path, before="2025-03-03").empty  # only lists made before


# ---------------------------------------------------------------------------
# Weekly capacity
# ---------------------------------------------------------------------------
def test_staff_capacity_defers_overflow_to_the_next_week() -> None:
    ids = [f"C{i}" for i in range(5)]
    h = people(*ids, consent=("phone",))
    m = moments(
        [
            {"customer_id": c, "trigger_id": "nps_detractor", "kind": "service", "value": 100.0 - i}
            for i, c in enumerate(ids)
        ]  # fmt: skip
    )
    s = settings(channels={"phone_call": {"weekly_capacity": 2}})
    a = build_action_list(m, h.tables(), settings=s).set_index("customer_id")
    assert a["week"].value_counts().sort_index().tolist() == [2, 2, 1]
    assert a.loc[["C0", "C1"], "deferred"].tolist() == [False, False]  # highest priority first
    assert a.loc[["C2", "C3", "C4"], "deferred"].all()
    assert a.loc["C4", "deferred_weeks"] == 2
    assert a.loc["C4", "due_date"] == AS_OF.normalize() + pd.Timedelta(days=14)
    # a moment pushed past its last useful day is dropped and counted
    short = m.assign(expires=AS_OF.normalize() + pd.Timedelta(days=3))
    b = build_action_list(short, h.tables(), settings=s)
    assert len(b) == 2
    ex = excluded_table(b)
    assert ex.loc[ex["reason"] == "over capacity", "moments"].sum() == 3


def test_deferred_moments_go_before_the_next_weeks_new_ones() -> None:
    ids = [f"C{i}" for i in range(4)]
    h = people(*ids, consent=("phone",))
    d = AS_OF.normalize()
    m = moments(
        [
            {"customer_id": "C0", "trigger_id": "nps_detractor", "value": 50.0},
            {"customer_id": "C1", "trigger_id": "nps_detractor", "value": 40.0},
            {
                "customer_id": "C2",
                "trigger_id": "nps_detractor",
                "value": 90.0,
                "due_date": d + pd.Timedelta(days=7),
            },  # fmt: skip
        ]
    )
    s = settings(channels={"phone_call": {"weekly_capacity": 1}})
    a = build_action_list(m, h.tables(), settings=s).set_index("customer_id")
    assert a.loc["C1", "week"] == d + pd.Timedelta(days=7)  # deferred, first in week 2
    assert a.loc["C2", "week"] == d + pd.Timedelta(days=14)


# ---------------------------------------------------------------------------
# Control groups
# ---------------------------------------------------------------------------
def test_control_draw_is_sha256_of_trigger_and_customer() -> None:
    digest = hashlib.sha256(b"second_date:C000123").digest()
    expected = int.from_bytes(digest[:8], "big") / 2.0**64
    assert control_draw(["second_date"], ["C000123"])[0] == pytest.approx(expected, abs=0)


def test_control_group_is_deterministic_and_near_the_configured_share() -> None:
    ids = [f"C{i:05d}" for i in range(20_000)]
    draws = control_draw(["second_date"] * len(ids), ids)
    assert abs((draws < 0.10).mean() - 0.10) < 0.01
    assert abs((draws < 0.25).mean() - 0.25) < 0.015
    assert np.array_equal(draws, control_draw(["second_date"] * len(ids), ids))
    other = control_draw(["birthday"] * len(ids), ids)
    assert 0 < ((draws < 0.1) & (other < 0.1)).mean() < 0.02  # independent per trigger


def test_control_rows_are_flagged_and_get_no_action() -> None:
    ids = [f"C{i:03d}" for i in range(300)]
    h = people(*ids)
    m = moments([{"customer_id": c, "trigger_id": "second_date"} for c in ids])
    s = settings(triggers={"second_date": {"control_share": 0.2}})
    a = build_action_list(m, h.tables(), settings=s)
    b = build_action_list(m, h.tables(), settings=s)
    pd.testing.assert_frame_equal(a, b)
    control = a["group"] == "control"
    assert 0.12 < control.mean() < 0.28
    expected = control_draw(["second_date"] * len(a), a["customer_id"]) < 0.2
    assert np.array_equal(control.to_numpy(), expected)
    assert a.loc[control, "wording"].str.startswith("Control group: no action").all()
    assert not control[: (~control).sum()].any()  # treatment rows first


def test_controls_do_not_use_staff_capacity() -> None:
    ids = [f"C{i:03d}" for i in range(40)]
    h = people(*ids, consent=("phone",))
    m = moments([{"customer_id": c, "trigger_id": "nps_detractor", "kind": "service"} for c in ids])
    s = settings(
        channels={"phone_call": {"weekly_capacity": 100}},
        triggers={"nps_detractor": {"control_share": 0.5}},
    )
    a = build_action_list(m, h.tables(), settings=s)
    assert not a["deferred"].any() and (a["group"] == "control").sum() > 5


# ---------------------------------------------------------------------------
# The CSV
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ['=HYPERLINK("http://x")', "+1+2", "-2+3", "@SUM(A1)", "\tx"])
def test_csv_injection_is_neutralised(tmp_path: Path, bad: str) -> None:
    h = people("C1")
    h.production("EVIL", bad, "Theatre")
    m = moments(
        [{"customer_id": "C1", "trigger_id": "second_date", "title": bad, "production_id": "EVIL"}]
    )
    a = build_action_list(
        m, h.tables(), settings=settings(triggers={"second_date": {"wording": "{title}"}})
    )
    path = write_action_list(a, tmp_path / "a.csv")
    back = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
    assert back.loc[0, "title"] == "'" + bad
    assert back.loc[0, "wording"] == "'" + bad
    for col in back.columns:
        assert not back[col].str.startswith(("=", "+", "-", "@", "\t", "\r")).any(), col


def test_neutralise_leaves_numbers_and_plain_text_alone() -> None:
    text = ["ok", "-x", "\rx", "\tx", "=1", "+1", "@a", "a=b", None]
    df = pd.DataFrame({"n": [-1.5, 2.0, 0, 0, 0, 0, 0, 0, 0], "s": pd.Series(text, dtype="string")})
    out = neutralise_cells(df)
    assert out["n"].tolist() == df["n"].tolist()
    assert out["s"].tolist()[:-1] == ["ok", "'-x", "'\rx", "'\tx", "'=1", "'+1", "'@a", "a=b"]
    assert out["s"].isna().tolist()[-1]


def test_action_list_holds_no_personal_details(tmp_path: Path) -> None:
    h = people("C1")
    m = moments([{"customer_id": "C1", "trigger_id": "second_date", "title": "Hamlet"}])
    a = build_action_list(m, h.tables(), settings=settings(), id_map=pd.DataFrame(
        {"customer_id": ["C1"], "source_customer_id": ["1001"]}))  # fmt: skip
    path = write_action_list(a, tmp_path / "a.csv")
    back = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert list(back.columns) == list(ACTION_COLUMNS)
    assert back.loc[0, "source_customer_id"] == "1001"
    banned = ("name", "email", "phone_number", "address", "postcode", "birth")
    assert not [c for c in back.columns if any(b in c for b in banned)]


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------
def test_cli_writes_the_action_list_with_source_ids(
    small_org: Path, tmp_path: Path, capsys
) -> None:
    org = tmp_path / "org"
    shutil.copytree(small_org, org)
    code = main(["moments", str(org), "--as-of", "2025-05-15"])
    assert code == 0
    path = org / "moments" / "actions_2025-05-15.csv"
    assert path.exists()
    assert "Written to" in capsys.readouterr().out
    a = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert len(a) > 20
    id_map = pd.read_parquet(org / "private" / "id_map.parquet")
    lookup = dict(zip(id_map["customer_id"], id_map["source_customer_id"].astype(str), strict=True))
    assert (a["source_customer_id"] == a["customer_id"].map(lookup)).all()
    raw = pd.read_csv(org / "exports" / "customers.csv", dtype=str)
    assert set(a["source_customer_id"]) <= set(raw["Customer ID"])
    assert set(a["group"]) <= {"treatment", "control"}
    # the next week's run reads the first list and does not repeat it
    assert main(["moments", str(org), "--as-of", "2025-05-22"]) == 0
    b = pd.read_csv(org / "moments" / "actions_2025-05-22.csv", dtype=str, encoding="utf-8-sig")
    assert not set(b["moment_key"]) & set(a["moment_key"])


def test_cli_reports_a_bad_date_plainly(small_org: Path, tmp_path: Path, capsys) -> None:
    assert (
        main(["moments", str(small_org), "--as-of", "someday", "--out", str(tmp_path / "x.csv")])
        == 2
    )
    assert "YYYY-MM-DD" in capsys.readouterr().err
