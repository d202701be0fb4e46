"""Notebook 40's helpers (playbook.clv_report) on hand-made inputs, and a render of it.

Known answers are worked out by hand in each test, or come from the published sBG
example (Fader & Hardie 2007, the "regular" cohort) and the BG/NBD formula for the
probability of being alive.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pandas as pd
import pytest

from playbook import clv, clv_report, sbg
from playbook.errors import NotEnoughData, PlaybookError

REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def assert_labelled(fig) -> None:
    """Every chart has a title (on an axes or the figure) and labelled axes."""
    assert fig is not None
    titles = [ax.get_title() for ax in fig.axes]
    assert any(titles) or (fig._suptitle is not None and fig._suptitle.get_text())
    for ax in fig.axes:
        assert ax.get_xlabel().strip(), "x axis without a label"
        assert ax.get_ylabel().strip(), "y axis without a label"


# ---------------------------------------------------------------------------
# Calibration window
# ---------------------------------------------------------------------------
def test_window_calibrates_before_the_season_and_holds_out_the_season():
    w = clv_report.calibration_window(
        "2022-09-01", "2026-07-29", "2025-09-01", "2026-09-01", season="2025-26"
    )
    assert w.basis == "season"
    assert w.calibration_end == pd.Timestamp("2025-08-31")
    assert w.holdout_start == pd.Timestamp("2025-09-01")
    # the data stop before the season's last day: the check stops there too
    assert w.observation_end == pd.Timestamp("2026-07-29")
    assert "2025-26" in w.explanation and "stops there" in w.explanation


def test_window_ignores_purchases_after_the_season():
    w = clv_report.calibration_window("2022-09-01", "2026-07-29", "2024-09-01", "2025-09-01")
    assert w.calibration_end == pd.Timestamp("2024-08-31")
    assert w.observation_end == pd.Timestamp("2025-08-31")
    assert "left out" in w.explanation


def test_window_splits_two_thirds_when_history_before_the_season_is_short():
    # 92 days before the season: too little, so 2/3 of the 394 days to 2026-06-30
    w = clv_report.calibration_window("2025-06-01", "2026-06-30", "2025-09-01", "2026-09-01")
    assert w.basis == "split"
    assert w.calibration_end == pd.Timestamp("2025-06-01") + pd.Timedelta(days=2 * 394 // 3)
    assert w.observation_end == pd.Timestamp("2026-06-30")
    assert "two-thirds" in w.explanation


def test_window_refuses_a_single_day():
    with pytest.raises(NotEnoughData, match="too little"):  # thin data, not a mistake
        clv_report.calibration_window("2025-09-01", "2025-09-01", "2025-09-01", "2026-09-01")


def test_nobody_came_back_is_not_enough_data_rather_than_an_error():
    # Three customers, one purchase day each: nothing for a repeat-purchase model to learn.
    lines = pd.DataFrame(
        {
            "line_id": ["L1", "L2", "L3"],
            "customer_id": ["C1", "C2", "C3"],
            "purchase_time": pd.to_datetime(["2024-01-05", "2024-03-01", "2024-06-01"]),
            "item_type": "ticket",
            "status": "active",
            "parent_line_id": pd.Series([None] * 3, dtype="string"),
            "paid_amount": [20.0, 30.0, 25.0],
            "is_comp": False,
        }
    )
    with pytest.raises(NotEnoughData, match="came back to buy again") as err:
        clv.fit_clv(lines, "2024-04-30", observation_end="2024-08-31")
    assert isinstance(err.value, PlaybookError)  # callers catching PlaybookError still do


# ---------------------------------------------------------------------------
# Model choice
# ---------------------------------------------------------------------------
def holdout(rows: dict[str, tuple[float, float, bool]], actual: float = 100.0) -> pd.DataFrame:
    """A compare_holdout-like table from {name: (rmse, predicted_total, converged)}."""
    labels = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD"}
    frame = pd.DataFrame(
        [
            {
                "model": n,
                "label": labels[n],
                "actual_total": actual,
                "predicted_total": pred,
                "total_error_pct": 100 * (pred - actual) / actual,
                "mae": rmse / 2,
                "rmse": rmse,
                "log_likelihood": -1.0,
                "converged": conv,
            }
            for n, (rmse, pred, conv) in rows.items()
        ]
    )
    return frame.set_index("model").sort_values("rmse")


def test_choice_picks_the_clearly_lowest_error_model():
    h = holdout(
        {"bgnbd": (0.90, 104, True), "pareto_nbd": (0.50, 110, True), "mbgnbd": (0.80, 101, True)}
    )
    c = clv_report.choose_model(h, "bgnbd")
    assert (c.name, c.label, c.reason) == ("pareto_nbd", "Pareto/NBD", "best")
    assert "Pareto/NBD came clearly closest" in c.sentence
    assert "0.500" in c.sentence and "BG/NBD 0.900" in c.sentence
    assert "110 (10.0% too many)" in c.sentence
    # every model ranked by its typical error, as in the table; all converged
    assert "Pareto/NBD 0.500, MBG/NBD 0.800 and BG/NBD 0.900 purchases per customer" in c.sentence
    assert "Pareto/NBD is clearly ahead" in c.sentence
    assert "did not converge" not in c.sentence


def test_choice_says_the_best_model_was_passed_over_because_its_fit_did_not_converge():
    # the demo report's figures: Pareto/NBD has the smallest typical error (0.640) and
    # the closest total (+2.2%), but its fit did not converge
    h = holdout(
        {
            "pareto_nbd": (0.640, 4227, False),
            "mbgnbd": (0.655, 3823, True),
            "bgnbd": (0.664, 3816, True),
        },
        actual=4134,
    )
    c = clv_report.choose_model(h, "bgnbd")
    assert (c.name, c.reason) == ("bgnbd", "default")
    s = c.sentence
    assert "did worse" not in s  # the old text said Pareto/NBD "did worse"
    assert (
        "Pareto/NBD 4,227 (2.2% too many); MBG/NBD 3,823 (7.5% too few); "
        "BG/NBD 3,816 (7.7% too few)"
    ) in s
    assert "Pareto/NBD 0.640, MBG/NBD 0.655 and BG/NBD 0.664 purchases per customer" in s
    assert "All three are within 5% of the smallest: practically tied." in s
    assert (
        "Pareto/NBD had the smallest typical error and the total closest to the actual, "
        "but its fit did not converge"
    ) in s
    assert "it is not used" in s
    assert "Of the models whose fit converged, MBG/NBD and BG/NBD are practically tied." in s
    assert "its total is nearly as close (7.7% off, against 7.5% for the closest)" in s


def test_choice_names_a_non_converged_model_without_claiming_it_was_best():
    # MBG/NBD did not converge and was neither the closest per customer nor in total
    h = holdout(
        {"bgnbd": (0.50, 101, True), "mbgnbd": (0.52, 90, False), "pareto_nbd": (0.70, 95, True)}
    )
    c = clv_report.choose_model(h, "pareto_nbd")
    assert (c.name, c.reason) == ("bgnbd", "best")
    assert "MBG/NBD's fit did not converge" in c.sentence
    assert "MBG/NBD had" not in c.sentence
    assert "Of the models whose fit converged, BG/NBD came clearly closest" in c.sentence
    assert "Pareto/NBD is clearly behind" in c.sentence


def test_choice_with_exact_ties_is_decided_by_the_rules_and_says_so():
    # identical typical errors and identical total misses: the settings' model is kept
    h = holdout({"pareto_nbd": (0.600, 104, True), "bgnbd": (0.600, 96, True)})
    c = clv_report.choose_model(h, "bgnbd")
    assert (c.name, c.reason) == ("bgnbd", "default")
    assert "The two are within 5% of each other: practically tied." in c.sentence
    assert "its total is the closest" in c.sentence
    # settings' model not compared: the tie on totals goes to the first in the table
    h = holdout({"pareto_nbd": (0.600, 104, True), "mbgnbd": (0.600, 96, True)})
    c1 = clv_report.choose_model(h, "bgnbd")
    c2 = clv_report.choose_model(h, "bgnbd")
    assert c1 == c2 and (c1.name, c1.reason) == ("pareto_nbd", "best")
    assert "Of the practically tied models, Pareto/NBD got the total closest" in c1.sentence


def test_choice_keeps_the_settings_model_when_tied():
    h = holdout(
        {"bgnbd": (0.603, 104, True), "pareto_nbd": (0.600, 102, True), "mbgnbd": (0.601, 96, True)}
    )
    c = clv_report.choose_model(h, "bgnbd")
    assert (c.name, c.reason) == ("bgnbd", "default")
    assert "practically tied" in c.sentence and "we keep it" in c.sentence


def test_choice_among_tied_prefers_the_closest_total():
    h = holdout(
        {"bgnbd": (0.603, 130, True), "pareto_nbd": (0.600, 115, True), "mbgnbd": (0.601, 98, True)}
    )
    c = clv_report.choose_model(h, "bgnbd")
    assert (c.name, c.reason) == ("mbgnbd", "best")
    assert "got the total closest" in c.sentence


def test_choice_passes_over_a_fit_that_did_not_converge():
    h = holdout({"bgnbd": (0.90, 100, True), "pareto_nbd": (0.10, 100, False)})
    assert clv_report.choose_model(h, "mbgnbd").name == "bgnbd"


def test_choice_warns_when_every_model_overshoots():
    h = holdout({"bgnbd": (0.60, 120, True), "mbgnbd": (0.60, 118, True)})
    c = clv_report.choose_model(h, "bgnbd", failed={"pareto_nbd": "no"})
    assert "optimistic upper end" in c.sentence
    assert "Could not be fitted, so not compared: Pareto/NBD." in c.sentence


def test_choice_with_one_model():
    c = clv_report.choose_model(holdout({"bgnbd": (0.5, 100, True)}), "bgnbd")
    assert c.reason == "only" and "spot on" in c.sentence


def test_holdout_table_marks_the_model_used():
    h = holdout({"bgnbd": (0.5912, 104, True), "pareto_nbd": (0.5909, 110, False)})
    t = clv_report.holdout_table(h, "bgnbd")
    assert list(t["model"]) == ["Pareto/NBD", "BG/NBD"]
    assert list(t["typical error per customer"]) == ["0.591", "0.591"]
    assert list(t["fit converged"]) == ["no", "yes"]
    assert list(t["used for predictions"]) == ["", "◀ used"]
    assert t["total error"].tolist() == pytest.approx([0.10, 0.04])


# ---------------------------------------------------------------------------
# Lifetime value tables
# ---------------------------------------------------------------------------
@pytest.fixture
def predictions() -> pd.DataFrame:
    """Ten customers: values 1..10; the first four bought once."""
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:02d}" for i in range(10)],
            "frequency": [0, 0, 0, 0, 1, 2, 3, 4, 5, 6],
            "clv": np.arange(1.0, 11.0),
            "p_alive": [1.0, 1.0, 1.0, 1.0, 0.2, 0.4, 0.6, 0.8, 0.3, 0.9],
            "expected_purchases": np.full(10, 0.5),
        }
    )


def test_clv_overview(predictions):
    t = clv_report.clv_overview(predictions).set_index("figure")["value"]
    assert t["customers with a prediction"] == "10"
    assert t["average per customer"] == "£6"  # 55 / 10 = 5.5, shown rounded
    assert t["share of the value held by the top 10% of customers"] == "18%"  # 10 / 55
    assert t["share of the value held by the top 20% of customers"] == "35%"  # 19 / 55
    assert t["repeat buyers (came back at least once)"] == "6 (60%)"
    assert t["average chance of still being active (repeat buyers)"] == "53%"  # 3.2 / 6
    assert t["repeat buyers more likely gone than active (chance below 50%)"] == "3 (50%)"


def test_clv_bands_known_counts_and_masking(predictions):
    t = clv_report.clv_bands(predictions, edges=[0, 3, 8])
    assert list(t["band"]) == ["£0–£3", "£3–£8", "£8 and over"]
    assert t["customers"].tolist() == [2, 5, 3]  # 1,2 | 3..7 | 8,9,10
    assert t["value"].tolist() == [3.0, 25.0, 27.0]
    assert t["share of value"].sum() == pytest.approx(1.0)
    masked = clv_report.clv_bands(predictions, edges=[0, 3, 8], min_group=3)
    # the 2 is hidden; the overview shows all 10 customers, so the 3 (the smallest
    # other band) is hidden with it: 10 - 5 leaves 5 customers in two bands
    assert masked["customers"].isna().tolist() == [True, False, True]
    assert masked["share of value"].isna().tolist() == [True, False, True]
    assert masked.attrs["suppressed"] == 1 and masked.attrs["secondary"] == 1
    with pytest.raises(PlaybookError):
        clv_report.clv_bands(predictions, edges=[1, 3])


def test_clv_by_group_sums_masks_and_labels_the_ungrouped(predictions):
    groups = pd.DataFrame(
        {"tier": ["Loyal"] * 6 + ["Champion"] * 3},
        index=pd.Index(predictions["customer_id"][:9], name="customer_id"),
    )
    groups.attrs["order"] = {"tier": ["Champion", "Loyal"]}
    t = clv_report.clv_by_group(predictions, groups, "tier", min_group=1)
    assert list(t["tier"]) == ["Champion", "Loyal", "No tier yet (first visit still to come)"]
    assert t["customers"].tolist() == [3, 6, 1]
    assert t["value"].tolist() == [24.0, 21.0, 10.0]  # 7+8+9 ; 1+…+6 ; 10
    # chance active over repeat buyers only: Champion C06-C08; Loyal C04, C05
    chance = t["chance active (repeat buyers)"].tolist()
    assert chance[:2] == pytest.approx([(0.6 + 0.8 + 0.3) / 3, (0.2 + 0.4) / 2])
    masked = clv_report.clv_by_group(predictions, groups, "tier", min_group=2)
    # one ungrouped customer: masked; the overview's total (10 customers, £55) would
    # give it away, so the smallest other tier (Champion, 3) is masked with it
    assert masked["customers"].isna().tolist() == [True, False, True]
    assert masked["value"].isna().tolist() == [True, False, True]
    assert masked.attrs["suppressed"] == 1 and masked.attrs["secondary"] == 1


def test_suppress_with_total_hides_enough_rows_that_none_can_be_worked_out():
    df = pd.DataFrame(
        {
            "group": ["A", "B", "C", "D", "No tier yet"],
            "customers": [120, 40, 25, 30, 6],
            "value": [5000.0, 900.0, 700.0, 800.0, 150.0],
        }
    )
    out = clv_report.suppress_with_total(df, "customers", 10)
    # the 6 alone would be total - shown: the smallest other row (C, 25) goes too
    assert out["customers"].isna().tolist() == [False, False, True, False, True]
    assert out["value"].isna().tolist() == [False, False, True, False, True]
    assert out["group"].tolist() == df["group"].tolist()  # labels stay
    assert (out.attrs["suppressed"], out.attrs["secondary"]) == (1, 1)
    # two small rows of 3 and 4: together still under 10, so one more row is hidden
    two = df.assign(customers=[120, 40, 25, 3, 4])
    out2 = clv_report.suppress_with_total(two, "customers", 10)
    assert out2["customers"].isna().tolist() == [False, False, True, True, True]
    # two small rows adding up to 10 or more need nothing else
    ok = df.assign(customers=[120, 40, 25, 5, 6])
    assert clv_report.suppress_with_total(ok, "customers", 10).attrs["secondary"] == 0
    # nothing small: nothing hidden
    none = clv_report.suppress_with_total(
        df.assign(customers=[120, 40, 25, 30, 60]), "customers", 10
    )
    assert not none["customers"].isna().any()
    # a total row is never the one chosen
    tot = df.assign(group=["A", "B", "C", "D", "All"], customers=[5, 40, 25, 30, 100])
    t = clv_report.suppress_with_total(tot, "customers", 10, fixed=(tot["group"] == "All"))
    assert t["customers"].isna().tolist() == [True, False, True, False, False]


def test_at_risk_summary_hides_a_second_tier_beside_its_all_row():
    # 20 customers worth 1..20; the top 20% (17..20) all have a 10% chance: at risk
    pred = pd.DataFrame(
        {
            "customer_id": [f"C{i:02d}" for i in range(20)],
            "frequency": np.ones(20),
            "clv": np.arange(1.0, 21.0),
            "p_alive": [0.9] * 16 + [0.1] * 4,
            "expected_purchases": np.full(20, 0.5),
        }
    )
    result = season_result(pred)
    assert len(result.run.at_risk) == 4
    groups = pd.DataFrame(
        {"tier": ["Loyal"] * 16 + ["Champion"] * 3 + ["Loyal"]},
        index=pd.Index(pred["customer_id"], name="customer_id"),
    )
    groups.attrs["order"] = {"tier": ["Champion", "Loyal"]}
    shown = clv_report.at_risk_summary(result, groups, "tier", min_group=1)
    assert shown["tier"].tolist() == ["Champion", "Loyal", "All"]
    assert shown["at-risk patrons"].tolist() == [3, 1, 4]
    t = clv_report.at_risk_summary(result, groups, "tier", min_group=2)
    # Loyal (1) is hidden; All shows 4, so Champion (3) is hidden too; All stays
    assert t["at-risk patrons"].isna().tolist() == [True, True, False]
    assert t["their value"].isna().tolist() == [True, True, False]
    assert (t.attrs["suppressed"], t.attrs["secondary"]) == (1, 1)


def test_privacy_text_counts_the_groups_hidden_to_protect_others():
    a = pd.DataFrame()
    a.attrs.update(suppressed=1, secondary=1)
    text = clv_report.privacy_text(10, a)
    assert "1 group(s) above had fewer than 10" in text
    assert "1 larger group(s) are hidden too" in text


def test_clv_by_group_without_the_grouping_degrades_with_a_note(predictions):
    groups = pd.DataFrame(index=pd.Index([], name="customer_id"))
    groups.attrs["note"] = "Tiers are not available here."
    t = clv_report.clv_by_group(predictions, groups, "tier")
    assert t.empty and t.attrs["note"] == "Tiers are not available here."
    assert clv_report.group_chart(t, "tier") is None


def test_group_and_distribution_charts_are_labelled(predictions):
    groups = pd.DataFrame(
        {"tier": ["Loyal"] * 5 + ["Champion"] * 5},
        index=pd.Index(predictions["customer_id"], name="customer_id"),
    )
    assert_labelled(
        clv_report.group_chart(clv_report.clv_by_group(predictions, groups, "tier", 1), "tier")
    )
    assert_labelled(clv_report.clv_distribution_chart(clv_report.clv_bands(predictions)))


def season_result(predictions: pd.DataFrame) -> clv_report.SeasonCLV:
    """A SeasonCLV around hand-made predictions (top 20% by value, at risk below 50%)."""
    settings = clv.clv_settings()
    run = SimpleNamespace(
        settings=settings,
        predictions=predictions,
        at_risk=clv.at_risk_patrons(predictions, p_alive_below=0.5, top_share=0.2),
    )
    window = clv_report.calibration_window("2022-09-01", "2025-08-31", "2024-09-01", "2025-09-01")
    choice = clv_report.ModelChoice("bgnbd", "BG/NBD", "default", "")
    return clv_report.SeasonCLV(window, run, choice)


def test_at_risk_text_and_summary(predictions):
    # top 20% by value: C08 (9, p_alive 0.3) and C09 (10, p_alive 0.9); C08 is at risk
    result = season_result(predictions)
    text = clv_report.at_risk_text(result, min_group=1)
    # the cut is the 80th percentile, 8.2 (shown as £8); 19 of 55 is 35%
    assert "(2 people, each worth at least £8)" in text and "hold 35% of it" in text
    assert "**1** now have less than a 50% chance" in text and "£9 of predicted" in text
    hidden = clv_report.at_risk_text(result, min_group=10)
    assert "Fewer than 10" in hidden and "£9 of" not in hidden
    groups = pd.DataFrame(
        {"tier": ["Loyal"] * 8 + ["Champion"] * 2},
        index=pd.Index(predictions["customer_id"], name="customer_id"),
    )
    t = clv_report.at_risk_summary(result, groups, "tier", min_group=1)
    assert t["tier"].tolist() == ["Champion", "All"]
    assert t["at-risk patrons"].tolist() == [1, 1]
    assert t["share of the group's high-value patrons"].tolist() == [0.5, 0.5]
    assert (
        clv_report.at_risk_summary(result, groups, "tier", min_group=2)["their value"].isna().all()
    )


def test_write_at_risk_keeps_pseudonymous_ids_only(predictions, tmp_path):
    groups = pd.DataFrame(
        {"tier": ["Loyal"] * 8 + ["Champion"] * 2},
        index=pd.Index(predictions["customer_id"], name="customer_id"),
    )
    path = clv_report.write_at_risk(season_result(predictions), groups, tmp_path)
    assert path.name == "clv_at_risk.parquet"
    out = pd.read_parquet(path)
    assert out["customer_id"].tolist() == ["C08"] and out["tier"].tolist() == ["Champion"]
    assert {"clv", "p_alive", "expected_purchases", "model", "as_of"} <= set(out.columns)
    assert not list(tmp_path.glob("*.csv"))


# ---------------------------------------------------------------------------
# Models: probability alive, parameters, holdout and tracking charts
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow_bgnbd() -> clv.BGNBD:
    # imported here, after playbook.clv has imported lifetimes quietly
    from lifetimes.datasets import load_cdnow_summary

    summary = load_cdnow_summary(index_col=[0])
    summary.attrs["time_unit"] = "week"
    return clv.BGNBD().fit(summary)


def test_p_alive_curves_follow_the_bgnbd_formula(cdnow_bgnbd):
    curves = clv_report.p_alive_curves(cdnow_bgnbd, "week", repeat_purchases=(1, 4))
    a, b = cdnow_bgnbd.params_["a"], cdnow_bgnbd.params_["b"]
    for x in (1, 4):
        c = curves.loc[curves["repeat_purchases"].str.startswith(f"{x} ")]
        # just after a purchase (recency = T): 1 / (1 + a / (b + x - 1))
        assert c["p_alive"].iloc[0] == pytest.approx(1 / (1 + a / (b + x - 1)), rel=1e-9)
        assert (np.diff(c["p_alive"]) <= 1e-12).all()  # fades with time since the last one
    assert_labelled(clv_report.p_alive_chart(curves))


def test_params_table_has_intervals_and_meanings(cdnow_bgnbd):
    t = clv_report.params_table([cdnow_bgnbd, None])
    assert list(t["parameter"]) == ["r", "alpha", "a", "b"]
    assert (t["lower 95%"] < t["estimate"]).all() and (t["estimate"] < t["upper 95%"]).all()
    assert t["what it describes"].str.len().gt(10).all()
    assert "per week" in t.loc[t["parameter"] == "alpha", "what it describes"].item()


def test_holdout_and_tracking_charts_are_labelled():
    freq = pd.DataFrame(
        {
            "frequency": ["0", "1", "2+"],
            "customers": [50, 20, 5],
            "actual": [0.1, 0.4, 1.2],
            "BG/NBD": [0.12, 0.38, 1.1],
        }
    )
    fig = clv_report.holdout_chart(freq, min_group=10)
    assert_labelled(fig)
    # the report's words: learning period and check period
    assert fig.axes[0].get_title() == "Learning period vs check period: what customers did next"
    assert fig.axes[0].get_xlabel() == "Repeat purchases in the learning period"
    assert len(fig.axes[0].patches) == 2  # the 5-customer group is left out
    dates = pd.date_range("2024-01-07", periods=10, freq="7D")
    track = pd.DataFrame(
        {
            "date": dates,
            "actual": np.arange(10.0),
            "calibration": dates <= "2024-02-01",
            "BG/NBD": np.arange(10.0) * 1.1,
        }
    )
    fig = clv_report.tracking_chart(track, "2024-02-01")
    assert_labelled(fig)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "Check period" in legend
    assert not any("alibration" in t or "holdout" in t for t in legend)


# ---------------------------------------------------------------------------
# Memberships
# ---------------------------------------------------------------------------
def test_renewal_rates_by_hand():
    spells = pd.DataFrame(
        {
            "terms": [1, 1, 2, 3, 3, 4],
            "churned": [True, False, True, False, True, True],
            "left_truncated": [False] * 5 + [True],  # the last one is left out
        }
    )
    r = clv_report.renewal_rates(spells)
    # renewal 1: renewed = terms > 1 (3), lost = terms == 1 and churned (1)
    # renewal 2: renewed 2, lost 1; renewal 3: renewed 0, lost 1
    assert r["due"].tolist() == [4, 3, 1]
    assert r["renewed"].tolist() == [3, 2, 0]
    assert r["observed_rate"].tolist() == pytest.approx([0.75, 2 / 3, 0.0])
    assert r["model_rate"].isna().all()


def test_renewals_on_the_published_regular_cohort():
    data = sbg.data_from_survivors(REGULAR)
    model = sbg.fit_sbg(data)
    r = clv_report.renewal_rates(data, model)
    observed = [REGULAR[t] / REGULAR[t - 1] for t in range(1, len(REGULAR))]
    assert r["observed_rate"].tolist() == pytest.approx(observed)
    # published fit: gamma 0.704, delta 1.182; first renewal delta / (gamma + delta)
    assert r["model_rate"].iloc[0] == pytest.approx(1.182 / (0.704 + 1.182), abs=2e-3)
    renewals = clv_report.Renewals(
        spells=data.assign(scheme="Regular", left_truncated=False),
        models={"Regular": model},
        rates=r.assign(scheme="Regular"),
        term_months=12.0,
        min_group=10,
    )
    table = clv_report.renewal_table(renewals)
    first = table.loc[table["group"].str.startswith("first-year")].iloc[0]
    assert first["people"] == 1000 and first["renewals due"] == 1000
    assert first["renewal rate"] == pytest.approx(0.631)
    assert_labelled(clv_report.renewal_chart(renewals))
    assert clv_report.renewal_chart(None) is None
    assert clv_report.renewal_table(None).empty


def _memberships(rows: list[tuple]) -> pd.DataFrame:
    from playbook.schema import conform

    cols = ["membership_id", "customer_id", "scheme", "start_date", "end_date"]
    return conform(pd.DataFrame(rows, columns=[*cols, "membership_type"]), "memberships")


@pytest.fixture
def friends() -> clv_report.Renewals:
    """Hand-made memberships, observed on 15 June 2024 with 30 days' grace."""
    m = _memberships(
        [
            # A joined 2020, renewed twice, lapsed: renewals 1 and 2 renewed, 3 lost
            ("M1", "A", "Friends", "2020-01-01", "2020-12-31", "new"),
            ("M2", "A", "Friends", "2021-01-01", "2021-12-31", "renewal"),
            ("M3", "A", "Friends", "2022-01-01", "2022-12-31", "renewal"),
            # C joined twice, lapsing after one term each time: two first renewals, both lost
            ("M4", "C", "Friends", "2021-03-01", "2022-02-28", "new"),
            ("M5", "C", "Friends", "2022-06-01", "2023-05-31", "new"),
            # F joined 2022, renewed twice, still a member: renewals 1 and 2 renewed
            ("M6", "F", "Friends", "2022-01-01", "2022-12-31", "new"),
            ("M7", "F", "Friends", "2023-01-01", "2023-12-31", "renewal"),
            ("M8", "F", "Friends", "2024-01-01", "2024-12-31", "renewal"),
            # B joined 2024: no renewal due yet
            ("M9", "B", "Friends", "2024-03-01", "2025-02-28", "new"),
            # long-standing (first seen renewing): E renewed once then lapsed, G renewed once
            ("M10", "E", "Friends", "2022-03-01", "2023-02-28", "renewal"),
            ("M11", "E", "Friends", "2023-03-01", "2024-02-29", "renewal"),
            ("M12", "G", "Friends", "2023-01-01", "2023-12-31", "renewal"),
            ("M13", "G", "Friends", "2024-01-01", "2024-12-31", "renewal"),
        ]
    )
    spells = sbg.summarise_memberships(m, "2024-06-15", include_left_truncated=True)
    model = sbg.fit_sbg(REGULAR)  # any fitted model: these counts are about the table
    joined = spells.loc[~spells["left_truncated"]]
    return clv_report.Renewals(
        spells=spells,
        models={"Friends": model},
        rates=clv_report.renewal_rates(joined, model).assign(scheme="Friends"),
        term_months=12.0,
        min_group=2,
    )


