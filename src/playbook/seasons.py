"""Seasons: labels like ``2025-26`` from dates, given the month a season starts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from playbook.errors import PlaybookError

_LABEL = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def season_of(dates: pd.Series | pd.DatetimeIndex, start_month: int) -> pd.Series:
    """Season label of each date, vectorised.

    Parameters
    ----------
    dates : pandas.Series of datetime64
        Dates to label (missing dates give missing labels).
    start_month : int
        First month of a season. With 9, 2025-09-01 … 2026-08-31 is ``"2025-26"``;
        with 1, seasons are calendar years labelled ``"2025"``.

    Returns
    -------
    pandas.Series of string
    """
    d = pd.Series(pd.to_datetime(dates))
    year = d.dt.year - (d.dt.month < start_month).astype("int64")
    if start_month == 1:
        label = year.astype("Int64").astype("string")
    else:
        nxt = ((year + 1) % 100).astype("Int64").astype("string").str.zfill(2)
        label = year.astype("Int64").astype("string") + "-" + nxt
    return label.where(d.notna()).astype("string")


def season_start_year(label: str) -> int:
    """First calendar year of a season label (``"2025-26"`` gives 2025)."""
    m = _LABEL.match(str(label))
    if not m:
        raise PlaybookError(
            f"Season {label!r} is not written like '2025-26' (or '2025' for calendar-year "
            "seasons).\nWhat to do: pass the season as YYYY-YY, e.g. --season 2025-26."
        )
    return int(m.group(1))


def season_bounds(label: str, start_month: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start (inclusive) and end (exclusive) of a season.

    Examples
    --------
    >>> season_bounds("2025-26", 9)
    (Timestamp('2025-09-01 00:00:00'), Timestamp('2026-09-01 00:00:00'))
    """
    year = season_start_year(label)
    start = pd.Timestamp(year=year, month=start_month, day=1)
    return start, start + pd.DateOffset(years=1)


def season_label(start_year: int, start_month: int) -> str:
    """The label of the season starting in ``start_year``."""
    if start_month == 1:
        return f"{start_year}"
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def previous_season(label: str, start_month: int) -> str:
    """The season before ``label``."""
    return season_label(season_start_year(label) - 1, start_month)


def seasons_between(first: pd.Timestamp, last: pd.Timestamp, start_month: int) -> list[str]:
    """All season labels from the one containing ``first`` to the one containing ``last``."""
    labels = season_of(pd.Series([first, last]), start_month)
    a, b = season_start_year(labels.iloc[0]), season_start_year(labels.iloc[1])
    return [season_label(y, start_month) for y in np.arange(a, b + 1)]


def latest_complete_season(last_date: pd.Timestamp, start_month: int, grace_days: int = 60) -> str:
    """The most recent season that has (as good as) ended by ``last_date``.

    Box offices go quiet before a season ends (a summer break), so a season counts as
    complete when the last activity falls within ``grace_days`` of its end.

    Examples
    --------
    >>> latest_complete_season(pd.Timestamp("2026-07-29"), 9)
    '2025-26'
    >>> latest_complete_season(pd.Timestamp("2026-05-01"), 9)
    '2024-25'
    """
    shifted = pd.Series([last_date + pd.Timedelta(days=grace_days)])
    label = season_of(shifted, start_month).iloc[0]
    return previous_season(label, start_month)


def default_season(times: pd.Series, start_month: int) -> str:
    """The season a report shows by default: the latest complete one in ``times``.

    When the data are shorter than one complete season, the latest season seen is used.
    Only the first and last dates are looked at, so this is cheap on millions of rows.
    """
    first, last = pd.Timestamp(times.min()), pd.Timestamp(times.max())
    label = latest_complete_season(last, start_month)
    first_label = season_of(pd.Series([first]), start_month).iloc[0]
    if season_start_year(label) < season_start_year(first_label):
        return season_of(pd.Series([last]), start_month).iloc[0]
    return label
