"""The same data, settings and seed give byte-identical report tables, process to process.

Each run is its own Python process with a different hash seed, so an order that depends
on set or dict hashing (or on anything else that varies between runs) shows up as
different bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "scripts" / "report_tables.py"


def _run(org: Path, out: Path, hash_seed: str) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(org), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv"))
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


@pytest.mark.slow
def test_report_tables_are_byte_identical_across_processes(small_org: Path, tmp_path: Path) -> None:
    first = _run(small_org, tmp_path / "a", "1")
    second = _run(small_org, tmp_path / "b", "2")
    expected = {"features", "tiers", "clusters", "personas", "journey", "clv", "actions"}
    assert expected <= {Path(name).stem for name in first}
    assert first.keys() == second.keys()
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"not byte-identical between runs: {differ}"
