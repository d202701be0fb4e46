"""Customer lifetime value: summaries, models, checks, predictions and the command.

Known answers come from hand-computed frames and from published results on the CDNOW
1/10 sample (Fader, Hardie & Lee 2005), which ships with ``lifetimes`` and goes through
the kit's own intake and summary here, as an organisation's export would.
"""

from __future__ import annotations

import json
from pathlib import Path

import lifetimes
import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import expected_cumulative_transactions, summary_data_from_transaction_data

from playbook import clv, clv_models
from playbook.cli import main
from playbook.clv_models import check_summary, compress_summary
from playbook.config import load_org
from playbook.errors import ConfigError, PlaybookError
from playbook.intake import run_intake
from playbook.schema import conform

DATASETS = Path(lifetimes.__file__).parent / "datasets"

CDNOW_YAML = """\
name: CDNOW sample
currency: USD
sources:
  order_lines:
    file: cdnow.csv
    date_format: "%Y%m%d"
    columns: {customer_id: customer, purchase_time: date, quantity: cds, paid_amount: dollars}
"""


def sig3(x: float) -> str:
    """A number to three significant figures, as a published table prints it."""
    return f"{x:.3g}"


# ---------------------------------------------------------------------------
# CDNOW through the kit's intake
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow_org(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CDNOW 1/10 sample written as a CSV export with an org.yaml, then taken in."""
    raw = pd.read_csv(
        DATASETS / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer", "sample_id", "date", "cds", "dollars"],
        dtype=str,
    )
    org = tmp_path_factory.mktemp("orgs") / "cdnow"
    org.mkdir()
    raw.to_csv(org / "cdnow.csv", index=False)
    (org / "org.yaml").write_text(CDNOW_YAML, encoding="utf-8")
    result = run_intake(org, today="2000-01-01")
    assert int(result.summary()["rows_kept"].sum()) == len(raw) == 6919
    return org


@pytest.fixture(scope="module")
def cdnow_lines(cdnow_org: Path) -> pd.DataFrame:
    from playbook.tables import load_tables

    return load_tables(cdnow_org)["order_lines"]


@pytest.fixture(scope="module")
def cdnow(cdnow_lines: pd.DataFrame) -> pd.DataFrame:
    """39-week calibration to 1997-09-30, holdout to 1998-06-30, in weeks."""
    return clv.calibration_holdout(cdnow_lines, "1997-09-30", "1998-06-30", time_unit="week")


@pytest.fixture(scope="module")
def cdnow_bgnbd(cdnow: pd.DataFrame) -> clv.BGNBD:
    return clv.BGNBD().fit(cdnow)


@pytest.fixture(scope="module")
def cdnow_gg(cdnow: pd.DataFrame) -> clv.GammaGamma:
    return clv.GammaGamma().fit(cdnow)


def test_cdnow_summary_is_the_published_one(cdnow: pd.DataFrame) -> None:
    # Hardie's published calibration summary (x, t_x, T, zbar, rounded to 2 decimals).
    ref = pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")
    assert len(cdnow) == len(ref) == 2357
    cols = ["frequency", "recency", "T", "monetary_value"]
    mine = cdnow[cols].sort_values(cols).to_numpy()
    theirs = ref[["x", "t_x", "T", "zbar"]].sort_values(["x", "t_x", "T", "zbar"]).to_numpy()
    np.testing.assert_allclose(mine, theirs, atol=0.005 + 1e-9, rtol=0)
    assert (cdnow["duration_holdout"] == 39.0).all()  # 1997-10-01 … 1998-06-30 = 273 days


def test_cdnow_bgnbd_published_parameters(cdnow_bgnbd: clv.BGNBD) -> None:
    p = cdnow_bgnbd.params_
    assert [sig3(p[k]) for k in ("r", "alpha", "a", "b")] == ["0.243", "4.41", "0.793", "2.43"]
    # and to the published 3 decimals: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426
    assert [round(p[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert round(cdnow_bgnbd.log_likelihood_, 1) == -9582.4  # as published
    assert cdnow_bgnbd.converged_ and cdnow_bgnbd.penalizer_used_ == 0.0
    assert cdnow_bgnbd.n_customers_ == 2357 and cdnow_bgnbd.n_rows_fitted_ < 2357


def test_cdnow_gamma_gamma_published_parameters(cdnow_gg: clv.GammaGamma) -> None:
    p = cdnow_gg.params_
    assert [sig3(p[k]) for k in ("p", "q", "v")] == ["6.25", "3.74", "15.4"]
    assert round(p["v"], 2) == 15.44
    assert cdnow_gg.n_customers_ == 946  # repeat buyers


def test_cdnow_pareto_nbd_published_parameters(cdnow: pd.DataFrame) -> None:
    m = clv.ParetoNBD().fit(cdnow)
    p = m.params_
    # published r = 0.553, alpha = 10.58, s = 0.606, beta = 11.67: three figures reached
    assert [sig3(p[k]) for k in ("r", "alpha", "s", "beta")] == ["0.553", "10.6", "0.606", "11.7"]
    assert round(p["alpha"], 2) == 10.58 and round(p["beta"], 2) == 11.67
    # P(still engaged a year on) = (beta / (beta + 52.18)) ** s = 0.357
    assert "about 36% of patrons" in clv.interpret_params(m)[1]


def test_bgnbd_equals_lifetimes_with_its_standard_errors(
    cdnow: pd.DataFrame, cdnow_bgnbd: clv.BGNBD
) -> None:
    ref = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    np.testing.assert_allclose(cdnow_bgnbd.params_, ref.params_, rtol=1e-6)
    np.testing.assert_allclose(cdnow_bgnbd.standard_errors_, ref.standard_errors_, rtol=1e-3)
    ci = cdnow_bgnbd.confidence_intervals_
    assert (ci["lower"] < cdnow_bgnbd.params_).all() and (cdnow_bgnbd.params_ < ci["upper"]).all()
    table = cdnow_bgnbd.summary_table()
    assert list(table.columns) == ["estimate", "se", "lower_95", "upper_95"]


def test_bgbb_published_parameters_on_the_donations_data() -> None:
    # Fader, Hardie & Shang (2010): alpha 1.204, beta 0.750, gamma 0.657, delta 2.783.
    don = pd.read_csv(DATASETS / "donations.csv")
    people = don.loc[don.index.repeat(don["weights"])]
    summary = pd.DataFrame(
        {
            "frequency": people["frequency"].to_numpy(),
            "recency": people["recency"].to_numpy(),
            "n_periods": people["periods"].to_numpy(),
        }
    )
    m = clv.BGBB().fit(summary)
    assert m.n_customers_ == 11104 and m.n_rows_fitted_ == len(don)
    assert [round(m.params_[k], 3) for k in ("alpha", "beta", "gamma", "delta")] == [
        1.204,
        0.750,
        0.657,
        2.783,
    ]
    p_alive = m.p_alive(summary.head(3))
    assert ((0 <= p_alive) & (p_alive <= 1)).all()


# ---------------------------------------------------------------------------
# Summaries: lifetimes' definitions, hand-computed frames
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(("unit", "days"), [("day", 1), ("week", 7), ("month", 365.25 / 12)])
def test_summary_equals_lifetimes(cdnow_lines: pd.DataFrame, unit: str, days: float) -> None:
    mine = clv.summarise_transactions(cdnow_lines, observation_end="1997-09-30", time_unit=unit)
    cal = cdnow_lines.loc[cdnow_lines["purchase_time"] <= "1997-09-30"]
    ref = summary_data_from_transaction_data(
        cal,
        "customer_id",
        "purchase_time",
        monetary_value_col="paid_amount",
        observation_period_end="1997-09-30",
        freq="D",
        freq_multiplier=days,
    )
    mine = mine.set_index("customer_id").sort_index()
    ref = ref.sort_index()
    assert list(mine.index) == list(ref.index)
    np.testing.assert_allclose(mine.to_numpy(), ref.to_numpy(), rtol=1e-12, atol=1e-12)
    assert mine.attrs["time_unit"] == unit


def test_summary_equals_lifetimes_with_times_of_day() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    start = np.datetime64("2023-01-01T00:00:00")
    lines = conform(
        pd.DataFrame(
            {
                "line_id": [f"L{i}" for i in range(n)],
                "order_id": [f"O{i}" for i in range(n)],
                "customer_id": [f"C{c}" for c in rng.integers(0, 300, n)],
                "purchase_time": start + rng.integers(0, 400 * 24 * 60, n).astype("timedelta64[m]"),
                "paid_amount": rng.integers(5, 60, n).astype(float),
            }
        ),
        "order_lines",
    )
    mine = clv.summarise_transactions(lines, observation_end="2024-02-01", time_unit="week")
    ref = summary_data_from_transaction_data(
        lines,
        "customer_id",
        "purchase_time",
        monetary_value_col="paid_amount",
        observation_period_end="2024-02-01",
        freq="D",
        freq_multiplier=7,
    )
    mine = mine.set_index("customer_id").sort_index()
    np.testing.assert_allclose(mine.to_numpy(), ref.sort_index().to_numpy(), rtol=1e-12)


def _lines(rows: list[tuple]) -> pd.DataFrame:
    cols = [
        "line_id",
        "customer_id",
        "purchase_time",
        "item_type",
        "paid_amount",
        "is_comp",
        "status",
        "parent_line_id",
    ]
    df = pd.DataFrame(rows, columns=cols)
    df["order_id"] = df["line_id"]
    return conform(df, "order_lines")


# A hand-built history. Customer A: two tickets on 1 Jan (one occasion, 30), one on
# 15 Jan (25), one on 29 Jan that was returned, a comp on 12 Feb, and on 26 Feb a paid
# ticket (15) with a comp beside it; plus a donation. B: a ticket exchanged for another
# on 5 Feb (55). C: a ticket returned the same day and a void line (no purchase left).
HAND = _lines(
    [
        ("L1", "A", "2024-01-01 10:00", "ticket", 20.0, False, "active", None),
        ("L2", "A", "2024-01-01 18:30", "ticket", 10.0, False, "active", None),
        ("L3", "A", "2024-01-15 12:00", "ticket", 25.0, False, "active", None),
        ("L4", "A", "2024-01-29 12:00", "ticket", 40.0, False, "active", None),
        ("L5", "A", "2024-01-30 09:00", "ticket", -40.0, False, "returned", "L4"),
        ("L6", "A", "2024-02-12 12:00", "ticket", 0.0, True, "active", None),
        ("L7", "A", "2024-02-26 19:00", "ticket", 15.0, False, "active", None),
        ("L8", "A", "2024-02-26 19:00", "ticket", 0.0, True, "active", None),
        ("L9", "A", "2024-03-01 12:00", "donation", 100.0, False, "active", None),
        ("L10", "B", "2024-02-01 12:00", "ticket", 50.0, False, "active", None),
        ("L11", "B", "2024-02-05 12:00", "ticket", -50.0, False, "exchanged", "L10"),
        ("L12", "B", "2024-02-05 12:00", "ticket", 55.0, False, "active", None),
        ("L13", "C", "2024-03-01 10:00", "ticket", 30.0, False, "active", None),
        ("L14", "C", "2024-03-01 11:00", "ticket", -30.0, False, "returned", "L13"),
        ("L15", "C", "2024-03-02 11:00", "ticket", 30.0, False, "void", None),
    ]
)


def test_hand_built_summary() -> None:
    s = clv.summarise_transactions(HAND, observation_end="2024-03-11", time_unit="week")
    s = s.set_index("customer_id")
    assert list(s.index) == ["A", "B"]  # C bought nothing that stood
    # A: occasions 1 Jan (30), 15 Jan (25), 26 Feb (15); first 1 Jan, end 11 Mar
    assert s.loc["A"].tolist() == [2.0, 8.0, 10.0, 20.0]  # mean of 25 and 15
    # B: only the exchanged-into ticket on 5 Feb; 35 days to the end
    assert s.loc["B"].tolist() == [0.0, 0.0, 5.0, 0.0]


def test_hand_built_summary_counting_comps() -> None:
    s = clv.summarise_transactions(
        HAND, observation_end="2024-03-11", time_unit="day", count_comps=True
    ).set_index("customer_id")
    # the comp-only 12 Feb is now an occasion, but its zero never enters the spend
    assert s.loc["A"].tolist() == [3.0, 56.0, 70.0, 20.0]
    occ = clv.purchase_occasions(HAND, count_comps=True)
    assert occ.loc[occ["customer_id"] == "A", "value"].isna().sum() == 1
    assert occ["value"].sum() == 30 + 25 + 15 + 55


def test_hand_built_calibration_holdout() -> None:
    s = clv.calibration_holdout(HAND, "2024-01-31", "2024-03-11", time_unit="week")
    assert s["customer_id"].tolist() == ["A"]  # B's first purchase is in the holdout
    row = s.iloc[0]
    assert row["frequency"] == 1 and row["recency"] == 2 and row["monetary_value"] == 25
    assert row["T"] == pytest.approx(30 / 7)
    assert row["frequency_holdout"] == 1 and row["monetary_value_holdout"] == 15
    assert row["duration_holdout"] == pytest.approx(40 / 7)
    assert s.attrs["calibration_end"] == "2024-01-31"


def test_summary_user_errors() -> None:
    with pytest.raises(PlaybookError, match="leaves no later purchases"):
        clv.calibration_holdout(HAND, "2024-03-01")
    with pytest.raises(PlaybookError, match="before the first purchase"):
        clv.calibration_holdout(HAND, "2023-12-31")
    with pytest.raises(PlaybookError, match="leaves no later purchases"):
        clv.calibration_holdout(HAND, "2024-02-01", observation_end="2024-01-20")
    with pytest.raises(PlaybookError, match="Time unit 'fortnight'"):
        clv.summarise_transactions(HAND, time_unit="fortnight")
    with pytest.raises(PlaybookError, match="not a date"):
        clv.calibration_holdout(HAND, "the end of January")
    with pytest.raises(PlaybookError, match="no ticket purchases"):
        clv.summarise_transactions(HAND.loc[HAND["customer_id"] == "C"])


def test_opportunity_summaries() -> None:
    lines = _lines(
        [
            ("L1", "A", "2021-10-01", "ticket", 20.0, False, "active", None),
            ("L2", "A", "2023-10-01", "ticket", 20.0, False, "active", None),
            ("L3", "A", "2024-09-02", "ticket", 20.0, False, "active", None),  # 2024-25: open
            ("L4", "B", "2022-10-01", "ticket", 20.0, False, "active", None),
            ("L5", "B", "2022-11-01", "ticket", 20.0, False, "active", None),
        ]
    )
    s = clv.summarise_opportunities(lines, season_start_month=9).set_index("customer_id")
    # seasons 2021-22 … 2023-24 are complete (2024-25 is still running)
    assert s.loc["A"].tolist() == [1, 2, 2]
    assert s.loc["B"].tolist() == [0, 0, 1]

    perf = conform(
        pd.DataFrame(
            {
                "performance_id": ["P1", "P2", "P3", "P4", "P5"],
                "production_id": ["X"] * 5,
                "start_time": pd.to_datetime(
                    ["2024-01-05", "2024-01-12", "2024-01-19", "2024-01-26", "2024-01-22"]
                ),
                "cancelled": [False, False, False, False, True],
            }
        ),
        "performances",
    )
    tix = _lines(
        [
            ("T1", "A", "2024-01-01", "ticket", 20.0, False, "active", None),
            ("T2", "A", "2024-01-02", "ticket", 20.0, False, "active", None),
            ("T3", "B", "2024-01-03", "ticket", 20.0, False, "active", None),
        ]
    )
    tix["performance_id"] = pd.array(["P1", "P3", "P2"], dtype="string")
    s = clv.summarise_opportunities(
        tix, opportunity="performance", performances=perf, observation_end="2024-01-31"
    ).set_index("customer_id")
    assert s.loc["A"].tolist() == [1, 2, 3]  # P1 first; P2, P3, P4 after; bought at P3
    assert s.loc["B"].tolist() == [0, 0, 2]  # P2 first; P3, P4 after (P5 cancelled)


# ---------------------------------------------------------------------------
# Compression, retries
# ---------------------------------------------------------------------------
def simulate_bgnbd(n: int, seed: int) -> pd.DataFrame:
    """Customers drawn from a BG/NBD (CDNOW-like parameters), times on whole days."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.243, 1 / 4.414, n)
    drop = rng.beta(0.793, 2.426, n)
    age = (546 - rng.integers(0, 365, n)) / 7.0
    t, x, last = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.arange(n)
    while active.size:  # one step per purchase number, over all customers at once
        t[active] += rng.exponential(1 / np.maximum(lam[active], 1e-12))
        active = active[t[active] <= age[active]]
        x[active] += 1
        last[active] = t[active]
        active = active[rng.random(active.size) >= drop[active]]
    spend = np.where(x > 0, np.round(rng.gamma(6.0, 1 / rng.gamma(3.7, 1 / 15.0, n))) + 1, 0.0)
    return pd.DataFrame(
        {"frequency": x, "recency": np.floor(last * 7) / 7, "T": age, "monetary_value": spend}
    )


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_bgnbd(8000, seed=3)


def test_compress_summary(simulated: pd.DataFrame) -> None:
    rows = compress_summary(simulated)
    assert rows["weight"].sum() == len(simulated)
    assert not rows.duplicated(["frequency", "recency", "T"]).any()
    assert len(rows) < len(simulated) / 2


@pytest.mark.parametrize("model", [clv.BGNBD, clv.ModifiedBGNBD, clv.ParetoNBD, clv.GammaGamma])
def test_compressed_fit_equals_uncompressed(simulated: pd.DataFrame, model: type) -> None:
    small = simulated.iloc[:3000] if model is clv.ParetoNBD else simulated
    packed = model().fit(small)
    full = model(compress=False).fit(small)
    assert packed.n_rows_fitted_ < full.n_rows_fitted_
    np.testing.assert_allclose(packed.params_, full.params_, rtol=1e-6)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal value for value, NaN where the other is NaN."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(((a == b) | (np.isnan(a) & np.isnan(b))).all())


def test_pareto_nbd_loglik_is_lifetimes_bit_for_bit(
    cdnow: pd.DataFrame, simulated: pd.DataFrame
) -> None:
    edge = pd.DataFrame(  # no repeat, recency = T (a tie in the log-sum-exp), T = 0, long ages
        {
            "frequency": [0, 0, 1, 3, 2, 5, 40, 0.0],
            "recency": [0, 0, 5, 5, 0.5, 1e4, 30, 0.0],
            "T": [0, 3, 5, 5, 100, 1e4, 30, 1e6],
        }
    )
    rng = np.random.default_rng(7)
    draws = np.exp(rng.normal(0.0, 3.0, (60, 4)))
    params = np.vstack(
        [[0.55, 10.6, 0.61, 11.7], [1.0, 2.0, 3.0, 2.0], [2.0, 2.0, 1.0, 2.0], draws]
    )
    with np.errstate(all="ignore"):
        for frame in (cdnow, simulated, edge):
            x, t, age = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
            d = clv_models._ParetoNBDData(x, t, age)
            for p in params:  # alpha < beta and alpha >= beta both covered
                ref = lifetimes.ParetoNBDFitter._conditional_log_likelihood(p, x, t, age)
                assert _same_bits(clv_models._pareto_nbd_loglik(p, d), ref)


def test_signed_logsumexp_is_scipy_bit_for_bit() -> None:
    from scipy.special import logsumexp

    vals = [-np.inf, -1e308, -800, -1, -1e-300, 0, 1e-300, 1, 709.7, 709.8, 800, np.inf, np.nan]
    u, v = (a.ravel() for a in np.meshgrid(vals, vals))
    ref = logsumexp([u, v], axis=0, b=[np.ones(u.size), -np.ones(u.size)])
    with np.errstate(all="ignore"):
        got = clv_models._logsumexp_signed(u, v, np.empty(u.size))
    assert _same_bits(got, ref)


def test_pareto_nbd_fit_equals_the_lifetimes_likelihood_path(
    simulated: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = simulated.iloc[:3000]
    fast = clv.ParetoNBD().fit(small)

    def lifetimes_loglik(p: np.ndarray, d: clv_models._ParetoNBDData) -> np.ndarray:
        return lifetimes.ParetoNBDFitter._conditional_log_likelihood(p, d.x.astype(int), d.t, d.T)

    monkeypatch.setattr(clv_models, "_pareto_nbd_loglik", lifetimes_loglik)
    slow = clv.ParetoNBD().fit(small)
    # the same optimiser path on the same numbers: identical estimates and errors
    assert fast.params_.tolist() == slow.params_.tolist()
    assert fast.standard_errors_.tolist() == slow.standard_errors_.tolist()
    assert fast.log_likelihood_ == slow.log_likelihood_ and fast.message_ == slow.message_


def test_pareto_nbd_curve_is_lifetimes_bit_for_bit(cdnow: pd.DataFrame) -> None:
    m = clv.ParetoNBD().fit(cdnow)
    edge = pd.DataFrame({"frequency": [0, 0, 1, 3, 2.0], "recency": [0, 0, 5, 5, 0.5]})
    edge["T"] = [0, 3, 5, 5, 100.0]
    for frame in (cdnow, edge):
        ts = [0.0, 1.0, 4.345, 52.14, 1e4]
        fast = m.expected_purchases_curve(ts, frame)
        ref = clv_models.TransactionModel.expected_purchases_curve(m, ts, frame)  # lifetimes
        assert _same_bits(fast, ref)
        assert _same_bits(fast[:, 2], m.expected_purchases(4.345, frame))


def test_fast_bgnbd_equals_lifetimes_on_uncompressed_rows(simulated: pd.DataFrame) -> None:
    fast = clv.fit_bgnbd(simulated)
    reference = clv.fit_bgnbd(simulated, compress=False)  # lifetimes.BetaGeoFitter, one row each
    assert fast.engine == "kit" and reference.engine == "lifetimes"
    np.testing.assert_allclose(fast.params_, reference.params_, rtol=1e-6)
    # and the data-generating parameters are recovered
    np.testing.assert_allclose(fast.params_, [0.243, 4.414, 0.793, 2.426], rtol=0.25)


def _bgnbd_data(summary: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, float]:
    rows = compress_summary(summary)
    return rows, rows["weight"].to_numpy(dtype=float), 1.0 / float(rows["T"].max())


@pytest.mark.parametrize("penalizer", [0.0, 0.05])
def test_bgnbd_exact_hessian_equals_numeric(simulated: pd.DataFrame, penalizer: float) -> None:
    rows, w, scale = _bgnbd_data(simulated)
    x, t, T = (rows[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    exact = clv_models._BGNBDExact(x, t * scale, T * scale, w)
    reference = clv_models._BGNBDData(x, t * scale, T * scale, w)
    for p in ([0.24, 0.5, 2.0, 6.0], [1.3, 0.05, 0.4, 0.9], [0.05, 3.0, 10.0, 0.3]):
        p = np.array(p)
        ll, g, h = clv_models._bgnbd_exact(p, exact)
        with np.errstate(invalid="ignore"):  # its log(b - 1) for x = 0 is never used
            ll_ref, g_ref = clv_models._bgnbd_loglik_grad(p, reference)
        assert ll == pytest.approx(ll_ref, rel=1e-12)
        np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-9 * np.abs(g_ref).max())
        # central differences of the gradient, in natural parameters
        num = np.empty((4, 4))
        for i in range(4):
            e = np.zeros(4)
            e[i] = 1e-6 * p[i]
            num[:, i] = (
                clv_models._bgnbd_exact(p + e, exact)[1] - clv_models._bgnbd_exact(p - e, exact)[1]
            ) / (2 * e[i])
        np.testing.assert_allclose(h, num, atol=1e-7 * np.abs(num).max())
        # in log-parameters with the penalty, against the finite-difference Hessian
        fun = clv_models._bgnbd_exact_objective(exact, penalizer)
        f, grad, hess = fun(np.log(p))
        with np.errstate(invalid="ignore"):
            f_ref, grad_ref = clv_models._bgnbd_objective(reference, penalizer)(np.log(p))
        assert f == pytest.approx(f_ref, rel=1e-12)
        np.testing.assert_allclose(grad, grad_ref, atol=1e-12)
        fd = clv_models._fd_hessian(lambda z, fun=fun: fun(z)[1], np.log(p))
        np.testing.assert_allclose(hess, fd, atol=1e-5 * np.abs(fd).max())
        np.testing.assert_array_equal(hess, hess.T)


def test_compression_on_the_day_grid_equals_compress_summary(simulated: pd.DataFrame) -> None:
    cols = ("frequency", "recency", "T")
    for days in (1.0, 7.0, 365.25 / 12):  # the kit's time units
        data = simulated[list(cols)].copy()
        whole = np.round(data[["recency", "T"]] * 7.0)  # whole days
        data[["recency", "T"]] = whole / days
        rows, weights = clv_models._compress_on_grid(data, cols)
        ref = compress_summary(data, cols)
        pd.testing.assert_frame_equal(rows, ref[list(cols)])
        np.testing.assert_array_equal(weights, ref["weight"].to_numpy(dtype=float))
    off_grid = simulated[list(cols)].copy()
    off_grid["T"] += 1e-3
    assert clv_models._compress_on_grid(off_grid, cols) is None
    assert clv_models._compress_on_grid(off_grid.iloc[:0], cols) is None
    # a fit off the grid goes through compress_summary and finds the same optimum
    fast = clv.BGNBD().fit(off_grid)
    np.testing.assert_allclose(
        fast.params_, clv.BGNBD(compress=False).fit(off_grid).params_, rtol=1e-7
    )


def test_bgnbd_exact_newton_equals_the_gradient_path(
    simulated: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, w, scale = _bgnbd_data(simulated)
    rows = rows[["frequency", "recency", "T"]]
    model = clv.BGNBD()
    for pen in (0.01, 0.0):
        exact = model._attempt_exact(rows, w, pen, scale)
        with np.errstate(all="ignore"):  # as in fit()
            slow = model._attempt_gradient(rows, w, pen, scale)
        assert exact is not None and exact.ok and slow.ok
        np.testing.assert_allclose(np.exp(exact.log_params), np.exp(slow.log_params), rtol=1e-7)
        np.testing.assert_allclose(exact.state[0], slow.state[0], rtol=1e-4)  # Hessians
        assert exact.state[1] == pytest.approx(slow.state[1], rel=1e-12)  # log-likelihoods
    # the thinned start (used above 5 x _THIN_TARGET customers) lands on the same optimum
    monkeypatch.setattr(clv_models, "_THIN_TARGET", 1000)
    thinned = model._attempt_exact(rows, w, 0.0, scale)
    assert thinned is not None
    np.testing.assert_allclose(thinned.log_params, exact.log_params, rtol=1e-8, atol=1e-9)
    thinned_fit = clv.fit_bgnbd(simulated)
    reference = clv.fit_bgnbd(simulated, compress=False)  # lifetimes, one row each
    np.testing.assert_allclose(thinned_fit.params_, reference.params_, rtol=1e-6)
    # deterministic: the same data give the same bits
    again = clv.fit_bgnbd(simulated)
    assert thinned_fit.params_.to_numpy().tobytes() == again.params_.to_numpy().tobytes()
    assert (
        thinned_fit.standard_errors_.to_numpy().tobytes()
        == again.standard_errors_.to_numpy().tobytes()
    )


def test_bgnbd_without_a_clean_peak_falls_back_on_the_gradient_path() -> None:
    same = pd.DataFrame({"frequency": [2.0] * 20, "recency": [10.0] * 20, "T": [20.0] * 20})
    rows, w, scale = _bgnbd_data(same)
    model = clv.BGNBD()
    assert model._attempt_exact(rows[["frequency", "recency", "T"]], w, 0.0, scale) is None
    att = model._attempt(rows[["frequency", "recency", "T"]], w, 0.0)
    slow = model._attempt_gradient(rows[["frequency", "recency", "T"]], w, 0.0, scale)
    np.testing.assert_array_equal(att.log_params, slow.log_params)
    assert att.why == slow.why


def test_non_converging_fit_is_retried_with_a_penalizer() -> None:
    # Twenty identical customers: nothing tells people apart, so the unpenalised
    # likelihood has no interior maximum (lifetimes raises ConvergenceError).
    same = pd.DataFrame({"frequency": [2.0] * 20, "recency": [10.0] * 20, "T": [20.0] * 20})
    with pytest.raises(lifetimes.utils.ConvergenceError):
        lifetimes.BetaGeoFitter().fit(same["frequency"], same["recency"], same["T"])
    m = clv.BGNBD().fit(same)
    assert not m.converged_
    assert m.penalizer_used_ == pytest.approx(1e-3)
    assert "did not converge" in m.message_ and "penalizer (0.001)" in m.message_
    assert np.isfinite(m.params_).all()
    assert any("did not converge" in line for line in clv.interpret_params(m))


def test_hopeless_fit_raises_instead_of_returning_nonsense() -> None:
    # Repeat buyers who all buy to the very end: no sign of anyone dropping out.
    flat = pd.DataFrame(
        {
            "frequency": [0, 0, 1, 2, 3, 4, 5, 0, 2, 3.0],
            "recency": [0, 0, 10, 20, 30, 40, 50, 0, 20, 30.0],
            "T": [10, 20, 10, 20, 30, 40, 50, 30, 20, 30.0],
        }
    )
    with pytest.raises(PlaybookError, match="could not be fitted.*penalizer 0.01"):
        clv.BGNBD().fit(flat)


def test_model_input_errors() -> None:
    with pytest.raises(PlaybookError, match="needs the column"):
        clv.BGNBD().fit(pd.DataFrame({"frequency": [1.0]}))
    with pytest.raises(PlaybookError, match="No customer in the learning period came back"):
        clv.BGNBD().fit(pd.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [5.0]}))
    with pytest.raises(PlaybookError, match="comes after the end"):
        clv.BGNBD().fit(pd.DataFrame({"frequency": [1.0], "recency": [6.0], "T": [5.0]}))
    with pytest.raises(PlaybookError, match="has not been fitted"):
        clv.BGNBD().p_alive(pd.DataFrame({"frequency": [1.0], "recency": [1.0], "T": [5.0]}))


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({"frequency": [1.5], "recency": [1.0], "T": [5.0]}, "holds fractions"),
        ({"frequency": [0.0], "recency": [1.0], "T": [5.0]}, "recency but no repeat"),
        ({"frequency": [1.0], "recency": [-1.0], "T": [5.0]}, "negative values in recency"),
        ({"frequency": [1.0], "recency": [1.0], "T": [np.inf]}, "infinite values in T"),
        ({"frequency": [1.0], "recency": [1.0], "T": [np.nan]}, "missing or infinite"),
        ({"frequency": [1.0], "recency": [5.0 + 1e-6], "T": [5.0]}, "comes after the end"),
    ],
)
def test_check_summary_errors(frame: dict, message: str) -> None:
    with pytest.raises(PlaybookError, match=message):
        check_summary(pd.DataFrame(frame), ["frequency", "recency", "T"], "BG/NBD")
    ok = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 5.0 + 1e-10], "T": [3, 5.0]})
    out = check_summary(ok, ["T", "frequency", "recency"], "BG/NBD")
    assert list(out.columns) == ["T", "frequency", "recency"]
    assert (out.dtypes == "float64").all()


