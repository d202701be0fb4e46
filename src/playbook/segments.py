"""Behavioural clusters: groups of customers who book alike (notebook 10, section 4).

:class:`BehaviourClusters` is a scikit-learn style estimator: skewed features are
log-transformed (``log1p``), every feature is standardised and weighted, artform visit
shares are added as they are (already on a 0–1 scale), and k-means (or a Gaussian
mixture) groups the customers. The number of clusters is chosen within a configured
range by the silhouette score on a sample (k-means) or by BIC (Gaussian mixture). The
model is fitted on a sample of customers (default 50,000) and then assigns everyone,
so a million customers cost seconds. The same data and ``random_state`` always give the
same clusters, numbered by size (cluster 1 is the largest).

:func:`segment_customers` runs the whole of notebook 10 in one call: features, tiers,
RFM scores and clusters.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from playbook import charts, rfm, tiers
from playbook.config import OrgConfig
from playbook.features import FC, PreparedLines, artform_shares, build_features, prepare, settings
from playbook.tables import Tables

CLUSTER = "cluster"
GIVING = "giving"
ART_PREFIX = "art_"

# Features shown in the cluster profile (and used to describe personas).
PROFILE_COLUMNS: tuple[str, ...] = (
    FC.frequency,
    FC.recent_visits,
    FC.avg_lead_days,
    FC.avg_party_size,
    FC.weekend_share,
    FC.matinee_share,
    FC.avg_ticket_price,
    FC.price_index,
    FC.concession_share,
    FC.subscription_share,
    FC.online_share,
    FC.phone_share,
    FC.box_office_share,
    FC.is_member,
    FC.is_donor,
    FC.email_click_rate,
    FC.latest_nps,
    FC.total_spend,
)

PROFILE_LABELS: dict[str, str] = {
    FC.frequency: "visits (ever)",
    FC.recent_visits: "visits (last 12 months)",
    FC.avg_lead_days: "days booked ahead",
    FC.avg_party_size: "tickets per visit",
    FC.weekend_share: "weekend visits",
    FC.matinee_share: "matinee visits",
    FC.avg_ticket_price: "price paid per ticket",
    FC.price_index: "seat price vs typical",
    FC.concession_share: "concession tickets",
    FC.subscription_share: "subscription tickets",
    FC.online_share: "booked online",
    FC.phone_share: "booked by phone",
    FC.box_office_share: "booked at box office",
    FC.is_member: "members",
    FC.is_donor: "donors",
    FC.email_click_rate: "email click rate",
    FC.latest_nps: "NPS score (0–10)",
    FC.total_spend: "lifetime spend",
}
_SHARES = {
    FC.weekend_share,
    FC.matinee_share,
    FC.concession_share,
    FC.subscription_share,
    FC.online_share,
    FC.phone_share,
    FC.box_office_share,
    FC.is_member,
    FC.is_donor,
    FC.email_click_rate,
}
_MONEY = {FC.avg_ticket_price, FC.total_spend}


def segment_settings(cfg: OrgConfig | None = None) -> dict[str, Any]:
    """The ``segments`` settings in force."""
    return settings(cfg, "segments")


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------
def cluster_inputs(
    features: pd.DataFrame,
    art_shares: pd.DataFrame | None = None,
    cfg: OrgConfig | None = None,
) -> pd.DataFrame:
    """The numeric frame the clustering reads, one row per customer.

    Columns are the weighted features of ``segments.weights`` (``giving`` is donation +
    membership spend) followed by the artform shares (``art_<artform>``). Columns with
    no data at all (an absent optional table) are left out; ``attrs["dropped"]`` lists them.
    """
    s = segment_settings(cfg)
    weights = {k: float(v) for k, v in (s.get("weights") or {}).items() if float(v) > 0}
    data: dict[str, pd.Series] = {}
    for col in weights:
        if col == GIVING:
            data[col] = features[FC.donation_spend] + features[FC.membership_spend]
        elif col in features:
            data[col] = features[col].astype(float)
    out = pd.DataFrame(data, index=features.index)
    if art_shares is not None and float(s.get("artform_weight", 1.0)) > 0:
        arts = art_shares.reindex(features.index).fillna(0.0)
        out = out.join(arts.iloc[:, : int(s.get("top_artforms", 8))])
    empty = [c for c in out.columns if out[c].isna().all()]
    out = out.drop(columns=empty)
    out.attrs["dropped"] = empty
    return out


def _scale_columns(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=float) * weights


# ---------------------------------------------------------------------------
# The estimator
# ---------------------------------------------------------------------------
class BehaviourClusters(ClusterMixin, BaseEstimator):
    """Cluster customers by booking behaviour, choosing the number of clusters.

    Parameters
    ----------
    k_range : tuple of int
        Smallest and largest number of clusters to try.
    n_clusters : int, optional
        Use exactly this many clusters (skips the choice).
    method : {"kmeans", "gmm"}
        k-means with the silhouette score, or a Gaussian mixture with BIC.
    weights : mapping, optional
        Weight of each input column (default 1); artform columns use ``artform_weight``.
    artform_weight : float
        Weight of every ``art_*`` column.
    log_features : sequence of str
        Columns transformed with ``log1p`` before standardising.
    sample_size : int
        Customers used to fit the final model (a random sample when there are more).
    select_size : int
        Customers (a subset of that sample) used to try each number of clusters.
    silhouette_sample : int
        Customers used to compute each silhouette score.
    n_init : int
        Restarts of k-means / the mixture.
    random_state : int
        Seed of every random choice.
    threads : int or None
        Threads for the numeric work (``None``: all cores). One thread is the default:
        the fits are small, and on a shared machine extra threads mostly wait.

    Attributes
    ----------
    feature_names_in_ : list of str
    preprocess_ : sklearn Pipeline
        Impute, log, standardise and weight.
    scores_ : pandas.DataFrame
        ``k`` and ``silhouette`` (or ``bic``) for every k tried.
    n_clusters_ : int
    model_ : KMeans or GaussianMixture (``None`` with fewer than 3 customers)
    labels_ : numpy.ndarray
        Cluster of every row passed to :meth:`fit` (0 = largest cluster).
    sample_index_ : numpy.ndarray
        Rows used to fit.
    """

    def __init__(
        self,
        k_range: tuple[int, int] = (4, 8),
        n_clusters: int | None = None,
        method: str = "kmeans",
        weights: Mapping[str, float] | None = None,
        artform_weight: float = 1.0,
        log_features: Sequence[str] = (),
        sample_size: int = 50_000,
        select_size: int = 10_000,
        silhouette_sample: int = 5_000,
        n_init: int = 4,
        random_state: int = 42,
        threads: int | None = 1,
    ) -> None:
        self.k_range = k_range
        self.n_clusters = n_clusters
        self.method = method
        self.weights = weights
        self.artform_weight = artform_weight
        self.log_features = log_features
        self.sample_size = sample_size
        self.select_size = select_size
        self.silhouette_sample = silhouette_sample
        self.n_init = n_init
        self.random_state = random_state
        self.threads = threads

    # -- helpers -----------------------------------------------------------------
    def _preprocessor(self, columns: list[str]) -> Pipeline:
        logs = [c for c in columns if c in set(self.log_features)]
        arts = [c for c in columns if c.startswith(ART_PREFIX)]
        plain = [c for c in columns if c not in logs and c not in arts]
        parts = []
        if logs:
            parts.append(
                (
                    "log",
                    make_pipeline(
                        SimpleImputer(strategy="median"),
                        FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                        StandardScaler(),
                    ),
                    logs,
                )
            )
        if plain:
            parts.append(
                ("plain", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), plain)
            )
        if arts:
            parts.append(("art", SimpleImputer(strategy="constant", fill_value=0.0), arts))
        order = logs + plain + arts
        w = dict(self.weights or {})
        vector = np.array(
            [float(self.artform_weight) if c in arts else float(w.get(c, 1.0)) for c in order]
        )
        return Pipeline(
            [
                ("columns", ColumnTransformer(parts, verbose_feature_names_out=False)),
                ("weights", FunctionTransformer(_scale_columns, kw_args={"weights": vector})),
            ]
        )

    def _make_model(self, k: int, seed: int) -> KMeans | GaussianMixture:
        if self.method == "gmm":
            return GaussianMixture(
                n_components=k, covariance_type="full", n_init=self.n_init, random_state=seed
            )
        if self.method != "kmeans":
            raise ValueError(f"method must be 'kmeans' or 'gmm', not {self.method!r}")
        return KMeans(n_clusters=k, n_init=self.n_init, random_state=seed)

    # -- the estimator API ---------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: None = None) -> BehaviourClusters:
        """Choose the number of clusters and fit on a sample of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            From :func:`cluster_inputs`; one row per customer.

        Returns
        -------
        self
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError("BehaviourClusters.fit expects a DataFrame from cluster_inputs()")
        with threadpool_limits(self.threads):
            return self._fit(X)

    def _fit(self, X: pd.DataFrame) -> BehaviourClusters:
        self.feature_names_in_ = list(X.columns)
        rng = np.random.default_rng(self.random_state)
        n = len(X)
        if n > self.sample_size:
            self.sample_index_ = np.sort(rng.choice(n, self.sample_size, replace=False))
        else:
            self.sample_index_ = np.arange(n)
        sample = X.iloc[self.sample_index_]
        self.preprocess_ = self._preprocessor(self.feature_names_in_).fit(sample)
        z = self.preprocess_.transform(sample)

        lo, hi = (int(self.n_clusters),) * 2 if self.n_clusters else map(int, self.k_range)
        hi = min(hi, len(z) - 1)
        lo = max(2, min(lo, hi))
        if hi < 2 or len(X.columns) == 0:
            self.model_ = None
            self.n_clusters_ = 1
            self.scores_ = pd.DataFrame({"k": [1], "score": [np.nan]})
            self.relabel_ = np.zeros(1, dtype=np.int64)
            self.labels_ = np.zeros(n, dtype=np.int64)
            return self
        perm = rng.permutation(len(z))
        zs = z[perm[: self.select_size]]  # the k choice runs on a smaller subset
        sil = zs[: self.silhouette_sample]
        rows = []
        for k in range(lo, hi + 1):
            model = self._make_model(k, self.random_state).fit(zs)
            if self.method == "gmm":
                rows.append({"k": k, "bic": float(model.bic(zs))})
            else:
                labels = model.predict(sil)
                ok = 1 < len(np.unique(labels)) < len(sil)
                score = float(silhouette_score(sil, labels)) if ok else -1.0
                rows.append({"k": k, "silhouette": score})
        self.scores_ = pd.DataFrame(rows)
        if self.method == "gmm":
            best = int(self.scores_.loc[self.scores_["bic"].idxmin(), "k"])
        else:
            best = int(self.scores_.loc[self.scores_["silhouette"].idxmax(), "k"])
        self.n_clusters_ = best
        self.model_ = self._make_model(best, self.random_state).fit(z)
        raw = self.model_.predict(self.preprocess_.transform(X))
        counts = np.bincount(raw, minlength=best)
        order = np.lexsort((np.arange(best), -counts))  # largest first, ties by number
        self.relabel_ = np.empty(best, dtype=np.int64)
        self.relabel_[order] = np.arange(best)
        self.labels_ = self.relabel_[raw]
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Cluster of each row (0 = largest cluster at fit time)."""
        if self.model_ is None:
            return np.zeros(len(X), dtype=np.int64)
        with threadpool_limits(self.threads):
            z = self.preprocess_.transform(X[self.feature_names_in_])
            return self.relabel_[self.model_.predict(z)]

    def stability(self, X: pd.DataFrame, n_boot: int = 10, max_rows: int = 5_000) -> np.ndarray:
        """Adjusted Rand index between this model and refits on bootstrap samples.

        Each refit uses the same number of clusters (one random start) on ``max_rows``
        customers drawn with replacement from the fitting sample, and is compared with
        this model on those customers. Values near 1 mean the clusters are stable:
        they do not depend on which customers happened to be in the data.
        """
        if self.model_ is None or n_boot <= 0:
            return np.array([])
        rng = np.random.default_rng(self.random_state + 1)
        with threadpool_limits(self.threads):
            return self._stability(X, n_boot, max_rows, rng)

    def _stability(
        self, X: pd.DataFrame, n_boot: int, max_rows: int, rng: np.random.Generator
    ) -> np.ndarray:
        z = self.preprocess_.transform(X.iloc[self.sample_index_])
        out = []
        for b in range(n_boot):
            boot = z[rng.integers(0, len(z), min(len(z), max_rows))]
            model = clone(self.model_).set_params(
                random_state=self.random_state + 100 + b, n_init=1
            )
            model.fit(boot)
            out.append(adjusted_rand_score(self.model_.predict(boot), model.predict(boot)))
        return np.asarray(out)


def clusters_from_settings(cfg: OrgConfig | None = None) -> BehaviourClusters:
    """A :class:`BehaviourClusters` configured from the ``segments`` settings."""
    s = segment_settings(cfg)
    return BehaviourClusters(
        k_range=(int(s.get("k_min", 4)), int(s.get("k_max", 8))),
        n_clusters=s.get("n_clusters"),
        method=str(s.get("method", "kmeans")),
        weights={k: float(v) for k, v in (s.get("weights") or {}).items()},
        artform_weight=float(s.get("artform_weight", 1.0)),
        log_features=tuple(s.get("log_features", ())),
        sample_size=int(s.get("sample_size", 50_000)),
        select_size=int(s.get("select_size", 10_000)),
        silhouette_sample=int(s.get("silhouette_sample", 5_000)),
        n_init=int(s.get("n_init", 4)),
        random_state=int(s.get("random_state", 42)),
        threads=s.get("threads", 1),
    )


# ---------------------------------------------------------------------------
# Everything notebook 10 needs, in one call
# ---------------------------------------------------------------------------
@dataclass
class Segmentation:
    """Features, tiers, RFM scores and clusters of one organisation as of a date."""

    features: pd.DataFrame
    art_shares: pd.DataFrame
    tiers: pd.Series
    rfm: pd.DataFrame
    inputs: pd.DataFrame
    model: BehaviourClusters
    clusters: pd.Series  # cluster number per customer (0 = largest)
    as_of: pd.Timestamp
    config: OrgConfig | None = None
    prepared: PreparedLines | None = None  # reuse for tier_history or other dates

    @property
    def cluster_names(self) -> dict[int, str]:
        """Plain display names ``{0: "Cluster 1", …}``."""
        return {k: f"Cluster {k + 1}" for k in range(self.model.n_clusters_)}


def segment_customers(
    tables: Tables | PreparedLines,
    as_of: pd.Timestamp | str,
    cfg: OrgConfig | None = None,
) -> Segmentation:
    """Features → tiers → RFM → clusters for every customer as of ``as_of``.

    Parameters
    ----------
    tables : Tables or PreparedLines
    as_of : Timestamp or str
        Use ``ctx.as_of`` (the season's last instant) in notebooks.
    cfg : OrgConfig, optional

    Returns
    -------
    Segmentation
    """
    prep = tables if isinstance(tables, PreparedLines) else prepare(tables, cfg)
    as_of = pd.Timestamp(as_of)
    feats = build_features(prep, as_of, cfg)
    arts = artform_shares(prep, as_of, cfg, top=int(segment_settings(cfg).get("top_artforms", 8)))
    tier = tiers.assign_tiers(feats, cfg, as_of=as_of)
    scores = rfm.score_rfm(feats, cfg)
    inputs = cluster_inputs(feats, arts, cfg)
    model = clusters_from_settings(cfg).fit(inputs)
    labels = pd.Series(model.labels_, index=feats.index, name=CLUSTER)
    return Segmentation(feats, arts, tier, scores, inputs, model, labels, as_of, cfg, prep)


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------
def choice_of_k(model: BehaviourClusters) -> pd.DataFrame:
    """The score of every number of clusters tried, and which one was chosen."""
    out = model.scores_.copy()
    out["chosen"] = np.where(out["k"] == model.n_clusters_, "◀ chosen", "")
    return out


def k_chart(model: BehaviourClusters) -> Figure:
    """Silhouette (or BIC) by number of clusters (whole numbers on the x axis)."""
    col = "bic" if "bic" in model.scores_ else "silhouette"
    better = "lower is better" if col == "bic" else "higher is better"
    fig = charts.line(
        model.scores_,
        x="k",
        y=col,
        title=f"Choosing the number of clusters ({col}, {better})",
        xlabel="Number of clusters",
        ylabel=col.upper() if col == "bic" else "Silhouette score",
    )
    ax = fig.axes[0]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xticks([int(k) for k in model.scores_["k"]])
    return fig


def stability_summary(seg: Segmentation, n_boot: int | None = None) -> pd.DataFrame:
    """Bootstrap adjusted Rand index: how much the clusters move when refitted."""
    n = int(segment_settings(seg.config).get("bootstrap", 10)) if n_boot is None else n_boot
    aris = seg.model.stability(seg.inputs, n_boot=n)
    if len(aris) == 0:
        return pd.DataFrame({"refits": [0], "mean_ari": [np.nan], "lowest_ari": [np.nan]})
    return pd.DataFrame(
        {"refits": [len(aris)], "mean_ari": [aris.mean()], "lowest_ari": [aris.min()]}
    )


def cluster_tier_masks(
    clusters: pd.Series,
    tier: pd.Series | None,
    n_clusters: int | None = None,
    min_group: int = 10,
) -> tuple[pd.Series, pd.DataFrame]:
    """Which clusters, and which cluster × tier cells, the report must hide.

    Primary: clusters and cells with 1 to ``min_group - 1`` customers. Secondary
    (:func:`playbook.privacy.protect_lines`): the report also shows the number of customers
    (so the cluster sizes add up to a known total), each cluster's size (a row total of
    the cluster × tier table) and each tier's size (a column total, in the ladder
    table). Hidden figures are chosen together so that none can be worked out by
    subtraction, and no set of hidden cells in a row or column adds up to a small group.

    Parameters
    ----------
    clusters : pandas.Series
        Cluster number per customer (0 = largest).
    tier : pandas.Series or None
        Ladder tier per customer (same index); ``None``: clusters only.
    n_clusters : int, optional
        Number of clusters (default: the largest number seen + 1).
    min_group : int

    Returns
    -------
    sizes : pandas.Series
        Indexed 0 … n_clusters - 1: True = hide the cluster.
    cells : pandas.DataFrame
        Clusters × every tier of :data:`playbook.tiers.ALL_TIERS`: True = hide the cell.
        Both carry ``attrs["primary"]``, the number hidden for being small.
    """
    k = int(n_clusters if n_clusters is not None else (clusters.max() + 1 if len(clusters) else 1))
    sizes = clusters.value_counts().reindex(range(k), fill_value=0).to_numpy(dtype=float)
    cols = list(tiers.ALL_TIERS)
    if tier is not None:
        cells = pd.crosstab(clusters, tier.reindex(clusters.index).astype("string"))
        cells = cells.reindex(index=range(k), columns=cols, fill_value=0)
    else:
        cells = pd.DataFrame(0, index=range(k), columns=cols)
    cell_counts = cells.to_numpy(dtype=float)
    n_t = len(cols)
    counts = np.concatenate([sizes, cell_counts.ravel()])
    primary = (counts > 0) & (counts < min_group)
    pos = np.arange(k * n_t).reshape(k, n_t) + k
    lines: list[tuple[np.ndarray, np.ndarray]] = [(np.arange(k), np.ones(k))]
    if tier is not None:
        lines += [
            (np.concatenate([[i], pos[i]]), np.concatenate([[1], -np.ones(n_t)])) for i in range(k)
        ]
        lines += [(pos[:, t], np.ones(k)) for t in range(n_t)]
    hidden = rfm.protect_lines(counts, primary, lines, min_group)
    size_mask = pd.Series(hidden[:k], index=range(k), name="hidden")
    cell_mask = pd.DataFrame(hidden[k:].reshape(k, n_t), index=range(k), columns=cols)
    size_mask.attrs["primary"] = int(primary[:k].sum())
    cell_mask.attrs["primary"] = int(primary[k:].sum())
    return size_mask, cell_mask


def cluster_sizes(seg: Segmentation, min_group: int = 10) -> pd.DataFrame:
    """Customers, share of customers and share of recent revenue per cluster.

    Clusters below ``min_group`` customers are masked, and so are the clusters
    :func:`cluster_tier_masks` hides with them (a lone hidden cluster would be the
    customer total minus the others). ``attrs["suppressed"]`` counts the small
    clusters, ``attrs["complementary"]`` those hidden with them.
    """
    f = seg.features
    g = f.groupby(seg.clusters)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "revenue_12m": g[FC.recent_spend].sum(),
            "avg_lifetime_spend": g[FC.total_spend].mean(),
        }
    )
    out = out.reindex(range(seg.model.n_clusters_)).fillna({"customers": 0, "revenue_12m": 0})
    out["customers"] = out["customers"].astype("int64")
    total_r = out["revenue_12m"].sum()
    out["share_customers"] = out["customers"] / max(len(f), 1)
    out["share_revenue"] = out["revenue_12m"] / total_r if total_r else np.nan
    out.insert(0, CLUSTER, [seg.cluster_names[k] for k in out.index])
    out = out.reset_index(drop=True)[
        [CLUSTER, "customers", "share_customers", "share_revenue", "avg_lifetime_spend"]
    ]
    hide, _ = cluster_tier_masks(seg.clusters, seg.tiers, seg.model.n_clusters_, min_group)
    return rfm.hide_rows(out, hide.to_numpy(), hide.attrs["primary"])


def cluster_profile(
    features: pd.DataFrame,
    labels: pd.Series,
    art_shares: pd.DataFrame | None = None,
    min_group: int = 10,
    tier: pd.Series | None = None,
) -> pd.DataFrame:
    """Mean of every profile feature per cluster (rows: clusters), small clusters masked.

    Parameters
    ----------
    features : pandas.DataFrame
    labels : pandas.Series
        Cluster number per customer.
    art_shares : pandas.DataFrame, optional
    min_group : int
    tier : pandas.Series, optional
        Ladder tier per customer: pass it (``seg.tiers``) so the clusters hidden here
        are the ones hidden in the cluster tables (:func:`cluster_tier_masks`).

    Returns
    -------
    pandas.DataFrame
        Indexed by cluster number; ``customers`` plus the columns of
        :data:`PROFILE_COLUMNS` and the artform shares. Clusters with fewer than
        ``min_group`` customers, and those hidden with them so that they cannot be
        worked out from the total, have every figure masked; in the others, shares and
        means that describe a small sub-group are masked (:func:`small_share_mask`).
    """
    cols = [c for c in PROFILE_COLUMNS if c in features]
    frame = features[cols].astype(float)
    if art_shares is not None and len(art_shares.columns):
        frame = frame.join(art_shares.reindex(features.index).fillna(0.0))
    g = frame.groupby(labels)
    out = g.mean()
    out.insert(0, "customers", g.size())
    n_k = int(max(out.index.max() + 1, 1)) if len(out) else 1
    hide, _ = cluster_tier_masks(labels, tier, n_k, min_group)
    masked = rfm.hide_rows(out, hide.reindex(out.index).to_numpy(), hide.attrs["primary"])
    small = small_share_mask(features, labels, min_group).reindex(masked.index)
    for col in small.columns:
        masked.loc[small[col].fillna(False).to_numpy(dtype=bool), col] = np.nan
    masked.index.name = labels.name or CLUSTER
    return masked


# Shares of customers (a count per cluster, and the rest) and means over the customers
# who answered or were emailed: small sub-groups inside a big cluster.
_COUNTED_SHARES = (FC.is_member, FC.is_donor)
_ANSWER_MEANS = (FC.latest_nps, FC.email_click_rate)


def small_share_mask(features: pd.DataFrame, keys: pd.Series, min_group: int) -> pd.DataFrame:
    """Which per-group shares and means describe fewer than ``min_group`` customers.

    "6% members" of a 50-customer cluster is 3 members: a share of customers is hidden
    when the customers it counts, or the rest of the group, are 1 to ``min_group - 1``
    people. A mean over those who answered (NPS) or received emails (click rate) is
    hidden when fewer than ``min_group`` customers are behind it.

    Parameters
    ----------
    features : pandas.DataFrame
    keys : pandas.Series
        Group (cluster or persona) of every customer, same index.
    min_group : int

    Returns
    -------
    pandas.DataFrame
        Indexed by group, one boolean column per checked feature present: True = hide.
    """
    g = features.groupby(keys)
    size = g.size()
    out: dict[str, pd.Series] = {}
    for col in _COUNTED_SHARES:
        if col in features:
            yes = g[col].sum().astype(float)
            no = size - yes
            out[col] = ((yes > 0) & (yes < min_group)) | ((no > 0) & (no < min_group))
    for col in _ANSWER_MEANS:
        if col in features:
            n = g[col].count()
            out[col] = (n > 0) & (n < min_group)
    return pd.DataFrame(out, index=size.index)


def _fmt(col: str, v: float, symbol: str) -> str:
    if pd.isna(v):
        return ""
    if col in _SHARES or col.startswith(ART_PREFIX):
        return f"{v:.0%}"
    if col in _MONEY:
        return f"{symbol}{v:,.0f}"
    if col == FC.avg_lead_days:
        return f"{v:.0f}"
    return f"{v:.1f}"


def profile_heatmap(
    features: pd.DataFrame,
    labels: pd.Series,
    art_shares: pd.DataFrame | None = None,
    min_group: int = 10,
    names: Mapping[int, str] | None = None,
    currency_symbol: str = "£",
    tier: pd.Series | None = None,
) -> Figure:
    """Cluster profiles: colour = above (red) or below (blue) the average customer.

    Each cell shows the cluster's mean; its colour is how many standard deviations the
    mean sits from the mean of all customers. Hidden clusters (see
    :func:`cluster_profile`, which ``tier`` is passed on to) are blank.
    """
    prof = cluster_profile(features, labels, art_shares, min_group, tier)
    prof = prof.drop(columns="customers")
    cols = list(prof.columns)
    allc = features[[c for c in cols if c in features]].astype(float)
    if art_shares is not None:
        allc = allc.join(art_shares.reindex(features.index).fillna(0.0))
    mean, std = allc.mean(), allc.std().replace(0, np.nan)
    z = ((prof - mean) / std).clip(-2.5, 2.5)
    annot = pd.DataFrame(
        {c: [_fmt(c, v, currency_symbol) for v in prof[c]] for c in cols}, index=prof.index
    )
    row_names = [
        PROFILE_LABELS.get(c, c[len(ART_PREFIX) :] + " (share of visits)")
        if c.startswith(ART_PREFIX)
        else PROFILE_LABELS.get(c, c)
        for c in cols
    ]
    names = dict(names or {k: f"Cluster {k + 1}" for k in prof.index})
    z.index = [names.get(k, str(k)) for k in prof.index]
    annot.index = z.index
    z_t, annot_t = z.T, annot.T
    z_t.index = row_names
    annot_t.index = row_names
    with warnings.catch_warnings():  # seaborn's centred colour map uses a deprecated call
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return charts.heatmap(
            z_t,
            title="What sets each cluster apart (colour: above or below the average customer)",
            xlabel="Cluster",
            ylabel="Feature",
            cmap=charts.DIVERGING,
            center=0.0,
            annot=annot_t,
        )


def clusters_by_tier(seg: Segmentation, min_group: int = 10) -> pd.DataFrame:
    """Customers per cluster (rows) and tier (columns).

    Cells below ``min_group`` customers are masked, and so are the cells
    :func:`cluster_tier_masks` hides with them: each cluster's size and each tier's
    size are shown elsewhere, so a lone hidden cell in a row or column could be
    worked out by subtraction. ``attrs["suppressed"]`` counts the small cells,
    ``attrs["complementary"]`` the others hidden.
    """
    labels = tiers.tier_labels(seg.config)
    k = seg.model.n_clusters_
    _, hide = cluster_tier_masks(seg.clusters, seg.tiers, k, min_group)
    n_primary = int(hide.attrs["primary"])
    counts = pd.crosstab(seg.clusters, seg.tiers.astype("string"))
    present = [t for t in tiers.ALL_TIERS if t in counts.columns]
    counts = counts.reindex(index=range(k), columns=present, fill_value=0)
    hide = hide.reindex(index=range(k), columns=present)
    masked = counts.astype("Int64").mask(hide.to_numpy())
    masked.index = [seg.cluster_names[i] for i in masked.index]
    masked.columns = [labels[t] for t in masked.columns]
    masked = masked.rename_axis(index=CLUSTER, columns=None).reset_index()
    masked.attrs["suppressed"] = n_primary
    masked.attrs["complementary"] = int(hide.to_numpy().sum()) - n_primary
    return masked


def privacy_text(min_group: int, *tables: pd.DataFrame, what: str = "groups") -> str:
    """One sentence on what small-group suppression did to ``tables``.

    Counts the groups or cells hidden because they held fewer than ``min_group``
    customers (``attrs["suppressed"]`` of each table), and those hidden with them so
    that they cannot be worked out from totals shown elsewhere
    (``attrs["complementary"]``), and the shares shown as – inside groups that are
    shown (``attrs["hidden_shares"]``), or says none needed hiding. ``what`` names them
    in the plural ("tiers", "cells").
    """
    n = sum(int(t.attrs.get("suppressed", 0)) for t in tables)
    extra = sum(int(t.attrs.get("complementary", 0)) for t in tables)
    shares = sum(int(t.attrs.get("hidden_shares", 0)) for t in tables)
    share_text = (
        f" {shares} share{'' if shares == 1 else 's'} or average{'' if shares == 1 else 's'} "
        f"that would describe fewer than {min_group} people (or give a hidden figure away) "
        f"{'is' if shares == 1 else 'are'} shown as –."
        if shares
        else ""
    )
    if not (n or extra) and shares:
        return f"*Privacy: all {what} shown here have at least {min_group} customers.{share_text}*"
    if n or extra:
        text = (
            f"*Privacy: {n} of the {what} above had fewer than {min_group} customers; "
            "their figures are hidden (shown as – or left blank) or merged, so that no "
            "figure can point at an individual."
        )
        if extra:
            text += (
                f" {extra} more {'is' if extra == 1 else 'are'} hidden with them, so that "
                "the hidden figures cannot be worked out by subtracting the figures shown "
                "from a total."
            )
        return text + share_text + "*"
    return (
        f"*Privacy: all {what} shown here have at least {min_group} customers, so nothing "
        "needed hiding.*"
    )


def privacy_note(min_group: int, *tables: pd.DataFrame, what: str = "groups") -> None:
    """Display :func:`privacy_text` in the notebook."""
    from IPython.display import Markdown, display

    display(Markdown(privacy_text(min_group, *tables, what=what)))
