"""``playbook clv data/<org> --calibration-end DATE``: lifetime value without a notebook.

Fits the purchase models on the calibration period, checks them against the holdout,
refits the chosen one on every purchase and writes, to ``data/<org>/clv/`` (or
``--out``):

- ``clv_params.json``: parameters with standard errors and 95% intervals, holdout
  metrics per model, the spend-model check and a plain reading of the parameters;
- ``clv_predictions.parquet`` and ``clv_predictions.csv``: one row per customer
  (``customer_id, frequency, recency, T, monetary_value, p_alive,
  expected_purchases, expected_spend, clv``);
- ``clv_at_risk.csv``: valuable patrons who may be drifting away.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

PARAMS_FILE = "clv_params.json"
PREDICTIONS_FILE = "clv_predictions"
AT_RISK_FILE = "clv_at_risk.csv"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``clv`` command."""
    p = sub.add_parser(
        "clv",
        help="fit customer lifetime value models and write parameters and predictions",
    )
    p.add_argument("org_dir", help="organisation folder holding org.yaml")
    p.add_argument(
        "--calibration-end",
        required=True,
        help="last day of the calibration period (YYYY-MM-DD); later purchases check the models",
    )
    p.add_argument(
        "--observation-end", help="last day observed (YYYY-MM-DD; default: last purchase)"
    )
    p.add_argument(
        "--time-unit", choices=("day", "week", "month"), help="time unit (default: clv.time_unit)"
    )
    p.add_argument("--model", help="model for predictions: bgnbd, pareto_nbd or mbgnbd")
    p.add_argument("--out", help="output folder (default: data/<org>/clv)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fit, check, predict and write the files."""
    from playbook.clv import clv_settings, fit_clv
    from playbook.commands import iso_date
    from playbook.config import load_org
    from playbook.tables import load_tables

    calibration_end = iso_date(args.calibration_end, "--calibration-end")
    observation_end = iso_date(args.observation_end, "--observation-end")
    cfg = load_org(args.org_dir)
    settings = clv_settings(cfg, time_unit=args.time_unit, model=args.model)
    tables = load_tables(cfg)
    result = fit_clv(
        tables,
        str(calibration_end),
        observation_end=observation_end and str(observation_end),
        settings=settings,
    )
    out = Path(args.out) if args.out else cfg.org_dir / "clv"
    out.mkdir(parents=True, exist_ok=True)
    record = {"organisation": cfg.slug, **result.to_dict()}
    (out / PARAMS_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    result.predictions.to_parquet(out / f"{PREDICTIONS_FILE}.parquet", index=False)
    result.predictions.to_csv(out / f"{PREDICTIONS_FILE}.csv", index=False)
    result.at_risk.to_csv(out / AT_RISK_FILE, index=False)

    cols = ["label", "actual_total", "predicted_total", "mae", "rmse", "best"]
    print("Holdout check (repeat purchases after the calibration end):")
    print(result.holdout[cols].to_string(float_format=lambda v: f"{v:,.3f}"))
    for name, why in result.failed.items():
        print(f"\n{name} could not be fitted: {why.splitlines()[0]}")
    print(f"\n{result.model.label} on {len(result.predictions):,} customers:")
    for line in record["interpretation"]:
        print(f"  - {line}")
    for note in result.notes:
        print(f"  * {note}")
    print(f"\nWritten to {out}: {PARAMS_FILE}, {PREDICTIONS_FILE}.parquet/.csv, {AT_RISK_FILE}")
    return 0
