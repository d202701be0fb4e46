"""Sub-commands of ``playbook``: one module each, each with ``register(subparsers)``.

Shared here: :func:`iso_date`, the one way every command reads a date from the command
line.
"""

from __future__ import annotations

import datetime as dt
import re

from playbook.errors import PlaybookError

_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_date(value: str | None, option: str) -> dt.date | None:
    """A command-line date written as YYYY-MM-DD (None stays None).

    Only that form is accepted, whatever the organisation's ``locale_dayfirst``: a date
    such as ``03/04/2025`` reads as 3 April in one country and 4 March in another, so
    it is refused rather than guessed.

    Parameters
    ----------
    value : str or None
        The text given on the command line.
    option : str
        The option's name as typed (``--as-of``), for the message.

    Raises
    ------
    PlaybookError
        When the value is not a real date written YYYY-MM-DD.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        if not _ISO.fullmatch(text):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PlaybookError(
            f"{option} {value!r} is not a date written YYYY-MM-DD.\n"
            f"What to do: write the date as year-month-day, e.g. {option} 2025-03-27 for "
            "27 March 2025 (other forms such as 27/03/2025 or 03/27/2025 are not accepted, "
            "so a day and a month are never swapped)."
        ) from None
