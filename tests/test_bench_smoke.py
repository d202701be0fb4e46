"""The benchmark (``make bench``) at a tiny size, so it cannot rot.

Runs ``bench/run.py`` as ``make bench`` does (every stage in its own process) on an
organisation of 1,500 customers, rendering only notebook 00, and checks what it wrote:
every stage has a time and a peak memory, or says "not available" when its module has
not landed; the speed-ups are computed against baselines measured in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from run import COMPARISONS, ORDER  # noqa: E402  (bench/ is not a package)

ISSUE_STAGES = {
    "generate",
    "intake",
    "features",
    "tiers",
    "clustering",
    "journey",
    "clv",
    "moments",
    "render",
    "pipeline",
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        "--sizes",
        "1500",
        "--out",
        str(out),
        "--naive-sample",
        "150",
        "--render-only",
        "00",
        "--no-demo",
        "--timeout",
        "300",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "results.md").read_text().startswith("# Benchmark results")
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
def test_every_stage_has_time_and_memory(results: dict) -> None:
    stages = results["sizes"][0]["stages"]
    assert ISSUE_STAGES <= set(ORDER)
    assert list(stages) == list(ORDER)
    for name, res in stages.items():
        assert res["status"] in ("ok", "not available"), (name, res)
        if res["status"] == "ok":
            assert res["seconds"] >= 0 and res["cpu_seconds"] > 0, name
            assert res["peak_rss_mib"] > 50, name  # a Python process with pandas loaded
            assert res["tree_peak_rss_mib"] >= res["peak_rss_mib"], name
        else:
            assert "seconds" not in res and "peak_rss_mib" not in res, name
            assert res["reason"], name


@pytest.mark.slow
def test_ratios_against_baselines_of_the_same_run(results: dict) -> None:
    entry = results["sizes"][0]
    stages = entry["stages"]
    by_name = {c["name"]: c for c in entry["comparisons"]}
    assert set(by_name) == {c.name for c in COMPARISONS}
    for c in COMPARISONS:
        row = by_name[c.name]
        kit, base = stages[c.kit], stages[c.baseline]
        if kit["status"] != "ok" or base["status"] != "ok":
            assert row["speedup"] is None
            continue
        kit_s = kit["parts"][c.kit_part] if c.kit_part else kit["seconds"]
        base_s = base["seconds"] / base.get("info", {}).get("sample_fraction", 1.0)
        assert row["speedup"] == pytest.approx(base_s / kit_s, rel=0.01)
        assert row["met"] == (row["speedup"] >= c.target)
    features = by_name["features"]
    if features["status"] == "ok":  # the naive baseline gives the same answers
        assert all(features["same_values"].values())
    clv = by_name["clv"]
    if clv["status"] == "ok":  # lifetimes and the kit find the same parameters
        assert clv["max_relative_param_difference"] < 1e-3


@pytest.mark.slow
def test_pipeline_target_recorded(results: dict) -> None:
    entry = results["sizes"][0]
    target = entry["pipeline_target"]
    assert target is not None and target["judged"] is False  # judged at 1M customers
    assert target["seconds"] > 0 and target["peak_rss_gib"] > 0
    pipeline = entry["stages"]["pipeline"]
    assert set(pipeline["peak_after_mib"]) == set(pipeline["parts"])  # memory step by step
    assert results["machine"]["cpus"] and results["machine"]["pandas"]


@pytest.mark.slow
def test_render_records_each_notebooks_own_time(results: dict) -> None:
    render = results["sizes"][0]["stages"]["render"]
    assert render["status"] == "ok"
    per_notebook = render["info"]["notebook_seconds"]
    assert list(per_notebook) == ["00_data_audit"]  # --render-only 00
    assert 0 < per_notebook["00_data_audit"] <= render["seconds"]
