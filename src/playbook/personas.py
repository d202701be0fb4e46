"""Personas: a readable portrait of each behavioural cluster (notebook 20).

A persona summarises one cluster (or, with ``personas.per_tier``, one cluster on one
rung of the ladder): how big it is and what it is worth, what its customers book, when
and how, how they engage, and which *moments* would suit them. Its name is generated
from the features that set it apart from the average customer ("Weekend musical
families"); a workshop can rename it or add notes in ``org.yaml``::

    personas:
      overrides:
        P1: {name: "Date-night drifters", notes: "Agreed with the box office, May 2026"}

Moment ideas come from :data:`MOMENT_IDEAS`, a small table keyed by persona trait and
EPIC element (elevation, insight, pride, connection). The moments module will grow a
registry of data triggers; this table only suggests where to start.

Every figure is an aggregate over at least ``min_group`` customers: smaller groups are
folded into one "Other (small groups)" row with masked figures and get no card.
Exports (:func:`export_personas`): ``personas.csv``, ``personas.html`` (one page of
cards) and ``persona_<id>.png`` per card; none holds a customer id.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from playbook import segments, tiers
from playbook.config import OrgConfig
from playbook.features import FC, settings
from playbook.privacy import OTHER
from playbook.segments import Segmentation

EPIC = ("elevation", "insight", "pride", "connection")
PERSONA_ID = "persona_id"


# ---------------------------------------------------------------------------
# Moment ideas by trait and EPIC element
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MomentIdea:
    """One suggested moment: the persona trait that calls for it, its EPIC element,
    the journey stage where it happens, and the idea in a sentence (``{artform}`` is
    filled in with the persona's favourite artform)."""

    trait: str
    element: str
    stage: str
    idea: str


MOMENT_IDEAS: tuple[MomentIdea, ...] = (
    MomentIdea(
        "first_timers",
        "connection",
        "post-visit",
        "A personal thank-you within a week of the first visit, with a 'second date' "
        "suggestion: a different show picked for them and a modest offer.",
    ),
    MomentIdea(
        "first_timers",
        "insight",
        "pre-visit",
        "A 'first time with us' email before the show: how the evening runs, where to "
        "eat nearby, when to arrive.",
    ),
    MomentIdea(
        "returners",
        "pride",
        "visit",
        "Notice a second visit to the same production: leave a short note from the "
        "director on the seat, with something that deepens the story.",
    ),
    MomentIdea(
        "lapsing",
        "connection",
        "return",
        "A 'we have missed you' note that names the last show they saw and one new "
        "show in the same spirit.",
    ),
    MomentIdea(
        "families",
        "elevation",
        "visit",
        "A family welcome at the door: activity sheets for the interval and a chance "
        "to wave to a performer after the show.",
    ),
    MomentIdea(
        "families",
        "pride",
        "post-visit",
        "A 'my first show' certificate or signed programme for each child.",
    ),
    MomentIdea(
        "groups",
        "connection",
        "booking",
        "Perks for the person who organises the group: a reserved meeting point and "
        "a thank-you addressed to them.",
    ),
    MomentIdea(
        "solo",
        "connection",
        "visit",
        "A pre-show meet-up for people coming on their own, hosted by a member of staff.",
    ),
    MomentIdea(
        "last_minute",
        "elevation",
        "visit",
        "When the house is not full, a surprise seat upgrade at the door.",
    ),
    MomentIdea(
        "planners",
        "insight",
        "research",
        "An early look at next season, with notes from the artistic team, before general sale.",
    ),
    MomentIdea(
        "frequent",
        "pride",
        "return",
        "Mark milestones: a handwritten card at the 10th or 25th visit and a small "
        "treat on the night.",
    ),
    MomentIdea(
        "subscribers",
        "pride",
        "post-visit",
        "An anniversary note counting the seasons and performances shared with us.",
    ),
    MomentIdea(
        "subscribers",
        "connection",
        "visit",
        "A subscribers' evening with the company: a look at a rehearsal and a drink with the cast.",
    ),
    MomentIdea(
        "supporters",
        "insight",
        "post-visit",
        "A behind-the-scenes briefing on the work their support made possible.",
    ),
    MomentIdea(
        "supporters",
        "connection",
        "visit",
        "A personal thank-you from the director or a performer at the interval.",
    ),
    MomentIdea(
        "price_sensitive",
        "elevation",
        "visit",
        "An unexpected extra on a return visit: a free programme or interval drink.",
    ),
    MomentIdea(
        "premium",
        "elevation",
        "visit",
        "Hospitality for best-seat bookers: a reserved interval table with their name on it.",
    ),
    MomentIdea(
        "artform_fans",
        "insight",
        "pre-visit",
        "A pre-show talk or a programme note for {artform} lovers, sent before the performance.",
    ),
    MomentIdea(
        "explorers",
        "insight",
        "booking",
        "A 'you saw this, you might love that' suggestion that crosses artforms.",
    ),
    MomentIdea(
        "promoters",
        "connection",
        "post-visit",
        "A bring-a-friend offer for people who said they would recommend us.",
    ),
    MomentIdea(
        "quiet_inbox",
        "insight",
        "pre-visit",
        "Swap the newsletter for one short, useful pre-show email: timings, travel, "
        "what to look out for.",
    ),
    MomentIdea(
        "everyone",
        "connection",
        "post-visit",
        "A thank-you the morning after, signed by a real person, with one photo from the night.",
    ),
)


def _trait_strengths(p: Mapping[str, float], base: Mapping[str, float]) -> dict[str, float]:
    """How strongly each trait describes a persona (0 = not at all), from its averages."""

    def rel(col: str) -> float:
        b = base.get(col, np.nan)
        v = p.get(col, np.nan)
        return float(v / b) if b and not np.isnan(b) and not np.isnan(v) else 0.0

    def val(col: str, default: float = 0.0) -> float:
        v = p.get(col, np.nan)
        return default if v is None or np.isnan(v) else float(v)

    party, lead = val(FC.avg_party_size, 2.0), val(FC.avg_lead_days, 14.0)
    top_art = val("top_artform_share")
    family = val("art_Family") + val("art_family")
    families = party >= 3 and (val(FC.matinee_share) >= 0.4 or family >= 0.3)
    s = {
        "first_timers": val("tier_first_timer") if val("tier_first_timer") >= 0.4 else 0.0,
        "returners": val("tier_returner") * 2 if val("tier_returner") >= 0.25 else 0.0,
        "lapsing": val("tier_lapsed") if val("tier_lapsed") >= 0.35 else 0.0,
        "families": party / 3 if families else 0.0,
        "groups": party / 3 if party >= 3 and not families else 0.0,
        "solo": 1.5 / max(party, 0.1) - 0.5 if party <= 1.5 else 0.0,
        "last_minute": 1.0 if lead <= 3 else 0.0,
        "planners": lead / 40 if lead >= 40 else 0.0,
        "frequent": rel(FC.frequency) / 2 if rel(FC.frequency) >= 2 else 0.0,
        "subscribers": val(FC.subscription_share) * 3
        if val(FC.subscription_share) >= 0.25
        else 0.0,
        "supporters": (val(FC.is_member) + val(FC.is_donor)) * 2
        if val(FC.is_member) + val(FC.is_donor) >= 0.3
        else 0.0,
        "price_sensitive": val(FC.concession_share) * 1.5
        if val(FC.concession_share) >= 0.4
        else 0.0,
        "premium": val(FC.price_index, 1.0) if val(FC.price_index, 1.0) >= 1.15 else 0.0,
        "artform_fans": top_art if top_art >= 0.5 and not families else 0.0,
        "explorers": 0.5 if 0 < top_art < 0.35 else 0.0,
        "promoters": val("promoter_share") if val("promoter_share") >= 0.55 else 0.0,
        "quiet_inbox": 0.4 if 0 < rel(FC.email_click_rate) < 0.6 else 0.0,
        "everyone": 0.01,
    }
    return s


def suggest_moments(
    p: Mapping[str, float], base: Mapping[str, float], max_moments: int = 4
) -> list[MomentIdea]:
    """Moment ideas for a persona: strongest traits first, one per EPIC element first.

    Parameters
    ----------
    p, base : mapping
        The persona's averages and the averages of all customers (see
        :func:`persona_profiles`).
    max_moments : int
        How many ideas to return.
    """
    strengths = _trait_strengths(p, base)
    ranked = sorted(
        (m for m in MOMENT_IDEAS if strengths.get(m.trait, 0) > 0),
        key=lambda m: (-strengths[m.trait], MOMENT_IDEAS.index(m)),
    )
    chosen: list[MomentIdea] = []
    for m in ranked:  # first pass: cover different EPIC elements
        if m.element not in {c.element for c in chosen} and len(chosen) < max_moments:
            chosen.append(m)
    for m in ranked:  # second pass: fill up
        if m not in chosen and len(chosen) < max_moments:
            chosen.append(m)
    artform = str(p.get("top_artform") or "the artform").lower()
    return [MomentIdea(m.trait, m.element, m.stage, m.idea.format(artform=artform)) for m in chosen]


# ---------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------
_MEAN_COLS = (
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
    FC.discount_share,
    FC.online_share,
    FC.phone_share,
    FC.box_office_share,
    FC.is_member,
    FC.is_donor,
    FC.is_subscriber,
    FC.email_click_rate,
    FC.latest_nps,
    FC.total_spend,
    FC.artform_breadth,
)


def _group_keys(seg: Segmentation, per_tier: bool) -> pd.Series:
    names = {k: f"P{k + 1}" for k in range(seg.model.n_clusters_)}
    keys = seg.clusters.map(names)
    if per_tier:
        keys = keys + "-" + seg.tiers.astype("string")
    return keys.rename(PERSONA_ID)


def _profile_frame(seg: Segmentation) -> pd.DataFrame:
    f = seg.features
    frame = f[list(_MEAN_COLS)].astype(float)
    frame["promoter"] = np.where(f[FC.latest_nps].isna(), np.nan, f[FC.latest_nps] >= 9)
    frame = frame.join(seg.art_shares.reindex(f.index).fillna(0.0))
    for t in tiers.ALL_TIERS:
        frame[f"tier_{t}"] = (seg.tiers == t).astype(float).to_numpy()
    frame["recent_spend"] = f[FC.recent_spend].astype(float)
    return frame


def persona_profiles(seg: Segmentation, per_tier: bool = False) -> tuple[pd.DataFrame, pd.Series]:
    """Averages per persona group, and the same averages over all customers.

    Returns
    -------
    profiles : pandas.DataFrame
        Indexed by persona id (``P1`` … largest cluster first; ``P1-loyal`` … with
        ``per_tier``): ``customers``, ``revenue_12m`` and the mean of every feature.
    base : pandas.Series
        The same means over all customers.
    """
    frame = _profile_frame(seg)
    keys = _group_keys(seg, per_tier)
    g = frame.groupby(keys)
    prof = g.mean()
    prof = prof.rename(columns={"promoter": "promoter_share"})
    prof.insert(0, "customers", g.size())
    prof.insert(1, "revenue_12m", g["recent_spend"].sum())
    prof["_cluster"] = [int(str(k).split("-")[0][1:]) for k in prof.index]
    prof = prof.sort_values(["_cluster", "customers"], ascending=[True, False])
    prof = prof.drop(columns=["_cluster", "recent_spend"])
    base = frame.mean().rename({"promoter": "promoter_share"})
    return prof, base


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------
def _artform_word(name: str | None) -> str:
    if not name:
        return ""
    return str(name).strip().lower()


def generate_name(p: Mapping[str, Any], base: Mapping[str, Any]) -> str:
    """A descriptive name from a persona's most distinguishing traits.

    Built as *when/how* + *what* + *who*: e.g. "Weekend musical families",
    "Last-minute comedy solo-goers", "Forward-planning classical music subscribers".
    """

    def val(col: str, default: float = 0.0) -> float:
        v = p.get(col, np.nan)
        return default if v is None or pd.isna(v) else float(v)

    party, lead = val(FC.avg_party_size, 2.0), val(FC.avg_lead_days, 14.0)
    freq_rel = val(FC.frequency) / max(float(base.get(FC.frequency, 1.0) or 1.0), 1e-9)
    top_art, top_share = p.get("top_artform"), val("top_artform_share")
    art = _artform_word(top_art) if top_share >= 0.4 else "all-round"

    # who
    family_art = art in ("family", "children", "children's")
    if val(FC.is_donor) + val(FC.is_member) >= 0.8:
        who = "patrons"
    elif val(FC.subscription_share) >= 0.25:
        who = "subscribers"
    elif party >= 3 and (val(FC.matinee_share) >= 0.4 or family_art):
        who = "families"
    elif party >= 3:
        who = "groups"
    elif party <= 1.5:
        who = "solo-goers"
    elif freq_rel >= 2:
        who = "regulars"
    elif 1.6 <= party <= 2.6:
        who = "couples"
    else:
        who = "audiences"
    # when / how
    if val(FC.matinee_share) >= 0.5:
        when = "Matinee" if who != "families" or val(FC.weekend_share) < 0.6 else "Weekend"
    elif val(FC.weekend_share) >= 0.6:
        when = "Weekend"
    elif lead <= 3:
        when = "Last-minute"
    elif lead >= 40:
        when = "Forward-planning"
    elif val(FC.price_index, 1.0) >= 1.15:
        when = "Best-seat"
    elif val(FC.concession_share) >= 0.4:
        when = "Concession"
    elif freq_rel <= 0.8:
        when = "Occasional"
    elif freq_rel >= 2:
        when = "Frequent"
    else:
        when = "Everyday"
    if family_art and who == "families":
        art = ""
    words = [when, art, who]
    return " ".join(w for w in words if w)


# ---------------------------------------------------------------------------
# The persona table
# ---------------------------------------------------------------------------
def persona_settings(cfg: OrgConfig | None = None) -> dict[str, Any]:
    """The ``personas`` settings in force."""
    return settings(cfg, "personas")


def _top_artforms(row: pd.Series, n: int = 3) -> list[tuple[str, float]]:
    arts = {c[4:]: float(v) for c, v in row.items() if str(c).startswith("art_") and v > 0}
    return sorted(arts.items(), key=lambda kv: -kv[1])[:n]


def _pct(v: float) -> str:
    return "–" if pd.isna(v) else f"{v:.0%}"


def _lead_text(days: float) -> str:
    if pd.isna(days):
        return "booking lead time unknown"
    if days < 1.5:
        return "books on the day or the day before"
    if days < 10:
        return f"books about {days:.0f} days ahead"
    if days < 60:
        return f"books about {days / 7:.0f} weeks ahead"
    return f"books about {days / 30.4:.0f} months ahead"


def _describe(
    row: pd.Series,
    base: pd.Series,
    labels: Mapping[str, str],
    symbol: str,
    hidden_tiers: frozenset[str] = frozenset(),
) -> dict:
    arts = _top_artforms(row)
    artforms = ", ".join(f"{a} {_pct(s)}" for a, s in arts) or "artform not recorded"
    party = row.get(FC.avg_party_size, np.nan)
    when = (
        f"{_lead_text(row.get(FC.avg_lead_days, np.nan))}; "
        f"{_pct(row.get(FC.weekend_share, np.nan))} of visits at weekends, "
        f"{_pct(row.get(FC.matinee_share, np.nan))} matinees"
    )
    channels = {
        "online": row.get(FC.online_share, np.nan),
        "by phone": row.get(FC.phone_share, np.nan),
        "at the box office": row.get(FC.box_office_share, np.nan),
    }
    top_channel = max(channels, key=lambda k: -1 if pd.isna(channels[k]) else channels[k])
    how = (
        f"{_pct(channels[top_channel])} of tickets bought {top_channel}; "
        f"{'–' if pd.isna(party) else f'{party:.1f}'} tickets per visit"
    )
    price = (
        f"{symbol}{row.get(FC.avg_ticket_price, np.nan):,.0f} per ticket on average; "
        f"seats at {row.get(FC.price_index, np.nan):.2f}× the typical price; "
        f"{_pct(row.get(FC.concession_share, np.nan))} concessions"
    )
    nps = row.get(FC.latest_nps, np.nan)
    engagement = (
        f"email click rate {_pct(row.get(FC.email_click_rate, np.nan))} "
        f"(all customers {_pct(base.get(FC.email_click_rate, np.nan))}); "
        + (
            "too few NPS answers to show a score"
            if pd.isna(nps)
            else f"average NPS score {nps:.1f} of 10"
        )
        + f"; {_pct(row.get(FC.is_member, np.nan))} members, "
        f"{_pct(row.get(FC.is_donor, np.nan))} donors"
    )
    tier_shares = {t: row.get(f"tier_{t}", 0.0) for t in tiers.ALL_TIERS}
    top_tiers = sorted(tier_shares.items(), key=lambda kv: -kv[1])[:2]
    # a share of a hidden cluster × tier cell would give the hidden count away
    ladder = ", ".join(
        f"{labels[t]} {'–' if t in hidden_tiers else _pct(s)}" for t, s in top_tiers if s > 0
    )
    return {
        "artforms": artforms,
        "when": when,
        "how": how,
        "price": price,
        "engagement": engagement,
        "ladder": ladder,
        "top_artform": arts[0][0] if arts else None,
        "top_artform_share": arts[0][1] if arts else 0.0,
    }


def build_personas(
    seg: Segmentation,
    min_group: int = 10,
    cfg: OrgConfig | None = None,
    currency_symbol: str = "£",
) -> pd.DataFrame:
    """One persona per cluster (or per cluster and tier), ready for cards and export.

    Parameters
    ----------
    seg : Segmentation
        From :func:`playbook.segments.segment_customers`.
    min_group : int
        Groups with fewer customers are folded into one "Other (small groups)" row,
        whose figures are masked and which gets no card; so are the groups hidden with
        them in the segmentation tables (:func:`playbook.segments.cluster_tier_masks`),
        else a folded group is the customer total minus the others. Tier shares
        (``ladder``) of hidden cluster × tier cells show as "–".
    cfg : OrgConfig, optional
        Settings (``personas`` section: ``per_tier``, ``max_moments``, ``overrides``).
    currency_symbol : str
        For the price description.

    Returns
    -------
    pandas.DataFrame
        One row per persona: ``persona_id``, ``name``, ``generated_name``,
        ``customers``, ``share_customers``, ``share_revenue``, ``avg_visits``,
        ``avg_lifetime_spend``, descriptions (``ladder``, ``artforms``, ``when``,
        ``how``, ``price``, ``engagement``), ``moments`` (list of dicts with
        ``element``, ``stage``, ``idea``), ``notes``, and the numeric averages.
        ``attrs["suppressed"]`` counts the folded groups below ``min_group``,
        ``attrs["complementary"]`` those folded with them, and
        ``attrs["suppressed_customers"]`` the customers in all of them.
    """
    cfg = cfg if cfg is not None else seg.config
    s = persona_settings(cfg)
    prof, base = persona_profiles(seg, bool(s.get("per_tier", False)))
    labels = tiers.tier_labels(cfg)
    total_c = max(int(prof["customers"].sum()), 1)
    total_r = float(prof["revenue_12m"].sum())
    small, hidden_cells, n_primary = _hidden_personas(seg, prof.index, min_group)
    keys = _group_keys(seg, bool(s.get("per_tier", False)))
    shown = prof.copy()  # what cards and exports show: small sub-group shares masked
    sub = segments.small_share_mask(seg.features, keys, min_group).reindex(prof.index)
    for col in sub.columns:
        shown.loc[sub[col].fillna(False).to_numpy(dtype=bool), col] = np.nan
    if FC.latest_nps in sub.columns:
        answers = seg.features[FC.latest_nps].notna().groupby(keys).sum()
        promoters = (seg.features[FC.latest_nps] >= 9).groupby(keys).sum()
        rest = answers - promoters
        small_p = ((promoters > 0) & (promoters < min_group)) | ((rest > 0) & (rest < min_group))
        hide_p = small_p.reindex(prof.index).fillna(False).to_numpy(dtype=bool)
        shown.loc[
            hide_p | sub[FC.latest_nps].fillna(False).to_numpy(dtype=bool), "promoter_share"
        ] = np.nan
    rows = []
    for pid, raw in prof.loc[~small].iterrows():  # one iteration per persona, not customer
        hidden_tiers = frozenset(hidden_cells.get(str(pid).split("-")[0], ()))
        row = shown.loc[pid]
        d = _describe(row, base, labels, currency_symbol, hidden_tiers)
        p = {**raw.to_dict(), **d}  # names and moment ideas read the unmasked averages
        name = generate_name(p, base)
        if "-" in str(pid):
            name = f"{name} ({labels[str(pid).split('-', 1)[1]]})"
        moments = suggest_moments(p, base, int(s.get("max_moments", 4)))
        rows.append(
            {
                PERSONA_ID: pid,
                "name": name,
                "generated_name": name,
                "customers": int(row["customers"]),
                "share_customers": row["customers"] / total_c,
                "share_revenue": row["revenue_12m"] / total_r if total_r else np.nan,
                "avg_visits": row[FC.frequency],
                "avg_lifetime_spend": row[FC.total_spend],
                "ladder": d["ladder"],
                "artforms": d["artforms"],
                "when": d["when"],
                "how": d["how"],
                "price": d["price"],
                "engagement": d["engagement"],
                "moments": [
                    {"element": m.element, "stage": m.stage, "idea": m.idea} for m in moments
                ],
                "notes": "",
                "avg_lead_days": row[FC.avg_lead_days],
                "avg_party_size": row[FC.avg_party_size],
                "weekend_share": row[FC.weekend_share],
                "matinee_share": row[FC.matinee_share],
                "online_share": row[FC.online_share],
                "concession_share": row[FC.concession_share],
                "price_index": row[FC.price_index],
                "email_click_rate": row[FC.email_click_rate],
                "avg_nps": row[FC.latest_nps],
                "promoter_share": row["promoter_share"],
                "member_share": row[FC.is_member],
                "donor_share": row[FC.is_donor],
            }
        )
    out = pd.DataFrame(rows)
    out = _unique_names(out)
    out = apply_overrides(out, s.get("overrides") or {})
    n_small = int(small.sum())
    if n_small:
        other = {c: np.nan for c in out.columns}
        other.update(
            {
                PERSONA_ID: "other",
                "name": OTHER,
                "generated_name": OTHER,
                "customers": np.nan,
                "moments": [],
                "notes": (
                    f"{n_small} group(s) merged and hidden: {n_primary} below {min_group} "
                    "customers, the others so that those cannot be worked out from totals"
                    if n_small > n_primary
                    else f"{n_small} group(s) below {min_group} customers, merged and hidden"
                ),
            }
        )
        for c in ("ladder", "artforms", "when", "how", "price", "engagement"):
            other[c] = "–"
        out = pd.concat([out, pd.DataFrame([other])], ignore_index=True)
    shown_ids = list(prof.index[~small.to_numpy()])
    shown_cols = [c for c in (*sub.columns, "promoter_share") if c in shown.columns]
    n_sub = int(
        (shown.loc[shown_ids, shown_cols].isna() & prof.loc[shown_ids, shown_cols].notna())
        .to_numpy()
        .sum()
    )
    ladders = out.loc[out[PERSONA_ID].isin(shown_ids), "ladder"] if shown_ids else []
    n_ladder = sum(str(x).count(" –") for x in ladders)
    out.attrs["hidden_shares"] = n_ladder + n_sub
    out.attrs["suppressed"] = n_primary
    out.attrs["complementary"] = n_small - n_primary
    out.attrs["suppressed_customers"] = int(prof.loc[small, "customers"].sum())
    return out


def _hidden_personas(
    seg: Segmentation, ids: pd.Index, min_group: int
) -> tuple[pd.Series, dict[str, set[str]], int]:
    """Which persona groups to fold away, and which tier shares to hide in the others.

    Uses the same hidden clusters and cluster × tier cells as the segmentation tables
    (:func:`playbook.segments.cluster_tier_masks`), so a figure hidden there is not
    given away here. Ids are ``P<k>`` (a cluster) or ``P<k>-<tier>`` (a cell).

    Returns
    -------
    small : pandas.Series
        Indexed like ``ids``: True = fold into "Other (small groups)".
    hidden_cells : dict
        Persona ``P<k>`` → tiers whose share must not be shown.
    n_primary : int
        How many of the folded groups are below ``min_group`` themselves.
    """
    k = int(seg.model.n_clusters_)
    hide_k, hide_cells = segments.cluster_tier_masks(seg.clusters, seg.tiers, k, min_group)
    cells = {f"P{i + 1}": {t for t in hide_cells.columns if hide_cells.loc[i, t]} for i in range(k)}
    flags, primary = [], 0
    counts = pd.crosstab(seg.clusters, seg.tiers.astype("string"))
    sizes = seg.clusters.value_counts()
    for pid in ids:  # one iteration per persona group
        cluster_id, _, tier = str(pid).partition("-")
        i = int(cluster_id[1:]) - 1
        if tier:
            n = int(counts.loc[i, tier]) if i in counts.index and tier in counts else 0
            flags.append(tier in cells[cluster_id])
        else:
            n = int(sizes.get(i, 0))
            flags.append(bool(hide_k.loc[i]))
        primary += int(0 < n < min_group)
    return pd.Series(flags, index=ids, dtype=bool), cells, primary


def _unique_names(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    seen: dict[str, int] = {}
    names = []
    for n in df["name"]:
        seen[n] = seen.get(n, 0) + 1
        names.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    df = df.copy()
    df["name"] = names
    df["generated_name"] = names
    return df


def apply_overrides(personas: pd.DataFrame, overrides: Mapping[str, Any]) -> pd.DataFrame:
    """Rename personas or add notes, keyed by persona id or generated name."""
    out = personas.copy()
    for key, spec in overrides.items():
        if not isinstance(spec, Mapping):
            spec = {"name": str(spec)}
        hit = (out[PERSONA_ID].astype(str) == str(key)) | (
            out["generated_name"].astype(str) == str(key)
        )
        if "name" in spec:
            out.loc[hit, "name"] = str(spec["name"])
        if "notes" in spec:
            out.loc[hit, "notes"] = str(spec["notes"])
    return out


def persona_table(personas: pd.DataFrame) -> pd.DataFrame:
    """The persona overview for reading aloud: size, value and the headline habits."""
    cols = [
        "name",
        "customers",
        "share_customers",
        "share_revenue",
        "avg_visits",
        "avg_lifetime_spend",
        "ladder",
        "artforms",
    ]
    out = personas[cols].copy()
    out["customers"] = out["customers"].astype("Int64")
    return out


def moments_table(personas: pd.DataFrame) -> pd.DataFrame:
    """Suggested moments, one row per persona and idea."""
    rows = [
        {"persona": r["name"], "element": m["element"], "stage": m["stage"], "idea": m["idea"]}
        for _, r in personas.iterrows()
        for m in (r["moments"] if isinstance(r["moments"], list) else [])
    ]
    return pd.DataFrame(rows, columns=["persona", "element", "stage", "idea"])


# ---------------------------------------------------------------------------
# Cards and exports
# ---------------------------------------------------------------------------
# The cards are shown inside a notebook's output area, whose page CSS styles bare
# elements (JupyterLab: ".jp-OutputArea-output dt {float:left; width:20%}" and the
# matching dd rule). So the card uses no dl/dt/dd, and every element it styles gets a
# class of its own, scoped under .pb-card with an explicit float, width and margin.
_CARD_CSS = """
.pb-cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:16px;
font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222}
.pb-cards .pb-card{border:1px solid #d0d7de;border-top:6px solid #0072B2;border-radius:8px;
padding:14px 16px;background:#fff;font-size:15px;line-height:1.4;text-align:left}
.pb-cards .pb-card *{float:none;box-sizing:border-box}
.pb-card h3.pb-name{margin:0 0 4px 0;padding:0;font-size:20px}
.pb-card .pb-id{color:#666;font-size:13px}
.pb-card .pb-kpis{display:flex;gap:14px;margin:8px 0;font-size:14px}
.pb-card .pb-kpis b{display:block;font-size:20px;color:#0072B2}
.pb-card .pb-field{display:block;float:none;width:auto;margin:0;padding:0}
.pb-card .pb-label{display:block;float:none;width:auto;font-weight:600;margin:6px 0 0 0;
padding:0}
.pb-card .pb-value{display:block;float:none;width:auto;margin:0;padding:0}
.pb-card ul.pb-moments{display:block;float:none;width:auto;margin:4px 0 0 18px;padding:0;
list-style:disc}
.pb-card ul.pb-moments li{display:list-item;float:none;width:auto;margin:2px 0;padding:0}
.pb-card .pb-el{font-variant:small-caps;color:#D55E00}
.pb-card .pb-notes{background:#f4f7fb;padding:6px 8px;margin-top:8px;border-radius:4px}
"""

_FIELDS = (
    ("ladder", "Where they sit on the ladder"),
    ("artforms", "What they book"),
    ("when", "When"),
    ("how", "How"),
    ("price", "Price"),
    ("engagement", "How they engage"),
)


def _card_html(row: pd.Series, currency_symbol: str) -> str:
    e = html.escape
    spend = row["avg_lifetime_spend"]
    kpis = (
        f"<div><b>{int(row['customers']):,}</b>customers</div>"
        f"<div><b>{_pct(row['share_customers'])}</b>of customers</div>"
        f"<div><b>{_pct(row['share_revenue'])}</b>of revenue (12 months)</div>"
        f"<div><b>{currency_symbol}{spend:,.0f}</b>lifetime spend</div>"
    )
    fields = "".join(
        f"<div class='pb-field'><div class='pb-label'>{e(label)}</div>"
        f"<div class='pb-value'>{e(str(row[key]))}</div></div>"
        for key, label in _FIELDS
    )
    moments = "".join(
        f"<li><span class='pb-el'>{e(m['element'])}</span> ({e(m['stage'])}): {e(m['idea'])}</li>"
        for m in row["moments"]
    )
    notes = f"<div class='pb-notes'>{e(str(row['notes']))}</div>" if row["notes"] else ""
    return (
        f"<div class='pb-card'><div class='pb-id'>{e(str(row[PERSONA_ID]))}</div>"
        f"<h3 class='pb-name'>{e(str(row['name']))}</h3><div class='pb-kpis'>{kpis}</div>"
        f"{fields}<div class='pb-field'><div class='pb-label'>Moments that would suit them"
        f"</div><ul class='pb-moments'>{moments}</ul></div>{notes}</div>"
    )


def cards_html(personas: pd.DataFrame, currency_symbol: str = "£", title: str = "") -> str:
    """The persona cards as an HTML fragment (style included)."""
    cards = [
        _card_html(r, currency_symbol)
        for _, r in personas.iterrows()
        if r[PERSONA_ID] != "other" and pd.notna(r["customers"])
    ]
    heading = f"<h2>{html.escape(title)}</h2>" if title else ""
    note = ""
    suppressed = int(personas.attrs.get("suppressed", 0))
    extra = int(personas.attrs.get("complementary", 0))
    if suppressed or extra:
        note = (
            f"<p><em>{suppressed} small group(s) with fewer customers than the privacy "
            "threshold are merged and have no card"
            + (
                f"; {extra} more group(s) are merged with them so that their figures "
                "cannot be worked out from the totals."
                if extra
                else "."
            )
            + "</em></p>"
        )
    return f"<style>{_CARD_CSS}</style>{heading}{note}<div class='pb-cards'>{''.join(cards)}</div>"


def card_figure(row: pd.Series, currency_symbol: str = "£") -> Figure:
    """One persona card drawn as a figure (for the PNG export)."""
    import textwrap

    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(7.5, 9.5), layout="none")
    fig.patch.set_facecolor("white")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    ax.add_patch(plt.Rectangle((0, 0.965), 1, 0.035, color="#0072B2", transform=ax.transAxes))
    y = 0.93

    def write(text: str, size: float = 11, weight: str = "normal", colour: str = "#222") -> None:
        nonlocal y
        for line in textwrap.wrap(text, 78 if size <= 11 else 50) or [""]:
            ax.text(0.05, y, line, fontsize=size, weight=weight, color=colour, va="top")
            y -= 0.026 * size / 11
        y -= 0.006

    write(str(row[PERSONA_ID]), 10, colour="#666")
    write(str(row["name"]), 18, "bold")
    write(
        f"{int(row['customers']):,} customers · {_pct(row['share_customers'])} of customers · "
        f"{_pct(row['share_revenue'])} of revenue (12 months) · "
        f"{currency_symbol}{row['avg_lifetime_spend']:,.0f} lifetime spend",
        11,
        colour="#0072B2",
    )
    for key, label in _FIELDS:
        write(label, 11, "bold")
        write(str(row[key]))
    write("Moments that would suit them", 11, "bold")
    for m in row["moments"]:
        write(f"• {m['element'].upper()} ({m['stage']}): {m['idea']}", 10)
    if row["notes"]:
        write("Notes: " + str(row["notes"]), 10, colour="#444")
    return fig


def export_personas(
    personas: pd.DataFrame,
    output_dir: str | Path,
    currency_symbol: str = "£",
    org_name: str = "",
) -> dict[str, Path]:
    """Write ``personas.csv``, ``personas.html`` and one ``persona_<id>.png`` per card.

    Only aggregates are written (no customer ids, no individual values).

    Returns
    -------
    dict
        File kind → path (``csv``, ``html``, and ``png:<id>`` per card).
    """
    import matplotlib.pyplot as plt

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    flat = personas.copy()
    flat["moments"] = [
        " | ".join(f"{m['element']} ({m['stage']}): {m['idea']}" for m in ms)
        if isinstance(ms, list)
        else ""
        for ms in flat["moments"]
    ]
    paths["csv"] = out / "personas.csv"
    flat.to_csv(paths["csv"], index=False)
    title = f"Personas — {org_name}" if org_name else "Personas"
    doc = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body style='margin:2rem'>"
        f"<h1 style='font-family:system-ui,sans-serif'>{html.escape(title)}</h1>"
        f"{cards_html(personas, currency_symbol)}</body></html>\n"
    )
    paths["html"] = out / "personas.html"
    paths["html"].write_text(doc, encoding="utf-8")
    for _, row in personas.iterrows():
        if row[PERSONA_ID] == "other" or pd.isna(row["customers"]):
            continue
        fig = card_figure(row, currency_symbol)
        path = out / f"persona_{row[PERSONA_ID]}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths[f"png:{row[PERSONA_ID]}"] = path
    return paths


def export_list(paths: Mapping[str, Path]) -> pd.DataFrame:
    """The exported files (names only) and what each holds, for the notebook."""
    what = {"csv": "persona table (one row per persona)", "html": "all persona cards, one page"}
    rows = [
        {"file": Path(p).name, "contents": what.get(k, f"card of persona {k.split(':', 1)[-1]}")}
        for k, p in paths.items()
    ]
    return pd.DataFrame(rows, columns=["file", "contents"])


def show_cards(personas: pd.DataFrame, currency_symbol: str = "£") -> None:
    """Display the cards in a notebook."""
    from IPython.display import HTML, display

    display(HTML(cards_html(personas, currency_symbol)))


def persona_of_customers(seg: Segmentation, cfg: OrgConfig | None = None) -> pd.Series:
    """Persona id of every customer (for the moments module; never exported)."""
    s = persona_settings(cfg if cfg is not None else seg.config)
    return _group_keys(seg, bool(s.get("per_tier", False)))
