"""Write the report's main tables for one organisation (run by tests/test_determinism.py).

Usage: python report_tables.py ORG_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from playbook import clv, clv_report, journey, moments, personas, report, scorecard, segments


def main(org: str, out: str) -> None:
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    ctx = report.start(org, "", folder / "report")
    seg = segments.segment_customers(ctx.tables, ctx.as_of, ctx.config)
    frames: dict[str, pd.DataFrame] = {
        "features": seg.features,
        "tiers": pd.DataFrame(seg.tiers),
        "rfm": pd.DataFrame(seg.rfm),
        "clusters": pd.DataFrame(seg.clusters),
    }
    cast = personas.build_personas(seg, ctx.min_group, ctx.config, "£")
    frames["personas"] = personas.persona_table(cast)
    trips = journey.build_journey(ctx.tables, ctx.config, as_of=ctx.as_of)
    frames["journey"] = trips
    season = clv_report.fit_season(ctx, clv.clv_settings(ctx.config))
    frames["clv"] = season.run.predictions
    plan = moments.plan_moments(ctx)
    frames["moments"] = plan.moments
    frames["actions"] = plan.actions
    (folder / "scorecard").mkdir()
    scorecard.export_report(scorecard.build_season_report(ctx), folder / "scorecard")
    for name, frame in frames.items():  # CSV writes every float in full (repr)
        frame.to_csv(folder / f"{name}.csv")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
