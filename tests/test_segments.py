"""Behavioural clustering: estimator behaviour on hand-made blobs, recovery on a
generated organisation (ground truth from the generator), privacy of the profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

from playbook import segments
from playbook.config import load_org
from playbook.features import FC, default_as_of
from playbook.segments import BehaviourClusters
from playbook.tables import load_tables


def blobs(sizes=(300, 200, 100), seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Three well-separated groups in two features (known labels)."""
    rng = np.random.default_rng(seed)
    centres = [(0.0, 0.0), (6.0, 0.0), (0.0, 6.0)]
    parts, truth = [], []
    for i, (n, c) in enumerate(zip(sizes, centres, strict=True)):
        parts.append(rng.normal(c, 0.5, size=(n, 2)))
        truth += [i] * n
    x = np.vstack(parts)
    frame = pd.DataFrame(x, columns=["a", "b"], index=[f"C{i:04d}" for i in range(len(x))])
    return frame, np.asarray(truth)


def test_estimator_contract() -> None:
    x, _ = blobs()
    est = BehaviourClusters(k_range=(2, 5), random_state=3)
    assert est.get_params()["k_range"] == (2, 5)
    assert not hasattr(est, "labels_")  # __init__ only stores arguments
    assert est.fit(x) is est
    assert clone(est).get_params() == est.get_params()
    for attr in ("labels_", "n_clusters_", "scores_", "model_", "preprocess_"):
        assert hasattr(est, attr)


def test_chooses_k_and_recovers_blobs() -> None:
    x, truth = blobs()
    est = BehaviourClusters(k_range=(2, 6), random_state=0).fit(x)
    assert est.n_clusters_ == 3
    assert list(est.scores_["k"]) == [2, 3, 4, 5, 6]
    assert adjusted_rand_score(truth, est.labels_) == pytest.approx(1.0)
    # clusters are numbered by size: 0 is the largest
    assert list(np.bincount(est.labels_)) == [300, 200, 100]


def test_fit_on_sample_assigns_everyone_deterministically() -> None:
    x, truth = blobs((3000, 2000, 1000))
    a = BehaviourClusters(k_range=(2, 5), sample_size=600, select_size=300).fit(x)
    b = BehaviourClusters(k_range=(2, 5), sample_size=600, select_size=300).fit(x)
    assert len(a.sample_index_) == 600 and len(a.labels_) == len(x)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.predict(x), a.labels_)
    assert adjusted_rand_score(truth, a.labels_) > 0.99


def test_gmm_with_bic() -> None:
    x, truth = blobs()
    est = BehaviourClusters(k_range=(2, 5), method="gmm", n_init=1).fit(x)
    assert "bic" in est.scores_
    assert est.n_clusters_ == 3
    assert adjusted_rand_score(truth, est.labels_) > 0.95


