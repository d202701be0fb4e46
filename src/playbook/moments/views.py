"""Tables and charts for notebook 50 and the season report: thin wrappers, one call each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from playbook.errors import PlaybookError
from playbook.moments.actions import (
    AC,
    CONTROL,
    REASONS,
    build_action_list,
    excluded_table,
    load_id_map,
    write_action_list,
)
from playbook.moments.data import MomentData, prepare_moments
from playbook.moments.find import find_moments, missing_needs
from playbook.moments.library import EPIC, STAGES, MomentSettings, moment_settings
from playbook.moments.measure import backtest, backtest_summary, measurement_plan, weekly_volume
from playbook.privacy import mask_small_cells, suppress_small_groups

ACTIONS_FILE = "actions.csv"


# ---------------------------------------------------------------------------
# The library, explained
# ---------------------------------------------------------------------------
def stage_table(settings: MomentSettings) -> pd.DataFrame:
    """Journey stages in order, what happens there and the triggers that act there."""
    rows = []
    for stage, meaning in STAGES.items():
        names = [t.spec.name for t in settings.triggers.values() if t.spec.stage == stage]
        rows.append(
            {"stage": stage, "what happens": meaning, "moments in the library": "; ".join(names)}
        )
    return pd.DataFrame(rows)


def epic_table(settings: MomentSettings) -> pd.DataFrame:
    """The four EPIC elements, what each means and the library's examples of it."""
    rows = []
    for element, meaning in EPIC.items():
        names = [t.spec.name for t in settings.triggers.values() if t.spec.epic == element]
        rows.append(
            {"element": element, "what it does": meaning, "examples here": "; ".join(names)}
        )
    return pd.DataFrame(rows)


def library_table(
    settings: MomentSettings,
    data: MomentData | None = None,
    *,
    clv: pd.DataFrame | None = None,
    features_available: bool = True,
) -> pd.DataFrame:
    """The trigger library as this organisation runs it: one row per trigger.

    ``status`` is ``on``, ``off`` or what the trigger needs (``needs memberships``).
    """
    rows = []
    for tid, tc in settings.triggers.items():
        status = "on" if tc.enabled else "off"
        if tc.enabled and data is not None:
            feats = pd.DataFrame() if features_available else None
            missing = missing_needs(tc, data, feats if tc.custom else None, clv)
            if tc.custom:
                missing = [m for m in missing if not m.startswith("feature ")]
            if missing:
                status = "needs " + ", ".join(missing)
        rows.append(
            {
                "id": tid,
                "moment": tc.spec.name,
                "EPIC": tc.spec.epic,
                "stage": tc.spec.stage,
                "fires when": tc.describe_when(),
                "action": tc.spec.action,
                "channel": " or ".join(settings.channels[c].label for c in tc.channels),
                "window (days)": tc.window_days,
                "unit cost": tc.unit_cost,
                "control share": tc.control_share,
                "why": tc.spec.rationale,
                "status": status,
            }
        )
    return pd.DataFrame(rows)


def channel_table(settings: MomentSettings) -> pd.DataFrame:
    """Channels, the consent each needs and the weekly capacity of staff channels."""
    return pd.DataFrame(
        [
            {
                "channel": ch.label,
                "consent needed": ch.consent or "none (no contact details used)",
                "weekly capacity": "not limited"
                if ch.weekly_capacity is None
                else str(ch.weekly_capacity),
            }
            for ch in settings.channels.values()
        ]
    )


# ---------------------------------------------------------------------------
# Lifetime value for the at-risk trigger (optional)
# ---------------------------------------------------------------------------
def clv_snapshot(ctx: Any) -> pd.DataFrame | None:
    """Lifetime-value predictions as of the season end, or None when they cannot be made.

    The predictions of :func:`playbook.clv.forecast` (the organisation's ``clv``
    settings, as in the CLV notebook); any failure there (module absent, too few repeat
    buyers) just leaves the at-risk trigger switched off.
    """
    try:
        from playbook.clv import clv_settings, forecast
    except ImportError:
        return None
    try:
        return forecast(ctx.tables, ctx.as_of.normalize(), clv_settings(ctx.config)).predictions
    except (PlaybookError, ValueError, KeyError, TypeError, FloatingPointError):
        return None


