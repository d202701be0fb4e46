"""``results.md``: the benchmark results as Markdown tables (from ``results.json``)."""

from __future__ import annotations

from typing import Any


def _num(v: Any, fmt: str = "{:,.1f}") -> str:
    return "–" if v is None else fmt.format(v)


def _yes(v: Any) -> str:
    return {True: "yes", False: "**no**", None: "–"}.get(v, str(v))


def _size_table(entry: dict[str, Any], labels: dict[str, str]) -> list[str]:
    baseline_of = {c["baseline_stage"]: c for c in entry.get("comparisons", [])}
    kit_of = {c["kit_stage"]: c for c in entry.get("comparisons", [])}
    lines = [
        "| stage | wall s | CPU s | peak MiB | all processes MiB | speed-up vs baseline | target | met |",
        "|---|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for name, res in entry["stages"].items():
        label = labels.get(name, name)
        if res["status"] != "ok":
            lines.append(f"| {label} | {res['status']} | | | | | | |")
            continue
        c = kit_of.get(name)
        speed, target, met = "", "", ""
        if c is not None and c.get("status") == "ok":
            speed = f"{c['speedup']:,.2f}×"
            target = f"≥ {c['target_speedup']:g}×"
            met = _yes(c["met"])
        wall = f"{res['seconds']:,.2f}"
        if name in baseline_of and res.get("info", {}).get("sample_fraction"):
            info = res["info"]
            wall = (
                f"{res['seconds']:,.2f} on {info['sample_customers']:,} customers "
                f"(≈ {res['seconds'] / info['sample_fraction']:,.0f} for all)"
            )
        lines.append(
            f"| {label} | {wall} | {_num(res.get('cpu_seconds'))} | "
            f"{_num(res.get('peak_rss_mib'), '{:,.0f}')} | "
            f"{_num(res.get('tree_peak_rss_mib'), '{:,.0f}')} | {speed} | {target} | {met} |"
        )
    return lines


def write_markdown(results: dict[str, Any]) -> str:
    """The whole report: machine, one table per size, the pipeline target, scaling, demo."""
    m = results.get("machine", {})
    labels = results.get("stage_labels", {})
    out = [
        "# Benchmark results",
        "",
        f"Run `{results.get('command', '')}` from {results.get('started', '')} to "
        f"{results.get('finished', '(running)')}.",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cpus', '?')} cores, "
        f"{m.get('memory_gib', '?')} GiB; Python {m.get('python')}, pandas {m.get('pandas')}, "
        f"numpy {m.get('numpy')}, pyarrow {m.get('pyarrow')}. Load average at start: "
        + ", ".join(f"{x:.1f}" for x in results.get("load_at_start", []))
        + ". Every stage ran in its own process; *wall s* is the stage's work without "
        "loading its inputs, *peak MiB* the largest process's peak resident memory "
        "(inputs included), *all processes MiB* the most the stage's processes held "
        "together (sampled every 0.25 s; the render runs notebooks side by side). "
        "Baselines ran right after the stage they are compared with.",
    ]
    for entry in results.get("sizes", []):
        n = entry["customers"]
        lines = entry.get("ticket_lines")
        out += ["", f"## {n:,} customers" + (f" ({lines:,} sales lines)" if lines else ""), ""]
        out += _size_table(entry, labels)
        notes = []
        for c in entry.get("comparisons", []):
            if c.get("status") != "ok":
                continue
            extra = []
            if "speedup_same_sample" in c:
                extra.append(f"{c['speedup_same_sample']:,.1f}× on the same sample")
            if c.get("same_values"):
                same = all(c["same_values"].values())
                extra.append("same values" if same else f"values differ: {c['same_values']}")
            if c.get("max_relative_param_difference") is not None:
                extra.append(
                    f"parameters agree within {c['max_relative_param_difference']:.1e} (relative)"
                )
            if "cpu_ratio" in c:
                extra.append(f"CPU-time ratio {c['cpu_ratio']:.2f}")
            notes.append(
                f"- {c['name']}: {c['what']}: {c['speedup']:,.2f}× "
                f"(target ≥ {c['target_speedup']:g}×)" + (f"; {'; '.join(extra)}" if extra else "")
            )
        per_notebook = entry["stages"].get("render", {}).get("info", {}).get("notebook_seconds")
        if per_notebook:
            notes.append(
                "- render, each notebook's own seconds (two run at a time): "
                + ", ".join(f"{k} {v:,.1f}" for k, v in per_notebook.items())
            )
        pt = entry.get("pipeline_target")
        if pt:
            verdict = (
                f"target < {pt['target_seconds']:g} s and < {pt['target_gib']:g} GiB: "
                f"{_yes(pt['met'])}"
                if pt["judged"]
                else "(the target is judged at 1,000,000 customers)"
            )
            notes.append(
                f"- whole pipeline in one process: {pt['seconds']:,.1f} s, "
                f"{pt['peak_rss_gib']:.2f} GiB peak {verdict}"
                + (f"; skipped: {'; '.join(pt['skipped'])}" if pt["skipped"] else "")
            )
            parts = entry["stages"]["pipeline"].get("parts", {})
            peaks = entry["stages"]["pipeline"].get("peak_after_mib", {})
            if parts:
                notes.append(
                    "  - steps (seconds; the process's peak memory once the step is done): "
                    + ", ".join(
                        f"{k} {v:,.1f} s" + (f" ({peaks[k] / 1024:.1f} GiB)" if k in peaks else "")
                        for k, v in parts.items()
                    )
                )
        if notes:
            out += [""] + notes
    sc = results.get("scaling") or {}
    if sc:
        a, b = sc["from_customers"], sc["to_customers"]
        sizes = sc.get("sizes", [a, b])
        heads = " | ".join(f"s at {n:,}" for n in sizes)
        steps = " | ".join(f"× {x:,}→{y:,}" for x, y in zip(sizes[:-1], sizes[1:], strict=True))
        out += [
            "",
            f"## Growth from {a:,} to {b:,} customers ({b / a:,.0f}× the customers)",
            "",
            "Linear growth is ×10 per step and an exponent of 1.",
            "",
            f"| stage | {heads} | {steps} | exponent | peak memory × |",
            "|---|" + "--:|" * (2 * len(sizes) + 1),
        ]
        for name, g in sc.items():
            if isinstance(g, dict):
                secs = " | ".join(f"{x:,.2f}" for x in g.get("seconds", []))
                grow = " | ".join(f"{x:,.1f}" for x in g.get("step_growth", []))
                out.append(
                    f"| {labels.get(name, name)} | {secs} | {grow} | "
                    f"{_num(g['exponent'], '{:.2f}')} | {g['memory_growth']:,.1f} |"
                )
    demo = results.get("demo")
    if demo:
        out += ["", f"## `make demo` ({demo['customers']:,} customers, environment installed)", ""]
        if demo.get("status") == "ok":
            steps = ", ".join(f"{k} {v['seconds']:,.1f} s" for k, v in demo["steps"].items())
            out.append(
                f"{demo['seconds']:,.1f} s in all ({steps}); target < "
                f"{demo['target_seconds']:g} s: {_yes(demo['met'])}."
            )
        else:
            out.append(f"failed: {demo.get('reason')}")
    return "\n".join(out) + "\n"
