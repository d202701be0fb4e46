"""Backtests and measurement: how often moments would have fired, and did they work.

- :func:`backtest` replays the trigger library over past weeks: each week, with only
  the data known by the end of that week, which moments came due. It gives how often
  each trigger fires, the weekly volume per channel and the cost.
- :func:`add_outcomes` marks whether each customer booked within a window after the
  moment (the outcome every trigger is judged on by default).
- :func:`measure_uplift` compares treated and control customers per trigger: the
  difference in booking rates with a confidence interval (Newcombe's hybrid score
  interval by default, or Wald).
- :func:`sample_size` says how many moments are needed to detect a given uplift
  (two-proportion power calculation, unequal groups allowed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri  # standard normal quantile (lighter than scipy.stats)

from playbook.config import OrgConfig
from playbook.moments.actions import CONTROL, TREATMENT, resolve_channels
from playbook.moments.data import Arrays, MomentData, prepare_moments, take
from playbook.moments.find import MC, _features, empty_moments, evaluate, materialise
from playbook.moments.library import MomentSettings, moment_settings
from playbook.moments.triggers import days, pair_key, stack
from playbook.tables import Tables

BOOKED = "booked"
WEEK = "week"


# ---------------------------------------------------------------------------
# Backtest
# ---------------------------------------------------------------------------
def backtest(
    source: Tables | MomentData,
    start: Any,
    end: Any,
    *,
    settings: MomentSettings | None = None,
    cfg: OrgConfig | None = None,
    step_days: int = 7,
    triggers: list[str] | None = None,
) -> pd.DataFrame:
    """Replay the triggers over past weeks, as if the library had been running.

    Each step ends at an as-of instant (the last moment of the day ``start + k ×
    step_days - 1``); the moments due in that step's days are found with only the data
    known then. Event triggers fire once per event; state triggers (custom triggers)
    count a customer when they enter the state, not every week they stay in it. A
    trigger does not fire again for a customer within its ``repeat_after_days``. The
    at-risk trigger needs lifetime-value predictions as of each week and is skipped.

    Parameters
    ----------
    source : Tables or MomentData
    start, end : date-like
        First day and the day after the last (e.g. a season's bounds).
    settings, cfg
        As for :func:`find_moments`.
    step_days : int
        Length of a step (7: weekly).
    triggers : list of str, optional
        Only these trigger ids.

    Returns
    -------
    pandas.DataFrame
        The moments that came due (columns of :func:`find_moments`) plus ``week`` (the
        first day of the step) and ``channel`` resolved against consent (missing where
        no channel is allowed). ``attrs["skipped"]`` names triggers that could not run;
        ``attrs["weeks"]`` lists every step's first day (including quiet ones).
    """
    data = source if isinstance(source, MomentData) else prepare_moments(source)
    s = settings or moment_settings(cfg)
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    wanted = None if triggers is None else set(triggers)
    picked = [tc for tc in s.enabled if wanted is None or tc.id in wanted]
    skipped: dict[str, str] = {}
    if any(tc.id == "at_risk_patron" for tc in picked):
        skipped["at_risk_patron"] = "needs clv as of each week (not replayed)"
    full = [tc for tc in picked if tc.id != "at_risk_patron"]
    ev_idx = np.array([i for i, tc in enumerate(full) if tc.spec.timing == "event"], dtype=np.int64)
    st_idx = np.array([i for i, tc in enumerate(full) if tc.spec.timing == "state"], dtype=np.int64)
    events, states = [full[i] for i in ev_idx], [full[i] for i in st_idx]
    needs_features = any(tc.custom for tc in states)
    step = pd.Timedelta(days=step_days)
    weeks = list(pd.date_range(start, end - pd.Timedelta(days=1), freq=f"{step_days}D"))
    last = {
        i: np.full(data.n, -(2**62), dtype=np.int64)
        for i, tc in enumerate(full)
        if tc.repeat_after_days > 0
    }
    gaps = {i: days(full[i].repeat_after_days) for i in last}

    def state_keys(as_of: pd.Timestamp) -> tuple[Arrays, np.ndarray]:
        feats = _features(data, as_of, cfg) if needs_features else None
        raw, sk = evaluate(data, s, as_of, chosen=states, features=feats, horizon_days=0)
        skipped.update(sk)
        raw["tix"] = st_idx[raw["tix"]]
        return raw, pair_key(raw["tix"], raw["cust"])

    before = state_keys(weeks[0] - pd.Timedelta(seconds=1))[1] if states and weeks else np.zeros(0)
    parts = []
    for w in weeks:
        as_of = w + step - pd.Timedelta(seconds=1)
        found = []
        if events:
            raw, sk = evaluate(data, s, as_of, chosen=events, due_between=(w, as_of.normalize()))
            skipped.update(sk)
            raw["tix"] = ev_idx[raw["tix"]]
            found.append(raw)
        if states:
            raw, keys = state_keys(as_of)
            found.append(take(raw, ~np.isin(keys, before)))
            before = keys
        if not found:
            continue
        wk = stack(found)
        wk = take(wk, _not_too_soon(wk, last, gaps))
        wk["week"] = np.full(len(wk["cust"]), np.int64(w.value))
        parts.append(wk)
    if parts:
        allw = stack(parts)
        out = materialise(allw, data, full, sort=False)
        out[WEEK] = pd.Series(allw["week"].view("datetime64[ns]"))
    else:
        out = empty_moments()
        out[WEEK] = pd.Series([], dtype="datetime64[ns]")
    # consent as it stood at the end of each step (email unsubscribes by then count)
    out[MC.channel] = resolve_channels(
        out, data, s, as_of=out[WEEK] + step - pd.Timedelta(seconds=1)
    )
    out.attrs["skipped"] = skipped
    out.attrs["weeks"] = weeks
    return out


def _not_too_soon(wk: Arrays, last: dict[int, np.ndarray], gaps: dict[int, np.int64]) -> np.ndarray:
    """Mask: firings not within ``repeat_after_days`` of the trigger's last one for the customer.

    ``last`` (per trigger, the last due date per customer) is updated in place.
    """
    keep = np.ones(len(wk["cust"]), dtype=bool)
    for i, seen in last.items():
        idx = np.flatnonzero(wk["tix"] == i)
        if not len(idx):
            continue
        idx = idx[np.argsort(wk["due"][idx], kind="stable")]
        cust = wk["cust"][idx]
        _, first = np.unique(cust, return_index=True)
        cand = idx[np.sort(first)]
        ok = wk["due"][cand] - seen[wk["cust"][cand]] >= gaps[i]
        keep[idx] = False
        keep[cand[ok]] = True
        seen[wk["cust"][cand[ok]]] = wk["due"][cand[ok]]
    return keep


def backtest_summary(
    bt: pd.DataFrame, settings: MomentSettings, min_group: int = 10
) -> pd.DataFrame:
    """Per trigger: moments, customers, reachable (a channel with consent), cost per season.

    Rows describing fewer customers than ``min_group`` have their figures masked.
    Triggers that never fired or were skipped are listed with a note.
    """
    from playbook.privacy import suppress_small_groups

    weeks = max(len(bt.attrs.get("weeks", [])), 1)
    rows = []
    skipped = bt.attrs.get("skipped", {})
    for tid, tc in settings.triggers.items():
        if not tc.enabled:
            continue
        part = bt.loc[bt[MC.trigger_id] == tid]
        reach = part.loc[part[MC.channel].notna()]
        rows.append(
            {
                "trigger": tc.spec.name,
                "epic": tc.spec.epic,
                "moments": len(part),
                "customers": part[MC.customer_id].nunique(),
                "reachable": len(reach),
                "per_week": len(reach) / weeks,
                "cost": float(reach[MC.unit_cost].sum()),
                "note": skipped.get(tid, "" if len(part) else "did not fire"),
            }
        )
    out = pd.DataFrame(rows)
    out = suppress_small_groups(
        out,
        "customers",
        min_group,
        columns=["moments", "customers", "reachable", "per_week", "cost"],
    )
    return out


def weekly_volume(bt: pd.DataFrame, min_group: int = 10) -> pd.DataFrame:
    """Week × channel: moments that could be delivered (consent allowing).

    Cells for fewer than ``min_group`` distinct customers are masked, and more cells
    where a masked one could be worked out from the week and channel totals (the
    replay's per-trigger totals give them away): :func:`playbook.privacy.mask_count_table`.
    """
    from playbook.privacy import mask_count_table

    reach = bt.loc[bt[MC.channel].notna()]
    weeks = pd.Index(bt.attrs.get("weeks", sorted(reach[WEEK].unique())), name=WEEK)
    counts = reach.pivot_table(
        index=WEEK, columns=MC.channel, values=MC.customer_id, aggfunc="size", fill_value=0
    )
    people = reach.pivot_table(
        index=WEEK, columns=MC.channel, values=MC.customer_id, aggfunc="nunique", fill_value=0
    )
    counts = counts.reindex(weeks, fill_value=0)
    people = people.reindex(weeks, fill_value=0)
    out = counts.astype(float)
    if len(counts.columns):
        out = out.mask(mask_count_table(people.reindex_like(counts).to_numpy(), min_group))
    out = out.where(people.reindex_like(out) > 0, 0.0)  # an empty cell reveals nobody
    out.columns.name = MC.channel
    return out


# ---------------------------------------------------------------------------
# Outcomes and uplift
# ---------------------------------------------------------------------------
def add_outcomes(
    moments: pd.DataFrame,
    source: Tables | MomentData,
    window_days: int = 60,
    *,
    date_col: str = MC.due_date,
) -> pd.DataFrame:
    """Add ``booked``: the customer bought a ticket within ``window_days`` after the moment.

    A purchase on the due day itself does not count (it may have come before the
    moment); one on any of the next ``window_days`` days does. Returned tickets count
    too: the booking is the response.
    """
    data = source if isinstance(source, MomentData) else prepare_moments(source)
    out = moments.copy()
    if out.empty:
        out[BOOKED] = pd.Series([], dtype=bool)
        return out
    tk = data.tickets
    cust = data.ids.get_indexer(pd.Index(out[MC.customer_id].astype("string")))
    start = pd.to_datetime(out[date_col]).dt.normalize() + pd.Timedelta(days=1)
    q_time = start.to_numpy().astype("datetime64[ns]").view(np.int64)
    end = q_time + window_days * 86_400 * 10**9
    # next purchase at or after the query start, per customer: one sort, no loops
    n_q = len(out)
    all_cust = np.concatenate([tk["cust"], cust])
    all_time = np.concatenate([tk["purchase"], q_time])
    is_query = np.r_[np.zeros(len(tk["cust"]), dtype=np.int8), np.ones(n_q, dtype=np.int8)]
    qid = np.r_[np.full(len(tk["cust"]), -1), np.arange(n_q)]
    order = np.lexsort((1 - is_query, all_time, all_cust))  # queries before purchases at a tie
    c, tm, isq, q = all_cust[order], all_time[order], is_query[order], qid[order]
    nxt = pd.Series(np.where(isq == 0, tm, np.nan)).groupby(c).bfill().to_numpy()
    found = np.full(n_q, np.nan)
    found[q[isq == 1]] = nxt[isq == 1]
    out[BOOKED] = (cust >= 0) & np.isfinite(found) & (found <= end)
    return out


@dataclass(frozen=True)
class SampleSize:
    """Moments needed in each group to detect an uplift."""

    treated: int
    control: int

    @property
    def total(self) -> int:
        return self.treated + self.control


def diff_ci(
    x_t: Any, n_t: Any, x_c: Any, n_c: Any, *, alpha: float = 0.05, method: str = "newcombe"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Difference in proportions (treated − control) with a confidence interval.

    Parameters
    ----------
    x_t, n_t, x_c, n_c : int or array
        Successes and trials in each group.
    alpha : float
        1 − confidence level.
    method : {"newcombe", "wald"}
        Newcombe's hybrid score interval (Newcombe 1998, method 10: from the two Wilson
        intervals) or the Wald interval.

    Returns
    -------
    (difference, lower, upper) : arrays
    """
    x_t, n_t, x_c, n_c = (np.asarray(v, dtype=float) for v in (x_t, n_t, x_c, n_c))
    with np.errstate(invalid="ignore", divide="ignore"):
        p_t, p_c = x_t / n_t, x_c / n_c
        d = p_t - p_c
        z = ndtri(1 - alpha / 2)
        if method == "wald":
            half = z * np.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
            return d, d - half, d + half
        if method != "newcombe":
            raise ValueError("method must be 'newcombe' or 'wald'")
        l_t, u_t = wilson(x_t, n_t, alpha)
        l_c, u_c = wilson(x_c, n_c, alpha)
        lower = d - np.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2)
        upper = d + np.sqrt((u_t - p_t) ** 2 + (p_c - l_c) ** 2)
    return d, lower, upper


def wilson(x: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion."""
    x, n = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    z = ndtri(1 - alpha / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def measure_uplift(
    outcomes: pd.DataFrame,
    *,
    alpha: float = 0.05,
    method: str = "newcombe",
    by: str = MC.trigger_id,
    group_col: str = "group",
    outcome_col: str = BOOKED,
) -> pd.DataFrame:
    """Booking rate of treated vs control per trigger, the uplift and its interval.

    Parameters
    ----------
    outcomes : pandas.DataFrame
        One row per moment with ``group`` (``treatment``/``control``) and ``booked``
        (see :func:`add_outcomes`), e.g. an action list some weeks later.

    Returns
    -------
    pandas.DataFrame
        ``trigger_id, treated, treated_booked, treated_rate, control, control_booked,
        control_rate, uplift, ci_low, ci_high, significant`` (the interval excludes 0).
    """
    g = outcomes.groupby([by, group_col])[outcome_col].agg(["size", "sum"]).unstack(group_col)
    g = g.reindex(
        columns=pd.MultiIndex.from_product([["size", "sum"], [TREATMENT, CONTROL]]), fill_value=0
    ).fillna(0)
    n_t, x_t = g[("size", TREATMENT)].to_numpy(), g[("sum", TREATMENT)].to_numpy()
    n_c, x_c = g[("size", CONTROL)].to_numpy(), g[("sum", CONTROL)].to_numpy()
    d, lo, hi = diff_ci(x_t, n_t, x_c, n_c, alpha=alpha, method=method)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame(
            {
                by: g.index.astype("string"),
                "treated": n_t.astype("int64"),
                "treated_booked": x_t.astype("int64"),
                "treated_rate": x_t / n_t,
                "control": n_c.astype("int64"),
                "control_booked": x_c.astype("int64"),
                "control_rate": x_c / n_c,
                "uplift": d,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    out["significant"] = (out["ci_low"] > 0) | (out["ci_high"] < 0)
    return out.reset_index(drop=True)


def sample_size(
    p_control: float,
    uplift: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    control_share: float = 0.5,
) -> SampleSize:
    """Moments needed per group to detect ``uplift`` over a control rate ``p_control``.

    Two-sided test of two proportions, normal approximation without continuity
    correction (Fleiss), with ``k = treated / control = (1 − share) / share``::

        n_control = (z₁₋α/₂ √(p̄ q̄ (1 + 1/k)) + z₁₋β √(p_c q_c + p_t q_t / k))² / Δ²
        p̄ = (p_c + k p_t) / (1 + k),  n_treated = k n_control

    With equal groups, 10% vs 15%, α = 0.05 and 80% power this gives 686 per group.
    """
    if not 0 < control_share < 1:
        raise ValueError("control_share must be between 0 and 1")
    if uplift == 0:
        raise ValueError("uplift must not be 0")
    p_c, p_t = float(p_control), float(p_control) + float(uplift)
    if not (0 < p_c < 1 and 0 < p_t < 1):
        raise ValueError("both booking rates must lie strictly between 0 and 1")
    k = (1 - control_share) / control_share
    p_bar = (p_c + k * p_t) / (1 + k)
    z_a, z_b = ndtri(1 - alpha / 2), ndtri(power)
    root = z_a * np.sqrt(p_bar * (1 - p_bar) * (1 + 1 / k)) + z_b * np.sqrt(
        p_c * (1 - p_c) + p_t * (1 - p_t) / k
    )
    n_c = int(np.ceil(root**2 / uplift**2))
    return SampleSize(treated=int(np.ceil(k * n_c)), control=n_c)


def sample_size_table(
    base_rates: tuple[float, ...] = (0.05, 0.10, 0.20),
    uplifts: tuple[float, ...] = (0.02, 0.05, 0.10),
    *,
    control_share: float = 0.1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """Moments needed in total (treated + control) for each base rate and uplift.

    Rows: the booking rate without the moment; columns: the uplift to detect.
    """
    rows = {
        f"{b:.0%} book anyway": {
            f"+{u * 100:g} points": sample_size(
                b, u, alpha=alpha, power=power, control_share=control_share
            ).total
            for u in uplifts
        }
        for b in base_rates
    }
    out = pd.DataFrame(rows).T
    out.index.name = "without the moment"
    return out


def measurement_plan(
    bt: pd.DataFrame,
    source: Tables | MomentData,
    settings: MomentSettings,
    *,
    uplift: float = 0.05,
    alpha: float = 0.05,
    power: float = 0.8,
    min_group: int = 10,
) -> pd.DataFrame:
    """Per trigger: how long a control group must run to detect ``uplift``.

    The booking rate after each backtested moment (nobody was contacted then) stands in
    for the control group's rate. With the trigger's control share and its weekly volume
    (reachable moments), the sample size becomes weeks of running. ``per_week`` is the
    same figure as in :func:`backtest_summary` (reachable moments per week, unrounded), so
    the two tables agree.
    """
    from playbook.privacy import suppress_small_groups

    reach = bt.loc[bt[MC.channel].notna()]
    out_w = add_outcomes(reach, source, settings.outcome_window_days)
    weeks = max(len(bt.attrs.get("weeks", [])), 1)
    rows = []
    for tid, part in out_w.groupby(MC.trigger_id, sort=False):
        tc = settings.triggers[str(tid)]
        base = float(part[BOOKED].mean())
        share = tc.control_share
        per_week = len(part) / weeks
        row = {
            "trigger": tc.spec.name,
            "customers": part[MC.customer_id].nunique(),
            "per_week": per_week,
            "booking_rate": base,
            "control_share": share,
            "needed": pd.NA,
            "weeks_needed": np.nan,
        }
        if 0 < share < 1 and 0 < base < 1 - uplift:
            n = sample_size(base, uplift, alpha=alpha, power=power, control_share=share)
            row["needed"] = n.total
            row["weeks_needed"] = n.total / per_week if per_week else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["needed"] = out["needed"].astype("Int64")
    out["weeks_needed"] = np.ceil(out["weeks_needed"]).astype("Int64")
    return suppress_small_groups(
        out, "customers", min_group, columns=["customers", "per_week", "booking_rate"]
    )
