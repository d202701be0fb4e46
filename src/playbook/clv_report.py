"""Lifetime value for the season report (notebook 40): windows, choices, tables, charts.

:mod:`playbook.clv` and :mod:`playbook.sbg` compute; this module arranges their results
for a workshop room. Each function here is one notebook cell's worth of work:

- :func:`season_window` / :func:`calibration_window`: which purchases the models learn
  from and which they are checked against (by default, everything before the reported
  season, then the season itself);
- :func:`fit_season`: the whole lifetime-value run for the season, with the model chosen
  by :func:`choose_model` from the holdout check and a sentence saying why;
- tables (:func:`settings_table`, :func:`summary_overview`, :func:`holdout_table`,
  :func:`params_table`, :func:`clv_overview`, :func:`clv_bands`, :func:`clv_by_group`,
  :func:`at_risk_summary`, :func:`renewal_table`) and charts (:func:`holdout_chart`,
  :func:`tracking_chart`, :func:`p_alive_chart`, :func:`clv_distribution_chart`,
  :func:`group_chart`, :func:`renewal_chart`), every chart titled with labelled axes;
- :func:`write_at_risk`: the per-customer at-risk list, pseudonymous ids only, written
  as Parquet so the report index never links it.

Reported groups smaller than the organisation's threshold are masked
(:func:`playbook.privacy.suppress_small_groups`); no table here holds a customer id.
Every breakdown whose total the page shows (customers and value in the overview, the
at-risk "All" row) also gets secondary suppression (:func:`suppress_with_total`): a
lone hidden row could be worked out as the total minus the rows shown, so more rows
are hidden with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from playbook import charts, clv, sbg
from playbook.clv_models import MODELS, TransactionModel, make_model
from playbook.errors import NotEnoughData, PlaybookError
from playbook.parsing import isin
from playbook.privacy import OTHER, protect_groups, suppress_small_groups
from playbook.report import CURRENCY_SYMBOLS, Context, format_money, missing_note

AT_RISK_FILE = "clv_at_risk.parquet"
"""Per-customer at-risk list in the report folder (Parquet: the index links only CSV)."""

NOT_GROUPED = "No {column} yet (first visit still to come)"
_GREY = "#8c8c8c"


def currency_symbol(currency: str) -> str:
    """``£`` for GBP; the code and a space for currencies without a known symbol."""
    return CURRENCY_SYMBOLS.get(currency, f"{currency} ")


def _label(name: str) -> str:
    cls = MODELS.get(name)
    return cls.label if cls is not None else name


def _date(ts: pd.Timestamp) -> str:
    return f"{ts.day} {ts:%B %Y}"


def show_text(text: str | Sequence[str]) -> None:
    """Display a sentence, or a list of sentences as bullet points, as Markdown."""
    if isinstance(text, str):
        display(Markdown(text))
    else:
        display(Markdown("\n".join(f"- {line}" for line in text)))


# ---------------------------------------------------------------------------
# 1. Which purchases the models learn from, and which check them
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CalibrationWindow:
    """The calibration (learning) and holdout (checking) periods for a season.

    Attributes
    ----------
    calibration_end : pandas.Timestamp
        Last day the models learn from (inclusive).
    observation_end : pandas.Timestamp
        Last day of the holdout and of everything the report uses (inclusive).
    first_purchase : pandas.Timestamp
        First purchase day in the data.
    basis : {"season", "split"}
        ``season``: calibrate before the season, hold out the season; ``split``: too
        little history before the season, so the history is split two-thirds/one-third.
    explanation : str
        The choice in plain words.
    """

    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp
    first_purchase: pd.Timestamp
    basis: str
    explanation: str

    @property
    def holdout_start(self) -> pd.Timestamp:
        """First day of the holdout period."""
        return self.calibration_end + pd.Timedelta(days=1)


def calibration_window(
    first_day: Any,
    last_day: Any,
    season_start: Any,
    season_end: Any,
    *,
    season: str = "",
    min_calibration_days: int = 365,
    min_holdout_days: int = 56,
) -> CalibrationWindow:
    """The default calibration end for a season, and the observation end.

    The models learn from everything before the reported season and are checked against
    the season itself, when there is at least ``min_calibration_days`` of history before
    it and ``min_holdout_days`` of purchases in it. Otherwise the purchase history up to
    the season's end is split: the first two-thirds to learn from, the rest to check.
    Nothing after the season's end (or the last purchase, if earlier) is used.

    Parameters
    ----------
    first_day, last_day : date-like
        First and last purchase days in the data.
    season_start : date-like
        First day of the reported season.
    season_end : date-like
        End of the season, exclusive (the day after its last day), as in
        :class:`playbook.report.Context`.
    season : str
        Season label, for the explanation.
    min_calibration_days, min_holdout_days : int
        Least history to learn from and least season to check against.

    Returns
    -------
    CalibrationWindow

    Raises
    ------
    PlaybookError
        When the purchases up to the season's end span less than three days.
    """
    first = pd.Timestamp(first_day).normalize()
    last = pd.Timestamp(last_day).normalize()
    start = pd.Timestamp(season_start).normalize()
    season_last = pd.Timestamp(season_end).normalize() - pd.Timedelta(days=1)
    obs = min(season_last, last)
    span = (obs - first).days
    if span < 2:
        raise NotEnoughData(
            f"Purchases up to the season's end span only {max(span, 0) + 1} day(s) "
            f"({first.date()} to {obs.date()}): too little to learn from and check against.\n"
            "What to do: report on a later season, or add older sales exports."
        )
    name = f"the {season} season" if season else "the season"
    cal = start - pd.Timedelta(days=1)
    if (cal - first).days >= min_calibration_days and (obs - cal).days >= min_holdout_days:
        basis = "season"
        text = (
            f"The models learn from every purchase from {_date(first)} to {_date(cal)}, "
            f"the time before {name}. They are then checked against what the same "
            f"customers actually did in {name} ({_date(cal + pd.Timedelta(days=1))} to "
            f"{_date(obs)}), which the models have not seen."
        )
    else:
        basis = "split"
        cal = first + pd.Timedelta(days=int(2 * span // 3))
        text = (
            f"There is too little history before {name} to learn from "
            f"({max((start - first).days, 0)} days), so the purchase history is split: "
            f"the models learn from {_date(first)} to {_date(cal)} (two-thirds of it) "
            f"and are checked against {_date(cal + pd.Timedelta(days=1))} to {_date(obs)}."
        )
    if obs < season_last:
        text += (
            f" The last purchase in the data is on {_date(obs)}, before the season ends, "
            "so the check stops there."
        )
    else:
        text += f" Anything after {_date(obs)} is left out: the report is as of that day."
    return CalibrationWindow(cal, obs, first, basis, text)


def season_window(ctx: Context, settings: clv.CLVSettings | None = None) -> CalibrationWindow:
    """:func:`calibration_window` for the notebook's organisation and season."""
    s = settings or clv.clv_settings(ctx.config)
    occ = clv.purchase_occasions(ctx.tables.order_lines, count_comps=s.count_comps)
    return calibration_window(
        occ["day"].min(),
        occ["day"].max(),
        ctx.season_start,
        ctx.season_end,
        season=ctx.season,
    )


# ---------------------------------------------------------------------------
# Settings and the customer summary
# ---------------------------------------------------------------------------
def settings_table(settings: clv.CLVSettings) -> pd.DataFrame:
    """The lifetime-value settings in force, each with what it does (``clv:`` in org.yaml)."""
    s = settings
    rows = [
        ("time_unit", s.time_unit, "unit in which time since a purchase is measured"),
        (
            "horizon_months",
            str(s.horizon_months),
            f"lifetime value counts the next {s.horizon_months} months",
        ),
        (
            "annual_discount_rate",
            f"{s.annual_discount_rate:.0%}",
            f"money a year away counts {s.annual_discount_rate:.0%} less than money today",
        ),
        ("margin", f"{s.margin:.0%}", "share of spend counted as value (100%: revenue)"),
        (
            "count_comps",
            "yes" if s.count_comps else "no",
            "whether a visit on a complimentary ticket counts as a purchase",
        ),
        (
            "compare_models",
            ", ".join(_label(m) for m in s.compare_models),
            "models compared on the check period",
        ),
        (
            "model",
            _label(s.model),
            "model used for predictions unless another is clearly better on the check",
        ),
        (
            "at_risk_top_share",
            f"{s.at_risk_top_share:.0%}",
            "share of customers, by lifetime value, counted as high value (also for the "
            "action list's at-risk patron calls)",
        ),
        (
            "at_risk_p_alive",
            f"{s.at_risk_p_alive:.0%}",
            "a high-value patron is at risk below this chance of still being active",
        ),
    ]
    return pd.DataFrame(rows, columns=["setting", "value", "what it does"])


