"""Export presets: named mappings of a ticketing system's standard exports.

A preset is one :class:`Preset` entry in :data:`PRESETS`. For each canonical table it
holds the same keys a ``sources.<table>`` section of ``org.yaml`` holds (``file``,
``columns``, ``values``, ``date_format`` …), so it is data, not code. ``org.yaml`` names
it per source (``sources.order_lines.preset: tessitura``) or once for every source
(top-level ``preset: tessitura``, or ``playbook intake --preset tessitura``); anything
written in ``org.yaml`` beside it overrides the preset. With a top-level preset, every
table of the preset whose default export file exists is read without any mapping.

Adding a system is adding one :func:`register_preset` call. Where a system needs more
than renaming, the entry declares it with these source keys, which intake carries out
(see :mod:`playbook.intake`); they work the same in a hand-written ``org.yaml``:

``join: {file: F, on: COL | [LEFT, RIGHT], prefix: P}``
    Add the columns of a second export (e.g. an order header) to each row, matched on a
    key column. The second file is a lookup: it has no rows of its own in the ledger.
``filter: {column: COL, in: [words]}`` or ``{column: COL, not_in: [words]}``
    Read only the rows of a shared export that belong to this table (case-insensitive),
    e.g. donations out of an all-items report, or attendance from "Used (In)" seats.
    Each table reading a shared file has its own ledger entry, ``file [table]``. A row
    that no table reading the file takes (a lost opportunity, say) is dropped in the
    ledger of the first of them with the reason ``filtered_out``, so nothing is lost
    silently. A ``filter`` in ``org.yaml`` replaces the preset's (``filter: null``
    removes it).
``returns: linked | in_place | match``
    ``linked`` (default): a return is its own row naming its original in
    ``parent_line_id``. ``in_place``: a row whose status maps to ``returned`` or
    ``exchanged`` *is* the original; intake keeps it as sold and adds the reversing
    line. ``match``: a return row names no parent; intake links it to the latest
    earlier sale with the same ``ticket_ref`` (e.g. a ticket id shared by both rows).
``comp_when_zero: true``
    A ticket whose list price (else paid amount) is 0 is a comp.
``plan_amount: split | repeated``
    With ``plan_id`` mapped, per-event tickets of a season plan or package become
    zero-revenue seats and the plan becomes one ``subscription`` line per order,
    customer and plan (``split``: per-event amounts are shares that add up to the
    plan price; ``repeated``: each per-event row repeats the whole plan price).
``optional_columns: [canonical names]``
    Mapped columns that may be missing from the file (presets mark every column that
    is not required as optional, so a shorter export still reads).

Every value is read with YAML's safe loader and used as a name or a word: nothing in a
preset or in ``org.yaml`` is ever evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from playbook.config import deep_merge, thaw
from playbook.errors import ConfigError, PlaybookError
from playbook.schema import TABLES

RETURN_MODES = ("linked", "in_place", "match")
PLAN_AMOUNTS = ("split", "repeated")


@dataclass(frozen=True)
class Preset:
    """One ticketing system's standard exports mapped onto the canonical tables.

    Attributes
    ----------
    name : str
        Registry key used in ``org.yaml`` (lowercase, underscores).
    system : str
        The product's name as people say it.
    tables : Mapping
        Canonical table name to source section (``file``, ``columns``, ``values`` …).
    doc : str
        What the exports are and which steps beyond renaming the preset uses.
    assumed : tuple of str
        Source column names and words that are not in the documentation the kit
        relies on (DOMAIN.md or the vendor's public pages): check them on a real export.
    """

    name: str
    system: str
    tables: Mapping[str, Mapping[str, Any]]
    doc: str = ""
    assumed: tuple[str, ...] = field(default=())


PRESETS: dict[str, Preset] = {}


def register_preset(
    name: str,
    tables: Mapping[str, Mapping[str, Any]],
    *,
    system: str | None = None,
    doc: str = "",
    assumed: tuple[str, ...] = (),
) -> Preset:
    """Add a preset: ``{table: {file: …, columns: …, values: …, …}}``.

    The tables are checked like ``org.yaml`` sources, so a broken entry fails at import.
    """
    for table, spec in tables.items():
        _check_spec(table, spec, f"preset '{name}'")
    preset = Preset(
        name=name,
        system=system or name,
        tables=MappingProxyType({t: thaw(spec) for t, spec in tables.items()}),
        doc=doc,
        assumed=tuple(assumed),
    )
    PRESETS[name] = preset
    return preset


def check_preset_name(name: object, where: str, path: Path | str = "org.yaml") -> str:
    """Raise a plain :class:`ConfigError` unless ``name`` is a registered preset."""
    if not isinstance(name, str) or name not in PRESETS:
        raise ConfigError(
            f"'{path}': {where} is {name!r}, which is not a preset the kit has.\n"
            f"What to do: use one of: {', '.join(sorted(PRESETS))}, or map the columns "
            "yourself under sources.<table>.columns."
        )
    return name


def expand_sources(
    sources: Mapping[str, Any], top_preset: str | None, org_dir: Path | None = None
) -> dict[str, dict[str, Any]]:
    """The sources to read, with a top-level preset applied.

    Each configured source without its own ``preset:`` gets ``top_preset``. Tables the
    preset knows but ``org.yaml`` does not list are added when their default export
    file exists in ``org_dir``.
    """
    out = {t: thaw(spec) for t, spec in sources.items()}
    if top_preset is None:
        return out
    check_preset_name(top_preset, "preset")
    preset = PRESETS[top_preset]
    for table, spec in out.items():
        if "preset" not in spec and table in preset.tables:
            spec["preset"] = top_preset
    for table, spec in preset.tables.items():
        if table in out:
            continue
        if org_dir is not None and (Path(org_dir) / str(spec["file"])).exists():
            out[table] = {"preset": top_preset}
    return out


def resolve(table: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A source section with its preset (if any) merged underneath it.

    Columns that come from the preset and that the table does not require become
    ``optional_columns``. The preset's name is kept under ``_preset`` for messages.
    """
    spec = thaw(spec)
    name = spec.pop("preset", None)
    if name is None:
        _check_spec(table, spec, f"sources.{table}")
        return spec
    check_preset_name(name, f"sources.{table}.preset")
    base = PRESETS[name].tables.get(table)
    if base is None:
        raise ConfigError(
            f"org.yaml: preset '{name}' has no mapping for table '{table}'.\n"
            f"What to do: map the columns yourself under sources.{table}.columns, or use "
            f"the preset for: {', '.join(PRESETS[name].tables)}."
        )
    merged = deep_merge(base, spec)
    if "filter" in spec:  # an own filter replaces the preset's (in and not_in do not mix)
        merged["filter"] = thaw(spec["filter"])
    own = set((spec.get("columns") or {}).keys())
    required = set(TABLES[table].required_columns)
    optional = [c for c in (base.get("columns") or {}) if c not in own and c not in required]
    merged["optional_columns"] = sorted(set(merged.get("optional_columns") or []) | set(optional))
    merged["_preset"] = name
    _check_spec(table, merged, f"sources.{table} (preset '{name}')")
    return merged


def source_files(cfg: Any) -> list[Path]:
    """Every export file intake reads for an organisation (sources and joined lookups).

    In order of the sources, each file once. A source whose settings cannot be used is
    left out: intake reports it itself.

    Parameters
    ----------
    cfg : OrgConfig
        Loaded organisation settings.
    """
    sources = expand_sources(cfg.sources, cfg.settings.get("preset"), cfg.org_dir)
    files: dict[Path, None] = {}
    for table, spec in sources.items():
        try:
            resolved = resolve(table, spec)
        except PlaybookError:
            continue
        for name in (resolved.get("file"), (resolved.get("join") or {}).get("file")):
            if name:
                files[cfg.org_dir / str(name)] = None
    return list(files)


def _check_spec(table: str, spec: Mapping[str, Any], where: str) -> None:
    """Check the shape of the declarative steps of one source section."""

    def fail(problem: str, fix: str) -> None:
        raise ConfigError(f"org.yaml: {where}: {problem}.\nWhat to do: {fix}")

    if table not in TABLES:
        fail(f"'{table}' is not a canonical table", f"use one of: {', '.join(TABLES)}")
    join = spec.get("join")
    if join is not None:
        if not isinstance(join, Mapping) or "file" not in join or "on" not in join:
            fail("'join' needs 'file' and 'on'", "write join: {file: orders.csv, on: order_no}")
        on = join["on"]
        ok = isinstance(on, str) or (
            isinstance(on, list | tuple) and len(on) == 2 and all(isinstance(x, str) for x in on)
        )
        if not ok:
            fail(f"join.on is {on!r}", "give one column name, or [left column, right column]")
    flt = spec.get("filter")
    if flt is not None:
        keys = set(flt) if isinstance(flt, Mapping) else set()
        words = [flt.get(k) for k in ("in", "not_in") if isinstance(flt, Mapping) and k in flt]
        if (
            "column" not in keys
            or len(words) != 1
            or not isinstance(words[0], list | tuple)
            or keys - {"column", "in", "not_in"}
        ):
            fail(
                f"'filter' is {flt!r}",
                "write filter: {column: Item Type, in: [Donation]} (or not_in: [...])",
            )
    returns = spec.get("returns", "linked")
    if returns not in RETURN_MODES:
        fail(f"returns is {returns!r}", f"use one of: {', '.join(RETURN_MODES)}")
    if returns == "match" and "ticket_ref" not in (spec.get("columns") or {}):
        fail("returns: match needs a 'ticket_ref' column", "map columns.ticket_ref to a ticket id")
    plan = spec.get("plan_amount", "split")
    if plan not in PLAN_AMOUNTS:
        fail(f"plan_amount is {plan!r}", f"use one of: {', '.join(PLAN_AMOUNTS)}")
    if not isinstance(spec.get("comp_when_zero", False), bool):
        fail("comp_when_zero must be true or false", "write comp_when_zero: true")
    optional = spec.get("optional_columns") or []
    if not isinstance(optional, list | tuple):
        fail("optional_columns must be a list", "write optional_columns: [price_band]")


def describe_presets() -> list[dict[str, Any]]:
    """One record per preset: name, system, tables and default files (for docs and CLI)."""
    return [
        {
            "name": p.name,
            "system": p.system,
            "tables": ", ".join(p.tables),
            "files": ", ".join(sorted({str(s["file"]) for s in p.tables.values()})),
        }
        for p in sorted(PRESETS.values(), key=lambda p: p.name)
    ]


# ---------------------------------------------------------------------------
# The registry. Column names and words follow DOMAIN.md ("What ticketing systems
# export") and, where named, the vendors' public help pages; everything listed in
# ``assumed`` is the kit's guess and is marked so in each entry.
# ---------------------------------------------------------------------------
_YES_NO = {"Yes": True, "No": False, "Y": True, "N": False, "True": True, "False": False}

register_preset(
    "spektrix",
    system="Spektrix",
    doc=(
        "Analysis report (one row per item sold or returned: tickets, memberships, "
        "donations, merchandise, gift vouchers), Customer report and Membership report. "
        "Donations leave the sales table for their own; a return row is linked to the "
        "latest earlier sale of the same ticket; zero-price tickets are comps."
    ),
    assumed=(
        "Item ID",
        "Order ID",
        "Instance ID",
        "Sales Channel",
        "Price",
        "Amount",
        "Transaction Type (Sale/Return/Exchange)",
        "Ticket ID",
        "Fund",
        "Customer report: Household ID, Postcode, Date of Birth, Date Created, Anonymised",
        "Membership report: Membership ID, Membership Name, Start Date, Expiry Date, "
        "Renewal, Price",
    ),
    tables={
        "order_lines": {
            "file": "exports/analysis.csv",
            "dayfirst": True,
            "columns": {
                "line_id": "Item ID",
                "order_id": "Order ID",
                "customer_id": "Customer ID",
                "purchase_time": "Date Transaction Confirmed",
                "channel": "Sales Channel",
                "item_type": "Item Type",
                "performance_id": "Instance ID",
                "price_band": "Price Band",
                "ticket_type": "Ticket Type",
                "list_price": "Price",
                "paid_amount": "Amount",
                "status": "Transaction Type",
                "ticket_ref": "Ticket ID",
            },
            "values": {
                "item_type": {
                    "Ticket": "ticket",
                    "Membership": "membership",
                    "Merchandise": "merchandise",
                    "Gift Voucher": "voucher",
                    "Fee": "fee",
                    "Commission": "fee",
                },
                "status": {"Sale": "active", "Return": "returned", "Exchange": "exchanged"},
                "channel": {
                    "Web": "online",
                    "Online": "online",
                    "Phone": "phone",
                    "Box Office": "box_office",
                    "*": "other",
                },
            },
            "filter": {"column": "Item Type", "not_in": ["Donation"]},
            "returns": "match",
            "comp_when_zero": True,
        },
        "donations": {
            "file": "exports/analysis.csv",
            "dayfirst": True,
            "filter": {"column": "Item Type", "in": ["Donation"]},
            "columns": {
                "donation_id": "Item ID",
                "customer_id": "Customer ID",
                "donation_date": "Date Transaction Confirmed",
                "amount": "Amount",
                "fund": "Fund",
            },
        },
        "customers": {
            "file": "exports/customers.csv",
            "dayfirst": True,
            "columns": {
                "customer_id": "Customer ID",
                "household_id": "Household ID",
                "postcode": "Postcode",
                "birth_date": "Date of Birth",
                "created_at": "Date Created",
                "anonymised": "Anonymised",
            },
            "values": {"anonymised": _YES_NO},
        },
        "memberships": {
            "file": "exports/memberships.csv",
            "dayfirst": True,
            "columns": {
                "membership_id": "Membership ID",
                "customer_id": "Customer ID",
                "scheme": "Membership Name",
                "start_date": "Start Date",
                "end_date": "Expiry Date",
                "membership_type": "Renewal",
                "amount": "Price",
            },
            "values": {"membership_type": {"Yes": "renewal", "No": "new"}},
        },
    },
)

_TESSITURA_STATUS = {
    # TR_SEAT_STATUS codes and descriptions (Tessitura community forum); lines that
    # were later returned stay sold: their return line reverses them.
    "SPD": "active",
    "Seated, Paid": "active",
    "TPD": "active",
    "Ticketed, Paid": "active",
    "UNP": "active",
    "Unseated paid": "active",
    "UPG": "active",
    "Upgraded": "active",
    "VOO": "active",
    "Void-Returned in other order": "active",
    "VTO": "active",
    "Void-Returned in this order": "active",
    "RET": "returned",
    "Return": "returned",
    "RTB": "returned",
    "Return in Benevolent Mode": "returned",
    "SUP": "void",
    "Seated, Unpaid": "void",
    "UNS": "void",
    "Unseated": "void",
}

register_preset(
    "tessitura",
    system="Tessitura",
    doc=(
        "SQL exports T_SUB_LINEITEM joined to its T_ORDER header on order_no, T_PERF, "
        "T_CONTRIBUTION and TX_CUST_MEMBERSHIP. Returns link through ret_parent_sli_no; "
        "lines with due_amt = 0 are comps; package lines (pkg_no) are one subscription "
        "per order with zero-revenue seats per performance."
    ),
    assumed=(
        "sli_no (line key)",
        "sli_status written as a TR_SEAT_STATUS code or description",
        "T_ORDER.channel written as words (Web, Phone, Box Office)",
        "T_CONTRIBUTION.ref_no",
        "TX_CUST_MEMBERSHIP.cust_memb_no, memb_org_no, memb_amt, customer_no",
        "T_PERF.perf_no, facility_no",
    ),
    tables={
        "performances": {
            "file": "exports/T_PERF.csv",
            "columns": {
                "performance_id": "perf_no",
                "production_id": "prod_season_no",
                "start_time": "perf_dt",
                "venue": "facility_no",
            },
        },
        "order_lines": {
            "file": "exports/T_SUB_LINEITEM.csv",
            "join": {"file": "exports/T_ORDER.csv", "on": "order_no"},
            "columns": {
                "line_id": "sli_no",
                "order_id": "order_no",
                "customer_id": "customer_no",
                "purchase_time": "order_dt",
                "channel": "channel",
                "performance_id": "perf_no",
                "price_band": "zone_no",
                "ticket_type": "price_type",
                "list_price": "due_amt",
                "paid_amount": "paid_amt",
                "status": "sli_status",
                "parent_line_id": "ret_parent_sli_no",
                "plan_id": "pkg_no",
            },
            "values": {
                "status": _TESSITURA_STATUS,
                "channel": {
                    "Web": "online",
                    "Internet": "online",
                    "Phone": "phone",
                    "Box Office": "box_office",
                    "*": "other",
                },
            },
            "returns": "linked",
            "comp_when_zero": True,
            "plan_amount": "split",
        },
        "donations": {
            "file": "exports/T_CONTRIBUTION.csv",
            "columns": {
                "donation_id": "ref_no",
                "customer_id": "customer_no",
                "donation_date": "cont_dt",
                "amount": "cont_amt",
                "fund": "fund_no",
                "campaign": "campaign_no",
            },
        },
        "memberships": {
            "file": "exports/TX_CUST_MEMBERSHIP.csv",
            "columns": {
                "membership_id": "cust_memb_no",
                "customer_id": "customer_no",
                "scheme": "memb_org_no",
                "tier": "memb_level",
                "start_date": "init_dt",
                "end_date": "expr_dt",
                "amount": "memb_amt",
            },
        },
    },
)

register_preset(
    "eventbrite",
    system="Eventbrite",
    doc=(
        "Attendee report (one row per ticket) joined to the order report on order_id; "
        "Manual orders are comps, Refunded tickets are reversed in place, Transferred "
        "tickets are exchanged in place (the new ticket is its own row); checked-in "
        "attendees are attendance, timed at the event start from the events export."
    ),
    assumed=(
        "attendee id column 'id', 'event_id', 'created'",
        "order report columns order_id, created, email (email is the only buyer key, "
        "so it is pseudonymised like a customer number)",
        "attendee words Attending, Checked In, Not Attending, Deleted",
        "events export (id, name, start)",
    ),
    tables={
        "productions": {
            "file": "exports/events.csv",
            "columns": {"production_id": "id", "title": "name"},
        },
        "performances": {
            "file": "exports/events.csv",
            "columns": {"performance_id": "id", "production_id": "id", "start_time": "start"},
        },
        "order_lines": {
            "file": "exports/attendees.csv",
            "join": {"file": "exports/orders.csv", "on": "order_id", "prefix": "order_"},
            "columns": {
                "line_id": "id",
                "order_id": "order_id",
                "customer_id": "order_email",
                "purchase_time": "order_created",
                "performance_id": "event_id",
                "ticket_type": "ticket_class_name",
                "paid_amount": "cost",
                "status": "status",
                "is_comp": "status",
            },
            "values": {
                "status": {
                    "Completed": "active",
                    "Attending": "active",
                    "Checked In": "active",
                    "Not Attending": "active",
                    "Manual": "active",
                    "Offline": "active",
                    "Partially Refunded": "active",
                    "Partially Transferred": "active",
                    "Refunded": "returned",
                    "Refunded/Canceled": "returned",
                    "Transferred": "exchanged",
                    "Deleted": "void",
                },
                "is_comp": {"Manual": True, "*": False},
            },
            "defaults": {"channel": "online"},
            "returns": "in_place",
        },
        "attendance": {
            "file": "exports/attendees.csv",
            "filter": {"column": "checked_in", "in": ["true", "yes", "y", "1"]},
            "columns": {"line_id": "id", "performance_id": "event_id"},
        },
    },
)

register_preset(
    "ticket_tailor",
    system="Ticket Tailor",
    doc=(
        "Issued tickets joined to orders (order_id = id), and check-ins. Money is in "
        "minor units (pence / cents). Voided tickets are reversed in place; free "
        "tickets are comps."
    ),
    assumed=(
        "CSV headers equal to the API field names (id, order_id, event_id, status, "
        "created_at, issued_ticket_id, check_in_at)",
        "issued ticket 'price' in minor units and 'ticket_type'",
        "order 'email' as the buyer key (pseudonymised)",
        "ticket status words valid / voided",
    ),
    tables={
        "order_lines": {
            "file": "exports/issued_tickets.csv",
            "join": {"file": "exports/orders.csv", "on": ["order_id", "id"], "prefix": "order_"},
            "minor_units": True,
            "columns": {
                "line_id": "id",
                "order_id": "order_id",
                "customer_id": "order_email",
                "purchase_time": "created_at",
                "performance_id": "event_id",
                "ticket_type": "ticket_type",
                "paid_amount": "price",
                "status": "status",
            },
            "values": {"status": {"valid": "active", "voided": "returned"}},
            "defaults": {"channel": "online"},
            "returns": "in_place",
            "comp_when_zero": True,
        },
        "attendance": {
            "file": "exports/check_ins.csv",
            "columns": {"line_id": "issued_ticket_id", "scanned_at": "check_in_at"},
        },
    },
)

_PT = "PatronTicket__"
register_preset(
    "patronmanager",
    system="PatronManager",
    doc=(
        "Salesforce objects: ticket order items (Status, EffectiveTicketPrice), Contacts "
        "whose Account is the household, and donations as Opportunities (won stages). "
        "Refunded and exchanged items are reversed in place."
    ),
    assumed=(
        f"field API names with the {_PT} namespace (TicketOrder__c, Contact__c, "
        "Instance__c, PriceLevel__c, TicketType__c, SalesChannel__c)",
        "Status words Active, Refunded, Exchanged, Cancelled",
        "Opportunity npsp__Primary_Contact__c and StageName Closed Won / Posted",
    ),
    tables={
        "order_lines": {
            "file": "exports/ticket_order_items.csv",
            "columns": {
                "line_id": "Id",
                "order_id": f"{_PT}TicketOrder__c",
                "customer_id": f"{_PT}Contact__c",
                "purchase_time": "CreatedDate",
                "channel": f"{_PT}SalesChannel__c",
                "performance_id": f"{_PT}Instance__c",
                "price_band": f"{_PT}PriceLevel__c",
                "ticket_type": f"{_PT}TicketType__c",
                "paid_amount": f"{_PT}EffectiveTicketPrice__c",
                "status": f"{_PT}Status__c",
            },
            "values": {
                "status": {
                    "Active": "active",
                    "Refunded": "returned",
                    "Exchanged": "exchanged",
                    "Cancelled": "void",
                },
                "channel": {
                    "Web": "online",
                    "Online": "online",
                    "Phone": "phone",
                    "Box Office": "box_office",
                    "*": "other",
                },
            },
            "returns": "in_place",
            "comp_when_zero": True,
        },
        "customers": {
            "file": "exports/contacts.csv",
            "columns": {
                "customer_id": "Id",
                "household_id": "AccountId",
                "postcode": "MailingPostalCode",
                "birth_date": "Birthdate",
                "created_at": "CreatedDate",
            },
        },
        "donations": {
            "file": "exports/opportunities.csv",
            "filter": {"column": "StageName", "in": ["Closed Won", "Posted"]},
            "columns": {
                "donation_id": "Id",
                "customer_id": "npsp__Primary_Contact__c",
                "donation_date": "CloseDate",
                "amount": "Amount",
                "campaign": "CampaignId",
            },
        },
    },
)

register_preset(
    "audienceview",
    system="AudienceView",
    doc=(
        "Seat history (Event Code, Start Date, Price Type, Price Zone, Order Number, "
        "Ticket Status). Cancelled tickets are reversed in place; a 'Used (In)' ticket "
        "is also an attendance row, timed at the event start; bundle seats are one "
        "subscription per order."
    ),
    assumed=("Customer Number", "Order Date", "Bundle"),
    tables={
        "order_lines": {
            "file": "exports/seat_history.csv",
            "columns": {
                "line_id": "Ticket Number",
                "order_id": "Order Number",
                "customer_id": "Customer Number",
                "purchase_time": "Order Date",
                "performance_id": "Event Code",
                "price_band": "Price Zone",
                "ticket_type": "Price Type",
                "paid_amount": "Amount",
                "status": "Ticket Status",
                "plan_id": "Bundle",
            },
            "values": {
                "status": {
                    "Printed": "active",
                    "Used (In)": "active",
                    "Used (Out)": "active",
                    "Re-entered": "active",
                    "Cancelled": "returned",
                }
            },
            "returns": "in_place",
            "comp_when_zero": True,
            "plan_amount": "split",
        },
        "attendance": {
            "file": "exports/seat_history.csv",
            "filter": {"column": "Ticket Status", "in": ["Used (In)"]},
            "columns": {
                "line_id": "Ticket Number",
                "customer_id": "Customer Number",
                "performance_id": "Event Code",
                "scanned_at": "Start Date",
            },
        },
    },
)

register_preset(
    "archtics",
    system="Ticketmaster Archtics",
    doc=(
        "Ticket export where a season plan is expanded to one ticket per event: the "
        "plan becomes one subscription line per order and account, and its per-event "
        "seats carry no revenue of their own, so the plan counts once."
    ),
    assumed=(
        "every column name (acct_id, order_num, add_datetime, event_name, "
        "plan_event_name, price_code, purchase_price)",
    ),
    tables={
        "order_lines": {
            "file": "exports/tickets.csv",
            "columns": {
                "order_id": "order_num",
                "customer_id": "acct_id",
                "purchase_time": "add_datetime",
                "performance_id": "event_name",
                "price_band": "price_code",
                "paid_amount": "purchase_price",
                "plan_id": "plan_event_name",
            },
            "plan_amount": "split",
            "comp_when_zero": True,
        },
    },
)
