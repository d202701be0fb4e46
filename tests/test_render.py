"""Rendering: HTML without code, atomic replacement, failures kept for debugging, batch."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import TINY_FILES, write_org

from playbook.batch import run_batch
from playbook.cli import main as cli_main
from playbook.intake import run_intake
from playbook.render import RenderError, default_notebooks_dir, render_season

TODAY = "2025-01-01"


def _notebooks(
    tmp_path: Path, failing: bool = False, thin: bool = False, audit: bool = True
) -> Path:
    """A copy of the data-audit notebook, plus a notebook that fails when asked to."""
    folder = tmp_path / "notebooks"
    folder.mkdir(parents=True)
    if audit:
        shutil.copy(default_notebooks_dir() / "00_data_audit.ipynb", folder)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('org_dir = ""\nseason = ""\noutput_dir = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Second page"),
        params,
        nbformat.v4.new_code_cell("print('second page ran')"),
        nbformat.v4.new_code_cell("raise ValueError('planted failure')" if failing else "1 + 1"),
    ]
    if thin:
        nb.cells.append(
            nbformat.v4.new_code_cell(
                "from playbook.errors import NotEnoughData\n"
                "raise NotEnoughData('Nobody has come back <yet>.\\n"
                "What to do: render again after next season.')"
            )
        )
    nbformat.write(nb, folder / "05_second.ipynb")
    return folder


@pytest.fixture
def org(tmp_path: Path) -> Path:
    org = write_org(tmp_path / "tiny", TINY_FILES)
    run_intake(org, today=TODAY)
    return org


def test_render_writes_html_without_code(org: Path, tmp_path: Path) -> None:
    result = render_season(
        org, reports_root=tmp_path / "reports", notebooks_dir=_notebooks(tmp_path)
    )
    out = result.output_dir
    assert out == (tmp_path / "reports" / "tiny" / "2024-25").resolve()
    assert sorted(p.name for p in out.iterdir()) == [
        "00_data_audit.html",
        "00_data_audit.ipynb",
        "05_second.html",
        "05_second.ipynb",
        "index.html",
    ]
    page = (out / "00_data_audit.html").read_text()
    assert "Nothing lost" in page  # markdown is there
    assert "hl-ipython3" not in page and "report.start(" not in page  # no code
    assert "org_dir" not in page  # nor the parameters / injected-parameters cells
    assert "Traceback" not in page and "Warning" not in page
    index = (out / "index.html").read_text()
    assert 'href="00_data_audit.html"' in index and "Data audit" in index
    executed = nbformat.read(out / "00_data_audit.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and str(org.resolve()) in injected[0].source


def test_kernels_stay_quiet_and_private(
    org: Path, tmp_path: Path, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No kernel log lines reach the user's terminal (a warning about TCP eavesdropping,
    an interrupt logged at shutdown), and the kernel's socket folder is removed."""
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    render_season(
        org, reports_root=tmp_path / "reports", notebooks_dir=_notebooks(tmp_path), jobs=1
    )
    err = capfd.readouterr().err
    assert "IPKernelApp" not in err and "eavesdropping" not in err, err
    assert list(temp.iterdir()) == []


def test_rerender_replaces_the_report_atomically(org: Path, tmp_path: Path) -> None:
    nbs = _notebooks(tmp_path, audit=False)  # a full render of a one-page report
    first = render_season(org, reports_root=tmp_path / "r", notebooks_dir=nbs)
    (first.output_dir / "stale.txt").write_text("from the first run")
    second = render_season(org, reports_root=tmp_path / "r", notebooks_dir=nbs)
    assert second.output_dir == first.output_dir
    assert not (second.output_dir / "stale.txt").exists()
    assert [p.name for p in (tmp_path / "r" / "tiny").iterdir()] == [
        "2024-25"
    ]  # no temp folders left


def test_failure_keeps_the_old_report_and_the_partial_notebook(org: Path, tmp_path: Path) -> None:
    good = render_season(
        org, reports_root=tmp_path / "r", notebooks_dir=_notebooks(tmp_path / "a"), only=["05"]
    )
    (good.output_dir / "marker.txt").write_text("previous good report")
    with pytest.raises(RenderError) as err:
        render_season(
            org, reports_root=tmp_path / "r", notebooks_dir=_notebooks(tmp_path / "b", failing=True)
        )
    exc = err.value
    assert (
        exc.notebook == "05_second.ipynb"
        and "planted failure" in exc.error
        and exc.cell is not None
    )
    assert (good.output_dir / "marker.txt").exists()  # the previous report is untouched
    partial = nbformat.read(exc.kept, as_version=4)
    assert any("second page ran" in str(c.get("outputs")) for c in partial.cells)


