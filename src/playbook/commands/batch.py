"""``playbook batch data/*/ --season 2025-26 --jobs N``: every organisation's report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``batch`` command."""
    p = sub.add_parser("batch", help="intake and render many organisations in parallel")
    p.add_argument("org_dirs", nargs="+", help="organisation folders, e.g. data/*/")
    p.add_argument(
        "--season",
        action="append",
        help="season like 2025-26; repeat for several (default: each organisation's latest)",
    )
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    p.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--reports", default="reports", help="reports root folder (default reports)")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: the kit's)")
    p.add_argument("--no-intake", action="store_true", help="render from existing canonical tables")
    p.add_argument("--only", nargs="*", help="only notebooks starting with these prefixes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the batch, print the summary table, exit non-zero if any organisation failed."""
    from pathlib import Path

    from playbook.batch import run_batch

    orgs = [d for d in args.org_dirs if (Path(d) / "org.yaml").exists() or not Path(d).is_dir()]
    table = run_batch(
        orgs,
        args.season or [None],
        reports_root=args.reports,
        n_jobs=args.jobs,
        scheduler=args.scheduler,
        notebooks_dir=args.notebooks,
        intake=not args.no_intake,
        only=args.only,
    )
    cols = ["org", "season", "status", "seconds", "notebook", "cell", "error"]
    print(table[cols].to_string(index=False))
    failed = int((table["status"] != "ok").sum())
    print(
        f"\n{len(table) - failed} rendered, {failed} failed. Summary: {Path(args.reports) / 'batch_summary.csv'}"
    )
    return 1 if failed else 0
