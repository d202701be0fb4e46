"""The season report: statuses at every band edge, changes, findings, no previous season,
and notebook 90 rendered end to end."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_FILES, TINY_ORG_YAML, write_org

from playbook import report, scorecard
from playbook.intake import run_intake
from playbook.render import render_season
from playbook.scorecard import judge_status, yoy_change

SETTINGS = scorecard.scorecard_settings()
WORDS = scorecard.status_words(SETTINGS)


# ---------------------------------------------------------------------------
# Status against the target bands, at each boundary
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.10, "on target"),  # the low edge is inside
        (0.15, "on target"),  # the high edge is inside
        (0.125, "on target"),
        (0.0999, "below target"),
        (0.1501, "above target"),
        (-0.30, "below target"),
    ],
)
def test_cltv_band_edges(value: float, expected: str) -> None:
    assert judge_status(value, 0.10, 0.15) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.05, "on target"),
        (0.10, "on target"),
        (0.0499, "below target"),
        (0.1001, "above target"),
    ],
)
def test_engagement_band_edges(value: float, expected: str) -> None:
    assert judge_status(value, 0.05, 0.10) == expected


@pytest.mark.parametrize(
    ("value", "low", "high", "expected"),
    [
        (0.08, 0.08, 0.12, "on target"),  # entry → mid
        (0.12, 0.08, 0.12, "on target"),
        (0.0799, 0.08, 0.12, "below target"),
        (0.1201, 0.08, 0.12, "above target"),
        (0.02, 0.02, 0.05, "on target"),  # mid → top
        (0.05, 0.02, 0.05, "on target"),
        (0.0199, 0.02, 0.05, "below target"),
        (0.0501, 0.02, 0.05, "above target"),
    ],
)
def test_conversion_band_edges(value: float, low: float, high: float, expected: str) -> None:
    assert judge_status(value, low, high) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-0.20, "on target"),
        (-0.15, "on target"),
        (-0.2001, "above target"),  # churn fell by more than the band: better
        (-0.1499, "below target"),  # fell by less than the band
        (0.05, "below target"),  # churn rose
    ],
)
def test_churn_band_edges_lower_is_better(value: float, expected: str) -> None:
    assert judge_status(value, -0.20, -0.15, lower_is_better=True) == expected


def test_computed_changes_exactly_on_an_edge_are_on_target() -> None:
    # 110 / 100 - 1 is 0.10000000000000009 in floating point: still on the edge
    assert judge_status(yoy_change(110.0, 100.0), 0.10, 0.15) == "on target"
    assert judge_status(yoy_change(115.0, 100.0), 0.10, 0.15) == "on target"
    assert judge_status(yoy_change(0.17, 0.20), -0.20, -0.15, lower_is_better=True) == "on target"
    assert judge_status(yoy_change(0.16, 0.20), -0.20, -0.15, lower_is_better=True) == "on target"


def test_status_words_come_from_the_settings() -> None:
    words = {"above_target": "ahead", "below_target": "behind"}
    assert judge_status(0.2, 0.10, 0.15, words=words) == "ahead"
    assert judge_status(0.0, 0.10, 0.15, words=words) == "behind"
    assert judge_status(np.nan, 0.10, 0.15) == "no data"


def test_target_bands_are_read_from_the_yaml() -> None:
    assert scorecard.kpi_target("cltv", "loyal", SETTINGS) == (0.10, 0.15)
    assert scorecard.kpi_target("engagement", "champion", SETTINGS) == (0.05, 0.10)
    assert scorecard.kpi_target("conversion", "first_timer", SETTINGS) == (0.08, 0.12)
    assert scorecard.kpi_target("conversion", "returner", SETTINGS) == (0.08, 0.12)
    assert scorecard.kpi_target("conversion", "regular", SETTINGS) == (0.02, 0.05)
    assert scorecard.kpi_target("conversion", "champion", SETTINGS) is None  # top band
    assert scorecard.kpi_target("churn", "regular", SETTINGS) == (-0.20, -0.15)
    assert scorecard.kpi_target("churn", "lapsed", SETTINGS) is None
    sources = {b["source"] for b in SETTINGS["first_timer_benchmarks"]}
    assert {"TRG Arts 2016", "Spektrix", "Oliver Wyman"} <= sources
    assert [b["low"] for b in SETTINGS["retention_benchmarks"]] == [0.31, 0.33]


# ---------------------------------------------------------------------------
# Year-on-year change
# ---------------------------------------------------------------------------
def test_yoy_change() -> None:
    assert yoy_change(112, 100) == pytest.approx(0.12)
    assert yoy_change(80, 100) == pytest.approx(-0.20)
    assert yoy_change(0.30, 0.40) == pytest.approx(-0.25)  # a rate: relative, not points
    assert np.isnan(yoy_change(5, 0))  # no base to compare with
    assert np.isnan(yoy_change(5, np.nan))
    assert np.isnan(yoy_change(np.nan, 5))
    assert np.isnan(yoy_change(5, None))
    s = yoy_change(pd.Series([110.0, 50.0, 1.0]), pd.Series([100.0, 100.0, 0.0]))
    assert s.iloc[0] == pytest.approx(0.10) and s.iloc[1] == pytest.approx(-0.5)
    assert np.isnan(s.iloc[2])


# ---------------------------------------------------------------------------
# Figures per tier, on hand-made customers
# ---------------------------------------------------------------------------
def _tiers(mapping: dict[str, str]) -> pd.Series:
    return pd.Series(list(mapping.values()), index=list(mapping))


def test_measure_tiers_on_hand_made_customers() -> None:
    # ten first-timers (f0…f9), four regulars (r0…r3), two lapsed (l0, l1)
    start = _tiers(
        {f"f{i}": "first_timer" for i in range(10)}
        | {f"r{i}": "regular" for i in range(4)}
        | {"l0": "lapsed", "l1": "lapsed"}
    )
    end = _tiers(
        {f"f{i}": "first_timer" for i in range(10)}
        | {"f0": "returner", "f1": "regular", "f2": "champion"}  # f1 and f2 moved up a band
        | {"r0": "champion", "r1": "regular", "r2": "loyal", "r3": "lapsed"}
        | {"l0": "lapsed", "l1": "returner", "n0": "first_timer"}  # n0 is new
    )
    engaged = ["f0", "f1", "f2", "f3", "r0", "r1", "l1", "n0"]
    visited = ["f0", "f1", "f2", "r0", "r1", "r2", "l1", "n0"]
    clv = pd.Series({"f3": 10.0, "f4": 30.0, "r0": 500.0, "r1": 100.0, "n0": 20.0})
    m = scorecard.measure_tiers(start, end, engaged, visited, clv, SETTINGS)
    assert m.loc["first_timer", "customers_start"] == 10
    assert m.loc["first_timer", "engagement"] == pytest.approx(0.4)
    assert m.loc["first_timer", "conversion"] == pytest.approx(0.2)  # f1, f2
    assert m.loc["first_timer", "churn"] == pytest.approx(0.7)
    assert m.loc["regular", "engagement"] == pytest.approx(0.5)
    assert m.loc["regular", "conversion"] == pytest.approx(0.25)  # r0 reached the top band
    assert m.loc["regular", "churn"] == pytest.approx(0.25)  # r3 made no visit
    assert m.loc["lapsed", "engagement"] == pytest.approx(0.5)
    assert np.isnan(m.loc["lapsed", "churn"]) and np.isnan(m.loc["champion", "conversion"])
    assert m.loc["all", "customers_start"] == 14  # the ladder, lapsed left out
    assert m.loc["all", "churn"] == pytest.approx(8 / 14)
    # lifetime value is about the tiers at the season end
    assert m.loc["first_timer", "customers_end"] == 8  # f3…f9 and n0
    assert m.loc["first_timer", "cltv"] == pytest.approx(20.0)  # mean of f3, f4, n0
    assert m.loc["champion", "cltv"] == pytest.approx(500.0)
    assert m.attrs["start_known"] and m.attrs["clv_known"]


def _frame(**rows: dict[str, float]) -> pd.DataFrame:
    """A hand-made measure_tiers result: tier → figures (missing tiers empty)."""
    cols = ["customers_start", "engagement", "conversion", "churn", "customers_end", "cltv"]
    out = pd.DataFrame(0.0, index=pd.Index(scorecard.ROW_ORDER, name="tier"), columns=cols)
    out[["engagement", "conversion", "churn", "cltv"]] = np.nan
    for tier, figures in rows.items():
        for k, v in figures.items():
            out.loc[tier, k] = v
    for c in ("customers_start", "customers_end"):
        out[c] = out[c].astype("int64")
    out.attrs["start_known"] = True
    return out


def _row(card: pd.DataFrame, tier: str, kpi: str) -> pd.Series:
    return card.loc[(card["tier"] == tier) & (card["kpi"] == kpi)].iloc[0]


def test_scorecard_changes_statuses_and_masking() -> None:
    big = {"customers_start": 200, "customers_end": 220}
    current = _frame(
        regular=big | {"cltv": 115.0, "engagement": 0.46, "conversion": 0.019, "churn": 0.51},
        returner=big | {"cltv": 50.0, "engagement": 0.30, "conversion": 0.13, "churn": 0.60},
        loyal={"customers_start": 6, "customers_end": 7, "cltv": 300.0, "engagement": 0.9},
    )
    previous = _frame(
        regular=big | {"cltv": 100.0, "engagement": 0.40, "conversion": 0.03, "churn": 0.60},
        returner=big | {"cltv": 50.0, "engagement": 0.20, "conversion": 0.10, "churn": 0.60},
        loyal={"customers_start": 50, "customers_end": 50, "cltv": 250.0, "engagement": 0.8},
    )
    card = scorecard.build_scorecard(
        current, previous, season="2024-25", previous_label="2023-24", min_group=10
    )
    assert list(card.columns) == scorecard.CARD_COLUMNS
    r = _row(card, "regular", "cltv")
    assert r["change"] == pytest.approx(0.15) and r["status"] == "on target"
    assert _row(card, "regular", "engagement")["status"] == "above target"  # +15%
    assert _row(card, "regular", "engagement")["change"] == pytest.approx(0.15)
    assert _row(card, "regular", "conversion")["status"] == "below target"  # 1.9% < 2%
    churn = _row(card, "regular", "churn")
    assert churn["change"] == pytest.approx(-0.15) and churn["status"] == "on target"
    assert _row(card, "returner", "cltv")["status"] == "below target"  # flat
    assert _row(card, "returner", "engagement")["status"] == "above target"  # +50%
    assert _row(card, "returner", "conversion")["status"] == "above target"  # 13% > 12%
    assert _row(card, "returner", "churn")["status"] == "below target"  # no fall
    # fewer customers than the threshold: figures hidden, never judged
    small = _row(card, "loyal", "cltv")
    assert pd.isna(small["customers"]) and np.isnan(small["value"])
    assert small["status"] == "too few customers"
    # an empty tier shows 0 customers; the top band has no conversion target
    assert _row(card, "champion", "cltv")["customers"] == 0
    assert _row(card, "champion", "cltv")["status"] == "no customers"
    assert _row(card, "champion", "conversion")["status"] == "–"
    assert _row(card, "lapsed", "churn")["status"] == "–"


def test_scorecard_engagement_edge_is_inclusive() -> None:
    # 0.44 / 0.40 - 1 = 0.10000000000000009: on the high edge, so on target
    big = {"customers_start": 100, "customers_end": 100}
    current = _frame(regular=big | {"engagement": 0.44})
    previous = _frame(regular=big | {"engagement": 0.40})
    card = scorecard.build_scorecard(current, previous)
    assert _row(card, "regular", "engagement")["status"] == "on target"


def test_scorecard_without_a_previous_season() -> None:
    big = {"customers_start": 0, "customers_end": 50, "cltv": 80.0}
    current = _frame(first_timer=big)
    current.attrs["start_known"] = False  # nobody had a tier before this season
    card = scorecard.build_scorecard(current, None, season="2024-25")
    assert set(card.loc[card["kpi"] == "engagement", "status"]) == {"no previous season"}
    r = _row(card, "first_timer", "cltv")
    assert r["value"] == 80.0 and np.isnan(r["change"]) and r["status"] == "no previous season"
    assert set(card.loc[card["kpi"] == "conversion", "status"]) <= {"no previous season", "–"}


# ---------------------------------------------------------------------------
# Findings: sentences from a hand-made scorecard
# ---------------------------------------------------------------------------
def _hand_card() -> pd.DataFrame:
    rows = [
        # tier sizes (the CLTV rows carry customers at the season end)
        ("returner", "Returner", "cltv", 1120, 50.0, 1000, 50.0, 0.0, "below target"),
        ("regular", "Regular", "cltv", 500, 110.0, 520, 100.0, 0.10, "on target"),
        ("first_timer", "First-timer", "cltv", 3000, 40.0, 3100, 40.0, 0.0, "below target"),
        ("regular", "Regular", "churn", 520, 0.66, 500, 0.60, 0.10, "below target"),
        ("returner", "Returner", "conversion", 1000, 0.15, 900, 0.10, 0.5, "above target"),
        ("first_timer", "First-timer", "engagement", 3100, 0.2, 3000, 0.2, 0.0, "below target"),
    ]
    card = pd.DataFrame(
        rows,
        columns=[
            "tier",
            "tier_label",
            "kpi",
            "customers",
            "value",
            "previous_customers",
            "previous_value",
            "change",
            "status",
        ],
    )
    low_high = {
        "cltv": (0.10, 0.15),
        "churn": (-0.20, -0.15),
        "conversion": (0.08, 0.12),
        "engagement": (0.05, 0.10),
    }
    card["target_low"] = [low_high[k][0] for k in card["kpi"]]
    card["target_high"] = [low_high[k][1] for k in card["kpi"]]
    card["judged_on"] = ["rate" if k == "conversion" else "change" for k in card["kpi"]]
    for c in ("customers", "previous_customers"):
        card[c] = card[c].astype("Int64")
    return card


def _hand_headline() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "measure": ["customers", "new_customers", "ticket_revenue"],
            "label": ["Customers", "New customers", "Ticket revenue"],
            "this_season": [5200.0, 2300.0, 180000.0],
            "previous_season": [5000.0, 2000.0, 200000.0],
            "change": [0.04, 0.15, -0.10],
            "money": [False, False, True],
        }
    )


def test_findings_sentences_from_a_hand_made_scorecard() -> None:
    sector = scorecard.sector_comparison(
        {"2023-24": (0.25, 400)}, {"2023-24 → 2024-25": (0.33, 900)}, settings=SETTINGS
    )
    found = scorecard.write_findings(
        _hand_card(), _hand_headline(), sector, settings=SETTINGS, currency="GBP"
    )
    assert found == [
        "New customers rose 15% on last season (2,000 → 2,300), the largest change among the "
        "headline figures.",
        "The Returner tier grew 12% on last season (1,000 → 1,120 customers), the largest "
        "change among the tiers.",
        # a rate's change: the move in points and the relative change the target judges
        "The biggest pit: churn in the Regular tier rose from 60.0% to 66.0% on last season "
        "(6.0 points, a relative rise of 10.0%), against a target of a fall of 15% to 20%.",
        "The strongest result: conversion from the Returner tier to the next band was 15%, "
        "against a target of 8% to 12%.",
        "2 of 6 scorecard measures that could be judged are on target or above.",
        "Of the first-timers of 2023-24, 25% came back within 12 months: a non-return rate of "
        "75%, within the range of published sector figures (70% to 90% do not return).",
    ]


def test_findings_use_the_currency_and_say_when_money_moved_most() -> None:
    headline = _hand_headline()
    headline.loc[2, "change"] = -0.30
    headline.loc[2, "this_season"] = 140000.0
    found = scorecard.write_findings(_hand_card().iloc[:0], headline, currency="EUR")
    assert found == [
        "Ticket revenue fell 30% on last season (€200,000 → €140,000), the largest change "
        "among the headline figures."
    ]


def test_findings_without_a_previous_season() -> None:
    headline = _hand_headline().assign(previous_season=np.nan, change=np.nan)
    found = scorecard.write_findings(_hand_card().iloc[:0], headline)
    assert len(found) == 1 and "no previous season" in found[0]


def test_sector_comparison_masks_small_cohorts_and_skips_empty_ones() -> None:
    sector = scorecard.sector_comparison(
        {"2023-24": (0.5, 4), "2022-23": (np.nan, 0)}, {}, settings=SETTINGS, min_group=10
    )
    own = sector.loc[sector["who"] == "this organisation"]
    assert list(own["cohort"]) == ["2023-24"]  # nobody to follow in 2022-23: no row
    assert np.isnan(own["low"].iloc[0]) and pd.isna(own["customers"].iloc[0])


# ---------------------------------------------------------------------------
# An organisation with one season only: no previous season anywhere
# ---------------------------------------------------------------------------
@pytest.fixture
def one_season_org(tmp_path: Path) -> Path:
    """Three customers: the threshold is 1 so the hand-worked figures can be read."""
    org = write_org(
        tmp_path / "tiny", TINY_FILES, TINY_ORG_YAML + "privacy:\n  suppression_min_group: 1\n"
    )
    run_intake(org, today="2025-01-01")
    return org


def test_report_for_an_organisation_with_one_season(one_season_org: Path, tmp_path: Path) -> None:
    ctx = report.start(one_season_org, "", tmp_path / "out")
    sr = scorecard.build_season_report(ctx)
    assert sr.season == "2024-25" and sr.previous is None
    h = sr.headline.set_index("measure")
    assert h.loc["customers", "this_season"] == 2  # 1002's only ticket was returned
    assert h.loc["ticket_revenue", "this_season"] == pytest.approx(85.0)
    assert h["previous_season"].isna().all() and h["change"].isna().all()
    assert np.isnan(h.loc["attendance", "this_season"])  # no attendance export: missing, not 0
    assert not sr.card.empty
    assert "no previous season" in set(sr.card["status"])
    assert not set(sr.card["status"]) & {"on target", "above target", "below target"}
    assert "previous season" in sr.findings[0]
    assert "returns" in sr.notes  # no earlier cohort of first-timers to follow
    paths = scorecard.export_report(sr, ctx.output_dir)
    assert [p.name for p in paths] == ["scorecard.csv", "headline.html"]
    csv = pd.read_csv(paths[0])
    assert list(csv.columns) == scorecard.CARD_COLUMNS and len(csv) == len(sr.card)
    fragment = paths[1].read_text(encoding="utf-8")
    assert "no previous season" in fragment and "£85" in fragment


# ---------------------------------------------------------------------------
# Notebook 90, rendered on the small generated organisation
# ---------------------------------------------------------------------------
def test_notebook_90_renders_on_the_small_organisation(small_org: Path, tmp_path: Path) -> None:
    result = render_season(small_org, reports_root=tmp_path / "reports", only=["90"])
    out = result.output_dir
    assert result.notebooks == ["90_season_report.ipynb"]
    executed = nbformat.read(out / "90_season_report.ipynb", as_version=4)
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", output.get("evalue")
            assert output.get("name") != "stderr", output.get("text", "")[:300]
    page = (out / "90_season_report.html").read_text(encoding="utf-8")
    assert "hl-ipython3" not in page and "Traceback" not in page
    assert "Maturity scorecard" in page or "maturity scorecard" in page
    assert "could not be worked out" not in page  # every part worked on this organisation

    card = pd.read_csv(out / "scorecard.csv")
    assert list(card.columns) == scorecard.CARD_COLUMNS
    assert set(card["kpi"]) == set(scorecard.KPIS)
    assert {"champion", "first_timer", "all"} <= set(card["tier"])
    judged = card["status"].isin(["on target", "above target", "below target"])
    assert judged.any()
    assert card.loc[judged, "value"].notna().all()
    # small-group suppression: a shown figure rests on at least min_group customers
    shown = card.dropna(subset=["value"])
    assert (shown["customers"] >= 10).all()
    assert not card.columns.str.contains("customer_id").any()

    headline = (out / "headline.html").read_text(encoding="utf-8")
    assert "at a glance" in headline and "customers" in headline
    assert 2 <= headline.count("<li>") <= 4
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<div class="headline">' in index and "at a glance" in index
    assert 'href="scorecard.csv"' in index


def test_notebook_90_parameters_cell() -> None:
    from playbook.render import default_notebooks_dir

    nb = nbformat.read(default_notebooks_dir() / "90_season_report.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    tree = ast.parse(params[0].source)
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
    }
    assert values == {
        "org_dir": "../data/demo",
        "season": "",
        "output_dir": "../reports/demo/latest",
    }
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "ctx = report.start(org_dir, season, output_dir)" in code
    assert "def " not in code and "class " not in code
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    json.dumps(nb)  # plain JSON, committed stripped


def test_tier_bands_and_targets_have_one_home(tmp_path: Path) -> None:
    from conftest import TINY_ORG_YAML
    from test_journey import HISTORY

    from playbook.config import load_org
    from playbook.errors import ConfigError
    from playbook.journey import tier_conversion

    extra = "tiers:\n  targets:\n    conversion_mid: [0.40, 0.60]\n    cltv_change: [0.0, 0.05]\n"
    org = write_org(tmp_path / "one", {}, TINY_ORG_YAML + extra)
    cfg = load_org(org)
    s = scorecard.scorecard_settings(cfg)
    assert scorecard.kpi_target("conversion", "regular", s) == (0.40, 0.60)
    assert scorecard.kpi_target("cltv", "loyal", s) == (0.0, 0.05)
    assert scorecard.kpi_target("conversion", "returner", s) == (0.08, 0.12)  # default kept
    # the journey notebook reads the same setting: c4 loyal -> champion, 0.5 of the mid band
    conv = tier_conversion(HISTORY, cfg, min_group=1).set_index("step")
    assert (conv.loc["mid → top", "target_low"], conv.loc["mid → top", "target_high"]) == (
        0.40,
        0.60,
    )
    assert conv.loc["mid → top", "verdict"] == "within the target band"
    # the old places are refused with a pointer to the new one
    old = "journey:\n  tier_bands:\n    entry: [first_timer]\n"
    with pytest.raises(ConfigError, match=r"'journey.tier_bands' is now 'tiers.bands'"):
        load_org(write_org(tmp_path / "old", {}, TINY_ORG_YAML + old))


def test_one_clv_for_the_scorecard_the_moments_and_the_clv_notebook(
    small_org: Path, tmp_path: Path
) -> None:
    """The scorecard, the at-risk moment and notebook 40 read the same predictions."""
    from playbook.clv import clv_settings, fit_clv, predict_clv
    from playbook.moments.views import clv_snapshot

    ctx = report.start(small_org, "", tmp_path / "out")
    end = ctx.as_of.normalize()
    cs = clv_settings(ctx.config)
    run = fit_clv(ctx.tables, end - pd.DateOffset(years=1), observation_end=end, settings=cs)
    snap = clv_snapshot(ctx)
    assert snap is not None
    pd.testing.assert_frame_equal(snap, run.predictions)
    by_customer = scorecard.clv_at(ctx, ctx.as_of)
    assert by_customer.index.tolist() == run.predictions["customer_id"].astype(str).tolist()
    assert (by_customer.to_numpy() == run.predictions["clv"].to_numpy()).all()
    # the spend model is used when its check passes (not each customer's own average)
    assert run.spend_check.ok and run.spend_model is not None
    with_spend = predict_clv(
        run.model,
        run.summary,
        spend_model=run.spend_model,
        horizon_months=cs.horizon_months,
        annual_discount_rate=cs.annual_discount_rate,
        margin=cs.margin,
        time_unit=cs.time_unit,
    )
    pd.testing.assert_frame_equal(snap, with_spend)


# ---------------------------------------------------------------------------
# The fast paths give what the plain pandas reading gives
# ---------------------------------------------------------------------------
def test_measure_tiers_reads_categories_duplicates_and_missing_tiers_alike() -> None:
    start = pd.Series(
        ["first_timer", "regular", "lapsed", None, "first_timer", "mystery", "all"],
        index=["a", "b", "c", "d", "a", "e", "g"],  # "a" twice: its first row counts
    )
    end = pd.Series(
        ["returner", "champion", "returner", "first_timer", "lapsed", "regular"],
        index=["a", "b", "c", "d", "e", "f"],
    )
    clv = pd.Series([5.0, 7.0, 1.0, 2.0, 9.0], index=["a", "b", "a", "d", "f"])
    engaged = pd.Index(["a", "c", "e", None], dtype="string")
    m = scorecard.measure_tiers(start, end, engaged, ["b", "e"], clv, SETTINGS)
    assert m.loc["first_timer", "customers_start"] == 1  # "a" once, "d" has no tier
    assert m.loc["all", "customers_start"] == 4  # a, b, e and g: every word but lapsed
    assert m.loc["first_timer", "conversion"] == 0.0  # a: first_timer → returner, same band
    assert m.loc["regular", "conversion"] == 1.0  # b: regular → champion
    assert m.loc["all", "engagement"] == pytest.approx(2 / 4)  # a, e
    assert m.loc["all", "churn"] == pytest.approx(2 / 4)  # a, g made no visit
    assert m.loc["returner", "cltv"] == 5.0  # a's first value; c has none
    assert m.loc["all", "cltv"] == pytest.approx((5.0 + 7.0 + 2.0 + 9.0) / 4)
    as_categories = scorecard.measure_tiers(
        start.astype("category"), end.astype("category"), engaged, ["b", "e"], clv, SETTINGS
    )
    pd.testing.assert_frame_equal(as_categories, m, check_exact=True)


def test_new_customers_count_first_seasons_like_groupby_min() -> None:
    rng = np.random.default_rng(3)
    n = 500
    facts = pd.DataFrame(
        {
            "customer_id": pd.array(
                [f"C{i}" if i % 37 else None for i in rng.integers(0, 120, n)], dtype="string"
            ),
            "season": pd.array(
                rng.choice(["2023-24", "2021-22", "2024-25", "2022-23", None], n), dtype="string"
            ),
        }
    )
    first = facts.groupby("customer_id")["season"].min()
    seasons = ["2024-25", "2023-24", "2021-22", "1999-00"]
    expected = {s: int((first == s).sum()) for s in seasons}
    assert scorecard._new_customers(facts, seasons) == expected
    assert scorecard._new_customers(facts.iloc[:0], seasons) == dict.fromkeys(seasons, 0)


def test_season_report_reuses_the_moments_lifetime_values(small_org: Path, tmp_path: Path) -> None:
    """The plan's season-end predictions stand in for clv_at: the same report either way."""
    ctx = report.start(small_org, "", tmp_path / "out")
    full = scorecard.build_season_report(ctx)
    alone = scorecard.build_season_report(
        report.start(small_org, "", tmp_path / "b"), with_moments=False
    )
    pd.testing.assert_frame_equal(full.card, alone.card, check_exact=True)
    assert full.card["value"].notna().any()
    assert full.findings == alone.findings
    assert "clv" not in full.notes and "moments" not in full.notes
    assert list(full.notes) == list(alone.notes)


