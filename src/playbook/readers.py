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
# a well-formed UTF-8 character of two to four bytes (RE2 reads binary as Latin-1)
_UTF8_MULTIBYTE = r"[\xC2-\xDF][\x80-\xBF]|[\xE0-\xEF][\x80-\xBF]{2}|[\xF0-\xF4][\x80-\xBF]{3}"
_EOF_IN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


@dataclass(frozen=True)
class RawFile:
    """The records of one export, as text, with their spreadsheet row numbers."""

    label: str
    frame: pd.DataFrame  # source columns + ROW
    header_row: int
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None  # the worksheet read, for a workbook
    notes: tuple[str, ...] = ()  # what the console should say about how the file was read


def detect_encoding(data: bytes | mmap.mmap, label: str = "the file") -> str:
    """``utf-8-sig`` for a BOM, ``utf-8`` when the bytes decode, else ``cp1252`` (or latin-1).

    Parameters
    ----------
    data : bytes or mmap.mmap
        The whole file.
    label : str
        How messages name the file.

    Raises
    ------
    IntakeError
        When the file mixes encodings: it holds UTF-8 characters of two bytes or more
        (so it was saved as UTF-8) and also bytes that are not UTF-8 (lines pasted in
        from a file in Windows encoding). Reading it all as Windows encoding would turn
        every UTF-8 '£' into 'Â£' and lose the amounts.
    """
    head = data[:4]
    if head.startswith(codecs.BOM_UTF8):
        if not _valid_utf8(memoryview(data)[3:]):
            _raise_mixed(data, label)
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _valid_utf8(data):
        return "utf-8"
    if _has_utf8_sequence(data):
        _raise_mixed(data, label)
    if _decodes(data, "cp1252"):
        return "cp1252"
    return "latin-1"


def _has_utf8_sequence(data: bytes | mmap.mmap | memoryview) -> bool:
    """Whether the bytes hold a well-formed UTF-8 character of two bytes or more (RE2)."""
    return bool(pc.match_substring_regex(_whole(data), _UTF8_MULTIBYTE)[0].as_py())


def _first_bad_utf8(data: bytes | mmap.mmap, chunk: int = 1 << 24) -> int:
    """Offset of the first byte that is not valid UTF-8 (-1 when there is none).

    The file is decoded piece by piece, each piece ending after a newline (no UTF-8
    character holds a newline byte, so no character is cut in two).
    """
    start, size = 0, len(data)
    while start < size:
        end = min(start + chunk, size)
        if end < size:
            cut = data.rfind(b"\n", start, end)
            end = cut + 1 if cut >= start else end
        try:
            data[start:end].decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data" and end < size:
                chunk *= 2  # a character cut at a piece without a newline: take more
                continue
            return start + exc.start
        start = end
    return -1


def _raise_mixed(data: bytes | mmap.mmap, label: str) -> None:
    """Stop on a file that mixes UTF-8 with another encoding, naming the first bad line."""
    bad = _first_bad_utf8(data)
    if bad < 0:
        return
    line_start = data.rfind(b"\n", 0, bad) + 1
    line = _count_newlines(memoryview(data)[:line_start]) + 1
    line_end = data.find(b"\n", bad)
    text = data[line_start : line_end if line_end != -1 else len(data)]
    run = data[bad : bad + 4]
    width = 1
    while width < len(run) and run[width] >= 0x80:
        width += 1
    shown = " ".join(f"0x{b:02X}" for b in run[:width])
    as_windows = run[:width].decode("cp1252", errors="replace")
    raise IntakeError(
        label,
        f"line {line} is not in UTF-8 like the rest of the file ({'byte' if width == 1 else 'bytes'} "
        f"{shown}, which the "
        f"Windows encoding reads as {as_windows!r}): the file mixes two encodings, probably "
        "because lines were pasted in from another file",
        "open the file in Excel or a text editor and save it again as 'CSV UTF-8' (or export "
        "it again from your ticketing system); if the whole file is meant to be in the Windows "
        "encoding, set 'encoding: cp1252' for this table in org.yaml.",
        row=line,
        value=text.decode("cp1252", errors="replace").rstrip("\r")[:120],
    )


def _whole(data: bytes | mmap.mmap | memoryview) -> pa.Array:
    """The bytes as one Arrow binary value (no copy)."""
    buffer = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int64))
    return pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer])


