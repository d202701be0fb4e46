"""Reading export files: CSV (any common encoding and separator), Excel and Parquet.

The reader finds the header row itself (Excel exports often put a title block above
it), keeps every value as text so nothing is guessed wrongly, and numbers every row as
a spreadsheet would show it, so messages and the ledger can point at the exact row.
"""

from __future__ import annotations

import codecs
import csv
import mmap
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playbook.errors import IntakeError

ROW = "_row"  # spreadsheet row number of each record (header row is its own number)
_DELIMITERS = [",", ";", "\t", "|"]
_HEADER_SCAN = 30
_BLANK_LINE = re.compile(rb"\n\r?\n")  # an empty line inside the file


@dataclass(frozen=True)
class RawFile:
    """The records of one export, as text, with their spreadsheet row numbers."""

    label: str
    frame: pd.DataFrame  # source columns + ROW
    header_row: int
    encoding: str | None = None
    delimiter: str | None = None


def detect_encoding(data: bytes | mmap.mmap) -> str:
    """``utf-8-sig`` for a BOM, ``utf-8`` when the bytes decode, else ``cp1252`` (or latin-1)."""
    head = data[:4]
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _valid_utf8(data):
        return "utf-8"
    if _decodes(data, "cp1252"):
        return "cp1252"
    return "latin-1"


def _valid_utf8(data: bytes | mmap.mmap) -> bool:
    """Whether ``data.decode("utf-8")`` succeeds, checked by Arrow (no Python text made).

    Arrow's check is as strict as Python's decoder (no overlong forms, surrogates or
    code points above U+10FFFF) and many times faster.
    """
    buffer = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, buffer]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _has_blank_line(data: bytes | mmap.mmap) -> bool:
    """Whether an empty line is inside the file (``_BLANK_LINE``), searched by Arrow (RE2).

    The bytes are searched as one binary value, several times faster than Python's ``re``.
    """
    buffer = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int64))
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer])
    return bool(pc.match_substring_regex(whole, _BLANK_LINE.pattern.decode())[0].as_py())