_SUMMARY_MEANINGS = {
    clv.FREQUENCY: "repeat purchases: purchase days after the first one",
    clv.RECENCY: "{unit}s from the first to the latest purchase",
    clv.T_COL: "{unit}s from the first purchase to the end of the period",
    clv.MONETARY: "average spend of a repeat purchase day (0 without repeats)",
}


def summary_overview(summary: pd.DataFrame) -> pd.DataFrame:
    """The customer summary the models learn from, described column by column.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``frequency, recency, T, monetary_value`` per customer (e.g. the calibration
        summary); ``attrs["time_unit"]`` names the unit.

    Returns
    -------
    pandas.DataFrame
        ``column, what it means, average, median, top 10% from`` (the 90th percentile):
        aggregates only.
    """
    unit = summary.attrs.get("time_unit", "week")
    rows = []
    for col, meaning in _SUMMARY_MEANINGS.items():
        v = summary[col].astype(float)
        rows.append(
            {
                "column": col,
                "what it means": meaning.format(unit=unit),
                "average": float(v.mean()),
                "median": float(v.median()),
                "top 10% from": float(v.quantile(0.9)),
            }
        )
    return pd.DataFrame(rows)


def summary_sentence(summary: pd.DataFrame) -> str:
    """How many customers the summary holds and how many came back, in one sentence."""
    n = len(summary)
    repeat = int((summary[clv.FREQUENCY] > 0).sum())
    share = repeat / n if n else 0.0
    end = summary.attrs.get("calibration_end") or summary.attrs.get("observation_end")
    when = f" by {_date(pd.Timestamp(end))}" if end else ""
    return (
        f"{n:,} customers had bought at least once{when}; {repeat:,} of them ({share:.0%}) "
        "came back on another day, and those repeat buyers are what the models learn from."
    )


# ---------------------------------------------------------------------------
# 2. Fit, check against the holdout, choose
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelChoice:
    """The purchase model used for predictions, and why."""

    name: str
    label: str
    reason: str  # "best", "default" (the settings' model, as good as any) or "only"
    sentence: str


def choose_model(
    holdout: pd.DataFrame,
    default: str = "bgnbd",
    *,
    tolerance: float = 0.05,
    total_tolerance: float = 5.0,
    failed: Mapping[str, str] | None = None,
) -> ModelChoice:
    """Pick the purchase model that predicted the holdout best, and say why.

    1. Customer by customer: models whose typical error (RMSE) is within ``tolerance``
       (5%) of the smallest are practically tied; the others are out. Models whose fit
       did not converge are passed over when any other converged.
    2. Among the tied, the one whose predicted total is closest to the actual total
       wins: lifetime value adds predictions up, so a biased total matters.
    3. The settings' model (``default``) is kept when it is among the tied and its
       total is within ``total_tolerance`` percentage points of the closest.

    The sentence is built from the same figures as :func:`holdout_table`: the totals,
    every model ranked by its typical error, each model passed over because its fit did
    not converge (with what it did best, if anything), and the rule that decided.

    Parameters
    ----------
    holdout : pandas.DataFrame
        From :func:`playbook.clv.compare_holdout` (indexed by model name).
    default : str
        The model named in the settings (``clv.model``).
    tolerance : float
        Relative difference in RMSE below which models count as tied.
    total_tolerance : float
        Percentage points of total error by which the settings' model may trail.
    failed : mapping, optional
        Models that could not be fitted, with the reason (named in the sentence).

    Returns
    -------
    ModelChoice
        ``reason`` is ``"only"`` (one model checked), ``"default"`` (the settings' model,
        as good as any) or ``"best"``; ``sentence`` says which model and why, from the
        numbers.
    """
    if holdout.empty:
        raise PlaybookError(
            "No purchase model could be fitted on the learning period.\n"
            "What to do: check the dates (is there enough history before the season?)."
        )
    h = holdout.sort_values("rmse", kind="stable")
    conv = h["converged"].astype(bool)
    ok = h.loc[conv] if conv.any() else h
    best_rmse = float(ok["rmse"].min())
    tied = ok.loc[ok["rmse"] <= best_rmse * (1 + tolerance)]
    miss = tied["total_error_pct"].astype(float).abs()
    closest = str(miss.idxmin())
    if len(h) == 1:
        name, reason = closest, "only"
    elif default in tied.index and miss[default] <= miss.min() + total_tolerance:
        name, reason = default, "default"
    else:
        name, reason = closest, "best"
    row = h.loc[name]
    label = str(row["label"])
    passed = h.loc[~conv] if conv.any() else h.iloc[:0]

    parts = [
        f"In the check period the same customers made {float(row['actual_total']):,.0f} "
        "repeat purchases. Predicted: "
        + "; ".join(
            f"{r['label']} {r['predicted_total']:,.0f} ({_over_under(r['total_error_pct'])})"
            for _, r in h.iterrows()
        )
        + "."
    ]
    if reason == "only":
        parts.append(
            f"{label} is the only model checked: its predictions were off by "
            f"{row['rmse']:.3f} purchases per customer (the typical size of the error)."
        )
    else:
        parts.append(_ranking_sentence(h, tolerance))
        parts += [_passed_over_sentence(h, str(key)) for key in passed.index]
        prefix = "Of the models whose fit converged, " if len(passed) else ""
        if len(passed) and len(ok) == 1:
            parts.append(
                f"{label} is the only model whose fit converged, so we use it for the "
                "lifetime values below."
            )
        elif len(tied) > 1 and reason == "default":
            own, least = float(miss[name]), float(miss.min())
            total = (
                "its total is the closest"
                if own <= least
                else f"its total is nearly as close ({own:.1f}% off, against {least:.1f}% "
                "for the closest)"
            )
            tie = f"{prefix}{_and(list(tied['label'].astype(str)))} are practically tied. "
            parts.append(
                (tie if prefix else "")
                + f"No model does clearly better than {label}, the model set in the "
                f"organisation's settings: {total}. So we keep it for the lifetime values "
                "below."
            )
        elif len(tied) > 1:
            parts.append(
                (
                    f"{prefix}{_and(list(tied['label'].astype(str)))} are practically tied; "
                    "of those, "
                    if prefix
                    else "Of the practically tied models, "
                )
                + f"{label} got the total closest ({_over_under(row['total_error_pct'])}), "
                "so we use it for the lifetime values below (lifetime value adds "
                "predictions up, so the total matters)."
            )
        elif prefix:
            parts.append(
                f"{prefix}{label} came clearly closest customer by customer, so we use it "
                "for the lifetime values below."
            )
        else:
            parts.append(
                f"{label} came clearly closest customer by customer, so we use it for the "
                "lifetime values below."
            )
    errs = h["total_error_pct"].astype(float)
    own = float(row["total_error_pct"])
    if len(h) > 1 and (errs > 10).all():
        parts.append(
            f"Every model expected more repeat purchases than happened ({errs.min():.1f}% "
            f"to {errs.max():.1f}% too many): the season was quieter than the customers' "
            "past suggests, so read the forecasts below as an optimistic upper end."
        )
    elif len(h) > 1 and (errs < -10).all():
        parts.append(
            f"Every model expected fewer repeat purchases than happened ({-errs.max():.1f}% "
            f"to {-errs.min():.1f}% too few): the season was busier than the customers' "
            "past suggests, so read the forecasts below as a cautious lower end."
        )
    elif abs(own) > 10:
        parts.append(
            f"Even so, its total was {_over_under(own)}: read the forecasts below with that "
            "in mind."
        )
    if not bool(row["converged"]):
        parts.append(
            (
                "No model's fit converged on its own: each needed a small correction (a "
                "penalizer), so treat the figures with care."
            )
            if len(h) > 1
            else "Its fit needed a small correction (a penalizer), so treat its figures with care."
        )
    if failed:
        parts.append(
            "Could not be fitted, so not compared: " + ", ".join(_label(n) for n in failed) + "."
        )
    return ModelChoice(name, label, reason, " ".join(parts))