def _count_newlines(data: bytes | mmap.mmap | memoryview, byte: int = 10) -> int:
    """How many ``byte`` (a newline) the data holds, counted in cache-sized pieces by numpy."""
    whole = np.frombuffer(data, dtype=np.uint8)
    step = 1 << 18
    return sum(
        int(np.count_nonzero(whole[i : i + step] == byte)) for i in range(0, len(whole), step)
    )


def _count_lines(data: bytes | mmap.mmap) -> int:
    """Physical lines of the file (a last line without newline counts; '\\r' alone ends a line
    only in a file that has no '\\n')."""
    if not len(data):
        return 0
    n = _count_newlines(data)
    end = b"\n"
    if n == 0:
        n, end = _count_newlines(data, 13), b"\r"
    return n + (data[-1:] != end)


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
    return bool(pc.match_substring_regex(_whole(data), _BLANK_LINE.pattern.decode())[0].as_py())


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
        When the file is missing, a folder, empty, mixes encodings, has a double quote
        that never closes, has two columns with a heading the mapping uses, or has no
        recognisable header.
    """
    expected = list(expected_columns)
    if not path.exists():
        fix = "check the 'file:' setting for this table in org.yaml, or copy the export there."
        if re.match(r"[A-Za-z]:[\\/]", label):
            fix = (
                "this is a path on a Windows computer: copy the export into the organisation "
                "folder and name it from there, with / between folders (for example "
                "'exports/sales.csv')."
            )
        elif "\\" in label:
            fix = (
                "use / between folders in the 'file:' setting, not \\ (for example "
                f"'{label.replace(chr(92), '/')}'); if the file still cannot be found, check "
                "its name or copy the export there."
            )
        raise IntakeError(label, "the file does not exist", fix)
    if path.is_dir():
        raise IntakeError(
            label,
            "this is a folder, not a file",
            "name the export file itself in the 'file:' setting for this table in org.yaml "
            f"(for example '{label.rstrip('/')}/sales.csv').",
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


def _column_letter(index: int) -> str:
    """The column as Excel names it: 0 is 'A', 25 is 'Z', 26 is 'AA'."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _unique_headings(
    names: list[str], expected: Iterable[str], label: str, header_row: int
) -> list[str] | None:
    """Names for columns whose headings repeat (None when no heading repeats).

    Headings are compared as the mapping compares them (case and spacing ignored). A
    repeated heading the mapping uses stops the read: the kit cannot tell which column
    is meant. Any other repeated heading is harmless; its later columns are named with
    their letter, e.g. 'Notes (column H)', so no invented name reaches a message.
    """
    places: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        if _norm(name):
            places.setdefault(_norm(name), []).append(i)
    repeated = {k: idx for k, idx in places.items() if len(idx) > 1}
    if not repeated:
        return None
    wanted = {_norm(e) for e in expected}
    for key, idx in repeated.items():
        if key in wanted:
            count = {2: "two", 3: "three"}.get(len(idx), str(len(idx)))
            letters = _and([_column_letter(i) for i in idx])
            raise IntakeError(
                label,
                f"the file has {count} columns headed '{names[idx[0]]}' (columns {letters}), "
                "so the kit cannot tell which one org.yaml means",
                "rename one or delete one in the file (or in the export settings), then "
                "export again; if you rename it, org.yaml can name the column you want.",
                row=header_row,
            )
    out = list(names)
    for idx in repeated.values():
        for i in idx[1:]:
            out[i] = f"{names[i]} (column {_column_letter(i)})"
    return out


def _unmangled(names: list[str]) -> list[str]:
    """Headings as written, from pandas' names ('Paid.1' is a second 'Paid')."""
    out: list[str] = []
    for name in names:
        base, dot, number = name.rpartition(".")
        seen = {_norm(n) for n in out}
        out.append(base if dot and number.isdigit() and _norm(base) in seen else name)
    return out


def _heading_hits(text: str, expected: Iterable[str]) -> int:
    """How many expected headings appear in the first lines of ``text`` (any separator)."""
    low = _norm(" ".join(text.splitlines()[:_HEADER_SCAN]))
    return sum(1 for e in {_norm(e) for e in expected} if e and e in low)


