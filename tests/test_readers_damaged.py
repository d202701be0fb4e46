"""Damaged exports: read_export stops with a plain message, or reads them right.

Every file is hand-made in tmp_path, a few lines long, with known answers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from playbook.errors import IntakeError
from playbook.readers import ROW, _column_letter, detect_encoding, read_export

HEADER = "Line ID,Order ID,Customer ID,Ticket Type,Quantity,Paid"
COLUMNS = HEADER.split(",")


def _line(i: int, ticket: str = "Full", paid: str = "£12.00") -> str:
    return f"{1000 + i},{500 + i},{700 + i},{ticket},1,{paid}"


def _csv(tmp_path: Path, lines: list[str], name: str = "sales.csv", **encode) -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(lines) + "\n").encode(**(encode or {"encoding": "utf-8"})))
    return path


def _error(path: Path, expected: list[str] = COLUMNS, **kw) -> IntakeError:
    with pytest.raises(IntakeError) as err:
        read_export(path, "exports/sales.csv", expected, **kw)
    return err.value


# 1. A double quote that never closes ------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_unclosed_quote_stops_and_names_its_row(tmp_path: Path, encoding: str) -> None:
    lines = [HEADER] + [_line(i) for i in range(1, 40)]
    lines[5] = lines[5].replace(",Full,", ',"Full,')  # row 6 as a spreadsheet shows it
    err = _error(_csv(tmp_path, lines, encoding=encoding))
    assert err.file == "exports/sales.csv"
    assert err.row == 6
    assert "a double quote opens on row 6 and never closes" in str(err)
    assert "remove the stray double quote or close it" in err.fix
    assert "export again" in err.fix


def test_quote_closed_many_lines_later_stops(tmp_path: Path) -> None:
    """The stray quote pairs with a quote further down: the lines between are one value."""
    lines = [HEADER] + [_line(i) for i in range(1, 40)]
    lines[5] = lines[5].replace(",Full,", ',"Full,')
    lines[20] = _line(20, ticket='Full"')
    lines[30] = _line(30, paid='"£1,200.00"')  # a well-quoted value after it
    err = _error(_csv(tmp_path, lines))
    assert err.row == 6
    assert err.column == "Ticket Type"
    assert "closes only 15 lines further down" in str(err)


def test_quoted_newlines_read_as_before(tmp_path: Path) -> None:
    lines = [HEADER] + [_line(i) for i in range(1, 8)]
    lines[2] = _line(2, ticket='"Full\nprice"')
    lines[4] = _line(4, ticket='"A, then\n""B"""')
    raw = read_export(_csv(tmp_path, lines), "exports/sales.csv", COLUMNS)
    assert len(raw.frame) == 7
    assert raw.frame["Ticket Type"].tolist()[1:4] == ["Full\nprice", "Full", 'A, then\n"B"']
    assert raw.frame[ROW].tolist() == list(range(2, 9))
    assert raw.frame["Paid"].tolist() == ["£12.00"] * 7


def test_title_with_quoted_newline_above_the_header(tmp_path: Path) -> None:
    lines = ['"Sales report\nall venues"', "Run 23/11/2026", HEADER, _line(1), _line(2)]
    raw = read_export(_csv(tmp_path, lines), "exports/sales.csv", COLUMNS)
    assert list(raw.frame.columns) == [*COLUMNS, ROW]
    assert raw.frame["Line ID"].tolist() == ["1001", "1002"]
    assert raw.header_row == 3  # records, as a spreadsheet opening the file shows them
    assert raw.frame[ROW].tolist() == [4, 5]


# 2. UTF-8 with lines in another encoding ------------------------------------------


def test_mixed_encoding_stops_at_the_first_foreign_line(tmp_path: Path) -> None:
    lines = [HEADER] + [_line(i) for i in range(1, 10)]
    data = [ln.encode("utf-8") for ln in lines]
    data[5] = lines[5].encode("cp1252")  # line 6, '£' as the single byte 0xA3
    path = tmp_path / "sales.csv"
    path.write_bytes(b"\n".join(data) + b"\n")
    err = _error(path)
    assert err.row == 6
    assert "line 6 is not in UTF-8" in err.problem
    assert "0xA3" in err.problem
    assert err.value == "1005,505,705,Full,1,£12.00"
    assert "save it again as 'CSV UTF-8'" in err.fix
    assert "encoding: cp1252" in err.fix


