"""Season labels: checked for form and for having sales before anything is rendered."""

from __future__ import annotations

import pandas as pd
import pytest

from playbook.errors import PlaybookError
from playbook.seasons import check_season_has_data, check_season_label, seasons_with_sales

TIMES = pd.Series(
    pd.to_datetime(
        ["2023-09-01 10:00", "2024-08-31 23:00", "2025-01-15 00:00", "2025-10-02 00:00", None]
    )
)


@pytest.mark.parametrize("label", ["2025/26", "2025-27", "2025-2026", "25-26", "2025", "", "x"])
def test_malformed_labels_are_refused(label: str) -> None:
    with pytest.raises(PlaybookError, match="written like '2025-26'") as err:
        check_season_label(label, 9)
    assert "--season 2025-26" in str(err.value)


def test_well_formed_labels_pass() -> None:
    assert check_season_label("2025-26", 9) == "2025-26"
    assert check_season_label("1999-00", 9) == "1999-00"  # century turn
    assert check_season_label("2025", 1) == "2025"  # calendar-year seasons
    with pytest.raises(PlaybookError, match="written like '2025'"):
        check_season_label("2025-26", 1)


def test_seasons_with_sales_known_answer() -> None:
    assert seasons_with_sales(TIMES, 9) == ["2023-24", "2024-25", "2025-26"]
    assert seasons_with_sales(TIMES, 1) == ["2023", "2024", "2025"]
    assert seasons_with_sales(TIMES.iloc[:0], 9) == []


@pytest.mark.parametrize(
    ("label", "where"),
    [("2030-31", "after the data end"), ("2019-20", "before the data start")],
)
def test_season_without_sales_lists_the_covered_seasons(label: str, where: str) -> None:
    with pytest.raises(PlaybookError) as err:
        check_season_has_data(label, TIMES, 9)
    msg = str(err.value)
    assert f"Season {label} has no sales" in msg and where in msg
    assert "Seasons with sales: 2023-24, 2024-25, 2025-26." in msg


def test_season_gap_inside_the_data() -> None:
    times = pd.Series(pd.to_datetime(["2021-10-01", "2024-10-01"]))
    with pytest.raises(PlaybookError, match="without sales inside the data"):
        check_season_has_data("2022-23", times, 9)
    assert check_season_has_data("2024-25", times, 9) == "2024-25"


def test_malformed_label_lists_the_covered_seasons_too() -> None:
    with pytest.raises(PlaybookError) as err:
        check_season_has_data("2025/26", TIMES, 9)
    msg = str(err.value)
    assert "written like '2025-26'" in msg
    assert "Seasons with sales: 2023-24, 2024-25, 2025-26." in msg
