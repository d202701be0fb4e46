"""The canonical arts data model.

Every analysis in the kit reads these tables and nothing else. Intake maps an
organisation's own exports onto them once, at the edge, and validates them with
pandera; inner functions trust them and refer to columns through the table classes
below (``OrderLines.paid_amount``), never through scattered string literals.

Only ``order_lines`` is required. Every other table is optional: when it is absent,
:func:`playbook.tables.load_tables` returns an empty frame with the right columns, so
later code degrades gracefully instead of failing.

Conventions
-----------
- ``customer_id`` is a pseudonym (a keyed hash of the organisation's own id).
- Times are naive local times in the organisation's time zone (``datetime64[ns]``).
- Money is a float in the organisation's currency (major units, e.g. pounds).
- ``order_lines`` holds one row per item sold, returned or exchanged. A return or an
  exchange is its own row with ``status`` ``returned`` / ``exchanged``, negative amounts
  and ``parent_line_id`` pointing at the line it reverses; the original line stays
  ``active``. :func:`playbook.tables.effective_tickets` gives the tickets that stood.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pandera.pandas as pa

# ---------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------
CHANNELS_CONSENT = ("email", "post", "sms", "phone")
CONSENT_STATUSES = ("granted", "withdrawn", "unknown")
ITEM_TYPES = ("ticket", "subscription", "membership", "donation", "merchandise", "fee", "voucher")
LINE_STATUSES = ("active", "returned", "exchanged", "void")
SALES_CHANNELS = ("online", "phone", "box_office", "other")
MEMBERSHIP_TYPES = ("new", "renewal")
INTERACTION_KINDS = (
    "email_send",
    "email_open",
    "email_click",
    "unsubscribe",
    "web_visit",
)


@dataclass(frozen=True)
class Col:
    """One canonical column.

    Parameters
    ----------
    name : str
        Canonical column name.
    kind : str
        One of ``id``, ``str``, ``cat``, ``datetime``, ``money``, ``int``, ``float``, ``bool``.
    required : bool
        Whether a source mapping must provide it (otherwise it is filled with a default).
    nullable : bool
        Whether missing values are allowed after intake.
    allowed : tuple of str, optional
        Allowed values for ``cat`` columns.
    doc : str
        Plain-language meaning, shown in error messages and the data dictionary.
    """

    name: str
    kind: str
    required: bool = False
    nullable: bool = True
    allowed: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Table:
    """A canonical table: its name, its columns and its key."""

    name: str
    columns: tuple[Col, ...]
    key: tuple[str, ...] = ()
    doc: str = ""
    required: bool = False
    names: dict[str, Col] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", {c.name: c for c in self.columns})

    @property
    def column_names(self) -> list[str]:
        """Canonical column names in order."""
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        """Columns a source mapping must provide."""
        return [c.name for c in self.columns if c.required]


# ---------------------------------------------------------------------------
# Column name namespaces (use these in code: ``OrderLines.paid_amount``)
# ---------------------------------------------------------------------------
class Customers:
    """Column names of ``customers``."""

    customer_id = "customer_id"
    household_id = "household_id"
    postcode_district = "postcode_district"
    birth_month = "birth_month"
    birth_day = "birth_day"
    segment_code = "segment_code"
    created_at = "created_at"
    anonymised = "anonymised"
    do_not_contact = "do_not_contact"


class Consents:
    """Column names of ``consents``."""

    customer_id = "customer_id"
    channel = "channel"
    status = "status"
    consent_date = "consent_date"


class Productions:
    """Column names of ``productions``."""

    production_id = "production_id"
    title = "title"
    artform = "artform"
    genre = "genre"


class Performances:
    """Column names of ``performances``."""

    performance_id = "performance_id"
    production_id = "production_id"
    venue = "venue"
    start_time = "start_time"
    capacity = "capacity"
    cancelled = "cancelled"


class OrderLines:
    """Column names of ``order_lines``."""

    line_id = "line_id"
    order_id = "order_id"
    customer_id = "customer_id"
    purchase_time = "purchase_time"
    channel = "channel"
    item_type = "item_type"
    performance_id = "performance_id"
    price_band = "price_band"
    ticket_type = "ticket_type"
    quantity = "quantity"
    list_price = "list_price"
    paid_amount = "paid_amount"
    discount = "discount"
    is_comp = "is_comp"
    status = "status"
    parent_line_id = "parent_line_id"


class Attendance:
    """Column names of ``attendance``."""

    line_id = "line_id"
    customer_id = "customer_id"
    performance_id = "performance_id"
    scanned_at = "scanned_at"


class Memberships:
    """Column names of ``memberships``."""

    membership_id = "membership_id"
    customer_id = "customer_id"
    scheme = "scheme"
    tier = "tier"
    start_date = "start_date"
    end_date = "end_date"
    membership_type = "membership_type"
    amount = "amount"


class Donations:
    """Column names of ``donations``."""

    donation_id = "donation_id"
    customer_id = "customer_id"
    donation_date = "donation_date"
    amount = "amount"
    fund = "fund"
    campaign = "campaign"


class Interactions:
    """Column names of ``interactions``."""

    customer_id = "customer_id"
    occurred_at = "occurred_at"
    kind = "kind"
    campaign = "campaign"
    production_id = "production_id"


class SurveyResponses:
    """Column names of ``survey_responses``."""

    response_id = "response_id"
    customer_id = "customer_id"
    responded_at = "responded_at"
    performance_id = "performance_id"
    nps = "nps"
    intent_to_return = "intent_to_return"


# ---------------------------------------------------------------------------
# Table definitions
# ---------------------------------------------------------------------------
TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "customers",
            (
                Col("customer_id", "id", required=True, nullable=False, doc="customer number"),
                Col("household_id", "id", doc="household or account the customer belongs to"),
                Col("postcode_district", "str", doc="postcode district (outward code) only"),
                Col("birth_month", "int", doc="month of birth, kept only with consent"),
                Col("birth_day", "int", doc="day of birth, kept only with consent"),
                Col("segment_code", "str", doc="external segment, e.g. Audience Spectrum"),
                Col("created_at", "datetime", doc="when the record was created"),
                Col("anonymised", "bool", nullable=False, doc="erased / anonymised flag"),
                Col(
                    "do_not_contact",
                    "bool",
                    nullable=False,
                    doc="never contact (deceased, gone away, do not contact); kept in analyses",
                ),
            ),
            key=("customer_id",),
            doc="one row per customer",
        ),
        Table(
            "consents",
            (
                Col("customer_id", "id", required=True, nullable=False),
                Col("channel", "cat", required=True, nullable=False, allowed=CHANNELS_CONSENT),
                Col("status", "cat", required=True, nullable=False, allowed=CONSENT_STATUSES),
                Col("consent_date", "datetime"),
            ),
            key=("customer_id", "channel"),
            doc="marketing consent per customer and channel (latest status)",
        ),
        Table(
            "productions",
            (
                Col("production_id", "id", required=True, nullable=False),
                Col("title", "str", required=True, nullable=False),
                Col("artform", "str", doc="theatre, music, dance, comedy, family, talks …"),
                Col("genre", "str"),
            ),
            key=("production_id",),
            doc="one row per production / event",
        ),
        Table(
            "performances",
            (
                Col("performance_id", "id", required=True, nullable=False),
                Col("production_id", "id", required=True, nullable=False),
                Col("venue", "str"),
                Col("start_time", "datetime", required=True, nullable=False),
                Col("capacity", "int"),
                Col("cancelled", "bool", nullable=False),
            ),
            key=("performance_id",),
            doc="one row per performance / instance",
        ),
        Table(
            "order_lines",
            (
                Col("line_id", "id", required=True, nullable=False, doc="line / item id"),
                Col("order_id", "id", required=True, nullable=False, doc="order / transaction"),
                Col("customer_id", "id", required=True, nullable=False, doc="customer number"),
                Col("purchase_time", "datetime", required=True, nullable=False),
                Col("channel", "cat", nullable=False, allowed=SALES_CHANNELS),
                Col("item_type", "cat", nullable=False, allowed=ITEM_TYPES),
                Col("performance_id", "id", doc="performance for tickets"),
                Col("price_band", "str"),
                Col("ticket_type", "str", doc="full price, concession, subscription …"),
                Col("quantity", "int", nullable=False),
                Col("list_price", "money"),
                Col("paid_amount", "money", required=True, nullable=False),
                Col("discount", "money"),
                Col("is_comp", "bool", nullable=False),
                Col("status", "cat", nullable=False, allowed=LINE_STATUSES),
                Col("parent_line_id", "id", doc="the line a return or exchange reverses"),
            ),
            key=("line_id",),
            doc="one row per item sold, returned or exchanged",
            required=True,
        ),
        Table(
            "attendance",
            (
                Col("line_id", "id"),
                Col("customer_id", "id"),
                Col("performance_id", "id"),
                Col("scanned_at", "datetime", required=True, nullable=False),
            ),
            doc="ticket scans at the door",
        ),
        Table(
            "memberships",
            (
                Col("membership_id", "id", required=True, nullable=False),
                Col("customer_id", "id", required=True, nullable=False),
                Col("scheme", "str"),
                Col("tier", "str"),
                Col("start_date", "datetime", required=True, nullable=False),
                Col("end_date", "datetime", required=True, nullable=False),
                Col("membership_type", "cat", allowed=MEMBERSHIP_TYPES),
                Col("amount", "money"),
            ),
            key=("membership_id",),
            doc="one row per membership term",
        ),
        Table(
            "donations",
            (
                Col("donation_id", "id", required=True, nullable=False),
                Col("customer_id", "id", required=True, nullable=False),
                Col("donation_date", "datetime", required=True, nullable=False),
                Col("amount", "money", required=True, nullable=False),
                Col("fund", "str"),
                Col("campaign", "str"),
            ),
            key=("donation_id",),
            doc="one row per gift",
        ),
        Table(
            "interactions",
            (
                Col("customer_id", "id", required=True, nullable=False),
                Col("occurred_at", "datetime", required=True, nullable=False),
                Col("kind", "cat", required=True, nullable=False, allowed=INTERACTION_KINDS),
                Col("campaign", "str"),
                Col("production_id", "id", doc="production the email or page was about"),
            ),
            doc="email activity and web visits",
        ),
        Table(
            "survey_responses",
            (
                Col("response_id", "id", required=True, nullable=False),
                Col("customer_id", "id", required=True, nullable=False),
                Col("responded_at", "datetime", required=True, nullable=False),
                Col("performance_id", "id"),
                Col("nps", "int", doc="likelihood to recommend, 0–10"),
                Col("intent_to_return", "float", doc="intent to return, 0–1"),
            ),
            key=("response_id",),
            doc="post-show survey answers",
        ),
    )
}

TABLE_NAMES: tuple[str, ...] = tuple(TABLES)

_DTYPES = {
    "id": "string",
    "str": "string",
    "cat": "string",
    "datetime": "datetime64[ns]",
    "money": "float64",
    "float": "float64",
    "int": "Int64",
    "bool": "bool",
}


def dtype_of(col: Col) -> str:
    """Pandas dtype used for a canonical column."""
    return _DTYPES[col.kind]


def empty_table(name: str) -> pd.DataFrame:
    """An empty canonical table with the right columns and dtypes.

    Parameters
    ----------
    name : str
        Canonical table name, e.g. ``"donations"``.

    Returns
    -------
    pandas.DataFrame
        Zero rows, every canonical column present.
    """
    table = TABLES[name]
    return pd.DataFrame({c.name: pd.Series([], dtype=dtype_of(c)) for c in table.columns})


def conform(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """Order columns canonically and cast each to its canonical dtype.

    Missing optional columns are added with neutral defaults (``False`` for flags,
    ``1`` for quantity, ``active`` for status, ``other`` for channel, ``ticket`` for
    item type, missing otherwise).
    """
    table = TABLES[name]
    out = {}
    n = len(df)
    for c in table.columns:
        if c.name in df.columns:
            s = df[c.name]
        else:
            s = pd.Series([_DEFAULTS.get((name, c.name), _KIND_DEFAULTS.get(c.kind))] * n)
            s.index = df.index
        dtype = dtype_of(c)
        if dtype == "datetime64[ns]":
            s = pd.to_datetime(s).astype("datetime64[ns]")
        elif dtype == "bool":
            s = s.fillna(False).astype(bool)
        else:
            s = s.astype(dtype)
        out[c.name] = s
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


_KIND_DEFAULTS: dict[str, object] = {"bool": False}
_DEFAULTS: dict[tuple[str, str], object] = {
    ("order_lines", "quantity"): 1,
    ("order_lines", "status"): "active",
    ("order_lines", "channel"): "other",
    ("order_lines", "item_type"): "ticket",
    ("order_lines", "is_comp"): False,
    ("performances", "cancelled"): False,
    ("customers", "anonymised"): False,
    ("customers", "do_not_contact"): False,
}


def pandera_schema(name: str) -> pa.DataFrameSchema:
    """The pandera schema that checks a canonical table after intake.

    Parameters
    ----------
    name : str
        Canonical table name.

    Returns
    -------
    pandera.DataFrameSchema
        Strict (no extra columns), with allowed values for categorical columns,
        uniqueness of the table key and value ranges where they are known.
    """
    table = TABLES[name]
    cols = {}
    for c in table.columns:
        checks = []
        if c.allowed:
            checks.append(pa.Check.isin(list(c.allowed)))
        if c.name == "nps":
            checks.append(pa.Check.in_range(0, 10))
        if c.name == "intent_to_return":
            checks.append(pa.Check.in_range(0, 1))
        if c.name == "birth_month":
            checks.append(pa.Check.in_range(1, 12))
        if c.name == "birth_day":
            checks.append(pa.Check.in_range(1, 31))
        if c.name in ("quantity", "capacity"):
            checks.append(pa.Check.ge(0))
        cols[c.name] = pa.Column(dtype_of(c), checks=checks, nullable=c.nullable)
    unique = list(table.key) if table.key else None
    return pa.DataFrameSchema(cols, strict=True, ordered=True, unique=unique, name=name)
