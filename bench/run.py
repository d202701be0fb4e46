"""Benchmarks: how the kit scales from a small venue to a national pool (``make bench``).

For each size (default 10,000, 100,000 and 1,000,000 customers, about five ticket
lines each) a synthetic organisation is generated and every stage of the kit runs in a
fresh process, with its naive baseline right after it where one exists::

    .venv/bin/python bench/run.py                       # 10k, 100k, 1M and the demo
    .venv/bin/python bench/run.py --sizes 2000 --no-demo --naive-sample 200

Each stage's wall time, CPU time and peak resident memory (``ru_maxrss`` of the stage's
own process, forked from a server that has only imported the libraries; for the render,
the largest process including the notebook kernels) go to ``<out>/results.json`` and a Markdown table ``<out>/results.md``. The
whole analysis pipeline (intake → action list) also runs in one process, for the
120 s / 6 GiB target at a million customers. Stages whose module is missing are
recorded as "not available". Machine load is recorded with every stage: on a shared
machine compare the kit with its baseline (measured back to back), not across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from results_md import write_markdown  # noqa: E402  (bench/ is not a package)
from stages import STAGES, child_main  # noqa: E402

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEMO_CUSTOMERS = 20_000
PIPELINE_TARGET_SECONDS = 120.0
PIPELINE_TARGET_GIB = 6.0
PIPELINE_TARGET_CUSTOMERS = 1_000_000
DEMO_TARGET_SECONDS = 90.0

# Stage order; each baseline runs right after the stage it is compared with.
ORDER = (
    "noop",
    "generate",
    "intake",
    "intake_read_csv",
    "features",
    "features_naive",
    "tiers",
    "clustering",
    "journey",
    "clv",
    "clv_lifetimes",
    "moments",
    "render",
    "pipeline",
)


@dataclass(frozen=True)
class Comparison:
    """A kit stage against its naive baseline, with the speed-up the issue asks for."""

    name: str
    kit: str
    baseline: str
    target: float  # baseline seconds / kit seconds must be at least this
    kit_part: str | None = None  # compare one timed part of the kit stage
    what: str = ""


COMPARISONS = (
    Comparison(
        "intake",
        "intake",
        "intake_read_csv",
        1.0,
        what="validated intake (Parquet written) vs pandas.read_csv with defaults",
    ),
    Comparison(
        "features",
        "features",
        "features_naive",
        10.0,
        what="build_features vs groupby().apply per customer (baseline timed on a sample, "
        "scaled to all customers)",
    ),
    Comparison(
        "clv",
        "clv",
        "clv_lifetimes",
        10.0,
        kit_part="fit",
        what="BG/NBD fit on compressed rows vs lifetimes on one row per customer",
    ),
)


# ---------------------------------------------------------------------------
# Running one stage in its own process
# ---------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    for mod in ("pandas", "numpy", "pyarrow", "sklearn", "lifetimes"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    return info


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants now (KiB, from ``/proc``).

    Sampled while a stage runs, it catches processes that run side by side (the
    render's notebook kernels), which ``ru_maxrss`` (one process at a time) cannot.
    """
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def _load() -> float:
    return round(os.getloadavg()[0], 2)


# What the server imports before forking: the libraries every stage uses (a stage's
# peak memory includes them; the "noop" stage shows that floor).
PRELOAD = [
    "stages",
    "numpy",
    "pandas",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.parquet",
    "scipy.optimize",
    "scipy.special",
    "sklearn.cluster",
    "matplotlib.pyplot",
    "pandera",
    "playbook.intake",
    "playbook.tables",
]


def _context() -> mp.context.BaseContext:
    """Processes forked from a clean server that has imported only the libraries."""
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("forkserver")
        _CTX.set_forkserver_preload(PRELOAD)
    return _CTX


_CTX: mp.context.BaseContext | None = None