# ---------------------------------------------------------------------------
# The plan: moments and action list as of the season end
# ---------------------------------------------------------------------------
@dataclass
class MomentPlan:
    """Moments found as of a date and the action list made from them."""

    settings: MomentSettings
    data: MomentData
    as_of: pd.Timestamp
    moments: pd.DataFrame
    actions: pd.DataFrame
    clv: pd.DataFrame | None = None

    @property
    def skipped(self) -> dict[str, str]:
        """Triggers that could not run, with what they need."""
        return dict(self.moments.attrs.get("skipped", {}))


def plan_moments(ctx: Any, *, horizon_days: int | None = None, with_clv: bool = True) -> MomentPlan:
    """Find this organisation's moments as of the season end and build the action list.

    Parameters
    ----------
    ctx : playbook.report.Context
        From ``report.start``.
    horizon_days : int, optional
        Days ahead (default: the ``horizon_days`` setting).
    with_clv : bool
        Fit lifetime value (for the at-risk trigger and customer values).
    """
    s = moment_settings(ctx.config)
    data = prepare_moments(ctx.tables)
    clv = clv_snapshot(ctx) if with_clv and s.triggers["at_risk_patron"].enabled else None
    found = find_moments(
        data, ctx.as_of, settings=s, cfg=ctx.config, clv=clv, horizon_days=horizon_days
    )
    try:
        id_map = load_id_map(ctx.config)
    except PlaybookError:  # no id map: the list still shows, without source ids
        id_map = None
    actions = build_action_list(found, data, as_of=ctx.as_of, settings=s, id_map=id_map)
    return MomentPlan(s, data, ctx.as_of, found, actions, clv)


def export_actions(plan: MomentPlan, folder: str | Path, name: str = ACTIONS_FILE) -> Path:
    """Write the plan's action list (spreadsheet-safe CSV) into ``folder``."""
    return write_action_list(plan.actions, Path(folder) / name)


def upcoming_by_trigger(plan: MomentPlan, min_group: int = 10) -> pd.DataFrame:
    """Per trigger: moments planned, held back as control, deferred, and their cost.

    Rows for fewer than ``min_group`` customers are masked.
    """
    a = plan.actions
    rows = []
    for tid, tc in plan.settings.triggers.items():
        if not tc.enabled:
            continue
        part = a.loc[a[AC.trigger_id] == tid]
        treated = part.loc[part[AC.group] != CONTROL]
        rows.append(
            {
                "moment": tc.spec.name,
                "EPIC": tc.spec.epic,
                "customers": part[AC.customer_id].nunique(),
                "to act on": len(treated),
                "control": len(part) - len(treated),
                "deferred": int(treated[AC.deferred].sum()),
                "cost": float(treated[AC.unit_cost].sum()),
                "note": plan.skipped.get(tid, ""),
            }
        )
    out = pd.DataFrame(rows)
    return suppress_small_groups(
        out,
        "customers",
        min_group,
        columns=["customers", "to act on", "control", "deferred", "cost"],
    )


def upcoming_by_week(plan: MomentPlan, min_group: int = 10) -> pd.DataFrame:
    """Week × channel: moments to act on (control group left out); small cells masked."""
    a = plan.actions.loc[plan.actions[AC.group] != CONTROL]
    labels = {k: v.label for k, v in plan.settings.channels.items()}
    a = a.assign(channel=a[AC.channel].map(labels), week=a[AC.week].dt.strftime("%Y-%m-%d"))
    if a.empty:
        return pd.DataFrame()
    counts = a.pivot_table(
        index="week", columns="channel", values=AC.customer_id, aggfunc="size", fill_value=0
    )
    people = a.pivot_table(
        index="week", columns="channel", values=AC.customer_id, aggfunc="nunique", fill_value=0
    )
    out = mask_small_cells(people, counts, min_group)
    out = out.where(people > 0, 0.0)  # an empty cell reveals nobody
    out.columns.name = None
    return out.round().astype("Int64")


def exclusions(plan: MomentPlan, min_group: int = 10) -> pd.DataFrame:
    """Why moments were left out of the list, per reason (small counts masked)."""
    ex = excluded_table(plan.actions)
    if ex.empty:
        return pd.DataFrame()
    out = ex.groupby("reason", as_index=False)["moments"].sum()
    out["meaning"] = out["reason"].map(REASONS)
    out = out[["reason", "meaning", "moments"]].sort_values("moments", ascending=False)
    return suppress_small_groups(
        out.reset_index(drop=True), "moments", min_group, columns=["moments"]
    )


