"""Evaluating the trigger library: :func:`find_moments`.

Every enabled trigger is evaluated over all customers at once for one as-of instant.
A trigger whose data is absent is skipped and reported ("needs memberships"), never an
error. The result has one row per moment with what to do, when, and how much it is
worth doing:

- **value** — what a response is worth, in the organisation's currency: a trigger's
  fixed ``value``, or (``value: customer``) the customer's own value, i.e. their
  lifetime value when CLV predictions are given, otherwise what they paid in the last
  ``value_window_days`` (tickets, subscriptions, memberships, gifts), never below
  ``value_floor``;
- **likelihood** — the chance the moment earns that response: the trigger's
  ``likelihood`` (a response rate, e.g. 0.11 for the second-date offer) times the
  moment's weight (e.g. ×2 for first-year members, who lapse far more often);
- **priority** = value × likelihood: the expected return of the moment, used to pick
  one moment per customer and to fill limited staff time first where it counts most.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from playbook.config import OrgConfig
from playbook.moments.data import Arrays, MomentData, gather, locate, prepare_moments, take
from playbook.moments.library import MomentSettings, TriggerConfig, moment_settings
from playbook.moments.triggers import Evaluation, complete, day, days, frame, stack
from playbook.tables import Tables


class MomentCols:
    """Column names of the moments frame (:func:`find_moments`)."""

    customer_id = "customer_id"
    trigger_id = "trigger_id"
    trigger = "trigger"
    epic = "epic"
    stage = "stage"
    kind = "kind"
    fired_at = "fired_at"
    due_date = "due_date"
    expires = "expires"
    channel = "channel"
    production_id = "production_id"
    title = "title"
    artform = "artform"
    event_date = "event_date"
    detail = "detail"
    unit_cost = "unit_cost"
    value = "value"
    likelihood = "likelihood"
    priority = "priority"
    moment_key = "moment_key"


MC = MomentCols
MOMENT_COLUMNS: tuple[str, ...] = tuple(
    v for k, v in vars(MomentCols).items() if not k.startswith("_")
)


def missing_needs(
    tc: TriggerConfig,
    data: MomentData,
    features: pd.DataFrame | None = None,
    clv: pd.DataFrame | None = None,
) -> list[str]:
    """What a trigger needs that is not there (empty list: it can run)."""
    inputs = {"features": features is not None, "clv": clv is not None}
    missing = []
    for need in tc.spec.needs:
        ok = inputs[need] if need in inputs else data.has(need)
        if not ok:
            missing.append(need)
    if tc.custom and features is not None:
        cols = [c.feature for c in (*tc.conditions, *tc.any_conditions)]
        missing += [f"feature {c}" for c in cols if c not in features.columns]
    return missing


def _features(data: MomentData, as_of: pd.Timestamp, cfg: OrgConfig | None) -> pd.DataFrame | None:
    """The per-customer feature table, when the features module and the tables are there."""
    try:
        from playbook.features import build_features, prepare
    except ImportError:
        return None
    if data.tables is None:
        return None
    prep = data.cache.get("features_prep")
    if prep is None:
        prep = data.cache["features_prep"] = prepare(data.tables, cfg)
    return build_features(prep, as_of, cfg)


def evaluate_custom(tc: TriggerConfig, ev: Evaluation) -> Arrays:
    """A custom trigger: customers whose features meet every condition (and any of ``any``)."""
    f = ev.features
    ok = np.ones(len(f), dtype=bool)
    for c in tc.conditions:
        ok &= c.mask(f)
    if tc.any_conditions:
        either = np.zeros(len(f), dtype=bool)
        for c in tc.any_conditions:
            either |= c.mask(f)
        ok &= either
    cust = locate(f.index[ok], ev.data.ids)
    cust = cust[cust >= 0]
    return frame(cust, np.full(len(cust), ev.t), np.full(len(cust), ev.today))


def evaluate(
    data: MomentData,
    settings: MomentSettings,
    as_of: pd.Timestamp,
    *,
    chosen: list[TriggerConfig],
    features: pd.DataFrame | None = None,
    clv: pd.DataFrame | None = None,
    horizon_days: int = 0,
    due_between: tuple[Any, Any] | None = None,
    anonymised: dict[str, int] | None = None,
) -> tuple[Arrays, dict[str, str]]:
    """The moments of the chosen triggers as arrays (``tix`` = index in ``chosen``).

    The engine behind :func:`find_moments` and :func:`playbook.moments.backtest`:
    integer codes only, no strings, so it can run for every week of a season.
    Anonymised customers are removed (counted per trigger id in ``anonymised`` when a
    dict is given); ``value`` is filled in. Moments are due on or before the last day
    of the horizon: the as-of day plus ``horizon_days - 1`` (the as-of day alone for 0).
    """
    t = np.int64(as_of.value)
    today = day(t)
    shared: dict[str, Any] = {}
    parts, skipped = [], {}
    for i, tc in enumerate(chosen):
        missing = missing_needs(tc, data, features, clv)
        if missing:
            skipped[tc.id] = "needs " + ", ".join(missing)
            continue
        if due_between is not None:
            lo = day(np.int64(pd.Timestamp(due_between[0]).value))
            hi = day(np.int64(pd.Timestamp(due_between[1]).value))
        else:
            lo = today - days(tc.window_days)
            hi = today + days(max(int(horizon_days), 1) - 1)  # N days: as-of … as-of + N - 1
        ev = Evaluation(
            data,
            t,
            lo,
            hi,
            tc.params,
            tc.window_days,
            features,
            clv,
            settings.currency,
            shared,
            exact=due_between is not None,
        )
        raw = complete(evaluate_custom(tc, ev) if tc.custom else tc.spec.evaluate(ev))
        raw["expires"] = np.where(
            raw["expires"] >= 0, raw["expires"], raw["due"] + days(tc.window_days)
        )
        due = raw["due"]
        if due_between is not None:
            keep = (due >= lo) & (due <= hi)
        else:
            keep = (raw["expires"] >= today) & (due <= hi)
        anon = data.anonymised[raw["cust"]]
        if anonymised is not None and (keep & anon).any():
            anonymised[tc.id] = anonymised.get(tc.id, 0) + int((keep & anon).sum())
        keep &= ~anon
        part = take(raw, keep)
        part["tix"] = np.full(len(part["cust"]), i, dtype=np.int64)
        if tc.value is not None:
            part["value"] = np.full(len(part["cust"]), float(tc.value))
        parts.append(part)
    if not parts:
        empty = complete(frame([], [], []))
        empty["tix"] = np.zeros(0, dtype=np.int64)
        empty["value"] = np.zeros(0)
        return empty, skipped
    # customer values last, so lifetime values are looked up once for every trigger
    valued = [p for p in parts if "value" not in p]
    life = None
    if clv is not None and valued:
        life = _lifetime_values(data, clv, np.concatenate([p["cust"] for p in valued]))
    spend = None
    if due_between is not None and valued:  # few customers: sum only their payments
        who = np.unique(np.concatenate([p["cust"] for p in valued]))
        spend = data.spend_between(t - days(settings.value_window_days), t, who)
    for part in valued:
        part["value"] = _customer_value(part["cust"], data, settings, t, life, spend)
    return stack(parts), skipped


def find_moments(
    source: Tables | MomentData,
    as_of: Any,
    *,
    settings: MomentSettings | None = None,
    cfg: OrgConfig | None = None,
    features: pd.DataFrame | None = None,
    clv: pd.DataFrame | None = None,
    horizon_days: int | None = None,
    due_between: tuple[Any, Any] | None = None,
    triggers: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Evaluate every enabled trigger for all customers as of one instant.

    Parameters
    ----------
    source : Tables or MomentData
        Canonical tables, or :func:`prepare_moments` of them (faster for many dates).
    as_of : date-like
        Only data on or before this instant is used.
    settings : MomentSettings, optional
        Default: :func:`moment_settings` of ``cfg`` (package defaults without it).
    cfg : OrgConfig, optional
        Organisation settings (for the moment settings and the feature table).
    features : pandas.DataFrame, optional
        Per-customer features (:func:`playbook.features.build_features`) for custom
        triggers; built automatically when a custom trigger is enabled and the features
        module is installed.
    clv : pandas.DataFrame, optional
        Lifetime-value predictions (``customer_id, clv, p_alive``): enables the
        at-risk trigger and values customers by their lifetime value.
    horizon_days : int, optional
        Return moments due in the next this many days, the as-of day included: due
        dates from the as-of day to as-of + ``horizon_days`` - 1 (28: four weeks;
        0 or 1: the as-of day alone). Default: ``horizon_days`` of the settings.
        Moments already due are returned while still open (not expired).
    due_between : (date-like, date-like), optional
        Instead of the open/ahead rule: exactly the moments due in this closed range of
        days (used by :func:`playbook.moments.backtest`).
    triggers : iterable of str, optional
        Only these trigger ids.

    Returns
    -------
    pandas.DataFrame
        One row per moment, columns :data:`MOMENT_COLUMNS` (names in
        :class:`MomentCols`), sorted by due date then priority (highest first).
        ``attrs["skipped"]`` maps each skipped trigger to what it needs;
        ``attrs["as_of"]`` is the as-of instant. Anonymised customers never appear:
        ``attrs["anonymised"]`` counts their moments per trigger id (so an action list
        can count them as left out).
    """
    data = source if isinstance(source, MomentData) else prepare_moments(source)
    s = settings or moment_settings(cfg)
    as_of = pd.Timestamp(as_of)
    wanted = None if triggers is None else set(triggers)
    chosen = [tc for tc in s.enabled if wanted is None or tc.id in wanted]
    anonymised: dict[str, int] = {}
    if features is None and any(tc.custom for tc in chosen):
        features = _features(data, as_of, cfg)
    raw, skipped = evaluate(
        data,
        s,
        as_of,
        chosen=chosen,
        features=features,
        clv=clv,
        horizon_days=s.horizon_days if horizon_days is None else int(horizon_days),
        due_between=due_between,
        anonymised=anonymised,
    )
    out = materialise(raw, data, chosen)
    out.attrs["skipped"] = skipped
    out.attrs["anonymised"] = anonymised
    out.attrs["as_of"] = as_of
    return out