def test_weights_change_what_matters() -> None:
    # 'a' splits into two groups, 'b' into three; the weight decides which wins
    rng = np.random.default_rng(1)
    n = 600
    a = np.repeat([0.0, 8.0], n // 2) + rng.normal(0, 0.3, n)
    b = np.tile(np.repeat([0.0, 1.0, 2.0], n // 6), 2) + rng.normal(0, 0.05, n)
    x = pd.DataFrame({"a": a, "b": b})
    heavy_b = BehaviourClusters(n_clusters=3, weights={"a": 0.01, "b": 5.0}).fit(x)
    truth_b = np.tile(np.repeat([0, 1, 2], n // 6), 2)
    assert adjusted_rand_score(truth_b, heavy_b.labels_) > 0.95


def test_stability_high_on_clear_groups() -> None:
    x, _ = blobs()
    est = BehaviourClusters(k_range=(2, 5)).fit(x)
    aris = est.stability(x, n_boot=5)
    assert len(aris) == 5 and aris.min() > 0.95


def test_tiny_inputs_do_not_fail() -> None:
    x = pd.DataFrame({"a": [1.0, 2.0]})
    est = BehaviourClusters().fit(x)
    assert est.n_clusters_ == 1 and list(est.labels_) == [0, 0]
    x3 = pd.DataFrame({"a": [1.0, 2.0, 9.0, np.nan]})
    est3 = BehaviourClusters().fit(x3)  # k is capped at n - 1; missing values imputed
    assert est3.n_clusters_ in (2, 3)


def test_cluster_inputs_skip_empty_columns() -> None:
    f = pd.DataFrame(
        {
            FC.avg_lead_days: [1.0, 2.0],
            FC.price_index: [np.nan, np.nan],  # e.g. no list prices in the exports
            FC.donation_spend: [0.0, 5.0],
            FC.membership_spend: [1.0, 0.0],
        },
        index=["C1", "C2"],
    )
    x = segments.cluster_inputs(f)
    assert FC.price_index not in x.columns
    assert FC.price_index in x.attrs["dropped"]
    assert list(x[segments.GIVING]) == [1.0, 5.0]


def test_profile_masks_small_clusters() -> None:
    n = 55
    f = pd.DataFrame({c: np.arange(n, dtype=float) for c in segments.PROFILE_COLUMNS})
    labels = pd.Series([0] * 30 + [1] * 20 + [2] * 5, name="cluster")
    prof = segments.cluster_profile(f, labels, min_group=10)
    assert prof.loc[0, "customers"] == 30
    # the small cluster, and the next smallest with it: else 5 = 55 - 30 - 20
    assert prof.loc[2].isna().all() and prof.loc[1].isna().all()
    assert prof.attrs["suppressed"] == 1 and prof.attrs["complementary"] == 1
    fig = segments.profile_heatmap(f, labels, min_group=10)
    ax = fig.axes[0]
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


# --- secondary suppression of the cluster tables -------------------------------------

TIERS = ["first_timer", "returner", "regular", "loyal", "champion", "lapsed"]
# The demo report's cluster × tier table: Champion has 1 and 2 in clusters 1 and 3
REVIEW_TABLE = {
    0: [3150, 857, 325, 343, 1, 5003],
    1: [495, 242, 162, 860, 471, 1187],
    2: [880, 227, 90, 155, 2, 1296],
    3: [705, 246, 163, 112, 0, 1349],
    4: [0, 30, 0, 348, 421, 94],
}


def table_segmentation(table: dict[int, list[int]]) -> segments.Segmentation:
    """A segmentation whose cluster × tier counts are ``table`` (rows: clusters)."""
    pairs = [
        (k, t)
        for k, row in table.items()
        for t, n in zip(TIERS, row, strict=True)
        for _ in range(n)
    ]
    ids = pd.Index([f"C{i:06d}" for i in range(len(pairs))], name=FC.customer_id)
    clusters = pd.Series([k for k, _ in pairs], index=ids, name="cluster")
    tier = pd.Series([t for _, t in pairs], index=ids, name="tier")
    f = pd.DataFrame({FC.recent_spend: 10.0, FC.total_spend: 20.0}, index=ids)
    model = BehaviourClusters()
    model.n_clusters_ = len(table)
    return segments.Segmentation(
        f,
        pd.DataFrame(index=ids),
        tier,
        pd.DataFrame(index=ids),
        f,
        model,
        clusters,
        pd.Timestamp("2026-08-31"),
    )


def test_cluster_by_tier_hides_no_lone_cell() -> None:
    seg = table_segmentation(REVIEW_TABLE)
    table = segments.clusters_by_tier(seg, min_group=10).set_index("cluster")
    hidden = table.isna().to_numpy()
    counts = np.array(list(REVIEW_TABLE.values()))
    # Champion 1 and 2 alone in their rows (cluster sizes shown) and together only 3 in
    # their column (tier size shown): partners are hidden until no row or column can
    # be subtracted back, known answer:
    expected = np.zeros_like(hidden)
    for k, t in [(0, 2), (0, 4), (2, 1), (2, 2), (2, 4), (4, 1), (4, 4)]:
        expected[k, t] = True
    np.testing.assert_array_equal(hidden, expected)
    for axis in (0, 1):
        n_hidden = (hidden & (counts > 0)).sum(axis=axis)
        assert not (n_hidden == 1).any()
        sums = np.where(hidden, counts, 0).sum(axis=axis)
        assert ((sums == 0) | (sums >= 10)).all()
    assert table.attrs["suppressed"] == 2 and table.attrs["complementary"] == 5
    text = segments.privacy_text(10, table, what="cells")
    assert "2 of the cells" in text and "5 more are hidden" in text
    sizes = segments.cluster_sizes(seg, min_group=10)
    assert sizes["customers"].notna().all()  # every cluster is big enough


def test_a_lone_small_cluster_gets_a_partner() -> None:
    seg = table_segmentation(
        {0: [40, 0, 0, 0, 0, 0], 1: [25, 0, 0, 0, 0, 0], 2: [4, 0, 0, 0, 0, 0]}
    )
    sizes = segments.cluster_sizes(seg, min_group=10)
    assert list(sizes["customers"].isna()) == [False, True, True]
    assert sizes.loc[1:, ["share_customers", "share_revenue"]].isna().all().all()
    assert sizes.attrs["suppressed"] == 1 and sizes.attrs["complementary"] == 1
    table = segments.clusters_by_tier(seg, min_group=10)
    assert list(table["First-timer"].isna()) == [False, True, True]


def test_small_sub_group_shares_are_hidden() -> None:
    n = 60
    f = pd.DataFrame({c: np.zeros(n) for c in segments.PROFILE_COLUMNS})
    labels = pd.Series([0] * 30 + [1] * 30, name="cluster")
    f[FC.is_member] = [True] * 3 + [False] * 27 + [True] * 15 + [False] * 15
    f[FC.is_donor] = [True] * 25 + [False] * 5 + [False] * 30  # 5 non-donors: small too
    f[FC.latest_nps] = [9.0] * 4 + [np.nan] * 26 + [7.0] * 12 + [np.nan] * 18
    prof = segments.cluster_profile(f, labels, min_group=10)
    assert pd.isna(prof.loc[0, FC.is_member])  # 10% of 30 would be 3 members
    assert prof.loc[1, FC.is_member] == pytest.approx(0.5)
    assert pd.isna(prof.loc[0, FC.is_donor]) and prof.loc[1, FC.is_donor] == 0
    assert pd.isna(prof.loc[0, FC.latest_nps])  # the mean of 4 answers
    assert prof.loc[1, FC.latest_nps] == 7.0


def test_k_chart_has_whole_numbers_of_clusters() -> None:
    model = BehaviourClusters()
    model.scores_ = pd.DataFrame(
        {"k": [4, 5, 6, 7, 8], "silhouette": [0.29, 0.31, 0.3, 0.28, 0.23]}
    )
    model.n_clusters_ = 5
    fig = segments.k_chart(model)
    ticks = fig.axes[0].get_xticks()
    assert list(ticks) == [4, 5, 6, 7, 8]


# --- recovery of the generator's latent segments -------------------------------------


def truth_for(org: Path, index: pd.Index) -> np.ndarray:
    """The generator's latent segment of each canonical (pseudonymous) customer."""
    truth = pd.read_csv(org / "truth" / "segments.csv", dtype=str)
    ids = pd.read_parquet(org / "private" / "id_map.parquet")
    merged = ids.merge(truth, left_on="source_customer_id", right_on="Customer ID")
    return merged.set_index("customer_id")["segment"].reindex(index).to_numpy()


@pytest.mark.slow
def test_clusters_recover_latent_segments(small_org: Path) -> None:
    cfg = load_org(small_org)
    tables = load_tables(cfg)
    seg = segments.segment_customers(tables, default_as_of(tables, cfg.season_start_month), cfg)
    truth = truth_for(small_org, seg.features.index)
    assert pd.notna(truth).all()
    ari = adjusted_rand_score(truth, seg.clusters)
    assert ari >= 0.5, f"adjusted Rand index {ari:.3f} < 0.5"
    # same data, same seed: the same clusters
    again = segments.segment_customers(tables, seg.as_of, cfg)
    pd.testing.assert_series_equal(seg.clusters, again.clusters)
    stab = segments.stability_summary(seg, n_boot=3)
    assert stab.loc[0, "mean_ari"] > 0.6
