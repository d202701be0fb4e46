"""What every notebook starts with, and small display helpers for report cells.

A notebook's second cell is ``ctx = report.start(org_dir, season, output_dir)``: it loads
the settings and canonical tables, settles the season, applies the chart theme and
returns a :class:`Context` the rest of the notebook reads from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import Markdown, display

from playbook import charts
from playbook.config import OrgConfig, load_org
from playbook.errors import PlaybookError
from playbook.schema import OrderLines as OL
from playbook.seasons import default_season, season_bounds
from playbook.tables import Tables, load_tables

CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$", "AUD": "A$", "CAD": "C$", "NZD": "NZ$"}

# What each optional table unlocks, for the "data that would unlock this" notes.
UNLOCKS: dict[str, str] = {
    "customers": "households, postcode districts, birthdays and external segments",
    "consents": "consent-aware action lists (marketing moments need consent per channel)",
    "productions": "artform and genre analyses (favourite artform, breadth, new-artform moments)",
    "performances": "lead times, day of week, cancelled-performance service recovery",
    "attendance": "no-show rates and the 'attend' stage of the journey",
    "memberships": "member flags, membership renewal curves and expiry moments",
    "donations": "donor flags, giving in lifetime value and the considered-ask moment",
    "interactions": "email clicks, the 'discover' stage and click-without-booking moments",
    "survey_responses": "NPS, the 'reflect' stage, promoter and detractor moments",
}


@dataclass(frozen=True)
class Context:
    """Everything a notebook needs about the organisation and the season it reports on."""

    config: OrgConfig
    tables: Tables
    season: str
    season_start: pd.Timestamp
    season_end: pd.Timestamp  # exclusive
    output_dir: Path

    @property
    def as_of(self) -> pd.Timestamp:
        """The moment the season report is written as of (the season's last instant)."""
        return self.season_end - pd.Timedelta(seconds=1)

    @property
    def min_group(self) -> int:
        """Suppression threshold."""
        return self.config.min_group

    def money(self, value: float, decimals: int = 0) -> str:
        """Format an amount in the organisation's currency (``£12,345``)."""
        return format_money(value, self.config.currency, decimals)


def format_money(value: float, currency: str = "GBP", decimals: int = 0) -> str:
    """``£12,345`` style formatting; unknown currencies get their code as suffix."""
    if pd.isna(value):
        return "–"
    sym = CURRENCY_SYMBOLS.get(currency)
    sign = "-" if value < 0 else ""
    body = f"{abs(value):,.{decimals}f}"
    return f"{sign}{sym}{body}" if sym else f"{sign}{body} {currency}"


def start(org_dir: str | Path, season: str | None = None, output_dir: str | Path = "") -> Context:
    """Load an organisation for a notebook.

    Parameters
    ----------
    org_dir : str or pathlib.Path
        Organisation folder (holds ``org.yaml`` and ``canonical/``).
    season : str, optional
        Season to report on, e.g. ``"2025-26"``; empty means the latest complete season.
    output_dir : str or pathlib.Path
        Where the notebook may write exports (CSV, PNG); created if needed.

    Returns
    -------
    Context
    """
    cfg = load_org(org_dir)
    tables = load_tables(cfg)
    ol = tables.order_lines
    if ol.empty:
        raise PlaybookError("The organisation has no order lines after intake: nothing to report.")
    m = cfg.season_start_month
    if not season:
        season = default_season(ol[OL.purchase_time], m)
    start_ts, end_ts = season_bounds(season, m)
    out = Path(output_dir) if output_dir else Path.cwd()
    out.mkdir(parents=True, exist_ok=True)
    charts.use_theme()
    return Context(cfg, tables, season, start_ts, end_ts, out)


def missing_note(ctx: Context, needed: Iterable[str], what: str) -> bool:
    """Show a note when tables a section needs are absent; return True if all are present.

    Parameters
    ----------
    ctx : Context
    needed : iterable of str
        Canonical table names the section needs.
    what : str
        What the section shows, for the note (``"membership renewal curves"``).
    """
    absent = [t for t in needed if not ctx.tables.has(t)]
    if not absent:
        return True
    lines = [f"**Not available here: {what}.** This needs data this organisation has not provided:"]
    lines += [f"- `{t}` — {UNLOCKS.get(t, '')}" for t in absent]
    lines.append("Add the export under `sources:` in `org.yaml` and run intake again.")
    display(Markdown("\n".join(lines)))
    return False


def show(
    df: pd.DataFrame,
    *,
    money: Iterable[str] = (),
    pct: Iterable[str] = (),
    ctx: Context | None = None,
    empty: str = "Nothing to show here.",
) -> None:
    """Display a table formatted for reading aloud: money, percentages, thousands.

    Missing values show as "–" (including cells hidden by small-group suppression).
    An empty table is replaced by the sentence ``empty``. A table's ``attrs["footnote"]``
    (what a reader must know to read it right) is shown under it.
    """
    if df.empty:
        display(Markdown(f"*{empty}*"))
        return
    display(styled_table(df, money=money, pct=pct, ctx=ctx))
    if df.attrs.get("footnote"):
        display(Markdown(f"*{df.attrs['footnote']}*"))


def styled_table(
    df: pd.DataFrame,
    *,
    money: Iterable[str] = (),
    pct: Iterable[str] = (),
    ctx: Context | None = None,
) -> Any:
    """The table :func:`show` displays: formatted cells and headings in plain words.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    currency = ctx.config.currency if ctx is not None else "GBP"
    if not isinstance(df.index, pd.MultiIndex):
        df = df.rename_axis(index=heading(df.index.name))  # a new frame: the caller's stays
    fmt: dict[object, object] = {}
    for c in df.columns:
        if pd.api.types.is_integer_dtype(df[c]):
            fmt[c] = "{:,}"
        elif pd.api.types.is_float_dtype(df[c]):
            fmt[c] = "{:,.2f}"
    for c in money:
        fmt[c] = lambda v, cur=currency: format_money(v, cur)
    for c in pct:
        fmt[c] = _percent
    styled = df.style.format(fmt, na_rep="–")
    if isinstance(df.index, pd.RangeIndex):
        styled = styled.hide(axis="index")
    if not isinstance(df.columns, pd.MultiIndex):
        styled = styled.format_index(heading, axis="columns")
    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if text:  # words read from the left, under a heading on the left; numbers stay right
        styled = styled.set_properties(subset=text, **{"text-align": "left"})
        where = [df.columns.get_loc(c) for c in text]
        styled = styled.set_table_styles(
            [{"selector": f"th.col_heading.col{i}", "props": "text-align: left;"} for i in where],
            overwrite=False,
        )
    return styled


def _percent(value: float) -> str:
    """``-0.024`` as "−2.4%": one decimal, with a true minus sign as in the report's text."""
    return f"{value:.1%}".replace("-", "\u2212")


# words kept in capitals (or spelled out) when a column name becomes a heading
_HEADING_WORDS = {
    "ari": "ARI",
    "clv": "CLV",
    "cltv": "CLV",
    "rfm": "RFM",
    "nps": "NPS",
    "id": "ID",
    "yoy": "year on year",
    "pct": "%",
}


def heading(name: object) -> object:
    """A column name like ``share_of_customers`` as a heading: "Share of customers".

    Only names in lower case (words joined by ``_`` or spaces) change; headings already
    written for people are left as they are.

    Examples
    --------
    >>> heading("change_yoy")
    'Change year on year'
    >>> heading("mean_ari")
    'Mean ARI'
    >>> heading("Tier")
    'Tier'
    """
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9]*([_ ][a-z0-9]+)*", name):
        return name
    words = [_HEADING_WORDS.get(w, w) for w in re.split(r"[_ ]", name)]
    text = " ".join(words)
    return text[0].upper() + text[1:]
