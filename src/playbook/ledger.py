"""The row ledger: every source row ends kept, or dropped with a reason.

Intake records, for every file it reads, how many rows it read and kept, and one ledger
row per dropped source row (file, spreadsheet row number, column, value, reason code and
a plain message). For every file, rows read = rows kept + rows dropped; :meth:`Ledger.check`
enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

# Reason codes a dropped row can carry, with the plain explanation shown in reports.
REASONS: dict[str, str] = {
    "blank_row": "the row is empty",
    "repeated_header": "the row repeats the column headings (e.g. where two exports were joined)",
    "total_row": "the row is a total line, not a customer",
    "missing_value": "a required value is empty",
    "missing_customer": "the customer number is empty",
    "unparseable_date": "the date or time cannot be read",
    "ambiguous_date_order": (
        "the date reads only with day and month the other way round than org.yaml says "
        "(e.g. 09/13/2022 where dates are day-first)"
    ),
    "unparseable_amount": "the amount cannot be read as money",
    "bad_quantity": "the quantity is not a whole number of at least 1",
    "unknown_value": "a status or type word is not in the org.yaml mapping",
    "duplicate_line": "the same row appears again in the export",
    "duplicate_id": "the id was already used by a different row (first one kept)",
    "superseded_consent": (
        "a later consent record for the same customer and channel replaces this one "
        "(the latest is kept; on the same day, an opt-out wins; an opt-out without a "
        "date counts as the latest)"
    ),
    "unknown_performance": "the performance is not in the performances export",
    "unknown_production": "the production is not in the productions export",
    "negative_not_return": "a negative amount on a line that is not a return or exchange",
    "orphan_return": "a return or exchange whose original line is not in the export",
    "future_date": "the date is later than today",
    "implausible_amount": "the amount is larger than intake.max_amount",
    "out_of_range": "the value is outside its allowed range",
    "anonymised_customer": "the customer asked to be erased",
    "filtered_out": (
        "no table takes the row: its type is left out by the source's filter "
        "(org.yaml or the preset)"
    ),
}


@dataclass
class FileLedger:
    """Counts and dropped rows for one source file."""

    file: str
    table: str
    rows_read: int = 0
    dropped: list[pd.DataFrame] = field(default_factory=list)

    @property
    def rows_dropped(self) -> int:
        """Number of dropped rows recorded so far."""
        return int(sum(len(d) for d in self.dropped))

    @property
    def rows_kept(self) -> int:
        """Rows read minus rows dropped."""
        return self.rows_read - self.rows_dropped


class Ledger:
    """Collects what happened to every source row during one intake run."""

    COLUMNS = ("file", "table", "row", "column", "value", "reason", "message")

    def __init__(self) -> None:
        self.files: dict[str, FileLedger] = {}

    def open_file(self, file: str, table: str, rows_read: int) -> FileLedger:
        """Start the ledger of one file."""
        entry = FileLedger(file=file, table=table, rows_read=rows_read)
        self.files[file] = entry
        return entry

    def drop(
        self,
        file: str,
        rows: pd.Series,
        reason: str,
        *,
        column: str | None = None,
        values: pd.Series | None = None,
        message: pd.Series | str | None = None,
    ) -> None:
        """Record dropped rows.

        Parameters
        ----------
        file : str
            The file the rows came from (must have been opened).
        rows : pandas.Series
            Spreadsheet row numbers of the dropped rows.
        reason : str
            A key of :data:`REASONS`.
        column : str, optional
            The source column at fault.
        values : pandas.Series, optional
            The offending values, aligned with ``rows``.
        message : str or pandas.Series, optional
            A plainer message than the reason's usual one (one for all rows, or one per
            row aligned with ``rows``), e.g. the ``org.yaml`` line that would keep the row.
        """
        if reason not in REASONS:
            raise ValueError(f"unknown ledger reason {reason!r}")
        if len(rows) == 0:
            return
        entry = self.files[file]
        vals = (
            values.astype("string").str.slice(0, 80).to_numpy()
            if values is not None
            else pd.array([pd.NA] * len(rows), dtype="string")
        )
        frame = pd.DataFrame(
            {
                "file": file,
                "table": entry.table,
                "row": pd.Series(rows).to_numpy(dtype="int64"),
                "column": column,
                "value": vals,
                "reason": reason,
                "message": (
                    REASONS[reason]
                    if message is None
                    else message
                    if isinstance(message, str)
                    else pd.Series(message).astype("string").to_numpy()
                ),
            }
        )
        entry.dropped.append(frame)

    def dropped_rows(self) -> pd.DataFrame:
        """Every dropped row, ordered by file and row."""
        frames = [d for e in self.files.values() for d in e.dropped]
        if not frames:
            return pd.DataFrame(
                {
                    "file": pd.Series([], dtype="string"),
                    "table": pd.Series([], dtype="string"),
                    "row": pd.Series([], dtype="int64"),
                    "column": pd.Series([], dtype="string"),
                    "value": pd.Series([], dtype="string"),
                    "reason": pd.Series([], dtype="string"),
                    "message": pd.Series([], dtype="string"),
                }
            )
        out = pd.concat(frames, ignore_index=True)
        for c in ("file", "table", "column", "value", "reason", "message"):
            out[c] = out[c].astype("string")
        return out.sort_values(["file", "row"], kind="stable").reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """One row per file: rows read, kept, dropped, and dropped rows per reason."""
        records = []
        for e in self.files.values():
            rec = {
                "file": e.file,
                "table": e.table,
                "rows_read": e.rows_read,
                "rows_kept": e.rows_kept,
                "rows_dropped": e.rows_dropped,
            }
            for d in e.dropped:
                for reason, n in d["reason"].value_counts().items():
                    rec[reason] = rec.get(reason, 0) + int(n)
            records.append(rec)
        out = pd.DataFrame(records)
        if out.empty:
            return pd.DataFrame(columns=["file", "table", "rows_read", "rows_kept", "rows_dropped"])
        reason_cols = [r for r in REASONS if r in out.columns]
        out[reason_cols] = out[reason_cols].fillna(0).astype("int64")
        return out[["file", "table", "rows_read", "rows_kept", "rows_dropped", *reason_cols]]

    def check(self) -> None:
        """Assert that every file reconciles: rows read = kept + dropped, none negative."""
        for e in self.files.values():
            if e.rows_kept < 0:
                raise AssertionError(f"ledger of {e.file} dropped more rows than it read")
            dup = sum(d["row"].duplicated().sum() for d in e.dropped)
            rows = pd.concat([d["row"] for d in e.dropped]) if e.dropped else pd.Series([])
            if dup or rows.duplicated().any():
                raise AssertionError(f"ledger of {e.file} dropped the same row twice")