def test_pure_windows_file_still_reads_as_cp1252(tmp_path: Path) -> None:
    lines = [HEADER] + [_line(i, ticket="Concession – Student") for i in range(1, 4)]
    path = _csv(tmp_path, lines, encoding="cp1252")
    assert detect_encoding(path.read_bytes()) == "cp1252"
    raw = read_export(path, "exports/sales.csv", COLUMNS)
    assert raw.encoding == "cp1252"
    assert raw.frame["Paid"].tolist() == ["£12.00"] * 3
    assert raw.frame["Ticket Type"].iloc[0] == "Concession – Student"


def test_utf8_file_with_bom_and_a_foreign_line_stops(tmp_path: Path) -> None:
    data = ("\ufeff" + HEADER + "\n" + _line(1) + "\n").encode() + _line(2).encode("cp1252")
    path = tmp_path / "sales.csv"
    path.write_bytes(data)
    assert _error(path).row == 3


# 3. A folder instead of a file ------------------------------------------------------


def test_folder_named_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "exports").mkdir()
    with pytest.raises(IntakeError) as err:
        read_export(tmp_path / "exports", "exports/", COLUMNS)
    assert err.value.file == "exports/"
    assert "a folder, not a file" in err.value.problem
    assert "name the export file itself" in err.value.fix


# 4. Repeated headings ---------------------------------------------------------------


def test_repeated_heading_the_mapping_uses_stops(tmp_path: Path) -> None:
    header = "A,B,C,D,E,F,G,H,I,J,Paid,List Price,Paid,Discount"
    row = "1,2,3,4,5,6,7,8,9,10,0.00,£45.00,£45.00,£0.00"
    err = _error(_csv(tmp_path, [header, row]), expected=["A", "Paid", "Discount"])
    assert "the file has two columns headed 'Paid' (columns K and M)" in err.problem
    assert "rename one or delete one" in err.fix
    assert "Paid.1" not in str(err)
    assert err.row == 1


def test_repeated_heading_matches_ignoring_case_and_spaces(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["Paid,Notes, paid ", "1,2,3"])
    assert "(columns A and C)" in _error(path, expected=["Paid"]).problem


def test_repeated_heading_not_in_the_mapping_is_harmless(tmp_path: Path) -> None:
    raw = read_export(
        _csv(tmp_path, ["Line ID,Notes,Paid,Notes", "1,a,£1.00,b"]),
        "exports/sales.csv",
        ["Line ID", "Paid"],
    )
    assert list(raw.frame.columns) == ["Line ID", "Notes", "Paid", "Notes (column D)", ROW]
    assert raw.frame["Notes (column D)"].tolist() == ["b"]
    assert raw.frame["Paid"].tolist() == ["£1.00"]


def test_repeated_heading_in_a_workbook_stops(tmp_path: Path) -> None:
    path = tmp_path / "sales.xlsx"
    frame = pd.DataFrame([["1", "0.00", "£45.00"]], columns=["Line ID", "Paid", "Paid"])
    frame.to_excel(path, index=False)
    with pytest.raises(IntakeError) as err:
        read_export(path, "exports/sales.xlsx", ["Line ID", "Paid"])
    assert "two columns headed 'Paid' (columns B and C)" in err.value.problem


def test_column_letters_as_excel_shows_them() -> None:
    assert [_column_letter(i) for i in (0, 10, 12, 25, 26, 27, 701, 702)] == [
        "A",
        "K",
        "M",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]


# 5. A workbook whose first sheet is not the data --------------------------------------


def _workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    with pd.ExcelWriter(path) as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return path


SUMMARY = pd.DataFrame({"Metric": ["Total sales", "Lines"], "Value": ["£1", "2"]})
SALES = pd.DataFrame({"Line ID": ["1", "2"], "Paid": ["£1.00", "£2.00"]})


def test_summary_sheet_first_reads_the_one_sheet_with_the_headings(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "sales.xlsx", {"Summary": SUMMARY, "Sales": SALES})
    raw = read_export(path, "exports/sales.xlsx", ["Line ID", "Paid"])
    assert raw.sheet == "Sales"
    assert raw.frame["Paid"].tolist() == ["£1.00", "£2.00"]
    assert raw.frame[ROW].tolist() == [2, 3]
    assert len(raw.notes) == 1
    assert "read sheet 'Sales'" in raw.notes[0]
    assert "'sheet: <name>'" in raw.notes[0]


