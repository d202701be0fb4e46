"""The data audit's shared ticket facts: made once per loaded tables, never changed by a reader."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from playbook import audit, report


def test_ticket_facts_are_made_once_and_each_reader_gets_its_own_copy(
    small_org: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = report.start(small_org, "", tmp_path / "out")
    made = []
    build = audit._ticket_facts
    monkeypatch.setattr(audit, "_ticket_facts", lambda *a: made.append(1) or build(*a))
    overview = audit.season_overview(ctx)
    audit.artform_by_season(ctx)
    audit.artform_by_season(ctx, value="tickets")
    assert len(made) == 1
    first = audit.ticket_facts(ctx.tables, ctx.config.season_start_month)
    first["season"] = "changed"
    first.loc[first.index[0], "paid_amount"] = -1.0
    again = audit.ticket_facts(ctx.tables, ctx.config.season_start_month)
    pd.testing.assert_frame_equal(again, build(ctx.tables, ctx.config.season_start_month))
    pd.testing.assert_frame_equal(audit.season_overview(ctx), overview)
    # another season start is another view
    other = audit.ticket_facts(ctx.tables, 1)
    assert len(made) == 2 and not other["season"].equals(again["season"])


def test_first_season_has_no_new_customer_count(small_org: Path, tmp_path: Path) -> None:
    """Everyone in the first season of the records would count as new: shown as unknown."""
    ctx = report.start(small_org, "", tmp_path / "out")
    overview = audit.season_overview(ctx)
    facts = audit.ticket_facts(ctx.tables, ctx.config.season_start_month)
    first = facts.groupby("customer_id")["season"].min().value_counts()
    assert pd.isna(overview.loc[0, "new_customers"])
    assert overview.loc[0, "season"] in overview.attrs["footnote"]
    later = overview.iloc[1:].set_index("season")["new_customers"]
    assert later.to_dict() == {s: int(first.get(s, 0)) for s in later.index}
    assert (later.dropna() < overview.iloc[1:].set_index("season")["customers"]).all()


def test_analyses_say_nothing_more_is_needed_when_all_tables_are_there(
    small_org: Path, tmp_path: Path
) -> None:
    ctx = report.start(small_org, "", tmp_path / "out")
    table = audit.unlocked_analyses(ctx.tables)
    assert (table.loc[table["available"] == "yes", "needs"] == "nothing more").all()
    assert (table["needs"] != "").all()


def test_a_season_of_a_few_customers_shows_no_figures_about_them(
    tiny_org: Path, tmp_path: Path
) -> None:
    from playbook.intake import run_intake

    run_intake(tiny_org, today="2025-01-01")
    ctx = report.start(tiny_org, "", tmp_path / "out")
    overview = audit.season_overview(ctx)
    assert len(overview) == 1  # 2024-25, three customers
    row = overview.iloc[0]
    for c in ("customers", "new_customers", "tickets", "ticket_revenue"):
        assert pd.isna(row[c]), c
    fig = audit.attendance_chart(ctx)
    assert fig is not None


def test_a_season_in_progress_is_reported_as_of_the_data_end(
    small_org: Path, tmp_path: Path
) -> None:
    from playbook.schema import OrderLines as OL

    done = report.start(small_org, "", tmp_path / "out")
    last = done.tables.order_lines[OL.purchase_time].max()
    # the default season: the data end within 60 days of its end, so it counts as complete
    assert done.season_end - last < pd.Timedelta(days=60)
    assert done.data_end == last.normalize() + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    assert not done.in_progress and done.as_of == done.season_end - pd.Timedelta(seconds=1)
    # the same data cut four months before the season's end: still in progress, and
    # nothing is dated after the last day with a purchase
    cut = last - pd.DateOffset(months=4)
    end = cut.normalize() + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    early = dataclasses.replace(done, data_end=end)
    assert early.in_progress and early.as_of == end