def test_retention_counts_each_seasons_customers_once() -> None:
    facts = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "a", "b", None, "c", "a", None, "d"], dtype="string"),
            "season": pd.array(
                ["2023-24", "2023-24", "2023-24", "2023-24", "2024-25", "2024-25", "2024-25", None],
                dtype="string",
            ),
        }
    )
    got = scorecard._retention(facts, [("2023-24", "2024-25"), ("2022-23", "2023-24")])
    # a, b and the missing id in 2023-24; a and the missing id came back
    assert got["2023-24 → 2024-25"] == (pytest.approx(2 / 3), 3)
    rate, n = got["2022-23 → 2023-24"]
    assert np.isnan(rate) and n == 0


# ---------------------------------------------------------------------------
# Privacy: rates resting on a handful of customers, or on a hidden tier-flow cell
# ---------------------------------------------------------------------------
def _season_pair() -> tuple[pd.Series, pd.Series, list[str], list[str]]:
    """30 regulars (4 became champions), 40 loyal (20 became champions), 60 first-timers."""
    start = _tiers(
        {f"r{i}": "regular" for i in range(30)}
        | {f"y{i}": "loyal" for i in range(40)}
        | {f"f{i}": "first_timer" for i in range(60)}
    )
    end = _tiers(
        {f"r{i}": "champion" if i < 4 else "regular" for i in range(30)}
        | {f"y{i}": "champion" if i < 20 else "loyal" for i in range(40)}
        | {f"f{i}": "returner" if i < 30 else "first_timer" for i in range(60)}
    )
    engaged = (
        [f"r{i}" for i in range(3)] + [f"y{i}" for i in range(40)] + [f"f{i}" for i in range(30)]
    )
    visited = (
        [f"r{i}" for i in range(30)] + [f"y{i}" for i in range(25)] + [f"f{i}" for i in range(30)]
    )
    return start, end, engaged, visited