def run_stage(
    name: str,
    org: Path,
    scratch: Path,
    opts: dict[str, Any],
    *,
    timeout: float | None = None,
    log_dir: Path,
) -> dict[str, Any]:
    """Run one stage in a fresh process; it reports its own CPU time and peak RSS."""
    log_dir.mkdir(parents=True, exist_ok=True)
    scratch.mkdir(parents=True, exist_ok=True)
    result = scratch / f"{name}.result.json"
    result.unlink(missing_ok=True)
    log = log_dir / f"{opts.get('n', 'x')}-{name}.log"
    load_before = _load()
    t0 = time.perf_counter()
    proc = _context().Process(
        target=child_main,
        args=(name, str(org), str(scratch), opts, str(result), str(log)),
        name=f"bench-{name}",
    )
    proc.start()
    tree_peak = 0
    while proc.is_alive() and not (timeout and time.perf_counter() - t0 > timeout):
        tree_peak = max(tree_peak, tree_rss_kib(proc.pid))  # e.g. notebooks side by side
        proc.join(0.25)
    timed_out = proc.is_alive()
    if timed_out:
        proc.kill()
        proc.join()
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"status": "failed", "reason": f"exit code {proc.exitcode}"}
    if timed_out:
        out = {"status": "failed", "reason": f"stopped after the {timeout:.0f} s time limit"}
    elif result.exists():
        out = json.loads(result.read_text())
    if out["status"] == "failed" and "traceback" not in out and log.exists():
        out["log_tail"] = log.read_text(errors="replace").splitlines()[-15:]
    if out["status"] == "not available":
        out.pop("cpu_seconds", None)
        out.pop("peak_rss_mib", None)
    else:
        out["process_seconds"] = round(wall, 3)
        out["tree_peak_rss_mib"] = round(max(tree_peak / 1024, out.get("peak_rss_mib", 0)), 1)
    out.update(load_before=load_before, load_after=_load(), label=STAGES[name].label)
    return out


def _fmt_status(name: str, res: dict[str, Any]) -> str:
    if res["status"] != "ok":
        return f"  {name:16s} {res['status']}: {res.get('reason', '')}"
    return (
        f"  {name:16s} {res['seconds']:9.2f} s  (cpu {res['cpu_seconds']:8.1f} s, "
        f"peak {res['peak_rss_mib']:8.0f} MiB, load {res['load_before']:.1f})"
    )


# ---------------------------------------------------------------------------
# Comparisons, scaling and the targets
# ---------------------------------------------------------------------------
def _kit_seconds(stages: dict[str, Any], c: Comparison) -> float | None:
    res = stages.get(c.kit, {})
    if res.get("status") != "ok":
        return None
    return res["parts"].get(c.kit_part, res["seconds"]) if c.kit_part else res["seconds"]


def compare(stages: dict[str, Any]) -> list[dict[str, Any]]:
    """Speed-up of each kit stage over its baseline measured in the same run."""
    out = []
    for c in COMPARISONS:
        kit = _kit_seconds(stages, c)
        base = stages.get(c.baseline, {})
        row: dict[str, Any] = {
            "name": c.name,
            "kit_stage": c.kit,
            "baseline_stage": c.baseline,
            "what": c.what,
            "target_speedup": c.target,
            "kit_seconds": kit,
        }
        if kit is None or base.get("status") != "ok":
            row.update(status="not available", speedup=None, met=None)
            out.append(row)
            continue
        base_s = base["seconds"]
        info = base.get("info", {})
        fraction = info.get("sample_fraction")
        if fraction:  # timed on a sample of customers: scaled to all of them
            row["baseline_sample_seconds"] = base_s
            row["baseline_sample_customers"] = info.get("sample_customers")
            base_s = base_s / fraction
            kit_same = info.get("kit_seconds_same_sample")
            if kit_same:
                row["speedup_same_sample"] = base["seconds"] / kit_same
            row["same_values"] = info.get("same_values")
        if "max_relative_param_difference" in info:
            row["max_relative_param_difference"] = info["max_relative_param_difference"]
        speedup = base_s / kit if kit > 0 else math.inf
        row.update(
            status="ok",
            baseline_seconds=base_s,
            speedup=speedup,
            met=bool(speedup >= c.target),
        )
        if c.name == "intake":  # CPU time too: less sensitive to other jobs on the machine
            kcpu, bcpu = stages[c.kit]["cpu_seconds"], base["cpu_seconds"]
            row["cpu_ratio"] = bcpu / kcpu if kcpu else None
        out.append(row)
    return out