def _lifetime_values(data: MomentData, clv: pd.DataFrame, cust: np.ndarray) -> np.ndarray:
    """Lifetime value per customer code, filled in for the codes ``cust`` (NaN elsewhere).

    A customer with several prediction rows gets the first; one without gets NaN.
    """
    life = np.full(data.n, np.nan)
    want = np.unique(cust)
    if len(clv) == 0 or len(want) == 0:
        return life
    pos = locate(data.ids[want], clv["customer_id"])
    life[want] = gather(clv["clv"].to_numpy(dtype=float), pos, np.nan)
    return life


def _customer_value(
    cust: np.ndarray,
    data: MomentData,
    s: MomentSettings,
    t: np.int64,
    life: np.ndarray | None,
    spend: np.ndarray | None = None,
) -> np.ndarray:
    """Lifetime value when known, else money paid in the value window; never below the floor.

    ``life`` is :func:`_lifetime_values` of the CLV predictions (None without them).
    ``spend`` is the money paid in the value window per customer, when already at hand
    (at least for the customers ``cust``).
    """
    key = ("spend", int(t), s.value_window_days)
    if spend is None:
        spend = data.cache.get(key)
    if spend is None:
        for old in [k for k in data.cache if isinstance(k, tuple) and k[:1] == ("spend",)]:
            del data.cache[old]  # keep only the latest as-of
        spend = data.cache[key] = data.spend_between(t - days(s.value_window_days), t)
    value = spend[cust] if len(cust) else np.zeros(0)
    if life is not None and len(cust):
        lv = life[cust]
        value = np.where(np.isfinite(lv), lv, value)
    return np.maximum(value, s.value_floor)


