"""Tables and charts for notebook 50 and the season report: thin wrappers, one call each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
    neutralise_cells,
    write_action_list,
)
from playbook.moments.data import MomentData, prepare_moments
from playbook.moments.find import find_moments, missing_needs
from playbook.moments.library import EPIC, STAGES, MomentSettings, moment_settings
from playbook.moments.measure import backtest, backtest_summary, measurement_plan, weekly_volume
from playbook.privacy import OTHER, mask_count_table, suppress_small_groups

ACTIONS_FILE = "actions.csv"
LIBRARY_FILE = "trigger_library.csv"


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
    """The trigger library as this organisation runs it: one row per trigger, every setting.

    ``status`` is ``on``, ``off`` or what the trigger needs (``needs memberships``). This
    is the full table written by :func:`export_library`; the report shows the shorter
    :func:`library_overview` of it.
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
                "fires when": tc.describe_when(settings.currency),
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


def library_overview(table: pd.DataFrame, currency: str = "GBP") -> pd.DataFrame:
    """The trigger library for reading in the report: seven columns instead of twelve.

    The id, EPIC element and stage are left out (sections 1 and 2 show them); the
    channel and its window read together ("Email or Letter, 14 days"); the unit cost is
    written in ``currency`` with pence ("£0.05"); a trigger that is not on says so after
    its name ("Birthday card (needs customers.birth_month)").

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`library_table`.
    currency : str
        The organisation's currency code (``OrgConfig.currency``).
    """
    from playbook.report import format_money

    days = table["window (days)"].astype(int)
    window = days.map(lambda d: "the same day" if d == 0 else f"{d} day{'s' if d != 1 else ''}")
    status = table["status"].astype(str)
    return pd.DataFrame(
        {
            "moment": table["moment"].where(status == "on", table["moment"] + " (" + status + ")"),
            "fires when": table["fires when"],
            "action": table["action"],
            "why": table["why"],
            "channel and window": table["channel"] + ", " + window,
            "unit cost": table["unit cost"].map(lambda v: format_money(v, currency, 2)),
            "control share": table["control share"],
        }
    )


