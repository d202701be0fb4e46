"""Customer lifetime value models behind one scikit-learn-style interface.

Every model here is an estimator: ``__init__`` only stores its settings, ``fit(summary)``
checks the summary, fits and returns ``self``, and what was learned ends in ``_``
(``params_``, ``converged_``, ``penalizer_used_``, ``message_``, ``standard_errors_``,
``confidence_intervals_`` …). ``lifetimes`` is used for the likelihoods and the
prediction formulas, but only inside this module and :mod:`playbook.clv`, so a later
move to another backend touches two files.

Fitting on compressed rows
--------------------------
Customers with the same history carry the same information, so by default each model
fits on the distinct rows of its inputs (``frequency, recency, T`` for BG/NBD, Pareto/NBD
and MBG/NBD; ``frequency, recency, n_periods`` for BG/BB; ``frequency, monetary_value``
for Gamma-Gamma) with a weight per row: the number of customers sharing it. The
likelihood is the weighted sum, so the estimates are those of the full data. Every
``lifetimes`` fitter used here takes ``weights=`` (checked in the tests).

BG/NBD has its own likelihood with an analytic gradient and Hessian (numpy, no
autograd): the same function as ``lifetimes.BetaGeoFitter`` (it is tested against it),
but with the terms that depend only on the frequency computed once per distinct
frequency, and those of ``T`` and ``recency`` once per distinct value. Newton steps on
the exact Hessian reach the optimum in a handful of evaluations, and the last one gives
the standard errors. With compression a fit is dozens of times faster than
``lifetimes`` on one row per customer.

Pareto/NBD computes ``lifetimes``' likelihood bit for bit, but its two Gauss
hypergeometric functions once per distinct ``(frequency, recency)`` and ``(frequency,
T)`` pair rather than once per row, so the same optimiser path costs several times less.

When a fit fails
----------------
If the optimiser stops without converging, or the parameters are not finite or absurd
(a parameter beyond 10^6 or below 10^-6 on the internal time scale, the tell-tale of an
estimate running off to a boundary), or the likelihood has no proper peak there (its
Hessian is not positive definite, so the data cannot pin the parameters down), the fit
is repeated with a small penalizer (an L2 pull on the parameters, ``retry_penalizer``,
then ten times that). ``message_`` says so
in plain words. If that fails too, :class:`~playbook.errors.PlaybookError` is raised:
the kit never returns silent nonsense.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import digamma, expit, gammaln, zeta

from playbook.errors import NotEnoughData, PlaybookError

with warnings.catch_warnings():
    # lifetimes sets pandas' chained_assignment option on import, which pandas 3 deprecates;
    # importing it once here keeps that warning out of every notebook and report.
    warnings.filterwarnings("ignore", message="The 'mode.chained_assignment' option")
    import lifetimes  # noqa: F401

FREQUENCY = "frequency"
RECENCY = "recency"
T_COL = "T"
MONETARY = "monetary_value"
N_PERIODS = "n_periods"
WEIGHT = "weight"

_Z95 = 1.959963984540054
_ABSURD_LOG = np.log(1e6)  # |log(parameter)| beyond this on the internal scale is absurd
_NOT_FINITE = 1e10  # what an objective returns where the likelihood is not a number


# ---------------------------------------------------------------------------
# Compression
# ---------------------------------------------------------------------------
def compress_summary(
    summary: pd.DataFrame, columns: Sequence[str] = (FREQUENCY, RECENCY, T_COL)
) -> pd.DataFrame:
    """Distinct rows of ``columns`` with the number of customers sharing each.

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per customer; must hold ``columns``.
    columns : sequence of str
        The columns that define a distinct history.

    Returns
    -------
    pandas.DataFrame
        ``columns`` plus ``weight`` (int), one row per distinct combination, sorted.
        ``weight.sum()`` equals ``len(summary)``.
    """
    return distinct_rows(summary, columns)[0]


def distinct_rows(summary: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`compress_summary` plus, for each summary row, the position of its distinct row.

    Vectorised: each column is factorised, the codes are combined into one integer key
    and the keys are factorised by hashing; only the distinct keys are sorted (no Python
    loop over rows).
    """
    cols = list(columns)
    n = len(summary)
    if n == 0:
        empty = pd.DataFrame({**{c: summary[c].to_numpy() for c in cols}, WEIGHT: []})
        return empty, np.zeros(0, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    total = 1.0
    for c in cols:
        code, uniq = pd.factorize(summary[c], sort=True)
        total *= max(len(uniq), 1)
        if total >= 2.0**62:  # pragma: no cover - astronomically many combinations
            _, key = np.unique(np.stack([key, code], axis=1), axis=0, return_inverse=True)
            key = key.astype(np.int64).ravel()
            total = float(key.max() + 1)
        else:
            key = key * len(uniq) + code
    inverse, uniq = pd.factorize(key)  # hashing: no sort of all rows
    order = np.argsort(uniq, kind="stable")  # sort the distinct keys only
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    inverse = rank[inverse]
    counts = np.bincount(inverse, minlength=len(uniq))
    first = np.empty(len(uniq), dtype=np.int64)
    first[inverse[::-1]] = np.arange(n - 1, -1, -1)  # first row of each distinct key
    out = {c: summary[c].to_numpy()[first] for c in cols}
    out[WEIGHT] = counts.astype(np.int64)
    return pd.DataFrame(out), inverse.astype(np.int64)


_DAY_GRIDS = (1.0, 7.0, 365.25 / 12)  # days per time unit (see playbook.clv.TIME_UNITS)


def _grid_codes(values: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Integers ``k`` and a grid ``u`` with ``values == k / u`` exactly, or None.

    Summaries hold whole days divided by the days in the time unit. When dividing the
    rounded ``values * u`` by ``u`` gives every value back bit for bit, ``k`` is a
    one-to-one, order-keeping integer code of the values.
    """
    for unit in _DAY_GRIDS:
        k = np.rint(values * unit)
        if np.array_equal(k / unit, values) and (k.size == 0 or np.abs(k).max() < 2.0**52):
            return k.astype(np.int64), unit
    return None


def _compress_on_grid(
    data: pd.DataFrame, columns: Sequence[str]
) -> tuple[pd.DataFrame, np.ndarray] | None:
    """:func:`compress_summary` for values on a day grid: the same rows, faster (or None).

    One integer key per row, sorted (no hashing, no inverse): the distinct keys are the
    distinct rows in the same order, and the values are decoded from the keys.
    """
    cols = list(columns)
    n = len(data)
    if n == 0:
        return None
    codes, units, sizes = [], [], []
    for c in cols:
        found = _grid_codes(data[c].to_numpy(dtype=float))
        if found is None or found[0].min() < 0:
            return None
        codes.append(found[0])
        units.append(found[1])
        sizes.append(int(found[0].max()) + 1)
    if float(np.prod(np.array(sizes, dtype=float))) >= 2.0**62:
        return None
    key = codes[0].copy()
    for code, size in zip(codes[1:], sizes[1:], strict=True):
        key *= size
        key += code
    key.sort()
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[starts, n])
    key = key[starts]
    out: dict[str, np.ndarray] = {}
    for c, unit, size in zip(cols[::-1], units[::-1], sizes[::-1], strict=True):
        out[c] = (key % size) / unit
        key = key // size
    rows = pd.DataFrame({c: out[c] for c in cols})
    return rows, counts.astype(float)


# ---------------------------------------------------------------------------
# Checks on a summary
# ---------------------------------------------------------------------------
def check_summary(summary: pd.DataFrame, columns: Sequence[str], model: str) -> pd.DataFrame:
    """The columns a model needs, as floats, after plain-language checks.

    Raises
    ------
    PlaybookError
        When a column is missing, a value is negative or missing, or the history is
        impossible (recency after T, recency without repeat purchases).
    """
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise PlaybookError(
            f"The {model} model needs the column(s) {', '.join(missing)} in the customer "
            f"summary, which has: {', '.join(map(str, summary.columns))}.\n"
            "What to do: build the summary with playbook.clv.summarise_transactions or "
            "playbook.clv.calibration_holdout."
        )
    data = summary[list(columns)].astype("float64")
    if len(data) == 0:
        raise NotEnoughData(
            f"The customer summary for the {model} model is empty.\n"
            "What to do: check the dates: the calibration period must hold purchases."
        )
    values = data.to_numpy()
    if not np.isfinite(values).all():
        bad = data.columns[~np.isfinite(values).all(axis=0)].tolist()
        raise PlaybookError(
            f"The customer summary has missing or infinite values in {', '.join(bad)}.\n"
            "What to do: rebuild it with playbook.clv.summarise_transactions."
        )
    if (values < 0).any():
        bad = data.columns[(values < 0).any(axis=0)].tolist()
        raise PlaybookError(
            f"The customer summary has negative values in {', '.join(bad)}.\n"
            "What to do: check that the observation end is after every purchase."
        )
    # plain numpy on the (finite, non-negative) columns: the same tests, less overhead
    col = {c: values[:, i] for i, c in enumerate(data.columns)}
    if FREQUENCY in col and (col[FREQUENCY] != np.floor(col[FREQUENCY])).any():
        raise PlaybookError(
            "The frequency column must count whole repeat purchases, but holds fractions.\n"
            "What to do: rebuild the summary with playbook.clv.summarise_transactions."
        )
    if RECENCY in col and FREQUENCY in col:
        if (col[RECENCY][col[FREQUENCY] == 0] != 0).any():
            raise PlaybookError(
                "Some customers have a recency but no repeat purchase.\n"
                "What to do: rebuild the summary with playbook.clv.summarise_transactions."
            )
    for last in (T_COL, N_PERIODS):
        if RECENCY in col and last in col and (col[RECENCY] > col[last] + 1e-9).any():
            raise PlaybookError(
                f"Some customers' last purchase (recency) comes after the end ({last}).\n"
                "What to do: rebuild the summary with playbook.clv.summarise_transactions."
            )
    return data


# ---------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------
class _Attempt:
    """What one optimisation attempt produced."""

    def __init__(self, log_params: np.ndarray, ok: bool, why: str, state: Any = None):
        self.log_params = log_params
        self.ok = ok
        self.why = why
        self.state = state


def _positive_definite(hess: np.ndarray) -> bool:
    """Whether a Hessian is finite and positive definite (a proper peak of the likelihood)."""
    if not np.isfinite(hess).all():
        return False
    try:
        return bool(np.linalg.eigvalsh(0.5 * (hess + hess.T)).min() > 0)
    except np.linalg.LinAlgError:  # pragma: no cover
        return False


def _numeric_hessian(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4
) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    k = len(x)
    hess = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h**2
        for j in range(i + 1, k):
            ej = np.zeros(k)
            ej[j] = h
            v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h**2)
            hess[i, j] = hess[j, i] = v
    return hess


class CLVModel:
    """Base of every model: the fit loop with penalizer retry, and standard errors.

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters for the first fit (0: plain maximum likelihood).
    retry_penalizer : float
        Penalty used when the first fit fails (then ten times it). 0 disables retries.
    compress : bool
        Fit on distinct rows with weights (same estimates, much faster).

    Attributes
    ----------
    params_ : pandas.Series
        The estimates, named as in the literature.
    converged_ : bool
        Whether the fit with ``penalizer`` converged to sensible values. When False, the
        estimates come from a retry with ``penalizer_used_`` (see ``message_``).
    penalizer_used_ : float
        The penalizer behind ``params_``.
    message_ : str
        Plain-language account of the fit.
    standard_errors_ : pandas.Series
        Standard errors from the inverse Hessian of the log-likelihood in
        log-parameters (delta method); with a penalizer, of the penalised objective.
    confidence_intervals_ : pandas.DataFrame
        ``lower``/``upper`` 95% bounds, computed on the log scale (always positive).
    log_likelihood_ : float
        Log-likelihood of the data at ``params_`` (without the penalty).
    n_customers_ : int
        Customers the model was fitted on.
    n_rows_fitted_ : int
        Rows the optimiser saw (distinct histories when compressed).
    time_unit_ : str or None
        Time unit of the summary (from ``summary.attrs``), used for wording.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[str, ...]] = ()
    scaled_params: ClassVar[tuple[str, ...]] = ()  # parameters measured in time units

    def __init__(
        self, penalizer: float = 0.0, retry_penalizer: float = 1e-3, compress: bool = True
    ) -> None:
        self.penalizer = penalizer
        self.retry_penalizer = retry_penalizer
        self.compress = compress

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        else:
            inner = "not fitted"
        return f"{type(self).__name__}({inner})"

    # -- data -------------------------------------------------------------
    def _select(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Rows of the summary this model fits on (all, unless overridden)."""
        return check_summary(summary, self.columns, self.label)

    def _rows(self, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        if self.compress:
            rows = compress_summary(data, self.columns)
            return rows[list(self.columns)], rows[WEIGHT].to_numpy(dtype=float)
        return data.reset_index(drop=True), np.ones(len(data))

    # -- to implement -------------------------------------------------------
    def _scale(self, rows: pd.DataFrame) -> float:
        """Time scale used internally (1 when the model has no time parameters)."""
        return 1.0

    def _attempt(self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float) -> _Attempt:
        raise NotImplementedError

    def _total_loglik(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray
    ) -> float:
        """Weighted log-likelihood at natural-scale ``exp(log_params)``."""
        raise NotImplementedError

    def _hessian(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray, state: Any
    ) -> np.ndarray:
        """Hessian of the negative total log-likelihood in log-parameters."""
        return _numeric_hessian(lambda lp: -self._total_loglik(lp, rows, weights), log_params)

    def _after_fit(self, rows: pd.DataFrame, weights: np.ndarray, state: Any) -> None:
        """Build ``fitter_`` (the lifetimes object used for predictions)."""

    # -- the fit loop -------------------------------------------------------
    def fit(self, summary: pd.DataFrame) -> Self:
        """Fit the model to a customer summary.

        Parameters
        ----------
        summary : pandas.DataFrame
            One row per customer with the columns in ``columns``.

        Returns
        -------
        self
        """
        data = self._select(summary)
        rows, weights = self._rows(data)
        n_customers = int(round(float(weights.sum())))
        scale = self._scale(rows)
        penalties = [float(self.penalizer)]
        if self.retry_penalizer > 0:
            base = max(float(self.retry_penalizer), float(self.penalizer))
            penalties += [p for p in (base, base * 10) if p > self.penalizer]
        failures: list[str] = []
        chosen: _Attempt | None = None
        used = penalties[0]
        names = list(self.param_names)
        hess = np.full((len(names), len(names)), np.nan)
        natural_log = np.full(len(names), np.nan)
        for pen in penalties:
            with (
                warnings.catch_warnings(),
                np.errstate(all="ignore"),
                contextlib.redirect_stdout(io.StringIO()),  # lifetimes prints failures
            ):
                warnings.simplefilter("ignore")
                try:
                    att = self._attempt(rows, weights, pen)
                except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                    att = _Attempt(np.full(len(names), np.nan), False, str(exc).strip())
                if att.ok:
                    why = self._absurd(att.log_params)
                    if why:
                        att.ok, att.why = False, why
                if att.ok:
                    natural_log = att.log_params - np.log(scale) * np.isin(
                        names, self.scaled_params
                    )
                    hess = self._hessian(natural_log, rows, weights, att.state)
                    if pen > 0:  # the penalty's own curvature, as the optimiser saw it
                        p_internal = np.exp(att.log_params)
                        hess = hess + n_customers * np.diag(4.0 * pen * p_internal**2)
                    if not _positive_definite(hess):
                        att.ok = False
                        att.why = (
                            "the likelihood is flat or not at a peak there, so the data "
                            "cannot pin down every parameter"
                        )
            if att.ok:
                chosen, used = att, pen
                break
            failures.append(f"with penalizer {pen:g}: {att.why}")
        if chosen is None:
            raise NotEnoughData(
                f"The {self.label} model could not be fitted to these {n_customers:,} customers "
                f"({'; '.join(failures)}).\n"
                "What to do: check the summary (enough repeat buyers? a calibration period "
                "long enough for people to come back?), or try another model."
            )
        self.params_ = pd.Series(np.exp(natural_log), index=names, name=self.label)
        self.converged_ = used == penalties[0]
        self.penalizer_used_ = used
        self.n_customers_ = n_customers
        self.n_rows_fitted_ = int(len(rows))
        self.time_unit_ = summary.attrs.get("time_unit")
        self._after_fit(rows, weights, chosen.state)
        with np.errstate(all="ignore"):
            self.log_likelihood_ = float(self._total_loglik(natural_log, rows, weights))
        self._set_errors(natural_log, hess)
        rows_note = (
            f" on {len(rows):,} distinct histories"
            if self.compress and len(rows) < n_customers
            else ""
        )
        if self.converged_:
            self.message_ = f"{self.label}: converged on {n_customers:,} customers{rows_note}."
            if used > 0:
                self.message_ += f" Penalizer {used:g} as requested."
        else:
            self.message_ = (
                f"{self.label}: the first fit did not converge ({failures[0]}). Refitted with "
                f"a small penalizer ({used:g}), which pulls the estimates slightly towards "
                f"zero; it converged on {n_customers:,} customers{rows_note}. Treat the "
                "parameters with care and compare with another model."
            )
        return self

    def _absurd(self, log_params: np.ndarray) -> str:
        lp = np.asarray(log_params, dtype=float)
        if not np.isfinite(lp).all():
            return "the estimates are not finite numbers"
        if (np.abs(lp) > _ABSURD_LOG).any():
            bad = [n for n, v in zip(self.param_names, lp, strict=True) if abs(v) > _ABSURD_LOG]
            return f"the estimate of {', '.join(bad)} ran off to an extreme value"
        return ""

    def _set_errors(self, natural_log: np.ndarray, hess: np.ndarray) -> None:
        names = list(self.param_names)
        try:
            cov = np.linalg.inv(hess)
            var = np.diag(cov)
        except np.linalg.LinAlgError:
            var = np.full(len(names), np.nan)
        var = np.where(var > 0, var, np.nan)
        se_log = np.sqrt(var)
        params = np.exp(natural_log)
        self.standard_errors_ = pd.Series(params * se_log, index=names, name="se")
        self.confidence_intervals_ = pd.DataFrame(
            {
                "lower": np.exp(natural_log - _Z95 * se_log),
                "upper": np.exp(natural_log + _Z95 * se_log),
            },
            index=names,
        )

    def summary_table(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals, one row per parameter."""
        self._check_fitted()
        return pd.DataFrame(
            {
                "estimate": self.params_,
                "se": self.standard_errors_,
                "lower_95": self.confidence_intervals_["lower"],
                "upper_95": self.confidence_intervals_["upper"],
            }
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise PlaybookError(
                f"The {self.label} model has not been fitted yet.\n"
                "What to do: call .fit(summary) first."
            )


def _bfgs_attempt(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]] | Callable[[np.ndarray], float],
    x0: np.ndarray,
    *,
    jac: bool,
    tol: float = 1e-7,
) -> _Attempt:
    out = minimize(fun, x0=x0, jac=jac, method="BFGS", tol=tol)
    if out.success:
        return _Attempt(out.x, True, "")
    return _Attempt(out.x, False, f"the optimiser stopped: {out.message}")


# ---------------------------------------------------------------------------
# Transaction models in continuous time (BG/NBD, Pareto/NBD, MBG/NBD)
# ---------------------------------------------------------------------------
class TransactionModel(CLVModel):
    """Shared predictions of the continuous-time models (``frequency, recency, T``)."""

    columns: ClassVar[tuple[str, ...]] = (FREQUENCY, RECENCY, T_COL)

    def _scale(self, rows: pd.DataFrame) -> float:
        return 1.0 / float(rows[T_COL].max()) if float(rows[T_COL].max()) > 0 else 1.0

    def _select(self, summary: pd.DataFrame) -> pd.DataFrame:
        data = check_summary(summary, self.columns, self.label)
        if (data[FREQUENCY] == 0).all():
            raise NotEnoughData(
                f"No customer in the learning period came back to buy again, so the "
                f"{self.label} model has nothing to learn from.\n"
                "What to do: report on a later season, once some customers have returned "
                "(or, fitting by hand, choose a later calibration end)."
            )
        if float(data[T_COL].max()) <= 0:
            raise PlaybookError(
                "Every customer's first purchase is on the last day observed (T = 0).\n"
                "What to do: use a later observation or calibration end."
            )
        return data

    @staticmethod
    def _arrays(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            summary[FREQUENCY].to_numpy(dtype=float),
            summary[RECENCY].to_numpy(dtype=float),
            summary[T_COL].to_numpy(dtype=float),
        )

    def expected_purchases(self, t: float | np.ndarray, summary: pd.DataFrame) -> np.ndarray:
        """Expected repeat purchases of each customer in the next ``t`` time units.

        Parameters
        ----------
        t : float or array
            Length of the future period, in the summary's time unit.
        summary : pandas.DataFrame
            ``frequency, recency, T`` per customer.
        """
        self._check_fitted()
        x, r, T = self._arrays(summary)
        with np.errstate(all="ignore"):
            out = self.fitter_.conditional_expected_number_of_purchases_up_to_time(t, x, r, T)
        return np.asarray(out, dtype=float)

    def expected_purchases_curve(self, ts: Sequence[float], summary: pd.DataFrame) -> np.ndarray:
        """:meth:`expected_purchases` at several horizons: one column per ``t`` in ``ts``.

        Returns
        -------
        numpy.ndarray
            Shape ``(len(summary), len(ts))``.
        """
        out = np.empty((len(summary), len(ts)))
        for j, t in enumerate(ts):
            out[:, j] = self.expected_purchases(float(t), summary)
        return out

    def p_alive(self, summary: pd.DataFrame) -> np.ndarray:
        """Probability that each customer is still active at the end of their history."""
        self._check_fitted()
        x, r, T = self._arrays(summary)
        with np.errstate(all="ignore"):
            out = self.fitter_.conditional_probability_alive(x, r, T)
        return np.clip(np.asarray(out, dtype=float), 0.0, 1.0)

    def expected_purchases_new(self, t: float | np.ndarray) -> np.ndarray:
        """Expected repeat purchases within ``t`` time units of a new customer's first purchase."""
        self._check_fitted()
        with np.errstate(all="ignore"):
            out = self.fitter_.expected_number_of_purchases_up_to_time(np.asarray(t, dtype=float))
        return np.asarray(out, dtype=float)


class _BGNBDData:
    """Compressed BG/NBD inputs split for the fast likelihood."""

    def __init__(self, x: np.ndarray, t: np.ndarray, T: np.ndarray, w: np.ndarray):
        x = x.astype(np.int64)
        self.n = float(w.sum())
        self.xs, xinv = np.unique(x, return_inverse=True)
        self.wx = np.bincount(xinv, weights=w)
        zero = x == 0
        self.T0, self.w0 = T[zero], w[zero]
        pos = ~zero
        self.x1 = x[pos].astype(float)
        self.t1, self.T1, self.w1 = t[pos], T[pos], w[pos]
        self.xi1 = xinv[pos]


def _dot(u: np.ndarray, v: np.ndarray) -> float:
    """Dot product of two vectors without BLAS.

    BLAS may split a long dot product across threads: on a busy machine the threads
    wait for each other and a fit slows down tenfold, and the sum's order (so its last
    bits) can depend on the thread count. One plain loop is fast and always the same.
    """
    return float(np.einsum("i,i->", u, v))


def _bgnbd_loglik_grad(params: np.ndarray, d: _BGNBDData) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood and its gradient in (r, alpha, a, b).

    The same function as ``lifetimes.BetaGeoFitter._negative_log_likelihood`` (Fader,
    Hardie & Lee 2005, eq. 6), with frequency-only terms computed per distinct frequency.
    """
    r, alpha, a, b = params
    xs, wx = d.xs, d.wx
    # terms that depend on the frequency only
    a1 = gammaln(r + xs) - gammaln(r)
    a2 = gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)
    dig_ab = digamma(a + b)
    dig_abx = digamma(a + b + xs)
    g_r = _dot(wx, (digamma(r + xs) - digamma(r))) + d.n * np.log(alpha)
    g_alpha = d.n * r / alpha
    g_a = _dot(wx, (dig_ab - dig_abx))
    g_b = _dot(wx, (dig_ab + digamma(b + xs) - digamma(b) - dig_abx))
    ll = _dot(wx, (a1 + a2)) + d.n * r * np.log(alpha)
    # customers without repeat purchases
    if d.T0.size:
        l0 = np.log(alpha + d.T0)
        ll -= r * (_dot(d.w0, l0))
        g_r -= _dot(d.w0, l0)
        g_alpha -= r * (_dot(d.w0, (1.0 / (alpha + d.T0))))
    # repeat buyers: log(exp(A3) + exp(A4))
    if d.x1.size:
        rx = r + d.x1
        l_T = np.log(alpha + d.T1)
        l_t = np.log(alpha + d.t1)
        log_bx = np.log(b + xs - 1.0)
        a3 = -rx * l_T
        a4 = np.log(a) - log_bx[d.xi1] - rx * l_t
        w4 = expit(a4 - a3)
        w3 = 1.0 - w4
        lse = np.logaddexp(a3, a4)
        ll += _dot(d.w1, lse)
        g_r -= _dot(d.w1, (w3 * l_T + w4 * l_t))
        g_alpha -= _dot(d.w1, rx * (w3 / (alpha + d.T1) + w4 / (alpha + d.t1)))
        ww4 = d.w1 * w4
        g_a += ww4.sum() / a
        g_b -= _dot(np.bincount(d.xi1, weights=ww4, minlength=len(xs)), 1.0 / (b + xs - 1.0))
    return float(ll), np.array([g_r, g_alpha, g_a, g_b])


class _BGNBDExact:
    """BG/NBD inputs arranged for :func:`_bgnbd_exact` (likelihood, gradient, Hessian).

    Customers without repeat purchases enter only through ``T``: they are pooled per
    distinct ``T``. Repeat buyers are kept in frequency order (so per-frequency sums
    are sums over contiguous segments), and ``log(alpha + T)``, ``1 / (alpha + T)`` (and
    the same for the recency) are computed once per distinct value and gathered.
    """

    def __init__(self, x: np.ndarray, t: np.ndarray, T: np.ndarray, w: np.ndarray):
        x = np.asarray(x, dtype=float).astype(np.int64)
        if x.size > 1 and (x[1:] < x[:-1]).any():
            order = np.argsort(x, kind="stable")
            x, t, T, w = x[order], t[order], T[order], w[order]
        t, T, w = (np.asarray(v, dtype=float) for v in (t, T, w))
        self.n = float(w.sum())
        xs, xinv = np.unique(x, return_inverse=True)
        self.xs = xs.astype(float)
        self.wx = np.bincount(xinv, weights=w, minlength=len(xs))
        zero = x == 0
        code0, self.u0 = pd.factorize(T[zero])
        self.w0 = np.bincount(code0, weights=w[zero], minlength=len(self.u0))
        pos = ~zero
        xp = x[pos]
        self.x1 = xp.astype(float)
        self.w1 = w[pos]
        self.n1 = int(xp.size)
        self.iT, self.uT = pd.factorize(T[pos])
        self.it, self.ut = pd.factorize(t[pos])
        self.wT = np.bincount(self.iT, weights=self.w1, minlength=len(self.uT))
        self.wxT = np.bincount(self.iT, weights=self.w1 * self.x1, minlength=len(self.uT))
        starts = np.flatnonzero(np.r_[True, xp[1:] != xp[:-1]]) if xp.size else np.zeros(0, int)
        self.seg_starts = starts
        self.seg_x = xp[starts].astype(float)
        self.seg_id = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, xp.size]))
        self.work = np.empty((9, xp.size))  # buffers for the row-wise work


def _trigamma(v: np.ndarray | float) -> np.ndarray:
    """The trigamma function (derivative of the digamma function)."""
    return zeta(2.0, v)


def _bgnbd_exact(p: np.ndarray, d: _BGNBDExact) -> tuple[float, np.ndarray, np.ndarray]:
    """Weighted BG/NBD log-likelihood, gradient and Hessian in (r, alpha, a, b).

    The same function as :func:`_bgnbd_loglik_grad` (so as ``lifetimes``), with its
    exact second derivatives. A repeat buyer's term is ``log(exp(A3) + exp(A4))``; with
    ``w4`` the softmax weight of ``A4`` and ``v = w4 (1 - w4)``, its Hessian is
    ``(1 - w4) A3'' + w4 A4'' + v (A3' - A4')(A3' - A4')^T``.
    """
    r, alpha, a, b = (float(v) for v in p)
    n, xs, wx = d.n, d.xs, d.wx
    la = np.log(alpha)
    # terms that depend on the frequency only
    ll = (
        _dot(
            wx,
            (gammaln(r + xs) - gammaln(r))
            + (gammaln(a + b) + gammaln(b + xs) - gammaln(b) - gammaln(a + b + xs)),
        )
        + n * r * la
    )
    dig_ab = digamma(a + b)
    dig_abx = digamma(a + b + xs)
    g_r = _dot(wx, digamma(r + xs) - digamma(r)) + n * la
    g_al = n * r / alpha
    g_a = _dot(wx, dig_ab - dig_abx)
    g_b = _dot(wx, dig_ab + digamma(b + xs) - digamma(b) - dig_abx)
    tri_ab = _trigamma(a + b)
    tri_abx = _trigamma(a + b + xs)
    h_rr = _dot(wx, _trigamma(r + xs) - _trigamma(r))
    h_ral = n / alpha
    h_alal = -n * r / alpha**2
    h_aa = _dot(wx, tri_ab - tri_abx)
    h_ab = h_aa
    h_bb = _dot(wx, tri_ab + _trigamma(b + xs) - _trigamma(b) - tri_abx)
    h_ra = h_rb = h_ala = h_alb = 0.0
    # customers without repeat purchases: -r log(alpha + T)
    if d.u0.size:
        i0 = 1.0 / (alpha + d.u0)
        s_l0 = _dot(d.w0, np.log(alpha + d.u0))
        s_i0 = _dot(d.w0, i0)
        ll -= r * s_l0
        g_r -= s_l0
        g_al -= r * s_i0
        h_ral -= s_i0
        h_alal += r * _dot(d.w0, i0 * i0)
    # repeat buyers: log(exp(A3) + exp(A4)), A3 = -(r + x) log(alpha + T),
    # A4 = log(a) - log(b + x - 1) - (r + x) log(alpha + t)
    if d.n1:
        w1 = d.w1
        lT_tab = np.log(alpha + d.uT)
        iT_tab = 1.0 / (alpha + d.uT)
        lt_tab = np.log(alpha + d.ut)
        it_tab = 1.0 / (alpha + d.ut)
        ibx_seg = 1.0 / (b + d.seg_x - 1.0)
        c_seg = np.log(a) + np.log(ibx_seg)  # log a - log(b + x - 1)
        # Row-wise work in preallocated buffers (no fresh memory per evaluation).
        lT, dl, rx, diff, e, s, w4, v, tmp = d.work
        np.take(lT_tab, d.iT, out=lT)
        np.take(lt_tab, d.it, out=dl)
        np.subtract(lT, dl, out=dl)  # log(alpha + T) - log(alpha + t) >= 0
        np.add(d.x1, r, out=rx)
        np.multiply(rx, dl, out=diff)
        diff += np.take(c_seg, d.seg_id, out=tmp)  # A4 - A3
        upper = diff >= 0
        np.abs(diff, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)  # exp(-|A4 - A3|)
        np.add(e, 1.0, out=s)
        np.reciprocal(s, out=s)
        np.multiply(e, s, out=w4)
        np.multiply(w4, s, out=v)  # w4 (1 - w4)
        np.copyto(w4, s, where=upper)  # expit(A4 - A3)
        np.maximum(diff, 0.0, out=tmp)
        tmp -= np.log(s, out=e)  # now log(1 + exp(A4 - A3)), as -log(s) = log(1 + e)
        # sums of A3 over rows, from per-T sums
        s_lT = _dot(d.wT, lT_tab)
        s_xlT = _dot(d.wxT, lT_tab)
        s_iT = _dot(d.wT, iT_tab)
        s_xiT = _dot(d.wxT, iT_tab)
        ll += -(r * s_lT + s_xlT) + _dot(w1, tmp)
        it, iT, di, dal = lT, diff, e, s  # reuse the buffers no longer needed
        np.take(it_tab, d.it, out=it)
        np.take(iT_tab, d.iT, out=iT)
        np.subtract(it, iT, out=di)  # 1/(alpha+t) - 1/(alpha+T) >= 0
        it += iT
        np.multiply(rx, di, out=dal)  # A3'(alpha) - A4'(alpha)
        ww4, wv, wv_dl, wv_dal = w4, v, tmp, iT
        ww4 *= w1
        wv *= w1
        np.multiply(wv, dl, out=wv_dl)
        np.multiply(wv, dal, out=wv_dal)
        seg = np.array([np.add.reduceat(z, d.seg_starts) for z in (ww4, wv, wv_dl, wv_dal)])
        s_w4, s_v, s_vdl, s_vdal = (float(z) for z in seg.sum(axis=1))
        g_r += -s_lT + _dot(ww4, dl)
        g_al -= r * s_iT + s_xiT + _dot(ww4, dal)
        g_a += s_w4 / a
        g_b -= _dot(seg[0], ibx_seg)
        # A3 - A4 in (r, alpha, a, b): (-dl, dal, -1/a, 1/(b + x - 1))
        h_rr += _dot(wv_dl, dl)
        h_ral -= s_iT + _dot(ww4, di) + _dot(wv_dl, dal)
        iT2 = iT_tab * iT_tab
        it *= dal  # (r + x) (1/(alpha+t)^2 - 1/(alpha+T)^2)
        h_alal += r * _dot(d.wT, iT2) + _dot(d.wxT, iT2) + _dot(ww4, it) + _dot(wv_dal, dal)
        h_ra += s_vdl / a
        h_rb -= _dot(seg[2], ibx_seg)
        h_ala -= s_vdal / a
        h_alb += _dot(seg[3], ibx_seg)
        h_aa += (s_v - s_w4) / a**2
        h_ab -= _dot(seg[1], ibx_seg) / a
        h_bb += _dot(seg[0] + seg[1], ibx_seg * ibx_seg)
    grad = np.array([g_r, g_al, g_a, g_b])
    hess = np.array(
        [
            [h_rr, h_ral, h_ra, h_rb],
            [h_ral, h_alal, h_ala, h_alb],
            [h_ra, h_ala, h_aa, h_ab],
            [h_rb, h_alb, h_ab, h_bb],
        ]
    )
    return float(ll), grad, hess


def _bgnbd_exact_objective(
    d: _BGNBDExact, penalizer: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]:
    """:func:`_bgnbd_objective` with its exact Hessian (mean, in log-parameters)."""

    def fun(lp: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        p = np.exp(lp)
        ll, g, h = _bgnbd_exact(p, d)
        f = -ll / d.n + penalizer * float(p @ p)
        grad = -g * p / d.n + 2.0 * penalizer * p * p
        hess = -(h * np.outer(p, p) + np.diag(g * p)) / d.n + np.diag(4.0 * penalizer * p * p)
        return f, grad, hess

    return fun


def _newton_exact(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]],
    x: np.ndarray,
    *,
    gtol: float,
    max_iter: int = 60,
) -> tuple[np.ndarray, bool, tuple[float, np.ndarray, np.ndarray]]:
    """Newton steps on the exact Hessian, made positive definite where it is not.

    Each step costs one evaluation (a backtracking line search adds one per halving).
    Returns the point, whether the gradient ended below ``gtol``, and the objective,
    gradient and Hessian there. Once the gradient is below ``gtol`` at a positive
    definite Hessian, the point returned takes one last Newton step, which costs no
    evaluation and leaves the flat directions of the surface settled to many more digits
    (the objective, gradient and Hessian returned are those before it, and differ from
    those after it in the last digits only).
    """
    x = np.asarray(x, dtype=float)
    f0, g0, h0 = fun(x)
    if not (np.isfinite(f0) and np.isfinite(g0).all() and np.isfinite(h0).all()):
        return x, False, (f0, g0, h0)
    for _ in range(max_iter):
        gmax = float(np.max(np.abs(g0)))
        if gmax < gtol:
            if _positive_definite(h0):
                x = x - np.linalg.solve(0.5 * (h0 + h0.T), g0)
            return x, True, (f0, g0, h0)
        lam, vec = np.linalg.eigh(0.5 * (h0 + h0.T))
        top = float(np.max(np.abs(lam)))
        lam = np.maximum(np.abs(lam), max(top, 1.0) * 1e-8)
        step = vec @ ((vec.T @ g0) / lam)
        big = float(np.max(np.abs(step)))
        if big > 2.0:  # no jumps beyond a factor e^2 in any parameter
            step *= 2.0 / big
        slope = float(g0 @ step)
        t = 1.0
        for _ in range(40):
            f1, g1, h1 = fun(x - t * step)
            if np.isfinite(f1) and np.isfinite(g1).all() and np.isfinite(h1).all():
                if f1 <= f0 - 1e-4 * t * slope:
                    break
                # at the floor of rounding error: accept a step that shrinks the gradient
                if f1 <= f0 + 1e-14 * abs(f0) and np.max(np.abs(g1)) < 0.5 * gmax:
                    break
            t *= 0.5
        else:
            return x, False, (f0, g0, h0)
        x, f0, g0, h0 = x - t * step, f1, g1, h1
    return x, bool(np.max(np.abs(g0)) < gtol), (f0, g0, h0)


class BGNBD(TransactionModel):
    """Beta-geometric / negative binomial model (Fader, Hardie & Lee 2005).

    While active, a customer buys at a steady rate (gamma-distributed across customers,
    shape ``r``, rate ``alpha``); after each purchase they drop out for good with a
    probability that varies across customers as a beta(``a``, ``b``).

    Parameters
    ----------
    penalizer, retry_penalizer, compress
        See :class:`CLVModel`.
    engine : {"kit", "lifetimes"}
        ``kit``: the kit's likelihood with its analytic gradient and Hessian, maximised
        by Newton steps (fast, tight); BFGS then finite-difference Newton steps when
        those do not reach a clean peak. ``lifetimes``: ``lifetimes.BetaGeoFitter``
        (reference).
    tol : float
        Gradient tolerance handed to the optimiser.
    """

    name = "bgnbd"
    label = "BG/NBD"
    param_names = ("r", "alpha", "a", "b")
    scaled_params = ("alpha",)

    def __init__(
        self,
        penalizer: float = 0.0,
        retry_penalizer: float = 1e-3,
        compress: bool = True,
        engine: str = "kit",
        tol: float = 1e-7,
    ) -> None:
        super().__init__(penalizer, retry_penalizer, compress)
        self.engine = engine
        self.tol = tol

    def _rows(self, data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        if self.compress and self.engine == "kit":
            packed = _compress_on_grid(data, self.columns)
            if packed is not None:
                return packed
        return super()._rows(data)

    def _data(self, rows: pd.DataFrame, weights: np.ndarray, scale: float) -> _BGNBDData:
        x, r, T = self._arrays(rows)
        return _BGNBDData(x, r * scale, T * scale, weights)

    def _attempt(self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float) -> _Attempt:
        scale = self._scale(rows)
        if self.engine == "lifetimes":
            from lifetimes import BetaGeoFitter

            x, r, T = self._arrays(rows)
            fitter = BetaGeoFitter(penalizer_coef=penalizer)
            try:
                fitter.fit(x, r, T, weights=weights, tol=self.tol)
            except Exception as exc:  # lifetimes raises its own ConvergenceError
                return _Attempt(np.full(4, np.nan), False, str(exc).strip() or type(exc).__name__)
            p = fitter.params_.to_numpy(dtype=float).copy()
            p[1] *= scale
            return _Attempt(np.log(p), True, "", state=fitter)
        if self.engine != "kit":
            raise PlaybookError(
                f"Unknown BG/NBD engine {self.engine!r}.\nWhat to do: use 'kit' or 'lifetimes'."
            )
        try:
            fast = self._attempt_exact(rows, weights, penalizer, scale)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            fast = None
        if fast is not None:
            return fast
        return self._attempt_gradient(rows, weights, penalizer, scale)

    def _attempt_exact(
        self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float, scale: float
    ) -> _Attempt | None:
        """Newton steps on the exact Hessian; None unless they reach a proper peak.

        A start from a thinned copy of the data (a few percent of the customers, drawn
        with a fixed seed) makes the full-data work three or four Newton steps. The last
        step's Hessian gives the standard errors. When the steps do not end at a clean
        optimum (a positive definite Hessian, sensible values), the caller falls back on
        :meth:`_attempt_gradient`, so failures read as they always have.
        """
        x, rec, age = self._arrays(rows)
        d = _BGNBDExact(x, rec * scale, age * scale, weights)
        fun = _bgnbd_exact_objective(d, penalizer)
        x0 = np.full(4, 0.1)
        thin = _thin(d, x=rows, weights=weights, scale=scale, target=_THIN_TARGET, make=_BGNBDExact)
        if thin is not None:
            start, _, _ = _newton_exact(_bgnbd_exact_objective(thin, penalizer), x0, gtol=1e-7)
            if np.isfinite(start).all():
                x0 = start
        lp, ok, (f, _, h) = _newton_exact(fun, x0, gtol=min(self.tol, 1e-9))
        if not ok or not np.isfinite(f) or self._absurd(lp) or not _positive_definite(h):
            return None
        p = np.exp(lp)
        # Hessian of the unpenalised total log-likelihood (log-parameters: the time
        # scale does not change it), for the standard errors.
        hess = (h - np.diag(4.0 * penalizer * p * p)) * d.n
        # Log-likelihood in the summary's own time unit: rescaling time by c adds
        # -x log(c) per customer (alpha and the times scale together): add it back.
        ll = -(f - penalizer * float(p @ p)) * d.n + np.log(scale) * _dot(d.wx, d.xs)
        return _Attempt(lp, True, "", state=(hess, ll))

    def _attempt_gradient(
        self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float, scale: float
    ) -> _Attempt:
        """BFGS, then Newton steps on a finite-difference Hessian of the gradient."""
        d = self._data(rows, weights, scale)
        fun = _bgnbd_objective(d, penalizer)
        # A start from a thinned copy of the data (a few percent of the customers, drawn
        # with a fixed seed) makes the full-data work a handful of Newton steps.
        thin = _thin(d, x=rows, weights=weights, scale=scale, target=_THIN_TARGET)
        hess0 = None
        if thin is not None:
            thin_fun = _bgnbd_objective(thin, penalizer)
            x0 = _bfgs_attempt(thin_fun, np.full(4, 0.1), jac=True).log_params
            if np.isfinite(x0).all():
                # the thinned data's curvature stands in for the full data's at first
                hess0 = _fd_hessian(lambda z: thin_fun(z)[1], x0)
        else:
            x0 = _bfgs_attempt(fun, np.full(4, 0.1), jac=True, tol=self.tol).log_params
        if not np.isfinite(x0).all():
            x0, hess0 = np.full(4, 0.1), None
        lp, ok, why = _newton(fun, x0, gtol=min(self.tol, 1e-9), hess=hess0)
        if not ok:  # fall back on BFGS from the start, then polish again
            att = _bfgs_attempt(fun, x0, jac=True, tol=self.tol)
            if not np.isfinite(att.log_params).all():
                return att
            lp, ok, why2 = _newton(fun, att.log_params, gtol=min(self.tol, 1e-9))
            ok = ok or att.ok
            why = "" if ok else (att.why or why2)
        # Hessian of the unpenalised total log-likelihood (log-parameters: the time
        # scale does not change it), for the standard errors.
        plain = _bgnbd_objective(d, 0.0)
        f_lp, g_lp = plain(lp)
        hess = _fd_hessian(lambda z: plain(z)[1], lp, g0=g_lp) * d.n
        # Log-likelihood in the summary's own time unit: rescaling time by c adds
        # -x log(c) per customer (alpha and the times scale together): add it back.
        ll = -f_lp * d.n + np.log(scale) * _dot(d.wx, d.xs)
        return _Attempt(lp, ok, why, state=(hess, ll))

    def _total_loglik(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray
    ) -> float:
        cached = getattr(self, "_cached_ll", None)
        if cached is not None and np.array_equal(cached[0], log_params):
            return cached[1]
        d = self._data(rows, weights, 1.0)
        return _bgnbd_loglik_grad(np.exp(log_params), d)[0]

    def _hessian(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray, state: Any
    ) -> np.ndarray:
        if isinstance(state, tuple):
            self._cached_ll = (log_params.copy(), state[1])
            return state[0]
        d = self._data(rows, weights, 1.0)
        return _fd_hessian(lambda z: _bgnbd_objective(d, 0.0)(z)[1], log_params) * d.n

    def expected_purchases_curve(self, ts: Sequence[float], summary: pd.DataFrame) -> np.ndarray:
        """:meth:`expected_purchases` at several horizons, the same numbers as ``lifetimes``.

        Equation (10) of Fader, Hardie & Lee (2005), written as ``lifetimes`` writes it
        (so every value is bit for bit the same), but its costly part (the Gauss
        hypergeometric term) depends only on ``frequency`` and ``T``: it is computed once
        per distinct pair, not once per customer, and ``recency`` enters only the
        denominator.
        """
        self._check_fitted()
        from scipy.special import hyp2f1

        x_all, rec, T_all = self._arrays(summary)
        out = np.empty((len(summary), len(ts)))
        if len(summary) == 0:
            return out
        pairs, inverse = distinct_rows(summary, (FREQUENCY, T_COL))
        x = pairs[FREQUENCY].to_numpy(dtype=float)
        T = pairs[T_COL].to_numpy(dtype=float)
        r, alpha, a, b = self.fitter_._unload_params("r", "alpha", "a", "b")
        with np.errstate(all="ignore"):
            denominator = 1 + (x_all > 0) * (a / (b + x_all - 1)) * (
                (alpha + T_all) / (alpha + rec)
            ) ** (r + x_all)
            _a, _b, _c = r + x, b + x, a + b + x - 1
            first_term = (a + b + x - 1) / (a - 1)
            for j, t in enumerate(ts):
                t = float(t)
                _z = t / (alpha + T + t)
                ln_hyp = np.log(hyp2f1(_a, _b, _c, _z))
                bad = np.isinf(ln_hyp)
                if bad.any():  # the equivalent form lifetimes falls back on
                    alt = np.log(hyp2f1(_c - _a, _c - _b, _c, _z)) + (_c - _a - _b) * np.log(1 - _z)
                    ln_hyp = np.where(bad, alt, ln_hyp)
                second_term = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))
                out[:, j] = (first_term * second_term)[inverse] / denominator
        return out

    def _after_fit(self, rows: pd.DataFrame, weights: np.ndarray, state: Any) -> None:
        from lifetimes import BetaGeoFitter

        fitter = BetaGeoFitter(penalizer_coef=self.penalizer_used_)
        fitter.params_ = self.params_.copy()
        fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time
        self.fitter_ = fitter


_THIN_TARGET = 40_000  # customers in the thinned copy used for the starting point


def _bgnbd_objective(
    d: _BGNBDData, penalizer: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Mean negative log-likelihood plus penalty, and its gradient, in log-parameters.

    The same objective as ``lifetimes.BetaGeoFitter`` (penalty on the parameters on the
    internal time scale).
    """

    def fun(lp: np.ndarray) -> tuple[float, np.ndarray]:
        p = np.exp(lp)
        ll, g = _bgnbd_loglik_grad(p, d)
        f = -ll / d.n + penalizer * float(p @ p)
        grad = -g * p / d.n + 2.0 * penalizer * p * p
        return f, grad

    return fun


def _thin(
    d: _BGNBDData | _BGNBDExact,
    *,
    x: pd.DataFrame,
    weights: np.ndarray,
    scale: float,
    target: int,
    make: Callable[..., Any] = _BGNBDData,
) -> Any:
    """A binomially thinned copy of the data with about ``target`` customers (or None).

    ``make`` builds it from ``(frequency, recency, T, weights)`` (``_BGNBDData`` or
    ``_BGNBDExact``).
    """
    if d.n <= 5 * target:
        return None
    rng = np.random.default_rng(20050101)
    w = rng.binomial(weights.astype(np.int64), target / d.n).astype(float)
    keep = w > 0
    freq = x[FREQUENCY].to_numpy(dtype=float)[keep]
    if not (freq > 0).any():
        return None
    rec = x[RECENCY].to_numpy(dtype=float)[keep] * scale
    age = x[T_COL].to_numpy(dtype=float)[keep] * scale
    return make(freq, rec, age, w[keep])


def _fd_hessian(
    grad: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    h: float = 1e-6,
    g0: np.ndarray | None = None,
) -> np.ndarray:
    """Forward-difference Jacobian of a gradient (a Hessian), symmetrised."""
    k = len(x)
    g0 = grad(x) if g0 is None else g0
    jac = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h
        jac[:, i] = (grad(x + e) - g0) / h
    return 0.5 * (jac + jac.T)


def _newton(
    fun: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    *,
    gtol: float = 1e-9,
    max_iter: int = 40,
    hess: np.ndarray | None = None,
) -> tuple[np.ndarray, bool, str]:
    """Damped Newton steps with a finite-difference Hessian of the analytic gradient.

    From a nearby start this reaches the optimum to near machine precision in a few
    steps, so compressed and uncompressed fits agree to many digits. The Hessian (given,
    or computed at the start) is kept while the steps work well and recomputed when
    they slow down. Returns the point, whether the gradient ended below ``gtol`` and,
    if not, why.
    """
    f0, g0 = fun(x)
    if not np.isfinite(f0):
        return x, False, "the likelihood is not finite at the starting point"
    for _ in range(max_iter):
        if np.max(np.abs(g0)) < gtol:
            return x, True, ""
        if hess is None:
            hess = _fd_hessian(lambda z: fun(z)[1], x)
        try:
            step = np.linalg.solve(hess, g0)
        except np.linalg.LinAlgError:
            return x, False, "the likelihood surface is flat (singular Hessian)"
        if not np.isfinite(step).all() or g0 @ step <= 0:
            step = g0  # not a descent direction: fall back on the gradient
        t = 1.0
        for _ in range(30):
            f1, g1 = fun(x - t * step)
            if np.isfinite(f1) and f1 <= f0 - 1e-4 * t * (g0 @ step):
                break
            t *= 0.5
        else:
            # no decrease possible: fine if already at the floor of rounding error
            ok = np.max(np.abs(g0)) < 1e-6
            return x, bool(ok), "" if ok else "no further decrease of the likelihood"
        if t < 1.0 or np.max(np.abs(g1)) > 0.25 * np.max(np.abs(g0)):
            hess = None  # slow progress: fresh curvature next time
        x, f0, g0 = x - t * step, f1, g1
    ok = np.max(np.abs(g0)) < 1e-6
    return x, bool(ok), "" if ok else "the Newton steps did not settle"


class _ParetoNBDData:
    """Pareto/NBD inputs arranged for :func:`_pareto_nbd_loglik`.

    The costly part of the likelihood, two Gauss hypergeometric functions per row, depends
    on ``(frequency, recency)`` for the first and on ``(frequency, T)`` for the second, so
    each is computed once per distinct pair and gathered; terms of the frequency alone
    are computed once per distinct frequency.
    """

    def __init__(self, x: np.ndarray, t: np.ndarray, T: np.ndarray):
        x, t, T = (np.asarray(v, dtype=float) for v in (x, t, T))
        self.x, self.t, self.T = x, t, T
        self.xs, self.ix = np.unique(x, return_inverse=True)
        frame = pd.DataFrame({FREQUENCY: x, RECENCY: t, T_COL: T})
        rec_pairs, self.i1 = distinct_rows(frame, (FREQUENCY, RECENCY))
        age_pairs, self.i2 = distinct_rows(frame, (FREQUENCY, T_COL))
        self.x1 = rec_pairs[FREQUENCY].to_numpy(dtype=float)
        self.t1 = rec_pairs[RECENCY].to_numpy(dtype=float)
        self.x2 = age_pairs[FREQUENCY].to_numpy(dtype=float)
        self.T2 = age_pairs[T_COL].to_numpy(dtype=float)
        self.work = np.empty((5, x.size))  # buffers for the row-wise work


def _logsumexp_signed(u: np.ndarray, v: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``scipy.special.logsumexp([u, v], axis=0, b=[1, -1])`` bit for bit: log(e^u - e^v).

    Where the result is finite, scipy computes it as ``log1p(-exp(v - u)) + log(1) + u``
    (``u`` the larger term, ``log(1) = 0``); the other rows (ties, infinities, NaN) are
    handed to scipy itself. Written into ``out``.
    """
    np.subtract(v, u, out=out)
    np.exp(out, out=out)
    np.negative(out, out=out)
    np.log1p(out, out=out)
    out += 0.0
    out += u
    odd = np.flatnonzero(~np.isfinite(out))
    if odd.size:
        uo, vo = u[odd], v[odd]
        # ties (recency = T) give log(0) = -inf, as in scipy (NaN where exp(u) overflows)
        tie = (uo == vo) & np.isfinite(np.exp(uo))
        out[odd[tie]] = -np.inf
        rest = odd[~tie]
        if rest.size:
            from scipy.special import logsumexp

            k = rest.size
            out[rest] = logsumexp([u[rest], v[rest]], axis=0, b=[np.ones(k), -np.ones(k)])
    return out


def _pareto_nbd_loglik(params: np.ndarray, d: _ParetoNBDData) -> np.ndarray:
    """Log-likelihood of each row, the same numbers as ``lifetimes``, computed faster.

    ``lifetimes.ParetoNBDFitter._conditional_log_likelihood`` (Fader & Hardie 2005,
    equations 18-20) written operation for operation as ``lifetimes`` writes it, so every
    value is bit for bit the same (tested), with the hypergeometric terms computed once
    per distinct ``(frequency, recency)`` and ``(frequency, T)`` pair and the terms of
    the frequency alone once per distinct frequency.
    """
    from scipy.special import hyp2f1

    r, alpha, s, beta = params
    log = np.log
    # log A_0, as lifetimes' _log_A_0
    if alpha < beta:
        lo, hi = alpha, beta
        b1, b2 = r + d.x1, r + d.x2
    else:
        lo, hi = beta, alpha
        b1 = b2 = s + 1
    gap = hi - lo
    rsf1 = r + s + d.x1
    rsf2 = r + s + d.x2
    q_1 = hi + d.t1
    q_2 = hi + d.T2
    log_p1 = log(hyp2f1(rsf1, b1, rsf1 + 1.0, gap / q_1))
    log_p2 = log(hyp2f1(rsf2, b2, rsf2 + 1.0, gap / q_2))
    log_q1, log_q2 = log(q_1), log(q_2)
    xs = d.xs
    log_rsf_x = log(r + s + xs)
    # the same for every row of one pair (or one frequency): computed once, gathered
    a_1 = gammaln(r + xs) - gammaln(r) + r * log(alpha) + s * log(beta)
    first = -(r + d.x2) * log(alpha + d.T2) - s * log(beta + d.T2)
    rsf, u, v, lse, tmp = d.work
    i1, i2, ix = d.i1, d.i2, d.ix
    np.add(d.x, r + s, out=rsf)  # r + s + x, as lifetimes adds it
    np.take(log_q2, i2, out=tmp)
    tmp *= rsf
    np.take(log_p1, i1, out=u)
    u += tmp
    np.take(log_q1, i1, out=tmp)
    tmp *= rsf
    np.take(log_p2, i2, out=v)
    v += tmp
    _logsumexp_signed(u, v, lse)  # u and v are free from here
    np.take(q_1, i1, out=u)
    u *= np.take(q_2, i2, out=v)
    np.log(u, out=u)
    u *= rsf
    lse -= u  # log A_0
    # the rest of lifetimes' _conditional_log_likelihood
    lse += log(s)
    lse -= np.take(log_rsf_x, ix, out=rsf)
    np.take(first, i2, out=u)
    out = np.logaddexp(u, lse)
    out += np.take(a_1, ix, out=v)
    return out


class ParetoNBD(TransactionModel):
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987), with the ``lifetimes`` likelihood.

    Purchases at a gamma(``r``, ``alpha``) rate while active; lifetimes end at an
    exponential rate that is gamma(``s``, ``beta``) across customers (drop-out can
    happen at any time, not only just after a purchase).

    The likelihood is ``lifetimes.ParetoNBDFitter``'s, computed by
    :func:`_pareto_nbd_loglik`: the same numbers bit for bit, with the hypergeometric
    terms once per distinct pair of values instead of once per row (several times faster;
    a point the optimisers revisit is not computed again). The optimiser differs (lifetimes
    runs Nelder-Mead from a random start, which is slower and not reproducible): a boxed
    L-BFGS-B search on log-parameters from a fixed start, then Newton steps on
    central-difference gradients. When the likelihood has no peak (it keeps rising
    slowly as ``s`` and ``beta`` grow together, i.e. nearly everyone drops out at the
    same rate) the box stops the drift within seconds and the fit is retried with the
    penalizer, instead of minutes of searching towards infinity. The objective is the mean negative log-likelihood plus
    ``penalizer * sum(params ** 2)``, as for the other models (``lifetimes`` divides this
    model's likelihood by the mean weight instead, which makes the penalty depend on
    compression).
    """

    name = "pareto_nbd"
    label = "Pareto/NBD"
    param_names = ("r", "alpha", "s", "beta")
    scaled_params = ("alpha", "beta")

    def __init__(
        self,
        penalizer: float = 0.0,
        retry_penalizer: float = 1e-3,
        compress: bool = True,
        tol: float = 1e-9,
    ) -> None:
        super().__init__(penalizer, retry_penalizer, compress)
        self.tol = tol

    def _data(self, rows: pd.DataFrame, scale: float) -> _ParetoNBDData:
        """The rows arranged for :func:`_pareto_nbd_loglik` (kept for the last rows seen)."""
        cached = getattr(self, "_cached_data", None)
        if cached is not None and cached[0] is rows and cached[1] == scale:
            return cached[2]
        x, r, T = self._arrays(rows)
        d = _ParetoNBDData(x, r * scale, T * scale)
        self._cached_data = (rows, scale, d)
        return d

    def _attempt(self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float) -> _Attempt:
        scale = self._scale(rows)
        d = self._data(rows, scale)
        n = float(weights.sum())

        seen: dict[bytes, float] = {}  # the optimisers revisit some points: reuse those

        def fun(lp: np.ndarray) -> float:
            key = np.asarray(lp, dtype=float).tobytes()
            if key in seen:
                return seen[key]
            p = np.exp(lp)
            ll = _pareto_nbd_loglik(p, d)
            value = float(-_dot(weights, ll) / n + penalizer * (p @ p))
            seen[key] = value = value if np.isfinite(value) else _NOT_FINITE
            return value

        # 1. A boxed quasi-Newton search: the box keeps a drifting parameter finite, so a
        #    likelihood without a peak costs a few seconds, not minutes.
        box = [(-_ABSURD_LOG, _ABSURD_LOG)] * 4
        out = minimize(
            fun,
            x0=np.zeros(4),
            method="L-BFGS-B",
            jac="2-point",
            bounds=box,
            options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8},
        )
        if not out.fun < _NOT_FINITE:
            return _Attempt(out.x, False, "the likelihood could not be computed")
        if np.max(np.abs(out.jac)) > 1e-4:
            return _Attempt(
                out.x,
                False,
                "the search stalled on a flat ridge of the likelihood, which keeps rising "
                "slowly towards extreme parameter values",
            )
        # 2. Newton steps on central-difference gradients from close by: many correct
        #    digits, so compressed and uncompressed fits agree.
        step = 1e-5 * np.eye(4)

        def fun_grad(lp: np.ndarray) -> tuple[float, np.ndarray]:
            grad = [(fun(lp + e) - fun(lp - e)) / 2e-5 for e in step]
            return fun(lp), np.array(grad)

        best, ok, why = _newton(fun_grad, out.x, gtol=1e-9, max_iter=20)
        if not ok and np.max(np.abs(out.jac)) < 1e-6:
            best, ok = out.x, True
        return _Attempt(best, ok, "" if ok else f"the optimiser stopped: {why}")

    def _total_loglik(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray
    ) -> float:
        ll = _pareto_nbd_loglik(np.exp(log_params), self._data(rows, 1.0))
        return _dot(weights, ll)

    def expected_purchases_curve(self, ts: Sequence[float], summary: pd.DataFrame) -> np.ndarray:
        """:meth:`expected_purchases` at several horizons, the same numbers as ``lifetimes``.

        Equation (41) of Fader & Hardie (2005), written as ``lifetimes`` writes it, so every
        value is bit for bit the same; the customers' log-likelihood in it does not depend
        on the horizon, so it is computed once (with :func:`_pareto_nbd_loglik`), not once
        per horizon.
        """
        self._check_fitted()
        x, t_x, T = self._arrays(summary)
        out = np.empty((len(summary), len(ts)))
        if len(summary) == 0:
            return out
        params = self.fitter_._unload_params("r", "alpha", "s", "beta")
        r, alpha, s, beta = params
        log = np.log
        with np.errstate(all="ignore"):
            likelihood = _pareto_nbd_loglik(np.array(params), _ParetoNBDData(x, t_x, T))
            first_term = (
                gammaln(r + x)
                - gammaln(r)
                + r * log(alpha)
                + s * log(beta)
                - (r + x) * log(alpha + T)
                - s * log(beta + T)
            )
            second_term = log(r + x) + log(beta + T) - log(alpha + T)
            for j, t in enumerate(ts):
                t = float(t)
                third_term = log((1 - ((beta + T) / (beta + T + t)) ** (s - 1)) / (s - 1))
                out[:, j] = np.exp(first_term + second_term + third_term - likelihood)
        return out

    def _after_fit(self, rows: pd.DataFrame, weights: np.ndarray, state: Any) -> None:
        from lifetimes import ParetoNBDFitter

        fitter = ParetoNBDFitter(penalizer_coef=self.penalizer_used_)
        fitter.params_ = self.params_.copy()
        fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time
        self.fitter_ = fitter


class ModifiedBGNBD(TransactionModel):
    """Modified BG/NBD (Batislam, Denizel & Filiztekin 2007), fitted with ``lifetimes``.

    Like BG/NBD, but a customer may also drop out right after the first purchase, so
    one-time buyers are not all assumed to be alive.
    """

    name = "mbgnbd"
    label = "MBG/NBD"
    param_names = ("r", "alpha", "a", "b")
    scaled_params = ("alpha",)

    def __init__(
        self,
        penalizer: float = 0.0,
        retry_penalizer: float = 1e-3,
        compress: bool = True,
        tol: float = 1e-7,
    ) -> None:
        super().__init__(penalizer, retry_penalizer, compress)
        self.tol = tol

    def _attempt(self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float) -> _Attempt:
        from lifetimes import ModifiedBetaGeoFitter

        scale = self._scale(rows)
        x, r, T = self._arrays(rows)
        fitter = ModifiedBetaGeoFitter(penalizer_coef=penalizer)
        try:
            fitter.fit(x, r, T, weights=weights, tol=self.tol)
        except Exception as exc:  # lifetimes' ConvergenceError and numeric failures
            return _Attempt(np.full(4, np.nan), False, str(exc).strip() or type(exc).__name__)
        p = fitter.params_.to_numpy(dtype=float).copy()
        p[1] *= scale
        return _Attempt(np.log(p), True, "", state=fitter)

    def _total_loglik(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray
    ) -> float:
        from lifetimes import ModifiedBetaGeoFitter

        x, r, T = self._arrays(rows)
        mean_nll = ModifiedBetaGeoFitter._negative_log_likelihood(log_params, x, r, T, weights, 0.0)
        return float(-mean_nll * weights.sum())

    def _after_fit(self, rows: pd.DataFrame, weights: np.ndarray, state: Any) -> None:
        from lifetimes import ModifiedBetaGeoFitter

        fitter = ModifiedBetaGeoFitter(penalizer_coef=self.penalizer_used_)
        fitter.params_ = self.params_.copy()
        fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time
        self.fitter_ = fitter


# ---------------------------------------------------------------------------
# Discrete opportunities: BG/BB
# ---------------------------------------------------------------------------
class BGBB(CLVModel):
    """Beta-geometric / beta-Bernoulli (Fader, Hardie & Shang 2010), via ``lifetimes``.

    For discrete purchase opportunities (seasons, performances of a series): at each
    opportunity an active customer buys with a probability that is beta(``alpha``,
    ``beta``) across customers, and becomes inactive with a probability that is
    beta(``gamma``, ``delta``). Needs ``frequency, recency, n_periods`` from
    :func:`playbook.clv.summarise_opportunities`.
    """

    name = "bgbb"
    label = "BG/BB"
    param_names = ("alpha", "beta", "gamma", "delta")
    columns = (FREQUENCY, RECENCY, N_PERIODS)

    def __init__(
        self,
        penalizer: float = 0.0,
        retry_penalizer: float = 1e-3,
        compress: bool = True,
        tol: float = 1e-7,
    ) -> None:
        super().__init__(penalizer, retry_penalizer, compress)
        self.tol = tol

    def _select(self, summary: pd.DataFrame) -> pd.DataFrame:
        data = check_summary(summary, self.columns, self.label)
        data = data[data[N_PERIODS] > 0]
        if len(data) == 0 or (data[FREQUENCY] == 0).all():
            raise PlaybookError(
                "No customer had a later opportunity with a purchase, so the BG/BB model "
                "has nothing to learn from.\nWhat to do: include more seasons or performances."
            )
        return data

    @staticmethod
    def _arrays(summary: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            summary[FREQUENCY].to_numpy(dtype=np.int64),
            summary[RECENCY].to_numpy(dtype=np.int64),
            summary[N_PERIODS].to_numpy(dtype=np.int64),
        )

    def _attempt(self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float) -> _Attempt:
        from lifetimes import BetaGeoBetaBinomFitter

        x, r, n = self._arrays(rows)
        fitter = BetaGeoBetaBinomFitter(penalizer_coef=penalizer)
        try:
            fitter.fit(x, r, n, weights=weights, tol=self.tol)
        except Exception as exc:  # lifetimes' ConvergenceError and numeric failures
            return _Attempt(np.full(4, np.nan), False, str(exc).strip() or type(exc).__name__)
        return _Attempt(np.log(fitter.params_.to_numpy(dtype=float)), True, "", state=fitter)

    def _total_loglik(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray
    ) -> float:
        from lifetimes import BetaGeoBetaBinomFitter

        x, r, n = self._arrays(rows)
        ll = BetaGeoBetaBinomFitter._loglikelihood(np.exp(log_params), x, r, n)
        return _dot(weights, ll)

    def _after_fit(self, rows: pd.DataFrame, weights: np.ndarray, state: Any) -> None:
        from lifetimes import BetaGeoBetaBinomFitter

        fitter = BetaGeoBetaBinomFitter(penalizer_coef=self.penalizer_used_)
        fitter.params_ = self.params_.copy()
        self.fitter_ = fitter

    def expected_purchases(self, m: int | np.ndarray, summary: pd.DataFrame) -> np.ndarray:
        """Expected purchases of each customer over the next ``m`` opportunities."""
        self._check_fitted()
        x, r, n = self._arrays(summary)
        with np.errstate(all="ignore"):
            out = self.fitter_.conditional_expected_number_of_purchases_up_to_time(m, x, r, n)
        return np.asarray(out, dtype=float)

    def p_alive(self, summary: pd.DataFrame, m: int = 0) -> np.ndarray:
        """Probability that each customer is still active ``m`` opportunities from now."""
        self._check_fitted()
        x, r, n = self._arrays(summary)
        with np.errstate(all="ignore"):
            out = self.fitter_.conditional_probability_alive(m, x, r, n)
        return np.clip(np.asarray(out, dtype=float), 0.0, 1.0)


# ---------------------------------------------------------------------------
# Spend: Gamma-Gamma
# ---------------------------------------------------------------------------
class GammaGamma(CLVModel):
    """Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005b), via ``lifetimes``.

    Fitted on repeat buyers with a positive average repeat spend. Assumes the spend per
    purchase is unrelated to how often someone buys: check it with
    :func:`playbook.clv.check_gamma_gamma`. Compression on ``(frequency,
    monetary_value)`` is supported (``lifetimes.GammaGammaFitter`` takes weights); it
    helps when prices repeat, which they usually do for tickets.
    """

    name = "gamma_gamma"
    label = "Gamma-Gamma"
    param_names = ("p", "q", "v")
    columns = (FREQUENCY, MONETARY)

    def __init__(
        self,
        penalizer: float = 0.0,
        retry_penalizer: float = 1e-3,
        compress: bool = True,
        tol: float = 1e-7,
    ) -> None:
        super().__init__(penalizer, retry_penalizer, compress)
        self.tol = tol

    def _select(self, summary: pd.DataFrame) -> pd.DataFrame:
        data = check_summary(summary, self.columns, self.label)
        data = data[(data[FREQUENCY] > 0) & (data[MONETARY] > 0)]
        if len(data) < 2:
            raise PlaybookError(
                "The spend model needs at least two repeat buyers who paid something; "
                f"there are {len(data)}.\nWhat to do: use a longer calibration period."
            )
        return data

    def _attempt(self, rows: pd.DataFrame, weights: np.ndarray, penalizer: float) -> _Attempt:
        from lifetimes import GammaGammaFitter

        fitter = GammaGammaFitter(penalizer_coef=penalizer)
        try:
            fitter.fit(rows[FREQUENCY], rows[MONETARY], weights=weights, tol=self.tol)
        except Exception as exc:  # lifetimes' ConvergenceError and numeric failures
            return _Attempt(np.full(3, np.nan), False, str(exc).strip() or type(exc).__name__)
        return _Attempt(np.log(fitter.params_.to_numpy(dtype=float)), True, "", state=fitter)

    def _total_loglik(
        self, log_params: np.ndarray, rows: pd.DataFrame, weights: np.ndarray
    ) -> float:
        from lifetimes import GammaGammaFitter

        x = rows[FREQUENCY].to_numpy(dtype=float)
        m = rows[MONETARY].to_numpy(dtype=float)
        mean_nll = GammaGammaFitter._negative_log_likelihood(log_params, x, m, weights, 0.0)
        return float(-mean_nll * weights.sum())

    def _after_fit(self, rows: pd.DataFrame, weights: np.ndarray, state: Any) -> None:
        from lifetimes import GammaGammaFitter

        fitter = GammaGammaFitter(penalizer_coef=self.penalizer_used_)
        fitter.params_ = self.params_.copy()
        self.fitter_ = fitter
        p, q, v = self.params_.to_numpy()
        self.population_mean_spend_ = float(v * p / (q - 1)) if q > 1 else float("nan")

    def expected_spend(self, summary: pd.DataFrame) -> np.ndarray:
        """Expected average spend per future purchase of each customer.

        A weighted average of the customer's own repeat spend and the population mean;
        customers without repeat purchases get the population mean.
        """
        self._check_fitted()
        x = summary[FREQUENCY].to_numpy(dtype=float)
        m = summary[MONETARY].to_numpy(dtype=float)
        p, q, v = self.params_.to_numpy()
        if q <= 1:
            raise PlaybookError(
                f"The spend model's q is {q:.3g} (at most 1), so average spend has no finite "
                "mean.\nWhat to do: refit with a penalizer or use a longer calibration period."
            )
        weight = p * x / (p * x + q - 1)
        return (1 - weight) * (v * p / (q - 1)) + weight * m


MODELS: dict[str, type[TransactionModel]] = {
    BGNBD.name: BGNBD,
    ParetoNBD.name: ParetoNBD,
    ModifiedBGNBD.name: ModifiedBGNBD,
}
"""Continuous-time purchase models by name (the ``clv.model`` setting)."""


def make_model(name: str, **kwargs: Any) -> TransactionModel:
    """A purchase model by registry name (``bgnbd``, ``pareto_nbd``, ``mbgnbd``)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise PlaybookError(
            f"Unknown CLV model {name!r}.\nWhat to do: use one of: {', '.join(MODELS)}."
        ) from None
    return cls(**kwargs)


def fit_bgnbd(
    summary: pd.DataFrame,
    *,
    compress: bool = True,
    engine: str | None = None,
    penalizer: float = 0.0,
    tol: float = 1e-7,
) -> BGNBD:
    """Fit BG/NBD: the kit's fast path, or the ``lifetimes`` reference for benchmarks.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``frequency, recency, T`` per customer.
    compress : bool
        True (default): distinct histories with weights. False: one row per customer.
    engine : {"kit", "lifetimes"}, optional
        Default: ``kit`` when compressing, ``lifetimes`` when not, so
        ``fit_bgnbd(s, compress=False)`` is exactly ``lifetimes.BetaGeoFitter`` on one
        row per customer (the benchmark's baseline) and ``fit_bgnbd(s)`` the kit's path.
    penalizer : float
        L2 penalty (same definition as ``lifetimes``).
    tol : float
        Optimiser gradient tolerance.

    Returns
    -------
    BGNBD
        Fitted.
    """
    if engine is None:
        engine = "kit" if compress else "lifetimes"
    return BGNBD(penalizer=penalizer, compress=compress, engine=engine, tol=tol).fit(summary)