def _decodes(data: bytes | mmap.mmap, encoding: str, chunk: int = 1 << 24) -> bool:
    """Whether ``data.decode(encoding)`` succeeds, checked piece by piece (little memory)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        for start in range(0, len(data), chunk):
            decoder.decode(data[start : start + chunk])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _norm(name: object) -> str:
    return " ".join(str(name).replace("\ufeff", "").split()).lower()


def sniff_delimiter(sample: str, expected: Iterable[str] = ()) -> str:
    """Guess the separator from the first lines, preferring one that splits out known headers."""
    lines = [ln for ln in sample.splitlines()[:_HEADER_SCAN] if ln.strip()]
    wanted = {_norm(e) for e in expected}
    best, best_score = ",", (-1, -1)
    for d in _DELIMITERS:
        rows = list(csv.reader(lines, delimiter=d))
        hits = max((len(wanted & {_norm(c) for c in r}) for r in rows), default=0)
        widths = [len(r) for r in rows]
        common = max(set(widths), key=widths.count) if widths else 1
        score = (hits, common if common > 1 else 0)
        if score > best_score:
            best, best_score = d, score
    return best


def find_header_row(rows: list[list[str]], expected: Iterable[str]) -> int | None:
    """Index of the first row that holds the most expected column names (None if none)."""
    wanted = {_norm(e) for e in expected}
    best, best_hits = None, 0
    for i, r in enumerate(rows[:_HEADER_SCAN]):
        hits = len(wanted & {_norm(c) for c in r})
        if hits > best_hits:
            best, best_hits = i, hits
    return best


def read_export(
    path: Path,
    label: str,
    expected_columns: Iterable[str],
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    header_row: int | None = None,
    sheet: str | int | None = None,
) -> RawFile:
    """Read one export file.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    label : str
        How messages name the file (relative to the organisation folder).
    expected_columns : iterable of str
        Source column names the mapping uses; used to find the header row and separator.
    delimiter, encoding, header_row, sheet
        Optional overrides from ``org.yaml`` (``header_row`` counts from 1).

    Raises
    ------
    IntakeError
        When the file is missing, empty, or has no recognisable header.
    """
    expected = list(expected_columns)
    if not path.exists():
        raise IntakeError(
            label,
            "the file does not exist",
            "check the 'file:' setting for this table in org.yaml, or copy the export there.",
        )
    if path.stat().st_size == 0:
        raise IntakeError(
            label,
            "the file is empty (0 bytes)",
            "export the report again from your ticketing system; the download may have failed.",
        )
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        return _read_excel(path, label, expected, header_row=header_row, sheet=sheet)
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
        frame.columns = [str(c) for c in frame.columns]
        frame[ROW] = range(2, len(frame) + 2)
        return RawFile(label, frame.reset_index(drop=True), header_row=1)
    return _read_csv(path, label, expected, delimiter, encoding, header_row)


def _read_csv(
    path: Path,
    label: str,
    expected: list[str],
    delimiter: str | None,
    encoding: str | None,
    header_row: int | None,
) -> RawFile:
    # The file is mapped, not copied: the parser reads it itself afterwards.
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        enc = encoding or detect_encoding(data)
        head = data[: 256 * 1024]
        blank_lines = _has_blank_line(data)
    try:
        text_head = head.decode(enc, errors="replace")
    except LookupError:
        raise IntakeError(
            label,
            f"the encoding '{enc}' is not known",
            "remove 'encoding:' or use utf-8 or cp1252.",
        ) from None
    if text_head.startswith("\ufeff"):
        text_head = text_head[1:]
    if not text_head.strip():
        raise IntakeError(
            label,
            "the file holds no rows (only blank lines)",
            "export the report again; it should have a header row and data rows.",
        )
    delim = delimiter or sniff_delimiter(text_head, expected)
    head_lines = text_head.splitlines()
    head_rows = list(csv.reader(head_lines[:_HEADER_SCAN], delimiter=delim))
    if header_row is not None:
        hdr = int(header_row) - 1
    else:
        found = find_header_row(head_rows, expected)
        hdr = 0 if found is None else found
    # Lines before the header (a title block) are skipped by physical line count.
    skip = hdr
    kwargs = dict(
        sep=delim,
        header=0,
        skiprows=skip,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        encoding=enc,
    )
    try:
        if not blank_lines and len(delim) == 1 and enc in ("utf-8", "utf-8-sig"):
            frame = pd.read_csv(path, engine="pyarrow", **kwargs)
        else:
            frame = pd.read_csv(path, engine="c", skip_blank_lines=False, **kwargs)
    except pd.errors.EmptyDataError:
        raise IntakeError(
            label, "the file has no header row", "export the report again with column headings."
        ) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise IntakeError(
            label,
            f"the rows cannot be split into columns ({str(exc).splitlines()[0]})",
            f"check the separator: the kit guessed {delim!r}; set 'delimiter:' for this "
            "table in org.yaml if it is different, and make sure text with separators is quoted.",
        ) from None
    frame.columns = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
    frame[ROW] = range(hdr + 2, hdr + 2 + len(frame))
    return RawFile(label, frame, header_row=hdr + 1, encoding=enc, delimiter=delim)


def _read_excel(
    path: Path,
    label: str,
    expected: list[str],
    *,
    header_row: int | None,
    sheet: str | int | None,
) -> RawFile:
    try:
        grid = pd.read_excel(
            path, sheet_name=sheet if sheet is not None else 0, header=None, dtype=str
        )
    except ValueError as exc:
        if "sheet" not in str(exc).lower():  # e.g. "Excel file format cannot be determined"
            raise IntakeError(
                label,
                f"the workbook cannot be opened ({str(exc).split(',')[0]})",
                "open it in Excel and save it again as .xlsx, or export as CSV.",
            ) from None
        raise IntakeError(
            label,
            f"the sheet cannot be read ({exc})",
            "check the 'sheet:' setting in org.yaml (name or number of the worksheet).",
        ) from None
    except Exception as exc:  # openpyxl raises many types for broken files
        raise IntakeError(
            label,
            f"the workbook cannot be opened ({type(exc).__name__})",
            "open it in Excel and save it again as .xlsx, or export as CSV.",
        ) from None
    if grid.empty:
        raise IntakeError(
            label, "the worksheet is empty", "choose the sheet that holds the data with 'sheet:'."
        )
    rows = grid.head(_HEADER_SCAN).fillna("").astype(str).to_numpy().tolist()
    if header_row is not None:
        hdr = int(header_row) - 1
    else:
        found = find_header_row(rows, expected)
        hdr = 0 if found is None else found
    header = [
        str(c).strip() if isinstance(c, str) else f"column {i + 1}"
        for i, c in enumerate(grid.iloc[hdr])
    ]
    frame = grid.iloc[hdr + 1 :].copy()
    frame.columns = header
    frame[ROW] = range(hdr + 2, hdr + 2 + len(frame))
    return RawFile(label, frame.reset_index(drop=True), header_row=hdr + 1)
