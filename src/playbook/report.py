"""What every notebook starts with, and small display helpers for report cells.

A notebook's second cell is ``ctx = report.start(org_dir, season, output_dir)``: it loads
the settings and canonical tables, settles the season, applies the chart theme and
returns a :class:`Context` the rest of the notebook reads from.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from IPython.display import Markdown, display

from playbook import charts
from playbook.config import OrgConfig, load_org
from playbook.errors import PlaybookError
from playbook.schema import OrderLines as OL
from playbook.seasons import GRACE_DAYS, default_season, season_bounds
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


# Canonical channel values (sales channels, consent channels, moment channels) as people
# read them. Values not listed read as their words (``seat_note`` → "Seat note").
CHANNEL_WORDS: dict[str, str] = {
    "online": "Online",
    "web": "Web",
    "phone": "Phone",
    "phone_call": "Phone call",
    "box_office": "Box office",
    "email": "Email",
    "post": "Post",
    "sms": "SMS",
    "other": "Other",
    "unknown": "Unknown",
}

# Columns of a shown table whose values are canonical channel values.
CHANNEL_COLUMNS = ("channel",)


_TABLE_NUMBERS = itertools.count(1)


@dataclass(frozen=True)
class Context:
    """Everything a notebook needs about the organisation and the season it reports on."""

    config: OrgConfig
    tables: Tables
    season: str
    season_start: pd.Timestamp
    season_end: pd.Timestamp  # exclusive
    output_dir: Path
    data_end: pd.Timestamp | None = None  # the last instant of the last day with a purchase

    @property
    def as_of(self) -> pd.Timestamp:
        """The moment the season report is written as of.

        The season's last instant; for a season still in progress, the end of the last
        day with a purchase, so that nothing (an action's due date, a customer's
        recency) is dated after the data.
        """
        last = self.season_end - pd.Timedelta(seconds=1)
        return self.data_end if self.in_progress else last

    @property
    def in_progress(self) -> bool:
        """Whether the data end well before the season does.

        A season whose data end within :data:`~playbook.seasons.GRACE_DAYS` of its end
        counts as complete (box offices go quiet over a summer break), as for the
        default season.
        """
        if self.data_end is None:
            return False
        return self.data_end + pd.Timedelta(days=GRACE_DAYS) < self.season_end

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
    last = pd.Timestamp(ol[OL.purchase_time].max()).normalize()
    data_end = last + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    return Context(cfg, tables, season, start_ts, end_ts, out, data_end)


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


def channel_words(value: object, labels: Mapping[str, str] | None = None) -> object:
    """A canonical channel value in plain words, for tables and charts people read.

    The one place channel values become display words; exports for systems (action
    lists, CSV, Parquet) keep the canonical values.

    Parameters
    ----------
    value : object
        A channel value such as ``"box_office"``. Anything that is not a canonical
        (lower-case, ``_``-joined) word is returned as it is: missing values, words
        already written for people ("Email", "Other (small groups)").
    labels : mapping, optional
        This organisation's own labels, which win (the moment channels' ``label``
        setting: ``{"post": "Letter"}``).

    Examples
    --------
    >>> channel_words("box_office")
    'Box office'
    >>> channel_words("sms")
    'SMS'
    >>> channel_words("post", {"post": "Letter"})
    'Letter'
    >>> channel_words("Other (small groups)")
    'Other (small groups)'
    """
    if not isinstance(value, str):
        return value
    if labels and value in labels:
        return labels[value]
    if value in CHANNEL_WORDS:
        return CHANNEL_WORDS[value]
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", value):
        return (value[0].upper() + value[1:]).replace("_", " ")
    return value


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
        display(Markdown(f"*{_channel_footnote(df, str(df.attrs['footnote']))}*"))


def _channel_footnote(df: pd.DataFrame, text: str) -> str:
    """A footnote naming channel values in quotes ("box_office") names them as shown."""
    for c in CHANNEL_COLUMNS:
        if c in df.columns:
            for raw in pd.unique(df[c].dropna()):
                shown = channel_words(raw)
                if shown != raw:
                    text = text.replace(f'"{raw}"', f'"{shown}"')
    return text


def styled_table(
    df: pd.DataFrame,
    *,
    money: Iterable[str] = (),
    pct: Iterable[str] = (),
    ctx: Context | None = None,
) -> Any:
    """The table :func:`show` displays: formatted cells and headings in plain words.

    Channel values (a ``channel`` column) read in plain words (:func:`channel_words`).
    Dates and figures never break over two lines: their cells are ``nowrap``; text
    columns still wrap, so a wide table does not overflow the page.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    currency = ctx.config.currency if ctx is not None else "GBP"
    if not isinstance(df.index, pd.MultiIndex):
        df = df.rename_axis(index=heading(df.index.name))  # a new frame: the caller's stays
    channels = [c for c in CHANNEL_COLUMNS if c in df.columns and not df[c].empty]
    if channels and not isinstance(df.columns, pd.MultiIndex) and df.columns.is_unique:
        df = df.assign(**{c: df[c].map(channel_words) for c in channels})
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
    # ids numbered in the order tables are shown: unique on a page, the same every run
    # (pandas' default is random, so two renders of the same data differed)
    styled = df.style.format(fmt, na_rep="–").set_uuid(f"t{next(_TABLE_NUMBERS)}")
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
    keep = [i for i, c in enumerate(df.columns) if _keeps_on_one_line(df.iloc[:, i], c in fmt)]
    rules = [{"selector": f"td.col{i}", "props": "white-space: nowrap;"} for i in keep]
    shown_index = not isinstance(df.index, (pd.MultiIndex, pd.RangeIndex))
    if shown_index and _keeps_on_one_line(df.index.to_series()):
        rules.append({"selector": "th.row_heading", "props": "white-space: nowrap;"})
    if rules:  # one rule per column (not per cell): the page stays light
        styled = styled.set_table_styles(rules, overwrite=False)
    return styled


# A cell that reads as one figure: a date ("2022-09-01", "1 Sep 2022", "Sep 2022",
# "2022-09-01 19:30"), a season ("2024-25"), an amount or a share ("£1,234", "−2.4%",
# "+11.7 points", "12 days"), or the dash of a hidden figure.
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_FIGURE = re.compile(
    r"\s*(?:"
    r"\d{4}-\d{2}(?:-\d{2})?(?:[ T]\d{2}:\d{2}(?::\d{2})?)?"  # ISO date / time
    rf"|(?:\d{{1,2}} )?{_MONTH}(?: \d{{2,4}})?"  # 1 Sep 2022, Sep 2022, 01 Sep
    r"|\d{1,2}/\d{1,2}/\d{2,4}"  # 01/09/2022
    r"|\d{4}-\d{2,4}"  # season 2024-25
    r"|[+\-\u2212]?[£$€]?[+\-\u2212]?\d[\d,]*(?:\.\d+)?\s?(?:[%kmx×]|[A-Z]{3}"
    r"|points?|days?|weeks?|months?|years?|pp)?"  # amounts, shares, durations
    r"|[–—-]"  # a hidden figure
    r")\s*"
)


def _keeps_on_one_line(values: pd.Series, formatted: bool = False) -> bool:
    """Whether a column holds dates or figures only (so its cells should not wrap)."""
    if formatted or pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return True
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
        return True
    present = values.dropna()
    if present.empty:
        return False
    if present.map(lambda v: isinstance(v, (pd.Timestamp, date))).all():
        return True
    text = present.astype(str)
    return bool(text.str.fullmatch(_FIGURE).all()) and not text.str.fullmatch(r"\s*[–—-]\s*").all()


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
