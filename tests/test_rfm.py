"""RFM scores on a small frame with known quintiles, and the named segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_tiers import make_cfg

from playbook import rfm
from playbook.features import FC


def frame(recency, frequency, spend, ids=None) -> pd.DataFrame:
    n = len(recency)
    ids = ids or [f"C{i:02d}" for i in range(n)]
    return pd.DataFrame(
        {
            FC.recency_days: np.asarray(recency, dtype=float),
            FC.frequency: np.asarray(frequency),
            FC.recent_visits: np.zeros(n, dtype=int),
            FC.tickets: np.asarray(frequency),
            FC.total_spend: np.asarray(spend, dtype=float),
            FC.recent_spend: np.asarray(spend, dtype=float),
        },
        index=pd.Index(ids, name="customer_id"),
    )


@pytest.mark.parametrize("ties", ["together", "first"])
def test_known_quintiles(ties: str) -> None:
    # ten customers, all values distinct: two per quintile, whatever the tie rule
    f = frame(
        recency=[10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
        frequency=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        spend=[100, 90, 80, 70, 60, 50, 40, 30, 20, 10],
    )
    s = rfm.score_rfm(f, make_cfg(rfm={"ties": ties}))
    assert list(s[rfm.R]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # most recent scores 5
    assert list(s[rfm.F]) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert list(s[rfm.M]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert s.loc["C00", "rfm_cell"] == "515"


def test_ties_share_a_score_by_default() -> None:
    # six customers: four with one visit, two with three visits
    f = frame([5, 6, 7, 8, 9, 10], [1, 1, 1, 1, 3, 3], [10, 20, 30, 40, 50, 60])
    s = rfm.score_rfm(f)
    assert list(s[rfm.F]) == [1, 1, 1, 1, 4, 4]  # 4 of 6 below: floor(5 * 4 / 6) + 1
    assert list(s[rfm.R]) == [5, 4, 3, 2, 1, 1]
    assert list(s.loc[["C00"], rfm.SEGMENT]) == ["new"]  # recent one-timer, not "loyal"


def test_first_method_splits_ties_by_customer_id() -> None:
    f = frame([5, 5, 5, 5, 5], [1, 1, 1, 1, 1], [10, 10, 10, 10, 10])
    cfg = make_cfg(rfm={"ties": "first"})
    s1 = rfm.score_rfm(f, cfg)
    s2 = rfm.score_rfm(f.iloc[::-1], cfg)
    assert sorted(s1[rfm.F]) == [1, 2, 3, 4, 5]
    assert s1.loc["C00", rfm.F] == 5  # lowest id ranks first among equals
    pd.testing.assert_frame_equal(s1, s2.loc[s1.index])  # row order does not matter
    with pytest.raises(ValueError, match="ties"):
        rfm.score_rfm(f, make_cfg(rfm={"ties": "random"}))


def test_rank_scores_bins() -> None:
    assert list(rfm.rank_scores([np.arange(7)], 5)) == [1, 1, 2, 3, 3, 4, 5]
    assert list(rfm.rank_scores([np.array([3.0])], 5)) == [1]
    assert list(rfm.tied_scores(np.array([2.0, 1.0, 2.0, 3.0]), 4)) == [2, 1, 2, 4]


@pytest.mark.parametrize(
    "r, f, name",
    [
        (5, 5, "champions"),
        (3, 4, "loyal"),
        (4, 2, "potential"),
        (5, 1, "new"),
        (1, 5, "at risk"),
        (3, 1, "hibernating"),
        (1, 1, "lost"),
    ],
)
def test_default_named_segments(r: int, f: int, name: str) -> None:
    rules = rfm.rfm_settings()["segments"]
    scores = pd.DataFrame({rfm.R: [r], rfm.F: [f], rfm.M: [3]})
    assert rfm.name_segments(scores, rules).iloc[0] == name


def test_default_rules_cover_the_grid() -> None:
    rules = rfm.rfm_settings()["segments"]
    grid = pd.DataFrame(
        [(r, f, 3) for r in range(1, 6) for f in range(1, 6)], columns=[rfm.R, rfm.F, rfm.M]
    )
    assert "other" not in set(rfm.name_segments(grid, rules))


def test_heatmap_masks_small_cells() -> None:
    rng = np.random.default_rng(0)
    n = 200
    f = frame(rng.integers(1, 700, n), rng.integers(1, 10, n), rng.gamma(2, 50, n))
    s = rfm.score_rfm(f)
    grid = rfm.rf_grid(s, "customers", min_group=10)
    counts = pd.crosstab(s[rfm.R], s[rfm.F]).reindex_like(grid)
    assert grid.isna().equals(counts < 10)
    assert grid.index[0] == 5  # most recent at the top
    fig = rfm.rfm_heatmap(s, "monetary", min_group=10)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    summary = rfm.segment_summary(s, f, min_group=10)
    small = summary["customers"].isna()
    assert summary.loc[small, "avg_spend"].isna().all()
    assert summary.attrs["suppressed"] == int(small.sum())