def _check_set_encoding(head: bytes, encoding: str, expected: list[str], label: str) -> None:
    """Stop when the ``encoding:`` set in org.yaml clearly does not fit the file.

    It does not fit when, read that way, the start of the file holds NUL characters or
    fewer of the expected headings than it does read with the encoding the kit detects.
    """
    cut = head.rfind(b"\n")
    head = head[: cut + 1] if cut > 0 else head
    try:
        auto = detect_encoding(head, label)
    except IntakeError:
        return  # a mixed file: the encoding set may be the user's choice for it
    if codecs.lookup(auto).name == codecs.lookup(encoding).name:
        return
    text = head.decode(encoding, errors="replace")
    auto_text = head.decode(auto, errors="replace")
    nul = "\x00" in text and "\x00" not in auto_text
    if nul or _heading_hits(text, expected) < _heading_hits(auto_text, expected):
        raise IntakeError(
            label,
            f"the file does not look like {encoding} (the 'encoding:' set in org.yaml): read "
            f"that way {'it is full of NUL characters' if nul else 'its headings are garbled'}, "
            f"while it reads cleanly as {auto}",
            f"remove 'encoding: {encoding}' for this table in org.yaml (the kit then detects "
            f"the encoding itself), or set 'encoding: {auto}'.",
        )


def _head_records(lines: list[str], delim: str) -> tuple[list[list[str]], list[int]]:
    """The records of the first lines and the physical line (from 0) each starts on.

    A quoted value may hold a newline (a two-line title, say), so a record can span
    lines; the Arrow reader skips lines, the C reader records.
    """
    reader = csv.reader(lines, delimiter=delim)
    rows: list[list[str]] = []
    starts: list[int] = []
    while True:
        start = reader.line_num
        try:
            row = next(reader)
        except (StopIteration, csv.Error):
            break
        rows.append(row)
        starts.append(start)
    return rows, starts


def _quote_error(label: str, row: int, column: str | None = None, lines: int = 0) -> IntakeError:
    if lines:
        problem = (
            f"a double quote opens on row {row} and closes only {lines:,} lines further down, "
            "so those lines were read as one value"
        )
    else:
        problem = (
            f"a double quote opens on row {row} and never closes, so every line after it "
            "would be read as one value"
        )
    return IntakeError(
        label,
        problem,
        "remove the stray double quote or close it (open the file in a text editor, or fix "
        "the value in your ticketing system), then export again.",
        row=row,
        column=column,
    )


def _text_arrays(series: pd.Series) -> list[pa.Array]:
    """The Arrow string chunks of a text column (none for a column without text)."""
    try:
        arr = pa.chunked_array(pa.array(series.array))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return []
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return []
    return list(arr.chunks)


def _newlines_in(chunk: pa.Array) -> int:
    """Newlines inside the values of one Arrow string chunk, counted in its data buffer."""
    _, offsets, data = chunk.buffers()
    if data is None or not len(chunk):
        return 0
    kind = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    ends = np.frombuffer(offsets, dtype=kind)[chunk.offset : chunk.offset + len(chunk) + 1]
    return _count_newlines(np.frombuffer(data, dtype=np.uint8)[ends[0] : ends[-1]])


