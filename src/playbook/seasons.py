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


# A season counts as complete when the data end within this many days of its end.
GRACE_DAYS = 60


def latest_complete_season(
    last_date: pd.Timestamp, start_month: int, grace_days: int = GRACE_DAYS
) -> str:
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


def check_season_label(label: str, start_month: int) -> str:
    """The season label if it is well formed for these seasons, else a plain error.

    Seasons starting in September are written ``2025-26`` (two consecutive years);
    calendar-year seasons (``start_month`` 1) are written ``2025``.

    Raises
    ------
    PlaybookError
        The label is not in that form (``2025/26``, ``2025-27``, ``25-26``).
    """
    text = str(label).strip()
    m = _LABEL.match(text)
    example = season_label(2025, start_month)
    form = "YYYY" if start_month == 1 else "YYYY-YY (two consecutive years)"
    ok = m is not None and (m.group(2) is None) == (start_month == 1)
    if ok and m.group(2) is not None:
        ok = int(m.group(2)) == (int(m.group(1)) + 1) % 100
    if not ok:
        raise PlaybookError(
            f"Season {label!r} is not written like '{example}': this organisation's seasons "
            f"are written {form}.\nWhat to do: pass the season like --season {example}."
        )
    return text


def seasons_with_sales(times: pd.Series, start_month: int) -> list[str]:
    """The labels of the seasons in which ``times`` has at least one date, in order."""
    d = pd.Series(pd.to_datetime(times)).dropna()
    if d.empty:
        return []
    years = np.unique((d.dt.year - (d.dt.month < start_month)).to_numpy(dtype=np.int64))
    return [season_label(int(y), start_month) for y in years]


def check_season_has_data(label: str, times: pd.Series, start_month: int) -> str:
    """The season label, checked for form and for having sales in ``times``.

    Raises
    ------
    PlaybookError
        The label is malformed, or no sale falls in that season; the message lists the
        seasons the data cover.
    """
    covered = seasons_with_sales(times, start_month)
    span = ", ".join(covered) if covered else "none (no sales at all)"
    try:
        label = check_season_label(label, start_month)
    except PlaybookError as exc:
        head, _, rest = str(exc).partition("\n")
        raise PlaybookError(f"{head} Seasons with sales: {span}.\n{rest}") from None
    if label not in covered:
        when = ""
        if covered:
            first, last = season_start_year(covered[0]), season_start_year(covered[-1])
            year = season_start_year(label)
            when = " (after the data end)" if year > last else " (before the data start)"
            if first < year < last:
                when = " (a season without sales inside the data)"
        raise PlaybookError(
            f"Season {label} has no sales in this organisation's data{when}. "
            f"Seasons with sales: {span}.\n"
            "What to do: pass one of those seasons, or leave out --season for the latest "
            "complete one; if the season should be there, check the sales export and run "
            "intake again."
        )
    return label
