"""Reading the canonical tables back, and the views every analysis shares."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from playbook.config import OrgConfig, load_org
from playbook.errors import PlaybookError
from playbook.parsing import isin
from playbook.schema import TABLE_NAMES, empty_table
from playbook.schema import OrderLines as OL


@dataclass
class Tables(Mapping[str, pd.DataFrame]):
    """The canonical tables of one organisation.

    Behaves like a read-only mapping from table name to frame; absent optional tables
    are empty frames with the right columns. ``available`` lists the tables that hold
    data, so notebooks can say what an absent table would unlock.
    """

    frames: dict[str, pd.DataFrame]
    available: frozenset[str] = field(default_factory=frozenset)
    _views: dict[Hashable, pd.DataFrame] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __getitem__(self, key: str) -> pd.DataFrame:
        return self.frames[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __getattr__(self, key: str) -> pd.DataFrame:
        frames = self.__dict__.get("frames", {})
        if key in frames:
            return frames[key]
        raise AttributeError(key)

    def has(self, name: str) -> bool:
        """Whether table ``name`` holds any rows."""
        return name in self.available

    def view(self, key: Hashable, make: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """A frame derived from these tables, made on first use and then reused.

        Several cells of a notebook ask for the same derived frame (ticket facts with
        their seasons, say); the tables do not change once loaded, so it is made once.
        Each caller gets its own shallow copy: with pandas' copy-on-write, changing it
        never changes the stored one.

        Parameters
        ----------
        key : hashable
            Names the view and every argument it depends on besides the tables.
        make : callable
            Builds the frame from the tables.

        Returns
        -------
        pandas.DataFrame
        """
        if key not in self._views:
            self._views[key] = make()
        return self._views[key].copy(deep=False)


def load_tables(org: str | Path | OrgConfig) -> Tables:
    """Load the canonical Parquet tables written by intake.

    Parameters
    ----------
    org : str, pathlib.Path or OrgConfig
        The organisation folder, or its loaded settings.

    Returns
    -------
    Tables
    """
    cfg = org if isinstance(org, OrgConfig) else load_org(org)
    folder = cfg.canonical_dir
    if not (folder / "order_lines.parquet").exists():
        raise PlaybookError(
            f"No canonical tables in '{folder}'.\n"
            f"What to do: run 'playbook intake {cfg.org_dir}' first."
        )
    frames = {}
    available = set()
    for name in TABLE_NAMES:
        path = folder / f"{name}.parquet"
        if path.exists():
            frames[name] = pd.read_parquet(path)
            if len(frames[name]):
                available.add(name)
        else:
            frames[name] = empty_table(name)
    return Tables(frames=frames, available=frozenset(available))


def effective_tickets(order_lines: pd.DataFrame) -> pd.DataFrame:
    """Ticket lines that stood: active, not void, and not reversed by a return or exchange.

    A returned or exchanged ticket is reversed by a line whose ``parent_line_id`` names
    it; those originals are left out, as are the reversing lines themselves. The new
    ticket of an exchange is an ordinary active line and stays. Comps stay (they count
    as attendance with zero revenue).

    Parameters
    ----------
    order_lines : pandas.DataFrame
        Canonical ``order_lines``.

    Returns
    -------
    pandas.DataFrame
        A subset of ``order_lines`` (same columns).
    """
    ol = order_lines
    reversed_ids = ol.loc[ol[OL.status].isin(["returned", "exchanged"]), OL.parent_line_id]
    keep = (
        (ol[OL.item_type] == "ticket")
        & (ol[OL.status] == "active")
        & ~isin(ol[OL.line_id], reversed_ids.dropna())
    )
    return ol.loc[keep]


def net_revenue(order_lines: pd.DataFrame) -> float:
    """Net paid amount over all lines that are not void (returns net themselves out)."""
    ol = order_lines
    return float(ol.loc[ol[OL.status] != "void", OL.paid_amount].sum())
