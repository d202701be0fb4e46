"""One chart look for every notebook: readable on a projector, colour-blind safe.

Chart functions take a tidy frame and return the matplotlib ``Figure`` so notebooks
stay one call per chart. Every chart has a title and labelled axes; money axes use the
organisation's currency.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

PALETTE = "colorblind"
SEQUENTIAL = "crest"
DIVERGING = "vlag"
FIGSIZE = (10, 5.5)


def use_theme() -> None:
    """Apply the kit's seaborn theme (large fonts, colour-blind palette, light grid)."""
    sns.set_theme(
        context="notebook",
        style="whitegrid",
        palette=PALETTE,
        font_scale=1.2,
        rc={
            "figure.figsize": FIGSIZE,
            "figure.dpi": 100,
            "savefig.dpi": 150,
            "axes.titleweight": "bold",
            "axes.titlesize": 16,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.autolayout": True,
        },
    )


def money_formatter(currency_symbol: str = "£") -> FuncFormatter:
    """Axis formatter for amounts: £1.2k, £3.4m."""

    def fmt(v: float, _pos: int) -> str:
        a = abs(v)
        if a >= 1e6:
            s = f"{a / 1e6:.1f}m"
        elif a >= 1e3:
            s = f"{a / 1e3:.0f}k"
        else:
            s = f"{a:.0f}"
        return ("-" if v < 0 else "") + currency_symbol + s

    return FuncFormatter(fmt)


def bar(
    data: pd.DataFrame,
    x: str,
    y: str,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    hue: str | None = None,
    money: str | None = None,
    percent: bool = False,
    horizontal: bool | None = None,
) -> Figure:
    """A bar chart with a title, labelled axes and optional money or percent axis.

    Category names (``x``) never overlap: upright bars get names wrapped over two lines
    when long; when they would still collide (many or long names, such as artforms), the
    bars are drawn lying down, names on the left, the figure as tall as they need.

    Parameters
    ----------
    horizontal : bool, optional
        Bars lying down (True) or upright (False); by default, chosen as above.
    """
    labels = {"title": title, "xlabel": xlabel, "ylabel": ylabel}
    if not horizontal:
        fig = _upright_bars(data, x, y, hue)
        _finish(fig, hue, money, percent, horizontal=False, **labels)
        if horizontal is False or not _labels_overlap(fig, fig.axes[0].xaxis):
            return fig
        plt.close(fig)  # the names do not fit side by side: lay the bars down
    fig = _lying_bars(data, x, y, hue)
    return _finish(fig, hue, money, percent, horizontal=True, **labels)


def _upright_bars(data: pd.DataFrame, x: str, y: str, hue: str | None) -> Figure:
    """Vertical bars, long category names wrapped over lines."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    sns.barplot(data=data, x=x, y=y, hue=hue, ax=ax)
    ticks = ax.get_xticklabels()
    ax.set_xticks(ax.get_xticks(), [wrap_label(t.get_text()) for t in ticks])
    return fig


def _lying_bars(data: pd.DataFrame, x: str, y: str, hue: str | None) -> Figure:
    """Horizontal bars, the figure tall enough for one readable row per category."""
    n = data[x].nunique()
    groups = data[hue].nunique() if hue else 1
    height = max(FIGSIZE[1], 1.8 + n * (0.25 + 0.12 * groups))
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], height))
    sns.barplot(data=data, y=x, x=y, hue=hue, ax=ax, orient="h")
    return fig


def _finish(
    fig: Figure,
    hue: str | None,
    money: str | None,
    percent: bool,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    horizontal: bool,
) -> Figure:
    """Titles, axis names, the value axis's format and the legend of a bar chart."""
    ax = fig.axes[0]
    if horizontal:
        ax.set_ylabel(xlabel)
        ax.set_xlabel(ylabel)
        value_axis = ax.xaxis
        ax.grid(axis="y", visible=False)
    else:
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        value_axis = ax.yaxis
    if money:
        value_axis.set_major_formatter(money_formatter(money))
    if percent:
        value_axis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(title)
    if hue:
        where = {"bbox_to_anchor": (1.01, 1), "loc": "upper left"} if horizontal else {}
        ax.legend(title=hue.replace("_", " "), frameon=False, **where)
    return fig


def wrap_label(text: str, width: int = 12) -> str:
    """A category name over lines of about ``width`` characters, broken between words.

    Examples
    --------
    >>> wrap_label("Contemporary Music")
    'Contemporary\\nMusic'
    >>> wrap_label("Theatre")
    'Theatre'
    """
    return "\n".join(textwrap.wrap(text, width, break_long_words=False)) or text


def _labels_overlap(fig: Figure, axis: Axis, gap_em: float = 1.0) -> bool:
    """Whether any two tick labels of ``axis`` (in ``fig``) overlap or nearly touch.

    Names closer than ``gap_em`` times their font size would read as one phrase
    ("Contemporary Music Comedy"), so they count as overlapping too.
    """
    fig.canvas.draw()  # lays the ticks out (and applies the tight layout) first
    renderer = fig.canvas.get_renderer()
    labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
    boxes = [
        t.get_window_extent(renderer).padded(gap_em * t.get_fontsize() * fig.dpi / 72 / 2)
        for t in labels
    ]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def heatmap(
    matrix: pd.DataFrame,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    fmt: str = ".0%",
    cmap: str = SEQUENTIAL,
    center: float | None = None,
    annot: pd.DataFrame | None = None,
) -> Figure:
    """An annotated heatmap (rows × columns) with a title and labelled axes."""
    h = max(3.5, 0.55 * len(matrix) + 1.5)
    w = max(6.0, min(16.0, 1.1 * len(matrix.columns) + 3))
    fig, ax = plt.subplots(figsize=(w, h))
    sns.heatmap(
        matrix.astype(float),
        annot=annot if annot is not None else True,
        fmt=fmt if annot is None else "",
        cmap=cmap,
        center=center,
        linewidths=0.5,
        cbar=False,
        ax=ax,
    )
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="y", rotation=0)
    return fig


def line(
    data: pd.DataFrame,
    x: str,
    y: str,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    hue: str | None = None,
    money: str | None = None,
    percent: bool = False,
) -> Figure:
    """A line chart with markers, a title and labelled axes."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    sns.lineplot(data=data, x=x, y=y, hue=hue, marker="o", ax=ax)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if money:
        ax.yaxis.set_major_formatter(money_formatter(money))
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    if hue:
        ax.legend(title=hue.replace("_", " "), frameon=False)
    return fig