def test_renewal_table_counts_people_apart_from_renewal_decisions(friends):
    t = clv_report.renewal_table(friends).set_index("group")
    first = t.loc["first-year members (first renewal)"]
    # first renewal: spells A, C (twice) and F are due; A and F renewed; 3 people
    assert (first["people"], first["renewals due"], first["renewed"]) == (3, 4, 2)
    assert first["renewal rate"] == pytest.approx(0.5)
    later = t.loc["renewing members (2nd renewal on)"]
    # renewal 2: A and F renewed; renewal 3: A lost. 2 people, 3 decisions
    assert (later["people"], later["renewals due"], later["renewed"]) == (2, 3, 2)
    old = t.loc["long-standing members (joined before the records)"]
    # E: renewed once, then lost; G: renewed once. 2 people, 3 decisions
    assert (old["people"], old["renewals due"], old["renewed"]) == (2, 3, 2)
    assert np.isnan(old["sBG model rate"])


def test_renewal_table_masks_groups_of_few_people_not_few_decisions(friends):
    friends.min_group = 3
    t = clv_report.renewal_table(friends).set_index("group")
    assert t.attrs["suppressed"] == 2
    # 3 renewal decisions but only 2 people: masked
    for group in (
        "renewing members (2nd renewal on)",
        "long-standing members (joined before the records)",
    ):
        assert t.loc[group, ["people", "renewals due", "renewed", "renewal rate"]].isna().all()
    assert t.loc["first-year members (first renewal)", "people"] == 3


