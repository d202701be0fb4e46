"""Report tables: headings in plain words, formatted cells, the caller's frame untouched."""

from __future__ import annotations

import pandas as pd
import pytest

from playbook.report import heading, styled_table


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
    assert "th.col_heading.col0" in html and "col1 {" not in html