def test_scorecard_hides_rates_resting_on_a_small_group() -> None:
    start, end, engaged, visited = _season_pair()
    m = scorecard.measure_tiers(start, end, engaged, visited, None, SETTINGS)
    assert m.loc["regular", "converted_n"] == 4 and m.loc["regular", "conversion_n"] == 30
    moves = m.attrs["transitions"]
    assert moves.loc["regular", "champion"] == 4 and moves.loc["loyal", "champion"] == 20
    card = scorecard.build_scorecard(m, m, season="2024-25", previous_label="2023-24")
    conv = _row(card, "regular", "conversion")
    # 4 of 30 regulars became champions: 13.3% would say 4, a cell the table hides
    assert np.isnan(conv["value"]) and conv["status"] == "hidden (small group)"
    # the 20 loyal who became champions share the champions' column with the 4: the
    # table hides them too (else 4 = champions − 20), so loyal conversion is hidden
    assert np.isnan(_row(card, "loyal", "conversion")["value"])
    assert _row(card, "first_timer", "conversion")["value"] == 0  # nobody: shown
    # 3 of 30 regulars engaged: hidden, and the whole ladder with it (else it is the
    # ladder's engaged minus the other tiers')
    assert np.isnan(_row(card, "regular", "engagement")["value"])
    assert np.isnan(_row(card, "all", "engagement")["value"])
    # every regular visited (no one churned): 0% identifies no one and is shown
    assert _row(card, "regular", "churn")["value"] == 0
    # loyal churn 15 of 40: shown
    assert _row(card, "loyal", "churn")["value"] == pytest.approx(15 / 40)