def _dates(x: np.ndarray) -> pd.Series:
    x = np.asarray(x, dtype=np.int64)
    out = pd.Series(x.view("datetime64[ns]"))
    return out.where(x > 0)


def materialise(
    raw: Arrays, data: MomentData, chosen: list[TriggerConfig], *, sort: bool = True
) -> pd.DataFrame:
    """Turn :func:`evaluate`'s arrays into the moments frame (ids, titles, priorities).

    Rows keep the order of ``raw`` unless ``sort`` (due date, then priority).
    """
    if len(raw["cust"]) == 0:
        return empty_moments()
    cust = raw["cust"]
    tix = raw["tix"]

    def per_trigger(values: list[Any], dtype: Any = object) -> np.ndarray:
        return np.asarray(values, dtype=dtype)[tix]

    def text(values: Any) -> pd.Series:
        return pd.Series(values, dtype="string")

    def coded(labels: Any, code: np.ndarray) -> pd.Series:
        """Text of each row's label code (-1: missing), each distinct label converted once."""
        small = pd.array(np.asarray(labels, dtype=object), dtype="string")
        return pd.Series(small.take(code, allow_fill=True))

    def trigger_text(values: list[Any]) -> pd.Series:
        return coded(values, tix)

    tid_text = trigger_text([c.id for c in chosen])
    prod = raw["prod"]
    has_prod = (prod >= 0) & (prod < len(data.prod_ids))
    safe = np.where(has_prod, prod, 0)
    art = raw["art"]
    if len(data.prod_art):
        art = np.where((art < 0) & has_prod, data.prod_art[safe], art)
    has_art = (art >= 0) & (art < len(data.artforms))
    value = raw["value"]
    likelihood = per_trigger([c.likelihood for c in chosen], float) * raw["weight"]
    ids = text(data.ids[cust])
    fired = _dates(raw["fired"])
    key = (
        tid_text
        + "|"
        + ids
        + "|"
        + _strftime(fired, "%Y-%m-%d").fillna("")
        + "|"
        + pd.Series(raw["key"]).astype("string")
    )
    out = pd.DataFrame(
        {
            MC.customer_id: ids,
            MC.trigger_id: tid_text,
            MC.trigger: trigger_text([c.spec.name for c in chosen]),
            MC.epic: trigger_text([c.spec.epic for c in chosen]),
            MC.stage: trigger_text([c.spec.stage for c in chosen]),
            MC.kind: trigger_text([c.spec.kind for c in chosen]),
            MC.fired_at: fired,
            MC.due_date: _dates(raw["due"]),
            MC.expires: _dates(raw["expires"]),
            MC.channel: trigger_text([c.channels[0] for c in chosen]),
            MC.production_id: coded(data.prod_ids, np.where(has_prod, prod, -1)),
            MC.title: coded(data.titles, np.where(has_prod, prod, -1)),
            MC.artform: coded(data.artforms, np.where(has_art, art, -1)),
            MC.event_date: _dates(raw["event"]),
            MC.detail: text(raw["detail"]),
            MC.unit_cost: per_trigger([c.unit_cost for c in chosen], float),
            MC.value: value.astype(float),
            MC.likelihood: likelihood.astype(float),
            MC.priority: (value * likelihood).astype(float),
            MC.moment_key: key,
        }
    )
    if sort:
        out = out.sort_values(
            [MC.due_date, MC.priority, MC.customer_id], ascending=[True, False, True], kind="stable"
        )
    return out.reset_index(drop=True)


