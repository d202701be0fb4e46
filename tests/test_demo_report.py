"""The demo organisation end to end: generate, intake, render every notebook."""

from __future__ import annotations

from pathlib import Path

import nbformat

from playbook.render import default_notebooks_dir, list_notebooks, render_season


def test_full_report_renders_for_a_small_generated_organisation(
    small_org: Path, tmp_path: Path
) -> None:
    result = render_season(small_org, reports_root=tmp_path / "reports")
    expected = [p.name for p in list_notebooks(default_notebooks_dir())]
    assert result.notebooks == expected
    out = result.output_dir
    assert out.name == result.season and (out / "index.html").exists()
    for name in expected:
        page = (out / name.replace(".ipynb", ".html")).read_text(encoding="utf-8")
        assert "hl-ipython3" not in page, f"{name}: code visible in HTML"
        assert "Traceback" not in page, f"{name}: traceback in HTML"
        executed = nbformat.read(out / name, as_version=4)
        for cell in executed.cells:
            for output in cell.get("outputs", []):
                assert output.get("output_type") != "error", f"{name}: error output"
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    assert "Warning" not in output.get("text", ""), (
                        f"{name}: warning {output['text'][:200]}"
                    )


def test_ledger_reconciles_on_the_generated_organisation(small_org: Path) -> None:
    import pandas as pd

    summary = pd.read_csv(small_org / "canonical" / "ledger_summary.csv")
    assert len(summary) >= 8  # every export of the generator was read
    assert (summary["rows_read"] == summary["rows_kept"] + summary["rows_dropped"]).all()


def test_messy_rows_end_in_the_ledger_with_their_reasons(tmp_path: Path) -> None:
    import json

    import pandas as pd

    from playbook.intake import run_intake
    from playbook.synth import SynthConfig, generate

    org = tmp_path / "messy"
    generate(org, SynthConfig(seed=11, customers=600, messy=4))
    planted = json.loads((org / "truth" / "messy.json").read_text())
    result = run_intake(org)
    dropped = result.ledger.dropped_rows()
    sales = dropped[dropped["file"] == "exports/sales.csv"]
    assert sales["reason"].value_counts().to_dict() == planted
    summary = result.summary()
    assert (summary["rows_read"] == summary["rows_kept"] + summary["rows_dropped"]).all()
    raw_rows = len(pd.read_csv(org / "exports" / "sales.csv", dtype=str, skip_blank_lines=False))
    assert summary.set_index("file").loc["exports/sales.csv", "rows_read"] == raw_rows
