"""Moment design: a trigger library, consent-aware action lists, backtests and uplift.

A *moment* is something done deliberately for one customer, at the right time, that they
will remember: a welcome after a first booking, a note on the seat of someone seeing a
production a second time, a call after a bad evening. Data says when; the trigger library
turns those observations into dated, prioritised actions.

The flow (notebook 50 and ``playbook moments`` follow it)::

    settings = moment_settings(cfg)                     # library + org.yaml tuning
    data = prepare_moments(tables)                      # one pass over the tables
    found = find_moments(data, as_of, settings=settings)            # who, what, when
    actions = build_action_list(found, data, settings=settings, id_map=load_id_map(cfg))
    write_action_list(actions, "actions.csv")           # spreadsheet-safe CSV for the CRM
    bt = backtest(data, season_start, season_end, settings=settings)  # replay a season
    measure_uplift(add_outcomes(actions, data))         # treated vs control, with a CI
    sample_size(0.10, 0.05, control_share=0.1)          # how many moments to prove it

Modules: :mod:`~playbook.moments.library` (vocabularies, registry, settings),
:mod:`~playbook.moments.triggers` (the built-in triggers),
:mod:`~playbook.moments.data` (prepared arrays), :mod:`~playbook.moments.find`,
:mod:`~playbook.moments.actions`, :mod:`~playbook.moments.measure` and
:mod:`~playbook.moments.views` (notebook tables and charts).
"""

from __future__ import annotations

from playbook.moments import triggers as _triggers  # noqa: F401  (registers the library)
from playbook.moments.actions import (
    ACTION_COLUMNS,
    ActionCols,
    action_list_files,
    build_action_list,
    channel_options,
    control_draw,
    excluded_table,
    load_id_map,
    neutralise_cells,
    read_action_lists,
    resolve_channels,
    write_action_list,
)
from playbook.moments.data import MomentData, prepare_moments
from playbook.moments.find import (
    MOMENT_COLUMNS,
    MomentCols,
    empty_moments,
    fill_wording,
    find_moments,
)
from playbook.moments.library import (
    EPIC,
    OPERATORS,
    REGISTRY,
    STAGES,
    Condition,
    MomentSettings,
    TriggerConfig,
    TriggerSpec,
    moment_settings,
    trigger,
)
from playbook.moments.measure import (
    SampleSize,
    add_outcomes,
    backtest,
    backtest_summary,
    diff_ci,
    measure_uplift,
    measurement_plan,
    sample_size,
    sample_size_table,
    weekly_volume,
    wilson,
)
from playbook.moments.views import (
    MomentPlan,
    Replay,
    action_list_note,
    channel_table,
    chart_note,
    clv_snapshot,
    epic_table,
    exclusions,
    export_actions,
    export_library,
    library_overview,
    library_table,
    plan_moments,
    replay_season,
    sample_actions,
    show_upcoming,
    stage_table,
    upcoming_by_trigger,
    upcoming_by_week,
    upcoming_hidden_note,
    upcoming_shown,
    volume_chart,
    weekly_chart,
)

__all__ = [
    "ACTION_COLUMNS",
    "EPIC",
    "MOMENT_COLUMNS",
    "OPERATORS",
    "REGISTRY",
    "STAGES",
    "ActionCols",
    "Condition",
    "MomentCols",
    "MomentData",
    "MomentPlan",
    "MomentSettings",
    "Replay",
    "SampleSize",
    "TriggerConfig",
    "TriggerSpec",
    "action_list_note",
    "action_list_files",
    "add_outcomes",
    "backtest",
    "backtest_summary",
    "build_action_list",
    "channel_options",
    "channel_table",
    "chart_note",
    "clv_snapshot",
    "control_draw",
    "diff_ci",
    "empty_moments",
    "epic_table",
    "excluded_table",
    "exclusions",
    "export_actions",
    "export_library",
    "fill_wording",
    "find_moments",
    "library_overview",
    "library_table",
    "load_id_map",
    "measure_uplift",
    "measurement_plan",
    "moment_settings",
    "neutralise_cells",
    "plan_moments",
    "prepare_moments",
    "read_action_lists",
    "replay_season",
    "resolve_channels",
    "sample_actions",
    "sample_size",
    "sample_size_table",
    "show_upcoming",
    "stage_table",
    "trigger",
    "upcoming_by_trigger",
    "upcoming_by_week",
    "upcoming_hidden_note",
    "upcoming_shown",
    "volume_chart",
    "weekly_chart",
    "weekly_volume",
    "wilson",
    "write_action_list",
]