def _renewals_from_survivors(survivors: list[int], min_group: int = 10) -> clv_report.Renewals:
    data = sbg.data_from_survivors(survivors)
    model = sbg.fit_sbg(data)
    return clv_report.Renewals(
        spells=data.assign(scheme="Friends", left_truncated=False),
        models={"Friends": model},
        rates=clv_report.renewal_rates(data, model).assign(scheme="Friends"),
        term_months=12.0,
        min_group=min_group,
    )


def test_renewal_reading_keeps_observed_and_projected_apart_and_flags_misfit():
    # 1000 joined; 550 renewed once, 470 twice, 370 three times: observed renewal rates
    # 55.0%, 85.5% (470/550) and 78.7% (370/470). The fitted sBG model (gamma 0.425,
    # delta 0.534) says 55.7%, 78.3% and 85.6%, and 91.4% at the fifth renewal.
    renewals = _renewals_from_survivors([1000, 550, 470, 370])
    model = renewals.models["Friends"]
    assert model.retention_rate([3, 5]) == pytest.approx([0.8564, 0.9143], abs=1e-4)
    text = "\n".join(clv_report.renewal_reading(renewals))
    assert "55.0% of new members renewed (observed); the model's rate is 55.7%" in text
    assert "the furthest renewal with at least 10 members due is the third: 78.7% renewed" in text
    assert "where the model expected 85.6%" in text
    # the fifth renewal is a projection, and said to be one
    assert "the model projects renewal rates rising" in text
    assert "to 91.4% at the fifth renewal. That is a projection, not an observation" in text
    assert "beyond the third renewal there is not yet enough to observe" in text
    # misfit beyond chance, both ways: above at the third, below at the second
    assert "noticeably above what was observed at the third renewal (85.6% against 78.7%" in text
    assert "noticeably below what was observed at the second renewal (78.3% against 85.5%" in text
    assert "optimistic" in text and "cautious" in text
    # the chart draws the model dashed beyond the third renewal: a projection
    fig = clv_report.renewal_chart(renewals)
    for ax in fig.axes:
        dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(dashed) == 1 and dashed[0].get_xdata()[0] == 3
        assert dashed[0].get_label() == "Friends: sBG projection (not yet observed)"


