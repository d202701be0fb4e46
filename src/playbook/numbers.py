"""How the reports print shares and changes, and the figure a verdict is judged on.

One home for the journey page and the season report, so a rate printed "5.0%" is
judged as 5.0% everywhere and every change carries the same signs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_shown(value: float, decimals: int = 1) -> float:
    """A share as the reports print it (``0.0505`` → ``0.05``: "5.0%" at one decimal).

    Verdicts are decided on this figure, so a rate printed "5.0%" is never called above
    a band that ends at 5%.
    """
    if value is None or pd.isna(value):
        return np.nan
    return float(f"{float(value):.{decimals}%}".rstrip("%")) / 100


def signed_pct(value: float, decimals: int = 1) -> str:
    """A relative change with its sign: "+15.1%", "−2.4%" (a true minus), "0.0%"."""
    if value is None or pd.isna(value):
        return "–"
    body = f"{abs(float(value)):.{decimals}%}"
    shown = as_shown(value, decimals)
    return ("+" if shown > 0 else "−" if shown < 0 else "") + body


def signed_points(value: float, decimals: int = 1) -> str:
    """A difference of two percentages, in percentage points: "+11.7 points", "−1.4 points"."""
    if value is None or pd.isna(value):
        return "–"
    body = f"{abs(float(value)) * 100:.{decimals}f}"
    sign = "" if float(body) == 0 else "+" if value > 0 else "−"
    return f"{sign}{body} points"