def _newlines_in_values(frame: pd.DataFrame, first_row: int, delim: str, label: str) -> int:
    """How many newlines the values hold; stops when one value holds whole lines.

    A legitimate value with a newline (an address on two lines) holds a separator or
    two; a value holding as many separators as a whole record has is lines swallowed by
    a stray quote that closes far too late. ``first_row`` is the spreadsheet row of the
    frame's first record.
    """
    width = frame.shape[1]
    total = 0
    for col in frame.columns:
        chunks = _text_arrays(frame[col])
        inner = sum(_newlines_in(c) for c in chunks)
        total += inner
        if not inner or width < 3:
            continue
        values = pa.chunked_array(chunks)
        multi = np.flatnonzero(pc.match_substring(values, "\n").fill_null(False).to_numpy())
        held = values.take(pa.array(multi)).to_pylist()
        for position, value in zip(multi, held, strict=True):
            if value.count(delim) >= width - 1:
                raise _quote_error(label, first_row + int(position), str(col), value.count("\n"))
    return total


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
        enc = encoding or detect_encoding(data, label)
        head = data[: 256 * 1024]
        blank_lines = _has_blank_line(data)
        # Lines a quote could swallow: counted only when the file holds a quote at all.
        lines = _count_lines(data) if data.find(b'"') != -1 else None
    try:
        text_head = head.decode(enc, errors="replace")
    except LookupError:
        raise IntakeError(
            label,
            f"the encoding '{enc}' is not known",
            "remove 'encoding:' or use utf-8 or cp1252.",
        ) from None
    if encoding:
        _check_set_encoding(head, encoding, expected, label)
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
    head_rows, starts = _head_records(head_lines[:_HEADER_SCAN], delim)
    found = None
    if header_row is not None:
        hdr = int(header_row) - 1
    else:
        found = find_header_row(head_rows, expected)
        hdr = 0 if found is None else found
    # Lines before the header (a title block) are skipped: the C reader counts records,
    # the Arrow reader physical lines (they differ when a title holds a quoted newline).
    skip_lines = starts[hdr] if hdr < len(starts) else hdr
    kwargs = dict(
        sep=delim,
        header=0,
        dtype=str,
        keep_default_na=False,
        na_values=[""],
        encoding=enc,
    )
    arrow = not blank_lines and len(delim) == 1 and enc in ("utf-8", "utf-8-sig")

    def read_c() -> pd.DataFrame:
        return pd.read_csv(path, engine="c", skip_blank_lines=False, skiprows=hdr, **kwargs)

    try:
        try:
            if arrow:
                frame = pd.read_csv(path, engine="pyarrow", skiprows=skip_lines, **kwargs)
            else:
                frame = read_c()
        except pd.errors.ParserError:
            if arrow and lines is not None:
                # A stray quote makes Arrow miscount columns: the C reader finds its row.
                _newlines_in_values(read_c(), hdr + 2, delim, label)
            raise
        wanted = None if lines is None else lines - skip_lines - 1  # records with no newline
        if wanted is not None and len(frame) < wanted:
            # Fewer records than lines: values with newlines, or a quote that never closes
            # (Arrow then drops the lines after it without a word).
            inner = _newlines_in_values(frame, hdr + 2, delim, label)
            if arrow and len(frame) + inner < wanted:
                checked = read_c()  # stops on a quote that never closes
                _newlines_in_values(checked, hdr + 2, delim, label)
                if len(checked) != len(frame):
                    frame = checked
    except pd.errors.EmptyDataError:
        raise IntakeError(
            label, "the file has no header row", "export the report again with column headings."
        ) from None
    except (pd.errors.ParserError, ValueError) as exc:
        if isinstance(exc, UnicodeError) or "invalid utf8" in str(exc).lower():
            fix = (
                f"remove 'encoding: {encoding}' for this table in org.yaml (the kit then "
                "detects the encoding itself), or set the right one."
                if encoding
                else "open the file in Excel or a text editor and save it again as 'CSV UTF-8', "
                "or export it again."
            )
            first = str(exc).splitlines()[0]
            raise IntakeError(label, f"the file cannot be read as {enc} ({first})", fix) from None
        quote = _EOF_IN_QUOTE.search(str(exc))
        if quote:
            raise _quote_error(label, int(quote.group(1)) + 1) from None
        if found is None and header_row is None and expected:
            fix = (
                "none of the headings org.yaml names is in the first lines, so the kit cannot "
                "tell which row holds the headings: set 'header_row:' for this table in "
                "org.yaml (counting from 1), or check the separator (the kit guessed "
                f"{delim!r}) and set 'delimiter:'."
            )
        else:
            fix = (
                f"check the separator: the kit guessed {delim!r}; set 'delimiter:' for this "
                "table in org.yaml if it is different, and make sure text with separators is "
                "quoted."
            )
        raise IntakeError(
            label, f"the rows cannot be split into columns ({str(exc).splitlines()[0]})", fix
        ) from None
    frame.columns = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
    # pandas names a repeated heading 'Paid.1': compare the headings as the file writes them
    if hdr < len(head_rows) and len(head_rows[hdr]) == frame.shape[1]:
        written = [str(c).replace("\ufeff", "").strip() for c in head_rows[hdr]]
        names = [w if w else c for w, c in zip(written, frame.columns, strict=True)]
    else:
        names = _unmangled(list(frame.columns))
    unique = _unique_headings(names, expected, label, hdr + 1)
    if unique is not None:
        frame.columns = unique
    frame[ROW] = range(hdr + 2, hdr + 2 + len(frame))
    return RawFile(label, frame, header_row=hdr + 1, encoding=enc, delimiter=delim)