def test_renewal_reading_does_not_flag_a_model_that_fits():
    # the published cohort, seven renewals observed: the model is within chance of each
    renewals = _renewals_from_survivors(REGULAR)
    text = "\n".join(clv_report.renewal_reading(renewals))
    assert "noticeably" not in text
    assert "is the seventh: 92.0% renewed there (observed)" in text  # 241 / 262
    assert "projection" not in text  # the fifth renewal has been observed


# ---------------------------------------------------------------------------
# Settings and summary
# ---------------------------------------------------------------------------
def test_settings_table_and_summary_overview():
    t = clv_report.settings_table(clv.clv_settings()).set_index("setting")
    assert t.loc["horizon_months", "value"] == "36"
    assert t.loc["annual_discount_rate", "value"] == "10%"
    summary = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "frequency": [0.0, 1.0, 2.0, 5.0],
            "recency": [0.0, 4.0, 6.0, 10.0],
            "T": [10.0, 12.0, 14.0, 16.0],
            "monetary_value": [0.0, 20.0, 30.0, 50.0],
        }
    )
    summary.attrs = {"time_unit": "week", "calibration_end": "2025-08-31"}
    o = clv_report.summary_overview(summary).set_index("column")
    assert o.loc["frequency", "average"] == 2.0 and o.loc["T", "median"] == 13.0
    assert "weeks" in o.loc["recency", "what it means"]
    assert clv_report.summary_sentence(summary).startswith(
        "4 customers had bought at least once by 31 August 2025; 3 of them (75%)"
    )