def empty_moments() -> pd.DataFrame:
    """A moments frame with no rows (right columns and dtypes)."""
    dtypes = {c: "string" for c in MOMENT_COLUMNS}
    for c in (MC.fired_at, MC.due_date, MC.expires, MC.event_date):
        dtypes[c] = "datetime64[ns]"
    for c in (MC.unit_cost, MC.value, MC.likelihood, MC.priority):
        dtypes[c] = "float64"
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in dtypes.items()})


def _strftime(dates: pd.Series, fmt: str) -> pd.Series:
    """``dates.dt.strftime(fmt)`` as ``string``, formatting each distinct date once."""
    code, uniq = pd.factorize(dates)
    text = pd.Series(uniq).dt.strftime(fmt).astype("string").array
    return pd.Series(text.take(code, allow_fill=True), index=dates.index, dtype="string")


def fill_wording(moments: pd.DataFrame, settings: MomentSettings) -> pd.Series:
    """Each moment's suggested wording: its trigger's template with context filled in.

    Only non-personal fields can be used (:data:`playbook.moments.library.WORDING_FIELDS`):
    the organisation's name, the production title, its artform, the performance date and
    the moment's detail. Missing values leave an empty gap, never "nan".
    """
    out = pd.Series("", index=moments.index, dtype="string")
    if moments.empty:
        return out
    event = _strftime(moments[MC.event_date], "%d %B %Y").str.lstrip("0")
    fields = {
        "org": pd.Series(settings.org_name, index=moments.index, dtype="string"),
        "title": moments[MC.title].astype("string"),
        "artform": moments[MC.artform].astype("string"),
        "event_date": event.astype("string"),
        "detail": moments[MC.detail].astype("string"),
    }
    for tid, idx in moments.groupby(MC.trigger_id, sort=False).groups.items():
        tc = settings.triggers.get(str(tid))
        if tc is None:
            continue
        text = pd.Series("", index=idx, dtype="string")
        for literal, name, _spec, _conv in string.Formatter().parse(tc.wording):
            text = text + literal
            if name:
                text = text + fields[name].loc[idx].fillna("")
        out.loc[idx] = text
    return out
