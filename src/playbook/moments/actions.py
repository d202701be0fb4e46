"""From moments to an action list staff can import into their CRM.

:func:`build_action_list` applies the rules, in this order:

1. **Anonymised customers never appear.**
2. **Consent.** Each trigger names its channels in order of preference; a moment goes
   through the first channel the customer has granted (``consents.status`` is
   ``granted``). Channels that use no contact details (a note on the seat) need none.
   Service moments (an apology, a call after a complaint) follow the organisation's
   policy ``service_requires_consent`` (default: no consent needed). An email
   **unsubscribe** (an ``unsubscribe`` interaction) dated after the customer's latest
   email consent date, and on or before the day of the list, closes email for every
   moment: the moment moves to the trigger's next consented channel, or is left out
   (reason ``unsubscribed``).
3. **Not again too soon.** With earlier action lists given (``previous``), a moment
   already planned is not planned twice, a trigger does not repeat for a customer within
   its ``repeat_after_days``, and the spacing rule below counts earlier moments too.
4. **At most one moment per customer per ``min_days_between`` days**; the highest
   priority wins (then the earliest due date).
5. **Control group.** A share of each trigger's moments (``control_share``) is held back
   so impact can be measured: a moment is in the control group when the first 8 bytes
   of ``sha256("<trigger id>:<customer id>")``, read as a fraction of 2⁶⁴, fall below
   the share. The same customer is always in or out for the same trigger. Control rows
   stay in the list, flagged ``group = control``, with no action.
6. **Weekly capacity** of staff-delivered channels (calls, cards, seat notes): the
   highest priorities in a week are kept; the rest move to the next week (``deferred``),
   ahead of that week's new moments. A moment pushed past its last useful day is
   dropped and counted.

Every dropped moment is counted by trigger and reason: :func:`excluded_table`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from playbook.config import OrgConfig
from playbook.errors import PlaybookError
from playbook.moments.data import NEVER, MomentData, locate, lookup, prepare_moments
from playbook.moments.find import MC, fill_wording
from playbook.moments.library import MomentSettings, moment_settings
from playbook.parsing import isin
from playbook.tables import Tables

ID_MAP_FILE = "id_map.parquet"
TREATMENT, CONTROL = "treatment", "control"
CONTROL_WORDING = "Control group: no action (held back to measure the effect)"


class ActionCols:
    """Column names of the action list (:func:`build_action_list`), in file order."""

    source_customer_id = "source_customer_id"
    due_date = "due_date"
    week = "week"
    trigger_id = "trigger_id"
    trigger = "trigger"
    epic = "epic"
    stage = "stage"
    channel = "channel"
    group = "group"
    priority = "priority"
    value = "value"
    likelihood = "likelihood"
    unit_cost = "unit_cost"
    title = "title"
    event_date = "event_date"
    detail = "detail"
    wording = "wording"
    deferred = "deferred"
    deferred_weeks = "deferred_weeks"
    expires = "expires"
    customer_id = "customer_id"
    moment_key = "moment_key"


AC = ActionCols
ACTION_COLUMNS: tuple[str, ...] = tuple(
    v for k, v in vars(ActionCols).items() if not k.startswith("_")
)

# Reasons a moment does not reach the list.
REASONS: dict[str, str] = {
    "anonymised": "the customer record is anonymised",
    "no consent": "no consent on any of the trigger's channels",
    "unsubscribed": (
        "unsubscribed from email since their last email consent, and no consent on the "
        "trigger's other channels"
    ),
    "already planned": "the same moment is in an earlier action list",
    "repeat too soon": "the same trigger reached this customer recently",
    "spacing": "another moment for this customer won (one per min_days_between days)",
    "no capacity": "the channel has no weekly capacity",
    "over capacity": "staff capacity was full until the moment's last useful day",
    "no source id": "the customer is not in the id map",
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def control_draw(trigger_ids: Iterable[str], customer_ids: Iterable[str]) -> np.ndarray:
    """A number in [0, 1) per (trigger, customer): the first 8 bytes of sha256, / 2⁶⁴.

    Deterministic, platform independent and reproducible in any language, so an analyst
    can check who was held back.
    """
    t, c = (
        x if isinstance(x, pd.Series) else pd.Series(list(x), dtype=object)
        for x in (trigger_ids, customer_ids)
    )
    if len(t) != len(c):
        raise ValueError("control_draw needs as many trigger ids as customer ids")
    if len(t) == 0:
        return np.zeros(0)
    # hash each distinct (trigger, customer) pair once
    t_code, t_uniq = pd.factorize(t, use_na_sentinel=False)
    c_code, c_uniq = pd.factorize(c, use_na_sentinel=False)
    n_c = len(c_uniq)
    pair, pairs = pd.factorize(t_code.astype(np.int64) * n_c + c_code)
    t_uniq, c_uniq = np.asarray(t_uniq, dtype=object), np.asarray(c_uniq, dtype=object)
    draws = np.array(
        [
            int.from_bytes(hashlib.sha256(f"{tv}:{cv}".encode()).digest()[:8], "big") / 2.0**64
            for tv, cv in zip(t_uniq[pairs // n_c], c_uniq[pairs % n_c], strict=True)
        ]
    )
    return draws[pair]


def load_id_map(cfg: OrgConfig) -> pd.DataFrame:
    """The private id map: ``customer_id`` (pseudonym) → ``source_customer_id``."""
    path = cfg.private_dir / ID_MAP_FILE
    if not path.exists():
        raise PlaybookError(
            f"No id map in '{cfg.private_dir}': the action list needs the organisation's own "
            f"customer numbers.\nWhat to do: run 'playbook intake {cfg.org_dir}' first."
        )
    return pd.read_parquet(path)


def week_start(dates: pd.Series) -> pd.Series:
    """The Monday of each date's week."""
    d = pd.to_datetime(dates).dt.normalize()
    return d - pd.to_timedelta(d.dt.day_of_week, unit="D")


