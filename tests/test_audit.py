"""The data audit's shared ticket facts: made once per loaded tables, never changed by a reader."""

from __future__ import annotations

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