def test_summary_sheet_first_with_two_data_sheets_asks_which(tmp_path: Path) -> None:
    sheets = {"Summary": SUMMARY, "Sales 2024": SALES, "Sales 2025": SALES}
    path = _workbook(tmp_path / "sales.xlsx", sheets)
    with pytest.raises(IntakeError) as err:
        read_export(path, "exports/sales.xlsx", ["Line ID", "Paid"])
    assert "the kit read sheet 'Summary'" in err.value.problem
    assert "Sheets in the workbook: 'Summary', 'Sales 2024', 'Sales 2025'" in err.value.problem
    assert "set 'sheet: Sales 2024'" in err.value.fix


def test_sheet_set_to_the_summary_is_not_overridden(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "sales.xlsx", {"Sales": SALES, "Summary": SUMMARY})
    with pytest.raises(IntakeError) as err:
        read_export(path, "exports/sales.xlsx", ["Line ID", "Paid"], sheet="Summary")
    assert "sheet 'Summary' (set by 'sheet:')" in err.value.problem
    assert "set 'sheet: Sales'" in err.value.fix


def test_missing_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "sales.xlsx", {"Sales": SALES, "Summary": SUMMARY})
    with pytest.raises(IntakeError) as err:
        read_export(path, "exports/sales.xlsx", ["Line ID", "Paid"], sheet="Sheet1")
    assert "sheets in the workbook: 'Sales', 'Summary'" in err.value.problem


def test_clean_workbook_reads_its_first_sheet_without_a_note(tmp_path: Path) -> None:
    path = _workbook(tmp_path / "sales.xlsx", {"Sales": SALES, "Summary": SUMMARY})
    raw = read_export(path, "exports/sales.xlsx", ["Line ID", "Paid"])
    assert raw.sheet == "Sales"
    assert raw.notes == ()
    assert raw.frame["Line ID"].tolist() == ["1", "2"]


# 6. An 'encoding:' setting that does not fit the file ---------------------------------


def test_utf16_set_on_a_utf8_file(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, _line(1)])
    err = _error(path, encoding="utf-16")
    assert "the file does not look like utf-16" in err.problem
    assert "remove 'encoding: utf-16'" in err.fix
    assert "separator" not in str(err)


def test_utf8_set_on_a_utf16_file(tmp_path: Path) -> None:
    path = _csv(
        tmp_path, [HEADER.replace(",", "\t"), _line(1).replace(",", "\t")], encoding="utf-16"
    )
    err = _error(path, encoding="utf-8")
    assert "NUL characters" in err.problem
    assert "remove 'encoding: utf-8'" in err.fix


def test_encoding_that_fits_is_used(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, _line(1)], encoding="cp1252")
    raw = read_export(path, "exports/sales.csv", COLUMNS, encoding="latin-1")
    assert raw.encoding == "latin-1"
    assert raw.frame["Paid"].tolist() == ["£12.00"]


# 7. A Windows path -----------------------------------------------------------------


def test_backslash_path_says_to_use_slashes(tmp_path: Path) -> None:
    with pytest.raises(IntakeError) as err:
        read_export(tmp_path / "exports\\sales.csv", "exports\\sales.csv", COLUMNS)
    assert "the file does not exist" in err.value.problem
    assert "use / between folders" in err.value.fix
    assert "'exports/sales.csv'" in err.value.fix


def test_plain_missing_file_has_no_slash_hint(tmp_path: Path) -> None:
    with pytest.raises(IntakeError) as err:
        read_export(tmp_path / "sales.csv", "exports/sales.csv", COLUMNS)
    assert "between folders" not in err.value.fix


def test_utf8_set_on_a_windows_file_names_the_encoding(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, _line(1)], encoding="cp1252")
    err = _error(path, encoding="utf-8")
    assert "cannot be read as utf-8" in err.problem
    assert "remove 'encoding: utf-8'" in err.fix
    assert "separator" not in str(err)


def test_unfound_header_row_points_at_header_row_not_separator(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["Sales report", "Ticket,Seat,Price", "Full,A1,12.00"])
    err = _error(path, expected=["Line ID", "Paid"])
    assert "set 'header_row:'" in err.fix
    assert err.fix.startswith("none of the headings org.yaml names is in the first lines")