def test_scorecard_hides_a_conversion_that_adds_up_a_complementary_cell() -> None:
    # 45 regulars: 25 became champions (a large cell), 15 stayed, 5 went down to
    # returner. The 5 is hidden, and the table hides the next smallest cell of its row
    # with it (the 15); conversion adds up only the 25, so it is shown.
    start = _tiers({f"r{i}": "regular" for i in range(45)})
    end = _tiers(
        {f"r{i}": "champion" if i < 25 else "regular" if i < 40 else "returner" for i in range(45)}
    )
    m = scorecard.measure_tiers(start, end, [], [], None, SETTINGS)
    h = scorecard.hidden_rates(m, 10, SETTINGS)
    assert not h.loc["regular", "conversion"]
    # with 6 champions instead, the conversion cell itself is hidden
    end = _tiers(
        {f"r{i}": "champion" if i < 6 else "regular" if i < 40 else "returner" for i in range(45)}
    )
    m = scorecard.measure_tiers(start, end, [], [], None, SETTINGS)
    assert scorecard.hidden_rates(m, 10, SETTINGS).loc["regular", "conversion"]


def test_status_is_decided_on_the_figure_as_printed() -> None:
    big = {"customers_start": 1763, "customers_end": 1763}
    # 89 of 1,763 = 5.048%, printed 5.0%: on target for a band of 2% to 5%
    current = _frame(regular=big | {"conversion": 89 / 1763})
    card = scorecard.build_scorecard(current, None)
    assert _row(card, "regular", "conversion")["status"] == "on target"
    current = _frame(regular=big | {"conversion": 0.0506})  # printed 5.1%
    assert _row(scorecard.build_scorecard(current, None), "regular", "conversion")["status"] == (
        "above target"
    )


