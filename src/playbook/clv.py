"""Customer lifetime value: summaries, model checks, predictions and their plain reading.

The flow a notebook or ``playbook clv`` follows:

1. :func:`calibration_holdout` turns ``order_lines`` into one row per customer:
   ``customer_id, frequency, recency, T, monetary_value`` over a calibration period, plus
   what the same customers did afterwards (``frequency_holdout``,
   ``monetary_value_holdout``, ``duration_holdout``).
2. Models from :mod:`playbook.clv_models` are fitted on it (:class:`BGNBD`,
   :class:`ParetoNBD`, :class:`ModifiedBGNBD`, spend with :class:`GammaGamma`).
3. :func:`compare_holdout`, :func:`holdout_by_frequency` and :func:`cumulative_tracking`
   check them against what really happened; :func:`check_gamma_gamma` checks the spend
   model's assumption.
4. :func:`predict_clv` gives each customer's expected purchases, probability of still
   being active and lifetime value; :func:`at_risk_patrons` lists valuable patrons who
   are drifting away; :func:`interpret_params` says what the parameters mean.

:func:`fit_clv` runs all of it with the organisation's settings (``clv:`` in
``org.yaml``, defaults in ``playbook/defaults/clv.yaml``).

Definitions (those of ``lifetimes``, Fader & Hardie)
----------------------------------------------------
A *purchase occasion* is a customer's day with at least one ticket that stood (not
returned, exchanged or void: :func:`playbook.tables.effective_tickets`); several
tickets or orders on one day are one occasion. Comps are not purchases unless
``count_comps`` is set, and never count as spend. For each customer, over the days up to
the end of a period:

- ``frequency``: repeat occasions (distinct purchase days − 1);
- ``recency``: time from the first to the last occasion;
- ``T``: time from the first occasion to the end of the period;
- ``monetary_value``: mean spend of the *repeat* occasions (0 without repeats).

Times are whole days divided by the days in the time unit (day 1, week 7, month
365.25 / 12): the result of ``lifetimes.utils.summary_data_from_transaction_data`` with
``freq="D"`` and ``freq_multiplier`` 1, 7 or 30.4375, as the tests check. Period ends
are inclusive whole days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from playbook.clv_models import (
    BGBB,
    BGNBD,
    FREQUENCY,
    MODELS,
    MONETARY,
    N_PERIODS,
    RECENCY,
    T_COL,
    CLVModel,
    GammaGamma,
    ModifiedBGNBD,
    ParetoNBD,
    TransactionModel,
    distinct_rows,
    fit_bgnbd,
    make_model,
)
from playbook.config import OrgConfig, package_defaults
from playbook.errors import PlaybookError
from playbook.parsing import isin
from playbook.schema import OrderLines as OL
from playbook.schema import Performances as PF
from playbook.tables import Tables, effective_tickets

__all__ = [
    "BGBB",
    "BGNBD",
    "TIME_UNITS",
    "CLVForecast",
    "CLVRun",
    "CLVSettings",
    "GammaGamma",
    "GammaGammaCheck",
    "ModifiedBGNBD",
    "ParetoNBD",
    "at_risk_patrons",
    "calibration_holdout",
    "check_gamma_gamma",
    "clv_settings",
    "compare_holdout",
    "cumulative_tracking",
    "fit_bgnbd",
    "fit_clv",
    "forecast",
    "holdout_by_frequency",
    "interpret_params",
    "predict_clv",
    "purchase_occasions",
    "summarise_opportunities",
    "summarise_transactions",
]

CUSTOMER_ID = OL.customer_id
FREQUENCY_HOLDOUT = "frequency_holdout"
MONETARY_HOLDOUT = "monetary_value_holdout"
DURATION_HOLDOUT = "duration_holdout"

TIME_UNITS: dict[str, float] = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}
"""Days in each time unit."""

DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CLVSettings:
    """The ``clv:`` settings of an organisation, checked (see ``defaults/clv.yaml``)."""

    time_unit: str = "week"
    horizon_months: int = 36
    annual_discount_rate: float = 0.10
    margin: float = 1.0
    count_comps: bool = False
    model: str = "bgnbd"
    compare_models: tuple[str, ...] = ("bgnbd", "pareto_nbd", "mbgnbd")
    penalizer: float = 0.0
    retry_penalizer: float = 0.001
    at_risk_p_alive: float = 0.5
    at_risk_top_share: float = 0.2
    gamma_gamma_max_correlation: float = 0.3
    membership_grace_days: int = 30


def clv_settings(cfg: OrgConfig | None = None, **overrides: Any) -> CLVSettings:
    """The organisation's CLV settings (package defaults when ``cfg`` is None).

    Parameters
    ----------
    cfg : OrgConfig, optional
        Loaded organisation settings; its ``clv:`` section overrides the defaults.
    **overrides
        Settings given directly (e.g. from the command line); ``None`` values are ignored.

    Raises
    ------
    PlaybookError
        When a value is of the wrong kind or out of range, naming the setting.
    """
    base = dict(package_defaults().get("clv", {}))
    if cfg is not None:
        base.update(dict(cfg.section("clv")))
    base.update({k: v for k, v in overrides.items() if v is not None})
    known = set(CLVSettings.__dataclass_fields__)
    unknown = sorted(set(base) - known)
    if unknown:
        raise PlaybookError(
            f"Unknown clv setting(s): {', '.join(unknown)}.\n"
            f"What to do: use only: {', '.join(sorted(known))}."
        )

    def bad(key: str, rule: str) -> PlaybookError:
        return PlaybookError(
            f"Setting clv.{key} is {base[key]!r}; it must be {rule}.\n"
            f"What to do: fix 'clv: {key}:' in org.yaml (the default is "
            f"{getattr(CLVSettings, key)!r})."
        )

    def number(key: str, lo: float, hi: float, *, lo_open: bool = False) -> float:
        v = base[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad(key, f"a number from {lo} to {hi}")
        if not (lo < v if lo_open else lo <= v) or v > hi:
            raise bad(key, f"a number from {lo} to {hi}" + (f" (above {lo})" if lo_open else ""))
        return float(v)

    unit = base["time_unit"]
    if unit not in TIME_UNITS:
        raise bad("time_unit", f"one of {', '.join(TIME_UNITS)}")
    horizon = base["horizon_months"]
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 600:
        raise bad("horizon_months", "a whole number of months from 1 to 600")
    grace = base["membership_grace_days"]
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 366:
        raise bad("membership_grace_days", "a whole number of days from 0 to 366")
    if not isinstance(base["count_comps"], bool):
        raise bad("count_comps", "true or false")
    names = base["compare_models"]
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in (base["model"], *names):
        if name not in MODELS:
            raise PlaybookError(
                f"Setting clv.model / clv.compare_models names {name!r}, which the kit does "
                f"not know.\nWhat to do: use {', '.join(MODELS)}."
            )
    return CLVSettings(
        time_unit=unit,
        horizon_months=horizon,
        annual_discount_rate=number("annual_discount_rate", 0.0, 0.99),
        margin=number("margin", 0.0, 1.0, lo_open=True),
        count_comps=base["count_comps"],
        model=base["model"],
        compare_models=names,
        penalizer=number("penalizer", 0.0, 100.0),
        retry_penalizer=number("retry_penalizer", 0.0, 100.0),
        at_risk_p_alive=number("at_risk_p_alive", 0.0, 1.0, lo_open=True),
        at_risk_top_share=number("at_risk_top_share", 0.0, 1.0, lo_open=True),
        gamma_gamma_max_correlation=number("gamma_gamma_max_correlation", 0.0, 1.0),
        membership_grace_days=grace,
    )


def _unit_days(time_unit: str) -> float:
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise PlaybookError(
            f"Time unit {time_unit!r} is not one the kit knows.\n"
            f"What to do: use one of {', '.join(TIME_UNITS)}."
        ) from None


def _day(value: Any, what: str) -> int:
    """A date as whole days since 1970-01-01 (times within the day are dropped)."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise PlaybookError(
            f"The {what} {value!r} is not a date.\nWhat to do: write it as YYYY-MM-DD."
        ) from None
    if ts is pd.NaT:
        raise PlaybookError(f"The {what} is missing.\nWhat to do: give a date as YYYY-MM-DD.")
    return int(np.datetime64(ts.to_datetime64(), "D").astype(np.int64))