def resolve_channels(
    moments: pd.DataFrame,
    data: MomentData,
    settings: MomentSettings,
    *,
    as_of: Any = None,
    unsubscribes: bool = True,
) -> pd.Series:
    """The channel each moment goes through: the first of its trigger's channels allowed.

    Missing where no channel is allowed (no consent).

    Parameters
    ----------
    moments : pandas.DataFrame
        Moments (``customer_id, trigger_id, kind``).
    data : MomentData
        Consents and email unsubscribes.
    settings : MomentSettings
        Channels and their consent.
    as_of : date-like or pandas.Series, optional
        The day the list is made (or one day per moment, aligned with ``moments``). An
        email unsubscribe after the customer's latest email consent date and on or
        before that day closes the email channel, for every kind of moment. Default:
        ``moments.attrs["as_of"]``; without either, every such unsubscribe counts.
    unsubscribes : bool
        Whether email unsubscribes count (``False`` only to tell, for a moment left
        without a channel, whether the unsubscribe was the reason).
    """
    out = pd.Series(pd.NA, index=moments.index, dtype="string")
    if moments.empty:
        return out
    codes = locate(moments[MC.customer_id], data.ids)
    service = (moments[MC.kind] == "service").to_numpy(dtype=bool)
    free_service = service & (not settings.service_requires_consent)
    unsubscribed = (
        _unsubscribed_by(codes, data, as_of if as_of is not None else moments.attrs.get("as_of"))
        if unsubscribes
        else np.zeros(len(codes), dtype=bool)
    )
    for tid, idx in moments.groupby(MC.trigger_id, sort=False).groups.items():
        tc = settings.triggers.get(str(tid))
        if tc is None:
            continue
        pos = moments.index.get_indexer(idx)
        open_ = np.ones(len(pos), dtype=bool)
        for name in tc.channels:
            ch = settings.channels[name]
            if ch.consent is None:
                allowed = np.ones(len(pos), dtype=bool)
            else:
                flags = data.consent.get(ch.consent)
                c = codes[pos]
                granted = (
                    flags[np.maximum(c, 0)] & (c >= 0)
                    if flags is not None
                    else np.zeros(len(pos), dtype=bool)
                )
                allowed = granted | free_service[pos]
                if ch.consent == "email":
                    allowed &= ~unsubscribed[pos]
            take = open_ & allowed
            out.iloc[pos[take]] = name
            open_ &= ~take
    return out


