"""Privacy: no personal data in reports, small groups hidden, consent and erasure carried,
and nothing in org.yaml (or a mapped export) ever runs as code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY_FILES, TINY_ORG_YAML, write_org
from hypothesis import given, settings
from hypothesis import strategies as st

from playbook import intake, mapping, presets, privacy
from playbook.config import load_org
from playbook.errors import ConfigError, IntakeError
from playbook.intake import run_intake
from playbook.privacy import OTHER, mask_small_cells, merge_small_groups, suppress_small_groups

TODAY = "2030-01-01"
PLANTED = 12


def _planted(i: int) -> dict[str, str]:
    return {
        "First Name": f"Zephyrine{i}x",
        "Last Name": f"Quaxley-Bramwith{i}",
        "Email": f"planted.{i}.xq7@mailplant.example",
        "Phone": f"+44 7911 {i:06d}",
        "Address Line 1": f"{i + 1} Marmalade Crescent",
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, Path]:
    """A generated organisation with planted personal data, taken in and fully rendered."""
    from playbook.render import render_season
    from playbook.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("privacy")
    org = root / "planted-org"
    generate(org, SynthConfig(seed=11, customers=600))
    path = org / "exports" / "customers.csv"
    cust = pd.read_csv(path, dtype=str, keep_default_na=False)
    for i in range(PLANTED):
        for col, value in _planted(i).items():
            cust.loc[i, col] = value
    cust.to_csv(path, index=False)
    run_intake(org, today=TODAY)
    reports = root / "reports"
    render_season(org, reports_root=reports)
    return org, reports


def _all_bytes(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes().lower() for p in folder.rglob("*") if p.is_file())


def test_planted_personal_data_never_reaches_the_report(rendered) -> None:
    org, reports = rendered
    raw = (org / "exports" / "customers.csv").read_bytes().lower()
    report = _all_bytes(reports)
    canonical = _all_bytes(org / "canonical")
    files = [p.suffix for p in reports.rglob("*") if p.is_file()]
    assert ".html" in files and ".ipynb" in files  # the report was really rendered
    for i in range(PLANTED):
        for value in _planted(i).values():
            needle = value.lower().encode()
            assert needle in raw  # planted in the export ...
            assert needle not in report, value  # ... and nowhere in the report
            assert needle not in canonical, value


def test_source_customer_numbers_stay_in_private(rendered) -> None:
    org, reports = rendered
    ids = pd.read_parquet(org / "private" / "id_map.parquet")
    report = _all_bytes(reports)
    sample = ids["source_customer_id"].head(50)
    assert not any(f",{s},".encode() in report for s in sample)
    assert not list(reports.rglob("id_map*")) and not list(reports.rglob("salt*"))


def test_consents_and_anonymised_flag_flow_into_canonical_tables(rendered) -> None:
    org, _ = rendered
    cfg = load_org(org)
    ids = pd.read_parquet(org / "private" / "id_map.parquet").set_index("source_customer_id")
    tables = run_intake(org, today=TODAY, write=False).tables

    spec = presets.resolve("consents", cfg.sources["consents"])
    raw = pd.read_csv(org / spec["file"], dtype=str, keep_default_na=False)
    cols, words = spec["columns"], spec["values"]
    raw["customer_id"] = raw[cols["customer_id"]].map(ids["customer_id"])
    raw["channel"] = raw[cols["channel"]].map(words["channel"])
    raw["status"] = raw[cols["status"]].map(words["status"])
    got = tables.consents.merge(raw, on=["customer_id", "channel"], suffixes=("", "_raw"))
    assert len(got) == len(tables.consents) > 0
    assert (got["status"] == got["status_raw"]).all()
    assert set(tables.consents["channel"]) == {"email", "post", "sms", "phone"}

    spec = presets.resolve("customers", cfg.sources["customers"])
    cust = pd.read_csv(org / spec["file"], dtype=str, keep_default_na=False)
    flag = cust[spec["columns"]["anonymised"]].map(spec["values"]["anonymised"]).astype(bool)
    erased = set(cust.loc[flag, spec["columns"]["customer_id"]].map(ids["customer_id"]))
    canon = tables.customers.set_index("customer_id")["anonymised"]
    assert erased and set(canon[canon].index) == erased


def test_consent_words_and_erasure_on_a_hand_written_org(tmp_path: Path) -> None:
    files = dict(TINY_FILES)
    files["customers.csv"] = (
        "Customer ID,First Name,Email,Postcode,DOB,Created,Erased\n"
        "1001,Quartermaine,zq@example.org,SE1 7PB,14/02/1980,01/01/2020,No\n"
        "1002,Wolstenholme,bw@example.org,M1 1AE,,03/03/2021,Yes\n"
        "1003,Fitzwilliam,cf@example.org,EH1 1YZ,,05/05/2022,No\n"
    )
    files["consents.csv"] = (
        "Customer ID,Channel,Status,Updated\n"
        "1001,Email,Opted in,01/01/2024\n1001,SMS,Opted out,02/01/2024\n"
        "1002,Email,Opted in,01/01/2024\n1003,Post,Not asked,01/01/2024\n"
    )
    text = TINY_ORG_YAML.replace(
        "      created_at: Created\n",
        "      created_at: Created\n      anonymised: Erased\n"
        "    values: {anonymised: {'Yes': true, 'No': false}}\n",
    )
    text += (
        "  consents:\n    file: consents.csv\n"
        "    columns: {customer_id: Customer ID, channel: Channel, status: Status, "
        "consent_date: Updated}\n    values:\n"
        "      channel: {Email: email, Post: post, SMS: sms}\n"
        "      status: {Opted in: granted, Opted out: withdrawn, Not asked: unknown}\n"
    )
    org = write_org(tmp_path / "org", files, text)
    r = run_intake(org, today="2025-01-01")
    ids = pd.read_parquet(org / "private" / "id_map.parquet").set_index("source_customer_id")
    pid = ids["customer_id"]
    got = {
        (c, ch): s
        for c, ch, s in r.tables.consents[["customer_id", "channel", "status"]].to_numpy()
    }
    assert got == {
        (pid["1001"], "email"): "granted",
        (pid["1001"], "sms"): "withdrawn",
        (pid["1002"], "email"): "granted",  # still carried: the action lists must skip 1002
        (pid["1003"], "post"): "unknown",
    }
    anon = r.tables.customers.set_index("customer_id")["anonymised"]
    assert anon[pid["1002"]] and not anon[pid["1001"]] and not anon[pid["1003"]]


# --- small-group suppression ---------------------------------------------------------------


def _groups() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": ["A", "B", "C", "D"],
            "customers": [120, 9, 10, 3],
            "revenue": [5000.0, 310.0, 400.0, 90.0],
            "visits": pd.array([300, 15, 22, 4], dtype="int64"),
        }
    )


def test_suppress_masks_exactly_the_groups_below_the_threshold() -> None:
    df = _groups()
    out = suppress_small_groups(df, "customers", 10)
    assert out.attrs["suppressed"] == 2
    masked = out[out["customers"].isna()]["segment"].tolist()
    assert masked == ["B", "D"]  # 10 is shown: the threshold is "fewer than"
    assert out.loc[out["segment"] == "B", ["revenue", "visits"]].isna().all(axis=None)
    assert out.loc[0, "revenue"] == 5000.0 and out.loc[2, "visits"] == 22
    assert df.equals(_groups())  # the input is not changed


def test_suppress_only_the_named_columns() -> None:
    out = suppress_small_groups(_groups(), "customers", 10, columns=["revenue"])
    assert out["customers"].tolist() == [120, 9, 10, 3]
    assert out["revenue"].isna().tolist() == [False, True, False, True]


def test_merge_folds_small_groups_into_other() -> None:
    out = merge_small_groups(_groups(), "segment", "customers", 10, sum_cols=["revenue"])
    assert out["segment"].tolist() == ["A", "C", OTHER]
    other = out.set_index("segment").loc[OTHER]
    assert other["customers"] == 12 and other["revenue"] == 400.0
    assert np.isnan(other["visits"])  # not additive: not shown
    assert out["customers"].sum() == _groups()["customers"].sum()
    assert out.attrs["suppressed"] == 2


def test_merged_group_still_too_small_is_masked() -> None:
    df = _groups()
    df.loc[1, "customers"] = 2
    out = merge_small_groups(df, "segment", "customers", 10, sum_cols=["revenue"])
    assert out.set_index("segment").loc[OTHER, ["customers", "revenue"]].isna().all()


def test_merge_without_small_groups_changes_nothing() -> None:
    df = _groups()[_groups()["customers"] >= 10].reset_index(drop=True)
    out = merge_small_groups(df, "segment", "customers", 10)
    pd.testing.assert_frame_equal(out, df)
    assert out.attrs["suppressed"] == 0


def test_mask_small_cells_of_a_matrix() -> None:
    counts = pd.DataFrame({"2023-24": [50, 4, 0], "2024-25": [9, 30, 12]}, index=["t", "m", "d"])
    values = counts * 10.0
    out = mask_small_cells(counts, values, 10)
    assert out.isna().to_numpy().tolist() == [[False, True], [True, False], [True, False]]
    assert out.attrs["suppressed"] == 2  # empty cells are not counted as hidden people


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=20),
)
def test_no_visible_group_is_ever_below_the_threshold(sizes, threshold) -> None:
    df = pd.DataFrame(
        {"group": [f"g{i}" for i in range(len(sizes))], "customers": sizes, "spend": sizes}
    )
    for out in (
        suppress_small_groups(df, "customers", threshold),
        merge_small_groups(df, "group", "customers", threshold, sum_cols=["spend"]),
    ):
        shown = out["customers"].dropna()
        assert (shown >= threshold).all()
        assert out.loc[out["customers"].isna(), "spend"].isna().all()


# --- nothing in org.yaml or an export runs as code ------------------------------------------


def test_yaml_tags_are_refused_everywhere(tmp_path: Path) -> None:
    canary = tmp_path / "PWNED"
    tag = f"!!python/object/apply:os.system ['touch {canary}']"
    for place in (
        f"preset: {tag}\n",
        f"sources:\n  order_lines:\n    preset: {tag}\n",
        f"sources:\n  order_lines:\n    file: sales.csv\n    columns: {{paid_amount: {tag}}}\n",
        f"sources:\n  order_lines:\n    file: sales.csv\n    values: {{status: {{Sold: {tag}}}}}\n",
    ):
        org = write_org(tmp_path / "org", TINY_FILES, "name: X\n" + place)
        with pytest.raises(ConfigError):
            run_intake(org, today="2025-01-01")
        assert not canary.exists()


def test_code_looking_names_are_only_names(tmp_path: Path) -> None:
    canary = tmp_path / "PWNED"
    code = f"__import__('os').system('touch {canary}')"
    text = TINY_ORG_YAML.replace("paid_amount: Paid", f'paid_amount: "{code}"')
    org = write_org(tmp_path / "org", TINY_FILES, text)
    with pytest.raises(IntakeError, match="no column"):
        run_intake(org, today="2025-01-01")
    text = TINY_ORG_YAML.replace("Sold: active", f'"{code}": active')
    org = write_org(tmp_path / "org2", TINY_FILES, text)
    r = run_intake(org, today="2025-01-01")  # the word simply never matches
    reasons = set(r.ledger.dropped_rows()["reason"])
    assert reasons == {"unknown_value", "orphan_return"}  # the return of a dropped sale too
    assert not canary.exists()


def test_mapping_suggestion_of_a_hostile_export_is_inert(tmp_path: Path) -> None:
    canary = tmp_path / "PWNED"
    hostile = f"!!python/object/apply:os.system ['touch {canary}']"
    path = tmp_path / "export.csv"
    path.write_text(
        f'Customer ID,Order Date,Paid,Status,"{hostile}\nsources: {{}}"\n'
        f'1,2024-01-01,£5.00,"{hostile}",x\n2,2024-01-02,£6.00,Sold,y\n'
    )
    s = mapping.suggest_mapping(path)
    text = mapping.suggestion_yaml(s)
    loaded = yaml.safe_load(text)  # a safe loader reads it back as plain strings
    words = loaded["sources"]["order_lines"]["values"]["status"]
    assert hostile in words and words[hostile] is None
    # only ever inside quotes, even in comments
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    assert "!!python" not in unquoted and unquoted.count("sources:") == 1
    # and intake reads the suggested section without running anything
    (tmp_path / "org.yaml").write_text(
        "name: Hostile\nslug: hostile\n" + text[text.index("\nsources:") + 1 :]
    )
    run_intake(tmp_path, today="2025-01-01", write=False)
    assert not canary.exists()


def test_no_code_path_evaluates_settings() -> None:
    for module in (intake, presets, mapping, privacy):
        src = inspect.getsource(module)
        for bad in ("eval(", "exec(", "yaml.load(", "yaml.unsafe_load", "pickle", "__import__"):
            assert bad not in src, (module.__name__, bad)


def test_complementary_cells_leave_no_lone_masked_cell() -> None:
    from playbook.privacy import complementary_cells

    counts = np.array(
        [
            [50, 3, 20, 0],  # 3 is masked; alone in its row -> the 20 goes too (smallest)
            [40, 30, 60, 5],  # 5 masked; column 3 then has it alone -> see below
            [0, 0, 80, 0],
        ]
    )
    primary = (counts > 0) & (counts < 10)
    m = complementary_cells(counts, primary)
    assert m[0, 1] and m[0, 2]  # row 0: the smallest other non-zero cell (20, not 50)
    assert m[1, 3]
    # no row or column keeps exactly one masked cell, unless nothing else in it could be
    # masked (column 3: the 5 is its whole total, itself too small to be shown)
    for view_m, view_c in ((m, counts), (m.T, counts.T)):
        for line_m, line_c in zip(view_m, view_c, strict=True):
            assert line_m.sum() != 1 or ((line_c > 0) & ~line_m).sum() == 0
    assert not m[counts == 0].any()  # zeros are never masked
    # primary masking that is already safe is left alone
    safe = np.array([[5, 5, 40], [5, 5, 40]])
    assert (complementary_cells(safe, safe < 10) == (safe < 10)).all()


def test_tier_transitions_get_secondary_suppression() -> None:
    from playbook.journey import mask_transitions

    tiers = ["first_timer", "returner", "regular"]
    counts = pd.DataFrame([[40, 4, 30], [20, 50, 25], [15, 35, 60]], index=tiers, columns=tiers)
    shown, rates = mask_transitions(counts, min_group=10)
    masked = shown.isna().to_numpy()
    assert masked.sum() >= 4  # the 4, a second cell in its row and in its column
    assert (masked.sum(axis=1) != 1).all() and (masked.sum(axis=0) != 1).all()
    assert (rates.isna().to_numpy() >= masked).all()  # rates masked with the counts
    assert shown.attrs["suppressed"] == masked.sum()


def test_a_masked_cell_joining_two_masked_blocks_is_masked_further() -> None:
    from playbook.privacy import complementary_cells, recoverable_cells

    # rows 0-1 × columns 0-1 and rows 2-3 × columns 2-3 are blocks of small cells; the 3
    # at (1, 2) joins them. Every row and column holds two or more masked cells, yet the
    # 3 is rows 0 and 1 added up, minus columns 0 and 1: it can be worked out.
    counts = np.array([[5, 5, 50, 50], [5, 5, 3, 50], [50, 50, 5, 5], [50, 50, 5, 5]])
    primary = (counts > 0) & (counts < 10)
    assert (primary.sum(axis=0) >= 2).all() and (primary.sum(axis=1) >= 2).all()
    assert recoverable_cells(counts, primary)[1, 2]
    assert recoverable_cells(counts, primary).sum() == 1
    m = complementary_cells(counts, primary)
    assert not recoverable_cells(counts, m).any()
    assert (m >= primary).all() and m.sum() == primary.sum() + 1  # one cell more, no more


def test_mask_count_table_masks_small_cells_small_rows_and_their_partners() -> None:
    from playbook.privacy import mask_count_table, recoverable_cells

    counts = np.array([[40, 4, 30], [20, 50, 25], [3, 2, 0], [15, 35, 60]])
    m = mask_count_table(counts, 10)
    assert m[0, 1] and m[2, 0] and m[2, 1]  # the 4, and the whole row of 5 customers
    assert not m[2, 2]  # a zero identifies nobody
    assert not recoverable_cells(counts, m).any()
    for line in (*m, *m.T):
        assert line.sum() != 1


def test_hidden_cells_of_a_row_never_add_up_to_a_small_group() -> None:
    from playbook.privacy import complementary_cells, mask_count_table

    # lapsed customers: 2 back as loyal, 3 as champions. Hiding just those two would
    # still show (total − cells shown) that 5 came back to the top of the ladder.
    counts = np.array([[146, 30, 2, 3, 5034], [500, 400, 300, 200, 100]])
    primary = (counts > 0) & (counts < 10)
    assert complementary_cells(counts, primary)[0].sum() == 2  # the pair alone …
    m = mask_count_table(counts, 10)
    row = np.where(m[0], counts[0], 0).sum()
    assert row >= 10 and m[0, 1]  # … so the 30 is hidden with them
    for view_m, view_c in ((m, counts), (m.T, counts.T)):
        sums = np.where(view_m, view_c, 0).sum(axis=1)
        assert ((sums == 0) | (sums >= 10)).all()