def _ranking_sentence(h: pd.DataFrame, tolerance: float) -> str:
    """Every model from the smallest typical error to the largest, and which are tied."""
    labels = h["label"].astype(str).tolist()
    rmse = h["rmse"].astype(float)
    near = (rmse <= float(rmse.min()) * (1 + tolerance)).to_numpy()
    text = (
        "Customer by customer, from the smallest typical error to the largest: "
        + _and([f"{lab} {v:.3f}" for lab, v in zip(labels, rmse, strict=True)])
        + " purchases per customer."
    )
    inside = [lab for lab, n in zip(labels, near, strict=True) if n]
    outside = [lab for lab, n in zip(labels, near, strict=True) if not n]
    if not outside:
        if len(labels) == 2:
            return text + f" The two are within {tolerance:.0%} of each other: practically tied."
        return text + (
            f" All {_count_word(len(labels))} are within {tolerance:.0%} of the smallest: "
            "practically tied."
        )
    if len(inside) == 1:
        return text + (
            f" {inside[0]} is clearly ahead: the "
            + ("other is" if len(outside) == 1 else "others are")
            + f" more than {tolerance:.0%} worse."
        )
    return text + (
        f" {_and(inside)} are within {tolerance:.0%} of the smallest (practically tied); "
        f"{_and(outside)} {'is' if len(outside) == 1 else 'are'} clearly behind."
    )


def _count_word(n: int) -> str:
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    return words[n] if 0 <= n < len(words) else f"{n:,}"


def _passed_over_sentence(h: pd.DataFrame, key: str) -> str:
    """Why a model whose fit did not converge is not used, with what it did best."""
    r = h.loc[key]
    totals = h["total_error_pct"].astype(float).abs()
    best = []
    if float(r["rmse"]) <= float(h["rmse"].min()):
        best.append("the smallest typical error")
    if abs(float(r["total_error_pct"])) <= float(totals.min()):
        best.append("the total closest to the actual")
    lead = f"{r['label']} had {_and(best)}, but its" if best else f"{r['label']}'s"
    return (
        f"{lead} fit did not converge: it settled only with a small correction (a "
        "penalizer) pulling its estimates, so its forecasts are less reliable and it is "
        "not used."
    )


def _and(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _over_under(pct: float) -> str:
    if abs(pct) < 0.05:
        return "spot on"
    return f"{abs(pct):.1f}% too {'many' if pct > 0 else 'few'}"


def use_model(run: clv.CLVRun, name: str) -> clv.CLVRun:
    """The run with predictions from another purchase model, refitted on every purchase.

    The comparison, the spend model and its check are kept; the chosen model is fitted
    on the full summary (as :func:`playbook.clv.fit_clv` does for ``settings.model``)
    and the predictions and at-risk list are made again with it.
    """
    if name == run.model.name:
        return run
    s = replace(run.settings, model=name)
    final = make_model(name, penalizer=s.penalizer, retry_penalizer=s.retry_penalizer)
    final.fit(run.summary)
    predictions = clv.predict_clv(
        final,
        run.summary,
        spend_model=run.spend_model if run.spend_check.ok else None,
        horizon_months=s.horizon_months,
        annual_discount_rate=s.annual_discount_rate,
        margin=s.margin,
        time_unit=s.time_unit,
    )
    at_risk = clv.at_risk_patrons(
        predictions, p_alive_below=s.at_risk_p_alive, top_share=s.at_risk_top_share
    )
    notes = [n for n in run.notes if n != run.model.message_]
    if not final.converged_:
        notes.append(final.message_)
    return replace(
        run, settings=s, model=final, predictions=predictions, at_risk=at_risk, notes=notes
    )


@dataclass
class SeasonCLV:
    """Everything notebook 40 shows about lifetime value for one season."""

    window: CalibrationWindow
    run: clv.CLVRun
    choice: ModelChoice

    @property
    def settings(self) -> clv.CLVSettings:
        """Settings in force (``model`` is the chosen one)."""
        return self.run.settings


def fit_season(
    ctx: Context, settings: clv.CLVSettings | None = None, *, tolerance: float = 0.05
) -> SeasonCLV:
    """Fit, check and predict lifetime value for the notebook's season.

    Calls :func:`playbook.clv.fit_clv` on the :func:`season_window`, chooses the model
    with :func:`choose_model` and, when it is not the settings' model, refits the
    predictions with it (:func:`use_model`).
    """
    s = settings or clv.clv_settings(ctx.config)
    window = season_window(ctx, s)
    run = clv.fit_clv(
        ctx.tables,
        window.calibration_end,
        observation_end=window.observation_end,
        settings=s,
    )
    choice = choose_model(run.holdout, s.model, tolerance=tolerance, failed=run.failed)
    return SeasonCLV(window, use_model(run, choice.name), choice)


def holdout_table(holdout: pd.DataFrame, chosen: str | None = None) -> pd.DataFrame:
    """The holdout comparison with plain column names (one row per model).

    ``total error`` is a fraction (show it as a percentage): positive means the model
    expected more purchases than happened. The per-customer errors are text with three
    decimals, as models often differ only in the third.
    """
    h = holdout
    out = pd.DataFrame(
        {
            "model": h["label"].astype(str).to_numpy(),
            "repeat purchases (actual)": h["actual_total"].round().astype(int).to_numpy(),
            "predicted": h["predicted_total"].round().astype(int).to_numpy(),
            "total error": (h["total_error_pct"].astype(float) / 100).to_numpy(),
            "typical error per customer": [f"{v:.3f}" for v in h["rmse"].astype(float)],
            "average miss per customer": [f"{v:.3f}" for v in h["mae"].astype(float)],
            "fit converged": np.where(h["converged"].astype(bool), "yes", "no"),
        }
    )
    if chosen is not None:
        out["used for predictions"] = np.where(h.index == chosen, "◀ used", "")
    return out


def holdout_frequency_table(
    models: Mapping[str, TransactionModel], calibration: pd.DataFrame, max_frequency: int = 7
) -> pd.DataFrame:
    """Average holdout purchases by calibration repeat purchases: actual and per model.

    Returns
    -------
    pandas.DataFrame
        ``frequency`` (``"0"`` … ``"7+"``), ``customers``, ``actual`` and one column of
        predictions per model, named by its label.
    """
    out: pd.DataFrame | None = None
    for model in models.values():
        t = clv.holdout_by_frequency(model, calibration, max_frequency)
        if out is None:
            out = t[["frequency", "customers", "actual"]].copy()
        out[model.label] = t["predicted"].to_numpy()
    if out is None:
        raise PlaybookError("No fitted model to compare with the holdout.")
    return out


def holdout_chart(table: pd.DataFrame, min_group: int = 0) -> Figure:
    """Learning period vs check period: what customers did next, by how often they had come.

    Bars: actual average purchases in the holdout per customer; lines: each model's
    prediction. Groups with fewer than ``min_group`` customers are left out.
    """
    t = table.loc[table["customers"] >= min_group]
    models = [c for c in t.columns if c not in ("frequency", "customers", "actual")]
    fig, ax = plt.subplots(figsize=charts.FIGSIZE)
    x = np.arange(len(t))
    ax.bar(x, t["actual"], color=_GREY, alpha=0.6, label="Actual", width=0.7)
    markers = ["o", "s", "^", "D", "v"]
    for i, m in enumerate(models):
        ax.plot(x, t[m], marker=markers[i % len(markers)], linewidth=2, label=f"{m} predicted")
    ax.set_xticks(x, t["frequency"].astype(str))
    ax.set_xlabel("Repeat purchases in the learning period")
    ax.set_ylabel("Average purchases per customer\nin the check period")
    ax.set_title("Learning period vs check period: what customers did next")
    ax.legend(frameon=False)
    return fig


def tracking_table(
    models: Mapping[str, TransactionModel],
    order_lines: Any,
    window: CalibrationWindow,
    *,
    time_unit: str = "week",
    count_comps: bool = False,
) -> pd.DataFrame:
    """Cumulative repeat purchases, actual and expected by each model, step by step.

    Returns
    -------
    pandas.DataFrame
        ``date``, ``actual``, ``calibration`` and one column per model label.
    """
    out: pd.DataFrame | None = None
    for model in models.values():
        t = clv.cumulative_tracking(
            model,
            order_lines,
            window.calibration_end,
            window.observation_end,
            time_unit=time_unit,
            count_comps=count_comps,
        )
        if out is None:
            out = t[["date", "actual", "calibration"]].copy()
        out[model.label] = t["expected"].to_numpy()
    if out is None:
        raise PlaybookError("No fitted model to track.")
    return out


def tracking_chart(table: pd.DataFrame, calibration_end: Any) -> Figure:
    """Cumulative repeat purchases over time: actual against each model's expectation.

    The check period (after ``calibration_end``) is shaded.
    """
    models = [c for c in table.columns if c not in ("date", "actual", "calibration")]
    fig, ax = plt.subplots(figsize=charts.FIGSIZE)
    ax.plot(table["date"], table["actual"], color="black", linewidth=2.5, label="Actual")
    for m in models:
        ax.plot(table["date"], table[m], linestyle="--", linewidth=2, label=f"{m} expected")
    cal = pd.Timestamp(calibration_end)
    end = table["date"].max()
    if end > cal:
        ax.axvspan(cal, end, color=_GREY, alpha=0.15, label="Check period")
    ax.axvline(cal, color=_GREY, linestyle=":")
    ax.set_xlabel("Date")
    ax.set_ylabel("Cumulative repeat purchases")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _p: f"{v:,.0f}"))
    ax.set_title("Tracking: repeat purchases, actual and expected")
    ax.legend(frameon=False, loc="upper left")
    return fig


