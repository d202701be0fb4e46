"""``playbook intake data/<org>``: exports in, canonical tables and ledger out."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``intake`` command."""
    p = sub.add_parser("intake", help="read an organisation's exports into canonical tables")
    p.add_argument("org_dir", help="organisation folder holding org.yaml")
    p.add_argument("--today", help="latest possible purchase date (YYYY-MM-DD; default: today)")
    p.add_argument(
        "--preset",
        help="export preset for every source, e.g. spektrix or tessitura (overrides org.yaml)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run intake and print the ledger summary."""
    from playbook.commands import iso_date
    from playbook.config import load_org
    from playbook.intake import run_intake

    today = iso_date(args.today, "--today")
    preset = getattr(args, "preset", None)
    org = load_org(args.org_dir, overrides={"preset": preset}) if preset else args.org_dir
    result = run_intake(org, today=today)
    summary = result.summary()
    print(
        summary[["file", "table", "rows_read", "rows_kept", "rows_dropped"]].to_string(index=False)
    )
    dropped = int(summary["rows_dropped"].sum())
    print(
        f"\nCanonical tables written to {result.config.canonical_dir}"
        f"\n{int(summary['rows_read'].sum()):,} rows read, {dropped:,} dropped"
        + (" (see ledger_dropped.csv for each row and its reason)" if dropped else "")
    )
    notes = result.console_notes()
    if notes:
        print("\nPlease check:")
        for note in notes:
            print(f"- {note}")
    return 0
