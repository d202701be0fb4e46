"""One chart look for every notebook: readable on a projector, colour-blind safe.

Chart functions take a tidy frame and return the matplotlib ``Figure`` so notebooks
stay one call per chart. Every chart has a title and labelled axes; money axes use the
organisation's currency.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
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
    horizontal: bool = False,
) -> Figure:
    """A bar chart with a title, labelled axes and optional money or percent axis."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    if horizontal:
        sns.barplot(data=data, y=x, x=y, hue=hue, ax=ax, orient="h")
        ax.set_ylabel(xlabel)
        ax.set_xlabel(ylabel)
        value_axis = ax.xaxis
    else:
        sns.barplot(data=data, x=x, y=y, hue=hue, ax=ax)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        value_axis = ax.yaxis
        if data[x].astype(str).str.len().max() > 8:
            ax.tick_params(axis="x", rotation=30)
    if money:
        value_axis.set_major_formatter(money_formatter(money))
    if percent:
        value_axis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(title)
    if hue:
        ax.legend(title=hue.replace("_", " "), frameon=False)
    return fig


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