def test_changes_are_signed_and_in_points_for_rates() -> None:
    churn = {"kpi": "churn", "value": 0.571, "previous_value": 0.470, "change": 0.571 / 0.47 - 1}
    assert scorecard.change_text(churn) == "+21.5% (+10.1 points)"
    conv = {"kpi": "conversion", "value": 0.076, "previous_value": 0.110, "change": -0.309}
    assert scorecard.change_text(conv) == "−3.4 points"
    cltv = {"kpi": "cltv", "value": 84.0, "previous_value": 100.0, "change": -0.16}
    assert scorecard.change_text(cltv) == "−16.0%"
    assert scorecard.signed_pct(-0.005) == "−0.5%" and scorecard.signed_pct(0.031) == "+3.1%"
    sr = scorecard.SeasonReport(
        org="x",
        season="2025-26",
        previous="2024-25",
        currency="GBP",
        min_group=10,
        settings=SETTINGS,
        headline=_hand_headline().assign(change=[-0.005, 0.031, -0.046]),
        card=pd.DataFrame(columns=scorecard.CARD_COLUMNS),
    )
    people, money = scorecard.headline_tables(sr)
    assert people["change"].tolist() == ["−0.5%", "+3.1%"]
    assert money["change"].tolist() == ["−4.6%"]
    assert not any("-" in str(v) for v in people["change"])  # a true minus, never a hyphen


