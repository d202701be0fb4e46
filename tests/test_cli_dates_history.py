"""The command line: dates only as YYYY-MM-DD, and the moments history whatever --out is."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from playbook.cli import main
from playbook.errors import PlaybookError


def test_iso_date_reads_only_year_month_day() -> None:
    from playbook.commands import iso_date

    assert iso_date("2025-03-27", "--as-of") == dt.date(2025, 3, 27)
    assert iso_date(None, "--today") is None
    for bad in ("03/04/2025", "27/03/2025", "2025-3-27", "20250327", "2025-02-30", "today"):
        with pytest.raises(PlaybookError, match=re.escape(f"--as-of {bad!r}")) as err:
            iso_date(bad, "--as-of")
        assert "YYYY-MM-DD" in str(err.value)


def test_moments_refuses_a_day_first_date_instead_of_guessing(
    small_org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org"
    shutil.copytree(small_org, org)
    assert main(["moments", str(org), "--as-of", "03/04/2025"]) == 2
    err = capsys.readouterr().err
    assert "'03/04/2025'" in err and "YYYY-MM-DD" in err
    assert not (org / "moments" / "actions_2025-03-04.csv").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["intake", "{org}", "--today", "27/03/2025"],
        ["clv", "{org}", "--calibration-end", "31/12/2024"],
        ["clv", "{org}", "--calibration-end", "2024-12-31", "--observation-end", "3/4/2025"],
    ],
)
def test_every_date_option_takes_year_month_day_only(
    small_org: Path, tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org"
    shutil.copytree(small_org, org)
    assert main([a.format(org=org) for a in argv]) == 2
    assert "is not a date written YYYY-MM-DD" in capsys.readouterr().err


def test_a_negative_horizon_is_refused(small_org: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["moments", str(small_org), "--as-of", "2025-05-15", "--horizon-days", "-3"]
    assert main(argv) == 2
    assert "--horizon-days -3 is negative" in capsys.readouterr().err


def summary(out: str) -> tuple[int, int, int, int, dict[str, int]]:
    """(found, actions, held back, left out, left out by reason) from the printed summary."""
    m = re.search(
        r"([\d,]+) moments found: ([\d,]+) actions \(.*\), ([\d,]+) held back \(control "
        r"group\), ([\d,]+) left out\.",
        out,
    )
    assert m, out
    found, acts, held, left = (int(g.replace(",", "")) for g in m.groups())
    by = {}
    line = re.search(r"Left out: (.*)", out)
    if line:
        for part in line.group(1).split(", "):
            reason, n = part.rsplit(" ", 1)
            by[reason] = int(n.replace(",", ""))
    return found, acts, held, left, by


def test_history_works_whatever_out_is_called_and_counts_reconcile(
    small_org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org"
    shutil.copytree(small_org, org)
    out = tmp_path / "out"
    week20 = ["moments", str(org), "--as-of", "2025-05-15", "--out", str(out / "week20.csv")]
    assert main(week20) == 0
    first_out = capsys.readouterr().out
    week21 = ["moments", str(org), "--as-of", "2025-05-22", "--out", str(out / "week21.csv")]
    assert main(week21) == 0
    second_out = capsys.readouterr().out
    a = pd.read_csv(out / "week20.csv", dtype=str, encoding="utf-8-sig")
    b = pd.read_csv(out / "week21.csv", dtype=str, encoding="utf-8-sig")
    # the second week does not repeat the first week's moments
    assert len(b) and not set(b["moment_key"]) & set(a["moment_key"])
    assert (org / "moments" / "actions_2025-05-15.csv").exists()  # the history copy
    # the run says what it read, and the counts add up
    assert "Earlier lists: none found in" in first_out
    assert f"Earlier lists: 1 found in {org / 'moments'}/" in second_out
    for text, listed in ((first_out, a), (second_out, b)):
        found, acts, held, left, by = summary(text)
        assert found == acts + held + left and acts + held == len(listed)
        assert acts == int((listed["group"] == "treatment").sum()) and sum(by.values()) == left
    assert summary(second_out)[4].get("already planned", 0) > 0


def test_undated_action_lists_next_to_out_are_named_not_silently_ignored(
    small_org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org = tmp_path / "org"
    shutil.copytree(small_org, org)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["moments", str(org), "--as-of", "2025-05-15", "--no-history",
                 "--out", str(out / "a.csv")]) == 0  # fmt: skip
    (org / "moments" / "actions_2025-05-15.csv").unlink()  # as if made by an older kit
    (out / "a.csv").rename(out / "week20.csv")
    capsys.readouterr()
    assert main(["moments", str(org), "--as-of", "2025-05-22", "--out", str(out / "w.csv")]) == 0
    text = capsys.readouterr().out
    assert "none found in" in text
    assert "Not read: 1 action list(s) whose names carry no date (week20.csv)" in text


def _predictions(org: Path, observation_end: str) -> None:
    """Lifetime-value files as ``playbook clv`` writes them (two made-up customers)."""
    import json

    folder = org / "clv"
    folder.mkdir(exist_ok=True)
    pd.DataFrame(
        {"customer_id": ["a", "b"], "clv": [900.0, 10.0], "p_alive": [0.1, 0.9]}
    ).to_parquet(folder / "clv_predictions.parquet", index=False)
    (folder / "clv_params.json").write_text(json.dumps({"observation_end": observation_end}))


def test_moments_use_lifetime_value_only_when_it_does_not_look_ahead_and_is_current(
    small_org: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from playbook.commands.moments import usable_predictions
    from playbook.config import load_org

    org = tmp_path / "org"
    shutil.copytree(small_org, org)
    cfg = load_org(org)
    day = pd.Timestamp("2025-05-15")
    assert usable_predictions(cfg, day) == (None, None)  # none written: nothing to say
    _predictions(org, "2025-05-16")  # made from a day after the list's day
    clv, note = usable_predictions(cfg, day)
    assert clv is None and "up to 2025-05-16, after this list's day (2025-05-15)" in note
    _predictions(org, "2025-05-15")
    clv, note = usable_predictions(cfg, day)
    assert note is None and clv["customer_id"].tolist() == ["a", "b"]
    # an intake after the predictions were made: they describe older data
    intake = cfg.canonical_dir / "intake.json"
    later = (org / "clv" / "clv_predictions.parquet").stat().st_mtime + 60
    os.utime(intake, (later, later))
    clv, note = usable_predictions(cfg, day)
    assert clv is None and "made before the last intake" in note
    # the command says so, and the at-risk trigger is skipped as without predictions
    _predictions(org, "2025-06-30")
    os.utime(org / "clv" / "clv_predictions.parquet", (later + 60, later + 60))
    assert main(["moments", str(org), "--as-of", "2025-05-15"]) == 0
    out = capsys.readouterr().out
    assert "would look ahead" in out
    assert "at_risk_patron skipped: needs clv" in out