def _date(day: int) -> pd.Timestamp:
    return pd.Timestamp(np.datetime64(int(day), "D"))


# ---------------------------------------------------------------------------
# Purchase occasions
# ---------------------------------------------------------------------------
@dataclass
class _Occasions:
    """Purchase occasions as sorted arrays (customer code, then day)."""

    ids: pd.Index  # customer_id of each code
    cust: np.ndarray  # int64 customer code per occasion
    day: np.ndarray  # int64 days since epoch
    value: np.ndarray  # spend on the occasion; NaN when only comps


def _order_lines(data: Tables | pd.DataFrame) -> pd.DataFrame:
    return data["order_lines"] if isinstance(data, Tables) else data


_OCCASION_COLUMNS = [
    OL.line_id,
    OL.customer_id,
    OL.purchase_time,
    OL.item_type,
    OL.status,
    OL.parent_line_id,
    OL.paid_amount,
    OL.is_comp,
]


def _occasions(order_lines: pd.DataFrame, count_comps: bool = False) -> _Occasions:
    lines = effective_tickets(order_lines[_OCCASION_COLUMNS])  # narrow: cheaper row selection
    comp = lines[OL.is_comp].to_numpy(dtype=bool)
    keep = np.ones(len(lines), dtype=bool) if count_comps else ~comp
    if not keep.any():
        raise PlaybookError(
            "There are no ticket purchases to summarise (after leaving out returns, "
            "exchanges, void lines" + ("" if count_comps else " and comps") + ").\n"
            "What to do: check that order_lines holds ticket sales (item_type 'ticket')."
        )
    codes, ids = pd.factorize(lines[OL.customer_id], sort=True)
    codes, comp = codes[keep], comp[keep]
    present = np.bincount(codes, minlength=len(ids)) > 0  # drop customers with only comps
    codes = (np.cumsum(present) - 1)[codes]
    ids = ids[present]
    day = lines[OL.purchase_time].to_numpy(dtype="datetime64[ns]")[keep].astype("datetime64[D]")
    day = day.astype(np.int64)
    paid = np.where(comp, 0.0, lines[OL.paid_amount].to_numpy(dtype=float)[keep])
    d0 = int(day.min())
    span = int(day.max()) - d0 + 1
    key = codes.astype(np.int64) * span + (day - d0)
    ukey, inv = np.unique(key, return_inverse=True)
    value = np.bincount(inv, weights=paid, minlength=len(ukey))
    n_paid = np.bincount(inv, weights=(~comp).astype(float), minlength=len(ukey))
    value[n_paid == 0] = np.nan
    return _Occasions(
        ids=pd.Index(ids, name=CUSTOMER_ID),
        cust=ukey // span,
        day=ukey % span + d0,
        value=value,
    )


def purchase_occasions(
    order_lines: Tables | pd.DataFrame, *, count_comps: bool = False
) -> pd.DataFrame:
    """One row per customer and purchase day, with the day's net spend.

    Parameters
    ----------
    order_lines : pandas.DataFrame or Tables
        Canonical ``order_lines`` (or the tables holding it).
    count_comps : bool
        Whether a day with only comps is a purchase occasion (its spend is missing).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, day, value``, sorted by customer and day.
    """
    occ = _occasions(_order_lines(order_lines), count_comps)
    return pd.DataFrame(
        {
            CUSTOMER_ID: occ.ids[occ.cust].astype("string"),
            "day": occ.day.astype("datetime64[D]").astype("datetime64[ns]"),
            "value": occ.value,
        }
    )


