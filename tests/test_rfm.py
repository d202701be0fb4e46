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
    # a recent one-timer is "Recent one-visit", not "Repeat & recent"
    assert list(s.loc[["C00"], rfm.SEGMENT]) == ["Recent one-visit"]


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
        (5, 5, "Frequent & recent"),
        (3, 4, "Repeat & recent"),
        (4, 2, "Promising"),
        (5, 1, "Recent one-visit"),
        (1, 5, "Frequent but fading"),
        (3, 1, "Drifting away"),
        (1, 1, "Long gone"),
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
    other = rfm.rfm_settings()["other"]
    assert other not in set(rfm.name_segments(grid, rules, other))


def test_heatmap_masks_small_cells() -> None:
    rng = np.random.default_rng(0)
    n = 200
    f = frame(rng.integers(1, 700, n), rng.integers(1, 10, n), rng.gamma(2, 50, n))
    s = rfm.score_rfm(f)
    grid = rfm.rf_grid(s, "customers", min_group=10)
    counts = pd.crosstab(s[rfm.R], s[rfm.F]).reindex_like(grid)
    assert (grid.isna() | (counts >= 10)).to_numpy().all()  # every small cell is hidden
    hidden = grid.isna() & (counts > 0)
    for axis in (0, 1):  # no row or column keeps a lone hidden cell
        assert not (hidden.sum(axis=axis) == 1).any()
    assert grid.index[0] == 5  # most recent at the top
    fig = rfm.rfm_heatmap(s, "monetary", min_group=10)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    summary = rfm.segment_summary(s, f, min_group=10)
    small = summary["customers"].isna()
    assert summary.loc[small, "avg_spend"].isna().all()
    assert summary.attrs["suppressed"] + summary.attrs["complementary"] == int(small.sum())


# --- names that cannot be confused with the ladder -----------------------------------


def test_default_names_avoid_ladder_words() -> None:
    ladder = {"champion", "loyal", "regular", "returner", "first-timer", "lapsed"}
    names = [r["name"] for r in rfm.rfm_settings()["segments"]]
    for name in names:
        assert not set(name.lower().replace("&", " ").split()) & ladder, name
        assert not set(n.rstrip("s") for n in name.lower().split()) & ladder, name


def test_old_ladder_like_name_in_org_yaml_still_works_with_a_warning() -> None:
    rules = [{"name": "champions", "r": [4, 5], "f": [5, 5]}]  # an older org.yaml
    scores = pd.DataFrame({rfm.R: [5, 1], rfm.F: [5, 1], rfm.M: [3, 3]})
    with pytest.warns(UserWarning, match="rung of the maturity ladder"):
        named = rfm.name_segments(scores, rules)
    assert list(named) == ["champions", "Other"]


# --- secondary suppression -----------------------------------------------------------


def test_protect_lines_gives_a_lone_hidden_cell_a_partner() -> None:
    counts = np.array([[100, 5, 50], [80, 60, 70], [90, 40, 30]])
    primary = counts < 10
    lines = [(np.arange(3) + 3 * i, np.ones(3)) for i in range(3)]  # rows
    lines += [(np.arange(3) * 3 + j, np.ones(3)) for j in range(3)]  # columns
    hidden = rfm.protect_lines(counts.ravel(), primary.ravel(), lines, 10).reshape(3, 3)
    # row 0 hides its smallest other cell (50), column 1 its (40), then column 2 (30)
    expected = np.zeros((3, 3), dtype=bool)
    expected[[0, 0, 2, 2], [1, 2, 1, 2]] = True
    np.testing.assert_array_equal(hidden, expected)


def test_protect_lines_hidden_cells_may_not_add_up_to_a_small_group() -> None:
    counts = np.array([3, 4, 100, 200])
    hidden = rfm.protect_lines(counts, counts < 10, [(np.arange(4), np.ones(4))], 10)
    assert list(hidden) == [True, True, True, False]  # 3 + 4 = 7 would be a small group
    # a total hidden together with one of its parts gives away only their difference
    counts = np.array([50, 45, 5])  # total = part + part
    line = [(np.arange(3), np.array([1, -1, -1]))]
    hidden = rfm.protect_lines(counts, np.array([True, False, True]), line, 10)
    assert list(hidden) == [True, False, True]


def scores_frame(cells: dict[tuple[int, int, str], int]) -> pd.DataFrame:
    """Scores with ``n`` customers in each (R, F, segment)."""
    rows = [(r, f, seg) for (r, f, seg), n in cells.items() for _ in range(n)]
    out = pd.DataFrame(rows, columns=[rfm.R, rfm.F, rfm.SEGMENT])
    out[rfm.M] = 3
    out["monetary"] = 10.0
    out.index = pd.Index([f"C{i:03d}" for i in range(len(out))], name="customer_id")
    return out


def test_segments_and_grid_hide_together() -> None:
    # one R score; segment A = cell (5,1) with 20, segment B = cells (5,4) 4 and (5,5) 30
    s = scores_frame({(5, 1, "A"): 20, (5, 4, "B"): 4, (5, 5, "B"): 30})
    seg, cells = rfm.rfm_masks(s, min_group=10)
    # the row hides 20 with the 4; then A (shown) = its one hidden cell, so A is
    # hidden; B (shown) = 4 + 30 would give the 4 away: B is hidden (rather than the
    # 30, alone in its column), which also keeps A from being all customers minus B
    assert cells.loc[5].to_dict() == {1: True, 4: True, 5: False}
    assert seg.to_dict() == {"A": True, "B": True}
    f = frame(
        np.full(len(s), 10.0), np.ones(len(s), dtype=int), np.full(len(s), 5.0), list(s.index)
    )
    summary = rfm.segment_summary(s, f, min_group=10)
    assert summary["customers"].isna().all() and summary["share_customers"].isna().all()
    assert summary.attrs["suppressed"] == 0 and summary.attrs["complementary"] == 2
    grid = rfm.rf_grid(s, "customers", 10)
    assert grid.loc[5].isna().to_dict() == {1: True, 4: True, 5: False}
    assert grid.attrs["suppressed"] == 1 and grid.attrs["complementary"] == 1
    money = rfm.rf_grid(s, "monetary", 10)
    assert money.isna().equals(grid.isna())  # the spend grid hides the same cells


def test_grid_orientation_and_f_labels() -> None:
    # one-visit customers share F = 1; two visits score 4, three or more 5
    freq = [1] * 12 + [2] * 4 + [3, 5, 9, 4]
    n = len(freq)
    f = frame(np.linspace(10, 500, n), freq, np.linspace(10, 200, n))
    s = rfm.score_rfm(f)
    assert sorted(s[rfm.F].unique()) == [1, 4, 5]
    assert rfm.f_score_labels(s) == {1: "1\n1 visit", 4: "4\n2 visits", 5: "5\n3+ visits"}
    grid = rfm.rf_grid(s, "customers", min_group=1)
    assert list(grid.index) == sorted(grid.index, reverse=True)  # R falls downwards
    assert list(grid.columns) == [1, 4, 5]  # F rises to the right
    # so the bottom-right corner is "came often, not lately": lowest R, highest F
    assert (grid.index[-1], grid.columns[-1]) == (1, 5)
    fig = rfm.rfm_heatmap(s, "customers", min_group=1)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks == ["1\n1 visit", "4\n2 visits", "5\n3+ visits"]