def test_thin_data_leave_a_note_page_not_a_failed_report(org: Path, tmp_path: Path) -> None:
    result = render_season(
        org, reports_root=tmp_path / "r", notebooks_dir=_notebooks(tmp_path, thin=True)
    )
    assert result.notebooks == ["00_data_audit.ipynb", "05_second.ipynb"]
    assert result.not_available == {"05_second.ipynb": "Nobody has come back <yet>."}
    page = (result.output_dir / "05_second.html").read_text()
    assert "Second page" in page and "Not available for this season" in page
    assert "Nobody has come back &lt;yet&gt;." in page  # escaped
    assert "render again after next season" in page and "Traceback" not in page
    index = (result.output_dir / "index.html").read_text()
    assert "Second page (not available: not enough data yet)" in index
    assert (result.output_dir / "00_data_audit.html").exists()  # the rest is there
    assert not (tmp_path / "r" / "tiny" / "2024-25.failed").exists()


def test_cli_render_prints_where_the_report_is(org: Path, tmp_path: Path, capsys) -> None:
    code = cli_main(
        [
            "render",
            str(org),
            "--reports",
            str(tmp_path / "r"),
            "--notebooks",
            str(_notebooks(tmp_path)),
            "--only",
            "05",
        ]
    )
    assert code == 0
    assert "index.html" in capsys.readouterr().out
    assert (tmp_path / "r" / "index.html").exists()


