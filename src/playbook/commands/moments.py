"""``playbook moments data/<org> --as-of DATE``: this week's action list, without a notebook.

Evaluates the organisation's trigger library as of the date and writes a dated,
consent-aware action list for CRM import (default
``data/<org>/moments/actions_<date>.csv``, or ``--out``). Customers are identified by
the organisation's own customer number (``source_customer_id``); the file holds no
names, emails, phone numbers or addresses, and is safe to open in a spreadsheet.

Earlier lists in the same folder are read so weekly runs do not repeat a moment
(``--no-history`` to ignore them). Lifetime-value predictions written by
``playbook clv`` are used for the at-risk trigger when present (``--no-clv`` to skip).
"""

from __future__ import annotations

import argparse
from pathlib import Path

CLV_FILE = Path("clv") / "clv_predictions.parquet"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``moments`` command."""
    p = sub.add_parser(
        "moments",
        help="evaluate the moment triggers and write a consent-aware action list (CSV)",
    )
    p.add_argument("org_dir", help="organisation folder holding org.yaml")
    p.add_argument(
        "--as-of", required=True, help="date of the list (YYYY-MM-DD): data up to its end"
    )
    p.add_argument("--out", help="CSV to write (default: data/<org>/moments/actions_<date>.csv)")
    p.add_argument(
        "--horizon-days", type=int, help="days ahead to cover (default: moments.horizon_days)"
    )
    p.add_argument("--no-history", action="store_true", help="ignore earlier action lists")
    p.add_argument("--no-clv", action="store_true", help="do not use lifetime-value predictions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Find the moments, build the list, write it and print a summary."""
    import pandas as pd

    from playbook.config import load_org
    from playbook.errors import PlaybookError
    from playbook.moments import (
        build_action_list,
        excluded_table,
        find_moments,
        load_id_map,
        moment_settings,
        prepare_moments,
        read_action_lists,
        write_action_list,
    )
    from playbook.tables import load_tables

    cfg = load_org(args.org_dir)
    try:
        day = pd.Timestamp(args.as_of).normalize()
    except (ValueError, TypeError):
        raise PlaybookError(
            f"--as-of {args.as_of!r} is not a date.\nWhat to do: write it as YYYY-MM-DD."
        ) from None
    as_of = day + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    settings = moment_settings(cfg)
    data = prepare_moments(load_tables(cfg))
    clv = None
    clv_path = cfg.org_dir / CLV_FILE
    if not args.no_clv and clv_path.exists():
        clv = pd.read_parquet(clv_path)
    found = find_moments(
        data, as_of, settings=settings, cfg=cfg, clv=clv, horizon_days=args.horizon_days
    )
    out = Path(args.out) if args.out else cfg.org_dir / "moments" / f"actions_{day.date()}.csv"
    previous = None if args.no_history else read_action_lists(out.parent, before=day)
    actions = build_action_list(
        found, data, as_of=as_of, settings=settings, id_map=load_id_map(cfg), previous=previous
    )
    write_action_list(actions, out)

    treated = actions.loc[actions["group"] == "treatment"]
    print(f"Moments as of {day.date()} for {cfg.name}:")
    counts = (
        actions.groupby(["trigger", "group"]).size().unstack(fill_value=0)
        if len(actions)
        else pd.DataFrame()
    )
    if len(counts):
        print(counts.to_string())
    deferred = int(treated["deferred"].sum())
    held = len(actions) - len(treated)
    print(f"\n{len(treated):,} actions, {deferred:,} deferred by capacity, {held:,} held back.")
    excluded = excluded_table(actions)
    if len(excluded):
        by_reason = excluded.groupby("reason")["moments"].sum()
        print("Left out: " + ", ".join(f"{r} {n:,}" for r, n in by_reason.items()))
    for tid, why in found.attrs.get("skipped", {}).items():
        print(f"  * {tid} skipped: {why}")
    print(f"\nWritten to {out}")
    return 0
