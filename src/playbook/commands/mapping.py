"""``playbook mapping suggest FILE``: propose an org.yaml section for an unknown export."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``mapping`` command."""
    p = sub.add_parser("mapping", help="help map an export the kit has no preset for")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    s = actions.add_parser(
        "suggest", help="propose a column mapping from an export's headers and values"
    )
    s.add_argument("file", help="the export (CSV, Excel or Parquet)")
    s.add_argument("--table", help="canonical table it feeds (default: guessed)")
    s.add_argument("--out", help="also write the suggested org.yaml section to this file")
    s.add_argument(
        "--relative-to",
        help="write 'file:' relative to this organisation folder (default: as given)",
    )
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the suggestion (and write it with ``--out``)."""
    from playbook.errors import PlaybookError
    from playbook.mapping import suggest_mapping, suggestion_yaml
    from playbook.schema import TABLES

    if args.table and args.table not in TABLES:
        raise PlaybookError(
            f"'{args.table}' is not a canonical table.\nWhat to do: use one of: "
            f"{', '.join(TABLES)}."
        )
    path = Path(args.file)
    label = str(path)
    if args.relative_to:
        label = str(path.resolve().relative_to(Path(args.relative_to).resolve()))
    suggestion = suggest_mapping(path, table=args.table, label=label)
    text = suggestion_yaml(suggestion)
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"\nWritten to {args.out}: check it, then copy it into org.yaml.")
    return 0