def _sheet_error(label: str, exc: Exception) -> IntakeError:
    if "sheet" not in str(exc).lower():  # e.g. "Excel file format cannot be determined"
        return IntakeError(
            label,
            f"the workbook cannot be opened ({str(exc).split(',')[0]})",
            "open it in Excel and save it again as .xlsx, or export as CSV.",
        )
    return IntakeError(
        label,
        f"the sheet cannot be read ({exc})",
        "check the 'sheet:' setting in org.yaml (name or number of the worksheet).",
    )


def _unopenable(label: str, exc: Exception) -> IntakeError:
    """The message for a workbook openpyxl cannot open (it raises many types)."""
    return IntakeError(
        label,
        f"the workbook cannot be opened ({type(exc).__name__})",
        "open it in Excel and save it again as .xlsx, or export as CSV.",
    )


def _read_excel(
    path: Path,
    label: str,
    expected: list[str],
    *,
    header_row: int | None,
    sheet: str | int | None,
) -> RawFile:
    try:
        book = pd.ExcelFile(path)
        names = [str(n) for n in book.sheet_names]
    except ValueError as exc:
        raise _sheet_error(label, exc) from None
    except Exception as exc:  # openpyxl raises many types for broken files
        raise _unopenable(label, exc) from None
    try:
        grid = pd.read_excel(
            book, sheet_name=sheet if sheet is not None else 0, header=None, dtype=str
        )
    except (ValueError, IndexError) as exc:
        listed = ", ".join(f"'{n}'" for n in names)
        raise IntakeError(
            label,
            f"the sheet cannot be read ({exc}); sheets in the workbook: {listed}",
            "set 'sheet:' for this table in org.yaml to one of these names (or remove it to "
            "read the first sheet).",
        ) from None
    except Exception as exc:  # openpyxl raises many types for broken files
        raise _unopenable(label, exc) from None
    read = sheet if isinstance(sheet, str) else names[sheet or 0] if names else None
    notes: tuple[str, ...] = ()
    if expected and header_row is None and len(names) > 1 and not _grid_hits(grid, expected):
        # The sheet read has none of the headings: is the data on another sheet?
        hits = {
            n: _grid_hits(
                pd.read_excel(book, sheet_name=n, header=None, dtype=str, nrows=_HEADER_SCAN),
                expected,
            )
            for n in names
            if n != read
        }
        best = max(hits.values(), default=0)
        holders = [n for n, h in hits.items() if h == best and best]
        listed = ", ".join(f"'{n}'" for n in names)
        if len(holders) == 1 and sheet is None:
            grid = pd.read_excel(book, sheet_name=holders[0], header=None, dtype=str)
            notes = (
                f"{label}: the first sheet '{read}' has none of the headings org.yaml names, "
                f"so the kit read sheet '{holders[0]}', which has them (sheets in the "
                f"workbook: {listed}). To read another, set 'sheet: <name>' for this table "
                "in org.yaml.",
            )
            read = holders[0]
        elif holders:
            which = "set by 'sheet:'" if sheet is not None else "the first sheet"
            raise IntakeError(
                label,
                f"the kit read sheet '{read}' ({which}), which has none of the headings "
                f"org.yaml names; {_and([repr(h) for h in holders])} "
                f"{'has' if len(holders) == 1 else 'have'} them. Sheets in the workbook: "
                f"{listed}",
                f"set 'sheet: {holders[0]}' (or the name of the sheet that holds the data) for "
                "this table in org.yaml.",
            )
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
    header = _unique_headings(header, expected, label, hdr + 1) or header
    frame = grid.iloc[hdr + 1 :].copy()
    frame.columns = header
    frame[ROW] = range(hdr + 2, hdr + 2 + len(frame))
    return RawFile(label, frame.reset_index(drop=True), header_row=hdr + 1, sheet=read, notes=notes)


def _grid_hits(grid: pd.DataFrame, expected: Iterable[str]) -> int:
    """The most expected headings one of the first rows of a worksheet holds."""
    rows = grid.head(_HEADER_SCAN).fillna("").astype(str).to_numpy().tolist()
    wanted = {_norm(e) for e in expected}
    return max((len(wanted & {_norm(c) for c in r}) for r in rows), default=0)
