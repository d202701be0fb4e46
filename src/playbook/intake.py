"""Intake: an organisation's exports in, validated canonical tables and a row ledger out.

``run_intake(org_dir)`` reads every source listed under ``sources:`` in ``org.yaml``,
maps its columns and words onto the canonical model (:mod:`playbook.schema`), drops
rows that cannot be used (each with a reason in the ledger), pseudonymises customer ids
with the organisation's salt, checks every table with pandera and writes Parquet files
to ``data/<org>/canonical/``. Names, emails, phone numbers and street addresses are
never read: only mapped columns are, and the canonical model has no place for them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors

from playbook import parsing, presets
from playbook.config import OrgConfig, load_org
from playbook.errors import IntakeError, PlaybookError
from playbook.ledger import Ledger
from playbook.readers import ROW, RawFile, read_export
from playbook.schema import TABLES, Col, conform, pandera_schema
from playbook.schema import Customers as CU
from playbook.schema import OrderLines as OL
from playbook.tables import Tables

# Order matters: references are checked against tables read earlier.
INTAKE_ORDER = (
    "productions",
    "performances",
    "order_lines",
    "customers",
    "consents",
    "attendance",
    "memberships",
    "donations",
    "interactions",
    "survey_responses",
)
ID_MAP_FILE = "id_map.parquet"


@dataclass
class IntakeResult:
    """What intake produced: the canonical tables, the ledger and the settings used."""

    config: OrgConfig
    tables: Tables
    ledger: Ledger
    stub_customers: int = 0

    def summary(self) -> pd.DataFrame:
        """Rows read, kept and dropped per file (and per reason)."""
        return self.ledger.summary()


# ---------------------------------------------------------------------------
# Pseudonymisation
# ---------------------------------------------------------------------------
def org_salt(cfg: OrgConfig, *, create: bool = True) -> bytes:
    """The organisation's secret salt (created once, kept in ``private/``)."""
    path = cfg.org_dir / cfg.section("privacy")["salt_file"]
    if not path.exists():
        if not create:
            raise PlaybookError(f"No salt file at '{path}'. Run intake first.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    return path.read_text(encoding="utf-8").strip().encode()


def pseudonymise(ids: pd.Series, salt: bytes, prefix: str = "C") -> pd.Series:
    """Keyed hash (HMAC-SHA256) of each id: stable per organisation, not reversible.

    Only the distinct ids are hashed, so the cost grows with customers, not rows.
    """
    codes, uniques = pd.factorize(ids.astype("string"), use_na_sentinel=True)
    hashed = np.array(
        [
            prefix + hmac.new(salt, str(u).encode(), hashlib.sha256).hexdigest()[:16]
            for u in uniques
        ],
        dtype=object,
    )
    if len(set(hashed)) != len(hashed):  # pragma: no cover - 64-bit collision
        raise PlaybookError("Two customer ids hashed to the same pseudonym; change the salt.")
    out = pd.Series(pd.array([pd.NA] * len(ids), dtype="string"), index=ids.index)
    ok = codes >= 0
    out[ok] = hashed[codes[ok]]
    return out


# ---------------------------------------------------------------------------
# Mapping one source onto its canonical table
# ---------------------------------------------------------------------------
class _Source:
    """One source file being turned into one canonical table."""

    def __init__(self, cfg: OrgConfig, table: str, spec: Mapping[str, Any], ledger: Ledger):
        self.cfg = cfg
        self.table = TABLES[table]
        self.spec = presets.resolve(table, spec)
        self.ledger = ledger
        self.label = str(self.spec["file"])
        self.columns: dict[str, str] = dict(self.spec.get("columns") or {})
        self.values: Mapping[str, Mapping] = self.spec.get("values") or {}
        self.dayfirst = bool(self.spec.get("dayfirst", cfg.settings["locale_dayfirst"]))
        money = cfg.section("money")
        self.minor_units = bool(self.spec.get("minor_units", money["minor_units"]))
        self.decimal = str(self.spec.get("decimal", money["decimal"]))

    def read(self) -> tuple[RawFile, pd.DataFrame]:
        raw = read_export(
            self.cfg.org_dir / self.label,
            self.label,
            self.columns.values(),
            delimiter=self.spec.get("delimiter"),
            encoding=self.spec.get("encoding"),
            header_row=self.spec.get("header_row"),
            sheet=self.spec.get("sheet"),
        )
        self._check_columns(raw)
        lookup = {_key(c): c for c in raw.frame.columns}
        frame = pd.DataFrame({ROW: raw.frame[ROW].to_numpy()})
        for canon, source in self.columns.items():
            frame[canon] = raw.frame[lookup[_key(source)]].to_numpy()
        return raw, frame

    def _check_columns(self, raw: RawFile) -> None:
        found = [c for c in raw.frame.columns if c != ROW]
        keys = {_key(c) for c in found}
        needed = _needed_columns(self.table.name)
        missing_required = [c for c in needed if c not in self.columns]
        if missing_required:
            canon = missing_required[0]
            raise IntakeError(
                self.label,
                f"org.yaml does not say which column holds {self.table.name}.{canon} "
                f"({self.table.names[canon].doc or canon.replace('_', ' ')})",
                f"add '{canon}: <column name>' under sources.{self.table.name}.columns in "
                f"org.yaml. Columns in the file: {', '.join(found[:25])}.",
            )
        for canon, source in self.columns.items():
            if _key(source) in keys:
                continue
            hint = difflib.get_close_matches(str(source), found, n=1, cutoff=0.6)
            one_col = len(found) == 1 and any(d in found[0] for d in ";,\t|")
            if one_col:
                fix = (
                    "the whole header was read as one column, so the separator is wrong: set "
                    f"'delimiter:' under sources.{self.table.name} (for example ';' or a tab)."
                )
            elif hint:
                fix = (
                    f"the file has a column '{hint[0]}': if that is it, set '{canon}: {hint[0]}' "
                    f"under sources.{self.table.name}.columns in org.yaml."
                )
            else:
                fix = (
                    f"set sources.{self.table.name}.columns.{canon} in org.yaml to the column "
                    f"holding it. Columns in the file: {', '.join(found[:25])}."
                )
            raise IntakeError(
                self.label,
                f"there is no column '{source}' (org.yaml maps it to {self.table.name}.{canon})",
                fix,
                row=raw.header_row,
                column=str(source),
            )

    # -- dropping -----------------------------------------------------------
    def drop(self, frame: pd.DataFrame, mask: pd.Series, reason: str, column: str | None = None):
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            src = self.columns.get(column, column) if column else None
            values = frame.loc[mask, column] if column and column in frame else None
            self.ledger.drop(self.label, frame.loc[mask, ROW], reason, column=src, values=values)
        return frame.loc[~mask]

    # -- parsing -----------------------------------------------------------
    def parse(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Drop blank rows, parse every mapped column, drop what cannot be read."""
        mapped = [c for c in frame.columns if c != ROW]
        all_blank = np.logical_and.reduce([parsing.blank(frame[c]).to_numpy() for c in mapped])
        out = self.drop(frame, pd.Series(all_blank, index=frame.index), "blank_row")
        for canon in mapped:
            parsed, bad, reason = self._parse_column(canon, out[canon])
            if bad is not None and bad.any():
                out = self.drop(out, bad, reason, canon)  # ledger keeps the raw value
                parsed = parsed.loc[out.index]
            if canon == "postcode":
                out = out.drop(columns=[canon])
                out["postcode_district"] = parsed
            else:
                out[canon] = parsed
        return out

    def _parse_column(self, canon: str, s: pd.Series) -> tuple[pd.Series, pd.Series | None, str]:
        col = self._col(canon)
        kind = col.kind if col else "str"
        mapping = self.values.get(canon)
        fmt = self.spec.get("date_format")
        if canon == "birth_date":
            parsed, _ = parsing.parse_dates(s, fmt=fmt, dayfirst=self.dayfirst)
            return parsed, None, ""  # an unreadable birth date is simply not kept
        if canon == "postcode":
            mode = self.cfg.section("privacy")["postcode"]
            return parsing.postcode_district(s, mode), None, ""
        if canon == "birthday_consent" or kind == "bool":
            parsed, bad = parsing.map_values(s, mapping, kind="bool")
            return parsed, bad, "unknown_value"
        if mapping is not None or kind == "cat":
            parsed, bad = parsing.map_values(s, mapping, kind="cat")
            return parsed, bad, "unknown_value"
        if kind == "id":
            return parsing.clean_id(s), None, ""
        if kind == "datetime":
            parsed, bad = parsing.parse_dates(s, fmt=fmt, dayfirst=self.dayfirst)
            return parsed, bad, "unparseable_date"
        if kind == "money":
            parsed, bad = parsing.parse_money(s, decimal=self.decimal, minor_units=self.minor_units)
            return parsed, bad, "unparseable_amount"
        if kind == "int":
            parsed, bad = parsing.parse_int(s)
            return parsed, bad, ("bad_quantity" if canon == "quantity" else "out_of_range")
        if kind == "float":
            parsed, bad = parsing.parse_float(s)
            return parsed, bad, "out_of_range"
        return parsing.clean_text(s), None, ""

    def _col(self, canon: str) -> Col | None:
        return self.table.names.get(canon)

    def require(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Drop rows missing a value the table cannot do without."""
        for c in self.table.columns:
            if c.nullable or c.name not in frame.columns:
                continue
            reason = "missing_customer" if c.name == "customer_id" else "missing_value"
            frame = self.drop(frame, frame[c.name].isna(), reason, c.name)
        return frame

    def defaults(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Fill constant values given under ``defaults:`` (e.g. ``item_type: ticket``)."""
        for canon, value in (self.spec.get("defaults") or {}).items():
            if canon not in frame.columns:
                frame[canon] = value
            else:
                frame[canon] = frame[canon].fillna(value)
        return frame

    def scale(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rescale answer scales to 0–1 (``scale: {intent_to_return: [1, 5]}``)."""
        for canon, (lo, hi) in (self.spec.get("scale") or {}).items():
            if canon in frame.columns:
                frame[canon] = (frame[canon].astype("float64") - lo) / (hi - lo)
        return frame

    def dedupe(self, frame: pd.DataFrame, key: tuple[str, ...]) -> pd.DataFrame:
        """Exact repeats are ``duplicate_line``; a reused key with other values is ``duplicate_id``."""
        cols = [c for c in frame.columns if c != ROW]
        frame = self.drop(frame, frame.duplicated(subset=cols, keep="first"), "duplicate_line")
        if key and all(k in frame.columns for k in key):
            frame = self.drop(
                frame, frame.duplicated(subset=list(key), keep="first"), "duplicate_id", key[0]
            )
        return frame


def _key(name: object) -> str:
    return " ".join(str(name).replace("\ufeff", "").split()).lower()


def _needed_columns(table: str) -> list[str]:
    """Columns the mapping must name; ids that intake can derive are not among them."""
    derivable = {("order_lines", "line_id"), ("order_lines", "order_id")}
    return [c for c in TABLES[table].required_columns if (table, c) not in derivable]


# ---------------------------------------------------------------------------
# Table-specific rules
# ---------------------------------------------------------------------------
def _order_line_rules(
    src: _Source, frame: pd.DataFrame, performances: pd.DataFrame | None, today: pd.Timestamp
) -> pd.DataFrame:
    if OL.line_id not in frame.columns:
        frame[OL.line_id] = src.label.rsplit("/", 1)[-1] + ":" + frame[ROW].astype("string")
    if OL.order_id not in frame.columns:
        frame[OL.order_id] = frame[OL.line_id]
    frame = src.defaults(frame)
    frame = conform_partial(frame, "order_lines")
    frame = src.require(frame)
    frame = src.dedupe(frame, ("line_id",))
    qty = frame[OL.quantity]
    frame = src.drop(frame, qty.isna() | (qty < 1), "bad_quantity", OL.quantity)
    tol = int(src.cfg.section("intake")["future_tolerance_days"])
    frame = src.drop(
        frame,
        frame[OL.purchase_time] > today + pd.Timedelta(days=tol),
        "future_date",
        OL.purchase_time,
    )
    cap = float(src.cfg.section("intake")["max_amount"])
    frame = src.drop(frame, frame[OL.paid_amount].abs() > cap, "implausible_amount", OL.paid_amount)
    reversing = frame[OL.status].isin(["returned", "exchanged"])
    frame = src.drop(
        frame, (~reversing) & (frame[OL.paid_amount] < 0), "negative_not_return", OL.paid_amount
    )
    reversing = frame[OL.status].isin(["returned", "exchanged"])
    orphan = reversing & ~frame[OL.parent_line_id].isin(frame.loc[~reversing, OL.line_id])
    frame = src.drop(frame, orphan, "orphan_return", OL.parent_line_id)
    if performances is not None and len(performances):
        is_ticket = frame[OL.performance_id].notna()
        unknown = is_ticket & ~frame[OL.performance_id].isin(performances["performance_id"])
        frame = src.drop(frame, unknown, "unknown_performance", OL.performance_id)
    # Returns without a stated amount reverse nothing: keep sign consistent.
    frame[OL.discount] = frame[OL.discount].fillna(frame[OL.list_price] - frame[OL.paid_amount])
    return frame


def conform_partial(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Add missing canonical columns with defaults, keeping ``_row`` and extra columns."""
    canon = conform(frame, table)
    canon.index = frame.index
    extra = frame[[c for c in frame.columns if c not in canon.columns]]
    return pd.concat([canon, extra], axis=1)


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------
def run_intake(
    org: str | Path | OrgConfig,
    *,
    today: dt.date | str | None = None,
    write: bool = True,
) -> IntakeResult:
    """Read every configured export into canonical tables, with a row ledger.

    Parameters
    ----------
    org : str, pathlib.Path or OrgConfig
        Organisation folder (holding ``org.yaml``) or its loaded settings.
    today : date or str, optional
        The date purchases cannot be later than (default: today).
    write : bool
        Write Parquet tables and the ledger to ``data/<org>/canonical/``.

    Returns
    -------
    IntakeResult

    Raises
    ------
    IntakeError, ConfigError
        When a file or a setting cannot be used; the message says what to change.
    """
    cfg = org if isinstance(org, OrgConfig) else load_org(org)
    today_ts = pd.Timestamp(today) if today is not None else pd.Timestamp(dt.date.today())
    sources = cfg.sources
    if "order_lines" not in sources:
        raise IntakeError(
            "org.yaml",
            "no source is configured for order_lines (ticket sales), the one table every "
            "analysis needs",
            "add a 'sources: order_lines:' section naming your sales export and its columns "
            "(see data/README.md).",
        )
    ledger = Ledger()
    frames: dict[str, pd.DataFrame] = {}
    salt = org_salt(cfg)
    source_ids: list[pd.Series] = []

    for table in INTAKE_ORDER:
        if table not in sources:
            continue
        src = _Source(cfg, table, sources[table], ledger)
        raw, frame = src.read()
        if table == "order_lines" and len(frame) == 0:
            raise IntakeError(
                src.label,
                "the sales export has a header but no data rows",
                "export the sales report again for the whole period you want to analyse.",
                row=raw.header_row,
            )
        ledger.open_file(src.label, table, len(frame))
        frame = src.parse(frame)
        if table == "order_lines":
            frame = _order_line_rules(src, frame, frames.get("performances"), today_ts)
        else:
            frame = _table_rules(src, table, frame, frames)
        if "customer_id" in frame.columns and table != "attendance":
            source_ids.append(frame["customer_id"].dropna())
        frames[table] = frame

    ledger.check()
    tables, stubs = _finish(cfg, frames, salt, source_ids, write=write)
    if write:
        _write_ledger(cfg, ledger, stubs)
    return IntakeResult(config=cfg, tables=tables, ledger=ledger, stub_customers=stubs)


def _table_rules(
    src: _Source, table: str, frame: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    frame = src.defaults(frame)
    frame = src.scale(frame)
    if table == "customers":
        frame = _customer_fields(frame)
    if table == "attendance" and "order_lines" in frames:
        frame = _attendance_links(frame, frames["order_lines"])
    frame = conform_partial(frame, table)
    frame = src.require(frame)
    frame = src.dedupe(frame, TABLES[table].key)
    if table == "performances" and "productions" in frames and len(frames["productions"]):
        unknown = ~frame["production_id"].isin(frames["productions"]["production_id"])
        frame = src.drop(frame, unknown, "unknown_production", "production_id")
    if table == "survey_responses":
        frame = src.drop(frame, (frame["nps"] < 0) | (frame["nps"] > 10), "out_of_range", "nps")
        itr = frame["intent_to_return"]
        frame = src.drop(frame, (itr < 0) | (itr > 1), "out_of_range", "intent_to_return")
    if table == "memberships":
        frame = src.drop(frame, frame["end_date"] < frame["start_date"], "out_of_range", "end_date")
    if table in ("donations", "memberships"):
        cap = float(src.cfg.section("intake")["max_amount"])
        frame = src.drop(frame, frame["amount"].abs() > cap, "implausible_amount", "amount")
    return frame


def _customer_fields(frame: pd.DataFrame) -> pd.DataFrame:
    """Birth month/day only (never the year), and only with consent when it is recorded."""
    if "birth_date" in frame.columns:
        bd = pd.to_datetime(frame["birth_date"])
        ok = bd.notna()
        if "birthday_consent" in frame.columns:
            ok &= frame["birthday_consent"].fillna(False).astype(bool)
        frame[CU.birth_month] = bd.dt.month.astype("Int64").where(ok)
        frame[CU.birth_day] = bd.dt.day.astype("Int64").where(ok)
        frame = frame.drop(columns=["birth_date"])
    return frame.drop(columns=["birthday_consent"], errors="ignore")


def _attendance_links(frame: pd.DataFrame, order_lines: pd.DataFrame) -> pd.DataFrame:
    """Fill a scan's customer and performance from the ticket line it names."""
    if "line_id" not in frame.columns:
        return frame
    lines = order_lines.drop_duplicates("line_id").set_index("line_id")
    for col in ("customer_id", "performance_id"):
        linked = frame["line_id"].map(lines[col])
        if col in frame.columns:
            frame[col] = frame[col].fillna(linked)
        else:
            frame[col] = linked
    return frame


def _finish(
    cfg: OrgConfig,
    frames: dict[str, pd.DataFrame],
    salt: bytes,
    source_ids: list[pd.Series],
    *,
    write: bool,
) -> tuple[Tables, int]:
    """Pseudonymise ids, add stub customers, validate with pandera, sort and write."""
    all_ids = pd.concat(source_ids, ignore_index=True).drop_duplicates()
    id_map = pd.DataFrame(
        {
            "customer_id": pseudonymise(all_ids, salt).to_numpy(),
            "source_customer_id": all_ids.to_numpy(),
        }
    )
    lookup = pd.Series(
        id_map["customer_id"].to_numpy(), index=id_map["source_customer_id"].to_numpy()
    )
    out: dict[str, pd.DataFrame] = {}
    for table, frame in frames.items():
        frame = frame.drop(columns=[ROW])
        if "customer_id" in frame.columns:
            frame["customer_id"] = frame["customer_id"].map(lookup).astype("string")
        if table == "customers" and "household_id" in frame.columns:
            frame["household_id"] = pseudonymise(frame["household_id"], salt, prefix="H")
        out[table] = frame

    stubs = 0
    known = out["customers"]["customer_id"] if "customers" in out else pd.Series([], dtype="string")
    missing = pd.Index(id_map["customer_id"]).difference(pd.Index(known.dropna()))
    if len(missing):
        ol = out["order_lines"]
        first = ol.groupby("customer_id")["purchase_time"].min()
        stub = pd.DataFrame(
            {"customer_id": missing.to_numpy(), "created_at": first.reindex(missing).to_numpy()}
        )
        base = out.get("customers")
        out["customers"] = pd.concat([base, stub], ignore_index=True) if base is not None else stub
        stubs = len(missing)

    tables: dict[str, pd.DataFrame] = {}
    for table, frame in out.items():
        canon = conform(frame, table)
        key = list(TABLES[table].key) or [c for c in canon.columns][:3]
        canon = canon.sort_values(key, kind="stable").reset_index(drop=True)
        try:
            canon = pandera_schema(table).validate(canon, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            cases = exc.failure_cases.head(5)
            raise PlaybookError(
                f"After intake, table '{table}' still breaks the data model:\n"
                f"{cases.to_string()}\nWhat to do: check the mapping of these columns in "
                "org.yaml; this is likely a kit bug if the mapping is right: please report it."
            ) from None
        tables[table] = canon

    if write:
        folder = cfg.canonical_dir
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.parquet"):
            old.unlink()
        for table, frame in tables.items():
            frame.to_parquet(folder / f"{table}.parquet", index=False)
        cfg.private_dir.mkdir(parents=True, exist_ok=True)
        id_map.sort_values("customer_id").reset_index(drop=True).to_parquet(
            cfg.private_dir / ID_MAP_FILE, index=False
        )
    available = frozenset(t for t, f in tables.items() if len(f))
    full = {name: tables.get(name) for name in TABLES}
    from playbook.schema import empty_table

    full = {k: (v if v is not None else empty_table(k)) for k, v in full.items()}
    return Tables(frames=full, available=available), stubs


def _write_ledger(cfg: OrgConfig, ledger: Ledger, stubs: int) -> None:
    folder = cfg.canonical_dir
    ledger.summary().to_csv(folder / "ledger_summary.csv", index=False)
    dropped = ledger.dropped_rows()
    dropped.to_parquet(folder / "ledger_dropped.parquet", index=False)
    dropped.to_csv(folder / "ledger_dropped.csv", index=False)
    info = {
        "organisation": cfg.slug,
        "files": len(ledger.files),
        "rows_read": int(sum(e.rows_read for e in ledger.files.values())),
        "rows_kept": int(sum(e.rows_kept for e in ledger.files.values())),
        "rows_dropped": int(sum(e.rows_dropped for e in ledger.files.values())),
        "stub_customers": stubs,
    }
    (folder / "intake.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def read_ledger(org: str | Path | OrgConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger summary and the dropped rows written by the last intake."""
    cfg = org if isinstance(org, OrgConfig) else load_org(org)
    folder = cfg.canonical_dir
    summary = pd.read_csv(folder / "ledger_summary.csv")
    dropped = pd.read_parquet(folder / "ledger_dropped.parquet")
    return summary, dropped