def test_season_report_says_what_the_journeys_leave_out() -> None:
    text = scorecard._left_out_text(
        {
            "customers": 6071,
            "in_journeys": 6007,
            "anonymised": 64,
            "other": 0,
            "new": 3542,
            "new_in_journeys": 3502,
        }
    )
    assert text == (
        "The journey-mapping page counts 6,007 customers and 3,502 new customers for this "
        "season: it leaves out the 64 customers (40 of them new this season) whose customer "
        "records are anonymised (personal data erased on request)."
    )


def test_scorecard_reads_the_same_transition_table_as_the_journey_page() -> None:
    from playbook import journey, tiers

    start, end, engaged, visited = _season_pair()
    end = pd.concat([end, _tiers({"n0": "first_timer", "n1": "returner"})])  # new customers
    m = scorecard.measure_tiers(start, end, engaged, visited, None, SETTINGS)
    history = pd.DataFrame(
        {
            "customer_id": [*start.index, *end.index],
            "season": ["2023-24"] * len(start) + ["2024-25"] * len(end),
            "tier": [*start, *end],
        }
    ).astype({"customer_id": "string", "season": "string", "tier": tiers.tier_dtype()})
    table = journey.transition_matrix(history, "2023-24", "2024-25")
    assert (m.attrs["transitions"].to_numpy() == table.to_numpy()).all()
    assert list(m.attrs["transitions"].index) == list(table.index)


