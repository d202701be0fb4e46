"""Suggesting a column mapping for an export the kit has no preset for.

:func:`suggest_mapping` reads an export's header and a sample of its values and proposes
which column feeds which canonical column: by name (similarity to canonical names, to
known synonyms and to every column name the presets use) and by what the values look
like (dates, money, ids, whole numbers, yes/no flags, a few repeated status words).
Columns that look like names, emails, phone numbers or street addresses are never
proposed: they are listed as personal data that intake will not read.

:func:`suggestion_yaml` writes the proposal as a ``sources:`` section for ``org.yaml``,
with a comment per column saying why, for a person to check before use. Nothing read
from the file is ever evaluated; values are written as quoted YAML strings.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from playbook import parsing, presets
from playbook.readers import ROW, read_export
from playbook.schema import TABLES, Col

# Names exports commonly use for canonical columns (beyond the canonical names and
# every name a preset maps).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer", "customer number", "customer no", "patron", "patron id",
                    "constituent", "contact id", "client id", "member number", "buyer id"),
    "household_id": ("household", "household number", "account id", "family id"),
    "line_id": ("line", "line number", "item id", "ticket id", "ticket number", "seat id",
                "booking line", "sli"),
    "order_id": ("order", "order number", "order no", "order ref", "booking", "booking id",
                 "booking reference", "transaction id", "basket id", "invoice"),
    "purchase_time": ("order date", "purchase date", "date", "booking date", "sale date",
                      "transaction date", "created", "date purchased", "ordered at"),
    "performance_id": ("performance", "instance", "instance id", "perf", "perf no",
                       "show id", "event date id", "session id", "event code"),
    "production_id": ("production", "event", "event id", "show", "title id", "season id"),
    "title": ("event name", "event", "show", "production name", "title", "name of event"),
    "start_time": ("start", "start date", "performance date", "event date", "date time",
                   "show time", "perf date"),
    "paid_amount": ("paid", "amount", "amount paid", "total", "net", "price paid", "value",
                    "revenue", "gross", "cost", "total paid"),
    "list_price": ("price", "list price", "face value", "full price", "ticket price",
                   "due", "original price"),
    "discount": ("discount", "discount amount", "reduction"),
    "quantity": ("qty", "quantity", "number of tickets", "tickets", "seats", "count"),
    "status": ("status", "state", "ticket status", "line status", "transaction type",
               "order status"),
    "channel": ("channel", "sales channel", "source", "mode of sale", "sold via", "medium"),
    "item_type": ("item type", "type", "product type", "category"),
    "price_band": ("price band", "band", "zone", "price zone", "section", "area"),
    "ticket_type": ("ticket type", "price type", "concession", "ticket class"),
    "parent_line_id": ("original line", "original line id", "parent", "returned line",
                       "refund of", "exchanged from"),
    "is_comp": ("comp", "complimentary", "free", "is comp"),
    "donation_date": ("gift date", "donation date", "date received", "date"),
    "donation_id": ("gift id", "donation id", "gift", "pledge id"),
    "amount": ("amount", "gift amount", "value", "total", "price"),
    "fund": ("fund", "designation"),
    "campaign": ("campaign", "appeal", "source code"),
    "membership_id": ("membership id", "membership number", "member id"),
    "scheme": ("scheme", "membership", "programme", "membership name"),
    "tier": ("tier", "level", "grade", "membership level"),
    "start_date": ("start date", "joined", "valid from", "from"),
    "end_date": ("end date", "expiry", "expiry date", "expires", "valid to", "renewal date"),
    "postcode": ("postcode", "post code", "zip", "zip code", "postal code"),
    "birth_date": ("date of birth", "dob", "birthday", "birth date", "birthdate"),
    "birthday_consent": ("birthday ok", "birthday consent", "birthday opt in"),
    "segment_code": ("segment", "audience spectrum", "mosaic", "segment code"),
    "created_at": ("created", "date created", "created date", "record created", "added"),
    "anonymised": ("anonymised", "anonymized", "erased", "forgotten"),
    "do_not_contact": ("do not contact", "no contact", "deceased", "gone away", "dnc",
                       "do not mail", "no mail"),
    "scanned_at": ("scan time", "scanned", "check in", "checked in at", "entry time"),
    "consent_date": ("updated", "consent date", "date of consent", "opt in date"),
    "occurred_at": ("timestamp", "time", "date", "sent at", "clicked at"),
    "kind": ("action", "activity", "event type"),
    "nps": ("recommend", "nps", "likely to recommend"),
    "response_id": ("response id", "respondent", "submission id"),
    "responded_at": ("submitted", "response date", "completed"),
}  # fmt: skip

# Words in exports and the canonical word they usually mean, per canonical column.
WORDS: dict[str, dict[str, str]] = {
    "status": {
        **dict.fromkeys(
            ("sold", "sale", "active", "completed", "paid", "valid", "printed", "booked",
             "confirmed", "issued", "attending", "checked in", "used (in)", "reserved"),
            "active",
        ),
        **dict.fromkeys(
            ("returned", "return", "refunded", "refund", "cancelled", "canceled",
             "voided", "refunded/canceled"),
            "returned",
        ),
        **dict.fromkeys(("exchanged", "exchange", "transferred", "swapped"), "exchanged"),
        **dict.fromkeys(("void", "deleted", "abandoned", "failed"), "void"),
    },
    "channel": {
        **dict.fromkeys(("web", "online", "internet", "website", "app", "mobile"), "online"),
        **dict.fromkeys(("phone", "telephone", "call centre", "call center"), "phone"),
        **dict.fromkeys(("box office", "counter", "in person", "walk up", "walk-up"),
                        "box_office"),
    },
    "item_type": {
        **dict.fromkeys(("ticket", "tickets", "admission", "seat"), "ticket"),
        **dict.fromkeys(("subscription", "package", "season ticket", "bundle", "plan"),
                        "subscription"),
        **dict.fromkeys(("membership", "member"), "membership"),
        **dict.fromkeys(("donation", "gift", "contribution"), "donation"),
        **dict.fromkeys(("merchandise", "merch", "product", "programme"), "merchandise"),
        **dict.fromkeys(("fee", "booking fee", "commission", "delivery"), "fee"),
        **dict.fromkeys(("voucher", "gift voucher", "gift card"), "voucher"),
    },
    "membership_type": {"new": "new", "renewal": "renewal", "renew": "renewal"},
    "consents.status": {
        **dict.fromkeys(("opted in", "opt in", "yes", "subscribed", "granted", "y"), "granted"),
        **dict.fromkeys(
            ("opted out", "opt out", "no", "unsubscribed", "withdrawn", "n"), "withdrawn"
        ),
        **dict.fromkeys(("not asked", "unknown", "not set", "blank"), "unknown"),
    },
    "kind": {
        "sent": "email_send", "send": "email_send", "opened": "email_open",
        "open": "email_open", "clicked": "email_click", "click": "email_click",
        "unsubscribed": "unsubscribe", "unsubscribe": "unsubscribe",
    },
}  # fmt: skip

_PERSONAL = {
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", re.I),
    "phone": re.compile(r"^\+?[\d\s().-]{7,}$"),
    "address": re.compile(
        r"^\d+[a-z]?\s+\w+.*\b(street|st|road|rd|lane|ln|avenue|ave|close|row|way|drive|"
        r"crescent|place|square|court|terrace|gardens|grove|hill|park)\b",
        re.I,
    ),
}
_PERSONAL_NAMES = re.compile(
    r"(first|last|given|family|full|middle|sur|buyer|attendee|customer|contact)[ _]?name"
    r"|^name$|^(title|salutation|e-?mail|email address|phone|mobile|telephone|tel)$"
    r"|address|street|^town$|^city$|^county$",
    re.I,
)
_MONEY = re.compile(r"^\(?-?\s*(?:[£$€]|[A-Z]{3})?\s*-?[\d,.]+\s*(?:[£$€]|[A-Z]{3})?\)?$")
_ID = re.compile(r"^[A-Za-z]{0,6}[-_]?\d[\w-]*$")


@dataclass(frozen=True)
class ColumnGuess:
    """What one source column looks like and where it would go."""

    source: str
    kind: str
    canonical: str | None = None
    score: float = 0.0
    note: str = ""


@dataclass
class Suggestion:
    """A proposed ``sources.<table>`` section for one export."""

    file: str
    table: str
    columns: dict[str, str]
    values: dict[str, dict[str, str | None]]
    guesses: list[ColumnGuess]
    personal: list[str]
    unmapped: list[str]
    missing_required: list[str]
    header_row: int = 1
    delimiter: str | None = None
    dayfirst: bool | None = None
    minor_units_hint: list[str] = field(default_factory=list)


def _norm(name: object) -> str:
    text = re.sub(r"__c$|^patronticket__|^npsp__", "", str(name).strip(), flags=re.I)
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    text = re.sub(r"[^0-9a-zA-Z]+", " ", text)
    return " ".join(text.lower().split())


def _synonyms() -> dict[str, set[str]]:
    """Canonical column -> normalised names it goes by, presets' column names included."""
    out: dict[str, set[str]] = {}
    for table in TABLES.values():
        for col in table.column_names:
            out.setdefault(col, set()).add(_norm(col))
    for canon, names in SYNONYMS.items():
        out.setdefault(canon, set()).update(_norm(n) for n in names)
    for preset in presets.PRESETS.values():
        for spec in preset.tables.values():
            cols = spec.get("columns") or {}
            sources = list(cols.values())
            for canon, source in cols.items():
                if sources.count(source) == 1:  # a column feeding two targets says little
                    out.setdefault(canon, set()).add(_norm(source))
    return out