def _per_customer(
    occ: _Occasions, mask: np.ndarray, end_day: int, unit_days: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """frequency / recency / T / monetary_value from the occasions in ``mask``.

    Also returns the customer code of each row.
    """
    cust, day, value = occ.cust[mask], occ.day[mask], occ.value[mask]
    if len(cust) == 0:  # pragma: no cover - callers check the dates first
        return pd.DataFrame(
            {CUSTOMER_ID: pd.Series([], dtype="string")}
            | {c: pd.Series([], dtype=float) for c in (FREQUENCY, RECENCY, T_COL, MONETARY)}
        ), np.zeros(0, dtype=np.int64)
    first_row = np.r_[True, cust[1:] != cust[:-1]]
    starts = np.flatnonzero(first_row)
    ends = np.r_[starts[1:], len(cust)] - 1
    group = np.cumsum(first_row) - 1
    count = ends - starts + 1
    first, last = day[starts], day[ends]
    repeat = ~first_row & ~np.isnan(value)
    n_groups = len(starts)
    spend = np.bincount(group[repeat], weights=value[repeat], minlength=n_groups)
    n_spend = np.bincount(group[repeat], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(n_spend > 0, spend / np.maximum(n_spend, 1), 0.0)
    codes = cust[starts]
    frame = pd.DataFrame(
        {
            CUSTOMER_ID: occ.ids[codes].astype("string"),
            FREQUENCY: (count - 1).astype(float),
            RECENCY: (last - first) / unit_days,
            T_COL: (end_day - first) / unit_days,
            MONETARY: monetary,
        }
    )
    return frame, codes


def summarise_transactions(
    order_lines: Tables | pd.DataFrame,
    *,
    observation_end: Any = None,
    time_unit: str = "week",
    count_comps: bool = False,
    until_last_purchase: bool = False,
) -> pd.DataFrame:
    """``frequency, recency, T, monetary_value`` per customer up to the observation end.

    Parameters
    ----------
    order_lines : pandas.DataFrame or Tables
        Canonical ``order_lines``.
    observation_end : date-like, optional
        Last day observed, inclusive (default: the last purchase day).
    until_last_purchase : bool
        End the observation at the last purchase day when that comes before
        ``observation_end``: the exports were taken then, so the weeks after it are not
        silence on the customers' part.
    time_unit : {"day", "week", "month"}
        Unit of ``recency`` and ``T``.
    count_comps : bool
        Whether comp-only days count as purchase occasions (never as spend).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, T, monetary_value``, one row per customer with
        a purchase on or before the observation end, sorted by ``customer_id``.
        ``attrs`` records ``time_unit`` and ``observation_end``.
    """
    unit_days = _unit_days(time_unit)
    occ = _occasions(_order_lines(order_lines), count_comps)
    end = (
        int(occ.day.max()) if observation_end is None else _day(observation_end, "observation end")
    )
    if until_last_purchase:
        end = min(end, int(occ.day.max()))
    if end < int(occ.day.min()):
        raise PlaybookError(
            f"The observation end {_date(end).date()} is before the first purchase "
            f"({_date(int(occ.day.min())).date()}).\nWhat to do: use a later date."
        )
    out, _ = _per_customer(occ, occ.day <= end, end, unit_days)
    out.attrs = {"time_unit": time_unit, "observation_end": str(_date(end).date())}
    return out


def calibration_holdout(
    order_lines: Tables | pd.DataFrame,
    calibration_end: Any,
    observation_end: Any = None,
    *,
    time_unit: str = "week",
    count_comps: bool = False,
) -> pd.DataFrame:
    """Customer summary over a calibration period, with what happened afterwards.

    The calibration columns keep the standard names, so any model fits on the result
    directly; the holdout columns describe the same customers after the calibration end
    (customers whose first purchase comes later are not included).

    Parameters
    ----------
    order_lines : pandas.DataFrame or Tables
        Canonical ``order_lines``.
    calibration_end : date-like
        Last day of the calibration period, inclusive.
    observation_end : date-like, optional
        Last day of the holdout period, inclusive (default: the last purchase day).
    time_unit : {"day", "week", "month"}
        Unit of ``recency``, ``T`` and ``duration_holdout``.
    count_comps : bool
        Whether comp-only days count as purchase occasions.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, T, monetary_value`` (calibration),
        ``frequency_holdout`` (purchase occasions in the holdout), ``monetary_value_holdout``
        (their mean spend per occasion, as for ``monetary_value``, 0 without any;
        ``lifetimes`` averages raw rows here instead) and ``duration_holdout`` (holdout
        length).

    Raises
    ------
    PlaybookError
        When the calibration end is not between the first and the last purchase, or the
        observation end is not after the calibration end.
    """
    unit_days = _unit_days(time_unit)
    occ = _occasions(_order_lines(order_lines), count_comps)
    first_day, last_day = int(occ.day.min()), int(occ.day.max())
    cal = _day(calibration_end, "calibration end")
    end = last_day if observation_end is None else _day(observation_end, "observation end")
    if cal < first_day:
        raise PlaybookError(
            f"The calibration end {_date(cal).date()} is before the first purchase "
            f"({_date(first_day).date()}), so there is nothing to fit on.\n"
            "What to do: choose a later calibration end."
        )
    if cal >= min(end, last_day):
        raise PlaybookError(
            f"The calibration end {_date(cal).date()} leaves no later purchases to check "
            f"the model against (the last purchase is on {_date(last_day).date()}"
            + (f", the observation end {_date(end).date()}" if observation_end is not None else "")
            + ").\nWhat to do: choose a calibration end well before the last purchase, "
            "e.g. a year before it, or a later observation end."
        )
    out, codes = _per_customer(occ, occ.day <= cal, cal, unit_days)
    hold = (occ.day > cal) & (occ.day <= end)
    n = len(occ.ids)
    in_cal = np.zeros(n, dtype=bool)
    in_cal[codes] = True
    hold &= in_cal[occ.cust]
    counts = np.bincount(occ.cust[hold], minlength=n)
    paid = hold & ~np.isnan(occ.value)
    spend = np.bincount(occ.cust[paid], weights=occ.value[paid], minlength=n)
    n_paid = np.bincount(occ.cust[paid], minlength=n)
    out[FREQUENCY_HOLDOUT] = counts[codes].astype(float)
    out[MONETARY_HOLDOUT] = np.where(
        n_paid[codes] > 0, spend[codes] / np.maximum(n_paid[codes], 1), 0.0
    )
    out[DURATION_HOLDOUT] = (end - cal) / unit_days
    out.attrs = {
        "time_unit": time_unit,
        "calibration_end": str(_date(cal).date()),
        "observation_end": str(_date(end).date()),
    }
    return out


# ---------------------------------------------------------------------------
# Discrete opportunities (BG/BB)
# ---------------------------------------------------------------------------
def summarise_opportunities(
    order_lines: Tables | pd.DataFrame,
    *,
    opportunity: str = "season",
    performances: pd.DataFrame | None = None,
    season_start_month: int = 9,
    observation_end: Any = None,
    count_comps: bool = False,
) -> pd.DataFrame:
    """``frequency, recency, n_periods`` per customer over discrete opportunities (BG/BB).

    The opportunity of a customer's first purchase is their start; after it,
    ``n_periods`` opportunities were open to them, ``frequency`` is how many of those
    they bought at, and ``recency`` is the number of the last one they bought at
    (0 if none).

    Parameters
    ----------
    order_lines : pandas.DataFrame or Tables
        Canonical ``order_lines`` (or the tables; then ``performances`` is taken from them).
    opportunity : {"season", "performance"}
        ``season``: each complete season is one opportunity (a season still running at
        the observation end is left out). ``performance``: each performance that is not
        cancelled and starts by the observation end is one opportunity, in date order;
        tickets without a performance are ignored.
    performances : pandas.DataFrame, optional
        Canonical ``performances`` (needed for ``opportunity="performance"``).
    season_start_month : int
        First month of a season.
    observation_end : date-like, optional
        Last day observed (default: the last purchase day).
    count_comps : bool
        Whether comp-only tickets count.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, n_periods``; ``attrs["opportunity"]``.
    """
    if isinstance(order_lines, Tables) and performances is None:
        performances = order_lines["performances"]
    lines = _order_lines(order_lines)
    if opportunity == "season":
        occ = _occasions(lines, count_comps)
        end = (
            int(occ.day.max())
            if observation_end is None
            else _day(observation_end, "observation end")
        )
        keep = occ.day <= end
        dates = pd.DatetimeIndex(occ.day[keep].astype("datetime64[D]"))
        index = dates.year.to_numpy() - (dates.month.to_numpy() < season_start_month)
        # the season holding the day after the observation end is not complete
        next_day = _date(end + 1)
        last_complete = next_day.year - int(next_day.month < season_start_month) - 1
        cust = occ.cust[keep]
        ok = index <= last_complete
        pairs = np.unique(np.stack([cust[ok], index[ok]], axis=1), axis=0)
        ids = occ.ids
        last_index = last_complete
    elif opportunity == "performance":
        if performances is None or len(performances) == 0:
            raise PlaybookError(
                "Performances as opportunities need the performances table, which is empty.\n"
                "What to do: add a 'performances' source in org.yaml, or use seasons."
            )
        eff = effective_tickets(lines)
        if not count_comps:
            eff = eff.loc[~eff[OL.is_comp].to_numpy(dtype=bool)]
        perf = performances.loc[~performances[PF.cancelled].to_numpy(dtype=bool)]
        end_ts = (
            eff[OL.purchase_time].max()
            if observation_end is None
            else pd.Timestamp(observation_end) + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
        )
        perf = perf.loc[perf[PF.start_time] <= end_ts].sort_values(
            [PF.start_time, PF.performance_id], kind="stable"
        )
        rank = pd.Series(np.arange(len(perf)), index=perf[PF.performance_id].to_numpy())
        eff = eff.loc[isin(eff[OL.performance_id], rank.index)]
        if len(eff) == 0:
            raise PlaybookError(
                "No ticket line names a performance held by the observation end.\n"
                "What to do: map performance_id in the order_lines source."
            )
        codes, ids = pd.factorize(eff[OL.customer_id], sort=True)
        index = rank.reindex(eff[OL.performance_id].to_numpy()).to_numpy(dtype=np.int64)
        pairs = np.unique(np.stack([codes.astype(np.int64), index], axis=1), axis=0)
        ids = pd.Index(ids, name=CUSTOMER_ID)
        last_index = len(perf) - 1
    else:
        raise PlaybookError(
            f"Opportunity {opportunity!r} is not one the kit knows.\n"
            "What to do: use 'season' or 'performance'."
        )
    if len(pairs) == 0:
        raise PlaybookError(
            "No purchases fall in a complete opportunity (season or performance) by the "
            "observation end.\nWhat to do: use a later observation end."
        )
    cust, idx = pairs[:, 0], pairs[:, 1]
    first_row = np.r_[True, cust[1:] != cust[:-1]]
    starts = np.flatnonzero(first_row)
    ends = np.r_[starts[1:], len(cust)] - 1
    first = idx[starts]
    out = pd.DataFrame(
        {
            CUSTOMER_ID: ids[cust[starts]].astype("string"),
            FREQUENCY: (ends - starts).astype(np.int64),
            RECENCY: (idx[ends] - first).astype(np.int64),
            N_PERIODS: (last_index - first).astype(np.int64),
        }
    )
    out.attrs = {"opportunity": opportunity}
    return out


# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GammaGammaCheck:
    """The Gamma-Gamma assumption checked on repeat buyers."""

    correlation: float
    n_customers: int
    threshold: float
    ok: bool
    verdict: str


def check_gamma_gamma(summary: pd.DataFrame, threshold: float = 0.3) -> GammaGammaCheck:
    """Is spend per visit unrelated to how often people come? (the Gamma-Gamma assumption)

    Parameters
    ----------
    summary : pandas.DataFrame
        ``frequency, monetary_value`` per customer.
    threshold : float
        Largest absolute Pearson correlation accepted.

    Returns
    -------
    GammaGammaCheck
        The correlation among repeat buyers with a positive spend, and a verdict in
        plain words.
    """
    rep = summary.loc[(summary[FREQUENCY] > 0) & (summary[MONETARY] > 0), [FREQUENCY, MONETARY]]
    n = len(rep)
    if n < 3 or rep[FREQUENCY].nunique() < 2 or rep[MONETARY].nunique() < 2:
        return GammaGammaCheck(
            float("nan"),
            n,
            threshold,
            False,
            f"Only {n} repeat buyers with varied spend: too few to check whether spend per "
            "visit depends on how often people come. Treat lifetime values with care.",
        )
    corr = float(np.corrcoef(rep[FREQUENCY], rep[MONETARY])[0, 1])
    if abs(corr) <= threshold:
        link = "nearly unrelated" if abs(corr) < 0.1 else "only weakly related"
        verdict = (
            f"Spend per visit and number of visits are {link} (correlation "
            f"{corr:.2f} over {n:,} repeat buyers), close enough to the spend model's "
            "assumption of no link: its estimates can be used."
        )
        return GammaGammaCheck(corr, n, threshold, True, verdict)
    direction = "spend more" if corr > 0 else "spend less"
    verdict = (
        f"Frequent visitors {direction} per visit (correlation {corr:.2f} over {n:,} repeat "
        f"buyers, above {threshold:.2f}). The spend model assumes no such link, so its "
        "per-customer spend is biased: prefer each customer's own average, or segment first."
    )
    return GammaGammaCheck(corr, n, threshold, False, verdict)


# ---------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------
def _unique_rows(summary: pd.DataFrame, cols: Iterable[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Distinct rows of ``cols`` and, for each summary row, its distinct row."""
    return distinct_rows(summary.astype({c: float for c in cols}), list(cols))


def _time_unit(summary: pd.DataFrame, model: CLVModel | None, given: str | None) -> str:
    unit = given or summary.attrs.get("time_unit") or getattr(model, "time_unit_", None)
    if unit is None:
        raise PlaybookError(
            "The time unit of the summary is not known.\n"
            "What to do: pass time_unit='week' (or day, month)."
        )
    _unit_days(unit)
    return unit


def predict_clv(
    model: TransactionModel,
    summary: pd.DataFrame,
    *,
    spend_model: GammaGamma | None = None,
    horizon_months: int = 36,
    annual_discount_rate: float = 0.10,
    margin: float = 1.0,
    time_unit: str | None = None,
    units_per_month: float | None = None,
) -> pd.DataFrame:
    """Expected purchases, probability alive and lifetime value per customer.

    Lifetime value is the margin times the expected spend per purchase times the
    expected purchases in each month of the horizon, discounted to today at the annual
    rate (month ``m`` is discounted by ``(1 + rate) ** (m / 12)``).

    Parameters
    ----------
    model : TransactionModel
        A fitted BG/NBD, Pareto/NBD or MBG/NBD.
    summary : pandas.DataFrame
        ``customer_id, frequency, recency, T, monetary_value``.
    spend_model : GammaGamma, optional
        Fitted spend model. Without it, a customer's own average repeat spend is used
        (the repeat buyers' mean for customers without repeats).
    horizon_months : int
        Months ahead.
    annual_discount_rate : float
        Yearly discount rate (0.10: money next year is worth 10% less).
    margin : float
        Share of spend counted as value.
    time_unit : str, optional
        Unit of the summary (default: ``summary.attrs["time_unit"]``).
    units_per_month : float, optional
        Time units in a month (default: from the time unit, 365.25 / 12 days a month).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, frequency, recency, T, monetary_value, p_alive,
        expected_purchases`` (over the horizon, undiscounted), ``expected_spend`` (per
        purchase), ``clv``.
    """
    if units_per_month is None:
        units_per_month = DAYS_PER_MONTH / _unit_days(_time_unit(summary, model, time_unit))
    rows, inverse = _unique_rows(summary, (FREQUENCY, RECENCY, T_COL))
    months = np.arange(0, horizon_months + 1)
    cum = np.zeros((len(rows), len(months)))
    cum[:, 1:] = model.expected_purchases_curve(months[1:] * units_per_month, rows)
    step = np.diff(cum, axis=1)
    discount = (1.0 + annual_discount_rate) ** (-months[1:] / 12.0)
    per_row_discounted = np.einsum("ij,j->i", step, discount)  # no BLAS threads
    expected = cum[:, -1][inverse]
    p_alive = model.p_alive(rows)[inverse]
    if spend_model is not None:
        spend = spend_model.expected_spend(summary)
    else:
        mv = summary[MONETARY].to_numpy(dtype=float)
        rep = (summary[FREQUENCY].to_numpy() > 0) & (mv > 0)
        fallback = float(mv[rep].mean()) if rep.any() else 0.0
        spend = np.where(rep, mv, fallback)
    out = summary[[c for c in (CUSTOMER_ID, FREQUENCY, RECENCY, T_COL, MONETARY) if c in summary]]
    out = out.copy()
    out["p_alive"] = p_alive
    out["expected_purchases"] = expected
    out["expected_spend"] = spend
    out["clv"] = margin * spend * per_row_discounted[inverse]
    out.attrs = dict(summary.attrs) | {
        "horizon_months": horizon_months,
        "annual_discount_rate": annual_discount_rate,
        "margin": margin,
        "model": model.label,
    }
    return out


def at_risk_patrons(
    predictions: pd.DataFrame, *, p_alive_below: float = 0.5, top_share: float = 0.2
) -> pd.DataFrame:
    """Valuable patrons who may be drifting away.

    Parameters
    ----------
    predictions : pandas.DataFrame
        From :func:`predict_clv`.
    p_alive_below : float
        Probability of still being active below which a patron is at risk.
    top_share : float
        Share of customers, by lifetime value, that counts as high value.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, clv, p_alive, expected_purchases``, highest value first.
    """
    cols = [CUSTOMER_ID, "clv", "p_alive", "expected_purchases"]
    if len(predictions) == 0:
        return predictions.reindex(columns=cols)
    cut = float(predictions["clv"].quantile(1.0 - top_share))
    pick = (predictions["clv"] >= cut) & (predictions["p_alive"] < p_alive_below)
    out = predictions.loc[pick, cols].sort_values(["clv", CUSTOMER_ID], ascending=[False, True])
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------
# Checks against the holdout
# ---------------------------------------------------------------------------
def _need_holdout(summary: pd.DataFrame) -> None:
    missing = [c for c in (FREQUENCY_HOLDOUT, DURATION_HOLDOUT) if c not in summary]
    if missing:
        raise PlaybookError(
            f"The summary has no holdout columns ({', '.join(missing)}).\n"
            "What to do: build it with playbook.clv.calibration_holdout."
        )


def compare_holdout(models: Mapping[str, TransactionModel], summary: pd.DataFrame) -> pd.DataFrame:
    """How well each model predicted the holdout period, one row per model.

    Parameters
    ----------
    models : mapping of name to fitted model
        Fitted on the calibration columns of ``summary``.
    summary : pandas.DataFrame
        From :func:`calibration_holdout`.

    Returns
    -------
    pandas.DataFrame
        Indexed by model name: ``actual_total`` and ``predicted_total`` repeat purchases,
        ``total_error_pct``, per-customer ``mae`` and ``rmse``, ``log_likelihood``,
        ``converged`` and ``best`` (lowest RMSE). Sorted best first.
    """
    _need_holdout(summary)
    actual = summary[FREQUENCY_HOLDOUT].to_numpy(dtype=float)
    duration = summary[DURATION_HOLDOUT].to_numpy(dtype=float)
    rows = []
    for name, model in models.items():
        pred = model.expected_purchases(duration, summary)
        err = pred - actual
        rows.append(
            {
                "model": name,
                "label": model.label,
                "actual_total": float(actual.sum()),
                "predicted_total": float(pred.sum()),
                "total_error_pct": float(
                    100 * (pred.sum() - actual.sum()) / max(actual.sum(), 1e-12)
                ),
                "mae": float(np.mean(np.abs(err))),
                "rmse": float(np.sqrt(np.mean(err**2))),
                "log_likelihood": float(model.log_likelihood_),
                "converged": bool(model.converged_),
            }
        )
    table = pd.DataFrame(rows).set_index("model").sort_values("rmse", kind="stable")
    table["best"] = False
    if len(table):
        table.iloc[0, table.columns.get_loc("best")] = True
    return table


def holdout_by_frequency(
    model: TransactionModel, summary: pd.DataFrame, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency: actual and predicted.

    The data of the calibration-versus-holdout chart (Fader, Hardie & Lee 2005, fig. 4).

    Returns
    -------
    pandas.DataFrame
        ``frequency`` (label, the last bin is e.g. ``"7+"``), ``customers``, ``actual``,
        ``predicted``.
    """
    _need_holdout(summary)
    pred = model.expected_purchases(summary[DURATION_HOLDOUT].to_numpy(dtype=float), summary)
    freq = np.minimum(summary[FREQUENCY].to_numpy(dtype=np.int64), max_frequency)
    frame = pd.DataFrame(
        {"bin": freq, "actual": summary[FREQUENCY_HOLDOUT].to_numpy(dtype=float), "predicted": pred}
    )
    out = frame.groupby("bin").agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    out = out.reset_index()
    labels = out["bin"].astype(str)
    labels[out["bin"] == max_frequency] = f"{max_frequency}+"
    out.insert(0, "frequency", labels)
    return out.drop(columns="bin")


def cumulative_tracking(
    model: TransactionModel,
    order_lines: Tables | pd.DataFrame,
    calibration_end: Any,
    observation_end: Any = None,
    *,
    time_unit: str = "week",
    count_comps: bool = False,
) -> pd.DataFrame:
    """Cumulative repeat purchases, actual and expected by the model, step by step.

    The data of the tracking chart (Fader, Hardie & Lee 2005, fig. 2), for the customers
    whose first purchase falls on or before the calibration end. The expected curve is
    the sum, over each day's cohort of new customers, of the model's expected repeat
    purchases of a new customer since that day (computed once per lag in days, then
    combined by a convolution: no loop over customers).

    Returns
    -------
    pandas.DataFrame
        ``step`` (1, 2, …), ``date`` (last day of the step), ``actual``, ``expected``
        (cumulative repeat purchases up to that day) and ``calibration`` (whether the step
        ends within the calibration period).
    """
    unit_days = _unit_days(time_unit)
    occ = _occasions(_order_lines(order_lines), count_comps)
    cal = _day(calibration_end, "calibration end")
    end = (
        int(occ.day.max()) if observation_end is None else _day(observation_end, "observation end")
    )
    first_row = np.r_[True, occ.cust[1:] != occ.cust[:-1]]
    first_day_of = occ.day[first_row]  # one per customer code, in code order
    cohort = first_day_of <= cal
    if not cohort.any():
        raise PlaybookError(
            "No customer made a first purchase on or before the calibration end.\n"
            "What to do: choose a later calibration end."
        )
    start = int(first_day_of[cohort].min())
    span = end - start + 1
    births = np.bincount(first_day_of[cohort] - start, minlength=span)[:span].astype(float)
    in_cohort = cohort[np.cumsum(first_row) - 1]
    rep = ~first_row & in_cohort & (occ.day <= end)
    repeats = np.bincount(occ.day[rep] - start, minlength=span)[:span].astype(float)
    steps = np.arange(1, int(np.floor(span / unit_days)) + 1)
    bounds = np.rint(steps * unit_days).astype(np.int64)  # days since start, exclusive
    bounds = bounds[bounds <= span]
    steps = steps[: len(bounds)]
    lags = np.arange(span + 1)
    curve = np.zeros(span + 1)
    curve[1:] = model.expected_purchases_new(lags[1:] / unit_days)
    # expected(b) = sum over days d < b of births[d] * curve[b - d]
    conv = np.convolve(births, curve)
    expected = conv[bounds]
    actual = np.concatenate([[0.0], np.cumsum(repeats)])[bounds]
    return pd.DataFrame(
        {
            "step": steps,
            "date": (bounds - 1 + start).astype("datetime64[D]").astype("datetime64[ns]"),
            "actual": actual,
            "expected": expected,
            "calibration": (bounds - 1 + start) <= cal,
        }
    )


# ---------------------------------------------------------------------------
# Plain-language reading of the parameters
# ---------------------------------------------------------------------------
def _per_year(rate_per_unit: float, unit: str) -> float:
    return rate_per_unit * DAYS_PER_YEAR / _unit_days(unit)


def _spread(shape: float) -> str:
    if shape < 1:
        return (
            "very uneven: most people come rarely and a few come very often "
            f"(shape {shape:.2f}, below 1)"
        )
    return f"fairly even across people (shape {shape:.2f})"


def _read_bgnbd(m: CLVModel, unit: str) -> list[str]:
    r, alpha, a, b = m.params_[["r", "alpha", "a", "b"]].to_numpy()
    drop = a / (a + b)
    lines = [
        f"While still engaged, the average patron buys about {_per_year(r / alpha, unit):.1f} "
        f"times a year; buying rates are {_spread(r)}.",
        f"After each purchase, about {100 * drop:.0f}% of patrons drift away for good "
        f"(mean drop-out chance a/(a+b) = {drop:.2f}).",
    ]
    if m.name == "mbgnbd":
        lines.append("This model also lets people drift away right after their first purchase.")
    return lines


def _read_pareto(m: CLVModel, unit: str) -> list[str]:
    r, alpha, s, beta = m.params_[["r", "alpha", "s", "beta"]].to_numpy()
    stay = (beta / (beta + DAYS_PER_YEAR / _unit_days(unit))) ** s  # P(still engaged at 1 year)
    return [
        f"While still engaged, the average patron buys about {_per_year(r / alpha, unit):.1f} "
        f"times a year; buying rates are {_spread(r)}.",
        f"People can drift away at any time, not only after a visit: about {100 * stay:.0f}% "
        "of patrons are expected to still be engaged a year after their first purchase.",
    ]


def _read_bgbb(m: CLVModel, unit: str) -> list[str]:
    al, be, ga, de = m.params_[["alpha", "beta", "gamma", "delta"]].to_numpy()
    return [
        f"At each opportunity, an engaged patron buys with an average chance of "
        f"{100 * al / (al + be):.0f}%.",
        f"Between opportunities, an average of {100 * ga / (ga + de):.0f}% of engaged "
        "patrons drift away for good.",
    ]


def _read_gamma_gamma(m: CLVModel, unit: str) -> list[str]:
    p, q, v = m.params_[["p", "q", "v"]].to_numpy()
    if q <= 1:
        return ["The spend model has no finite average spend (q at most 1): do not use it."]
    return [
        f"The average spend per purchase across patrons is about {p * v / (q - 1):,.2f}; "
        "a patron's own history pulls their expected spend towards their own average the "
        "more often they have bought."
    ]


def _read_sbg(m: CLVModel, unit: str) -> list[str]:
    g, d = m.params_[["gamma", "delta"]].to_numpy()
    first = g / (g + d)
    r1 = 1 - first
    r5 = (d + 4) / (g + d + 4)
    return [
        f"About {100 * first:.0f}% of new members do not renew after their first term.",
        f"The model has renewal rates rise as the less committed leave: {100 * r1:.0f}% at "
        f"the first renewal, and it projects {100 * r5:.0f}% by the fifth (a projection: "
        "compare it with the renewals actually observed).",
    ]


_READERS = {
    "bgnbd": _read_bgnbd,
    "mbgnbd": _read_bgnbd,
    "pareto_nbd": _read_pareto,
    "bgbb": _read_bgbb,
    "gamma_gamma": _read_gamma_gamma,
    "sbg": _read_sbg,
}


def interpret_params(model: CLVModel, time_unit: str | None = None) -> list[str]:
    """What a fitted model's parameters say, in sentences a workshop room understands.

    Parameters
    ----------
    model : CLVModel
        Any fitted model of :mod:`playbook.clv_models` or :mod:`playbook.sbg`.
    time_unit : str, optional
        Unit of the summary it was fitted on (default: recorded at fit time, else week).

    Returns
    -------
    list of str
    """
    model._check_fitted()
    unit = time_unit or getattr(model, "time_unit_", None) or "week"
    _unit_days(unit)
    reader = _READERS.get(model.name)
    if reader is None:  # pragma: no cover - every model in the kit has a reader
        raise PlaybookError(f"No plain reading for the {model.label} model.")
    lines = reader(model, unit)
    if not model.converged_:
        lines.append(model.message_)
    return lines


# ---------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------
@dataclass
class CLVRun:
    """Everything :func:`fit_clv` computed."""

    settings: CLVSettings
    calibration: pd.DataFrame
    models: dict[str, TransactionModel]
    failed: dict[str, str]
    holdout: pd.DataFrame
    spend_check: GammaGammaCheck
    spend_model: GammaGamma | None
    summary: pd.DataFrame
    model: TransactionModel
    predictions: pd.DataFrame
    at_risk: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Parameters, holdout metrics and checks as plain JSON-ready values."""
        return {
            "time_unit": self.settings.time_unit,
            "calibration_end": self.calibration.attrs.get("calibration_end"),
            "observation_end": self.calibration.attrs.get("observation_end"),
            "settings": {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self.settings).items()
            },
            "calibration_models": {n: model_record(m) for n, m in self.models.items()},
            "failed_models": dict(self.failed),
            "holdout": _records(self.holdout.reset_index()),
            "spend_check": _clean(asdict(self.spend_check)),
            "spend_model": model_record(self.spend_model) if self.spend_model else None,
            "prediction_model": model_record(self.model),
            "interpretation": interpret_params(self.model, self.settings.time_unit)
            + (interpret_params(self.spend_model) if self.spend_model else []),
            "customers": int(len(self.predictions)),
            "at_risk_customers": int(len(self.at_risk)),
            "notes": list(self.notes),
        }


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_clean(r) for r in frame.to_dict(orient="records")]


def model_record(model: CLVModel) -> dict[str, Any]:
    """A fitted model as plain values: parameters, errors, intervals and the fit's story."""
    return _clean(
        {
            "model": model.label,
            "params": model.params_.to_dict(),
            "standard_errors": model.standard_errors_.to_dict(),
            "lower_95": model.confidence_intervals_["lower"].to_dict(),
            "upper_95": model.confidence_intervals_["upper"].to_dict(),
            "converged": bool(model.converged_),
            "penalizer_used": float(model.penalizer_used_),
            "message": model.message_,
            "customers": int(model.n_customers_),
            "rows_fitted": int(model.n_rows_fitted_),
            "log_likelihood": float(model.log_likelihood_),
        }
    )


@dataclass
class CLVForecast:
    """Lifetime-value predictions made on every purchase up to a date (see :func:`forecast`)."""

    summary: pd.DataFrame
    model: TransactionModel
    spend_check: GammaGammaCheck
    spend_model: GammaGamma | None
    predictions: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def forecast(
    data: Tables | pd.DataFrame, observation_end: Any, settings: CLVSettings | None = None
) -> CLVForecast:
    """Fit ``settings.model`` on every purchase up to a date and predict each customer's CLV.

    The one way the kit turns purchases into lifetime values (the CLV notebook, the
    scorecard and the at-risk moment all use it): the purchase model of
    ``settings.model``; the Gamma-Gamma spend model when its independence check passes
    and it has a finite mean spend (``q > 1``), else each customer's own average spend.

    Parameters
    ----------
    data : Tables or pandas.DataFrame
        The canonical tables (or ``order_lines``).
    observation_end : date-like
        Last day observed; the last purchase day when the purchases stop earlier (the
        exports were taken before that date), as in the CLV notebook's window.
    settings : CLVSettings, optional
        Default: the package defaults.

    Returns
    -------
    CLVForecast

    Raises
    ------
    NotEnoughData
        When the purchase model cannot be fitted (too few repeat buyers, say).
    """
    s = settings or clv_settings()
    summary = summarise_transactions(
        _order_lines(data),
        observation_end=observation_end,
        time_unit=s.time_unit,
        count_comps=s.count_comps,
        until_last_purchase=True,
    )
    kwargs = {"penalizer": s.penalizer, "retry_penalizer": s.retry_penalizer}
    check = check_gamma_gamma(summary, s.gamma_gamma_max_correlation)
    notes: list[str] = [check.verdict]
    spend: GammaGamma | None = None
    try:
        spend = GammaGamma(**kwargs).fit(summary)
    except PlaybookError as exc:
        notes.append(f"Spend model not fitted: {str(exc).splitlines()[0]}")
    if spend is not None and spend.params_["q"] <= 1:
        notes.append("Spend model has q <= 1 (no finite mean spend): own averages used instead.")
        spend = None
    final = make_model(s.model, **kwargs).fit(summary)
    if not final.converged_:
        notes.append(final.message_)
    predictions = predict_clv(
        final,
        summary,
        spend_model=spend if check.ok else None,
        horizon_months=s.horizon_months,
        annual_discount_rate=s.annual_discount_rate,
        margin=s.margin,
        time_unit=s.time_unit,
    )
    if spend is not None and not check.ok:
        notes.append("Because of the spend check, each customer's own average spend was used.")
    return CLVForecast(summary, final, check, spend, predictions, notes)


def fit_clv(
    data: Tables | pd.DataFrame,
    calibration_end: Any,
    *,
    observation_end: Any = None,
    settings: CLVSettings | None = None,
) -> CLVRun:
    """Fit, check against the holdout, refit on everything and predict.

    1. Calibration/holdout summary; every model in ``settings.compare_models`` (and
       ``settings.model``) fitted on the calibration period and compared on the holdout.
    2. The Gamma-Gamma assumption checked; the spend model fitted on the full period.
    3. ``settings.model`` refitted on all purchases up to the observation end, and
       per-customer predictions over ``settings.horizon_months``.

    Parameters
    ----------
    data : Tables or pandas.DataFrame
        The canonical tables (or ``order_lines``).
    calibration_end : date-like
        Last day of the calibration period.
    observation_end : date-like, optional
        Last day observed (default: last purchase day).
    settings : CLVSettings, optional
        Default: the package defaults.

    Returns
    -------
    CLVRun
    """
    s = settings or clv_settings()
    lines = _order_lines(data)
    calib = calibration_holdout(
        lines, calibration_end, observation_end, time_unit=s.time_unit, count_comps=s.count_comps
    )
    kwargs = {"penalizer": s.penalizer, "retry_penalizer": s.retry_penalizer}
    names = list(dict.fromkeys([*s.compare_models, s.model]))
    models: dict[str, TransactionModel] = {}
    failed: dict[str, str] = {}
    for name in names:
        try:
            models[name] = make_model(name, **kwargs).fit(calib)
        except PlaybookError as exc:
            if name == s.model:
                raise  # NotEnoughData when the data are too thin: the report says so
            failed[name] = str(exc)
    holdout = compare_holdout(models, calib)
    fc = forecast(lines, calib.attrs["observation_end"], s)
    at_risk = at_risk_patrons(
        fc.predictions, p_alive_below=s.at_risk_p_alive, top_share=s.at_risk_top_share
    )
    return CLVRun(
        settings=s,
        calibration=calib,
        models=models,
        failed=failed,
        holdout=holdout,
        spend_check=fc.spend_check,
        spend_model=fc.spend_model,
        summary=fc.summary,
        model=fc.model,
        predictions=fc.predictions,
        at_risk=at_risk,
        notes=fc.notes,
    )
