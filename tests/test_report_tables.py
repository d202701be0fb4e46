"""Report tables: headings in plain words, formatted cells, the caller's frame untouched."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from IPython.display import Markdown

from playbook.report import channel_words, heading, show, styled_table


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rows_read", "Rows read"),
        ("share_of_customers", "Share of customers"),
        ("change_yoy", "Change year on year"),
        ("mean_ari", "Mean ARI"),
        ("customers", "Customers"),
        ("renewals due", "Renewals due"),
        ("total error", "Total error"),
        ("Renewed", "Renewed"),
        ("Tier", "Tier"),  # written for people already
        ("Average CLV", "Average CLV"),
        ("2024-25", "2024-25"),
        (3, 3),
    ],
)
def test_heading(name: object, expected: object) -> None:
    assert heading(name) == expected


def test_styled_table_shows_plain_headings_and_leaves_the_frame_alone() -> None:
    df = pd.DataFrame(
        {"tier": ["Loyal", "Regular"], "ticket_revenue": [1234.5, 99.0], "up_rate": [0.25, -0.024]}
    ).set_index("tier")
    html = styled_table(df, money=["ticket_revenue"], pct=["up_rate"]).to_html()
    for text in ("Ticket revenue", "Up rate", "Tier", "£1,234", "25.0%", "\u22122.4%"):
        assert text in html, text
    assert "ticket_revenue" not in html.replace('id="T_', "")
    assert list(df.columns) == ["ticket_revenue", "up_rate"] and df.index.name == "tier"


def test_text_columns_read_from_the_left() -> None:
    df = pd.DataFrame({"persona": ["Weekend families"], "customers": [2650]})
    html = styled_table(df).to_html()
    assert "text-align: left" in html
    assert html.count("text-align: left") == 2  # the persona column and its heading only
    assert "th.col_heading.col0" in html and "th.col_heading.col1" not in html
    assert "_row0_col1" not in html.split("text-align: left")[-2]  # col1 not left-aligned


def _nowrap_columns(html: str) -> set[int]:
    """Positions of the columns whose cells the table's CSS keeps on one line."""
    rules = re.findall(r"td\.col(\d+) \{\s*white-space: nowrap;", html)
    return {int(i) for i in rules}


def test_dates_and_figures_do_not_wrap_but_text_does() -> None:
    df = pd.DataFrame(
        {
            "table": ["customers", "consents"],
            "from": ["2022-09-01", "–"],  # ISO dates as text, a hidden one
            "first_seen": ["1 Sep 2022", "Sep 2022"],
            "on": pd.to_datetime(["2022-09-01", "2023-08-31"]),
            "season": ["2024-25", "2025-26"],
            "change": ["+15.1%", "\u22122.4%"],
            "ticket_revenue": [1234.5, 99.0],
            "customers": [5000, 20],
            "unlocks": ["households, postcode districts and birthdays", "consent-aware lists"],
        }
    )
    html = styled_table(df, money=["ticket_revenue"]).to_html()
    assert _nowrap_columns(html) == {1, 2, 3, 4, 5, 6, 7}  # all but the two text columns


def test_text_that_only_looks_short_still_wraps() -> None:
    df = pd.DataFrame(
        {
            "ladder": ["Lapsed 51%, First-timer 33%", "Champion 48%, Loyal 37%"],
            "market": ["Market", "March hares"],
            "price_band": ["C (48%)", "A (20%)"],
        }
    )
    assert _nowrap_columns(styled_table(df).to_html()) == set()


def test_a_date_index_does_not_wrap() -> None:
    df = pd.DataFrame({"Email": [12, 3]}, index=pd.Index(["2026-08-31", "2026-09-07"], name="week"))
    html = styled_table(df).to_html()
    assert re.search(r"th\.row_heading \{\s*white-space: nowrap;", html)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("box_office", "Box office"),
        ("phone_call", "Phone call"),
        ("web", "Web"),
        ("online", "Online"),
        ("email", "Email"),
        ("post", "Post"),
        ("sms", "SMS"),
        ("phone", "Phone"),
        ("seat_note", "Seat note"),  # not listed: its words
        ("Other (small groups)", "Other (small groups)"),  # written for people already
        ("Letter", "Letter"),
    ],
)
def test_channel_words(raw: str, shown: str) -> None:
    assert channel_words(raw) == shown


def test_channel_words_prefers_the_organisations_labels() -> None:
    assert channel_words("post", {"post": "Letter"}) == "Letter"
    assert channel_words(pd.NA) is pd.NA


def test_a_shown_channel_table_reads_in_plain_words(monkeypatch: pytest.MonkeyPatch) -> None:
    df = pd.DataFrame(
        {
            "channel": ["online", "box_office", "phone", "Other (small groups)"],
            "first_timers": [1972, 308, 256, 12],
        }
    )
    df.attrs["footnote"] = '"box_office" is hidden too (in whole or in part).'
    shown: list[object] = []
    monkeypatch.setattr("playbook.report.display", shown.append)
    show(df)
    html = shown[0].to_html()
    for words in ("Online", "Box office", "Phone", "Other (small groups)"):
        assert f">{words}</td>" in html, words
    assert "box_office" not in html and ">online<" not in html
    assert isinstance(shown[1], Markdown) and '"Box office" is hidden' in shown[1].data
    assert df["channel"].tolist()[:2] == ["online", "box_office"]  # the caller's frame stays


def test_table_ids_are_numbered_not_random() -> None:
    # pandas gives each styled table a random id, so two renders of the same page
    # differed; the ids are now numbered in the order tables are shown
    df = pd.DataFrame({"a": [1, 2]})
    first, second = styled_table(df).to_html(), styled_table(df).to_html()
    ids = [re.findall(r'id="T_(\w+?)_', html) for html in (first, second)]
    n = int(ids[0][0][1:])
    assert set(ids[0]) == {f"t{n}"} and set(ids[1]) == {f"t{n + 1}"}