def sniff_kind(values: pd.Series, name: str = "") -> str:
    """What a column's values look like.

    Returns one of ``empty``, ``email``, ``phone``, ``address``, ``name`` (personal data),
    ``bool``, ``date``, ``int``, ``money``, ``id``, ``status`` or ``text``.
    """
    t = parsing.clean_text(values).dropna()
    if t.empty:
        return "personal" if _PERSONAL_NAMES.search(name) else "empty"
    if _PERSONAL_NAMES.search(_norm(name)) or _PERSONAL_NAMES.search(str(name)):
        return "personal"
    share = lambda mask: float(mask.mean())  # noqa: E731
    looks_date = t.str.contains(
        r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|^\d{1,2}\s+[A-Za-z]{3}", regex=True
    )
    if share(looks_date) >= 0.8:
        _, bad = parsing.parse_dates(t)
        if share(~bad) >= 0.8:
            return "date"
    for kind, pattern in _PERSONAL.items():
        if share(t.str.match(pattern)) >= 0.8 and not share(t.str.fullmatch(r"-?\d+")) >= 0.8:
            return kind
    low = t.str.lower()
    if share(low.isin({"y", "n", "yes", "no", "true", "false", "0", "1"})) >= 0.95:
        if low.nunique() <= 2 and not share(t.str.fullmatch(r"\d+")) == 1.0:
            return "bool"
    if share(t.str.fullmatch(r"-?\d+")) >= 0.95:
        uniq = t.nunique() / len(t)
        return "id" if uniq > 0.9 and t.str.len().median() >= 3 else "int"
    if share(t.str.match(_MONEY)) >= 0.9 and share(t.str.contains(r"[.,£$€]")) >= 0.5:
        _, bad = parsing.parse_money(t)
        if share(~bad) >= 0.9:
            return "money"
    if share(t.str.fullmatch(_ID)) >= 0.9 and t.nunique() / len(t) > 0.5:
        return "id"
    if t.nunique() <= max(12, len(t) // 20) and t.str.len().median() <= 30:
        return "status"
    return "text"


_CLASHES = {
    "datetime": {"bool", "money", "int", "id", "status"},
    "money": {"date", "bool", "id", "status"},
    "bool": {"date", "money", "int", "id"},
    "int": {"date", "bool", "money"},
    "id": {"date", "bool", "money"},
    "cat": {"date", "money"},
}
_FITS = {
    "datetime": {"date": 0.25},
    "money": {"money": 0.25, "int": 0.05},
    "id": {"id": 0.15, "int": 0.1, "status": -0.1},
    "cat": {"status": 0.2, "bool": -0.1},
    "bool": {"bool": 0.25, "status": 0.05},
    "int": {"int": 0.2, "id": -0.1},
    "float": {"int": 0.1, "money": 0.05},
    "str": {"status": 0.05, "text": 0.05, "id": 0.0},
}
# Source-only columns intake understands (see playbook.config), offered as targets too.
_EXTRA_TARGETS: dict[str, tuple[Col, ...]] = {
    "customers": (
        Col("postcode", "str", doc="postcode (intake keeps the district only)"),
        Col("birth_date", "datetime", doc="date of birth (intake keeps month and day)"),
        Col("birthday_consent", "bool", doc="consent to use the birthday"),
    ),
}


def _name_match(name: str, names: set[str]) -> float:
    """How close a source column's name is to a canonical column's names (1.0: one of them)."""
    n = _norm(name)
    if n in names:
        return 1.0
    return max((difflib.SequenceMatcher(None, n, s).ratio() for s in names), default=0.0)


def _score(name: str, kind: str, canon: str, col_kind: str, names: set[str]) -> float:
    best = _name_match(name, names)
    fit = _FITS.get(col_kind, {}).get(kind)
    if fit is None:
        fit = -0.4 if kind in _CLASHES.get(col_kind, set()) else -0.05
    return best + fit


def suggest_mapping(
    path: str | Path,
    *,
    table: str | None = None,
    label: str | None = None,
    sample: int = 500,
) -> Suggestion:
    """Propose a ``sources.<table>`` section for one export.

    Parameters
    ----------
    path : str or pathlib.Path
        The export (CSV, Excel or Parquet).
    table : str, optional
        Canonical table it feeds; guessed from the columns when not given.
    label : str, optional
        The ``file:`` value to write (default: the path as given).
    sample : int
        Rows looked at to recognise values.

    Returns
    -------
    Suggestion
    """
    path = Path(path)
    label = label or str(path)
    synonyms = _synonyms()
    vocab = set().union(*synonyms.values())
    raw = read_export(path, label, vocab)
    frame = raw.frame.drop(columns=[ROW]).head(sample)
    kinds = {c: sniff_kind(frame[c], c) for c in frame.columns}
    personal = [c for c, k in kinds.items() if k in ("email", "phone", "address", "personal")]
    usable = [c for c in frame.columns if c not in personal and kinds[c] != "empty"]

    candidates = [table] if table else list(TABLES)
    best: tuple[tuple[float, float], str, dict[str, tuple[str, float]]] | None = None
    for name in candidates:
        chosen = _assign(TABLES[name], usable, kinds, synonyms)
        required = [r for r in TABLES[name].required_columns if (name, r) not in _DERIVABLE]
        found = sum(1 for r in required if r in chosen)
        rank = (sum(s for _, s in chosen.values()) - (len(required) - found), found)
        if best is None or rank > best[0]:
            best = (rank, name, chosen)
    assert best is not None
    _, name, chosen = best

    columns = {canon: src for canon, (src, _) in chosen.items()}
    values: dict[str, dict[str, str | None]] = {}
    tbl = TABLES[name]
    for canon, src in columns.items():
        col = tbl.names.get(canon)
        if col is not None and col.kind == "cat":
            words = parsing.clean_text(frame[src]).dropna().value_counts().index[:30]
            guess = WORDS.get(f"{name}.{canon}", WORDS.get(canon, {}))
            allowed = set(col.allowed)
            values[canon] = {}
            for w in words:
                low = str(w).lower()
                target = low if low in allowed else guess.get(low)
                values[canon][str(w)] = target if target in allowed else None
    guesses = [
        ColumnGuess(
            source=c,
            kind=kinds[c],
            canonical=next((k for k, v in columns.items() if v == c), None),
            score=next((round(s, 2) for _, (src, s) in chosen.items() if src == c), 0.0),
        )
        for c in frame.columns
    ]
    used = set(columns.values())
    dayfirst = _dayfirst(frame[[c for c in used if kinds.get(c) == "date"]])
    minor = [
        c
        for canon, c in columns.items()
        if kinds.get(c) == "int"
        and tbl.names.get(canon) is not None
        and tbl.names[canon].kind == "money"
    ]
    return Suggestion(
        file=label,
        table=name,
        columns=columns,
        values=values,
        guesses=guesses,
        personal=personal,
        unmapped=[c for c in frame.columns if c not in used and c not in personal],
        missing_required=[
            r for r in tbl.required_columns if r not in columns and (name, r) not in _DERIVABLE
        ],
        header_row=raw.header_row,
        delimiter=raw.delimiter,
        dayfirst=dayfirst,
        minor_units_hint=minor,
    )


_DERIVABLE = {("order_lines", "line_id"), ("order_lines", "order_id")}


def _assign(
    table, usable: list[str], kinds: Mapping[str, str], synonyms: Mapping[str, set[str]]
) -> dict[str, tuple[str, float]]:
    """Greedy best-first matching of source columns to canonical columns (one to one)."""
    pairs = []
    targets = [c for c in table.columns if c.name != "postcode_district"]
    targets += _EXTRA_TARGETS.get(table.name, ())
    if table.name == "customers":
        targets = [c for c in targets if c.name not in ("birth_month", "birth_day")]
    for col in targets:
        names = synonyms.get(col.name, {_norm(col.name)})
        for src in usable:
            s = _score(src, kinds[src], col.name, col.kind, names)
            if col.kind == "bool" and _name_match(src, names) < 0.6:
                # a yes/no column goes to a flag only by its name: 'Do Not Contact' must
                # never land on birthday_consent just for holding yes/no words
                continue
            if col.required:
                s += 0.02
            pairs.append((s, col.name, src))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    chosen: dict[str, tuple[str, float]] = {}
    taken: set[str] = set()
    for s, canon, src in pairs:
        if s < 0.62 or canon in chosen or src in taken:
            continue
        chosen[canon] = (src, s)
        taken.add(src)
    # A required column no name points at: take the one unused column whose values fit.
    wants = {"datetime": {"date"}, "money": {"money"}}
    for col in targets:
        if not col.required or col.name in chosen or col.kind not in wants:
            continue
        fits = [c for c in usable if c not in taken and kinds[c] in wants[col.kind]]
        if len(fits) == 1:
            chosen[col.name] = (fits[0], 0.5)
            taken.add(fits[0])
    return chosen


def _dayfirst(dates: pd.DataFrame) -> bool | None:
    """True when some date reads only day-first (25/12), False when only month-first."""
    first = second = False
    for c in dates.columns:
        parts = dates[c].astype("string").str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}")
        a = pd.to_numeric(parts[0], errors="coerce")
        b = pd.to_numeric(parts[1], errors="coerce")
        first |= bool((a > 12).any())
        second |= bool((b > 12).any())
    if first and not second:
        return True
    if second and not first:
        return False
    return None


