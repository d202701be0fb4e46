"""Memberships and subscriptions: the shifted-beta-geometric (sBG) model.

Members renew (or not) at the end of each term. In the sBG model (Fader & Hardie 2007,
"How to project customer retention") each member has a fixed chance of leaving at every
renewal, and that chance varies across members as a beta(``gamma``, ``delta``)
distribution. The less committed leave first, so the renewal rate of a cohort rises
with time: the pattern arts membership schemes see (first-year members renew far less
than long-standing ones). ``lifetimes`` has no such model; this one is fitted with
scipy by maximum likelihood.

Data
----
One row per *spell* (an unbroken run of terms) with ``terms`` (terms paid, at least 1)
and ``churned`` (True: the member did not renew after the last term; False: still a
member, or the renewal is not known yet: right-censored). A column ``count`` may give
how many members share a row. Build it with:

- :func:`data_from_survivors` from a cohort's survivor counts (1000, 631, 468, …);
- :func:`summarise_memberships` from the canonical ``memberships`` table (spells
  already running when the records begin are left out: their earlier terms are unknown).

Term ``t`` (1, 2, …) is paid at the start of period ``t − 1``. A member who paid
``terms`` terms and left contributes ``P(T = terms)`` to the likelihood; a member still
in their ``terms``-th term contributes ``S(terms − 1)``: they survived that many
renewals, no churn is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, hyp2f1

from playbook.clv_models import WEIGHT, CLVModel, _Attempt, distinct_rows
from playbook.errors import PlaybookError
from playbook.schema import Memberships as MB

TERMS = "terms"
CHURNED = "churned"
COUNT = "count"


def data_from_survivors(survivors: Sequence[float]) -> pd.DataFrame:
    """sBG data from a cohort's survivor counts.

    Parameters
    ----------
    survivors : sequence of numbers
        Members still active at the start of each period: ``survivors[0]`` is the
        cohort size, ``survivors[t]`` those who renewed ``t`` times.

    Returns
    -------
    pandas.DataFrame
        ``terms, churned, count``: those lost at each renewal (``terms`` = 1, 2, …) and
        the survivors at the last count (still members after ``len(survivors) - 1``
        renewals, censored).

    Examples
    --------
    >>> data_from_survivors([1000, 631, 468])
       terms  churned  count
    0      1     True  369.0
    1      2     True  163.0
    2      3    False  468.0
    """
    s = np.asarray(survivors, dtype=float)
    if s.ndim != 1 or len(s) < 2:
        raise PlaybookError(
            "Survivor counts need at least two numbers: the cohort size and the members "
            "left after the first renewal.\nWhat to do: pass e.g. [1000, 631, 468]."
        )
    lost = s[:-1] - s[1:]
    if (s < 0).any() or (lost < 0).any():
        raise PlaybookError(
            f"Survivor counts must not grow or be negative: {s.tolist()}.\n"
            "What to do: pass the members still active at each renewal, in order."
        )
    k = len(s)
    return pd.DataFrame(
        {
            TERMS: np.arange(1, k + 1),
            CHURNED: np.r_[np.ones(k - 1, dtype=bool), False],
            COUNT: np.r_[lost, s[-1]],
        }
    )


def summarise_memberships(
    memberships: pd.DataFrame,
    observation_end: Any = None,
    *,
    scheme: str | None = None,
    grace_days: int = 30,
    include_left_truncated: bool = False,
) -> pd.DataFrame:
    """Spells of membership per customer: terms paid and whether they lapsed.

    Terms of one customer in one scheme form a spell while each starts within
    ``grace_days`` of the previous term's end and is not marked ``new``; a later term
    starts a new spell. A spell has lapsed (``churned``) when its last term ended more
    than ``grace_days`` before the observation end; otherwise it is still running or
    may still renew, and is right-censored. Tier changes within a scheme are not churn.

    Parameters
    ----------
    memberships : pandas.DataFrame
        Canonical ``memberships``.
    observation_end : date-like, optional
        Last day observed (default: the latest term start in the table).
    scheme : str, optional
        Only this scheme (default: every scheme, spells kept apart per scheme).
    grace_days : int
        Days after a term's end within which a renewal still counts as one.
    include_left_truncated : bool
        Keep spells whose first term on record is a ``renewal``: they began before the
        records did, so their ``terms`` undercounts. Left out by default (their number
        is in ``attrs["left_truncated"]``), as the sBG model counts terms from joining.

    Returns
    -------
    pandas.DataFrame
        ``customer_id, scheme, start_date, last_end_date, terms, churned,
        left_truncated``, one row per spell.
    """
    m = memberships
    if scheme is not None:
        m = m.loc[m[MB.scheme] == scheme]
    if len(m) == 0:
        raise PlaybookError(
            "There are no membership records"
            + (f" for scheme {scheme!r}" if scheme is not None else "")
            + ".\nWhat to do: add a 'memberships' source in org.yaml, or check the scheme name."
        )
    end = (
        m[MB.start_date].max().normalize()
        if observation_end is None
        else pd.Timestamp(observation_end).normalize()
    )
    m = m.loc[m[MB.start_date] <= end + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")]
    scheme_key = m[MB.scheme].fillna("").astype("string")
    m = m.assign(_scheme=scheme_key).sort_values(
        [MB.customer_id, "_scheme", MB.start_date, MB.end_date], kind="stable"
    )
    cust = m[MB.customer_id].to_numpy()
    sch = m["_scheme"].to_numpy()
    start = m[MB.start_date].to_numpy(dtype="datetime64[ns]")
    stop = m[MB.end_date].to_numpy(dtype="datetime64[ns]")
    grace = np.timedelta64(int(grace_days), "D")
    same = np.r_[False, (cust[1:] == cust[:-1]) & (sch[1:] == sch[:-1])]
    prev_end = np.r_[np.datetime64("NaT"), stop[:-1]]
    is_new = (m[MB.membership_type] == "new").fillna(False).to_numpy(dtype=bool)
    gap = np.r_[True, start[1:] > prev_end[1:] + grace]
    new_spell = ~same | is_new | gap
    spell = np.cumsum(new_spell) - 1
    frame = pd.DataFrame({"spell": spell, "start": start, "stop": stop})
    agg = frame.groupby("spell", sort=True).agg(
        start_date=("start", "min"), last_end_date=("stop", "max"), terms=("start", "size")
    )
    heads = np.flatnonzero(new_spell)
    out = pd.DataFrame(
        {
            MB.customer_id: pd.array(cust[heads], dtype="string"),
            MB.scheme: m[MB.scheme].to_numpy()[heads],
            "start_date": agg["start_date"].to_numpy(),
            "last_end_date": agg["last_end_date"].to_numpy(),
            TERMS: agg["terms"].to_numpy(dtype=np.int64),
            CHURNED: (agg["last_end_date"] + grace < end).to_numpy(dtype=bool),
        }
    )
    # A spell whose first term on record is a renewal began before the records did: how
    # many terms came before is unknown, so its count would be too low.
    is_renewal = (m[MB.membership_type] == "renewal").fillna(False).to_numpy(dtype=bool)
    out["left_truncated"] = is_renewal[heads]
    dropped = int(out["left_truncated"].sum())
    if not include_left_truncated:
        out = out.loc[~out["left_truncated"]].reset_index(drop=True)
    out.attrs = {
        "observation_end": str(end.date()),
        "grace_days": int(grace_days),
        "left_truncated": dropped,
        "left_truncated_included": include_left_truncated,
    }
    return out


def _sbg_loglik_grad(
    params: np.ndarray, terms: np.ndarray, churned: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted sBG log-likelihood and gradient in (gamma, delta)."""
    g, d = params
    t = terms.astype(float)
    base = betaln(g, d)
    dbase_g = digamma(g) - digamma(g + d)
    dbase_d = digamma(d) - digamma(g + d)
    # churned at renewal t: P(T = t) = B(g + 1, d + t - 1) / B(g, d)
    lp = betaln(g + 1, d + t - 1) - base
    dlp_g = digamma(g + 1) - digamma(g + d + t) - dbase_g
    dlp_d = digamma(d + t - 1) - digamma(g + d + t) - dbase_d
    # still a member after t - 1 renewals: S(t - 1) = B(g, d + t - 1) / B(g, d)
    ls = betaln(g, d + t - 1) - base
    dls_g = digamma(g) - digamma(g + d + t - 1) - dbase_g
    dls_d = digamma(d + t - 1) - digamma(g + d + t - 1) - dbase_d
    c = churned.astype(bool)
    ll = np.where(c, lp, ls)
    grad_g = np.where(c, dlp_g, dls_g)
    grad_d = np.where(c, dlp_d, dls_d)
    return float(w @ ll), np.array([w @ grad_g, w @ grad_d])


