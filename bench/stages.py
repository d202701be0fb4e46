"""Benchmark stages: each runs in a fresh process so its peak memory is its own.

``bench/run.py`` runs :func:`child_main` once per stage in a new process, forked from a
clean server process that has only imported the libraries (``multiprocessing``
forkserver), so no stage inherits another's memory and none pays the imports. Inside the
child a stage loads its inputs (not timed: ``load_seconds``) and then does the work
being measured (``seconds``, with ``parts`` when it has several steps); the child
reports its CPU time and peak resident memory (``ru_maxrss``). A stage whose module has
not landed yet reports ``not available`` with the reason, never a number.

``python bench/stages.py STAGE --org DIR --scratch DIR`` runs one stage by hand.

Stages are entries in :data:`STAGES` (a registry, like the kit's presets and triggers):
adding one is adding one decorated function.
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEED = 42


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------
@dataclass
class Clock:
    """Wall time of the timed parts of a stage, and of its (untimed) loading."""

    parts: dict[str, float] = field(default_factory=dict)
    load_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    peak_after: dict[str, float] = field(default_factory=dict)  # MiB, peak so far per part

    @contextmanager
    def load(self) -> Iterator[None]:
        """Reading inputs: recorded as ``load_seconds``, not as the stage's time."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.load_seconds += time.perf_counter() - t

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        """The work being measured (several parts add up to the stage's time)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.parts[part] = self.parts.get(part, 0.0) + time.perf_counter() - t
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
            self.peak_after[part] = round(peak, 1)


@dataclass(frozen=True)
class Stage:
    """One benchmark stage."""

    name: str
    label: str
    needs: tuple[str, ...]  # "module" or "module:attribute" that must exist
    fn: Callable[[Path, Path, dict[str, Any], Clock], None]
    baseline_of: str | None = None  # the kit stage this is the naive baseline of


STAGES: dict[str, Stage] = {}


def stage(name: str, label: str, *needs: str, baseline_of: str | None = None) -> Callable:
    """Register a stage function ``fn(org, scratch, opts, clock)``."""

    def deco(fn: Callable) -> Callable:
        STAGES[name] = Stage(name, label, tuple(needs), fn, baseline_of)
        return fn

    return deco


def missing(needs: tuple[str, ...]) -> str | None:
    """What is missing among ``needs`` (None when everything imports)."""
    for need in needs:
        module, _, attr = need.partition(":")
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            return f"module {module} is not available ({exc})"
        if attr and not hasattr(mod, attr):
            return f"{module}.{attr} is not available"
    return None


# ---------------------------------------------------------------------------
# Shared loading helpers
# ---------------------------------------------------------------------------
def _tables(org: Path):
    from playbook.config import load_org
    from playbook.tables import load_tables

    cfg = load_org(org)
    return cfg, load_tables(cfg)


def _season(cfg: Any, tables: Any) -> tuple[str, Any]:
    """The report season and its as-of instant, as ``report.start`` settles them."""
    import pandas as pd

    from playbook.seasons import latest_complete_season, season_bounds, season_of

    times = tables.order_lines["purchase_time"]
    m = cfg.season_start_month
    season = latest_complete_season(times.max(), m)
    seen = set(season_of(times, m).dropna())
    if season not in seen:
        season = max(seen)
    return season, season_bounds(season, m)[1] - pd.Timedelta(seconds=1)


def intake_files(org: Path) -> list[Path]:
    """Every file intake reads for this organisation (sources and joined lookups)."""
    from playbook import presets
    from playbook.config import load_org

    return presets.source_files(load_org(org))


def _clv_summary(cfg: Any, tables: Any, as_of: Any):
    from playbook.clv import clv_settings, summarise_transactions

    cs = clv_settings(cfg)
    summary = summarise_transactions(
        tables.order_lines,
        observation_end=as_of.normalize(),
        time_unit=cs.time_unit,
        count_comps=cs.count_comps,
    )
    return cs, summary


def _params(model: Any) -> dict[str, float]:
    return {k: float(v) for k, v in model.params_.items()}


# ---------------------------------------------------------------------------
# The stages
# ---------------------------------------------------------------------------
@stage("generate", "generate (synthetic exports)", "playbook.synth:generate")
def _generate(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.synth import SynthConfig, generate

    with clock.timed("generate"):
        out = generate(org, SynthConfig(seed=int(opts.get("seed", SEED)), customers=opts["n"]))
    clock.info["rows"] = out["files"]


@stage("intake", "intake from CSV (validated, Parquet written)", "playbook.intake:run_intake")
def _intake(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.intake import run_intake

    with clock.timed("intake"):
        result = run_intake(org, write=True)
    summary = result.summary()
    clock.info["rows_read"] = int(summary["rows_read"].sum())
    clock.info["rows_dropped"] = int(summary["rows_dropped"].sum())
    clock.info["order_lines"] = len(result.tables["order_lines"])


@stage(
    "intake_read_csv",
    "baseline: pandas.read_csv, default settings, same files",
    "playbook.presets",
    baseline_of="intake",
)
def _intake_read_csv(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    import pandas as pd

    with clock.load():
        files = intake_files(org)
    rows = 0
    for path in files:
        with clock.timed("read_csv"):
            frame = pd.read_csv(path)
        rows += len(frame)
        del frame
    clock.info["rows_read"] = rows
    clock.info["files"] = len(files)


@stage("features", "features (build_features)", "playbook.features:build_features")
def _features(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.features import build_features

    with clock.load():
        cfg, tables = _tables(org)
        _, as_of = _season(cfg, tables)
    with clock.timed("build_features"):
        feats = build_features(tables, as_of, cfg)
    clock.info["customers"] = len(feats)


@stage(
    "features_naive",
    "baseline: per-customer groupby().apply",
    "playbook.features:naive_features_baseline",
    baseline_of="features",
)
def _features_naive(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    """The naive baseline on a random sample of customers (it is far too slow for all).

    The kit runs on the same sample afterwards (not timed into the stage) so the two can
    be checked for the same answers; ``sample_fraction`` lets run.py scale the time.
    """
    import numpy as np
    import pandas as pd

    from playbook.features import build_features, naive_features_baseline
    from playbook.tables import Tables, effective_tickets

    with clock.load():
        cfg, tables = _tables(org)
        _, as_of = _season(cfg, tables)
        ol = tables.order_lines
        population = pd.unique(effective_tickets(ol)["customer_id"].dropna())
        size = min(int(opts.get("sample", 3000)), len(population))
        rng = np.random.default_rng(SEED)
        chosen = pd.Index(rng.choice(population, size=size, replace=False))
        frames = dict(tables.frames)
        frames["order_lines"] = ol.loc[ol["customer_id"].isin(chosen)].reset_index(drop=True)
        cu = tables.customers
        frames["customers"] = cu.loc[cu["customer_id"].isin(chosen)].reset_index(drop=True)
        sample = Tables(frames=frames, available=tables.available)
        del tables, frames, ol, cu
    with clock.timed("naive"):
        naive = naive_features_baseline(sample, as_of, cfg.season_start_month)
    t = time.perf_counter()
    kit = build_features(sample, as_of, cfg)
    kit_seconds = time.perf_counter() - t
    cols = [c for c in naive.columns if c in kit.columns]
    same = {}
    for c in cols:
        a, b = naive[c].reindex(kit.index), kit[c]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            same[c] = bool(np.allclose(a.astype(float), b.astype(float), equal_nan=True))
        else:
            same[c] = bool((a.astype("string").fillna("") == b.astype("string").fillna("")).all())
    clock.info.update(
        sample_customers=int(size),
        population=int(len(population)),
        sample_fraction=size / max(len(population), 1),
        kit_seconds_same_sample=kit_seconds,
        same_customers=bool(naive.index.sort_values().equals(kit.index.sort_values())),
        same_values=same,
    )


@stage("tiers", "tiers (assign_tiers + tier_history)", "playbook.tiers:tier_history")
def _tiers(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.features import build_features, prepare
    from playbook.tiers import assign_tiers, tier_history

    with clock.load():
        cfg, tables = _tables(org)
        season, as_of = _season(cfg, tables)
        prep = prepare(tables, cfg)
        feats = build_features(prep, as_of, cfg)
    with clock.timed("assign_tiers"):
        tiers = assign_tiers(feats, cfg, as_of=as_of)
    with clock.timed("tier_history"):
        history = tier_history(prep, cfg, until=season)
    clock.info.update(customers=len(tiers), history_rows=len(history))


@stage("clustering", "clustering (k-means on features)", "playbook.segments:cluster_inputs")
def _clustering(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.features import artform_shares, build_features, prepare
    from playbook.segments import cluster_inputs, clusters_from_settings, segment_settings

    with clock.load():
        cfg, tables = _tables(org)
        _, as_of = _season(cfg, tables)
        prep = prepare(tables, cfg)
        feats = build_features(prep, as_of, cfg)
    with clock.timed("clusters"):
        top = int(segment_settings(cfg).get("top_artforms", 8))
        arts = artform_shares(prep, as_of, cfg, top=top)
        model = clusters_from_settings(cfg).fit(cluster_inputs(feats, arts, cfg))
    clock.info.update(customers=len(feats), clusters=int(model.n_clusters_))


@stage("journey", "journey (build_journey + tier flows)", "playbook.journey:build_journey")
def _journey(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.journey import build_journey, tier_flows
    from playbook.tiers import tier_history

    with clock.load():
        cfg, tables = _tables(org)
        season, as_of = _season(cfg, tables)
        history = tier_history(tables, cfg, until=season)
    with clock.timed("build_journey"):
        trips = build_journey(tables, cfg, as_of=as_of)
    with clock.timed("tier_flows"):
        flows = tier_flows(history)
    clock.info.update(visits=len(trips), flow_rows=len(flows))


@stage(
    "clv", "CLV summary + BG/NBD fit (compressed) + predictions", "playbook.clv_models:fit_bgnbd"
)
def _clv(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.clv import predict_clv
    from playbook.clv_models import fit_bgnbd

    with clock.load():
        cfg, tables = _tables(org)
        _, as_of = _season(cfg, tables)
    with clock.timed("summary"):
        cs, summary = _clv_summary(cfg, tables, as_of)
    with clock.timed("fit"):
        model = fit_bgnbd(summary, compress=True)
    with clock.timed("predict"):
        pred = predict_clv(
            model,
            summary,
            horizon_months=cs.horizon_months,
            annual_discount_rate=cs.annual_discount_rate,
            margin=cs.margin,
            time_unit=cs.time_unit,
        )
    clock.info.update(
        customers=len(summary),
        rows_fitted=int(model.n_rows_fitted_),
        params=_params(model),
        predictions=len(pred),
    )
    (scratch / "clv_params.json").write_text(json.dumps(_params(model)))


@stage(
    "clv_lifetimes",
    "baseline: lifetimes BetaGeoFitter on uncompressed rows",
    "playbook.clv_models:fit_bgnbd",
    "lifetimes",
    baseline_of="clv",
)
def _clv_lifetimes(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.clv_models import fit_bgnbd

    with clock.load():
        cfg, tables = _tables(org)
        _, as_of = _season(cfg, tables)
        _, summary = _clv_summary(cfg, tables, as_of)
        del tables
    with clock.timed("fit"):
        model = fit_bgnbd(summary, compress=False)
    params = _params(model)
    clock.info.update(customers=len(summary), rows_fitted=int(model.n_rows_fitted_), params=params)
    kit_file = scratch / "clv_params.json"
    if kit_file.exists():
        kit = json.loads(kit_file.read_text())
        rel = {k: abs(kit[k] - v) / abs(v) for k, v in params.items() if k in kit and v}
        clock.info["max_relative_param_difference"] = max(rel.values()) if rel else None


def _moment_inputs(cfg: Any, tables: Any, as_of: Any):
    """CLV predictions for the at-risk trigger, as the moments notebook gets them."""
    from playbook.clv import clv_settings, forecast

    return forecast(tables, as_of.normalize(), clv_settings(cfg)).predictions


@stage("moments", "moments (find_moments + action list)", "playbook.moments:find_moments")
def _moments(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.moments import build_action_list, find_moments, load_id_map, prepare_moments

    with clock.load():
        cfg, tables = _tables(org)
        _, as_of = _season(cfg, tables)
        try:
            clv = _moment_inputs(cfg, tables, as_of)
        except Exception:
            clv = None
        id_map = load_id_map(cfg)
    with clock.timed("prepare"):
        data = prepare_moments(tables)
    with clock.timed("find"):
        found = find_moments(data, as_of, cfg=cfg, clv=clv)
    with clock.timed("action_list"):
        actions = build_action_list(found, data, as_of=as_of, cfg=cfg, id_map=id_map)
    clock.info.update(moments=len(found), actions=len(actions), with_clv=clv is not None)


@stage("render", "render the report (papermill + HTML)", "playbook.render:render_season")
def _render(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    from playbook.render import render_season

    only = opts.get("render_only") or None
    with clock.timed("render"):
        result = render_season(org, reports_root=scratch / "reports", only=only)
    clock.info.update(notebooks=result.notebooks, notebook_seconds=notebook_seconds(result))


def notebook_seconds(result: Any) -> dict[str, float]:
    """Each rendered notebook's own run time (papermill's record in the executed copy)."""
    out: dict[str, float] = {}
    for name in result.notebooks:
        path = Path(result.output_dir) / name
        if path.exists():
            meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
            seconds = (meta.get("papermill") or {}).get("duration")
            if seconds is not None:
                out[name.removesuffix(".ipynb")] = round(float(seconds), 1)
    return out


@stage(
    "pipeline",
    "whole analysis pipeline in one process (intake → action list)",
    "playbook.intake:run_intake",
)
def _pipeline(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    """Intake → features → tiers → clustering → journey → CLV → moments, one process.

    Steps whose module is absent are listed in ``info["skipped"]``.
    """
    from playbook.intake import run_intake

    skipped: list[str] = []

    def have(name: str) -> bool:
        why = missing(STAGES[name].needs)
        if why:
            skipped.append(f"{name}: {why}")
        return why is None

    with clock.timed("intake"):
        result = run_intake(org, write=True)
        cfg, tables = result.config, result.tables
        season, as_of = _season(cfg, tables)
    feats = prep = history = clv = None
    if have("features"):
        from playbook.features import build_features, prepare

        with clock.timed("features"):
            prep = prepare(tables, cfg)
            feats = build_features(prep, as_of, cfg)
    if have("tiers") and feats is not None:
        from playbook.tiers import assign_tiers, tier_history

        with clock.timed("tiers"):
            assign_tiers(feats, cfg, as_of=as_of)
            history = tier_history(prep, cfg, until=season)
    if have("clustering") and feats is not None:
        from playbook.features import artform_shares
        from playbook.segments import cluster_inputs, clusters_from_settings, segment_settings

        with clock.timed("clustering"):
            top = int(segment_settings(cfg).get("top_artforms", 8))
            arts = artform_shares(prep, as_of, cfg, top=top)
            clusters_from_settings(cfg).fit(cluster_inputs(feats, arts, cfg))
            del arts
    feats = prep = None  # later steps start from the tables, as the notebooks do
    if have("journey"):
        from playbook.journey import build_journey, tier_flows

        with clock.timed("journey"):
            build_journey(tables, cfg, as_of=as_of)
            if history is not None:
                tier_flows(history)
    history = None
    if have("clv"):
        with clock.timed("clv"):
            clv = _moment_inputs(cfg, tables, as_of)
    if have("moments"):
        from playbook.moments import build_action_list, find_moments, load_id_map, prepare_moments

        with clock.timed("moments"):
            data = prepare_moments(tables)
            found = find_moments(data, as_of, cfg=cfg, clv=clv)
            actions = build_action_list(found, data, as_of=as_of, cfg=cfg, id_map=load_id_map(cfg))
        clock.info["actions"] = len(actions)
    clock.info["skipped"] = skipped


@stage("noop", "python + kit imports only (memory floor)", "playbook")
def _noop(org: Path, scratch: Path, opts: dict[str, Any], clock: Clock) -> None:
    with clock.timed("import"):
        for name in ("pandas", "pyarrow", "sklearn", "playbook.intake", "playbook.tables"):
            importlib.import_module(name)


# ---------------------------------------------------------------------------
# Child entry point
# ---------------------------------------------------------------------------
def run_child(name: str, org: Path, scratch: Path, opts: dict[str, Any]) -> dict[str, Any]:
    """Run one stage in this process and return what it measured."""
    st = STAGES[name]
    why = missing(st.needs)
    if why:
        return {"status": "not available", "reason": why}
    clock = Clock()
    try:
        st.fn(org, scratch, opts, clock)
    except Exception as exc:
        return {
            "status": "failed",
            "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "traceback": traceback.format_exc(limit=8),
        }
    return {
        "status": "ok",
        "seconds": sum(clock.parts.values()),
        "parts": clock.parts,
        "load_seconds": clock.load_seconds,
        "peak_after_mib": clock.peak_after,
        "info": clock.info,
    }


def child_main(
    name: str, org: str, scratch: str, opts: dict[str, Any], result: str, log: str
) -> None:
    """Entry point of a stage's own process: output to ``log``, measurements to ``result``.

    Peak memory is this process's ``ru_maxrss`` (or that of a process it started and
    waited for, such as a notebook kernel, when larger); CPU time includes both.
    """
    import os

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    Path(scratch).mkdir(parents=True, exist_ok=True)
    out = run_child(name, Path(org), Path(scratch), opts)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["cpu_seconds"] = round(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, 3)
    out["peak_rss_mib"] = round(max(me.ru_maxrss, kids.ru_maxrss) / 1024, 1)  # Linux: KiB
    Path(result).write_text(json.dumps(out, default=str, indent=1))


def main(argv: list[str] | None = None) -> int:
    """Run one stage from the command line (for trying a stage by hand)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("stage", choices=sorted(STAGES))
    p.add_argument("--org", type=Path, required=True)
    p.add_argument("--scratch", type=Path, required=True)
    p.add_argument("--opts", default="{}", help="JSON options (n, seed, sample, render_only)")
    args = p.parse_args(argv)
    args.scratch.mkdir(parents=True, exist_ok=True)
    out = run_child(args.stage, args.org, args.scratch, json.loads(args.opts))
    print(json.dumps(out, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