def _q(value: object) -> str:
    """A YAML scalar, always quoted (JSON strings are valid YAML): never a tag or code."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(str(value), ensure_ascii=False)


def suggestion_yaml(s: Suggestion, command: str = "playbook mapping suggest") -> str:
    """The suggestion as an ``org.yaml`` ``sources:`` section with explanatory comments."""
    kinds = {g.source: g for g in s.guesses}
    lines = [
        f"# Suggested by '{command}' for {_q(s.file)}: a starting point, check every line.",
        f"# Table: {s.table} ({TABLES[s.table].doc}).",
    ]
    if s.missing_required:
        lines.append(
            "# Not found, add by hand: "
            + ", ".join(f"{r} ({TABLES[s.table].names[r].doc or r})" for r in s.missing_required)
        )
    if s.personal:
        lines.append("# Personal data, never read by intake: " + ", ".join(map(_q, s.personal)))
    if s.unmapped:
        lines.append(
            "# Not mapped (map them if they hold one of the kit's columns): "
            + ", ".join(map(_q, s.unmapped))
        )
    if any(v is None for words in s.values.values() for v in words.values()):
        lines.append(
            "# Words mapped to null need a decision: until then their rows are dropped "
            "with reason 'unknown_value'."
        )
    lines += ["sources:", f"  {s.table}:", f"    file: {_q(s.file)}"]
    if s.header_row != 1:
        lines.append(f"    header_row: {s.header_row}  # a title block sits above the header")
    if s.delimiter and s.delimiter != ",":
        lines.append(f"    delimiter: {_q(s.delimiter)}")
    if s.dayfirst is not None:
        lines.append(f"    dayfirst: {_q(s.dayfirst)}")
    if s.minor_units_hint:
        lines.append(
            "    # minor_units: true  # if " + ", ".join(s.minor_units_hint) + " are in pence/cents"
        )
    lines.append("    columns:")
    extra = [c.name for c in _EXTRA_TARGETS.get(s.table, ())]
    order = [c for c in [*TABLES[s.table].column_names, *extra] if c in s.columns]
    order += [c for c in s.columns if c not in order]
    for canon in order:
        src = s.columns[canon]
        g = kinds[src]
        lines.append(f"      {canon}: {_q(src)}  # looks like {g.kind}, match {g.score:.2f}")
    if s.values:
        lines.append("    values:")
        for canon, words in s.values.items():
            lines.append(f"      {canon}:")
            for word, target in words.items():
                lines.append(f"        {_q(word)}: {_q(target)}")
    return "\n".join(lines) + "\n"


def describe(guesses: Iterable[ColumnGuess]) -> pd.DataFrame:
    """The guesses as a table: source column, what it looks like, where it goes."""
    return pd.DataFrame(
        [(g.source, g.kind, g.canonical or "", g.score) for g in guesses],
        columns=["column", "looks_like", "maps_to", "match"],
    )