class ShiftedBetaGeometric(CLVModel):
    """Shifted-beta-geometric model of renewals (Fader & Hardie 2007).

    Parameters
    ----------
    penalizer, retry_penalizer
        See :class:`playbook.clv_models.CLVModel`.
    compress : bool
        Fit on distinct ``(terms, churned)`` rows with weights.

    Attributes
    ----------
    params_ : pandas.Series
        ``gamma`` and ``delta``; the mean chance of leaving at the first renewal is
        ``gamma / (gamma + delta)``.
    (and the other attributes of every model: ``converged_``, ``penalizer_used_``,
    ``message_``, ``standard_errors_``, ``confidence_intervals_``, ``log_likelihood_``)
    """

    name: ClassVar[str] = "sbg"
    label: ClassVar[str] = "sBG"
    param_names: ClassVar[tuple[str, ...]] = ("gamma", "delta")
    columns: ClassVar[tuple[str, ...]] = (TERMS, CHURNED)

    def _select(self, summary: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns if c not in summary.columns]
        if missing:
            raise PlaybookError(
                f"The sBG model needs the column(s) {', '.join(missing)}.\n"
                "What to do: build the data with playbook.sbg.data_from_survivors or "
                "playbook.sbg.summarise_memberships."
            )
        data = pd.DataFrame(
            {
                TERMS: summary[TERMS].to_numpy(dtype=float),
                CHURNED: summary[CHURNED].to_numpy(dtype=bool),
                COUNT: (
                    summary[COUNT].to_numpy(dtype=float)
                    if COUNT in summary
                    else np.ones(len(summary))
                ),
            }
        )
        if len(data) == 0 or data[COUNT].sum() <= 0:
            raise PlaybookError("There are no members to fit the sBG model on.")
        if (data[TERMS] < 1).any() or (data[TERMS] % 1 != 0).any():
            raise PlaybookError(
                "Every spell must have a whole number of terms, at least 1.\n"
                "What to do: rebuild the data with playbook.sbg.summarise_memberships."
            )
        if (data[COUNT] < 0).any():
            raise PlaybookError("Member counts cannot be negative.")
        if not data.loc[data[COUNT] > 0, CHURNED].any():
            raise PlaybookError(
                "No member has lapsed yet, so how fast people leave cannot be estimated.\n"
                "What to do: include older membership records or a later observation end."
            )
        return data

    def _rows(self, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        data = data.loc[data[COUNT] > 0]
        if self.compress:
            rows, inverse = distinct_rows(data, self.columns)
            weights = np.bincount(inverse, weights=data[COUNT].to_numpy(), minlength=len(rows))
            return rows.drop(columns=WEIGHT), weights
        return data[list(self.columns)].reset_index(drop=True), data[COUNT].to_numpy(dtype=float)

    def _attempt(self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float) -> _Attempt:
        terms = rows[TERMS].to_numpy(dtype=float)
        churned = rows[CHURNED].to_numpy(dtype=bool)
        n = float(weights.sum())

        def fun(lp: np.ndarray) -> tuple[float, np.ndarray]:
            p = np.exp(lp)
            ll, g = _sbg_loglik_grad(p, terms, churned, weights)
            return -ll / n + penalizer * float(p @ p), -g * p / n + 2 * penalizer * p * p

        out = minimize(fun, x0=np.zeros(2), jac=True, method="BFGS", tol=1e-10)
        ok = bool(out.success) or float(np.max(np.abs(out.jac))) < 1e-7
        return _Attempt(out.x, ok, "" if ok else f"the optimiser stopped: {out.message}")

    def _total_loglik(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray
    ) -> float:
        return _sbg_loglik_grad(
            np.exp(log_params),
            rows[TERMS].to_numpy(dtype=float),
            rows[CHURNED].to_numpy(dtype=bool),
            weights,
        )[0]

    # -- projections ----------------------------------------------------------
    def _gd(self) -> tuple[float, float]:
        self._check_fitted()
        return float(self.params_["gamma"]), float(self.params_["delta"])

    def survival(self, t: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """Share of a new cohort still members after ``t`` renewals, ``S(t)``."""
        g, d = self._gd()
        t = np.asarray(t, dtype=float)
        return np.exp(betaln(g, d + t) - betaln(g, d))

    def churn_probability(self, t: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """Share of a new cohort lost at renewal ``t`` (1, 2, …), ``P(T = t)``."""
        g, d = self._gd()
        t = np.asarray(t, dtype=float)
        return np.exp(betaln(g + 1, d + t - 1) - betaln(g, d))

    def retention_rate(self, t: int | Sequence[int] | np.ndarray) -> np.ndarray:
        """Share of members renewing at renewal ``t`` (1, 2, …): ``(δ + t − 1) / (γ + δ + t − 1)``."""
        g, d = self._gd()
        t = np.asarray(t, dtype=float)
        return (d + t - 1) / (g + d + t - 1)

    def project(self, periods: int, cohort_size: float = 1000.0) -> pd.DataFrame:
        """Survival curve and renewal rates of a new cohort over ``periods`` renewals.

        Returns
        -------
        pandas.DataFrame
            ``period`` (0 … periods), ``survival``, ``members`` (of ``cohort_size``),
            ``retention_rate`` (missing at period 0).
        """
        t = np.arange(periods + 1)
        rate = np.r_[np.nan, self.retention_rate(t[1:])]
        surv = self.survival(t)
        return pd.DataFrame(
            {"period": t, "survival": surv, "members": cohort_size * surv, "retention_rate": rate}
        )

    def expected_remaining_lifetime(
        self,
        terms: int | Sequence[int] | np.ndarray,
        *,
        discount_rate: float = 0.0,
        horizon: int | None = None,
    ) -> np.ndarray:
        """Expected further renewals of a current member who has paid ``terms`` terms.

        ``Σ_{k≥1} S(terms − 1 + k) / S(terms − 1) / (1 + discount_rate)^k``, summed over
        ``horizon`` future renewals, or all of them when ``horizon`` is None: then, with
        ``x = 1 / (1 + discount_rate)``, it equals
        ``2F1(1, δ + n; γ + δ + n; x) − 1`` with ``n = terms − 1`` (Fader & Hardie's
        discounted expected residual lifetime, without the current term). Without
        discounting and an endless horizon it is finite only when ``γ > 1``
        (``(δ + n) / (γ − 1)``); otherwise ``inf`` is returned.

        Parameters
        ----------
        terms : int or array
            Terms paid so far, at least 1 (the current term included).
        discount_rate : float
            Per-term discount rate (e.g. 0.10 for annual terms at 10% a year).
        horizon : int, optional
            Number of future renewals to count.
        """
        g, d = self._gd()
        n = np.asarray(terms, dtype=float) - 1.0
        if (n < 0).any():
            raise PlaybookError("Terms paid must be at least 1.")
        x = 1.0 / (1.0 + discount_rate)
        if horizon is None:
            if discount_rate <= 0:
                return (d + n) / (g - 1) if g > 1 else np.full_like(n, np.inf)
            return hyp2f1(1.0, d + n, g + d + n, x) - 1.0
        k = np.arange(1, int(horizon) + 1, dtype=float)
        ratio = (d + n[..., None] + k - 1) / (g + d + n[..., None] + k - 1)
        return (np.cumprod(ratio, axis=-1) * x**k).sum(axis=-1)


def fit_sbg(data: pd.DataFrame | Sequence[float], **kwargs: Any) -> ShiftedBetaGeometric:
    """Fit the sBG model to survivor counts or to spell data.

    Parameters
    ----------
    data : sequence of numbers or pandas.DataFrame
        Survivor counts (see :func:`data_from_survivors`) or a frame with ``terms`` and
        ``churned`` (see :func:`summarise_memberships`).
    **kwargs
        Passed to :class:`ShiftedBetaGeometric`.
    """
    frame = data if isinstance(data, pd.DataFrame) else data_from_survivors(data)
    return ShiftedBetaGeometric(**kwargs).fit(frame)
