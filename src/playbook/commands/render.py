"""``playbook render data/<org> --season 2025-26``: the season report as HTML."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``render`` command."""
    p = sub.add_parser("render", help="run every notebook and write the HTML report")
    p.add_argument("org_dir", help="organisation folder holding org.yaml (intake must have run)")
    p.add_argument(
        "--season",
        help="season like 2025-26 (default: latest complete season); it must have sales",
    )
    p.add_argument("--reports", default="reports", help="reports root folder (default reports)")
    p.add_argument("--notebooks", help="folder of numbered notebooks (default: the kit's)")
    p.add_argument(
        "--only",
        nargs="*",
        help="only notebooks starting with these prefixes, e.g. 00 10; an existing report "
        "of the season keeps its other pages (only the chosen pages are replaced)",
    )
    p.add_argument("--jobs", type=int, default=2, help="notebooks run at a time (default 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render and print where the report is."""
    import sys

    from playbook.render import render_season, stale_inputs, write_reports_index

    stale = stale_inputs(args.org_dir)
    for line in stale:
        print(f"Warning: {line}", file=sys.stderr, flush=True)
    result = render_season(
        args.org_dir,
        args.season,
        reports_root=args.reports,
        notebooks_dir=args.notebooks,
        only=args.only,
        on_notebook=lambda name: print(f"  running {name} …", flush=True),
        jobs=args.jobs,
    )
    write_reports_index(args.reports)
    print(f"Report for {result.org}, season {result.season}: {result.output_dir / 'index.html'}")
    print(f"{len(result.notebooks)} notebooks in {result.seconds:.0f} s")
    if result.kept:
        print(f"  kept from the earlier report: {', '.join(result.kept)}")
    for name, reason in result.not_available.items():
        print(f"  not available (not enough data yet): {name}: {reason.splitlines()[0]}")
    if stale:
        print(
            "Warning: this report is drawn from the tables of the last intake, without the "
            "changed files named above. Run intake, then render again.",
            file=sys.stderr,
        )
    return 0
