"""The kit's chart look: category names that never overlap, on hand-made frames."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from playbook import charts

# the demo organisation's artforms, in its order (the revenue chart of notebook 00)
ARTFORMS = [
    "Classical Music",
    "Theatre",
    "Musical",
    "Dance",
    "Family",
    "Contemporary Music",
    "Comedy",
    "Talks",
]
SEASONS = ["2022-23", "2023-24", "2024-25", "2025-26"]


@pytest.fixture(autouse=True)
def theme():
    charts.use_theme()
    yield
    plt.close("all")


def revenue(artforms: list[str]) -> pd.DataFrame:
    rows = [
        (a, s, 1000.0 * (i + j + 1)) for i, a in enumerate(artforms) for j, s in enumerate(SEASONS)
    ]
    return pd.DataFrame(rows, columns=["artform", "season", "revenue"])


def category_labels(fig, name: str = "Theatre") -> list:
    """The tick labels holding the category names (x when upright, y when lying down)."""
    ax = fig.axes[0]
    fig.canvas.draw()
    for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
        texts = [t.get_text().replace("\n", " ") for t in labels]
        if name in texts:
            return [t for t in labels if t.get_text()]
    raise AssertionError("no axis holds the artform names")


def overlapping(labels, renderer) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
    return [
        (a, b)
        for i, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[i + 1 :]
        if box_a.overlaps(box_b)
    ]


@pytest.mark.parametrize("n", [4, 8])
def test_artform_names_do_not_overlap(n: int) -> None:
    data = revenue(ARTFORMS[:n])
    fig = charts.bar(
        data,
        "artform",
        "revenue",
        hue="season",
        title="Ticket revenue by artform and season",
        xlabel="Artform",
        ylabel="Ticket revenue (GBP)",
        money="£",
    )
    labels = category_labels(fig)
    assert sorted(t.get_text().replace("\n", " ") for t in labels) == sorted(ARTFORMS[:n])
    assert overlapping(labels, fig.canvas.get_renderer()) == []
    assert all(t.get_rotation() == 0 for t in labels)  # names read level, not slanted


def test_many_long_names_lie_down_in_a_figure_tall_enough() -> None:
    names = [f"{a} {b}" for a in ("Contemporary", "Traditional") for b in ARTFORMS]
    fig = charts.bar(
        revenue(names), "artform", "revenue", hue="season", title="t", xlabel="Artform", ylabel="£"
    )
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == names[:2]  # names on the left
    assert fig.get_size_inches()[1] > charts.FIGSIZE[1]
    labels = category_labels(fig, names[0])
    assert len(labels) == len(names)
    assert overlapping(labels, fig.canvas.get_renderer()) == []


def test_short_names_stay_upright_and_an_explicit_choice_is_kept() -> None:
    seasons = pd.DataFrame({"season": SEASONS, "tickets": [7838, 5659, 5075, 4809]})
    fig = charts.bar(seasons, "season", "tickets", title="t", xlabel="Season", ylabel="Tickets")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == SEASONS
    assert tuple(fig.get_size_inches()) == charts.FIGSIZE
    fig = charts.bar(
        revenue(ARTFORMS), "artform", "revenue", title="t", xlabel="a", ylabel="b", horizontal=False
    )
    assert "Theatre" in [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_wrap_label() -> None:
    assert charts.wrap_label("Contemporary Music") == "Contemporary\nMusic"
    assert charts.wrap_label("Theatre") == "Theatre"
    assert charts.wrap_label("") == ""
