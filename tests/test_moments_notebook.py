"""Notebook 50 renders under papermill on the small generated organisation."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd

from playbook.moments import ACTION_COLUMNS
from playbook.render import default_notebooks_dir, render_season

NOTEBOOK = default_notebooks_dir() / "50_moment_design.ipynb"


def test_notebook_is_thin_with_the_standard_parameters() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    src = params[0].source
    for line in (
        'org_dir = "../data/demo"',
        'season = ""',
        'output_dir = "../reports/demo/latest"',
    ):
        assert line in src
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "ctx = report.start(org_dir, season, output_dir)" in code[1]
    for source in code:
        assert "def " not in source and "class " not in source
        assert not any(o for o in nb.cells if o.cell_type == "code" and o.get("outputs"))
    headings = [
        c.source.splitlines()[0]
        for c in nb.cells
        if c.cell_type == "markdown" and c.source.startswith("## ")
    ]
    assert [h.split(".")[0] for h in headings] == [f"## {i}" for i in range(1, 8)]


def test_notebook_renders_and_writes_the_action_list(small_org: Path, tmp_path: Path) -> None:
    result = render_season(small_org, reports_root=tmp_path / "reports", only=["50"])
    out = result.output_dir
    page = (out / "50_moment_design.html").read_text(encoding="utf-8")
    assert "hl-ipython3" not in page and "Traceback" not in page
    executed = nbformat.read(out / "50_moment_design.ipynb", as_version=4)
    for cell in executed.cells:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error"
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                raise AssertionError(f"stderr output: {output['text'][:300]}")
    actions = pd.read_csv(out / "actions.csv", dtype=str, encoding="utf-8-sig")
    assert list(actions.columns) == list(ACTION_COLUMNS)
    assert len(actions) > 0
    id_map = pd.read_parquet(small_org / "private" / "id_map.parquet")
    source = dict(zip(id_map["customer_id"], id_map["source_customer_id"].astype(str), strict=True))
    assert (actions["source_customer_id"] == actions["customer_id"].map(source)).all()
    # no emails, phone numbers, addresses or postcodes from the customer export, no names
    raw = pd.read_csv(small_org / "exports" / "customers.csv", dtype=str)
    text = (out / "actions.csv").read_text(encoding="utf-8-sig")
    for col in ("Email", "Phone", "Address Line 1", "Postcode"):
        assert not [v for v in raw[col].dropna() if v in text], col
    names = set(raw["First Name"].dropna()) | set(raw["Last Name"].dropna())
    for col in actions.columns:
        assert not set(actions[col].dropna()) & names, col
