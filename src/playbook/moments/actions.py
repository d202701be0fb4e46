"""From moments to an action list staff can import into their CRM.

:func:`build_action_list` applies the rules, in this order:

1. **Anonymised customers never appear**, and customers flagged ``do_not_contact``
   (deceased, gone away, do not contact) get no action of any kind (reason ``do not
   contact``); their moments still count as found, and they stay in every analysis.
2. **Consent.** Each trigger names its channels in order of preference; a moment goes
   through the first channel the customer has granted (``consents.status`` is
   ``granted``). Channels that use no contact details (a note on the seat) need none.
   Service moments (an apology, a call after a complaint) follow the organisation's
   policy ``service_requires_consent`` (default ``false``: no consent needed where the
   customer has not said no). No moment, service ones included, ever uses a channel the
   customer has withdrawn (``consents.status`` is ``withdrawn``) or unsubscribed from:
   an email **unsubscribe** (an ``unsubscribe`` interaction) dated after the customer's
   latest email consent date, and on or before the day of the list, closes email. The
   moment moves to the trigger's next allowed channel, or is left out (reason
   ``unsubscribed``, ``opted out`` or ``no consent``).
3. **Not again too soon.** With earlier action lists given (``previous``), a moment
   already planned is not planned twice, and a trigger does not repeat for a customer
   within its ``repeat_after_days``.
4. **Control group.** A share of each trigger's moments (``control_share``) is held back
   so impact can be measured: a moment is in the control group when the first 8 bytes
   of ``sha256("<trigger id>:<customer id>")``, read as a fraction of 2⁶⁴, fall below
   the share. The same customer is always in or out for the same trigger. Control rows
   stay in the list, flagged ``group = control``, with no action; they take part in the
   spacing rule (as the moment would have) but use no staff time.
5. **Scheduling: spacing and weekly capacity together.** In rounds, each customer's
   best remaining moment (highest priority, then the earliest due date) is placed, week
   by week:

   - *spacing*: it is dropped when a moment already kept for the customer (in this list
     or an earlier one, at its final date) is less than ``min_days_between`` days away.
     A moment is only ever dropped for a moment that is actually kept, so when the
     winner is later dropped (over capacity), the customer's next moment gets its turn;
   - *capacity* of staff-delivered channels (calls, cards, seat notes): a week's places
     (less those taken by earlier lists' actions planned for that week) go to deferred
     moments first, then by priority. A moment that finds its channel full goes through
     its trigger's next allowed channel (e.g. a letter instead of a call) the same week;
     with none left, it moves to the next week (``deferred``) and is checked again
     there, spacing included. A moment pushed past its last useful day is dropped
     (``over capacity``); one whose every allowed channel has no capacity at all is
     dropped at once (``no capacity``).

   Because each round places one moment per customer, a week's staff places go to
   customers' best moments first, then to their next ones.

Every moment found is accounted for: found = actions + held back (control) + left out,
where every moment left out (anonymised customers' ones included, from
``moments.attrs["anonymised"]``, and do-not-contact customers' ones) is counted by trigger and reason:
:func:`excluded_table`.
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
from playbook.moments.data import NEVER, MomentData, locate, prepare_moments
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
    "do not contact": "the customer is flagged do not contact (deceased, gone away, …)",
    "opted out": (
        "the customer withdrew consent (opted out) on the trigger's channels, and no other "
        "channel is allowed"
    ),
    "no consent": "no consent on any of the trigger's channels",
    "unsubscribed": (
        "unsubscribed from email since their last email consent, and no consent on the "
        "trigger's other channels"
    ),
    "already planned": "the same moment is in an earlier action list",
    "repeat too soon": "the same trigger reached this customer recently",
    "spacing": (
        "another moment kept for this customer, in this list or an earlier one, is under "
        "min_days_between days away"
    ),
    "no capacity": "none of the allowed channels has any weekly capacity",
    "over capacity": (
        "staff capacity was full on every allowed channel until the moment's last useful day"
    ),
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
    withdrawals: bool = True,
) -> pd.Series:
    """The channel each moment goes through: the first of its trigger's channels allowed.

    Missing where no channel is allowed (no consent), and for customers flagged
    ``do_not_contact``. A channel is allowed when the
    customer granted its consent, or, for a service moment when
    ``service_requires_consent`` is false, when they have not withdrawn it; never after
    an email unsubscribe (for email), nor where the consent is ``withdrawn``.

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
    withdrawals : bool
        Whether withdrawn consents close their channel to service moments (``False``
        only to tell whether an opt-out was the reason).
    """
    out = pd.Series(pd.NA, index=moments.index, dtype="string")
    if moments.empty:
        return out
    first = channel_options(
        moments,
        data,
        settings,
        as_of=as_of,
        unsubscribes=unsubscribes,
        withdrawals=withdrawals,
    )[:, 0]
    return pd.Series(first, index=moments.index, dtype="string")


def channel_options(
    moments: pd.DataFrame,
    data: MomentData,
    settings: MomentSettings,
    *,
    as_of: Any = None,
    unsubscribes: bool = True,
    withdrawals: bool = True,
) -> np.ndarray:
    """Every channel each moment may go through, in its trigger's order of preference.

    A 2-d object array, one row per moment: column k is the k-th allowed channel (see
    :func:`resolve_channels` for what allows one), missing past the last. At least one
    column.
    """
    width = max((len(tc.channels) for tc in settings.triggers.values()), default=1)
    out = np.full((len(moments), max(width, 1)), None, dtype=object)
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
        filled = np.zeros(len(pos), dtype=np.int64)
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
                said_no = data.withdrawn.get(ch.consent) if withdrawals else None
                if said_no is not None and len(said_no):
                    not_withdrawn = ~(said_no[np.maximum(c, 0)] & (c >= 0))
                else:
                    not_withdrawn = np.ones(len(pos), dtype=bool)
                allowed = granted | (free_service[pos] & not_withdrawn)
                if ch.consent == "email":
                    allowed &= ~unsubscribed[pos]
            out[pos[allowed], filled[allowed]] = name
            filled += allowed
    if len(data.do_not_contact):  # no channel at all, not even a seat note
        out[(codes >= 0) & data.do_not_contact[np.maximum(codes, 0)]] = None
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


def _spacing_clash(batch: pd.DataFrame, kept: pd.DataFrame, min_days: int) -> np.ndarray:
    """Per row of ``batch``: a kept moment of the same customer is under ``min_days`` away."""
    if min_days <= 0 or batch.empty or kept.empty:
        return np.zeros(len(batch), dtype=bool)
    k = kept[[MC.customer_id, MC.due_date]].rename(columns={MC.due_date: "_kept"})
    j = batch[[MC.customer_id, MC.due_date]].reset_index(names="_i").merge(k, on=MC.customer_id)
    near = (j[MC.due_date] - j["_kept"]).abs() < pd.Timedelta(days=min_days)
    return batch.index.isin(j.loc[near, "_i"])


def _schedule(
    m: pd.DataFrame,
    opts: np.ndarray,
    s: MomentSettings,
    previous: pd.DataFrame | None,
    excluded: list[pd.DataFrame],
) -> pd.DataFrame:
    """Spacing and weekly capacity together (rule 5 of the module docstring).

    ``m`` has a unique index, ``_row`` (its row in ``opts``, the allowed channels of
    :func:`channel_options`) and ``_opt`` (which of them ``channel`` is). Loops over
    rounds (one moment per customer each), weeks and channel fallbacks, never over
    customers. Returns the moments kept, at their final dates; the others are counted.
    """
    caps = {name: ch.weekly_capacity for name, ch in s.channels.items()}
    n_opts = opts.shape[1]
    week_ns = pd.Timedelta(days=7)
    cols = [MC.customer_id, MC.due_date]
    kept_dates = (
        previous[cols].dropna() if previous is not None and len(previous) else m[cols].iloc[0:0]
    )
    used: dict[tuple[str, pd.Timestamp], int] = {}
    if previous is not None and len(previous) and AC.channel in previous:
        planned = previous.loc[
            previous[AC.channel].isin([k for k, v in caps.items() if v is not None])
            & (previous.get(AC.group, TREATMENT) != CONTROL)
        ]
        counts = planned.groupby(
            [planned[AC.channel].astype(str), week_start(planned[AC.due_date])]
        ).size()
        used = {(str(c), pd.Timestamp(w)): int(n) for (c, w), n in counts.items()}
    # whether any allowed channel has capacity at all (None: not limited)
    can = np.zeros(len(opts), dtype=bool)
    for k in range(n_opts):
        cap_k = pd.Series(opts[:, k]).map(lambda c: c is not None and caps.get(c) != 0)
        can |= cap_k.to_numpy(dtype=bool)
    m = m.assign(_can=can[m["_row"].to_numpy()], **{AC.deferred_weeks: 0})
    pending, kept = m, []
    while len(pending):  # rounds: each settles at most one moment per customer
        pending = pending.sort_values(
            [MC.priority, MC.due_date, MC.trigger_id, MC.moment_key],
            ascending=[False, True, True, True],
            kind="stable",
        )
        top = pending.drop_duplicates(MC.customer_id)
        pending = pending.drop(index=top.index)
        carry = top.assign(**{AC.week: week_start(top[MC.due_date])})
        week = carry[AC.week].min()
        placed: list[pd.DataFrame] = []
        while len(carry):  # weeks
            now = (carry[AC.week] == week).to_numpy()
            batch, later = carry.loc[now], carry.loc[~now]
            clash = _spacing_clash(batch, kept_dates, s.min_days_between)
            _count(excluded, batch.loc[clash], "spacing")
            batch = batch.loc[~clash]
            moved: list[pd.DataFrame] = [later]
            while len(batch):  # channel fallbacks within the week
                cap = batch[AC.channel].map(caps)
                free = cap.isna().to_numpy() | (batch[AC.group] == CONTROL).to_numpy()
                placed.append(batch.loc[free])
                staff = batch.loc[~free].sort_values(
                    [AC.deferred_weeks, MC.priority, MC.due_date, MC.customer_id],
                    ascending=[False, False, True, True],
                    kind="stable",
                )
                if staff.empty:
                    break
                room = staff[AC.channel].map(
                    {c: caps[c] - used.get((c, week), 0) for c in staff[AC.channel].unique()}
                )
                fits = (staff.groupby(AC.channel).cumcount() < room).to_numpy()
                took = staff.loc[fits]
                placed.append(took)
                for c, n in took[AC.channel].value_counts().items():
                    used[(str(c), week)] = used.get((str(c), week), 0) + int(n)
                over = staff.loc[~fits]
                nxt_pos = over["_opt"].to_numpy() + 1
                nxt = np.full(len(over), None, dtype=object)
                inside = nxt_pos < n_opts
                nxt[inside] = opts[over["_row"].to_numpy()[inside], nxt_pos[inside]]
                has_next = pd.notna(nxt)
                batch = over.loc[has_next].assign(
                    _opt=nxt_pos[has_next], **{AC.channel: nxt[has_next]}
                )
                rest = over.loc[~has_next]
                _count(excluded, rest.loc[~rest["_can"]], "no capacity")
                rest = rest.loc[rest["_can"]]
                rest = rest.assign(
                    _opt=0,
                    **{
                        AC.channel: opts[rest["_row"].to_numpy(), 0],
                        AC.deferred_weeks: rest[AC.deferred_weeks] + 1,
                        MC.due_date: rest[MC.due_date] + week_ns,
                        AC.week: rest[AC.week] + week_ns,
                    },
                )
                gone = (rest[MC.due_date] > rest[MC.expires]).to_numpy()
                _count(excluded, rest.loc[gone], "over capacity")
                moved.append(rest.loc[~gone])
            carry = pd.concat(moved)
            week = week + week_ns
            if len(carry):
                week = max(week, carry[AC.week].min())
        if placed:
            done = pd.concat(placed)
            kept.append(done)
            kept_dates = pd.concat([kept_dates, done[cols]], ignore_index=True)
    out = pd.concat(kept) if kept else m.iloc[0:0].assign(**{AC.week: pd.NaT})
    return out.drop(columns=["_can"])


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
        Earlier action lists (``customer_id, trigger_id, due_date, moment_key``, and
        ``channel, group`` for their planned staff actions to take that week's places),
        as read by :func:`read_action_lists`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ACTION_COLUMNS` (names in :class:`ActionCols`), treatment rows
        first, by due date and priority. :func:`excluded_table` counts the dropped
        moments by trigger and reason; ``attrs["as_of"]`` is the day of the list and
        ``attrs["found"]`` the moments found (anonymised customers' ones included), so
        that found = rows (actions and control) + moments left out.
    """
    data = source if isinstance(source, MomentData) else prepare_moments(source)
    s = settings or moment_settings(cfg)
    as_of = pd.Timestamp(as_of if as_of is not None else moments.attrs.get("as_of"))
    today = as_of.normalize()
    excluded: list[pd.DataFrame] = []
    m = moments.copy()

    # 1. anonymised (find_moments already took theirs out, and counted them)
    for tid, n in (moments.attrs.get("anonymised") or {}).items():
        if n:
            excluded.append(pd.DataFrame({MC.trigger_id: [tid], "moments": [int(n)]}))
            excluded[-1]["reason"] = "anonymised"
    m = m.reset_index(drop=True)
    codes = locate(m[MC.customer_id], data.ids)
    anon = (codes >= 0) & data.anonymised[np.maximum(codes, 0)]
    _count(excluded, m.loc[anon], "anonymised")
    # do not contact (deceased, gone away …): no action of any kind
    dnc = np.zeros(len(codes), dtype=bool)
    if len(data.do_not_contact):
        dnc = (codes >= 0) & data.do_not_contact[np.maximum(codes, 0)] & ~anon
    _count(excluded, m.loc[dnc], "do not contact")
    m = m.loc[~anon & ~dnc]

    # 2. consent (an email unsubscribe since the last email consent closes email)
    opts = channel_options(m, data, s, as_of=today)
    m = m.reset_index(drop=True)
    m["_row"] = np.arange(len(m), dtype=np.int64)
    m["_opt"] = 0
    m[AC.channel] = pd.Series(opts[:, 0], index=m.index, dtype="string")
    lost = m.loc[m[AC.channel].isna()]
    by_unsub = resolve_channels(lost, data, s, unsubscribes=False).notna()
    both_off = resolve_channels(lost, data, s, unsubscribes=False, withdrawals=False)
    by_opt_out = ~by_unsub & both_off.notna()
    _count(excluded, lost.loc[by_unsub], "unsubscribed")
    _count(excluded, lost.loc[by_opt_out], "opted out")
    _count(excluded, lost.loc[~by_unsub & ~by_opt_out], "no consent")
    m = m.loc[m[AC.channel].notna()].copy()
    m[MC.due_date] = m[MC.due_date].where(m[MC.due_date] >= today, today)

    # 3. earlier lists
    if previous is not None and len(previous):
        previous = previous.copy()
        previous[AC.due_date] = pd.to_datetime(previous[AC.due_date])
        m = _against_previous(m, previous, s, excluded)

    # source ids (before scheduling: a moment that cannot be listed takes no place)
    if id_map is not None:  # the first row of the map counts for each customer
        pos = locate(m[MC.customer_id], id_map["customer_id"])
        source = id_map["source_customer_id"].astype("string").array
        m[AC.source_customer_id] = pd.Series(
            source.take(pos, allow_fill=True), index=m.index, dtype="string"
        )
        _count(excluded, m.loc[m[AC.source_customer_id].isna()], "no source id")
        m = m.loc[m[AC.source_customer_id].notna()]
    else:
        m[AC.source_customer_id] = pd.Series(pd.NA, index=m.index, dtype="string")

    # 4. control group
    share = m[MC.trigger_id].map({k: v.control_share for k, v in s.triggers.items()}).astype(float)
    draw = control_draw(m[MC.trigger_id], m[MC.customer_id])
    m[AC.group] = np.where(draw < share.to_numpy(), CONTROL, TREATMENT)

    # 5. spacing and weekly capacity, against what is kept (earlier lists included)
    out = _schedule(m, opts, s, previous, excluded).drop(columns=["_row", "_opt"])

    # wording, tidy columns
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
    out.attrs["found"] = len(moments) + sum((moments.attrs.get("anonymised") or {}).values())
    return out