def pipeline_targets(n: int, stages: dict[str, Any]) -> dict[str, Any] | None:
    """The 120 s / 6 GiB target of the whole pipeline (judged at a million customers)."""
    res = stages.get("pipeline", {})
    if res.get("status") != "ok":
        return None
    gib = res["peak_rss_mib"] / 1024
    judged = n >= PIPELINE_TARGET_CUSTOMERS
    return {
        "seconds": round(res["seconds"], 2),
        "peak_rss_gib": round(gib, 2),
        "target_seconds": PIPELINE_TARGET_SECONDS,
        "target_gib": PIPELINE_TARGET_GIB,
        "judged": judged,
        "met": bool(res["seconds"] < PIPELINE_TARGET_SECONDS and gib < PIPELINE_TARGET_GIB)
        if judged
        else None,
        "skipped": res.get("info", {}).get("skipped", []),
    }


def scaling(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """How each stage's time grows with the customers: exponent b in time ∝ customers^b.

    For every stage: the time at each size, the growth between consecutive sizes and
    the exponent over the whole range (1 = linear). Baselines timed on a fixed sample
    of customers are left out (their time does not grow with the organisation).
    """
    done = [s for s in sizes if s["stages"]]
    if len(done) < 2:
        return {}
    lo, hi = done[0], done[-1]
    out: dict[str, Any] = {
        "from_customers": lo["customers"],
        "to_customers": hi["customers"],
        "sizes": [s["customers"] for s in done],
    }
    ratio = hi["customers"] / lo["customers"]
    for name in ORDER[1:]:  # not the memory floor
        runs = [s["stages"].get(name, {}) for s in done]
        if any(r.get("status") != "ok" or r["seconds"] <= 0 for r in runs):
            continue
        if any(r.get("info", {}).get("sample_fraction") for r in runs):
            continue
        growth = runs[-1]["seconds"] / runs[0]["seconds"]
        out[name] = {
            "seconds": [round(r["seconds"], 3) for r in runs],
            "step_growth": [
                round(b["seconds"] / a["seconds"], 1)
                for a, b in zip(runs[:-1], runs[1:], strict=True)
            ],
            "time_growth": round(growth, 1),
            "exponent": round(math.log(growth) / math.log(ratio), 2),
            "memory_growth": round(runs[-1]["peak_rss_mib"] / runs[0]["peak_rss_mib"], 1),
        }
    return out


# ---------------------------------------------------------------------------
# `make demo` on a machine that already has the environment
# ---------------------------------------------------------------------------
def run_demo(work: Path, customers: int, log_dir: Path) -> dict[str, Any]:
    """Time what ``make demo`` runs (synth, intake, render) with the CLI, in a scratch folder."""
    org = work / "demo"
    reports = work / "demo-reports"
    shutil.rmtree(org, ignore_errors=True)
    shutil.rmtree(reports, ignore_errors=True)
    cli = str(Path(sys.executable).with_name("playbook"))
    steps = {
        "synth": [cli, "synth", str(org), "--customers", str(customers)],
        "intake": [cli, "intake", str(org)],
        "render": [cli, "render", str(org), "--reports", str(reports)],
    }
    out: dict[str, Any] = {"customers": customers, "steps": {}, "load_before": _load()}
    total, peak = 0.0, 0.0
    for name, cmd in steps.items():
        t0 = time.perf_counter()
        with open(log_dir / f"demo-{name}.log", "w") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        total += wall
        peak = max(peak, usage.ru_maxrss / 1024)
        out["steps"][name] = {"seconds": round(wall, 2), "exit_code": proc.returncode}
        if proc.returncode:
            out.update(status="failed", reason=f"{name} exited with {proc.returncode}")
            return out
    out.update(
        status="ok",
        seconds=round(total, 2),
        peak_rss_mib=round(peak, 1),
        target_seconds=DEMO_TARGET_SECONDS,
        met=bool(total < DEMO_TARGET_SECONDS),
        load_after=_load(),
    )
    return out


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark the kit at several organisation sizes.")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    p.add_argument("--work", type=Path, help="where organisations are generated (default OUT/work)")
    p.add_argument("--stages", nargs="+", choices=ORDER, help="only these stages (default all)")
    p.add_argument("--skip", nargs="+", default=[], choices=ORDER, help="stages to leave out")
    p.add_argument(
        "--naive-sample",
        type=int,
        default=3000,
        help="customers the naive features baseline is timed on (then scaled to all)",
    )
    p.add_argument(
        "--render-only",
        nargs="*",
        default=None,
        help="render only notebooks with these prefixes (e.g. 00); default every notebook",
    )
    p.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per stage")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--keep", action="store_true", help="keep the generated organisations")
    p.add_argument("--demo", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument(
        "--rewrite",
        action="store_true",
        help="only recompute the derived figures and results.md from OUT/results.json",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # before the fork server starts
    out_dir: Path = args.out
    if args.rewrite:
        results = json.loads((out_dir / "results.json").read_text())
        for entry in results["sizes"]:
            entry["comparisons"] = compare(entry["stages"])
            entry["pipeline_target"] = pipeline_targets(entry["customers"], entry["stages"])
        results["scaling"] = scaling(results["sizes"])
        _save(out_dir, results)
        print(f"Rewrote {out_dir / 'results.md'}")
        return 0
    work: Path = args.work or out_dir / "work"
    out_dir.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log_dir = out_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    wanted = [s for s in (args.stages or ORDER) if s not in args.skip]
    results: dict[str, Any] = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "machine": machine(),
        "load_at_start": list(os.getloadavg()),
        "targets": {
            "pipeline_seconds": PIPELINE_TARGET_SECONDS,
            "pipeline_gib": PIPELINE_TARGET_GIB,
            "pipeline_customers": PIPELINE_TARGET_CUSTOMERS,
            "demo_seconds": DEMO_TARGET_SECONDS,
            "speedups": {c.name: c.target for c in COMPARISONS},
        },
        "stage_labels": {n: STAGES[n].label for n in ORDER},
        "sizes": [],
    }
    for n in args.sizes:
        org = work / f"org-{n}"
        scratch = work / f"scratch-{n}"
        shutil.rmtree(scratch, ignore_errors=True)
        if "generate" in wanted:
            shutil.rmtree(org, ignore_errors=True)
        opts = {
            "n": n,
            "seed": args.seed,
            "sample": args.naive_sample,
            "render_only": args.render_only,
        }
        print(f"{n:,} customers", flush=True)
        entry: dict[str, Any] = {"customers": n, "stages": {}}
        results["sizes"].append(entry)
        for name in ORDER:
            if name not in wanted:
                continue
            res = run_stage(name, org, scratch, opts, timeout=args.timeout, log_dir=log_dir)
            entry["stages"][name] = res
            print(_fmt_status(name, res), flush=True)
            _save(out_dir, results)
        gen = entry["stages"].get("generate", {}).get("info", {}).get("rows", {})
        entry["rows"] = gen
        entry["ticket_lines"] = next((v for k, v in gen.items() if "sales" in k), None)
        entry["comparisons"] = compare(entry["stages"])
        entry["pipeline_target"] = pipeline_targets(n, entry["stages"])
        _save(out_dir, results)
        if not args.keep:
            shutil.rmtree(org, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)
    results["scaling"] = scaling(results["sizes"])
    if args.demo:
        print(f"make demo ({DEMO_CUSTOMERS:,} customers)", flush=True)
        results["demo"] = run_demo(work, DEMO_CUSTOMERS, log_dir)
        print(f"  {results['demo'].get('seconds')} s ({results['demo']['status']})", flush=True)
        if not args.keep:
            shutil.rmtree(work / "demo", ignore_errors=True)
            shutil.rmtree(work / "demo-reports", ignore_errors=True)
    results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    results["load_at_end"] = list(os.getloadavg())
    _save(out_dir, results)
    print(f"Wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return 0


def _save(out_dir: Path, results: dict[str, Any]) -> None:
    """Write results.json and results.md (after every stage, so a long run can be followed)."""
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "results.md").write_text(write_markdown(results))


if __name__ == "__main__":
    sys.exit(main())
