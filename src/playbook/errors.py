"""Errors the kit raises for problems a user can fix.

Every message says, in plain words, which file, which row and column, which value,
and what to change. The command line prints these without a traceback.
"""

from __future__ import annotations


class PlaybookError(Exception):
    """A problem with the user's data or settings that the user can fix."""


class NotEnoughData(PlaybookError):
    """The data are sound but too thin for an analysis (nothing to fix, only to wait for).

    For example: no customer has come back yet, so no lifetime-value model can learn.
    A report renders without the notebook that raised it and says why, instead of
    failing as a whole.
    """


class ConfigError(PlaybookError):
    """``org.yaml`` (merged with the package defaults) is not valid."""


class IntakeError(PlaybookError):
    """A source file cannot be used at all.

    Parameters
    ----------
    file : str
        The file, as the user knows it (relative to the organisation folder).
    problem : str
        What is wrong, in plain words.
    fix : str
        What to do about it.
    row : int, optional
        Row number as a spreadsheet shows it (the header is row 1).
    column : str, optional
        The source column name.
    value : object, optional
        The offending value.
    """

    def __init__(
        self,
        file: str,
        problem: str,
        fix: str,
        *,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        self.file = file
        self.problem = problem
        self.fix = fix
        self.row = row
        self.column = column
        self.value = value
        where = [f"file '{file}'"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        msg = f"Problem in {', '.join(where)}: {problem}"
        if value is not None:
            msg += f" (value: {value!r})"
        msg += f"\nWhat to do: {fix}"
        super().__init__(msg)
