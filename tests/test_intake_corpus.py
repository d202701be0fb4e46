"""The bad-input corpus: every file in tests/fixtures/bad_inputs/ against its expectation.

The table lives in ``tests/fixtures/bad_inputs/expectations.yaml``; adding a case is
adding a file and an entry. Each case either stops intake with a message that names the
file (and row, column, value where there is one) and says what to do, or is read with
the bad rows dropped for a stated reason while the ledger reconciles for every file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import TINY_FILES, TINY_ORG_YAML, write_org

from playbook.errors import ConfigError, IntakeError, PlaybookError
from playbook.intake import run_intake

CORPUS = Path(__file__).parent / "fixtures" / "bad_inputs"
CASES: dict[str, dict] = yaml.safe_load((CORPUS / "expectations.yaml").read_text("utf-8"))
TODAY = "2025-01-01"
ERRORS = {"IntakeError": IntakeError, "ConfigError": ConfigError, "PlaybookError": PlaybookError}


def build_org(tmp_path: Path, name: str, case: dict) -> Path:
    """The tiny organisation with one export replaced by the case's file."""
    text = TINY_ORG_YAML
    for old, new in case.get("yaml", []):
        assert old in text, f"{name}: org.yaml has no {old!r} to replace"
        text = text.replace(old, new)
    text += case.get("yaml_append", "")
    org = write_org(tmp_path / "org", TINY_FILES, text)
    target = case.get("as", "sales.csv")
    if target != "sales.csv" and target.startswith("sales"):
        (org / "sales.csv").unlink()
    shutil.copyfile(CORPUS / case.get("file", f"{name}.csv"), org / target)
    return org


def test_corpus_has_at_least_thirty_cases_each_with_a_file() -> None:
    assert len(CASES) >= 30
    files = {c.get("file", f"{n}.csv") for n, c in CASES.items()}
    assert all((CORPUS / f).exists() for f in files)
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "expectations.yaml"}
    assert on_disk == files  # no file without an expectation


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    org = build_org(tmp_path, name, case)
    if case["expect"] == "error":
        with pytest.raises(ERRORS[case.get("error", "IntakeError")]) as err:
            run_intake(org, today=TODAY)
        for needle in case["messages"]:
            assert needle in str(err.value), (needle, str(err.value))
        return

    r = run_intake(org, today=TODAY)
    summary = r.summary()
    assert (summary["rows_read"] == summary["rows_kept"] + summary["rows_dropped"]).all()
    for table, n in case.get("kept", {}).items():
        assert summary.loc[summary["table"] == table, "rows_kept"].sum() == n, table
        if table != "customers":  # customers may gain stub rows for buyers not exported
            assert len(r.tables[table]) == n, table
    got = r.ledger.dropped_rows()
    want = case.get("drops", [])
    assert len(got) == len(want), got.to_string()
    got = got.sort_values(["row", "reason"]).reset_index(drop=True)
    for (_, row), expected in zip(got.iterrows(), sorted(want, key=lambda w: w[1]), strict=True):
        reason, line, *rest = expected
        assert (row["reason"], row["row"]) == (reason, line)
        if rest:
            assert row["column"] == rest[0]
        if len(rest) > 1:
            assert row["value"] == rest[1]
        assert row["message"]  # a plain explanation for every reason
    ol = r.tables.order_lines.sort_values("line_id")
    if "paid" in case:
        assert ol["paid_amount"].tolist() == pytest.approx(case["paid"])
    if "times" in case:
        assert ol["purchase_time"].tolist() == [pd.Timestamp(t) for t in case["times"]]
    if "possible_duplicates" in case:
        dups = r.possible_duplicates
        assert len(dups) == case["possible_duplicates"]
        assert dups["group"].nunique() == 1 and dups["household_id"].nunique() == 1


def test_household_duplicates_are_kept_and_listed_pseudonymously(tmp_path: Path) -> None:
    name = "same_customer_two_ids_one_household"
    org = build_org(tmp_path, name, CASES[name])
    r = run_intake(org, today=TODAY)
    cu = r.tables.customers
    assert len(cu) == 5  # both ids stay: merging two people wrongly is worse
    listed = pd.read_csv(org / "canonical" / "possible_duplicates.csv", dtype=str)
    assert set(listed["customer_id"]) <= set(cu["customer_id"])
    ids = pd.read_parquet(org / "private" / "id_map.parquet").set_index("source_customer_id")
    assert set(listed["customer_id"]) == {
        ids.loc["1001", "customer_id"],
        ids.loc["2001", "customer_id"],
    }
    text = (org / "canonical" / "possible_duplicates.csv").read_text()
    for secret in ("1001", "2001", "Quartermaine", "SE1 7PB", "zq.other@example.org"):
        assert secret not in text