# ---------------------------------------------------------------------------
# 3. Parameters in plain language
# ---------------------------------------------------------------------------
_PARAM_MEANINGS: dict[str, dict[str, str]] = {
    "bgnbd": {
        "r": "how uneven buying rates are across people (below 1: very uneven)",
        "alpha": "scale of buying rates: the average is r / alpha purchases per {unit}",
        "a": "drop-out after a purchase (with b): average chance a / (a + b)",
        "b": "drop-out after a purchase (with a): average chance a / (a + b)",
    },
    "pareto_nbd": {
        "r": "how uneven buying rates are across people (below 1: very uneven)",
        "alpha": "scale of buying rates: the average is r / alpha purchases per {unit}",
        "s": "how uneven the pace of drifting away is across people",
        "beta": "scale of drifting away: the average rate is s / beta per {unit}",
    },
    "gamma_gamma": {
        "p": "how much one patron's spend varies from visit to visit",
        "q": "how much typical spend varies across patrons",
        "v": "scale of spend: the average is p × v / (q − 1)",
    },
    "sbg": {
        "gamma": "chance of leaving at a renewal (with delta): average gamma / (gamma + delta)",
        "delta": "chance of leaving at a renewal (with gamma): average gamma / (gamma + delta)",
    },
}
_PARAM_MEANINGS["mbgnbd"] = dict(_PARAM_MEANINGS["bgnbd"])
_PARAM_MEANINGS["mbgnbd"]["a"] = "drop-out, also right after the first purchase (with b)"


def params_table(models: Iterable[Any], time_unit: str = "week") -> pd.DataFrame:
    """Estimates with 95% confidence intervals, and what each parameter describes.

    Parameters
    ----------
    models : iterable of fitted models
        E.g. the prediction model and the spend model (``None`` entries are skipped).
    time_unit : str
        Unit of the time parameters, for the descriptions.

    Returns
    -------
    pandas.DataFrame
        ``model, parameter, estimate, lower 95%, upper 95%, what it describes``.
    """
    rows = []
    for m in models:
        if m is None:
            continue
        table = m.summary_table()
        meanings = _PARAM_MEANINGS.get(m.name, {})
        for p, r in table.iterrows():
            rows.append(
                {
                    "model": m.label,
                    "parameter": str(p),
                    "estimate": float(r["estimate"]),
                    "lower 95%": float(r["lower_95"]),
                    "upper 95%": float(r["upper_95"]),
                    "what it describes": meanings.get(str(p), "").format(unit=time_unit),
                }
            )
    return pd.DataFrame(rows)


def plain_reading(result: SeasonCLV) -> list[str]:
    """What the prediction and spend models say, in sentences (``interpret_params``)."""
    run = result.run
    lines = clv.interpret_params(run.model, run.settings.time_unit)
    if run.spend_model is not None:
        lines += clv.interpret_params(run.spend_model)
    return lines