def _unsubscribed_by(codes: np.ndarray, data: MomentData, as_of: Any) -> np.ndarray:
    """Per moment: its customer unsubscribed from email (after consenting) by ``as_of``.

    ``as_of`` counts to the end of its day; None: any such unsubscribe counts.
    """
    first = data.email_unsubscribed
    if len(first) == 0 or len(codes) == 0:
        return np.zeros(len(codes), dtype=bool)
    when = np.where(codes >= 0, first[np.maximum(codes, 0)], NEVER)
    if as_of is None:
        return when != NEVER
    if isinstance(as_of, pd.Series):
        end = pd.to_datetime(as_of).dt.normalize() + pd.Timedelta(days=1)
        limit = end.astype("datetime64[ns]").to_numpy().view("int64")
    else:
        limit = (pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)).value
    return when < limit


def _count(excluded: list[pd.DataFrame], rows: pd.DataFrame, reason: str) -> None:
    if len(rows):
        c = rows.groupby(MC.trigger_id).size().rename("moments").reset_index()
        c["reason"] = reason
        excluded.append(c)


def _one_per_customer(cand: pd.DataFrame, min_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Greedy: each customer's best moment wins; others within ``min_days`` of a winner go.

    Rounds, not customers, are looped over: round k settles everyone's k-th moment.
    """
    cand = cand.sort_values(
        [MC.priority, MC.due_date, MC.trigger_id], ascending=[False, True, True], kind="stable"
    )
    if min_days <= 0 or cand.empty:
        return cand, cand.iloc[0:0]
    kept, dropped = [], []
    remaining = cand
    gap = pd.Timedelta(days=min_days)
    while len(remaining):
        top = remaining.drop_duplicates(MC.customer_id)
        kept.append(top)
        rest = remaining.drop(index=top.index)
        won = top.set_index(MC.customer_id)[MC.due_date]
        their = lookup(rest[MC.customer_id], won)
        clash = their.notna() & ((rest[MC.due_date] - their).abs() < gap)
        dropped.append(rest.loc[clash])
        remaining = rest.loc[~clash]
    return pd.concat(kept), pd.concat(dropped)


def _apply_capacity(
    treated: pd.DataFrame, settings: MomentSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Weekly capacity per staff channel: overflow moves to the next week.

    Returns (kept, over capacity, no capacity). Loops over weeks, never over customers.
    """
    treated = treated.copy()
    treated[AC.deferred_weeks] = 0
    out, over, none = [], [], []
    for name, part in treated.groupby(AC.channel, sort=False):
        cap = settings.channels[str(name)].weekly_capacity
        if cap is None:
            out.append(part)
            continue
        if cap == 0:
            none.append(part)
            continue
        part = part.copy()
        part[AC.week] = week_start(part[AC.due_date])
        week = part[AC.week].min()
        placed = []
        while len(part):
            now = part[AC.week] == week
            cur = part.loc[now].sort_values(
                [AC.deferred_weeks, MC.priority], ascending=[False, False], kind="stable"
            )
            placed.append(cur.iloc[:cap])
            late = cur.iloc[cap:].copy()
            late[AC.deferred_weeks] += 1
            late[AC.due_date] = late[AC.due_date] + pd.Timedelta(days=7)
            late[AC.week] = late[AC.week] + pd.Timedelta(days=7)
            gone = late[AC.due_date] > late[MC.expires]
            over.append(late.loc[gone])
            part = pd.concat([part.loc[~now], late.loc[~gone]])
            week = week + pd.Timedelta(days=7)
            if len(part):
                week = max(week, part[AC.week].min())
        out.extend(placed)
    empty = treated.iloc[0:0]
    return (
        pd.concat(out) if out else empty,
        pd.concat(over) if over else empty,
        pd.concat(none) if none else empty,
    )


# ---------------------------------------------------------------------------
# The action list
# ---------------------------------------------------------------------------
def build_action_list(
    moments: pd.DataFrame,
    source: Tables | MomentData,
    *,
    as_of: Any = None,
    settings: MomentSettings | None = None,
    cfg: OrgConfig | None = None,
    id_map: pd.DataFrame | None = None,
    previous: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Turn moments into a dated, consent-aware action list (rules in the module docstring).

    Parameters
    ----------
    moments : pandas.DataFrame
        From :func:`playbook.moments.find_moments`.
    source : Tables or MomentData
        For consents and the anonymised flag.
    as_of : date-like, optional
        The day the list is made: moments already due are scheduled from this day
        (default: ``moments.attrs["as_of"]``).
    settings : MomentSettings, optional
        Default: :func:`moment_settings` of ``cfg``.
    cfg : OrgConfig, optional
        Organisation settings.
    id_map : pandas.DataFrame, optional
        ``customer_id, source_customer_id`` (:func:`load_id_map`). Without it the
        source id column is left empty.
    previous : pandas.DataFrame, optional
        Earlier action lists (``customer_id, trigger_id, due_date, moment_key``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ACTION_COLUMNS` (names in :class:`ActionCols`), treatment rows
        first, by due date and priority. :func:`excluded_table` counts the dropped
        moments by trigger and reason; ``attrs["as_of"]`` is the day of the list.
    """
    data = source if isinstance(source, MomentData) else prepare_moments(source)
    s = settings or moment_settings(cfg)
    as_of = pd.Timestamp(as_of if as_of is not None else moments.attrs.get("as_of"))
    today = as_of.normalize()
    excluded: list[pd.DataFrame] = []
    m = moments.copy()

    # 1. anonymised
    codes = locate(m[MC.customer_id], data.ids)
    anon = (codes >= 0) & data.anonymised[np.maximum(codes, 0)]
    _count(excluded, m.loc[anon], "anonymised")
    m = m.loc[~anon]

    # 2. consent (an email unsubscribe since the last email consent closes email)
    m[AC.channel] = resolve_channels(m, data, s, as_of=today)
    lost = m.loc[m[AC.channel].isna()]
    by_unsub = resolve_channels(lost, data, s, unsubscribes=False).notna()
    _count(excluded, lost.loc[by_unsub], "unsubscribed")
    _count(excluded, lost.loc[~by_unsub], "no consent")
    m = m.loc[m[AC.channel].notna()].copy()
    m[MC.due_date] = m[MC.due_date].where(m[MC.due_date] >= today, today)

    # 3. earlier lists
    if previous is not None and len(previous):
        m = _against_previous(m, previous, s, excluded)

    # 4. one moment per customer per min_days_between
    m, clash = _one_per_customer(m, s.min_days_between)
    _count(excluded, clash, "spacing")

    # 5. control group
    share = m[MC.trigger_id].map({k: v.control_share for k, v in s.triggers.items()}).astype(float)
    draw = control_draw(m[MC.trigger_id], m[MC.customer_id])
    m[AC.group] = np.where(draw < share.to_numpy(), CONTROL, TREATMENT)
    treated, control = m.loc[m[AC.group] == TREATMENT], m.loc[m[AC.group] == CONTROL].copy()
    control[AC.deferred_weeks] = 0

    # 6. weekly capacity of staff channels
    treated, over, none = _apply_capacity(treated, s)
    _count(excluded, over, "over capacity")
    _count(excluded, none, "no capacity")
    out = pd.concat([treated, control])

    # source ids, wording, tidy columns
    if id_map is not None:  # the first row of the map counts for each customer
        pos = locate(out[MC.customer_id], id_map["customer_id"])
        source = id_map["source_customer_id"].astype("string").array
        out[AC.source_customer_id] = pd.Series(
            source.take(pos, allow_fill=True), index=out.index, dtype="string"
        )
        _count(excluded, out.loc[out[AC.source_customer_id].isna()], "no source id")
        out = out.loc[out[AC.source_customer_id].notna()]
    else:
        out[AC.source_customer_id] = pd.Series(pd.NA, index=out.index, dtype="string")
    out[AC.wording] = fill_wording(out, s)
    out.loc[out[AC.group] == CONTROL, AC.wording] = CONTROL_WORDING
    out[AC.week] = week_start(out[AC.due_date])
    out[AC.deferred_weeks] = out[AC.deferred_weeks].astype("int64")
    out[AC.deferred] = out[AC.deferred_weeks] > 0
    out["_control"] = out[AC.group] == CONTROL
    out = out.sort_values(
        ["_control", AC.due_date, AC.priority, AC.customer_id],
        ascending=[True, True, False, True],
        kind="stable",
    )
    out = out[list(ACTION_COLUMNS)].reset_index(drop=True)
    for c in (AC.channel, AC.group, AC.wording):
        out[c] = out[c].astype("string")
    # plain records, not a frame: pandas compares attrs when combining frames
    out.attrs["excluded"] = (
        pd.concat(excluded, ignore_index=True)
        .groupby([MC.trigger_id, "reason"], as_index=False)["moments"]
        .sum()
        .to_dict(orient="records")
        if excluded
        else []
    )
    out.attrs["as_of"] = today
    return out


def excluded_table(actions: pd.DataFrame) -> pd.DataFrame:
    """Moments left out of an action list: ``trigger_id, reason, moments``."""
    records = actions.attrs.get("excluded") or []
    return pd.DataFrame(records, columns=[MC.trigger_id, "reason", "moments"])


def _against_previous(
    m: pd.DataFrame, previous: pd.DataFrame, s: MomentSettings, excluded: list[pd.DataFrame]
) -> pd.DataFrame:
    prev = previous[[AC.customer_id, AC.trigger_id, AC.due_date, AC.moment_key]].copy()
    prev[AC.due_date] = pd.to_datetime(prev[AC.due_date])
    again = isin(m[MC.moment_key], prev[AC.moment_key])
    _count(excluded, m.loc[again], "already planned")
    m = m.loc[~again]
    # same trigger, same customer, within repeat_after_days
    repeat = (
        m[MC.trigger_id].map({k: v.repeat_after_days for k, v in s.triggers.items()}).astype(float)
    )
    last = prev.groupby([AC.customer_id, AC.trigger_id])[AC.due_date].max()
    key = pd.MultiIndex.from_arrays([m[MC.customer_id], m[MC.trigger_id]])
    before = pd.Series(last.reindex(key).to_numpy(), index=m.index)
    too_soon = before.notna() & ((m[MC.due_date] - before).dt.days < repeat)
    _count(excluded, m.loc[too_soon], "repeat too soon")
    m = m.loc[~too_soon]
    # spacing against any earlier moment for the customer
    latest = prev.groupby(AC.customer_id)[AC.due_date].max()
    near = lookup(m[MC.customer_id], latest)
    clash = near.notna() & ((m[MC.due_date] - near).dt.days.abs() < s.min_days_between)
    _count(excluded, m.loc[clash], "spacing")
    return m.loc[~clash]


# ---------------------------------------------------------------------------
# Writing it safely
# ---------------------------------------------------------------------------
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading single quote.

    Cells starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are
    prefixed with ``'`` (the OWASP advice against CSV injection). Numbers and dates are
    left alone.
    """
    out = df.copy()
    for c in out.columns:
        col = out[c]
        if pd.api.types.is_string_dtype(col) or col.dtype == object:
            text = col.astype("string")
            risky = text.str.startswith(DANGEROUS_START).fillna(False).astype(bool)
            out[c] = text.where(~risky, "'" + text)
    return out


def write_action_list(actions: pd.DataFrame, path: str | Path) -> Path:
    """Write the action list as a spreadsheet-safe CSV (UTF-8 with BOM, dates as YYYY-MM-DD).

    Only the columns of :data:`ACTION_COLUMNS` are written: ids, the moment and what to
    do. There are no names, emails, phone numbers or addresses in it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = actions[list(ACTION_COLUMNS)].copy()
    for c in (AC.due_date, AC.week, AC.event_date, AC.expires):
        out[c] = pd.to_datetime(out[c]).dt.strftime("%Y-%m-%d").astype("string")
    for c in (AC.priority, AC.value):
        out[c] = out[c].round(2)
    out[AC.likelihood] = out[AC.likelihood].round(4)
    neutralise_cells(out).to_csv(path, index=False, encoding="utf-8-sig")
    return path


def read_action_lists(folder: str | Path, before: Any = None) -> pd.DataFrame:
    """Earlier action lists in a folder (``actions_*.csv``), made before ``before``.

    Used as ``previous`` for :func:`build_action_list` so weekly runs do not repeat
    themselves.
    """
    files = sorted(Path(folder).glob("actions_*.csv"))
    cutoff = pd.Timestamp(before).normalize() if before is not None else None
    frames = []
    for f in files:
        stamp = pd.to_datetime(f.stem.removeprefix("actions_"), errors="coerce")
        if cutoff is not None and (pd.isna(stamp) or stamp >= cutoff):
            continue
        df = pd.read_csv(
            f,
            dtype="string",
            encoding="utf-8-sig",
            usecols=[AC.customer_id, AC.trigger_id, AC.due_date, AC.moment_key],
        )
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=[AC.customer_id, AC.trigger_id, AC.due_date, AC.moment_key])
    out = pd.concat(frames, ignore_index=True)
    out[AC.due_date] = pd.to_datetime(out[AC.due_date])
    return out
