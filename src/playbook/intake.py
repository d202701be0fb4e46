"""Intake: an organisation's exports in, validated canonical tables and a row ledger out.

``run_intake(org_dir)`` reads every source listed under ``sources:`` in ``org.yaml``,
maps its columns and words onto the canonical model (:mod:`playbook.schema`), drops
rows that cannot be used (each with a reason in the ledger), pseudonymises customer ids
with the organisation's salt, checks every table with pandera and writes Parquet files
to ``data/<org>/canonical/``. Names, emails, phone numbers and street addresses are
never read: only mapped columns are, and the canonical model has no place for them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
import os
import secrets
from collections import deque
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc

from playbook import parsing, presets
from playbook.config import OrgConfig, check_value_targets, load_org
from playbook.errors import ConfigError, IntakeError, PlaybookError
from playbook.fsutil import folder_lock, partial_path
from playbook.ledger import REASONS, Ledger
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
_READ_AHEAD = 1  # exports read ahead, while earlier ones are processed


@dataclass
class IntakeResult:
    """What intake produced: the canonical tables, the ledger and the settings used."""

    config: OrgConfig
    tables: Tables
    ledger: Ledger
    stub_customers: int = 0
    added: dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    possible_duplicates: pd.DataFrame | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> pd.DataFrame:
        """Rows read, kept and dropped per file (and per reason)."""
        return self.ledger.summary()

    def console_notes(self) -> list[str]:
        """What the console should say besides the counts: words org.yaml does not map
        (with the line to add), values kept as 'other', customers added without details."""
        return list(self.notes)


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
    codes, uniques = parsing.factorize(ids.astype("string"))
    hashed, _ = _pseudonyms(pa.array(uniques, pa.large_string()), salt, prefix)
    taken = hashed.take(pa.array(codes, mask=codes < 0))
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([taken])), index=ids.index)


def _pseudonyms(ids: pa.Array, salt: bytes, prefix: str) -> tuple[pa.Array, np.ndarray]:
    """``prefix`` + the first 16 hex digits of HMAC-SHA256(salt, id) of each distinct id.

    ``ids`` are Arrow strings without missing values. The pseudonyms are built as bytes
    and handed to Arrow as one buffer (no Python string per id). Also returns their
    sort order, found from the digests (fixed-width hex sorts like the number it writes).
    """
    heads = _hmac_heads(ids, salt)
    order = np.argsort(heads)
    if (heads[order[1:]] == heads[order[:-1]]).any():  # pragma: no cover - 64-bit collision
        raise PlaybookError("Two customer ids hashed to the same pseudonym; change the salt.")
    lead = np.frombuffer(prefix.encode(), dtype=np.uint8)
    width = len(lead) + 16
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    nibbles = heads.astype(">u8").view(np.uint8).reshape(-1, 8)
    text = np.empty((len(heads), width), dtype=np.uint8)
    text[:, : len(lead)] = lead
    text[:, len(lead) :: 2] = digits[nibbles >> 4]
    text[:, len(lead) + 1 :: 2] = digits[nibbles & 15]
    offsets = np.arange(0, width * (len(heads) + 1), width, dtype=np.int64)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    return pa.Array.from_buffers(pa.large_string(), len(heads), buffers), order


# SHA-256 (FIPS 180-4): round constants and initial state.
_SHA256_K = np.array(
    [
        0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4,
        0xAB1C5ED5, 0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE,
        0x9BDC06A7, 0xC19BF174, 0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F,
        0x4A7484AA, 0x5CB0A9DC, 0x76F988DA, 0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7,
        0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967, 0x27B70A85, 0x2E1B2138, 0x4D2C6DFC,
        0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85, 0xA2BFE8A1, 0xA81A664B,
        0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070, 0x19A4C116,
        0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
        0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7,
        0xC67178F2,
    ],
    dtype=np.uint32,
)  # fmt: skip
_SHA256_IV = np.array(
    [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19],
    dtype=np.uint32,
)  # fmt: skip
_HASH_LANES = 1 << 15  # ids hashed side by side (arrays that stay in the CPU cache)
_ONE_BLOCK = 55  # longest id whose padded message fits one 64-byte block


def _sha256_block(state: list[np.ndarray], words: list[Any]) -> list[np.ndarray]:
    """The SHA-256 compression of one 16-word block, for many messages at once.

    ``state`` holds the eight 32-bit state words and ``words`` the sixteen message
    words, each a ``uint32`` array with one lane per message (or a value shared by all).
    """
    w = list(words)
    a, b, c, d, e, f, g, h = state
    for t in range(64):
        if t >= 16:
            x, y = w[(t - 15) & 15], w[(t - 2) & 15]
            s0 = (x >> 7 | x << 25) ^ (x >> 18 | x << 14) ^ (x >> 3)
            s1 = (y >> 17 | y << 15) ^ (y >> 19 | y << 13) ^ (y >> 10)
            w[t & 15] = w[t & 15] + s0 + w[(t - 7) & 15] + s1
        big1 = (e >> 6 ^ e >> 11 ^ e >> 25) ^ (e << 26 ^ e << 21 ^ e << 7)
        t1 = h + big1 + (g ^ (e & (f ^ g))) + (w[t & 15] + _SHA256_K[t])
        big0 = (a >> 2 ^ a >> 13 ^ a >> 22) ^ (a << 30 ^ a << 19 ^ a << 10)
        t2 = big0 + ((a & b) | (c & (a | b)))
        h, g, f, e, d, c, b, a = g, f, e, d + t1, c, b, a, t1 + t2
    return [s + v for s, v in zip(state, (a, b, c, d, e, f, g, h), strict=True)]


def _hmac_heads(ids: pa.Array, salt: bytes) -> np.ndarray:
    """First 8 bytes of HMAC-SHA256(salt, id) of each id, as big-endian ``uint64``.

    The same digests as ``hmac.new(salt, id.encode(), "sha256")`` (RFC 2104), computed
    with numpy for many ids at once: the salt's inner and outer blocks are hashed once,
    then each id costs two compressions. An id longer than one block (55 bytes) is
    hashed by :mod:`hashlib`.
    """
    block = 64
    key = salt if len(salt) <= block else hashlib.sha256(salt).digest()
    key_bytes = np.frombuffer(key.ljust(block, b"\0"), dtype=np.uint8)
    n = len(ids)
    heads = np.empty(n, dtype=np.uint64)
    if n == 0:
        return heads
    ids = ids.cast(pa.large_string())
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int64)[ids.offset : ids.offset + n + 1]
    data = np.frombuffer(ids.buffers()[2] or b"", dtype=np.uint8)
    lengths = np.diff(offsets)
    pads = []
    for pad in (0x36, 0x5C):
        words = (key_bytes ^ np.uint8(pad)).view(">u4").astype(np.uint32)
        iv = [_SHA256_IV[i : i + 1] for i in range(8)]
        pads.append(_sha256_block(iv, [words[i : i + 1] for i in range(16)]))
    inner_key, outer_key = pads
    tail = [np.array([w], dtype=np.uint32) for w in (0x80000000, 0, 0, 0, 0, 0, 0, 96 * 8)]

    def hash_lanes(lanes: np.ndarray) -> None:
        m, size = len(lanes), lengths[lanes]
        msg = np.zeros((m, block), dtype=np.uint8)  # id, 0x80, zeros, length in bits
        row = np.repeat(np.arange(m), size)
        col = np.arange(len(row)) - np.repeat(np.cumsum(size) - size, size)
        msg[row, col] = data[np.repeat(offsets[lanes], size) + col]
        msg[np.arange(m), size] = 0x80
        bits = (block + size.astype(np.uint64)) * 8
        msg[:, 56:] = bits.astype(">u8").view(np.uint8).reshape(m, 8)
        words = np.ascontiguousarray(msg.view(">u4").astype(np.uint32).T)
        inner = _sha256_block(inner_key, list(words))
        outer = _sha256_block(outer_key, inner + tail)
        heads[lanes] = outer[0].astype(np.uint64) << np.uint64(32) | outer[1]

    short = np.flatnonzero(lengths <= _ONE_BLOCK)
    parts = [short[i : i + _HASH_LANES] for i in range(0, len(short), _HASH_LANES)]
    # numpy works outside the GIL on arrays this size: the parts are hashed side by side
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(hash_lanes, parts))
    long_ids = np.flatnonzero(lengths > _ONE_BLOCK)
    if len(long_ids):
        inner0 = hashlib.sha256(bytes(key_bytes ^ 0x36))
        outer0 = hashlib.sha256(bytes(key_bytes ^ 0x5C))
        for i in long_ids.tolist():
            h_in, h_out = inner0.copy(), outer0.copy()
            h_in.update(data[offsets[i] : offsets[i + 1]].tobytes())
            h_out.update(h_in.digest())
            heads[i] = int.from_bytes(h_out.digest()[:8], "big")
    return heads


# ---------------------------------------------------------------------------
# Mapping one source onto its canonical table
# ---------------------------------------------------------------------------
class _Source:
    """One source file being turned into one canonical table."""

    def __init__(
        self,
        cfg: OrgConfig,
        table: str,
        spec: Mapping[str, Any],
        ledger: Ledger,
        label: str | None = None,
    ):
        self.cfg = cfg
        self.table = TABLES[table]
        self.spec = presets.resolve(table, spec)
        self.ledger = ledger
        if "file" not in self.spec:
            raise ConfigError(
                f"org.yaml: sources.{table} does not say which file to read.\n"
                f"What to do: add 'file: <name of the export>' under sources.{table}."
            )
        self.file = str(self.spec["file"])
        self.label = label or self.file  # how the ledger names this source
        self.added = 0  # lines intake adds (reversals of in-place returns, plan lines)
        self.skipped = 0  # rows of a shared file that this table's filter leaves to others
        # rows the filter leaves out: their row numbers, the filter column and its values
        self.left: tuple[np.ndarray, str, pd.Series] | None = None
        self.columns: dict[str, str] = dict(self.spec.get("columns") or {})
        self.optional = set(self.spec.get("optional_columns") or [])
        self.raw: dict[str, pd.Series] = {}  # source text of parsed columns, for the ledger
        # pandas.factorize(..., use_na_sentinel=False) of text columns, by their Arrow array
        self.factorized: dict[str, tuple[pa.ChunkedArray, np.ndarray, pd.Index]] = {}
        self.values: Mapping[str, Mapping] = self.spec.get("values") or {}
        check_value_targets(table, self.values, "org.yaml (with its preset)")
        self.notes: list[str] = []  # what the console and intake.json say about this source
        self.date_order: dict[str, pd.Series] = {}  # per date column (see parse_dates)
        # per date column with times written with an offset: which rows (see parse_dates)
        self.zoned: dict[str, pd.Series] = {}
        self.dayfirst = bool(self.spec.get("dayfirst", cfg.settings["locale_dayfirst"]))
        money = cfg.section("money")
        self.minor_units = bool(self.spec.get("minor_units", money["minor_units"]))
        self.decimal = str(self.spec.get("decimal", money["decimal"]))

    def read(self) -> tuple[RawFile, pd.DataFrame]:
        expected = list(self.columns.values())
        flt = self.spec.get("filter")
        if flt:
            expected.append(str(flt["column"]))
        raw = read_export(
            self.cfg.org_dir / self.file,
            self.label,
            expected,
            delimiter=self.spec.get("delimiter"),
            encoding=self.spec.get("encoding"),
            header_row=self.spec.get("header_row"),
            sheet=self.spec.get("sheet"),
        )
        self.notes.extend(raw.notes)  # e.g. which worksheet was read, when it was chosen
        if self.spec.get("join"):
            raw = self._join(raw)
        if flt:
            raw = self._filter(raw, flt)
        self._check_columns(raw)
        lookup = {_key(c): c for c in raw.frame.columns}
        rows = raw.frame[ROW].to_numpy()
        if len(rows) and rows.max() < 2**31:
            rows = rows.astype(np.int32)  # half the memory of the row numbers kept to the end
        columns: dict[str, Any] = {ROW: rows}
        for canon, source in self.columns.items():
            col = raw.frame[lookup[_key(source)]]
            # text stays in its Arrow array (a round trip through Python objects is slow)
            text = isinstance(col.dtype, pd.StringDtype)
            columns[canon] = col.array if text else col.to_numpy()
        return raw, pd.DataFrame(columns)

    def _join(self, raw: RawFile) -> RawFile:
        """Add the columns of a lookup export (e.g. an order header) matched on a key."""
        join = self.spec["join"]
        on = join["on"]
        left, right = (on, on) if isinstance(on, str) else (on[0], on[1])
        prefix = str(join.get("prefix") or "")
        rfile = str(join["file"])
        wanted = [right] + [c[len(prefix) :] for c in self.columns.values() if c.startswith(prefix)]
        other = read_export(self.cfg.org_dir / rfile, rfile, wanted)
        lcol = _find(raw.frame.columns, left)
        rcol = _find(other.frame.columns, right)
        for col, name, file in ((lcol, left, self.file), (rcol, right, rfile)):
            if col is None:
                raise IntakeError(
                    file,
                    f"there is no column '{name}' to join '{self.file}' and '{rfile}' on",
                    f"check sources.{self.table.name}.join.on in org.yaml (or the preset).",
                )
        lookup = other.frame.drop(columns=[ROW])
        lookup["__key"] = parsing.clean_id(lookup[rcol])
        lookup = lookup.dropna(subset=["__key"]).drop_duplicates("__key", keep="first")
        taken = {_key(c) for c in raw.frame.columns}
        renamed = {c: f"{prefix}{c}" for c in lookup.columns if c != "__key"}
        lookup = lookup.rename(columns=renamed)
        lookup = lookup[[c for c in lookup.columns if c == "__key" or _key(c) not in taken]]
        frame = raw.frame.copy()
        frame["__key"] = parsing.clean_id(frame[lcol])
        merged = frame.merge(lookup, on="__key", how="left", sort=False).drop(columns="__key")
        merged.index = raw.frame.index
        return dataclasses.replace(raw, frame=merged)

    def _filter(self, raw: RawFile, flt: Mapping[str, Any]) -> RawFile:
        """Keep the rows of a shared export that belong to this table."""
        col = _find(raw.frame.columns, str(flt["column"]))
        if col is None:
            raise IntakeError(
                self.label,
                f"there is no column '{flt['column']}' to pick this table's rows by",
                f"check sources.{self.table.name}.filter.column in org.yaml (or the preset). "
                f"Columns in the file: {', '.join(c for c in raw.frame.columns if c != ROW)}.",
                row=raw.header_row,
            )
        words = flt["in"] if "in" in flt else flt["not_in"]
        wanted = {str(w).strip().lower() for w in words}
        hit = raw.frame[col].astype("string").str.strip().str.lower().isin(wanted)
        hit = hit.fillna(False).astype(bool)
        keep = hit if "in" in flt else ~hit
        self.skipped = int((~keep).sum())
        left = raw.frame.loc[~keep, [ROW, col]]
        self.left = (left[ROW].to_numpy(dtype=np.int64), col, left[col].reset_index(drop=True))
        return dataclasses.replace(raw, frame=raw.frame.loc[keep].reset_index(drop=True))

    def _check_columns(self, raw: RawFile) -> None:
        found = [c for c in raw.frame.columns if c != ROW]
        keys = {_key(c) for c in found}
        for canon in [c for c, source in self.columns.items() if c in self.optional]:
            if _key(self.columns[canon]) not in keys:
                del self.columns[canon]  # a preset column this export does not have
        needed = _needed_columns(self.table.name, self.columns)
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
            preset = self.spec.get("_preset")
            if preset:
                fix += (
                    f" The '{preset}' preset expects this column; if your export names it "
                    f"differently, set sources.{self.table.name}.columns.{canon} in org.yaml."
                )
            raise IntakeError(
                self.label,
                f"there is no column '{source}' (org.yaml maps it to {self.table.name}.{canon})",
                fix,
                row=raw.header_row,
                column=str(source),
            )

    # -- dropping -----------------------------------------------------------
    def drop(
        self,
        frame: pd.DataFrame,
        mask: pd.Series,
        reason: str,
        column: str | None = None,
        message: pd.Series | str | None = None,
    ):
        mask = mask.fillna(False).astype(bool)
        if not mask.any():
            return frame  # nothing to drop: no copy of the whole table
        src = self.columns.get(column, column) if column else None
        values = None
        if column in self.raw:  # the value as the export wrote it, not as parsed
            values = self.raw[column].reindex(frame.index[mask])
        elif column and column in frame:
            values = frame.loc[mask, column]
        if isinstance(message, pd.Series):
            message = message.reindex(frame.index[mask])
        self.ledger.drop(
            self.label, frame.loc[mask, ROW], reason, column=src, values=values, message=message
        )
        return frame.loc[~mask]

    # -- plain words about values that cannot be used --------------------------------
    def _examples(self, frame: pd.DataFrame, canon: str, mask: pd.Series, n: int = 2) -> str:
        """'value' (row r) for the first ``n`` rows of ``mask``, as the export wrote them."""
        at = frame.index[mask.to_numpy(dtype=bool)][:n]
        raw = self.raw.get(canon)
        values = raw.reindex(at) if raw is not None else frame.loc[at, canon]
        rows = frame.loc[at, ROW]
        return ", ".join(
            f"{v!r} in row {int(r)}" for v, r in zip(values.tolist(), rows.tolist(), strict=True)
        )

    def _check_date_order(self, frame: pd.DataFrame, canon: str, order: pd.Series) -> pd.DataFrame:
        """Stop, or drop the odd row, when dates read only with day and month swapped.

        ``order`` is :func:`parsing.parse_dates`' third answer: -1 where a date reads only
        the other way round than the settings say (09/13/2022 when day-first), 1 where it
        reads only the expected way. A few such dates among many that confirm the
        setting (at most 1 in 100) are dropped as ``ambiguous_date_order``; more mean the
        whole column is written the other way round (and its dates that read both ways,
        like 01/12/2026, would be read wrongly): intake stops.
        """
        if len(order) != len(frame):
            order = order.loc[frame.index]
        other = order == -1
        n_other, n_sure = int(other.sum()), int((order == 1).sum())
        if n_other == 0:
            return frame
        fmt = self.spec.get("date_format")
        day_first = parsing.format_dayfirst(fmt, self.dayfirst)
        if n_other * 100 > n_sure:
            at = frame.index[other.to_numpy(dtype=bool)][0]
            value = self.raw[canon].loc[at] if canon in self.raw else frame.loc[at, canon]
            said, seen = ("day-first", "month-first") if day_first else ("month-first", "day-first")
            if fmt and "%d" in fmt and "%m" in fmt:
                swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
                fix = (
                    f'set date_format: "{swapped}" under sources.{self.table.name} in org.yaml '
                    f'(it says "{fmt}", which reads {said}).'
                )
            else:
                fix = (
                    f"set 'dayfirst: {str(not day_first).lower()}' under "
                    f"sources.{self.table.name} in org.yaml (or "
                    f"'locale_dayfirst: {str(not day_first).lower()}' at the top of org.yaml "
                    "if every export writes dates this way)."
                )
            raise IntakeError(
                self.label,
                f"these dates are {seen} ({value}), but org.yaml says they are {said}: "
                f"{n_other:,} rows read only {seen} and {n_sure:,} only {said}, so dates "
                f"that read both ways (like 01/12/2026) would be read wrongly",
                fix,
                row=int(frame.loc[at, ROW]),
                column=self.columns.get(canon, canon),
                value=value,
            )
        if canon == "birth_date":
            return frame  # an unreadable birth date is simply not kept
        return self.drop(frame, other, "ambiguous_date_order", canon)

    def _check_unreadable(self, frame: pd.DataFrame, canon: str, bad: pd.Series, reason: str):
        """Stop when a sales column cannot be read in (nearly) every row.

        Dropping every sale would leave nothing to analyse, and the cause is one setting
        or one export option, not the rows.
        """
        n_bad, n = int(bad.sum()), len(frame)
        if self.table.name != "order_lines" or n < 10 or n_bad < 0.9 * n:
            return
        source = self.columns.get(canon, canon)
        col = self._col(canon)
        kind = col.kind if col else "str"
        if kind == "datetime":
            fmt = self.spec.get("date_format")
            fix = (
                f"check that '{source}' holds dates and that sources.order_lines.date_format"
                + (f' ("{fmt}")' if fmt else "")
                + " matches how they are written: for 25/12/2024 19:30 it is "
                '"%d/%m/%Y %H:%M". If the export wrote dates as numbers, format the column '
                "as dates in Excel and save again."
            )
        elif kind == "money":
            fix = (
                f"check that '{source}' holds amounts, and sources.order_lines.decimal "
                f"(now '{self.decimal}') and minor_units in org.yaml."
            )
        elif reason == "unknown_value":
            fix = (
                f"map these words under sources.order_lines.values.{canon} in org.yaml "
                f"(allowed: {', '.join(col.allowed) if col and col.allowed else 'see data/README.md'})."
            )
        else:
            fix = f"check that org.yaml maps order_lines.{canon} to the right column."
        raise IntakeError(
            self.label,
            f"in {n_bad:,} of {n:,} rows {REASONS[reason]}, e.g. "
            f"{self._examples(frame, canon, bad)}; intake stops rather than drop (nearly) "
            "every sale",
            fix,
            column=str(source),
        )

    def _unknown_words(
        self, frame: pd.DataFrame, canon: str, parsed: pd.Series, bad: pd.Series
    ) -> tuple[pd.Series, pd.Series]:
        """Words org.yaml does not map in an optional column that has an 'other' value
        (a sales channel, say) keep their row as 'other', with a note; others are dropped."""
        col = self._col(canon)
        if col is None or col.required or "other" not in col.allowed:
            return parsed, bad
        if len(parsed) != len(frame):
            parsed = parsed.loc[frame.index]
        parsed = parsed.mask(bad, "other")
        raw = self.raw[canon].reindex(frame.index[bad.to_numpy(dtype=bool)])
        words = raw.astype("string").str.strip().value_counts(sort=False)
        for word, n in sorted(words.items(), key=lambda kv: (-kv[1], str(kv[0]))):
            self.notes.append(
                f"{self.label}: '{word}' in column '{self.columns.get(canon, canon)}' "
                f"({n:,} {'row' if n == 1 else 'rows'}) is not in the org.yaml mapping; "
                f"kept with {canon} 'other'. To keep them apart, add `{word}: <one of "
                f"{', '.join(col.allowed)}>` under sources.{self.table.name}.values.{canon}."
            )
        return parsed, pd.Series(False, index=frame.index)

    def _unknown_message(self, frame: pd.DataFrame, canon: str, bad: pd.Series) -> pd.Series:
        """Per dropped row, the ``org.yaml`` line that would keep it."""
        col = self._col(canon)
        allowed = tuple(col.allowed) if col and col.allowed else ()
        if (col and col.kind == "bool") or canon == "birthday_consent":
            allowed = ("true", "false")
        at = frame.index[bad.to_numpy(dtype=bool)]
        words = self.raw[canon].reindex(at).astype("string").str.strip()
        messages: dict[str, str] = {}
        for word in words.dropna().unique():
            close = difflib.get_close_matches(str(word).lower(), allowed, n=1, cutoff=0.5)
            target = close[0] if close else "<one of " + ", ".join(allowed) + ">"
            messages[word] = (
                f"'{word}' is not in the org.yaml mapping: add `{word}: {target}` under "
                f"sources.{self.table.name}.values.{canon}"
                + ("" if close else f" (allowed: {', '.join(allowed)})" if allowed else "")
            )
        return words.map(messages).fillna(REASONS["unknown_value"])

    # -- parsing -----------------------------------------------------------
    def parse(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Drop blank rows, parse every mapped column, drop what cannot be read."""
        mapped = [c for c in frame.columns if c != ROW]
        all_blank = np.ones(len(frame), dtype=bool)
        for c in mapped:
            all_blank &= parsing.blank(frame[c]).to_numpy()
            if not all_blank.any():
                break  # some column is filled on every row: no blank rows
        out = self.drop(frame, pd.Series(all_blank, index=frame.index), "blank_row")
        out = self._drop_header_and_total_rows(out, mapped)
        # A value reads the same whatever the other rows hold, so the columns are parsed
        # side by side (Arrow and numpy work outside the GIL), then applied in order:
        # a row is dropped for the first column that cannot be read, as before.
        columns = {c: out[c] for c in mapped}
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            jobs = {c: pool.submit(self._parse_column, c, columns[c]) for c in mapped}
        for canon in mapped:
            self.raw[canon] = columns.pop(canon)
            parsed, bad, reason = jobs.pop(canon).result()
            if canon in self.zoned:
                self._note_mixed_zones(out, canon, parsed, self.zoned.pop(canon))
            if bad is not None and len(bad) != len(out):
                bad = bad.loc[out.index]  # rows an earlier column dropped are gone
            if canon in self.date_order:
                out = self._check_date_order(out, canon, self.date_order.pop(canon))
                if bad is not None and len(bad) != len(out):
                    bad = bad.loc[out.index]
            if bad is not None and bad.any() and reason == "unknown_value":
                parsed, bad = self._unknown_words(out, canon, parsed, bad)
            if bad is not None and bad.any():
                self._check_unreadable(out, canon, bad, reason)
                message = (
                    self._unknown_message(out, canon, bad) if reason == "unknown_value" else None
                )
                out = self.drop(out, bad, reason, canon, message)  # ledger keeps the raw value
            if len(parsed) != len(out):
                parsed = parsed.loc[out.index]
            if canon == "postcode":
                out = out.drop(columns=[canon])
                out["postcode_district"] = parsed
            else:
                out[canon] = parsed
        return out

    def _drop_header_and_total_rows(self, frame: pd.DataFrame, mapped: list[str]) -> pd.DataFrame:
        """Drop the header written again inside the file, and a customers 'Total' row.

        A repeated header holds each mapped column's own name; a total row of a customers
        export has an id starting with 'Total'. Cheap: one comparison per column, and
        only while some row still matches.
        """
        if not len(frame):
            return frame
        header = np.ones(len(frame), dtype=bool)
        for c in mapped:
            arr = parsing._arrow_strings(frame[c])
            if arr is None:
                header[:] = False
                break
            name = pa.scalar(str(self.columns.get(c, c)), arr.type)
            header &= pc.equal(arr, name).fill_null(False).to_numpy(zero_copy_only=False)
            if not header.any():
                break
        frame = self.drop(frame, pd.Series(header, index=frame.index), "repeated_header")
        if self.table.name == "customers" and "customer_id" in frame.columns:
            arr = parsing._arrow_strings(frame["customer_id"])
            if arr is not None and len(arr):
                total = pc.starts_with(arr, "Total", ignore_case=True).fill_null(False)
                mask = total.to_numpy(zero_copy_only=False).astype(bool)
                frame = self.drop(
                    frame, pd.Series(mask, index=frame.index), "total_row", "customer_id"
                )
        return frame

    def _parse_column(self, canon: str, s: pd.Series) -> tuple[pd.Series, pd.Series | None, str]:
        col = self._col(canon)
        kind = col.kind if col else "str"
        mapping = self.values.get(canon)
        fmt = self.spec.get("date_format")
        if canon == "birth_date" or kind == "datetime":
            parsed, bad, order, zoned = parsing.parse_dates(
                s,
                fmt=fmt,
                dayfirst=self.dayfirst,
                order_check=True,
                tz=self.cfg.timezone,  # times written with an offset become local times
                zone_check=True,
            )
            if (order == -1).any():
                self.date_order[canon] = order
            if zoned.any():
                self.zoned[canon] = zoned
            if canon == "birth_date":
                return parsed, None, ""  # an unreadable birth date is simply not kept
            return parsed, bad, "unparseable_date"
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
        if kind == "money":
            if self.decimal == ",":
                self._check_decimal_comma(canon, s)
            parsed, bad = parsing.parse_money(s, decimal=self.decimal, minor_units=self.minor_units)
            return parsed, bad, "unparseable_amount"
        if kind == "int":
            parsed, bad = parsing.parse_int(s)
            return parsed, bad, ("bad_quantity" if canon == "quantity" else "out_of_range")
        if kind == "float":
            parsed, bad = parsing.parse_float(s)
            return parsed, bad, "out_of_range"
        return parsing.clean_text(s), None, ""

    def _note_mixed_zones(
        self, frame: pd.DataFrame, canon: str, parsed: pd.Series, zoned: pd.Series
    ) -> None:
        """Add a note when a date column mixes times with and without a time zone.

        Those with one (``2025-03-30T23:15:00Z``) were converted to the organisation's
        time zone, those without were taken as local already: right when the export
        wrote local times without a zone, an hour out in summer (a day, just after
        midnight) when it wrote UTC.
        """
        zoned = zoned.reindex(frame.index, fill_value=False).astype(bool)
        plain = parsed.reindex(frame.index).notna() & ~zoned
        n_zoned, n_plain = int(zoned.sum()), int(plain.sum())
        if not n_zoned or not n_plain:
            return
        tz = self.cfg.timezone
        self.notes.append(
            f"{self.label}: column '{self.columns.get(canon, canon)}' mixes times written "
            f"with a time zone ({n_zoned:,} {'row' if n_zoned == 1 else 'rows'}, e.g. "
            f"{self._examples(frame, canon, zoned, 1)}) and without one ({n_plain:,} "
            f"{'row' if n_plain == 1 else 'rows'}, e.g. {self._examples(frame, canon, plain, 1)}). "
            f"Those with a time zone were converted to {tz} time; those without were taken "
            f"as {tz} time already. If the export wrote them in another zone (UTC, say), "
            "export the column again with the time zone on every value, or in local time "
            "throughout."
        )

    def _check_decimal_comma(self, canon: str, s: pd.Series) -> None:
        """Stop when ``decimal: ","`` is set but most amounts are written like 12.50.

        Read with a decimal comma, 12.50 is one thousand two hundred and fifty.
        """
        arr = parsing._arrow_strings(s)
        if arr is None or len(arr) - arr.null_count == 0:
            return
        dotted = pc.match_substring_regex(arr, r"^[^,]*\d\.\d\d(?:\D*)$")
        n = int(pc.sum(dotted).as_py() or 0)
        if n * 2 <= len(arr) - arr.null_count:
            return
        first = int(pc.index(dotted, True).as_py())
        raise IntakeError(
            self.label,
            f"{n:,} amounts are written with a decimal point (like {arr[first].as_py()!r}), "
            f"but org.yaml says sources.{self.table.name}.decimal is ',' (a decimal comma), "
            "which would read 12.50 as 1250",
            f"remove 'decimal: \",\"' under sources.{self.table.name} in org.yaml (or set "
            "'decimal: \".\"').",
            column=self.columns.get(canon, canon),
            value=arr[first].as_py(),
        )

    def _col(self, canon: str) -> Col | None:
        return self.table.names.get(canon)

    def require(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Drop rows missing a value the table cannot do without."""
        for c in self.table.columns:
            if c.nullable or c.name not in frame.columns:
                continue
            reason = "missing_customer" if c.name == "customer_id" else "missing_value"
            missing = frame[c.name].isna()
            n, n_missing = len(frame), int(missing.sum())
            if self.table.name == "order_lines" and n >= 10 and n_missing >= 0.9 * n:
                source = self.columns.get(c.name)
                raise IntakeError(
                    self.label,
                    f"{n_missing:,} of {n:,} rows have no {c.name.replace('_', ' ')}"
                    + (f" in column '{source}'" if source else " (org.yaml maps no column to it)")
                    + "; intake stops rather than drop (nearly) every sale",
                    f"check that org.yaml maps order_lines.{c.name} to the column holding it "
                    "(sources.order_lines.columns), and that the export includes it.",
                    column=source,
                )
            frame = self.drop(frame, missing, reason, c.name)
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
        keyed = bool(key) and all(k in frame.columns for k in key)
        if keyed and not _shared_rows(frame, list(key), self.factorized).any():
            return frame  # no key value twice: no repeated rows, no reused ids
        repeated = _repeated_rows(frame, cols, key, self.factorized)
        frame = self.drop(frame, repeated, "duplicate_line")
        if keyed:
            frame = self.drop(
                frame, frame.duplicated(subset=list(key), keep="first"), "duplicate_id", key[0]
            )
        return frame

    def factorize(self, s: pd.Series) -> tuple[np.ndarray, pd.Index]:
        """``pandas.factorize(s)``, reusing the codes :meth:`dedupe` found for the same column."""
        arr = parsing._arrow_strings(s)
        hit = self.factorized.get(str(s.name))
        if arr is None or hit is None or hit[0] is not arr:
            return parsing.factorize(s)
        _, codes, uniques = hit
        missing = np.flatnonzero(uniques.isna())
        if len(missing):  # dedupe counted missing as a value: make it -1 again
            at = missing[0]
            codes = np.where(codes == at, -1, codes - (codes > at))
            uniques = uniques.delete(at)
        return codes, uniques


def _repeated_rows(
    frame: pd.DataFrame,
    cols: list[str],
    key: tuple[str, ...],
    factorized: dict[str, Any] | None = None,
) -> pd.Series:
    """``frame.duplicated(subset=cols, keep="first")``, computed quickly on big tables.

    Only rows that share every column with another row can be repeats
    (:func:`_shared_rows`, key columns first); pandas marks the repeats among those.
    """
    if len(frame) < _SMALL:
        return frame.duplicated(subset=cols, keep="first")
    order = [c for c in key if c in cols] + [c for c in cols if c not in key]
    out = np.zeros(len(frame), dtype=bool)
    maybe = np.flatnonzero(_shared_rows(frame, order, factorized))
    if len(maybe):
        out[maybe] = frame.iloc[maybe].duplicated(subset=cols, keep="first").to_numpy()
    return pd.Series(out, index=frame.index)


_SMALL = 10_000  # below this many rows pandas' own duplicate search is quick enough


def _shared_rows(
    frame: pd.DataFrame, cols: list[str], factorized: dict[str, Any] | None = None
) -> np.ndarray:
    """``frame.duplicated(subset=cols, keep=False)``: rows equal to another row on ``cols``.

    Column by column, and only among the rows still in question: a row that shares its
    first column with no other row is settled after one pass (an id column usually
    settles every row; one that only grows settles them without any hashing). Values
    are compared through their ``pandas.factorize`` codes, so missing values equal each
    other, as in ``duplicated``. The codes of a whole text column are kept in
    ``factorized`` (by column name, with its Arrow array), so they need not be found again.
    """
    if len(frame) < _SMALL:
        return frame.duplicated(subset=cols, keep=False).to_numpy()
    if _strictly_increasing(frame[cols[0]]) or _distinct_numbers(frame[cols[0]]):
        return np.zeros(len(frame), dtype=bool)  # every first value differs
    rows = np.arange(len(frame), dtype=np.int32 if len(frame) < 2**31 else np.intp)
    group, span = np.zeros(len(frame), dtype=np.int64), 1
    for c in cols:
        col = frame[c] if len(rows) == len(frame) else frame[c].iloc[rows]
        arr = parsing._arrow_strings(col) if len(rows) == len(frame) else None
        hit = factorized.get(c) if factorized is not None and arr is not None else None
        if hit is not None and hit[0] is arr:
            codes, uniques = hit[1], hit[2]
        else:
            codes, uniques = parsing.factorize(col, use_na_sentinel=False)
            if factorized is not None and arr is not None:
                factorized[c] = (arr, codes, uniques)
        width = max(len(uniques), 1)
        if span * width >= 2**62:  # renumber the groups before they overflow
            group, found = pd.factorize(group)
            span = len(found)
        group *= width  # in place: the arrays are as long as the table
        group += codes
        span *= width
        del col, codes, uniques
        shared = _repeated_values(group, span)
        rows, group = rows[shared], group[shared]
        if len(rows) == 0:
            break
    out = np.zeros(len(frame), dtype=bool)
    out[rows] = True
    return out


def _distinct_numbers(s: pd.Series) -> bool:
    """Whether text holding plain whole numbers (:func:`parsing.decimal_ids`) never repeats.

    Checked with the numbers, without hashing text; tried only when the first values all
    differ. False when unsure.
    """
    arr = parsing._arrow_strings(s)
    if arr is None or len(arr) < _SMALL:
        return False
    head = arr.slice(0, _SMALL)
    if pc.count_distinct(head, mode="all").as_py() != len(head):
        return False
    numbers = parsing.decimal_ids(arr)  # missing values are -1
    if numbers is None:
        return False
    return not _repeated_values(numbers + 1, int(numbers.max()) + 2).any()


def _repeated_values(values: np.ndarray, span: int) -> np.ndarray:
    """Whether each integer (from 0 to ``span``) occurs more than once, without hashing.

    Counted directly when the range is small, else found by sorting.
    """
    if span <= 4 * len(values):
        return np.bincount(values, minlength=span)[values] > 1
    ordered = np.sort(values)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if len(twice) == 0:
        return np.zeros(len(values), dtype=bool)
    twice = np.unique(twice)
    at = np.minimum(np.searchsorted(twice, values), len(twice) - 1)
    return twice[at] == values


def _key(name: object) -> str:
    return " ".join(str(name).replace("\ufeff", "").split()).lower()


def _find(columns: Any, name: str) -> str | None:
    """The column whose name matches ``name`` ignoring case and spacing (None if none)."""
    for c in columns:
        if c != ROW and _key(c) == _key(name):
            return c
    return None


def _needed_columns(table: str, mapped: Mapping[str, str] | None = None) -> list[str]:
    """Columns the mapping must name; ids that intake can derive are not among them.

    A scan without a time is timed at its performance's start, so ``scanned_at`` may be
    left out when the scan names its ticket line or performance.
    """
    derivable = {("order_lines", "line_id"), ("order_lines", "order_id")}
    if mapped and ("line_id" in mapped or "performance_id" in mapped):
        derivable.add(("attendance", "scanned_at"))
    return [c for c in TABLES[table].required_columns if (table, c) not in derivable]


# ---------------------------------------------------------------------------
# Table-specific rules
# ---------------------------------------------------------------------------
def _order_line_rules(
    src: _Source, frame: pd.DataFrame, performances: pd.DataFrame | None, today: pd.Timestamp
) -> pd.DataFrame:
    if OL.line_id not in frame.columns:
        frame[OL.line_id] = src.file.rsplit("/", 1)[-1] + ":" + frame[ROW].astype("string")
    if OL.order_id not in frame.columns:
        frame[OL.order_id] = frame[OL.line_id]
    frame = src.defaults(frame)
    frame = conform_partial(frame, "order_lines")
    frame = src.require(frame)
    frame = src.dedupe(frame, ("line_id",))
    mode = src.spec.get("returns", "linked")
    if mode == "in_place":
        # The row is the original ticket: it stands as sold until its reversal (added last).
        flip = frame[OL.status].isin(["returned", "exchanged"]) & frame[OL.parent_line_id].isna()
        frame["_reverse_as"] = frame[OL.status].where(flip)
        frame.loc[flip, OL.status] = "active"
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
    if mode == "match" and "ticket_ref" in frame.columns:
        frame[OL.parent_line_id] = _match_returns(frame, reversing)
    # A reversing line takes money back, whatever sign the export wrote it with.
    for col in (OL.paid_amount, OL.list_price, OL.discount):
        frame[col] = frame[col].mask(reversing, -frame[col].abs())
    frame = src.drop(
        frame, (~reversing) & (frame[OL.paid_amount] < 0), "negative_not_return", OL.paid_amount
    )
    reversing = frame[OL.status].isin(["returned", "exchanged"])
    sold = frame.loc[~reversing, OL.line_id]
    orphan = reversing & ~parsing.isin(frame[OL.parent_line_id], sold)
    frame = src.drop(frame, orphan, "orphan_return", OL.parent_line_id)
    if performances is not None and len(performances):
        is_ticket = frame[OL.performance_id].notna()
        known = parsing.isin(frame[OL.performance_id], performances["performance_id"])
        unknown = is_ticket & ~known
        frame = src.drop(frame, unknown, "unknown_performance", OL.performance_id)
    if src.spec.get("comp_when_zero"):
        price = frame[OL.list_price].fillna(frame[OL.paid_amount])
        ticket = (frame[OL.item_type] == "ticket") & (frame[OL.status] == "active")
        frame[OL.is_comp] = frame[OL.is_comp] | (ticket & (price == 0))
    if "plan_id" in frame.columns:
        frame = _season_plans(src, frame)
    if mode == "in_place":
        frame = _reverse_in_place(src, frame)
    # Returns without a stated amount reverse nothing: keep sign consistent.
    frame[OL.discount] = frame[OL.discount].fillna(frame[OL.list_price] - frame[OL.paid_amount])
    return frame.drop(columns=["_reverse_as", "ticket_ref", "plan_id"], errors="ignore")


def _match_returns(frame: pd.DataFrame, reversing: pd.Series) -> pd.Series:
    """Parent of each return that names none: the latest earlier sale of the same ticket.

    Each sale is reversed at most once; a return with no such sale keeps no parent and
    is dropped later as an orphan. Per ticket, in purchase-time order, the sales are
    opened and the returns to link close the latest open one, like brackets: the
    depth of open sales is a running sum of +1 (sale) and -1 (return) that a return
    with nothing open leaves at 0 (the sum minus its running minimum), and a return
    at depth ``d`` closes the latest sale that brought the depth to ``d``. Returns
    that already name their parent take no part.
    """
    parent = frame[OL.parent_line_id].copy()
    todo = reversing & parent.isna() & frame["ticket_ref"].notna()
    if not todo.any():
        return parent
    pos = np.flatnonzero(parsing.isin(frame["ticket_ref"], frame.loc[todo, "ticket_ref"]))
    group, _ = parsing.factorize(frame["ticket_ref"].iloc[pos])
    when = frame[OL.purchase_time].to_numpy(dtype="datetime64[ns]")[pos].view(np.int64)
    when = np.where(when == np.iinfo(np.int64).min, np.iinfo(np.int64).max, when)  # NaT last
    order = np.lexsort((pos, when, group))  # per ticket, by time (ties: export order)
    rows, group = pos[order], group[order]
    is_return = reversing.to_numpy(dtype=bool)[rows]
    step = np.where(is_return, np.where(todo.to_numpy(dtype=bool)[rows], -1, 0), 1)
    start = np.r_[True, group[1:] != group[:-1]]
    running = pd.Series(step).groupby(group).cumsum().to_numpy()  # per ticket
    lowest = pd.Series(running).groupby(group).cummin().to_numpy()
    depth = running - np.minimum(lowest, 0)
    before = np.where(start, 0, np.r_[0, depth[:-1]])
    closes = np.flatnonzero((step == -1) & (before > 0))
    if len(closes) == 0:
        return parent
    opens = np.flatnonzero(step == 1)
    left = pd.DataFrame({"at": closes, "group": group[closes], "depth": before[closes]})
    right = pd.DataFrame({"at": opens, "group": group[opens], "depth": depth[opens], "sale": opens})
    matched = pd.merge_asof(left, right, on="at", by=["group", "depth"], direction="backward")
    sale = matched["sale"].to_numpy(dtype=np.int64)
    line_ids = frame[OL.line_id].iloc[rows[sale]].to_numpy()
    values = parent.to_numpy(dtype=object, na_value=None).copy()
    values[rows[closes]] = line_ids
    return pd.Series(pd.array(values, dtype=parent.dtype), index=parent.index, name=parent.name)


def _reverse_in_place(src: _Source, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the reversing line of each ticket an export marked refunded or exchanged."""
    flagged = frame["_reverse_as"].notna()
    if not flagged.any():
        return frame
    orig = frame.loc[flagged]
    rev = orig.copy()
    word = orig["_reverse_as"].map({"returned": "return", "exchanged": "exchange"})
    rev[OL.line_id] = orig[OL.line_id] + ":" + word
    rev[OL.status] = orig["_reverse_as"]
    rev[OL.parent_line_id] = orig[OL.line_id]
    for col in (OL.paid_amount, OL.list_price, OL.discount):
        rev[col] = -orig[col].abs()
    src.added += len(rev)
    return pd.concat([frame, rev])


def _season_plans(src: _Source, frame: pd.DataFrame) -> pd.DataFrame:
    """A season plan or package counts once.

    Active ticket lines carrying a ``plan_id`` are the plan's seats, one per event. Per
    order, customer and plan they become zero-revenue seats, and the plan's money sits
    on one ``subscription`` line: the plan's own row when the export has one (a row
    without a performance), otherwise a line intake adds.
    """
    seats = (
        frame["plan_id"].notna()
        & (frame[OL.status] == "active")
        & frame[OL.item_type].isin(["ticket", "subscription"])
    )
    if not seats.any():
        return frame
    repeated = src.spec.get("plan_amount", "split") == "repeated"
    own_row = seats & frame[OL.performance_id].isna()
    per_event = seats & ~own_row
    added = _plan_lines(frame.loc[per_event], frame.loc[own_row, _PLAN_KEY], repeated)
    frame.loc[own_row, OL.item_type] = "subscription"
    for col in (OL.paid_amount, OL.list_price, OL.discount):
        frame.loc[per_event, col] = frame.loc[per_event, col].where(
            frame.loc[per_event, col].isna(), 0.0
        )
    if len(added):
        src.added += len(added)
        frame = pd.concat([frame, added.astype(frame.dtypes.to_dict())])
    return frame


_PLAN_KEY = [OL.order_id, OL.customer_id, "plan_id"]  # one plan line per these


def _plan_lines(seats: pd.DataFrame, own: pd.DataFrame, repeated: bool) -> pd.DataFrame:
    """One ``subscription`` line per order, customer and plan among per-event ``seats``.

    Plans with their own row (``own``: the key columns of those rows) get none. The line
    copies the plan's first seat row (same index label) and carries the plan's money:
    the sum of its seats' amounts (``repeated``: divided by the number of events, as
    every event row repeats the whole price), as many seats as the most taken at one
    event, and the earliest purchase time.
    """
    keys = _PLAN_KEY
    group = seats.groupby(keys, sort=False).ngroup().to_numpy()
    mine = seats[keys].merge(own.drop_duplicates().assign(_own=True), on=keys, how="left")
    take = (group >= 0) & mine["_own"].isna().to_numpy()  # a missing key is no group
    seats, group = seats.loc[take], group[take].astype(np.int64)
    if len(seats) == 0:
        return seats.iloc[:0]
    by = pd.Series(group, index=seats.index)
    firsts = np.unique(group, return_index=True)[1]
    plans = seats.groupby(by, sort=True)
    n_perf = plans[OL.performance_id].nunique().to_numpy()
    per_perf = seats.groupby([by, seats[OL.performance_id]], sort=True).size()
    seats_n = per_perf.groupby(level=0).max().to_numpy()
    paid = plans[OL.paid_amount].sum().to_numpy()
    listed = plans[OL.list_price].sum(min_count=1).to_numpy()
    if repeated:  # every event row repeats the whole price of its seat's plan
        paid, listed = paid / n_perf, listed / n_perf
    when = plans[OL.purchase_time].min().to_numpy()
    # groups numbered in order of first appearance: sorted group i starts at firsts[i]
    line = seats.iloc[firsts].copy()
    line[OL.line_id] = line[OL.order_id] + ":plan:" + line["plan_id"]
    line[OL.purchase_time] = when
    line[OL.item_type] = "subscription"
    line[OL.performance_id] = pd.NA
    line[OL.price_band] = pd.NA
    line[OL.ticket_type] = line["plan_id"].astype(str)
    line[OL.quantity] = seats_n
    line[OL.paid_amount] = paid
    line[OL.list_price] = listed
    line[OL.discount] = np.nan
    line[OL.is_comp] = False
    if "_reverse_as" in line.columns:
        line["_reverse_as"] = pd.NA  # the plan line itself is never reversed in place
    return line


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
    FolderBusy
        Another intake of the same organisation is running (when ``write``).
    """
    cfg = org if isinstance(org, OrgConfig) else load_org(org)
    if not write:
        return _run_intake(cfg, today, write=False)
    with folder_lock(cfg.canonical_dir):  # a second intake of this folder stops, plainly
        return _run_intake(cfg, today, write=True)


def _run_intake(cfg: OrgConfig, today: dt.date | str | None, *, write: bool) -> IntakeResult:
    """The work of :func:`run_intake` (which holds the organisation's lock when writing)."""
    today_ts = pd.Timestamp(today) if today is not None else pd.Timestamp(dt.date.today())
    sources = presets.expand_sources(cfg.sources, cfg.settings.get("preset"), cfg.org_dir)
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
    # per table: the distinct source customer ids (in order of first occurrence) and
    # each row's position among them
    source_ids: dict[str, tuple[np.ndarray, pd.Series]] = {}
    labels = _ledger_labels(sources)
    added: dict[str, int] = {}
    skipped: dict[str, int] = {}
    # per export file, the tables reading it and the rows each one's filter leaves out
    # (None: no filter, every row taken)
    by_file: dict[str, list[tuple[str, tuple[np.ndarray, str, pd.Series] | None]]] = {}
    notes: list[str] = []  # what the console and intake.json say besides the counts

    def opened(table: str) -> tuple[_Source, RawFile, pd.DataFrame]:
        src = _Source(cfg, table, sources[table], ledger, label=labels.get(table))
        return src, *src.read()

    order = [t for t in INTAKE_ORDER if t in sources]
    # Exports are read ahead while earlier ones are processed (Arrow parses CSV outside
    # the GIL); a problem with a file is still reported when its turn comes.
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = deque(reader.submit(opened, t) for t in order[:_READ_AHEAD])
        try:
            for i, table in enumerate(order):
                src, raw, frame = ahead.popleft().result()
                if i + _READ_AHEAD < len(order):
                    ahead.append(reader.submit(opened, order[i + _READ_AHEAD]))
                _intake_table(src, raw, frame, table, frames, source_ids, today_ts)
                if src.added:
                    added[src.label] = src.added
                by_file.setdefault(src.file, []).append((src.label, src.left))
                notes += src.notes
                del src, raw, frame  # the source text of this table is not needed any more
        finally:
            for job in ahead:  # after a problem, exports not yet being read are left
                job.cancel()

    skipped = _settle_filtered_rows(ledger, by_file)
    ledger.check()
    notes += _unknown_word_notes(ledger)
    tables, stubs = _finish(cfg, frames, salt, source_ids, write=write, labels=labels, notes=notes)
    dups = possible_duplicates(tables["customers"])
    if write:
        _write_ledger(cfg, ledger, stubs, added, skipped, notes)
        dups.to_csv(cfg.canonical_dir / "possible_duplicates.csv", index=False)
    return IntakeResult(
        config=cfg,
        tables=tables,
        ledger=ledger,
        stub_customers=stubs,
        added=added,
        skipped=skipped,
        possible_duplicates=dups,
        notes=notes,
    )


def _unknown_word_notes(ledger: Ledger) -> list[str]:
    """One line per word org.yaml does not map: how many rows it dropped, the line to add."""
    out = []
    for e in ledger.files.values():
        frames = [d[d["reason"] == "unknown_value"] for d in e.dropped]
        frames = [d for d in frames if len(d)]
        if not frames:
            continue
        words = pd.concat(frames).groupby(["column", "message"], sort=True).size()
        for (column, message), n in words.items():
            rows = "1 row" if n == 1 else f"{n:,} rows"
            out.append(f"{e.file}: {rows} dropped, column '{column}': {message}.")
    return out


def _customer_id_hint(sales: pd.Series, customers: pd.Series) -> str:
    """The likely reason why sales' customer ids do not match the customers export."""
    sales, customers = sales.astype("string"), customers.astype("string")
    sci = r"(?i)^\d(?:\.\d+)?e\+?\d+$"
    if sales.str.match(sci).fillna(False).any() or customers.str.match(sci).fillna(False).any():
        return (
            "some ids are written like 3.84288E+05: Excel shows long numbers that way; "
            "format the id column as text (or as a number without decimals) before saving"
        )
    zeros = r"^0+\d"
    if sales.str.match(zeros).fillna(False).any() != customers.str.match(zeros).fillna(False).any():
        return (
            "one export writes ids with leading zeros (00123) and the other without (123): "
            "export both with the same id format (Excel drops leading zeros from numbers)"
        )
    return (
        "the two exports may hold different kinds of id (e.g. an account number in one "
        "and a contact number in the other): check which column org.yaml maps to "
        "customer_id in each"
    )


def _intake_table(
    src: _Source,
    raw: RawFile,
    frame: pd.DataFrame,
    table: str,
    frames: dict[str, pd.DataFrame],
    source_ids: dict[str, tuple[np.ndarray, pd.Series]],
    today: pd.Timestamp,
) -> None:
    """Parse one export's rows and apply its table's rules; the result goes in ``frames``.

    The distinct source customer ids of the table (in order of first occurrence) and each
    row's position among them go in ``source_ids``.
    """
    if table == "order_lines" and len(frame) == 0:
        raise IntakeError(
            src.label,
            "the sales export has a header but no data rows",
            "export the sales report again for the whole period you want to analyse.",
            row=raw.header_row,
        )
    src.ledger.open_file(src.label, table, len(frame))
    frame = src.parse(frame)
    if table == "order_lines":
        frame = _order_line_rules(src, frame, frames.get("performances"), today)
    else:
        frame = _table_rules(src, table, frame, frames)
    if "customer_id" in frame.columns and table != "attendance":
        codes, uniques = src.factorize(frame["customer_id"])
        source_ids[table] = (codes, pd.Series(uniques))
    frames[table] = frame


def _settle_filtered_rows(
    ledger: Ledger,
    by_file: Mapping[str, list[tuple[str, tuple[np.ndarray, str, pd.Series] | None]]],
) -> dict[str, int]:
    """Account for the rows that tables' filters leave out of their export.

    A row one table's filter leaves out may be taken by another table reading the same
    file (a combined sales-and-donations export): that is counted, per filtered table, in
    the returned ``rows left to other tables``. A row that no table reading the file
    takes (a lost opportunity in a CRM export, say) is dropped in the ledger with the
    reason ``filtered_out``, under the first table that reads the file, so every row of
    every export is kept or dropped with a reason.
    """
    left_to_others: dict[str, int] = {}
    for readings in by_file.values():
        filtered = [(label, left) for label, left in readings if left is not None]
        if not filtered:
            continue
        nobody = filtered[0][1][0]
        if len(filtered) < len(readings):  # a table without a filter takes every row
            nobody = nobody[:0]
        for _, (rows, _, _) in filtered[1:]:
            nobody = np.intersect1d(nobody, rows, assume_unique=True)
        for label, (rows, _, _) in filtered:
            left_to_others[label] = len(rows) - len(nobody)
        if len(nobody):  # then every table reading the file has a filter
            label, (rows, column, values) = filtered[0]
            at = np.flatnonzero(np.isin(rows, nobody))
            ledger.files[label].rows_read += len(at)
            ledger.drop(
                label,
                pd.Series(rows[at]),
                "filtered_out",
                column=column,
                values=values.iloc[at].reset_index(drop=True),
            )
    return left_to_others


def _ledger_labels(sources: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Ledger name of each source: its file, or ``file [table]`` when tables share a file."""
    files: dict[str, str] = {}
    for table, spec in sources.items():
        try:
            files[table] = str(presets.resolve(table, spec).get("file"))
        except PlaybookError:
            continue  # reported when the source itself is read
    shared = {f for f in files.values() if list(files.values()).count(f) > 1}
    return {t: (f"{f} [{t}]" if f in shared else f) for t, f in files.items()}


def possible_duplicates(customers: pd.DataFrame) -> pd.DataFrame:
    """Customers who may be one person under two ids in the same household.

    Both records are kept (merging people wrongly is worse than counting one twice);
    this lists them for the box office to check at source. Two ids count as a possible
    duplicate when they share household, postcode district, birth month and birth day,
    all present. Only pseudonymous ids appear.

    Returns
    -------
    pandas.DataFrame
        ``household_id``, ``customer_id``, ``group`` (one number per suspected person)
        and ``reason``.
    """
    keys = [CU.household_id, CU.postcode_district, CU.birth_month, CU.birth_day]
    cols = {
        "household_id": pd.Series([], dtype="string"),
        "customer_id": pd.Series([], dtype="string"),
        "group": pd.Series([], dtype="int64"),
        "reason": pd.Series([], dtype="string"),
    }
    if customers.empty or any(k not in customers.columns for k in keys):
        return pd.DataFrame(cols)
    known = customers.dropna(subset=keys)
    known = known[known.duplicated(subset=keys, keep=False)]
    if known.empty:
        return pd.DataFrame(cols)
    known = known.sort_values([*keys, CU.customer_id], kind="stable")
    group = known.groupby(keys, sort=False).ngroup() + 1
    return pd.DataFrame(
        {
            "household_id": known[CU.household_id].astype("string").to_numpy(),
            "customer_id": known[CU.customer_id].astype("string").to_numpy(),
            "group": group.astype("int64").to_numpy(),
            "reason": "same household, postcode district and birthday",
        }
    ).astype({"reason": "string"})


# on the same day, the more restrictive consent wins
_CONSENT_RANK = {"granted": 0, "unknown": 1, "withdrawn": 2}


def _latest_consents(src: _Source, frame: pd.DataFrame) -> pd.DataFrame:
    """Keep each customer's latest consent per channel; older records are superseded.

    A consent export is often a history (opted in in 2019, opted out last week): the row
    with the latest ``consent_date`` is the one in force, and on the same day (or with no
    dates) the more restrictive status wins, then the later row. To be safe, an opt-out
    without a date counts as the latest record (it beats every dated one: nobody is
    contacted on an opt-in that may be older than the opt-out), while an opt-in or
    'not asked' without a date counts as the oldest (any dated record beats it). Exact
    repeats are left to :meth:`_Source.dedupe` (``duplicate_line``).
    """
    key = ["customer_id", "channel"]
    if not all(k in frame.columns for k in key) or len(frame) < 2:
        return frame
    cols = [c for c in frame.columns if c != ROW]
    distinct = ~frame.duplicated(subset=cols, keep="first")
    rows = frame.loc[distinct, key]
    shared = rows.duplicated(subset=key, keep=False)
    if not shared.any():
        return frame
    rows = rows.loc[shared]
    when = (
        frame.loc[rows.index, "consent_date"]
        if "consent_date" in frame.columns
        else pd.Series(pd.NaT, index=rows.index, dtype="datetime64[ns]")
    )
    rank = frame.loc[rows.index, "status"].astype("string").map(_CONSENT_RANK).fillna(1)
    rank = rank.to_numpy(dtype=np.int64)
    when = when.astype("datetime64[ns]")
    when_given = when.index[when.notna().to_numpy()]
    # undated: an opt-out is the latest record, anything else the oldest
    undated_out = (when.isna().to_numpy() & (rank == _CONSENT_RANK["withdrawn"])).astype(bool)
    when = when.fillna(pd.Timestamp.min).to_numpy(copy=True)
    when[undated_out] = pd.Timestamp.max.to_datetime64()
    order = rows.assign(_when=when, _rank=rank, _pos=np.arange(len(rows))).sort_values(
        [*key, "_when", "_rank", "_pos"], kind="stable"
    )
    older = order.duplicated(subset=key, keep="last")
    superseded = pd.Series(False, index=frame.index)
    superseded.loc[order.index[older.to_numpy()]] = True
    column = "consent_date" if "consent_date" in frame.columns else "status"
    message = None
    if undated_out.any():  # say why a dated record lost to one without a date
        kept_undated = order["_when"].to_numpy() == pd.Timestamp.max.to_datetime64()
        winner = (
            pd.Series(kept_undated, index=order.index)
            .groupby([order[k] for k in key], sort=False)
            .transform("last")
        )
        by_undated = superseded.copy()
        dated = order.index.isin(when_given)
        by_undated.loc[order.index] = older.to_numpy() & winner.to_numpy(dtype=bool) & dated
        message = pd.Series(REASONS["superseded_consent"], index=frame.index, dtype="string")
        message[by_undated] = (
            "an opt-out without a date for the same customer and channel replaces this "
            "record (to be safe, an opt-out without a date counts as the latest)"
        )
    return src.drop(frame, superseded, "superseded_consent", column, message)


def _table_rules(
    src: _Source, table: str, frame: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    frame = src.defaults(frame)
    frame = src.scale(frame)
    if table == "customers":
        frame = _customer_fields(frame)
    if table == "attendance" and "order_lines" in frames:
        frame = _attendance_links(frame, frames["order_lines"])
    if table == "attendance" and len(frames.get("performances", [])):
        frame = _scan_at_start(frame, frames["performances"])
    frame = conform_partial(frame, table)
    frame = src.require(frame)
    if table == "consents":
        frame = _latest_consents(src, frame)
    frame = src.dedupe(frame, TABLES[table].key)
    if table == "performances" and "productions" in frames and len(frames["productions"]):
        unknown = ~parsing.isin(frame["production_id"], frames["productions"]["production_id"])
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
    pos = parsing.positions(frame["line_id"], order_lines["line_id"])  # first match
    for col in ("customer_id", "performance_id"):
        linked = _take(order_lines[col], pos, frame)  # as .map() on the deduplicated lines
        if col in frame.columns:
            frame[col] = frame[col].fillna(linked)
        else:
            frame[col] = linked
    return frame


def _scan_at_start(frame: pd.DataFrame, performances: pd.DataFrame) -> pd.DataFrame:
    """A scan without a time (e.g. a checked-in flag) is timed at the performance start."""
    if "performance_id" not in frame.columns:
        return frame
    pos = parsing.positions(frame["performance_id"], performances["performance_id"])
    at = _take(performances["start_time"], pos, frame)
    frame["scanned_at"] = frame["scanned_at"].fillna(at) if "scanned_at" in frame else at
    return frame


def _sort_rows(
    frame: pd.DataFrame,
    key: list[str],
    coded: Mapping[str, tuple[Any, ...]] | None = None,
    stand_in: Collection[str] = (),
) -> pd.DataFrame:
    """``frame.sort_values(key, kind="stable").reset_index(drop=True)``, faster.

    See :func:`_sort_order` for how the order is found and what ``coded`` and
    ``stand_in`` hold.
    """
    order, coded = _sort_order(frame, key, coded, stand_in)
    return _reordered({c: frame[c] for c in frame.columns}, order, coded, stand_in)


def _sort_order(
    frame: pd.DataFrame,
    key: list[str],
    coded: Mapping[str, tuple[Any, ...]] | None = None,
    stand_in: Collection[str] = (),
) -> tuple[np.ndarray | None, dict[str, tuple[Any, ...]]]:
    """Positions of the rows in ``frame.sort_values(key, kind="stable")`` (None: as they are).

    Nothing is moved when the first key already increases strictly (exports usually
    come in id order), and a first key whose values all differ is sorted on its own.
    Otherwise each key becomes the rank of its value among the distinct values (text
    compared by its bytes, as pandas compares Arrow strings; missing values last) and
    the ranks are sorted together, stably: what pandas does, with the distinct values
    sorted by Arrow. Other key types are left to pandas. ``coded`` may hold, per column,
    its ``pandas.factorize`` (codes, uniques) when already known, optionally followed by
    the sort order of the uniques; it is returned with the codes found on the way. The
    columns named in ``stand_in`` hold stand-ins: their values are those of ``coded``.
    """
    coded = dict(coded or {})
    plain = all(
        isinstance(frame[k].dtype, pd.StringDtype)
        or pd.api.types.is_datetime64_dtype(frame[k].dtype)
        or (isinstance(frame[k].dtype, np.dtype) and frame[k].dtype.kind in "iuf")
        for k in key
    )
    if len(frame) < 2:
        return None, coded
    if not plain:
        keys = _filled(frame[key], coded, [k for k in stand_in if k in key])
        return keys.reset_index(drop=True).sort_values(key, kind="stable").index.to_numpy(), coded
    if key[0] in stand_in:
        first, distinct = _ranks(*coded[key[0]])
        rising = (coded[key[0]][0] >= 0).all() and (first[1:] > first[:-1]).all()
    else:
        rising = _strictly_increasing(frame[key[0]])
    if rising:
        return None, coded
    if key[0] not in coded:
        order = _distinct_order(frame[key[0]])
        if order is not None:  # every first key differs: it alone sets the order
            return order, coded
        coded[key[0]] = pd.factorize(frame[key[0]])
    if key[0] not in stand_in:
        first, distinct = _ranks(*coded[key[0]])
    if distinct == len(frame):  # every first key differs: it alone sets the order
        order = np.empty(len(frame), dtype=np.intp)
        order[first] = np.arange(len(frame))
        return order, coded
    ranks, spans = [first], [distinct]
    for k in key[1:]:
        rank = None if k in stand_in else _rising_ranks(frame[k])
        if rank is None:
            if k not in coded:
                coded[k] = pd.factorize(frame[k])
            rank = _ranks(*coded[k])
        ranks.append(rank[0])
        spans.append(rank[1])
    return _lexsort_ranks(ranks, spans), coded


def _filled(
    frame: pd.DataFrame, coded: Mapping[str, tuple[Any, ...]], stand_in: Collection[str]
) -> pd.DataFrame:
    """``frame`` with the values of its ``stand_in`` columns written from ``coded``."""
    if not stand_in:
        return frame
    values = {
        k: pd.api.extensions.take(coded[k][1].array, coded[k][0], allow_fill=True) for k in stand_in
    }
    return frame.assign(**values)


def _rising_ranks(s: pd.Series) -> tuple[np.ndarray, int] | None:
    """Dense ranks of dates or numbers already in order, without missing values (else None).

    Exports are often written in time order: then the ranks need no sorting.
    """
    dtype = s.dtype
    if not (pd.api.types.is_datetime64_dtype(dtype) or (isinstance(dtype, np.dtype))):
        return None
    if dtype.kind not in "iufM" or s.isna().any():
        return None
    v = s.to_numpy()
    if dtype.kind == "M":
        v = v.view(np.int64)
    if not (v[1:] >= v[:-1]).all():
        return None
    rank = np.zeros(len(v), dtype=np.int64)
    np.cumsum(v[1:] != v[:-1], out=rank[1:])
    return rank, int(rank[-1]) + 1 if len(rank) else 0


def _lexsort_ranks(ranks: list[np.ndarray], spans: list[int]) -> np.ndarray:
    """``numpy.lexsort(ranks[::-1])``: rows in order of the first ranks, then the next ...

    ``ranks[i]`` holds whole numbers from 0 to ``spans[i] - 1``. Starting from the last
    keys, as many keys as fit beside the row number are combined into one number per
    row, which is sorted with the row number in its low bits: a plain sort of numbers
    (fast in numpy) that keeps equal keys in row order. Each pass is stable, so the
    passes add up to the order of all keys.
    """
    n = len(ranks[0])
    row_bits = max(n - 1, 1).bit_length()
    if any((max(s, 1) - 1).bit_length() + row_bits > 63 for s in spans):
        return np.lexsort(ranks[::-1])
    order: np.ndarray | None = None  # None: rows in their own order
    combined, span = np.zeros(n, dtype=np.int64), 1
    for rank, width in list(zip(ranks, spans, strict=True))[::-1]:
        width = max(width, 1)
        if (span * width - 1).bit_length() + row_bits > 63:  # sort by the keys so far
            order = _sorted_rows(combined, order, row_bits)
            combined, span = np.zeros(n, dtype=np.int64), 1
        combined += (rank if order is None else rank[order]).astype(np.int64) * span
        span *= width
    return _sorted_rows(combined, order, row_bits)


def _sorted_rows(combined: np.ndarray, order: np.ndarray | None, row_bits: int) -> np.ndarray:
    """``order`` (rows in their own order when None) stably sorted by ``combined``."""
    packed = np.sort((combined << row_bits) | np.arange(len(combined), dtype=np.int64))
    at = packed & ((1 << row_bits) - 1)
    return at if order is None else order[at]


def _distinct_order(s: pd.Series) -> np.ndarray | None:
    """Stable sort order of Arrow text whose values all differ (None when some repeat).

    Tried only when the first values all differ, so a key with repeats is rarely sorted
    in vain; the sorted values are then checked for neighbours that are equal.
    """
    arr = parsing._arrow_strings(s)
    if arr is None or arr.null_count > 1:
        return None
    head = arr.slice(0, _SMALL)
    if pc.count_distinct(head, mode="all").as_py() != len(head):
        return None
    numbers = parsing.decimal_ids(arr) if arr.null_count == 0 else None
    widths = pc.min_max(pc.binary_length(arr)).as_py() if numbers is not None else {}
    if numbers is not None and widths["min"] == widths["max"]:  # sorts like the numbers
        order = _lexsort_ranks([numbers - numbers.min()], [int(np.ptp(numbers)) + 1])
        ordered = numbers[order]
        return None if (ordered[1:] == ordered[:-1]).any() else order
    order = pc.array_sort_indices(arr)
    ordered = arr.take(order)
    if pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py():
        return None
    return order.to_numpy()


def _sorted_key_unique(frame: pd.DataFrame, key: list[str]) -> bool:
    """Whether no two rows share all ``key`` values, in rows sorted by ``key``.

    Missing equals missing, as in ``DataFrame.duplicated``. Rows that share their key
    are neighbours once sorted, so comparing each row with the one before is enough.
    False also when a key is not Arrow text (then pandera checks it).
    """
    same = np.ones(max(len(frame) - 1, 0), dtype=bool)
    for k in key:
        arr = parsing._arrow_strings(frame[k]) if k in frame.columns else None
        if arr is None:
            return False
        if not same.any():
            break
        after, before = arr[1:], arr[:-1]
        both_missing = pc.and_(pc.is_null(after), pc.is_null(before))
        equal = pc.or_kleene(pc.equal(after, before), both_missing).fill_null(False)
        same &= equal.to_numpy(zero_copy_only=False).astype(bool, copy=False)
    return not same.any()


def _reordered(
    columns: dict[str, pd.Series],
    order: np.ndarray | None,
    coded: Mapping[str, tuple[Any, ...]],
    stand_in: Collection[str] = (),
) -> pd.DataFrame:
    """The table of ``columns`` with its rows at positions ``order`` (None: as they are).

    ``columns`` is emptied as the table is built, so each old column can be freed as
    soon as its new one is made (only one copy of the table plus one column in memory,
    when nothing else holds the old columns). Text columns with many repeats are rebuilt
    from their distinct values (a gather from a small array), not moved value by value:
    columns whose codes are known, and columns whose first values repeat a lot (worth
    finding their codes). ``stand_in`` columns are always written from their codes
    (see :func:`_sort_order`).
    """
    names = list(columns)
    coded = dict(coded)
    n = len(columns[names[0]]) if names else 0
    if order is not None and n >= _SMALL:
        for k in names:
            arr = parsing._arrow_strings(columns[k])
            if k not in coded and arr is not None:
                if pc.count_distinct(arr.slice(0, _SMALL), mode="all").as_py() <= _SMALL // 10:
                    coded[k] = pd.factorize(columns[k])
    rebuilt = {
        k
        for k, (_, uniques, *_) in coded.items()
        if k in stand_in
        or (
            order is not None
            and k in columns
            and isinstance(columns[k].dtype, pd.StringDtype)
            and len(uniques) < n // 2
        )
    }
    out: dict[str, pd.Series] = {}
    for k in names:
        column = columns.pop(k)
        if k in rebuilt:
            codes, uniques = coded[k][:2]
            values = pd.api.extensions.take(
                uniques.array, codes if order is None else codes[order], allow_fill=True
            )
            out[k] = pd.Series(values, name=k)
        elif order is None:
            out[k] = column.reset_index(drop=True)
        else:
            out[k] = column.take(order).reset_index(drop=True)
        del column
    return pd.DataFrame(out)


def _strictly_increasing(s: pd.Series) -> bool:
    """Whether every value is present and larger than the one before."""
    arr = parsing._arrow_strings(s)
    if arr is not None:
        if arr.null_count:
            return False
        return bool(pc.all(pc.less(arr[:-1], arr[1:])).as_py())
    if s.isna().any():
        return False
    v = s.to_numpy()
    return bool((v[1:] > v[:-1]).all())


def _ranks(
    codes: np.ndarray, uniques: pd.Index, order: np.ndarray | None = None
) -> tuple[np.ndarray, int]:
    """Dense rank of each value in sort order (missing values last), and how many ranks.

    ``codes, uniques`` is the ``pandas.factorize`` of the values; ``order``, the sort
    order of the uniques, when it is already known.
    """
    if order is None:
        arr = parsing._arrow_strings(uniques)
        if arr is not None:
            order = pc.array_sort_indices(arr).to_numpy()
        else:
            order = np.argsort(np.asarray(uniques), kind="stable")
    rank = np.empty(len(uniques) + 1, dtype=np.int64)
    rank[order] = np.arange(len(uniques))
    rank[-1] = len(uniques)  # code -1 (missing) takes the last rank
    return rank[codes], len(uniques) + int((codes < 0).any())


def _take(values: pd.Series, pos: np.ndarray, like: pd.DataFrame) -> pd.Series:
    """``values`` at positions ``pos`` (missing where -1), indexed like ``like``.

    What ``Series.map`` does with a lookup series, once the positions are known.
    """
    taken = pd.api.extensions.take(values.array, pos, allow_fill=True)
    return pd.Series(taken, index=like.index, name=values.name)


def _finish(
    cfg: OrgConfig,
    frames: dict[str, pd.DataFrame],
    salt: bytes,
    source_ids: Mapping[str, tuple[np.ndarray, pd.Series]],
    *,
    write: bool,
    labels: Mapping[str, str] | None = None,
    notes: list[str] | None = None,
) -> tuple[Tables, int]:
    """Pseudonymise ids, add stub customers, validate with pandera, sort and write.

    Takes the tables out of ``frames`` one by one, so each is freed once its canonical
    copy is made (a million customers' tables need not sit in memory twice).
    """
    # Every distinct source id once (in order of first appearance) and, per table, where
    # its distinct ids are among them: one factorize instead of a lookup per table.
    joined = pd.concat([u for _, u in source_ids.values()], ignore_index=True)
    where, all_ids = parsing.factorize(joined)
    found_in: dict[str, np.ndarray] = {}
    start = 0
    for table, (_, distinct) in source_ids.items():
        found_in[table] = where[start : start + len(distinct)]
        start += len(distinct)
    hashed, by_pseudonym = _pseudonyms(pa.array(all_ids, pa.large_string()), salt, "C")
    id_map = pd.DataFrame(
        {
            "customer_id": pd.Series(pd.arrays.ArrowStringArray(hashed)).astype("str").array,
            "source_customer_id": pd.Series(all_ids).astype("str").array,
        }
    )
    rank = np.empty(len(hashed), dtype=np.intp)  # of each pseudonym among all of them
    rank[by_pseudonym] = np.arange(len(hashed))
    pseudonyms = id_map["customer_id"]
    out: dict[str, pd.DataFrame] = {}
    # Per table read with customer ids: its pseudonyms factorized (codes, distinct ones,
    # their sort order). Its customer_id column keeps the source ids as stand-ins until
    # the rows are sorted; the pseudonyms are then written straight in sorted order.
    coded: dict[str, tuple[np.ndarray, pd.Index, np.ndarray]] = {}
    stand_in: set[str] = set()
    for table in list(frames):
        frame = frames.pop(table).drop(columns=[ROW])
        if "customer_id" in frame.columns:
            if table in source_ids:  # each distinct id was looked up once
                codes, _ = source_ids[table]
                found = found_in[table]
                distinct = pd.arrays.ArrowStringArray(pa.chunked_array([hashed.take(found)]))
                coded[table] = (codes, pd.Index(distinct), np.argsort(rank[found]))
                stand_in.add(table)
            else:
                pos = parsing.positions(frame["customer_id"], id_map["source_customer_id"])
                frame["customer_id"] = _take(pseudonyms, pos, frame).astype("string")
        if table == "customers" and "household_id" in frame.columns:
            frame["household_id"] = pseudonymise(frame["household_id"], salt, prefix="H")
        out[table] = frame

    def pseudonymised(table: str) -> pd.DataFrame:
        """The table with its pseudonyms written (rows in their own order)."""
        if table in stand_in:
            stand_in.discard(table)
            out[table] = _filled(out[table], {"customer_id": coded[table]}, ["customer_id"])
        return out[table]

    stubs = 0
    if "customers" in out and "customers" not in source_ids:
        known = out["customers"]["customer_id"]
        missing = pd.Index(id_map["customer_id"]).difference(pd.Index(known.dropna()))
    else:  # the pseudonyms of ids no customer row has, in sorted order
        listed = np.zeros(len(all_ids), dtype=bool)
        listed[found_in.get("customers", np.array([], dtype=np.intp))] = True
        missing = pd.Index(pseudonyms.array.take(by_pseudonym[~listed[by_pseudonym]]))
    if len(missing):
        _check_stubs(listed, found_in, all_ids, source_ids, labels or {}, notes)
        ol = pseudonymised("order_lines")
        first = ol.groupby("customer_id")["purchase_time"].min()
        stub = pd.DataFrame(
            {"customer_id": missing.to_numpy(), "created_at": first.reindex(missing).to_numpy()}
        )
        base = pseudonymised("customers") if "customers" in out else None
        out["customers"] = pd.concat([base, stub], ignore_index=True) if base is not None else stub
        stubs = len(missing)

    tables: dict[str, pd.DataFrame] = {}
    folder = cfg.canonical_dir
    # Each table is written (under a temporary name) as soon as it is ready, while the
    # next one is prepared: Arrow writes Parquet outside the GIL.
    written: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        jobs = []
        try:
            for table in list(out):
                canon = _canonical(table, out.pop(table), coded.pop(table, None), table in stand_in)
                tables[table] = canon
                if write:
                    folder.mkdir(parents=True, exist_ok=True)
                    written[table] = partial_path(folder / f"{table}.parquet")
                    jobs.append(pool.submit(canon.to_parquet, written[table], index=False))
            for job in jobs:
                job.result()
        except BaseException:
            for job in jobs:
                job.cancel()
            wait(jobs)
            for path in written.values():
                path.unlink(missing_ok=True)
            raise
    if write:
        for old in folder.glob("*.parquet"):
            old.unlink()
        for table, path in written.items():
            path.rename(folder / f"{table}.parquet")
        cfg.private_dir.mkdir(parents=True, exist_ok=True)
        id_map.take(by_pseudonym).reset_index(drop=True).to_parquet(
            cfg.private_dir / ID_MAP_FILE, index=False
        )
    available = frozenset(t for t, f in tables.items() if len(f))
    full = {name: tables.get(name) for name in TABLES}
    from playbook.schema import empty_table

    full = {k: (v if v is not None else empty_table(k)) for k, v in full.items()}
    return Tables(frames=full, available=available), stubs


_STUB_CHECK_MIN = 20  # fewer sales customers than this: too few to judge


def _check_stubs(
    listed: np.ndarray,
    found_in: Mapping[str, np.ndarray],
    all_ids: pd.Index,
    source_ids: Mapping[str, tuple[np.ndarray, pd.Series]],
    labels: Mapping[str, str],
    notes: list[str] | None,
) -> None:
    """Say how many sales customers no customer row lists; stop when it is most of them.

    ``listed`` marks, among every distinct source id (``all_ids``), those of the
    customers export. When a customers export is read and more than half the distinct
    customer ids of the sales match none of its rows, the ids are surely written
    differently in the two files (leading zeros, Excel's 3.84288E+05), and every sale
    would go to a customer without details: intake stops, with an example from each file.
    """
    sales = found_in.get("order_lines")
    if sales is None or not len(sales):
        return
    unmatched = ~listed[sales]
    n_un = int(unmatched.sum())
    if n_un == 0:
        return
    sales_file = labels.get("order_lines", "the sales export")
    if "customers" in source_ids:
        cust_file = labels.get("customers", "the customers export")
        ids = all_ids[sales[unmatched]]
        cust = source_ids["customers"][1].dropna()
        hint = _customer_id_hint(pd.Series(ids[:10_000]), cust.iloc[:10_000])
        if n_un * 2 > len(sales) >= _STUB_CHECK_MIN and len(cust):
            raise IntakeError(
                sales_file,
                f"{n_un:,} of the {len(sales):,} customer ids in the sales are not in "
                f"'{cust_file}' (e.g. sales '{ids[0]}', customers '{cust.iloc[0]}'), so "
                "almost every sale would go to a customer without details. Likely cause: " + hint,
                "export both files again with the ids written the same way, or check "
                "sources.order_lines.columns.customer_id and "
                "sources.customers.columns.customer_id in org.yaml.",
                column="customer_id",
            )
        where = f"not in '{cust_file}'"
    else:
        hint, where = "", "in no customers export (none is configured in org.yaml)"
    if notes is not None:
        notes.append(
            f"{sales_file}: customers who bought but are {where}: {n_un:,}. Intake added "
            "them as customers without details (only their first purchase date), which leaves them "
            "out of birthday and postcode analyses"
            + (f". If that is unexpected: {hint}." if hint else ".")
        )


def _canonical(
    table: str, frame: pd.DataFrame, coded: tuple[Any, ...] | None, stand_in: bool = False
) -> pd.DataFrame:
    """One table in canonical form: columns and types, rows in key order, checked by pandera.

    ``coded`` is the ``pandas.factorize`` of its ``customer_id`` column and the sort
    order of the uniques, when known; with ``stand_in`` the column itself holds
    stand-ins and ``coded`` gives its values (see :func:`_sort_order`).
    """
    canon = conform(frame, table)
    del frame
    key = list(TABLES[table].key) or [c for c in canon.columns][:3]
    known = {"customer_id": coded} if coded is not None and len(coded[0]) == len(canon) else {}
    if stand_in and not known:  # pragma: no cover - the rows changed after the ids were coded
        raise PlaybookError(
            f"Intake lost track of the customer ids of '{table}'; please report it."
        )
    stand_ins = ["customer_id"] if stand_in else []
    order, known = _sort_order(canon, key, known, stand_ins)
    columns = {c: canon[c] for c in canon.columns}
    del canon  # each column is freed once its sorted copy is made
    canon = _reordered(columns, order, known, stand_ins)
    schema = pandera_schema(table)
    if schema.unique and _sorted_key_unique(canon, schema.unique):
        schema.unique = None  # already checked, without hashing every key again
    try:
        return schema.validate(canon, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases.head(5)
        raise PlaybookError(
            f"After intake, table '{table}' still breaks the data model:\n"
            f"{cases.to_string()}\nWhat to do: check the mapping of these columns in "
            "org.yaml; this is likely a kit bug if the mapping is right: please report it."
        ) from None


def _write_ledger(
    cfg: OrgConfig,
    ledger: Ledger,
    stubs: int,
    added: Mapping[str, int] | None = None,
    skipped: Mapping[str, int] | None = None,
    notes: list[str] | None = None,
) -> None:
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
        "rows_added": dict(added or {}),
        "rows_left_to_other_tables": dict(skipped or {}),
    }
    if notes:
        info["notes"] = list(notes)
    (folder / "intake.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def read_ledger(org: str | Path | OrgConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger summary and the dropped rows written by the last intake."""
    cfg = org if isinstance(org, OrgConfig) else load_org(org)
    folder = cfg.canonical_dir
    summary = pd.read_csv(folder / "ledger_summary.csv")
    dropped = pd.read_parquet(folder / "ledger_dropped.parquet")
    return summary, dropped
