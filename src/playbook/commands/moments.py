"""``playbook moments data/<org> --as-of DATE``: this week's action list, without a notebook.

Evaluates the organisation's trigger library as of the date and writes a dated,
consent-aware action list for CRM import (default
``data/<org>/moments/actions_<date>.csv``, or ``--out``). Customers are identified by
the organisation's own customer number (``source_customer_id``); the file holds no
names, emails, phone numbers or addresses, and is safe to open in a spreadsheet.

The list covers moments due in the next ``--horizon-days`` days, the as-of day
included (28: the as-of day to as-of + 27), and moments already due that are still
open.

Every list is also kept under its dated name ``actions_<date>.csv`` in
``data/<org>/moments/`` (the history), whatever ``--out`` says. Earlier lists there, and
dated lists in the ``--out`` folder, are read so weekly runs do not repeat a moment,
space a customer's moments and count staff time already planned (``--no-history`` to
ignore them); the run says how many it found and where. Lifetime-value predictions
written by ``playbook clv`` are used for the at-risk trigger when present (``--no-clv``
to skip), unless they were made from purchases after the list's day or before the
last intake: the run then says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CLV_FILE = Path("clv") / "clv_predictions.parquet"
CLV_PARAMS = Path("clv") / "clv_params.json"


def usable_predictions(cfg: Any, day: pd.Timestamp) -> tuple[pd.DataFrame | None, str | None]:
    """The lifetime-value predictions ``playbook clv`` wrote, when a list of ``day`` may use them.

    They are not used (and the note says why and what to run) when they were made from
    purchases after ``day`` (the list would look ahead), or before the last intake (they
    describe older data).

    Returns
    -------
    (pandas.DataFrame or None, str or None)
        The predictions, and a line for the console (None when there is nothing to say).
    """
    import json

    import pandas as pd

    path, params = cfg.org_dir / CLV_FILE, cfg.org_dir / CLV_PARAMS
    if not path.exists():
        return None, None
    redo = (
        f"What to do: run `playbook clv {cfg.org_dir} --calibration-end YYYY-MM-DD "
        f"--observation-end {day.date()}` first, or use --no-clv."
    )
    try:
        end = pd.Timestamp(json.loads(params.read_text(encoding="utf-8"))["observation_end"])
    except (OSError, ValueError, KeyError, TypeError):
        return None, (
            f"Lifetime-value predictions not used: {params} is missing or unreadable, so "
            f"the day they were made as of is unknown. {redo}"
        )
    if end.normalize() > day:
        return None, (
            f"Lifetime-value predictions not used: they were made from purchases up to "
            f"{end.date()}, after this list's day ({day.date()}), so they would look ahead. "
            f"{redo}"
        )
    intake = cfg.canonical_dir / "intake.json"
    if intake.exists() and path.stat().st_mtime < intake.stat().st_mtime:
        return None, (
            "Lifetime-value predictions not used: they were made before the last intake, "
            f"from older data. {redo}"
        )
    return pd.read_parquet(path), None


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
    p.add_argument(
        "--out",
        help="CSV to write (default: data/<org>/moments/actions_<date>.csv; a copy is kept "
        "there anyway, for the history)",
    )
    p.add_argument(
        "--horizon-days",
        type=int,
        help="days to cover, the as-of day included: 28 covers the as-of day to as-of + 27 "
        "(default: moments.horizon_days)",
    )
    p.add_argument("--no-history", action="store_true", help="ignore earlier action lists")
    p.add_argument("--no-clv", action="store_true", help="do not use lifetime-value predictions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Find the moments, build the list, write it and print a summary."""
    import pandas as pd

    from playbook.commands import iso_date
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
    from playbook.moments.actions import action_list_files, is_action_list, list_day
    from playbook.tables import load_tables

    day = pd.Timestamp(iso_date(args.as_of, "--as-of"))
    if args.horizon_days is not None and args.horizon_days < 0:
        raise PlaybookError(
            f"--horizon-days {args.horizon_days} is negative.\nWhat to do: give the number "
            "of days the list should cover, e.g. --horizon-days 28 for four weeks (0 or 1: "
            "the as-of day only)."
        )
    cfg = load_org(args.org_dir)
    as_of = day + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    settings = moment_settings(cfg)
    data = prepare_moments(load_tables(cfg))
    clv, clv_note = (None, None) if args.no_clv else usable_predictions(cfg, day)
    found = find_moments(
        data, as_of, settings=settings, cfg=cfg, clv=clv, horizon_days=args.horizon_days
    )
    history = cfg.org_dir / "moments"
    dated = history / f"actions_{day.date()}.csv"
    out = Path(args.out) if args.out else dated
    previous, notes = None, [clv_note] if clv_note else []
    if args.no_history:
        notes.append("Earlier lists: not read (--no-history).")
    else:
        folders = [history] + ([out.parent] if out.parent.resolve() != history.resolve() else [])
        files = {f.resolve(): f for d in folders for f in action_list_files(d, before=day)}
        files.pop(out.resolve(), None)
        where = " and ".join(f"{d}/" for d in folders)
        if files:
            previous = read_action_lists(sorted(files.values()))
            days = {list_day(f) for f in files.values()}  # a list and its copy count once
            notes.append(f"Earlier lists: {len(days)} found in {where}.")
        else:
            notes.append(
                f"Earlier lists: none found in {where}: moments already acted on may be "
                "listed again."
            )
        known = set(files) | {out.resolve(), dated.resolve()}
        odd = sorted(
            f
            for d in folders
            if d.is_dir()
            for f in d.glob("*.csv")
            if f.resolve() not in known and not f.name.startswith("actions_") and is_action_list(f)
        )
        if odd:
            notes.append(
                f"Not read: {len(odd)} action list(s) whose names carry no date "
                f"({', '.join(f.name for f in odd[:3])}{', …' if len(odd) > 3 else ''}). "
                "What to do: if they were acted on, rename them actions_YYYY-MM-DD.csv "
                "(the day each was made)."
            )
    actions = build_action_list(
        found, data, as_of=as_of, settings=settings, id_map=load_id_map(cfg), previous=previous
    )
    write_action_list(actions, out)
    if out.resolve() != dated.resolve():
        write_action_list(actions, dated)

    treated = actions.loc[actions["group"] == "treatment"]
    print(f"Moments as of {day.date()} for {cfg.name}:")
    counts = (
        actions.groupby(["trigger", "group"]).size().unstack(fill_value=0)
        if len(actions)
        else pd.DataFrame()
    )
    if len(counts):
        print(counts.to_string())
    for line in notes:
        print(line)
    deferred = int(treated["deferred"].sum())
    held = len(actions) - len(treated)
    excluded = excluded_table(actions)
    left = int(excluded["moments"].sum())
    n_found = int(actions.attrs.get("found", len(actions) + left))
    print(
        f"\n{n_found:,} moments found: {len(treated):,} actions ({deferred:,} deferred by "
        f"capacity), {held:,} held back (control group), {left:,} left out."
    )
    if len(excluded):
        by_reason = excluded.groupby("reason")["moments"].sum()
        print("Left out: " + ", ".join(f"{r} {n:,}" for r, n in by_reason.items()))
    for tid, why in found.attrs.get("skipped", {}).items():
        print(f"  * {tid} skipped: {why}")
    print(f"\nWritten to {out}" + (f" (history copy: {dated})" if out != dated else ""))
    return 0