def sample_actions(plan: MomentPlan, min_group: int = 10) -> pd.DataFrame:
    """One example of wording per trigger (no ids, no dates): what staff would send.

    Triggers with fewer than ``min_group`` actions are left out.
    """
    a = plan.actions.loc[plan.actions[AC.group] != CONTROL]
    sizes = a.groupby(AC.trigger_id)[AC.customer_id].transform("nunique")
    ex = a.loc[sizes >= min_group].drop_duplicates(AC.trigger_id)
    labels = {k: v.label for k, v in plan.settings.channels.items()}
    out = ex[[AC.trigger, AC.channel, AC.wording]].reset_index(drop=True)
    out[AC.channel] = out[AC.channel].map(labels)
    return out


def weekly_chart(table: pd.DataFrame, *, title: str) -> Figure | None:
    """Stacked-looking grouped bars: moments per week and channel (masked cells left out)."""
    from playbook import charts

    if table.empty:
        return None
    tidy = table.reset_index().melt(
        id_vars=table.index.name or "index", var_name="channel", value_name="moments"
    )
    tidy = tidy.dropna().astype({"moments": float})
    x = table.index.name or "index"
    tidy[x] = pd.to_datetime(tidy[x]).dt.strftime("%d %b")
    return charts.bar(
        tidy, x, "moments", hue="channel", title=title, xlabel="week starting", ylabel="moments"
    )


# ---------------------------------------------------------------------------
# Backtest, for the notebook
# ---------------------------------------------------------------------------
@dataclass
class Replay:
    """A backtest over one season with its summaries."""

    settings: MomentSettings
    data: MomentData
    season: str
    moments: pd.DataFrame

    def summary(self, min_group: int = 10) -> pd.DataFrame:
        """Per trigger: moments, customers, reachable, per week and cost (small rows masked)."""
        return backtest_summary(self.moments, self.settings, min_group)

    def weekly(self, min_group: int = 10) -> pd.DataFrame:
        """Week × channel volume (small cells masked), channels by their labels."""
        w = weekly_volume(self.moments, min_group)
        labels = {k: v.label for k, v in self.settings.channels.items()}
        return w.rename(columns=labels).round().astype("Int64")

    def measurement(self, uplift: float = 0.05, min_group: int = 10) -> pd.DataFrame:
        """How long each trigger's control group must run to detect ``uplift``."""
        return measurement_plan(
            self.moments, self.data, self.settings, uplift=uplift, min_group=min_group
        )


def replay_season(ctx: Any, plan: MomentPlan | None = None) -> Replay:
    """Backtest the library over the report's season, week by week."""
    s = plan.settings if plan is not None else moment_settings(ctx.config)
    data = plan.data if plan is not None else prepare_moments(ctx.tables)
    bt = backtest(data, ctx.season_start, ctx.season_end, settings=s, cfg=ctx.config)
    return Replay(s, data, ctx.season, bt)


def volume_chart(replay: Replay, *, staff_only: bool = True, title: str = "") -> Figure | None:
    """Weekly moments per channel over the season, each channel's weekly capacity dashed.

    By default only the channels staff deliver by hand (those with a weekly capacity):
    that is where the workload bites. Weeks hidden by small-group suppression are gaps.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from playbook import charts

    w = replay.weekly()
    by_label = {v.label: v for v in replay.settings.channels.values()}
    if staff_only:
        keep = [c for c in w.columns if by_label.get(c) and by_label[c].weekly_capacity is not None]
        w = w[keep]
    if w.empty or w.isna().all().all():
        return None
    fig, ax = plt.subplots(figsize=charts.FIGSIZE)
    palette = sns.color_palette(charts.PALETTE, n_colors=len(w.columns))
    for colour, col in zip(palette, w.columns, strict=True):
        ax.plot(w.index, w[col].astype(float), marker="o", markersize=4, color=colour, label=col)
        cap = by_label.get(col)
        if cap is not None and cap.weekly_capacity is not None:
            ax.axhline(cap.weekly_capacity, color=colour, linestyle="--", linewidth=1.2)
    what = "Staff-delivered moments" if staff_only else "Moments"
    ax.set_title(title or f"{what} per week, season {replay.season}")
    ax.set_xlabel("week starting")
    ax.set_ylabel("moments (consent allowing)")
    ax.legend(title="channel (dashed: weekly capacity)", frameon=False, fontsize=11)
    ax.set_ylim(bottom=0)
    return fig