# ---------------------------------------------------------------------------
# Checks and predictions
# ---------------------------------------------------------------------------
def test_gamma_gamma_check(cdnow: pd.DataFrame) -> None:
    good = clv.check_gamma_gamma(cdnow)
    rep = cdnow[(cdnow["frequency"] > 0) & (cdnow["monetary_value"] > 0)]
    assert good.n_customers == len(rep) == 946
    assert good.correlation == pytest.approx(rep["frequency"].corr(rep["monetary_value"]))
    assert good.ok and "only weakly related (correlation 0.11 over 946" in good.verdict
    linked = pd.DataFrame(
        {"frequency": [1.0, 2, 3, 4, 5, 6], "monetary_value": [10.0, 12, 15, 18, 22, 30]}
    )
    bad = clv.check_gamma_gamma(linked)
    assert not bad.ok and bad.correlation > 0.9 and "spend more" in bad.verdict
    few = clv.check_gamma_gamma(linked.head(2))
    assert not few.ok and np.isnan(few.correlation)


def test_predict_clv_equals_lifetimes(
    cdnow: pd.DataFrame, cdnow_bgnbd: clv.BGNBD, cdnow_gg: clv.GammaGamma
) -> None:
    pred = clv.predict_clv(
        cdnow_bgnbd,
        cdnow,
        spend_model=cdnow_gg,
        horizon_months=12,
        annual_discount_rate=1.01**12 - 1,  # lifetimes' 1% a month
        units_per_month=4.345,  # lifetimes' weeks in a month
    )
    ref = cdnow_gg.fitter_.customer_lifetime_value(
        cdnow_bgnbd.fitter_,
        cdnow["frequency"],
        cdnow["recency"],
        cdnow["T"],
        cdnow["monetary_value"],
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    np.testing.assert_allclose(pred["clv"].to_numpy(), ref.to_numpy(), rtol=1e-9)
    bgf = lifetimes.BetaGeoFitter()
    bgf.params_ = cdnow_bgnbd.params_
    x, r, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    np.testing.assert_allclose(pred["p_alive"], bgf.conditional_probability_alive(x, r, t))
    np.testing.assert_allclose(
        pred["expected_purchases"],
        bgf.conditional_expected_number_of_purchases_up_to_time(12 * 4.345, x, r, t),
    )
    assert list(pred.columns[:5]) == ["customer_id", "frequency", "recency", "T", "monetary_value"]


def test_clv_discounting_and_margin(cdnow: pd.DataFrame, cdnow_bgnbd: clv.BGNBD) -> None:
    base = clv.predict_clv(cdnow_bgnbd, cdnow, horizon_months=36, annual_discount_rate=0.0)
    half = clv.predict_clv(
        cdnow_bgnbd, cdnow, horizon_months=36, annual_discount_rate=0.0, margin=0.5
    )
    disc = clv.predict_clv(cdnow_bgnbd, cdnow, horizon_months=36, annual_discount_rate=0.10)
    # without discounting, value = margin x spend x expected purchases over the horizon
    np.testing.assert_allclose(base["clv"], base["expected_spend"] * base["expected_purchases"])
    np.testing.assert_allclose(half["clv"], 0.5 * base["clv"])
    assert (disc["clv"] < base["clv"] + 1e-12).all() and disc["clv"].sum() < 0.95 * base[
        "clv"
    ].sum()
    # without a spend model: own average for repeat buyers, their mean for the others
    repeat_mean = cdnow.loc[cdnow["frequency"] > 0, "monetary_value"].mean()
    assert base.loc[cdnow["frequency"] == 0, "expected_spend"].eq(repeat_mean).all()


def test_at_risk_patrons() -> None:
    pred = pd.DataFrame(
        {
            "customer_id": list("ABCDEFGHIJ"),
            "clv": [500.0, 400, 300, 200, 100, 90, 80, 70, 60, 50],
            "p_alive": [0.9, 0.3, 0.4, 0.2, 0.1, 0.9, 0.9, 0.9, 0.9, 0.9],
            "expected_purchases": [5.0, 3, 2, 2, 1, 1, 1, 1, 1, 1],
        }
    )
    out = clv.at_risk_patrons(pred, p_alive_below=0.5, top_share=0.3)
    # the top 30% by value are A, B, C; of those, B and C are fading
    assert out["customer_id"].tolist() == ["B", "C"]
    assert list(out.columns) == ["customer_id", "clv", "p_alive", "expected_purchases"]


def test_holdout_comparison(cdnow: pd.DataFrame, cdnow_bgnbd: clv.BGNBD) -> None:
    mbg = clv.ModifiedBGNBD().fit(cdnow)
    table = clv.compare_holdout({"bgnbd": cdnow_bgnbd, "mbgnbd": mbg}, cdnow)
    assert table["best"].sum() == 1 and table["rmse"].is_monotonic_increasing
    actual = cdnow["frequency_holdout"]
    pred = cdnow_bgnbd.expected_purchases(cdnow["duration_holdout"].to_numpy(), cdnow)
    row = table.loc["bgnbd"]
    assert row["actual_total"] == actual.sum()
    assert row["predicted_total"] == pytest.approx(pred.sum())
    assert row["mae"] == pytest.approx(np.mean(np.abs(pred - actual)))
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean((pred - actual) ** 2)))
    # BG/NBD tracks the CDNOW holdout within 15% in total
    assert abs(row["total_error_pct"]) < 15