# ---------------------------------------------------------------------------
# The notebook, rendered on the small generated organisation
# ---------------------------------------------------------------------------
def test_notebook_40_renders_without_errors_or_customer_ids(small_org: Path, tmp_path: Path):
    from playbook.render import render_season

    result = render_season(small_org, reports_root=tmp_path, only=["40"])
    out = result.output_dir
    nb = nbformat.read(out / "40_cltv.ipynb", as_version=4)
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o["output_type"] != "error", o
            assert not (o["output_type"] == "stream" and o["name"] == "stderr"), o["text"]
    html = (out / "40_cltv.html").read_text(encoding="utf-8")
    for heading in ("1. Data requirements", "2. Which model", "6. High-value patrons"):
        assert heading in html
    ids = pd.read_parquet(small_org / "canonical" / "order_lines.parquet", columns=["customer_id"])
    ids = set(ids["customer_id"].astype(str))
    found = set(re.findall(r"[A-Za-z0-9]{8,}", html)) & ids
    assert not found, f"customer ids in the HTML: {sorted(found)[:3]}"
    risk = pd.read_parquet(out / clv_report.AT_RISK_FILE)
    assert set(risk["customer_id"].astype(str)) <= ids
    # a list of individuals: linked only apart, with the box-office lists, never as an export
    index = (out / "index.html").read_text(encoding="utf-8")
    exports, _, private = index.partition("Customer lists for the box office")
    assert clv_report.AT_RISK_FILE not in exports and clv_report.AT_RISK_FILE in private