def test_batch_one_broken_organisation(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    for name in ("alpha", "beta", "gamma"):
        write_org(data / name, TINY_FILES)
    (data / "beta" / "org.yaml").write_text(
        (data / "beta" / "org.yaml")
        .read_text()
        .replace("season_start_month: 9", "season_start_month: thirteen")
    )
    nbs = _notebooks(tmp_path)
    code = cli_main(
        [
            "batch",
            *[str(p) for p in sorted(data.iterdir())],
            "--jobs",
            "2",
            "--reports",
            str(tmp_path / "reports"),
            "--notebooks",
            str(nbs),
            "--only",
            "05",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "2 rendered, 1 failed" in out
    assert re.search(r"beta\s+failed", out) and "season_start_month" in out
    assert (tmp_path / "reports" / "alpha" / "2024-25" / "index.html").exists()
    assert (tmp_path / "reports" / "gamma" / "2024-25" / "index.html").exists()
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "alpha" in index and "gamma" in index and "beta" not in index


def test_batch_failure_names_notebook_and_cell(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_org(data / "alpha", TINY_FILES)
    table = run_batch(
        [data / "alpha"],
        reports_root=tmp_path / "r",
        notebooks_dir=_notebooks(tmp_path, failing=True),
        only=["05"],
        progress=False,
    )
    row = table.iloc[0]
    assert row["status"] == "failed" and row["notebook"] == "05_second.ipynb"
    assert "planted failure" in row["error"] and row["cell"] != ""
    assert Path(row["report"]).exists()  # the partly executed notebook is kept


def test_batch_on_a_local_dask_cluster(tmp_path: Path) -> None:
    import distributed  # the cluster extra; make install installs it

    data = tmp_path / "data"
    for name in ("alpha", "gamma"):
        write_org(data / name, TINY_FILES)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        table = run_batch(
            sorted(data.iterdir()),
            reports_root=tmp_path / "r",
            notebooks_dir=_notebooks(tmp_path),
            only=["05"],
            scheduler=cluster.scheduler_address,
            progress=False,
        )
    assert table["status"].tolist() == ["ok", "ok"]
    summary = (tmp_path / "r" / "batch_summary.csv").read_text()
    assert "alpha" in summary and "gamma" in summary
    assert json.dumps(table.to_dict()) is not None


def test_index_keeps_customer_lists_apart_from_the_board_pack(tmp_path: Path) -> None:
    from playbook.render import write_index

    (tmp_path / "scorecard.csv").write_text("season,tier,customers\n2025-26,loyal,12\n")
    (tmp_path / "actions.csv").write_text("\ufeffsource_customer_id,due_date\n753206,2026-08-31\n")
    (tmp_path / "personas.html").write_text("<p>cards</p>")
    pd.DataFrame({"customer_id": ["C1"], "clv": [1.0]}).to_parquet(tmp_path / "at_risk.parquet")
    index = write_index(tmp_path, "City Theatre", "2025-26", []).read_text()
    exports, _, private = index.partition("Customer lists for the box office")
    assert 'href="scorecard.csv"' in exports and 'href="personas.html"' in exports
    assert 'href="actions.csv"' not in exports
    assert 'href="actions.csv"' in private and "remove them from this folder" in private
    assert 'href="at_risk.parquet"' in private


def _page(folder: Path, name: str, title: str, code: str) -> None:
    """A one-cell numbered notebook taking the usual parameters."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('org_dir = ""\nseason = ""\noutput_dir = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {title}"),
        params,
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, folder / name)


def test_render_only_replaces_the_chosen_pages_and_keeps_the_rest(
    org: Path, tmp_path: Path, capsys
) -> None:
    nbs = _notebooks(tmp_path, audit=False)
    _page(
        nbs,
        "06_third.ipynb",
        "Third page",
        "from pathlib import Path\nPath(output_dir, 'third.csv').write_text('season\\n1\\n')",
    )
    full = render_season(org, reports_root=tmp_path / "r", notebooks_dir=nbs, jobs=1)
    out = full.output_dir
    (out / "notes.txt").write_text("kept")
    before = sorted(p.name for p in out.iterdir())
    third = (out / "06_third.html").read_bytes()
    second_nb = (out / "05_second.ipynb").read_bytes()
    code = cli_main(
        ["render", str(org), "--reports", str(tmp_path / "r"), "--notebooks", str(nbs)]
        + ["--only", "05"]
    )
    assert code == 0 and "kept from the earlier report: 06_third.ipynb" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == before  # nothing lost
    assert (out / "06_third.html").read_bytes() == third and (out / "notes.txt").exists()
    assert (out / "05_second.ipynb").read_bytes() != second_nb  # run again
    index = (out / "index.html").read_text()
    assert index.index("Second page") < index.index("Third page")
    assert 'href="06_third.html"' in index and 'href="third.csv"' in index
    assert [p.name for p in (tmp_path / "r" / "tiny").iterdir()] == ["2024-25"]


@pytest.mark.parametrize(
    ("season", "says"),
    [
        ("2030-31", "Season 2030-31 has no sales in this organisation's data (after the data end)"),
        ("2019-20", "Season 2019-20 has no sales in this organisation's data (before the data"),
        ("2025-27", "Season '2025-27' is not written like '2025-26'"),
        ("2025/26", "Season '2025/26' is not written like '2025-26'"),
    ],
)
def test_render_checks_the_season_before_running_anything(
    org: Path, tmp_path: Path, capsys, season: str, says: str
) -> None:
    nbs = _notebooks(tmp_path, audit=False)
    code = cli_main(
        ["render", str(org), "--season", season, "--reports", str(tmp_path / "r")]
        + ["--notebooks", str(nbs)]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and "Seasons with sales: 2024-25." in err
    assert "Traceback" not in err
    assert not (tmp_path / "r" / "tiny").exists() or not any((tmp_path / "r" / "tiny").iterdir())


def test_render_says_when_exports_changed_after_the_last_intake(
    org: Path, tmp_path: Path, capsys
) -> None:
    import os
    import time

    from playbook.render import stale_inputs

    assert stale_inputs(org) == []
    later = time.time() + 120
    os.utime(org / "sales.csv", (later, later))
    stale = stale_inputs(org)
    assert len(stale) == 1
    assert stale[0].startswith("sales.csv changed after the last intake (")
    assert f"run `playbook intake {org.resolve()}` first" in stale[0]
    code = cli_main(
        ["render", str(org), "--reports", str(tmp_path / "r")]
        + ["--notebooks", str(_notebooks(tmp_path, audit=False))]
    )
    err = capsys.readouterr().err
    assert code == 0
    assert "Warning: sales.csv changed after the last intake" in err
    assert "without the changed files named above" in err
    os.utime(org / "sales.csv", (later - 600, later - 600))
    run_intake(org, today=TODAY)  # the same data taken in again: fresh
    assert stale_inputs(org) == []
    (org / "org.yaml").write_text((org / "org.yaml").read_text() + "\n")
    os.utime(org / "org.yaml", (later + 60, later + 60))
    assert [s.split(" changed")[0] for s in stale_inputs(org)] == ["org.yaml"]
