"""Season-end batch: one intake per organisation, unique slugs, skipped folders listed,
season labels checked, stale tables refused, summary rows named alike."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import TINY_FILES, TINY_ORG_YAML, write_org

import playbook.intake
from playbook.batch import run_batch
from playbook.cli import main as cli_main
from playbook.errors import PlaybookError

# A sale in March 2024 puts the tiny organisation's data in two seasons: 2023-24, 2024-25.
TWO_SEASONS = {
    **TINY_FILES,
    "sales.csv": TINY_FILES["sales.csv"]
    + "        L6,O5,1003,15/03/2024 10:00,Web,P1,£25.00,£25.00,Sold,\n",
}


def _notebooks(tmp_path: Path) -> Path:
    """One quick numbered notebook that reads the canonical tables of the season."""
    folder = tmp_path / "notebooks"
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('org_dir = ""\nseason = ""\noutput_dir = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Sales"),
        params,
        nbformat.v4.new_code_cell(
            "import pandas as pd\nfrom pathlib import Path\n"
            "n = len(pd.read_parquet(Path(org_dir, 'canonical', 'order_lines.parquet')))\n"
            "print(season, n)"
        ),
    ]
    nbformat.write(nb, folder / "05_sales.ipynb")
    return folder


def _org(root: Path, name: str, slug: str | None = None, files=TWO_SEASONS) -> Path:
    yaml = TINY_ORG_YAML if slug is None else f"slug: {slug}\n{TINY_ORG_YAML}"
    return write_org(root / name, files, yaml)


# --- 1. one intake per organisation, seasons render after it --------------------------------
def test_intake_runs_once_per_organisation_before_its_seasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = playbook.intake.run_intake

    def counting(org, **kw):
        calls.append(Path(org).name)
        return real(org, today="2025-01-01", **kw)

    monkeypatch.setattr(playbook.intake, "run_intake", counting)
    org = _org(tmp_path / "data", "alpha")
    table = run_batch(
        [org],
        ["2023-24", "2024-25"],
        reports_root=tmp_path / "r",
        notebooks_dir=_notebooks(tmp_path),
        progress=False,
    )
    assert calls == ["alpha"]  # not once per season
    assert table["status"].tolist() == ["ok", "ok"], table.to_dict("records")
    assert table["season"].tolist() == ["2023-24", "2024-25"]


def test_two_seasons_in_parallel_keep_the_canonical_tables(tmp_path: Path) -> None:
    org = _org(tmp_path / "data", "alpha")
    table = run_batch(
        [org],
        ["2024-25", "2023-24"],
        reports_root=tmp_path / "r",
        notebooks_dir=_notebooks(tmp_path),
        n_jobs=2,
        progress=False,
    )
    assert table["status"].tolist() == ["ok", "ok"], table.to_dict("records")
    names = sorted(p.name for p in (org / "canonical").glob("*.parquet"))
    assert "order_lines.parquet" in names and "customers.parquet" in names
    assert not list((org / "canonical").glob("*.partial"))
    for season in ("2023-24", "2024-25"):
        assert (tmp_path / "r" / "alpha" / season / "index.html").exists()


# --- 2. two organisations with one slug -------------------------------------------------------
def test_duplicate_slugs_are_refused_before_anything_runs(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    a = _org(data, "north", slug="city-theatre")
    b = _org(data, "south", slug="city-theatre")
    _org(data, "west")
    with pytest.raises(PlaybookError) as err:
        run_batch(sorted(data.iterdir()), reports_root=tmp_path / "r", progress=False)
    msg = str(err.value)
    assert f"slug 'city-theatre': '{a}' and '{b}'" in msg
    assert "give each organisation its own 'slug:' in its org.yaml" in msg
    assert not (a / "canonical").exists() and not (tmp_path / "r").exists()  # nothing ran
    code = cli_main(["batch", str(a), str(b), "--reports", str(tmp_path / "r")])
    assert code == 2 and "same slug" in capsys.readouterr().err


def test_the_same_folder_twice_is_used_once(tmp_path: Path) -> None:
    from playbook.batch import find_org_folders

    org = _org(tmp_path / "data", "alpha")
    found = find_org_folders([org, f"{org}/", tmp_path / "data" / "." / "alpha"])
    assert [f.folder for f in found] == [str(org)]


# --- 3. folders without org.yaml ------------------------------------------------------------
def test_skip_reasons() -> None:
    from playbook.batch import skip_reason

    assert skip_reason(Path("/nonexistent/folder")) == ("folder not found", False)


def test_folder_with_org_yml_is_listed_and_fails_the_run(tmp_path: Path, capsys) -> None:
    org = _org(tmp_path / "data", "misnamed")
    (org / "org.yaml").rename(org / "org.yml")
    reports = tmp_path / "r"
    code = cli_main(["batch", str(org), "--reports", str(reports)])
    out = capsys.readouterr()
    assert code == 1
    assert "No organisation folders given" not in out.err + out.out
    assert "no org.yaml (found org.yml: rename it to org.yaml)" in out.out
    assert "0 rendered, 0 failed, 1 folder skipped" in out.out
    summary = pd.read_csv(reports / "batch_summary.csv", keep_default_na=False)
    row = summary.iloc[0]
    assert (row["org"], row["folder"], row["status"]) == ("misnamed", str(org), "skipped")
    assert "found org.yml" in row["error"]


def test_a_pattern_lists_other_folders_without_failing(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    org = _org(data, "alpha")
    (data / "shared-logos").mkdir()
    (data / "README.md").write_text("not a folder")
    code = cli_main(
        ["batch", f"{data}/*", "--season", "2024-25", "--reports", str(tmp_path / "r")]
        + ["--notebooks", str(_notebooks(tmp_path))]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "1 rendered, 0 failed, 1 matched folder not an organisation" in out
    summary = pd.read_csv(tmp_path / "r" / "batch_summary.csv", keep_default_na=False)
    assert summary[["org", "status"]].values.tolist() == [
        ["alpha", "ok"],
        ["shared-logos", "not an organisation"],
    ]
    assert summary["folder"].tolist() == [str(org), str(data / "shared-logos")]


# --- 4. season labels ---------------------------------------------------------------------
def test_bad_seasons_fail_their_jobs_with_the_seasons_the_data_cover(tmp_path: Path) -> None:
    org = _org(tmp_path / "data", "folder-name", slug="x-theatre")
    table = run_batch(
        [org],
        ["2030-31", "2025/26"],
        reports_root=tmp_path / "r",
        notebooks_dir=_notebooks(tmp_path),
        progress=False,
    )
    assert table["status"].tolist() == ["failed", "failed"]
    assert all("Seasons with sales: 2023-24, 2024-25." in e for e in table["error"])
    assert set(table["notebook"]) == {"(season)"}
    by_season = table.set_index("season")["error"]
    assert "has no sales" in by_season["2030-31"]
    assert "not written like '2025-26'" in by_season["2025/26"]
    # 6. failed rows are named like successful ones: slug, and the folder as given
    assert set(table["org"]) == {"x-theatre"} and set(table["folder"]) == {str(org)}


def test_failed_intake_fails_each_season_and_renders_nothing(tmp_path: Path) -> None:
    org = _org(tmp_path / "data", "alpha")
    (org / "sales.csv").unlink()
    table = run_batch(
        [org],
        ["2023-24", "2024-25"],
        reports_root=tmp_path / "r",
        notebooks_dir=_notebooks(tmp_path),
        progress=False,
    )
    assert table["status"].tolist() == ["failed", "failed"]
    assert table["season"].tolist() == ["2023-24", "2024-25"]
    assert set(table["notebook"]) == {"(intake / settings)"}
    assert "sales.csv" in table["error"].iloc[0]
    assert not (tmp_path / "r" / "alpha").exists()


# --- 6. stale canonical tables ----------------------------------------------------------------
def test_no_intake_refuses_an_organisation_whose_exports_changed(tmp_path: Path) -> None:
    org = _org(tmp_path / "data", "alpha")
    playbook.intake.run_intake(org, today="2025-01-01")
    later = time.time() + 120
    os.utime(org / "sales.csv", (later, later))
    table = run_batch(
        [org],
        reports_root=tmp_path / "r",
        notebooks_dir=_notebooks(tmp_path),
        intake=False,
        progress=False,
    )
    row = table.iloc[0]
    assert (row["org"], row["status"], row["notebook"]) == ("alpha", "failed", "(stale tables)")
    assert "sales.csv changed after the last intake" in row["error"]
    assert "run `playbook intake" in row["error"]
    assert not (tmp_path / "r" / "alpha").exists()