def test_headline_hides_counts_of_a_few_people_and_their_figures() -> None:
    """One donor's gift of £22 must not be printed; a big season's figures stay."""
    values = {
        "customers": {"2024-25": 120, "2023-24": 4},
        "new_customers": {"2024-25": 9, "2023-24": 4},
        "tickets": {"2024-25": 300, "2023-24": 6},
        "ticket_revenue": {"2024-25": 4000.0, "2023-24": 80.0},
        "attendance": {"2024-25": 280, "2023-24": 5},
        "members": {"2024-25": 0, "2023-24": 1},
        "donors": {"2024-25": 12, "2023-24": 1},
        "donations": {"2024-25": 900.0, "2023-24": 22.0},
    }
    scorecard._hide_small_headlines(values, 10)
    shown = {k: {s: v for s, v in by.items() if not pd.isna(v)} for k, by in values.items()}
    assert shown == {
        "customers": {"2024-25": 120},
        "new_customers": {},  # 9 this season: too few
        "tickets": {"2024-25": 300},
        "ticket_revenue": {"2024-25": 4000.0},
        "attendance": {"2024-25": 280},
        "members": {"2024-25": 0},  # nobody identifies nobody
        "donors": {"2024-25": 12},
        "donations": {"2024-25": 900.0},
    }


def test_tiny_season_report_prints_no_figure_of_a_few_people(tmp_path: Path) -> None:
    org = write_org(tmp_path / "tiny", TINY_FILES)
    run_intake(org, today="2025-01-01")
    ctx = report.start(org, "", tmp_path / "out")
    h = scorecard.headline_figures(ctx, None).set_index("measure")
    assert h["this_season"].isna().all()  # three customers: nothing to print
    sr = scorecard.build_season_report(ctx)
    assert "fewer than 10 customers" in scorecard.headline_html(sr)
    assert "nan" not in scorecard.headline_html(sr)
