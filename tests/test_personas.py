"""Personas: names, moment ideas, small-group suppression, exports without customer data,
and notebooks 10 and 20 rendered on a small generated organisation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_tiers import make_cfg

from playbook import personas, segments, tiers
from playbook.config import load_org
from playbook.features import FC, FEATURE_COLUMNS, default_as_of
from playbook.privacy import OTHER
from playbook.render import render_season
from playbook.segments import BehaviourClusters, Segmentation
from playbook.tables import load_tables

BASE = {
    FC.frequency: 2.0,
    FC.avg_party_size: 2.0,
    FC.avg_lead_days: 14.0,
    FC.weekend_share: 0.3,
    FC.matinee_share: 0.1,
    FC.email_click_rate: 0.1,
}


@pytest.mark.parametrize(
    "traits, name",
    [
        (
            {
                FC.avg_party_size: 3.8,
                FC.weekend_share: 0.9,
                FC.matinee_share: 0.9,
                "top_artform": "Musical",
                "top_artform_share": 0.6,
            },
            "Weekend musical families",
        ),
        (
            {
                FC.avg_party_size: 1.1,
                FC.avg_lead_days: 0.8,
                "top_artform": "Comedy",
                "top_artform_share": 0.5,
            },
            "Last-minute comedy solo-goers",
        ),
        (
            {
                FC.avg_lead_days: 90.0,
                FC.subscription_share: 0.6,
                "top_artform": "Classical Music",
                "top_artform_share": 0.9,
            },
            "Forward-planning classical music subscribers",
        ),
        (
            {FC.frequency: 1.1, "top_artform": "Theatre", "top_artform_share": 0.2},
            "Occasional all-round couples",
        ),
    ],
)
def test_generated_names(traits: dict, name: str) -> None:
    assert personas.generate_name({**BASE, **traits}, BASE) == name


def test_moments_cover_epic_elements() -> None:
    p = {
        **BASE,
        FC.avg_party_size: 3.8,
        FC.matinee_share: 0.9,
        "art_Family": 0.7,
        "tier_first_timer": 0.6,
        FC.concession_share: 0.5,
    }
    ideas = personas.suggest_moments(p, BASE, max_moments=4)
    assert len(ideas) == 4
    assert {m.element for m in ideas} == set(personas.EPIC)
    assert {m.trait for m in ideas} >= {"families", "first_timers"}
    assert all(m.element in personas.EPIC for m in personas.MOMENT_IDEAS)


def hand_segmentation(sizes: dict[int, int]) -> Segmentation:
    """A segmentation with known clusters: cluster k has sizes[k] customers."""
    rng = np.random.default_rng(0)
    labels = np.concatenate([[k] * n for k, n in sizes.items()])
    n = len(labels)
    ids = pd.Index([f"C{i:05d}" for i in range(n)], name=FC.customer_id)
    f = pd.DataFrame(index=ids)
    for col in FEATURE_COLUMNS:
        f[col] = rng.uniform(0, 1, n)
    f[FC.avg_party_size] = np.where(labels == 0, 3.5, 1.1)
    f[FC.avg_lead_days] = np.where(labels == 0, 20.0, 1.0)
    f[FC.matinee_share] = np.where(labels == 0, 0.9, 0.0)
    f[FC.weekend_share] = np.where(labels == 0, 0.9, 0.2)
    f[FC.frequency] = 1 + (labels == 1) * 3
    f[FC.subscription_share] = 0.0
    f[FC.concession_share] = 0.0
    f[FC.price_index] = 1.0
    f[FC.recent_spend] = 10.0 * (1 + labels)
    f[FC.total_spend] = 30.0
    for col in (FC.is_member, FC.is_donor, FC.is_subscriber):
        f[col] = False
    arts = pd.DataFrame(
        {"art_Family": (labels == 0) * 0.8, "art_Comedy": (labels != 0) * 0.7}, index=ids
    )
    tier = pd.Series(
        pd.Categorical(["first_timer"] * n, dtype=tiers.tier_dtype()), index=ids, name="tier"
    )
    model = BehaviourClusters()
    model.n_clusters_ = len(sizes)
    clusters = pd.Series(labels, index=ids, name="cluster")
    return Segmentation(
        f, arts, tier, pd.DataFrame(index=ids), f, model, clusters, pd.Timestamp("2025-08-31")
    )


def test_build_personas_and_suppression() -> None:
    seg = hand_segmentation({0: 40, 1: 25, 2: 4, 3: 12})
    p = personas.build_personas(seg, min_group=10)
    # P3 (4 customers) is folded, and P4 (12) with it: else P3 = all minus the rest
    assert list(p[personas.PERSONA_ID]) == ["P1", "P2", "other"]
    assert p.loc[0, "name"] == "Weekend families"
    assert p.loc[1, "name"] == "Last-minute comedy solo-goers"
    assert p.loc[0, "customers"] == 40
    assert p.loc[0, "share_customers"] == pytest.approx(40 / 81)
    other = p.iloc[-1]
    assert other["name"] == OTHER and pd.isna(other["customers"])
    assert pd.isna(other["share_revenue"]) and other["moments"] == []
    assert p.attrs["suppressed"] == 1 and p.attrs["complementary"] == 1
    assert p.attrs["suppressed_customers"] == 16
    html = personas.cards_html(p)
    assert html.count("class='pb-card'") == 2  # no card for the merged small groups
    assert "merged" in html


def test_a_lone_small_persona_is_not_left_alone() -> None:
    seg = hand_segmentation({0: 40, 1: 25, 2: 4})
    p = personas.build_personas(seg, min_group=10)
    assert list(p[personas.PERSONA_ID]) == ["P1", "other"]  # P2 folded with P3
    assert p.attrs["suppressed"] == 1 and p.attrs["complementary"] == 1


def test_ladder_share_of_a_hidden_cell_is_hidden() -> None:
    seg = hand_segmentation({0: 40, 1: 25})
    # P1: 22 first-timers, 15 returners, 3 regulars (a small cell); P2: 13 first-timers,
    # 12 regulars. The 3 needs a partner in its row (P1's size is shown): the 22, not
    # the 15 (alone in the returner column, it could not get a partner there); then
    # the first-timer column and P2's row hide the 13 and the 12.
    seg.tiers.iloc[22:37] = "returner"
    seg.tiers.iloc[37:40] = "regular"
    seg.tiers.iloc[53:65] = "regular"
    hidden = segments.cluster_tier_masks(seg.clusters, seg.tiers, 2, 10)[1]
    assert hidden.loc[0].to_dict() == {
        **dict.fromkeys(hidden.columns, False),
        "first_timer": True,
        "regular": True,
    }
    assert hidden.loc[1, ["first_timer", "regular"]].all()
    p = personas.build_personas(seg, min_group=10).set_index(personas.PERSONA_ID)
    assert p.loc["P1", "ladder"] == "First-timer –, Returner 38%"  # not "First-timer 55%"
    assert p.loc["P2", "ladder"] == "First-timer –, Regular –"  # not "… 52%, … 48%"
    assert p.attrs["hidden_shares"] == 3
    text = segments.privacy_text(10, p, what="persona groups")
    assert "at least 10 customers. 3 shares or averages" in text and "shown as –" in text


def test_small_sub_group_shares_are_hidden_on_cards() -> None:
    seg = hand_segmentation({0: 40, 1: 25})
    seg.features[FC.is_member] = np.arange(65) < 3  # 3 members in P1, none in P2
    seg.features[FC.latest_nps] = np.where(np.arange(65) >= 40, 10.0, np.nan)
    p = personas.build_personas(seg, min_group=10).set_index(personas.PERSONA_ID)
    assert "– members" in p.loc["P1", "engagement"]  # not "8% members"
    assert pd.isna(p.loc["P1", "member_share"])
    assert "0% members" in p.loc["P2", "engagement"]
    assert "too few NPS answers" in p.loc["P1", "engagement"]
    assert "average NPS score 10.0" in p.loc["P2", "engagement"]  # 25 answers
    assert p.loc["P2", "promoter_share"] == 1.0  # 25 promoters of 25 answers


def test_cards_do_not_use_the_notebook_page_styles() -> None:
    seg = hand_segmentation({0: 40, 1: 25})
    html = personas.cards_html(personas.build_personas(seg, min_group=10))
    # JupyterLab's ".jp-OutputArea-output dt/dd {float:left; width:20%/80%}" would
    # pull labels away from their values: the card has no dl/dt/dd, and its own
    # label, value and list rules set float, width and margin explicitly
    assert "<dt" not in html and "<dd" not in html and "<dl" not in html
    for cls in ("pb-label", "pb-value", "pb-field"):
        rule = re.search(r"\.pb-card \." + cls + r"\{([^}]*)\}", html)
        assert rule and "float:none" in rule.group(1) and "width:auto" in rule.group(1)
        assert "margin:" in rule.group(1)
    assert html.count("class='pb-label'>Moments that would suit them") == 2
    assert "<ul class='pb-moments'>" in html


def test_overrides_from_settings() -> None:
    seg = hand_segmentation({0: 40, 1: 25})
    cfg = make_cfg(
        personas={
            "overrides": {
                "P2": {"name": "Night owls", "notes": "Workshop, May"},
                "Weekend families": {"notes": "Check school holidays"},
            }
        }
    )
    p = personas.build_personas(seg, min_group=10, cfg=cfg).set_index(personas.PERSONA_ID)
    assert p.loc["P2", "name"] == "Night owls"
    assert p.loc["P2", "generated_name"] == "Last-minute comedy solo-goers"
    assert p.loc["P2", "notes"] == "Workshop, May"
    assert p.loc["P1", "notes"] == "Check school holidays"


def test_per_tier_personas() -> None:
    seg = hand_segmentation({0: 40, 1: 25})
    seg.tiers.iloc[:20] = "returner"
    cfg = make_cfg(personas={"per_tier": True})
    p = personas.build_personas(seg, min_group=10, cfg=cfg)
    assert list(p[personas.PERSONA_ID]) == ["P1-first_timer", "P1-returner", "P2-first_timer"]
    assert p.loc[1, "name"].endswith("(Returner)")


@pytest.mark.slow
def test_exports_hold_no_customer_data(small_org: Path, tmp_path: Path) -> None:
    cfg = load_org(small_org)
    tables = load_tables(cfg)
    seg = segments.segment_customers(tables, default_as_of(tables, cfg.season_start_month), cfg)
    p = personas.build_personas(seg, min_group=cfg.min_group, cfg=cfg)
    paths = personas.export_personas(p, tmp_path, org_name=cfg.name)
    assert (tmp_path / "personas.csv").exists() and (tmp_path / "personas.html").exists()
    cards = p.loc[p[personas.PERSONA_ID] != "other"]
    pngs = sorted(tmp_path.glob("persona_*.png"))
    assert len(pngs) == len(cards) >= 3
    assert all(path.stat().st_size > 10_000 for path in pngs)
    csv = pd.read_csv(paths["csv"])
    assert len(csv) == len(p)
    assert not any("customer" in c and "id" in c for c in csv.columns)
    text = paths["csv"].read_text() + paths["html"].read_text()
    ids = set(seg.features.index)
    found = set(re.findall(r"C[0-9a-f]{16}", text))
    assert not (found & ids)
    assert not any(i in text for i in list(ids)[:500])
    assert (csv["customers"].dropna() >= cfg.min_group).all()


@pytest.mark.slow
def test_notebooks_render(small_org: Path, tmp_path: Path) -> None:
    result = render_season(small_org, reports_root=tmp_path / "reports", only=["10", "20"])
    out = result.output_dir
    assert result.notebooks == ["10_segmentation.ipynb", "20_personas.ipynb"]
    for name in ("10_segmentation.html", "20_personas.html"):
        page = (out / name).read_text()
        assert "Traceback" not in page and "Warning" not in page
        assert "hl-ipython3" not in page and "segment_customers(" not in page  # no code
        assert "org_dir" not in page  # nor the parameters cell
        assert "Workshop prompt" in page and "Privacy:" in page
    assert (out / "personas.csv").exists() and (out / "personas.html").exists()
    assert list(out.glob("persona_*.png"))
