"""Memberships: the shifted-beta-geometric model against Fader & Hardie (2007)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

from playbook.clv import interpret_params
from playbook.errors import PlaybookError
from playbook.sbg import (
    ShiftedBetaGeometric,
    data_from_survivors,
    fit_sbg,
    summarise_memberships,
)
from playbook.schema import conform

# Survivors of a 1,000-customer cohort at the start of years 0 … 7 (Fader & Hardie 2007).
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


def sig3(x: float) -> str:
    return f"{x:.3g}"


@pytest.fixture(scope="module")
def regular() -> ShiftedBetaGeometric:
    return fit_sbg(REGULAR)


def test_published_estimates(regular: ShiftedBetaGeometric) -> None:
    # The published estimates use all eight counts: the churn in each of years 1-7 and
    # the 241 / 491 still there after year 7 (censored).
    assert [sig3(regular.params_[k]) for k in ("gamma", "delta")] == ["0.704", "1.18"]
    assert [round(regular.params_[k], 3) for k in ("gamma", "delta")] == [0.704, 1.182]
    high = fit_sbg(HIGH_END)
    assert [round(high.params_[k], 3) for k in ("gamma", "delta")] == [0.668, 3.806]
    # Fewer years (the first seven counts) do not reproduce them.
    assert round(fit_sbg(REGULAR[:7]).params_["gamma"], 3) != 0.704
    assert regular.converged_ and regular.n_customers_ == 1000


def test_data_from_survivors() -> None:
    d = data_from_survivors([1000, 631, 468])
    assert d["terms"].tolist() == [1, 2, 3]
    assert d["churned"].tolist() == [True, True, False]
    assert d["count"].tolist() == [369, 163, 468]
    with pytest.raises(PlaybookError, match="must not grow"):
        data_from_survivors([1000, 1100])
    with pytest.raises(PlaybookError, match="at least two"):
        data_from_survivors([1000])


def test_projections(regular: ShiftedBetaGeometric) -> None:
    g, d = regular.params_["gamma"], regular.params_["delta"]
    proj = regular.project(12)
    assert proj["members"].iloc[0] == 1000
    # the model reproduces the calibration counts to within 10 of the 1,000
    np.testing.assert_allclose(proj["members"].iloc[:8], REGULAR, atol=10, rtol=0)
    # retention rate at renewal t is (d + t - 1) / (g + d + t - 1) and rises with t
    assert proj["retention_rate"].iloc[1] == pytest.approx(d / (g + d))
    assert proj["retention_rate"].iloc[1:].is_monotonic_increasing
    # survival is the running product of the renewal rates
    np.testing.assert_allclose(
        proj["survival"].iloc[1:], np.cumprod(proj["retention_rate"].iloc[1:]), rtol=1e-12
    )
    # the chance of leaving at each renewal sums, with the survivors, to the cohort
    lost = regular.churn_probability(np.arange(1, 13)).sum()
    assert lost + regular.survival(12) == pytest.approx(1.0)


def test_expected_remaining_lifetime(regular: ShiftedBetaGeometric) -> None:
    terms = np.array([1, 2, 5])
    closed = regular.expected_remaining_lifetime(terms, discount_rate=0.1)
    summed = regular.expected_remaining_lifetime(terms, discount_rate=0.1, horizon=3000)
    np.testing.assert_allclose(closed, summed, rtol=1e-9)
    assert np.all(np.diff(closed) > 0)  # long-standing members are worth more
    # one renewal ahead: just the renewal probability, discounted
    one = regular.expected_remaining_lifetime(terms, discount_rate=0.1, horizon=1)
    np.testing.assert_allclose(one, regular.retention_rate(terms) / 1.1)
    # gamma < 1: without discounting the expected lifetime has no finite mean
    assert np.isinf(regular.expected_remaining_lifetime(1)).all()
    steady = ShiftedBetaGeometric()
    steady.params_ = pd.Series({"gamma": 2.0, "delta": 6.0})
    steady.converged_ = True  # set by hand to check the closed form: (d + n) / (g - 1)
    assert steady.expected_remaining_lifetime(3) == pytest.approx(8.0)
    assert steady.expected_remaining_lifetime(3, horizon=20000) == pytest.approx(8.0, rel=1e-3)


def test_interpretation(regular: ShiftedBetaGeometric) -> None:
    lines = interpret_params(regular)
    assert "About 37% of new members do not renew" in lines[0]
    assert "63% at the first renewal" in lines[1]
    r5 = (regular.params_["delta"] + 4) / (regular.params_["gamma"] + regular.params_["delta"] + 4)
    assert f"projects {100 * r5:.0f}% by the fifth (a projection" in lines[1]


def _memberships(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(
        rows,
        columns=[
            "membership_id",
            "customer_id",
            "scheme",
            "start_date",
            "end_date",
            "membership_type",
        ],
    )
    return conform(df, "memberships")


def test_summarise_memberships_hand_built() -> None:
    m = _memberships(
        [
            # A: joined 2020, renewed twice, lapsed after the term ending 2022-12-31
            ("M1", "A", "Friends", "2020-01-01", "2020-12-31", "new"),
            ("M2", "A", "Friends", "2021-01-01", "2021-12-31", "renewal"),
            ("M3", "A", "Friends", "2022-01-10", "2022-12-31", "renewal"),  # 10 days late
            # B: joined 2023-09, still a member at the end (censored)
            ("M4", "B", "Friends", "2023-09-01", "2024-08-31", "new"),
            # C: one term, lapsed; re-joined as new in 2024 (a second spell, censored)
            ("M5", "C", "Friends", "2021-03-01", "2022-02-28", "new"),
            ("M6", "C", "Friends", "2024-02-01", "2025-01-31", "new"),
            # D: term ended 2024-05-31, inside the 30-day grace at the end: censored
            ("M7", "D", "Friends", "2023-06-01", "2024-05-31", "new"),
            # a different scheme is its own spell
            ("M8", "A", "Patrons", "2022-06-01", "2023-05-31", "new"),
            # E: first seen renewing (joined before the records began): left out
            ("M9", "E", "Friends", "2023-03-01", "2024-02-29", "renewal"),
        ]
    )
    s = summarise_memberships(m, "2024-06-15", grace_days=30)
    got = {(r.customer_id, r.scheme, r.terms, r.churned) for r in s.itertuples()}
    assert got == {
        ("A", "Friends", 3, True),
        ("A", "Patrons", 1, True),
        ("B", "Friends", 1, False),
        ("C", "Friends", 1, True),
        ("C", "Friends", 1, False),
        ("D", "Friends", 1, False),
    }
    assert s.attrs["left_truncated"] == 1
    every = summarise_memberships(m, "2024-06-15", include_left_truncated=True)
    assert every.loc[every["customer_id"] == "E", "left_truncated"].item()
    friends = summarise_memberships(m, "2024-06-15", scheme="Friends")
    assert len(friends) == 5
    # with no grace at all, D's renewal is overdue: lapsed
    strict = summarise_memberships(m, "2024-06-15", grace_days=0)
    assert strict.loc[strict["customer_id"] == "D", "churned"].item()
    # a membership starting after the observation end is not seen
    early = summarise_memberships(m, "2023-12-31")
    assert early.loc[early["customer_id"] == "C", "terms"].tolist() == [1]


def _cohort_records(survivors: list[int]) -> pd.DataFrame:
    """Annual membership terms of a cohort that shrinks as ``survivors`` says."""
    rows = []
    k = 0
    years = len(survivors)
    for i in range(survivors[0]):
        # member i stays for as many terms as the counts allow
        terms = sum(1 for s in survivors if s > i)
        for t in range(terms):
            start = pd.Timestamp(2010 + t, 1, 1)
            rows.append(
                (
                    f"M{k}",
                    f"C{i}",
                    "Friends",
                    start,
                    start + pd.DateOffset(years=1, days=-1),
                    "new" if t == 0 else "renewal",
                )
            )
            k += 1
    assert years == 8
    return _memberships(rows)


def test_membership_records_reproduce_the_survivor_fit(regular: ShiftedBetaGeometric) -> None:
    records = _cohort_records(REGULAR)
    # observed to mid-2017: the 241 in their eighth term are still members (censored)
    spells = summarise_memberships(records, "2017-06-30")
    assert len(spells) == 1000
    assert spells["churned"].sum() == 1000 - 241
    assert spells.loc[~spells["churned"], "terms"].eq(8).all()
    from_records = ShiftedBetaGeometric().fit(spells)
    np.testing.assert_allclose(from_records.params_, regular.params_, rtol=1e-6)
    assert [round(from_records.params_[k], 3) for k in ("gamma", "delta")] == [0.704, 1.182]


def test_censored_member_adds_survival_not_churn() -> None:
    data = pd.DataFrame({"terms": [1, 1, 2, 3, 2], "churned": [True, True, True, False, False]})
    m = ShiftedBetaGeometric().fit(data)
    g, d = m.params_["gamma"], m.params_["delta"]

    def log_p(t: int) -> float:  # left at renewal t
        return betaln(g + 1, d + t - 1) - betaln(g, d)

    def log_s(t: int) -> float:  # still there after t renewals
        return betaln(g, d + t) - betaln(g, d)

    expected = 2 * log_p(1) + log_p(2) + log_s(2) + log_s(1)
    assert m.log_likelihood_ == pytest.approx(expected, rel=1e-10)
    # counting the censored members as lapsed gives different (wrong) estimates
    wrong = ShiftedBetaGeometric().fit(data.assign(churned=True))
    assert wrong.params_["gamma"] / wrong.params_["delta"] > 1.5 * g / d


def test_sbg_errors() -> None:
    with pytest.raises(PlaybookError, match="No member has lapsed"):
        ShiftedBetaGeometric().fit(pd.DataFrame({"terms": [1, 2], "churned": [False, False]}))
    with pytest.raises(PlaybookError, match="whole number of terms"):
        ShiftedBetaGeometric().fit(pd.DataFrame({"terms": [0, 2], "churned": [True, False]}))
    with pytest.raises(PlaybookError, match="needs the column"):
        ShiftedBetaGeometric().fit(pd.DataFrame({"terms": [1]}))
    with pytest.raises(PlaybookError, match="no membership records"):
        summarise_memberships(conform(pd.DataFrame(), "memberships"))