def excluded_table(actions: pd.DataFrame) -> pd.DataFrame:
    """Moments left out of an action list: ``trigger_id, reason, moments``."""
    records = actions.attrs.get("excluded") or []
    return pd.DataFrame(records, columns=[MC.trigger_id, "reason", "moments"])


def _against_previous(
    m: pd.DataFrame, previous: pd.DataFrame, s: MomentSettings, excluded: list[pd.DataFrame]
) -> pd.DataFrame:
    prev = previous[[AC.customer_id, AC.trigger_id, AC.due_date, AC.moment_key]]
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
    return m


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


PREVIOUS_COLUMNS = (AC.customer_id, AC.trigger_id, AC.due_date, AC.moment_key)


def list_day(path: str | Path) -> pd.Timestamp | None:
    """The day of an action list from its name ``actions_YYYY-MM-DD.csv`` (else None)."""
    stem = Path(path).stem
    if not stem.startswith("actions_"):
        return None
    text = stem.removeprefix("actions_")
    if len(text) != 10:
        return None
    stamp = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    return None if pd.isna(stamp) else pd.Timestamp(stamp)


def is_action_list(path: str | Path) -> bool:
    """Whether a CSV file starts with the action list's header (:data:`ACTION_COLUMNS`)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            head = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return False
    return set(PREVIOUS_COLUMNS) <= set(head.split(","))


def action_list_files(folder: str | Path, before: Any = None) -> list[Path]:
    """Earlier action lists in a folder: ``actions_YYYY-MM-DD.csv`` dated before ``before``."""
    cutoff = pd.Timestamp(before).normalize() if before is not None else None
    out = []
    for f in sorted(Path(folder).glob("actions_*.csv")):
        stamp = list_day(f)
        if stamp is None or (cutoff is not None and stamp >= cutoff):
            continue
        out.append(f)
    return out


def read_action_lists(folder: str | Path | Iterable[Path], before: Any = None) -> pd.DataFrame:
    """Earlier action lists (``actions_YYYY-MM-DD.csv``) made before ``before``.

    ``folder`` is a folder (its lists dated before ``before``) or the list files
    themselves. Used as ``previous`` for :func:`build_action_list` so weekly runs do
    not repeat themselves. A moment in several lists counts once (its latest list).
    """
    files = (
        action_list_files(folder, before)
        if isinstance(folder, str | Path)
        else [Path(f) for f in folder]
    )
    cols = [*PREVIOUS_COLUMNS, AC.channel, AC.group]
    frames = []
    for f in files:
        df = pd.read_csv(f, dtype="string", encoding="utf-8-sig", usecols=lambda c: c in cols)
        frames.append(df.reindex(columns=cols))
    if not frames:
        return pd.DataFrame({c: pd.Series([], dtype="string") for c in cols}).assign(
            **{AC.due_date: pd.Series([], dtype="datetime64[ns]")}
        )
    out = pd.concat(frames, ignore_index=True)
    out = out.drop_duplicates(AC.moment_key, keep="last").reset_index(drop=True)
    out[AC.due_date] = pd.to_datetime(out[AC.due_date])
    return out