def p_alive_curves(
    model: TransactionModel,
    time_unit: str = "week",
    *,
    repeat_purchases: Sequence[int] = (1, 3, 6, 12),
    first_purchase_months_ago: int = 36,
) -> pd.DataFrame:
    """Chance of still being active against months since the last purchase.

    For a patron whose first purchase was ``first_purchase_months_ago`` months ago and
    who came back ``repeat_purchases`` times: computed from the model alone, no
    customer's data.

    Returns
    -------
    pandas.DataFrame
        ``months_since_last``, ``repeat_purchases`` (label), ``p_alive``.
    """
    per_month = clv.DAYS_PER_MONTH / clv.TIME_UNITS[time_unit]
    months = np.arange(0, first_purchase_months_ago + 1)
    t_units = first_purchase_months_ago * per_month
    frames = []
    for x in repeat_purchases:
        recency = t_units - months * per_month
        rows = pd.DataFrame(
            {
                clv.FREQUENCY: float(x),
                clv.RECENCY: np.maximum(recency, 0.0),
                clv.T_COL: t_units,
            }
        )
        frames.append(
            pd.DataFrame(
                {
                    "months_since_last": months,
                    "repeat_purchases": f"{x} repeat purchase{'s' if x != 1 else ''}",
                    "p_alive": model.p_alive(rows),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out.attrs["first_purchase_months_ago"] = first_purchase_months_ago
    return out


def p_alive_chart(curves: pd.DataFrame) -> Figure:
    """How the chance of still being active fades after the last purchase."""
    fig = charts.line(
        curves,
        "months_since_last",
        "p_alive",
        hue="repeat_purchases",
        title="How the chance of still being active fades",
        xlabel="Months since the last purchase",
        ylabel="Chance still active",
        percent=True,
    )
    ax = fig.axes[0]
    for line in ax.lines:
        line.set_marker("")
    months = curves.attrs.get("first_purchase_months_ago")
    if months:
        ax.legend(title=f"First purchase {months} months ago, then", frameon=False)
    ax.set_ylim(0, 1.02)
    return fig


def p_alive_note(result: SeasonCLV) -> str:
    """How to read probability alive under the chosen model (one-time buyers, fresh visits)."""
    pred = result.run.predictions
    once = pred[clv.FREQUENCY] == 0
    n, share = int(once.sum()), float(once.mean()) if len(pred) else 0.0
    name, label = result.run.model.name, result.run.model.label
    fresh = (
        f" Even just after a visit the chance is below 100%: {label} allows that any "
        "visit may turn out to be someone's last."
        if name in ("bgnbd", "mbgnbd")
        else ""
    )
    if name == "bgnbd":
        return (
            f"Two quirks to know. {label} lets people drift away only after a repeat "
            f"purchase, so the {n:,} customers ({share:.0%}) who have bought only once "
            "always count as 'still active'; their lifetime value is still low, because "
            "the model expects them to buy rarely. That is why the tables below average "
            "the chance of being active over repeat buyers only." + fresh
        )
    avg = float(pred.loc[once, "p_alive"].mean()) if n else float("nan")
    return (
        f"The {n:,} customers ({share:.0%}) who have bought only once have an average "
        f"chance of {avg:.0%} of still being active; with a single visit to go on, the "
        "tables below average the chance over repeat buyers only." + fresh
    )


# ---------------------------------------------------------------------------
# Privacy: breakdowns whose total is shown
# ---------------------------------------------------------------------------
def suppress_with_total(
    df: pd.DataFrame,
    count_col: str,
    min_group: int,
    *,
    fixed: Sequence[bool] | np.ndarray | None = None,
    columns: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Mask small rows of a breakdown whose total is shown elsewhere, and enough others.

    Rows with fewer than ``min_group`` customers are masked
    (:func:`playbook.privacy.suppress_small_groups`). Because the page shows the total
    (customers and value), the hidden rows together are the total minus the rows
    shown: when that is one row's figures, or fewer than ``min_group`` customers, the
    smallest other row is masked too (the first on ties), and so on until at least two
    rows with customers are hidden and they hold ``min_group`` customers or more
    between them.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per group, ``count_col`` the customers in it.
    count_col : str
        Customers per row.
    min_group : int
        Smallest group that may be shown.
    fixed : array of bool, optional
        Rows never chosen as extra rows to hide (a total row such as "All").
    columns : iterable of str, optional
        Columns masked (default: every numeric column).

    Returns
    -------
    pandas.DataFrame
        A copy; ``attrs["suppressed"]`` counts the rows below ``min_group`` and
        ``attrs["secondary"]`` the rows hidden only to protect them.
    """
    n = df[count_col].fillna(0).to_numpy(dtype=float)
    keep = np.zeros(len(df), dtype=bool) if fixed is None else np.asarray(fixed, dtype=bool)
    small = n < min_group
    # a kept row (the total) counts as empty here, so it is never picked as a partner
    hidden = protect_groups(np.where(keep, 0, n), small & (n > 0) & ~keep, min_group)
    extra = hidden & ~small
    marked = df.assign(_hide=np.where(small | extra, 0, 1))
    out = suppress_small_groups(marked, "_hide", 1, columns=columns or _numeric(df))
    out = out.drop(columns="_hide")
    out.attrs["suppressed"] = int(small.sum())
    out.attrs["secondary"] = int(extra.sum())
    return out


def _numeric(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]


# ---------------------------------------------------------------------------
# 4. Lifetime value
# ---------------------------------------------------------------------------
def clv_overview(predictions: pd.DataFrame, currency: str = "GBP") -> pd.DataFrame:
    """Headline lifetime-value figures for all customers (aggregates only).

    The chance of still being active is summarised over repeat buyers: after a single
    purchase the models can say little about it (BG/NBD even counts every one-time buyer
    as active).

    Returns
    -------
    pandas.DataFrame
        ``figure, value`` (values formatted as text).
    """
    p = predictions
    horizon = p.attrs.get("horizon_months")
    v = np.sort(p["clv"].to_numpy(dtype=float))[::-1]
    total = float(v.sum())
    repeat = p[clv.FREQUENCY].to_numpy(dtype=float) > 0
    pa = p["p_alive"].to_numpy(dtype=float)[repeat]

    def top(share: float) -> float:
        k = max(int(round(share * len(v))), 1)
        return float(v[:k].sum() / total) if total > 0 else float("nan")

    rows = [
        ("customers with a prediction", f"{len(p):,}"),
        (
            f"predicted value of all customers{f' over {horizon} months' if horizon else ''}",
            format_money(total, currency),
        ),
        ("average per customer", format_money(float(v.mean()) if len(v) else np.nan, currency)),
        (
            "median per customer (half are worth less)",
            format_money(float(np.median(v)) if len(v) else np.nan, currency),
        ),
        ("share of the value held by the top 10% of customers", f"{top(0.10):.0%}"),
        ("share of the value held by the top 20% of customers", f"{top(0.20):.0%}"),
        (
            "expected purchases over the horizon (all customers)",
            f"{p['expected_purchases'].sum():,.0f}",
        ),
        (
            "repeat buyers (came back at least once)",
            f"{int(repeat.sum()):,} ({repeat.mean() if len(p) else 0:.0%})",
        ),
        ("average chance of still being active (repeat buyers)", f"{pa.mean():.0%}"),
        (
            "repeat buyers more likely gone than active (chance below 50%)",
            f"{int((pa < 0.5).sum()):,} ({(pa < 0.5).mean() if len(pa) else 0:.0%})",
        ),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"])


_NICE = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000)


def clv_bands(
    predictions: pd.DataFrame,
    currency: str = "GBP",
    *,
    edges: Sequence[float] | None = None,
    min_group: int = 0,
) -> pd.DataFrame:
    """Customers and value by lifetime-value band.

    Parameters
    ----------
    predictions : pandas.DataFrame
        From :func:`playbook.clv.predict_clv` (``clv``).
    currency : str
        For the band labels.
    edges : sequence of float, optional
        Band edges from 0 upwards (the last band is open-ended). Default: round
        amounts between the lower quartile and the 99th percentile.
    min_group : int
        Bands with fewer customers are masked, and more bands where the overview's
        totals would give a hidden band away (:func:`suppress_with_total`).

    Returns
    -------
    pandas.DataFrame
        ``band, customers, share of customers, value, share of value``.
    """
    v = predictions["clv"].to_numpy(dtype=float)
    if edges is None:
        lo, hi = np.quantile(v, [0.25, 0.99]) if len(v) else (0.0, 0.0)
        inner = [float(e) for e in _NICE if lo <= e <= hi]
        edges = [0.0, *inner] if inner else [0.0, float(max(hi, 1.0))]
    edges = [float(e) for e in edges]
    if edges[0] != 0.0 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise PlaybookError("Band edges must start at 0 and rise.")
    idx = np.searchsorted(np.asarray(edges[1:]), v, side="right")
    labels = [
        f"{format_money(a, currency)}–{format_money(b, currency)}"
        for a, b in zip(edges, edges[1:], strict=False)
    ] + [f"{format_money(edges[-1], currency)} and over"]
    counts = np.bincount(idx, minlength=len(labels))
    values = np.bincount(idx, weights=v, minlength=len(labels))
    total_n, total_v = max(len(v), 1), float(v.sum())
    out = pd.DataFrame(
        {
            "band": labels,
            "customers": counts.astype(np.int64),
            "share of customers": counts / total_n,
            "value": values,
            "share of value": values / total_v if total_v > 0 else np.nan,
        }
    )
    return suppress_with_total(out, "customers", min_group)


def clv_distribution_chart(bands: pd.DataFrame) -> Figure:
    """Share of customers and share of future value in each lifetime-value band."""
    long = bands.melt(
        id_vars="band",
        value_vars=["share of customers", "share of value"],
        var_name="measure",
        value_name="share",
    )
    fig = charts.bar(
        long,
        "band",
        "share",
        hue="measure",
        title="Who holds the future value",
        xlabel="Predicted lifetime value per customer",
        ylabel="Share",
        percent=True,
    )
    fig.axes[0].tick_params(axis="x", rotation=30)
    fig.axes[0].legend(title="", frameon=False)
    return fig


def customer_groups(ctx: Context) -> pd.DataFrame:
    """Each customer's maturity tier and persona as of the season's end, if available.

    Uses :mod:`playbook.segments` and :mod:`playbook.personas`; when they cannot run
    here, tiers alone from :mod:`playbook.tiers`; when that fails too, an empty frame.
    The reason is in ``attrs["note"]``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``tier`` and ``persona`` display names (either may
        be absent). ``attrs["order"]`` gives each column's display order.
    """
    out = pd.DataFrame(index=pd.Index([], dtype="string", name=clv.CUSTOMER_ID))
    out.attrs["order"] = {}
    out.attrs["note"] = ""
    try:
        from playbook import personas, segments, tiers

        seg = segments.segment_customers(ctx.tables, ctx.as_of, ctx.config)
    except Exception as exc:  # another module's failure only hides a table
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        try:
            from playbook import features, tiers

            prep = features.prepare(ctx.tables, ctx.config)
            feats = features.build_features(prep, ctx.as_of, ctx.config)
            tier = tiers.assign_tiers(feats, ctx.config, as_of=ctx.as_of)
        except Exception as exc2:
            why2 = str(exc2).splitlines()[0] if str(exc2) else type(exc2).__name__
            out.attrs["note"] = (
                f"Tiers and personas are not available here ({why2}), so lifetime value "
                "is shown for all customers together only."
            )
            return out
        out = _tier_frame(tier, ctx, tiers)
        out.attrs["note"] = f"Personas are not available here ({why}); tiers only."
        return out
    out = _tier_frame(seg.tiers, ctx, tiers)
    try:
        symbol = currency_symbol(ctx.config.currency)
        cast = personas.build_personas(seg, ctx.min_group, ctx.config, symbol)
        ids = personas.persona_of_customers(seg, ctx.config)
        names = dict(zip(cast["persona_id"].astype(str), cast["name"].astype(str), strict=True))
        persona = ids.astype("string").map(names).fillna(OTHER)
        out["persona"] = persona.reindex(out.index).fillna(OTHER).to_numpy()
        order = [n for n in cast["name"].astype(str) if n != OTHER] + [OTHER]
        out.attrs["order"] = {**out.attrs["order"], "persona": order}
    except Exception as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        out.attrs["note"] = f"Personas are not available here ({why}); tiers only."
    return out


def _tier_frame(tier: pd.Series, ctx: Context, tiers: Any) -> pd.DataFrame:
    labels = tiers.tier_labels(ctx.config)
    out = pd.DataFrame(
        {"tier": tier.astype("string").map(labels).to_numpy()},
        index=pd.Index(tier.index.astype("string"), name=clv.CUSTOMER_ID),
    )
    order = [labels[t] for t in tiers.tier_order(ctx.config, include_lapsed=True)]
    out.attrs["order"] = {"tier": order}
    out.attrs["note"] = ""
    return out


def clv_by_group(
    predictions: pd.DataFrame,
    groups: pd.DataFrame,
    column: str,
    min_group: int = 10,
) -> pd.DataFrame:
    """Lifetime value per group (tier or persona); small groups masked.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``customer_id, clv, p_alive, expected_purchases``.
    groups : pandas.DataFrame
        From :func:`customer_groups` (indexed by ``customer_id``).
    column : str
        Group column (``"tier"`` or ``"persona"``).
    min_group : int
        Groups with fewer customers are masked.

    Returns
    -------
    pandas.DataFrame
        ``<column>, customers, share of customers, value, share of value, average value,
        chance active (repeat buyers)`` (the average chance of still being active of the
        group's repeat buyers, masked when fewer than ``min_group``); empty (with ``attrs["note"]``) when the grouping is not
        available.
    """
    cols = [column, "customers", "share of customers", "value", "share of value"]
    cols += ["average value", "chance active (repeat buyers)"]
    if column not in groups.columns:
        out = pd.DataFrame(columns=cols)
        out.attrs["note"] = groups.attrs.get("note") or f"No {column} for these customers."
        out.attrs["suppressed"] = 0
        return out
    ids = predictions[clv.CUSTOMER_ID].astype("string")
    g = groups[column].reindex(pd.Index(ids)).fillna(NOT_GROUPED.format(column=column))
    repeat = predictions[clv.FREQUENCY].to_numpy(dtype=float) > 0
    frame = pd.DataFrame(
        {
            column: g.to_numpy(),
            "clv": predictions["clv"].to_numpy(dtype=float),
            "p_alive": np.where(repeat, predictions["p_alive"].to_numpy(dtype=float), np.nan),
            "repeat": repeat,
        }
    )
    agg = frame.groupby(column, sort=False).agg(
        customers=("clv", "size"),
        value=("clv", "sum"),
        avg=("clv", "mean"),
        pa=("p_alive", "mean"),
        n_repeat=("repeat", "sum"),
    )
    agg.loc[agg["n_repeat"] < min_group, "pa"] = np.nan
    order = list(groups.attrs.get("order", {}).get(column, []))
    order += [k for k in agg.index if k not in order]
    agg = agg.reindex([k for k in order if k in agg.index])
    total_n, total_v = max(int(agg["customers"].sum()), 1), float(agg["value"].sum())
    out = pd.DataFrame(
        {
            column: agg.index.astype(str),
            "customers": agg["customers"].astype(np.int64).to_numpy(),
            "share of customers": (agg["customers"] / total_n).to_numpy(),
            "value": agg["value"].to_numpy(),
            "share of value": (agg["value"] / total_v).to_numpy() if total_v > 0 else np.nan,
            "average value": agg["avg"].to_numpy(),
            "chance active (repeat buyers)": agg["pa"].to_numpy(),
        }
    )
    out = suppress_with_total(out, "customers", min_group)  # the overview shows the total
    out.attrs["note"] = ""
    return out


def group_chart(table: pd.DataFrame, column: str, title: str | None = None) -> Figure | None:
    """Share of customers against share of future value per group (masked groups left out)."""
    t = table.dropna(subset=["share of value"])
    if t.empty:
        return None
    long = t.melt(
        id_vars=column,
        value_vars=["share of customers", "share of value"],
        var_name="measure",
        value_name="share",
    )
    fig = charts.bar(
        long,
        column,
        "share",
        hue="measure",
        title=title or f"Customers and future value by {column}",
        xlabel=column.capitalize(),
        ylabel="Share",
        percent=True,
        horizontal=len(t) > 6 or t[column].astype(str).str.len().max() > 14,
    )
    fig.axes[0].legend(title="", frameon=False)
    return fig


def privacy_text(min_group: int, *tables: pd.DataFrame) -> str:
    """One sentence on what small-group masking did to ``tables``."""
    n = sum(int(t.attrs.get("suppressed", 0)) for t in tables)
    extra = sum(int(t.attrs.get("secondary", 0)) for t in tables)
    more = (
        f" {extra} larger group(s) are hidden too, so that the small ones cannot be "
        "worked out by subtracting the groups shown from the totals above."
        if extra
        else ""
    )
    if n:
        return (
            f"*Privacy: {n} group(s) above had fewer than {min_group} customers; their "
            f"figures are hidden (shown as –) so that no figure can point at a person.{more}*"
        )
    return f"*Privacy: every group shown has at least {min_group} customers.*"


# ---------------------------------------------------------------------------
# 5. Membership renewals (sBG)
# ---------------------------------------------------------------------------
@dataclass
class Renewals:
    """Membership renewal curves per scheme: spells, fitted sBG models, observed rates."""

    spells: pd.DataFrame
    models: dict[str, sbg.ShiftedBetaGeometric]
    rates: pd.DataFrame
    term_months: float
    min_group: int
    notes: list[str] = field(default_factory=list)


def renewal_rates(
    spells: pd.DataFrame, model: sbg.ShiftedBetaGeometric | None = None
) -> pd.DataFrame:
    """Observed renewal rate at each renewal, with the sBG model's rate beside it.

    Spells whose first term is on record (not ``left_truncated``) count: a spell of
    ``n`` terms renewed at renewals 1 … n − 1 and, if it lapsed (``churned``), was lost
    at renewal ``n``; a spell still running has not reached renewal ``n`` yet. A
    ``count`` column, if present, says how many members share a row (as from
    :func:`playbook.sbg.data_from_survivors`).

    Returns
    -------
    pandas.DataFrame
        ``renewal`` (1, 2, …), ``due`` (members whose renewal is known), ``renewed``,
        ``observed_rate``, ``model_rate``.
    """
    sp = spells
    if "left_truncated" in sp:
        sp = sp.loc[~sp["left_truncated"].astype(bool)]
    terms = sp[sbg.TERMS].to_numpy(dtype=np.int64)
    churned = sp[sbg.CHURNED].to_numpy(dtype=bool)
    w = sp[sbg.COUNT].to_numpy(dtype=float) if sbg.COUNT in sp else np.ones(len(sp))
    top = int(terms.max()) if len(terms) else 0
    t = np.arange(1, top + 1)
    renewed = np.array([w[terms > k].sum() for k in t], dtype=float)
    lost = np.array([w[(terms == k) & churned].sum() for k in t], dtype=float)
    due = renewed + lost
    keep = due > 0
    rate = np.divide(renewed, due, out=np.full(len(t), np.nan), where=due > 0)
    model_rate = model.retention_rate(t) if model is not None else np.full(len(t), np.nan)
    out = pd.DataFrame(
        {
            "renewal": t[keep],
            "due": due[keep],
            "renewed": renewed[keep],
            "observed_rate": rate[keep],
            "model_rate": np.asarray(model_rate, dtype=float)[keep],
        }
    )
    if sbg.COUNT not in sp:
        out = out.astype({"due": np.int64, "renewed": np.int64})
    return out


def membership_renewals(ctx: Context, settings: clv.CLVSettings | None = None) -> Renewals | None:
    """Fit the sBG model per membership scheme, as of the season's end.

    Shows :func:`playbook.report.missing_note` and returns None when the organisation
    has no memberships table.
    """
    if not missing_note(ctx, ["memberships"], "membership renewal curves"):
        return None
    s = settings or clv.clv_settings(ctx.config)
    mb = ctx.tables.memberships
    spells = sbg.summarise_memberships(
        mb,
        ctx.as_of.normalize(),
        grace_days=s.membership_grace_days,
        include_left_truncated=True,
    )
    days = (mb["end_date"] - mb["start_date"]).dt.days.median()
    term_months = float(days) / clv.DAYS_PER_MONTH if pd.notna(days) else 12.0
    schemes = spells["scheme"].fillna("(no scheme)").astype(str)
    spells = spells.assign(scheme=schemes)
    models: dict[str, sbg.ShiftedBetaGeometric] = {}
    frames, notes = [], []
    for scheme in schemes.value_counts().index:
        sp = spells.loc[(spells["scheme"] == scheme) & ~spells["left_truncated"]]
        people = _people(sp)
        if people < ctx.min_group:
            notes.append(
                f"{scheme}: fewer than {ctx.min_group} people joined within the records: "
                "not modelled."
            )
            continue
        try:
            model = sbg.fit_sbg(sp)
        except PlaybookError:
            notes.append(
                f"{scheme}: the renewal model could not be fitted to the {people:,} people "
                "who joined within the records (their renewals do not yet show a clear "
                "pattern, e.g. lapses at only one renewal), so no curve is drawn."
            )
            continue
        models[scheme] = model
        frames.append(renewal_rates(sp, model).assign(scheme=scheme))
    rates = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return Renewals(spells, models, rates, term_months, ctx.min_group, notes)


_GROUPS = {
    "first": "first-year members (first renewal)",
    "later": "renewing members (2nd renewal on)",
    "long": "long-standing members (joined before the records)",
}


def _renewals_reached(spells: pd.DataFrame) -> np.ndarray:
    """Renewal decisions each spell has reached: the renewals paid, plus the lapse if any."""
    terms = spells[sbg.TERMS].to_numpy(dtype=np.int64)
    return terms - 1 + spells[sbg.CHURNED].to_numpy(dtype=bool).astype(np.int64)


def _people(spells: pd.DataFrame) -> int:
    """Distinct people among ``spells`` (by ``customer_id``; else one per member counted)."""
    if clv.CUSTOMER_ID in spells:
        return int(spells[clv.CUSTOMER_ID].nunique())
    if sbg.COUNT in spells:
        return int(round(float(spells[sbg.COUNT].sum())))
    return len(spells)


def renewal_table(renewals: Renewals | None) -> pd.DataFrame:
    """First-year against renewing members, per scheme: observed and sBG renewal rates.

    Rows: *first-year members* (their first renewal), *renewing members* (second
    renewal on, joined within the records) and *long-standing members* (joined before
    the records begin; observed only).

    ``people`` counts distinct people with at least one renewal in the row; ``renewals
    due`` counts renewal decisions (one per person and renewal reached: someone seen
    through three renewals counts three times), which is what the renewal rate and
    the sBG model are based on. Rows with fewer than ``min_group`` people are masked.

    Returns
    -------
    pandas.DataFrame
        ``scheme, group, people, renewals due, renewed, renewal rate, sBG model rate``.
    """
    cols = ["scheme", "group", "people", "renewals due", "renewed", "renewal rate"]
    cols.append("sBG model rate")
    if renewals is None or not renewals.models:
        return pd.DataFrame(columns=cols)
    rows = []
    for scheme in renewals.models:
        r = renewals.rates.loc[renewals.rates["scheme"] == scheme]
        sp = renewals.spells.loc[renewals.spells["scheme"] == scheme]
        lt = (
            sp["left_truncated"].to_numpy(dtype=bool)
            if "left_truncated" in sp
            else np.zeros(len(sp), dtype=bool)
        )
        reached = _renewals_reached(sp)
        parts = (
            ("first", r.loc[r["renewal"] == 1], ~lt & (reached >= 1)),
            ("later", r.loc[r["renewal"] >= 2], ~lt & (reached >= 2)),
        )
        for key, part, who in parts:
            due = int(part["due"].sum())
            renewed = int(part["renewed"].sum())
            rate_m = float((part["model_rate"] * part["due"]).sum() / due) if due else float("nan")
            rows.append(
                {
                    "scheme": scheme,
                    "group": _GROUPS[key],
                    "people": _people(sp.loc[who]),
                    "renewals due": due,
                    "renewed": renewed,
                    "renewal rate": renewed / due if due else float("nan"),
                    "sBG model rate": rate_m,
                }
            )
        if lt.any():
            old = sp.loc[lt]
            lost = int(old[sbg.CHURNED].sum())
            renewed = int((old[sbg.TERMS].to_numpy(dtype=np.int64) - 1).sum())
            due = renewed + lost
            rows.append(
                {
                    "scheme": scheme,
                    "group": _GROUPS["long"],
                    "people": _people(old.loc[reached[lt] >= 1]),
                    "renewals due": due,
                    "renewed": renewed,
                    "renewal rate": renewed / due if due else float("nan"),
                    "sBG model rate": float("nan"),
                }
            )
    out = pd.DataFrame(rows, columns=cols)
    return suppress_small_groups(
        out,
        "people",
        renewals.min_group,
        columns=["people", "renewals due", "renewed", "renewal rate", "sBG model rate"],
    )


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _ordinal(n: int) -> str:
    if 1 <= n <= len(_ORDINALS):
        return _ORDINALS[n - 1]
    return (
        f"{n}th" if 10 <= n % 100 <= 20 else f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"
    )


def renewal_reading(
    renewals: Renewals | None, *, project_to: int = 5, gap: float = 0.05
) -> list[str]:
    """What the renewal figures say, per scheme, observed and projected kept apart.

    For each modelled scheme: the first renewal, observed beside the sBG model; the
    furthest renewal observed with at least ``min_group`` members due (as in the chart),
    with the model's rate there; the model's projection to renewal ``project_to``,
    called a projection when no renewal that far has been observed; a warning when the
    model is noticeably above (or below) the observed rates; and the long-standing
    members' rate for comparison (when at least ``min_group`` people).

    A gap between the model and an observed rate is noticeable when it is larger than
    ``gap`` (5 percentage points) and than twice the chance variation of a rate on that
    many renewals (two binomial standard errors).

    Returns
    -------
    list of str
        Sentences, then the notes on schemes not modelled.
    """
    if renewals is None:
        return []
    table = renewal_table(renewals)
    lines: list[str] = []
    for scheme, model in renewals.models.items():
        r = renewals.rates.loc[renewals.rates["scheme"] == scheme].sort_values("renewal")
        shown = r.loc[r["due"] >= renewals.min_group]
        lines += _scheme_reading(scheme, model, shown, renewals.min_group, project_to, gap)
        long = table.loc[(table["scheme"] == scheme) & (table["group"] == _GROUPS["long"])]
        long_rate = float(long["renewal rate"].iloc[0]) if len(long) else float("nan")
        if np.isfinite(long_rate):
            seen = int(shown["renewal"].max()) if len(shown) else 0
            proj = float(model.retention_rate(project_to))
            if seen < project_to and proj > long_rate + gap:
                lines.append(
                    f"{scheme}: long-standing members (joined before the records began, "
                    f"many of them for years) renewed at {long_rate:.1%} (observed), well "
                    f"below the {proj:.1%} the model projects for the {_ordinal(project_to)} "
                    "renewal: another reason to read that projection as optimistic."
                )
            else:
                lines.append(
                    f"{scheme}: for comparison, long-standing members (joined before the "
                    f"records began) renewed at {long_rate:.1%} (observed)."
                )
        if not model.converged_:
            lines.append(f"{scheme}: {model.message_}")
    return lines + renewals.notes


def _scheme_reading(
    scheme: str,
    model: sbg.ShiftedBetaGeometric,
    shown: pd.DataFrame,
    min_group: int,
    project_to: int,
    gap: float,
) -> list[str]:
    """Observed against modelled renewal rates of one scheme (``shown``: enough members due)."""
    lines = []
    m1 = float(model.retention_rate(1))
    first = shown.loc[shown["renewal"] == 1]
    if len(first):
        lines.append(
            f"{scheme}: at the first renewal, {float(first['observed_rate'].iloc[0]):.1%} of "
            f"new members renewed (observed); the model's rate is {m1:.1%}."
        )
    else:
        lines.append(
            f"{scheme}: the model puts the first renewal at {m1:.1%}; too few members have "
            "reached it yet to show the observed rate."
        )
    seen = int(shown["renewal"].max()) if len(shown) else 0
    if seen > 1:
        last = shown.loc[shown["renewal"] == seen].iloc[0]
        lines.append(
            f"{scheme}: so far, among members who joined within the records, the furthest "
            f"renewal with at least {min_group} members due is the {_ordinal(seen)}: "
            f"{float(last['observed_rate']):.1%} renewed there (observed), where the model "
            f"expected {float(last['model_rate']):.1%}."
        )
    if seen < project_to:
        proj = float(model.retention_rate(project_to))
        lines.append(
            f"{scheme}: the model projects renewal rates rising as the less committed leave, "
            f"to {proj:.1%} at the {_ordinal(project_to)} renewal. That is a projection, not "
            + (
                f"an observation: beyond the {_ordinal(seen)} renewal there is not yet "
                "enough to observe."
                if seen
                else "an observation."
            )
        )
    obs = shown["observed_rate"].to_numpy(dtype=float)
    mod = shown["model_rate"].to_numpy(dtype=float)
    due = shown["due"].to_numpy(dtype=float)
    noise = 2 * np.sqrt(mod * (1 - mod) / due)
    diff = mod - obs
    big = np.abs(diff) > np.maximum(gap, noise)
    steps = shown["renewal"].to_numpy(dtype=np.int64)
    for sign, word, meaning in ((1, "above", "optimistic"), (-1, "below", "cautious")):
        hit = big & (sign * diff > 0)
        if hit.any():
            where = _and(
                [
                    f"the {_ordinal(int(k))} renewal ({m:.1%} against {o:.1%} observed)"
                    for k, m, o in zip(steps[hit], mod[hit], obs[hit], strict=True)
                ]
            )
            lines.append(
                f"{scheme}: the model runs noticeably {word} what was observed at {where}, "
                f"more than chance explains: read its projected rates as {meaning}, and "
                "plan with the observed ones."
            )
    return lines


def _model_line(ax: Any, x: Any, y: Any, seen: int, colour: str, scheme: str) -> None:
    """The model's curve: solid over the renewals observed, dashed beyond (projection)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    inside = x <= seen
    if inside.any():
        ax.plot(x[inside], y[inside], color=colour, linewidth=2, label=f"{scheme}: sBG model")
    k = max(int(inside.sum()) - 1, 0)
    if k < len(x) - 1:
        ax.plot(
            x[k:],
            y[k:],
            color=colour,
            linewidth=2,
            linestyle="--",
            label=f"{scheme}: sBG projection (not yet observed)",
        )


def renewal_chart(renewals: Renewals | None, periods: int = 8) -> Figure | None:
    """Renewal curves: members still with us after each renewal, and renewal rates.

    Left: the share of a new cohort still members after each renewal, from the sBG
    model (line) and observed (points). Right: the renewal rate at each renewal. The
    model's line is solid over the renewals observed and dashed beyond them, where it
    is a projection. Observed points resting on fewer than ``min_group`` members are
    left out.
    """
    if renewals is None or not renewals.models:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(charts.FIGSIZE[0] * 1.2, charts.FIGSIZE[1]))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (scheme, model) in enumerate(renewals.models.items()):
        c = colours[i % len(colours)]
        r = renewals.rates.loc[renewals.rates["scheme"] == scheme]
        n = max(periods, int(r["renewal"].max()) if len(r) else 0)
        proj = model.project(n)
        ok = r.loc[r["due"] >= renewals.min_group].sort_values("renewal")
        # observed survival: product of the observed rates while every step is reliable
        steps = ok["renewal"].to_numpy()
        n_ok = int(np.argmax(np.r_[steps, -1] != np.arange(1, len(steps) + 2)))
        ok_run = ok.iloc[:n_ok]
        surv = np.r_[1.0, np.cumprod(ok_run["observed_rate"].to_numpy())]
        _model_line(left, proj["period"], proj["survival"], n_ok, c, scheme)
        left.plot(
            np.r_[0, ok_run["renewal"].to_numpy()],
            surv,
            "o",
            color=c,
            markersize=8,
            label=f"{scheme}: observed",
        )
        seen = int(steps.max()) if len(steps) else 0
        _model_line(right, proj["period"][1:], proj["retention_rate"][1:], max(seen, 1), c, scheme)
        right.plot(
            ok["renewal"],
            ok["observed_rate"],
            "o",
            color=c,
            markersize=8,
            label=f"{scheme}: observed",
        )
    term = f"each term ≈ {renewals.term_months:.0f} months"
    left.set_title("Members still with us")
    left.set_xlabel(f"Renewals since joining ({term})")
    left.set_ylabel("Share of those who joined")
    right.set_title("Renewal rate at each renewal")
    right.set_xlabel(f"Renewal number ({term})")
    right.set_ylabel("Share renewing")
    for ax in (left, right):
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylim(0, 1.02)
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle("Membership renewal curves", fontweight="bold", fontsize=16)
    return fig


# ---------------------------------------------------------------------------
# 6. At-risk high-value patrons
# ---------------------------------------------------------------------------
def at_risk_text(result: SeasonCLV, currency: str = "GBP", min_group: int = 10) -> str:
    """The at-risk rule and its result in one paragraph (aggregates only).

    When fewer than ``min_group`` patrons are at risk, their number and value are not
    given.
    """
    run = result.run
    s = run.settings
    pred, risk = run.predictions, run.at_risk
    cut = float(pred["clv"].quantile(1.0 - s.at_risk_top_share)) if len(pred) else float("nan")
    high = pred["clv"] >= cut
    total = float(pred["clv"].sum())
    held = float(pred.loc[high, "clv"].sum()) / total if total > 0 else 0.0
    text = (
        f"The top {s.at_risk_top_share:.0%} of customers by predicted value "
        f"({int(high.sum()):,} people, each worth at least {format_money(cut, currency)}) "
        f"hold {held:.0%} of it."
    )
    n, value = len(risk), float(risk["clv"].sum())
    if n == 0:
        return text + (
            f" None of them has less than a {s.at_risk_p_alive:.0%} chance of still being active."
        )
    if n < min_group:
        return text + (
            f" Fewer than {min_group} of them have less than a {s.at_risk_p_alive:.0%} "
            "chance of still being active; the group is too small to describe here."
        )
    return text + (
        f" Of them, **{n:,}** now have less than a {s.at_risk_p_alive:.0%} chance of still "
        f"being active; together they carry {format_money(value, currency)} of predicted "
        f"value ({value / total if total > 0 else 0:.0%} of the total)."
    )


def at_risk_summary(
    result: SeasonCLV, groups: pd.DataFrame, column: str = "tier", min_group: int = 10
) -> pd.DataFrame:
    """At-risk patrons counted by group (tier by default), with their value; small groups masked.

    Returns
    -------
    pandas.DataFrame
        ``<column>, at-risk patrons, their value, average value, average chance active,
        share of the group's high-value patrons``; a final ``All`` row. No customer ids.
    """
    run = result.run
    pred, risk = run.predictions, run.at_risk
    s = run.settings
    cut = float(pred["clv"].quantile(1.0 - s.at_risk_top_share)) if len(pred) else 0.0
    ids = pred[clv.CUSTOMER_ID].astype("string")
    if column in groups.columns:
        g = groups[column].reindex(pd.Index(ids)).fillna(NOT_GROUPED.format(column=column))
        g = g.to_numpy()
    else:
        g = np.full(len(pred), "All customers", dtype=object)
    frame = pd.DataFrame(
        {
            column: g,
            "clv": pred["clv"].to_numpy(dtype=float),
            "p_alive": pred["p_alive"].to_numpy(dtype=float),
            "high": pred["clv"].to_numpy(dtype=float) >= cut,
            "risk": isin(ids, risk[clv.CUSTOMER_ID].astype("string")).to_numpy(),
        }
    )
    hi = frame.loc[frame["high"]]
    rk = frame.loc[frame["risk"]]
    agg = pd.DataFrame(
        {
            "at-risk patrons": rk.groupby(column, sort=False).size(),
            "their value": rk.groupby(column, sort=False)["clv"].sum(),
            "average chance active": rk.groupby(column, sort=False)["p_alive"].mean(),
            "high-value": hi.groupby(column, sort=False).size(),
        }
    )
    agg = agg.loc[agg["at-risk patrons"].fillna(0) > 0]
    order = list(groups.attrs.get("order", {}).get(column, []))
    order += [k for k in agg.index if k not in order]
    agg = agg.reindex([k for k in order if k in agg.index])
    agg.loc["All"] = [
        len(rk),
        float(rk["clv"].sum()),
        float(rk["p_alive"].mean()) if len(rk) else np.nan,
        len(hi),
    ]
    out = pd.DataFrame(
        {
            column: agg.index.astype(str),
            "at-risk patrons": agg["at-risk patrons"].fillna(0).astype(np.int64).to_numpy(),
            "their value": agg["their value"].to_numpy(dtype=float),
            "average value": (agg["their value"] / agg["at-risk patrons"]).to_numpy(dtype=float),
            "average chance active": agg["average chance active"].to_numpy(dtype=float),
            "share of the group's high-value patrons": (
                agg["at-risk patrons"] / agg["high-value"]
            ).to_numpy(dtype=float),
        }
    )
    # the "All" row (and the at-risk sentence) give the total: protect the hidden rows
    return suppress_with_total(
        out, "at-risk patrons", min_group, fixed=(out[column] == "All").to_numpy()
    )


def write_at_risk(result: SeasonCLV, groups: pd.DataFrame, output_dir: str | Path) -> Path:
    """Write the per-customer at-risk list for the moments step (pseudonymous ids only).

    Written as Parquet (``clv_at_risk.parquet``), which the report index lists apart, with
    the customer lists for the box office, never among the exports.
    Columns: ``customer_id, clv, p_alive, expected_purchases`` and, when available,
    ``tier`` and ``persona``; ``attrs`` are not stored, so the settings used are added as
    columns ``model``, ``as_of``.
    """
    risk = result.run.at_risk.copy()
    ids = pd.Index(risk[clv.CUSTOMER_ID].astype("string"))
    for col in ("tier", "persona"):
        if col in groups.columns:
            risk[col] = groups[col].reindex(ids).to_numpy()
    risk["model"] = result.choice.label
    risk["as_of"] = result.window.observation_end
    path = Path(output_dir) / AT_RISK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    risk.to_parquet(path, index=False)
    return path
