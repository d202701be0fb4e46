"""``playbook batch data/*/ --season 2025-26 --jobs N``: every organisation's report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``batch`` command."""
    p = sub.add_parser(
        "batch",
        help="intake and render many organisations in parallel",
        description="Intake each organisation once, then render its seasons. Folders "
        "without org.yaml are listed as skipped; naming such a folder on its own makes the "
        "run fail (exit code 1). A quoted pattern like 'data/*/' is expanded by the batch "
        "itself: folders it matches that are not organisations are only listed.",
    )
    p.add_argument(
        "org_dirs", nargs="+", help="organisation folders, e.g. data/*/ (or quoted: 'data/*/')"
    )
    p.add_argument(
        "--season",
        action="append",
        help="season like 2025-26; repeat for several (default: each organisation's latest)",
    )
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--reports", default="reports", help="reports root folder (default reports)")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: the kit's)")
    p.add_argument(
        "--no-intake",
        action="store_true",
        help="render from existing canonical tables (an organisation whose exports or "
        "org.yaml changed since its last intake is not rendered)",
    )
    p.add_argument(
        "--only",
        nargs="*",
        help="only notebooks starting with these prefixes (other pages of an existing "
        "report are kept)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the batch, print the summary table; exit 1 if any organisation failed or a
    folder named on its own was skipped."""
    from pathlib import Path

    from playbook.batch import run_batch

    table = run_batch(
        args.org_dirs,
        args.season or [None],
        reports_root=args.reports,
        n_jobs=args.jobs,
        scheduler=args.scheduler,
        notebooks_dir=args.notebooks,
        intake=not args.no_intake,
        only=args.only,
    )
    cols = ["org", "folder", "season", "status", "seconds", "notebook", "cell", "error"]
    print(table[cols].to_string(index=False))
    status = table["status"]
    ok = int((status == "ok").sum())
    failed = int((status == "failed").sum())
    skipped = int((status == "skipped").sum())
    other = int((status == "not an organisation").sum())
    line = f"\n{ok} rendered, {failed} failed"
    if skipped:
        line += f", {skipped} folder{'s' if skipped > 1 else ''} skipped (see 'error' above)"
    if other:
        line += f", {other} matched folder{'s' if other > 1 else ''} not an organisation"
    print(f"{line}. Summary: {Path(args.reports) / 'batch_summary.csv'}")
    return 1 if failed or skipped else 0