def test_holdout_by_frequency(cdnow: pd.DataFrame, cdnow_bgnbd: clv.BGNBD) -> None:
    chart = clv.holdout_by_frequency(cdnow_bgnbd, cdnow, max_frequency=7)
    assert chart["frequency"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert chart["customers"].sum() == 2357
    zero = cdnow["frequency"] == 0
    assert chart.loc[0, "customers"] == zero.sum()
    assert chart.loc[0, "actual"] == pytest.approx(cdnow.loc[zero, "frequency_holdout"].mean())
    # the predicted mean rises with calibration frequency, as the paper's chart shows
    assert chart["predicted"].is_monotonic_increasing


def test_cumulative_tracking_equals_lifetimes(
    cdnow_lines: pd.DataFrame, cdnow_bgnbd: clv.BGNBD
) -> None:
    mine = clv.cumulative_tracking(cdnow_bgnbd, cdnow_lines, "1997-09-30", "1998-06-30")
    ref = expected_cumulative_transactions(
        cdnow_bgnbd.fitter_,
        cdnow_lines,
        "purchase_time",
        "customer_id",
        546,
        freq="D",
        freq_multiplier=7,
    )
    assert len(mine) == len(ref) == 78
    np.testing.assert_allclose(mine["actual"], ref["actual"])
    np.testing.assert_allclose(mine["expected"], ref["predicted"], rtol=1e-9)
    assert mine["calibration"].sum() == 39  # weeks ending by 1997-09-30
    assert mine["date"].iloc[-1] == pd.Timestamp("1998-06-30")


def test_interpret_params(cdnow_bgnbd: clv.BGNBD, cdnow_gg: clv.GammaGamma) -> None:
    lines = clv.interpret_params(cdnow_bgnbd)
    # r/alpha = 0.0550 a week = 2.9 a year; a/(a+b) = 0.246
    assert "about 2.9 times a year" in lines[0] and "very uneven" in lines[0]
    assert "about 25% of patrons drift away" in lines[1]
    assert "35.17" in clv.interpret_params(cdnow_gg)[0]  # p v / (q - 1)


# ---------------------------------------------------------------------------
# Settings, the whole run and the command line
# ---------------------------------------------------------------------------
def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    s = clv.clv_settings()
    assert (s.time_unit, s.horizon_months, s.annual_discount_rate, s.margin) == (
        "week",
        36,
        0.10,
        1.0,
    )
    org = tmp_path / "city-theatre"
    org.mkdir()
    (org / "org.yaml").write_text("clv:\n  margin: 0.4\n  time_unit: month\n", encoding="utf-8")
    s = clv.clv_settings(load_org(org), time_unit="day")
    assert s.margin == 0.4 and s.time_unit == "day"
    with pytest.raises(PlaybookError, match=r"clv\.margin is 1\.5"):
        clv.clv_settings(margin=1.5)
    with pytest.raises(PlaybookError, match="clv.time_unit"):
        clv.clv_settings(time_unit="year")
    with pytest.raises(PlaybookError, match="'wizard'"):
        clv.clv_settings(model="wizard")
    (org / "org.yaml").write_text("clv:\n  horizon: 12\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="horizon"):
        load_org(org)


def test_cli_writes_parameters_and_predictions(cdnow_org: Path) -> None:
    code = main(["clv", str(cdnow_org), "--calibration-end", "1997-09-30"])
    assert code == 0
    out = cdnow_org / "clv"  # the default output folder
    record = json.loads((out / "clv_params.json").read_text(encoding="utf-8"))
    assert record["organisation"] == "cdnow" and record["time_unit"] == "week"
    bg = record["calibration_models"]["bgnbd"]
    assert sig3(bg["params"]["r"]) == "0.243" and sig3(bg["params"]["b"]) == "2.43"
    assert set(bg) >= {"standard_errors", "lower_95", "upper_95", "converged", "message"}
    assert {row["model"] for row in record["holdout"]} == {"bgnbd", "pareto_nbd", "mbgnbd"}
    assert record["spend_check"]["ok"] is True
    pred = pd.read_parquet(out / "clv_predictions.parquet")
    assert len(pred) == 2357 and {"clv", "p_alive", "expected_purchases"} <= set(pred.columns)
    assert len(pd.read_csv(out / "clv_predictions.csv")) == 2357
    assert (out / "clv_at_risk.csv").exists()


def test_cli_user_error(cdnow_org: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["clv", str(cdnow_org), "--calibration-end", "1999-01-01"])
    assert code == 2
    err = capsys.readouterr().err
    assert "leaves no later purchases" in err and "What to do" in err


def test_bgnbd_expected_purchases_curve_is_lifetimes_bit_for_bit(
    cdnow: pd.DataFrame, cdnow_bgnbd: clv.BGNBD, simulated: pd.DataFrame
) -> None:
    # The curve computes the hypergeometric term once per distinct (frequency, T) pair;
    # every value must still be exactly what lifetimes gives customer by customer.
    ts = [4.345, 13.0, 52.18, 156.5]
    for model, data in ((cdnow_bgnbd, cdnow), (clv.BGNBD().fit(simulated), simulated)):
        curve = model.expected_purchases_curve(ts, data)
        assert curve.shape == (len(data), len(ts))
        x, r, T = (data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        for j, t in enumerate(ts):
            ref = model.fitter_.conditional_expected_number_of_purchases_up_to_time(t, x, r, T)
            np.testing.assert_array_equal(curve[:, j], ref)
    assert cdnow_bgnbd.expected_purchases_curve(ts, cdnow.iloc[:0]).shape == (0, 4)


def test_forecast_ends_at_the_last_purchase_when_the_data_stop_early(
    cdnow_lines: pd.DataFrame,
) -> None:
    """Exports taken before the date asked for: the weeks after the last purchase are not
    the customers' silence, so the forecast is the one made at the last purchase day."""
    last = cdnow_lines["purchase_time"].max().normalize()  # 1998-06-30
    later = clv.forecast(cdnow_lines, last + pd.Timedelta(days=90))
    at_last = clv.forecast(cdnow_lines, last)
    pd.testing.assert_frame_equal(later.predictions, at_last.predictions, check_exact=True)
    assert later.summary.attrs["observation_end"] == str(last.date())
    # without the clip, the 90 silent days would lower every forecast
    silent = clv.summarise_transactions(cdnow_lines, observation_end=last + pd.Timedelta(days=90))
    assert (silent["T"] > at_last.summary["T"]).all()
