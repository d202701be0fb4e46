"""Mapping suggestions for do-not-contact flags (deceased, gone away, do not contact)."""

from __future__ import annotations

from pathlib import Path

import pytest

from playbook.mapping import suggest_mapping


def write(tmp_path: Path, header: str, rows: list[str]) -> Path:
    path = tmp_path / "customers.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["Deceased", "Do Not Contact", "Gone Away", "DNC", "Do not mail"])
def test_a_do_not_contact_column_is_suggested_by_its_name(tmp_path: Path, name: str) -> None:
    path = write(
        tmp_path,
        f"Customer ID,Created,{name}",
        ["1001,01/01/2020,No", "1002,03/03/2021,Yes", "1003,05/05/2022,No"],
    )
    s = suggest_mapping(path, table="customers")
    assert s.columns["do_not_contact"] == name
    assert "birthday_consent" not in s.columns


def test_a_second_flag_is_left_unmapped_never_taken_for_birthday_consent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Customer ID,Created,Deceased,Do Not Contact,Anonymised",
        ["1001,01/01/2020,No,Yes,No", "1002,03/03/2021,Yes,No,No", "1003,05/05/2022,No,No,No"],
    )
    s = suggest_mapping(path, table="customers")
    assert s.columns == {
        "customer_id": "Customer ID",
        "created_at": "Created",
        "anonymised": "Anonymised",
        "do_not_contact": "Deceased",
    }
    assert s.unmapped == ["Do Not Contact"]
