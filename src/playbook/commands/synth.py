"""``playbook synth``: generate the demo organisation's raw exports."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``synth`` command."""
    p = sub.add_parser("synth", help="generate a demo organisation's raw exports (deterministic)")
    p.add_argument(
        "org_dir", nargs="?", default="data/demo", help="folder to write (default data/demo)"
    )
    p.add_argument(
        "--customers", type=int, default=20_000, help="number of customers (default 20,000)"
    )
    p.add_argument("--seed", type=int, default=42, help="random seed (same seed, same files)")
    p.add_argument("--messy", type=int, default=0, help="add this many bad rows of each kind")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate the organisation and print what was written."""
    from playbook.synth import SynthConfig, folder_slug, generate

    info = generate(
        args.org_dir, SynthConfig(seed=args.seed, customers=args.customers, messy=args.messy)
    )
    for name, n in info["files"].items():
        print(f"{name:<28} {n:>12,} rows")
    print(
        f"Demo organisation written to {args.org_dir} (slug '{folder_slug(args.org_dir)}', "
        f"its reports folder) in {info['elapsed_seconds']:.1f} s"
    )
    return 0