def export_library(table: pd.DataFrame, folder: str | Path, name: str = LIBRARY_FILE) -> Path:
    """Write the full trigger library (:func:`library_table`) as a spreadsheet-safe CSV."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralise_cells(table).to_csv(path, index=False, encoding="utf-8-sig")
    return path


def channel_table(settings: MomentSettings) -> pd.DataFrame:
    """Channels, the consent each needs and the weekly capacity of staff channels.

    Email consent counts only until the customer unsubscribes (an ``unsubscribe``
    interaction after their latest email consent date); the table says so. Channels
    read by their labels, consents in plain words ("SMS", not ``sms``).
    """
    from playbook.report import channel_words

    return pd.DataFrame(
        [
            {
                "channel": ch.label,
                "consent needed": (
                    "Email (and no unsubscribe since)"
                    if ch.consent == "email"
                    else channel_words(ch.consent) or "None (no contact details used)"
                ),
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
        Days to cover, the as-of day included (default: the ``horizon_days`` setting).
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


# Headings of the upcoming-moments table: the first three count customers (one per
# customer and moment, however many reminders the moment sends), the next two count
# actions (rows of the action list), so customers = to act on + held back.
CUSTOMERS = "customers"
TO_ACT_ON = "of whom to act on"
HELD_BACK = "of whom held back (control)"
ACTIONS = "actions to send"
DEFERRED = "of which deferred"
SMALL, NOBODY, CANNOT = "small", "nobody", "cannot run"


def upcoming_by_trigger(plan: MomentPlan, min_group: int = 10) -> pd.DataFrame:
    """Per trigger: customers due, of whom to act on and held back, actions and cost.

    Parameters
    ----------
    plan : MomentPlan
        From :func:`plan_moments`.
    min_group : int
        Smallest number of customers a row may show.

    Returns
    -------
    pandas.DataFrame
        One row per switched-on trigger. ``customers``, ``of whom to act on`` and ``of
        whom held back (control)`` count distinct customers, so the last two add up to
        the first (a customer is always in or always out of a trigger's control group).
        ``actions to send`` and ``of which deferred`` count rows of the action list: a
        moment that reaches a customer twice (renewal reminders 60 and 30 days ahead)
        counts once as a customer and twice as an action. ``cost`` is that of the
        actions to send. Rows of 1 to ``min_group - 1`` customers are masked; rows with
        nobody due show zeros (they reveal nobody). ``attrs["small"]`` counts the
        masked rows, ``attrs["nobody"]`` lists the moments with nobody due and
        ``attrs["cannot run"]`` those that could not run here, with what they need.
    """
    a = plan.actions
    on = [(tid, tc) for tid, tc in plan.settings.triggers.items() if tc.enabled]
    ids = pd.Index([tid for tid, _ in on], dtype=object)
    treated = a[AC.group] != CONTROL
    tid_col, cust = a[AC.trigger_id], a[AC.customer_id]

    def per_trigger(values: pd.Series) -> pd.Series:
        return values.reindex(ids, fill_value=0)

    customers = per_trigger(cust.groupby(tid_col).nunique())
    acting = per_trigger(cust[treated].groupby(tid_col[treated]).nunique())
    held = per_trigger(cust[~treated].groupby(tid_col[~treated]).nunique())
    out = pd.DataFrame(
        {
            "moment": [tc.spec.name for _, tc in on],
            "EPIC": [tc.spec.epic for _, tc in on],
            CUSTOMERS: customers.to_numpy(dtype=np.int64),
            TO_ACT_ON: acting.to_numpy(dtype=np.int64),
            HELD_BACK: held.to_numpy(dtype=np.int64),
            ACTIONS: per_trigger(treated.groupby(tid_col).sum()).to_numpy(dtype=np.int64),
            DEFERRED: per_trigger(
                (treated & a[AC.deferred].astype(bool)).groupby(tid_col).sum()
            ).to_numpy(dtype=np.int64),
            "cost": per_trigger(
                a[AC.unit_cost].where(treated, 0.0).groupby(tid_col).sum()
            ).to_numpy(dtype=float),
            "note": [plan.skipped.get(tid, "") for tid, _ in on],
        }
    )
    counts = [CUSTOMERS, TO_ACT_ON, HELD_BACK, ACTIONS, DEFERRED]
    nobody = out[CUSTOMERS] == 0
    small = ~nobody & (out[CUSTOMERS] < min_group)
    out = suppress_small_groups(out, CUSTOMERS, min_group, columns=[*counts, "cost"])
    out.loc[nobody, [*counts, "cost"]] = 0  # nobody due: a zero reveals nobody
    cannot = nobody & out["note"].astype(str).str.strip().ne("")
    out.attrs.update(
        {
            SMALL: int(small.sum()),
            NOBODY: list(out.loc[nobody & ~cannot, "moment"]),
            CANNOT: list(out.loc[cannot, "moment"] + " (" + out.loc[cannot, "note"] + ")"),
        }
    )
    return out


def upcoming_shown(table: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of :func:`upcoming_by_trigger` that have figures to show.

    Rows masked for being small and rows with nobody due are left out, and so is the
    ``note`` column when no row shown has a note; ``attrs`` (how many rows of each kind)
    carry over, for :func:`upcoming_hidden_note`. ``columns`` picks columns (those
    missing are skipped).
    """
    keep = table[CUSTOMERS].fillna(0) > 0
    out = table.loc[keep].reset_index(drop=True)
    cols = list(columns) if columns is not None else list(out.columns)
    if columns is None and "note" in out and not out["note"].astype(str).str.strip().any():
        cols.remove("note")
    out = out[[c for c in cols if c in out.columns]]
    out.attrs = dict(table.attrs)
    return out


def show_upcoming(table: pd.DataFrame, ctx: Any) -> None:
    """Show :func:`upcoming_shown` of ``table`` and the sentence on the moments left out."""
    from IPython.display import Markdown, display

    from playbook import report

    report.show(
        upcoming_shown(table),
        money=["cost"],
        ctx=ctx,
        empty="No moment falls due for enough customers to show.",
    )
    note = upcoming_hidden_note(table, ctx.min_group)
    if note:
        display(Markdown(f"*{note}*"))


def upcoming_hidden_note(table: pd.DataFrame, min_group: int = 10) -> str:
    """One plain sentence on the moments not in the table: too small to show, or nobody due.

    Moments hidden for being small (1 to ``min_group - 1`` customers) are counted, not
    named; moments with nobody due are named. Empty when every switched-on moment is
    listed. ``table`` is :func:`upcoming_by_trigger` (or :func:`upcoming_shown` of it).
    """
    small, nobody = int(table.attrs.get(SMALL, 0)), list(table.attrs.get(NOBODY, []))
    cannot = list(table.attrs.get(CANNOT, []))
    listed = int((table[CUSTOMERS].fillna(0) > 0).sum()) if CUSTOMERS in table else 0
    parts = []
    if small == 1:
        parts.append(
            f"1 more moment falls due for between 1 and {min_group - 1} customers; "
            "it is not listed, to protect privacy."
        )
    elif small:
        parts.append(
            f"{small} more moments fall due for between 1 and {min_group - 1} customers "
            "each; they are not listed, to protect privacy."
        )
    if nobody:
        which = "the other" if listed or small else "any of the"
        parts.append(
            f"Nobody is due for {which} {len(nobody)} switched-on "
            f"moment{'s' if len(nobody) > 1 else ''}: {'; '.join(nobody)}."
        )
    if cannot:
        parts.append(f"Cannot run on this organisation's data: {'; '.join(cannot)}.")
    return " ".join(parts)


def action_list_note(plan: MomentPlan, path: str | Path, min_group: int = 10) -> str:
    """One line on the exported action list: its name and, when that is safe, its size.

    The number of rows is left out when a moment is hidden for having fewer than
    ``min_group`` customers: with the upcoming-moments table it would give the hidden
    moment's size away.
    """
    name = Path(path).name
    table = upcoming_by_trigger(plan, min_group)
    if table.attrs.get(SMALL, 0):
        return (
            f"Action list: {name}. Its number of rows is not given here: with the table "
            "above it would reveal the size of the moments hidden for privacy."
        )
    return f"Action list: {name}, {len(plan.actions):,} rows."


def upcoming_by_week(plan: MomentPlan, min_group: int = 10) -> pd.DataFrame:
    """Week × channel: moments to act on (control group left out); small cells masked.

    A cell for 1 to ``min_group - 1`` customers is masked, and so are more cells where a
    masked one could otherwise be worked out by subtraction: the table's cells add up
    to the actions to send of :func:`upcoming_by_trigger`, so each week's and each
    channel's total must be taken as known (:func:`playbook.privacy.mask_count_table`,
    which applies :func:`playbook.privacy.complementary_cells`). No row or column keeps
    a lone masked cell, and the masked cells of a row or column add up to at least
    ``min_group`` customers. ``attrs["suppressed"]`` counts the masked cells. A channel
    mostly below ``min_group`` a week is first merged with the smallest other channel
    into "Other (small groups)", so that a few calls a week do not hide the whole table.
    """
    a = plan.actions.loc[plan.actions[AC.group] != CONTROL]
    labels = {k: v.label for k, v in plan.settings.channels.items()}
    a = a.assign(channel=a[AC.channel].map(labels), week=a[AC.week].dt.strftime("%Y-%m-%d"))
    if a.empty:
        return pd.DataFrame()
    a = a.assign(channel=_merged_small_channels(a, min_group))
    counts = a.pivot_table(
        index="week", columns="channel", values=AC.customer_id, aggfunc="size", fill_value=0
    )
    people = a.pivot_table(
        index="week", columns="channel", values=AC.customer_id, aggfunc="nunique", fill_value=0
    )
    if OTHER in people.columns:  # the merged column last
        order = [c for c in people.columns if c != OTHER] + [OTHER]
        counts, people = counts[order], people[order]
    hidden = mask_count_table(people.to_numpy(), min_group)
    out = counts.astype("float64").mask(hidden)
    out = out.where(people > 0, 0.0)  # an empty cell reveals nobody
    out.columns.name = None
    out = out.round().astype("Int64")
    out.attrs["suppressed"] = int(hidden.sum())
    return out


def _merged_small_channels(a: pd.DataFrame, min_group: int) -> pd.Series:
    """Channel labels, with channels too small to show week by week merged into one.

    A channel whose weeks are mostly below ``min_group`` customers (a few phone calls a
    week) would be masked in every week, and masking it alone leaks through the week
    totals, so the masking spread to every channel and the table showed nothing. Such a
    channel is merged with the smallest other one into "Other (small groups)" (again,
    until no channel is mostly small or one is left); masking then handles the rest.
    """
    ch = a["channel"].astype("object")
    while True:
        people = a.assign(channel=ch).pivot_table(
            index="week", columns="channel", values=AC.customer_id, aggfunc="nunique"
        )
        if people.shape[1] < 2:
            return ch
        filled = people.notna() & (people > 0)
        small = (filled & (people < min_group)).sum() / filled.sum().clip(lower=1)
        worst = small[small > 0.5]
        if worst.empty:
            return ch
        totals = people.sum()
        name = max(worst.index, key=lambda c: (worst[c], -totals[c], str(c)))
        others = totals.drop(name)
        partner = (
            OTHER if OTHER in others.index else min(others.index, key=lambda c: (others[c], str(c)))
        )
        ch = ch.where(~ch.isin([name, partner]), OTHER)


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

    if table.empty or not (table.astype("Float64").fillna(0) > 0).to_numpy().any():
        return None  # nothing, or only masked cells: no empty chart
    tidy = table.reset_index().melt(
        id_vars=table.index.name or "index", var_name="channel", value_name="moments"
    )
    tidy = tidy.dropna().astype({"moments": float})
    x = table.index.name or "index"
    tidy[x] = pd.to_datetime(tidy[x]).dt.strftime("%d %b")
    return charts.bar(
        tidy, x, "moments", hue="channel", title=title, xlabel="week starting", ylabel="moments"
    )


def chart_note(fig: Figure | None, min_group: int = 10) -> None:
    """Under a chart cell: when the chart could not be drawn, one sentence saying why.

    A chart function returns None when every figure it would draw is hidden for privacy
    (or there is nothing to draw); the reader is told rather than shown nothing.
    """
    if fig is not None:
        return
    from IPython.display import Markdown, display

    display(
        Markdown(
            "*No chart: no week and channel has figures that can be shown without risking "
            f"pointing at a person (fewer than {min_group} customers, or hidden so that "
            "such figures cannot be worked out from the totals).*"
        )
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


def volume_chart(
    replay: Replay, *, staff_only: bool = True, title: str = "", min_group: int = 10
) -> Figure | None:
    """Weekly moments per channel over the season, each channel's weekly capacity dashed.

    By default only the channels staff deliver by hand (those with a weekly capacity):
    that is where the workload bites. Weeks hidden by small-group suppression
    (:meth:`Replay.weekly` with ``min_group``, the organisation's threshold) are gaps;
    None when no figure is left to draw.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from playbook import charts

    w = replay.weekly(min_group)
    by_label = {v.label: v for v in replay.settings.channels.values()}
    if staff_only:
        keep = [c for c in w.columns if by_label.get(c) and by_label[c].weekly_capacity is not None]
        w = w[keep]
    if w.empty or not (w.astype("Float64").fillna(0) > 0).to_numpy().any():
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
