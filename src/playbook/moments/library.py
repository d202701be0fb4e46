"""The trigger library: vocabularies, the registry, and each trigger's settings.

A trigger is one small declarative entry: who it is (id, name), which positive element
of a moment it builds (EPIC: elevation, insight, pride, connection), where it sits on the
customer journey, which data it needs, when it fires, what to do, through which
channel, at what cost and why. Built-in triggers register themselves with
:func:`trigger` (see :mod:`playbook.moments.triggers`); an organisation's own triggers
are declared in ``org.yaml`` from safe condition primitives over the per-customer
feature table (:class:`Condition`), never as code.

Tunable values (thresholds, windows, channel, cost, control share, wording) live in
``playbook/defaults/moments.yaml`` under ``moments.triggers.<id>`` and are overridden in
``org.yaml``; :func:`moment_settings` merges, checks and freezes them.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from playbook.config import OrgConfig, package_defaults, thaw
from playbook.errors import ConfigError

# ---------------------------------------------------------------------------
# Vocabularies
# ---------------------------------------------------------------------------
EPIC: dict[str, str] = {
    "elevation": "lifts the experience above the everyday: a surprise, a sense of occasion",
    "insight": "helps someone understand the work or themselves a little better",
    "pride": "recognises what someone has done: milestones, loyalty, their support",
    "connection": "binds people to each other and to the organisation",
}
"""The four elements of a positive moment, in plain words."""

STAGES: dict[str, str] = {
    "discover": "looking around: emails, the website, the brochure",
    "book": "choosing and paying",
    "anticipate": "between booking and the day",
    "attend": "the day itself, from the door to the last bow",
    "reflect": "the days after: memories, reviews, surveys",
    "return": "the months between visits, when people drift away or come back",
}
"""Journey stages in order (the same keys as :data:`playbook.journey.STAGES`)."""

KINDS = ("marketing", "service")
"""Marketing moments need consent on their channel; service moments follow a policy."""

TIMINGS = ("event", "state")
"""Event triggers hang on a dated event (a visit, a booking); state triggers on a
condition that holds on the as-of date (e.g. a high-value patron drifting away)."""

# Settings every trigger has (built-in or custom), besides its own parameters.
COMMON_KEYS: tuple[str, ...] = (
    "enabled",
    "channel",
    "window_days",
    "unit_cost",
    "likelihood",
    "value",
    "control_share",
    "repeat_after_days",
    "wording",
)
# Placeholders a wording template may use: non-personal context only.
WORDING_FIELDS: tuple[str, ...] = ("org", "title", "artform", "event_date", "detail")
# Extra keys of a custom trigger.
CUSTOM_KEYS: tuple[str, ...] = (
    "name",
    "epic",
    "stage",
    "kind",
    "action",
    "rationale",
    "when",
    "any",
)


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of the library (the fixed part; tunables come from the settings).

    Attributes
    ----------
    id, name : str
        Stable key and display name.
    epic : str
        One of :data:`EPIC`.
    stage : str
        One of :data:`STAGES`.
    needs : tuple of str
        What must be present: canonical table names (``"memberships"``), a column that
        must hold values (``"customers.birth_month"``) or an input (``"features"``,
        ``"clv"``).
    when : str
        When it fires, in plain words; ``{param}`` placeholders are filled from settings.
    action : str
        The suggested action.
    rationale : str
        Why it matters, in one line.
    kind : str
        ``marketing`` or ``service`` (:data:`KINDS`).
    timing : str
        ``event`` or ``state`` (:data:`TIMINGS`).
    params : tuple of str
        Names of the trigger's own settings (thresholds, offsets).
    money_params, share_params : tuple of str
        Which of ``params`` are amounts of money (shown in the organisation's currency)
        and which are shares (shown as percentages) in :meth:`TriggerConfig.describe_when`.
    evaluate : callable
        ``evaluate(ev: Evaluation) -> dict of arrays`` (see
        :mod:`playbook.moments.triggers` for the columns it returns).
    """

    id: str
    name: str
    epic: str
    stage: str
    needs: tuple[str, ...]
    when: str
    action: str
    rationale: str
    kind: str = "marketing"
    timing: str = "event"
    params: tuple[str, ...] = ()
    money_params: tuple[str, ...] = ()
    share_params: tuple[str, ...] = ()
    evaluate: Callable[..., Any] | None = field(default=None, compare=False)


REGISTRY: dict[str, TriggerSpec] = {}
"""Built-in triggers by id, in the order they were registered."""


def trigger(
    id: str,
    *,
    name: str,
    epic: str,
    stage: str,
    when: str,
    action: str,
    rationale: str,
    needs: Sequence[str] = (),
    kind: str = "marketing",
    timing: str = "event",
    params: Sequence[str] = (),
    money_params: Sequence[str] = (),
    share_params: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as a built-in trigger (one registry entry)."""
    if epic not in EPIC or stage not in STAGES or kind not in KINDS or timing not in TIMINGS:
        raise ValueError(f"trigger {id}: bad epic/stage/kind/timing")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[id] = TriggerSpec(
            id=id,
            name=name,
            epic=epic,
            stage=stage,
            needs=tuple(needs),
            when=when,
            action=action,
            rationale=rationale,
            kind=kind,
            timing=timing,
            params=tuple(params),
            money_params=tuple(money_params),
            share_params=tuple(share_params),
            evaluate=fn,
        )
        return fn

    return deco


# ---------------------------------------------------------------------------
# Custom-trigger conditions: safe primitives, no code
# ---------------------------------------------------------------------------
def _between(s: pd.Series, v: Any) -> pd.Series:
    return (s >= v[0]) & (s <= v[1])


OPERATORS: dict[str, Callable[[pd.Series, Any], pd.Series]] = {
    "==": lambda s, v: s == v,
    "!=": lambda s, v: s != v,
    "<": lambda s, v: s < v,
    "<=": lambda s, v: s <= v,
    ">": lambda s, v: s > v,
    ">=": lambda s, v: s >= v,
    "in": lambda s, v: s.isin(list(v)),
    "not in": lambda s, v: ~s.isin(list(v)),
    "between": _between,
    "is missing": lambda s, v: s.isna(),
    "is present": lambda s, v: s.notna(),
}
"""The comparison primitives a custom trigger may use (a registry, not ``eval``)."""

_NO_VALUE = {"is missing", "is present"}


@dataclass(frozen=True)
class Condition:
    """``{feature: frequency, op: ">=", value: 3}``: one test on a feature column."""

    feature: str
    op: str
    value: Any = None

    def mask(self, features: pd.DataFrame) -> np.ndarray:
        """Boolean mask over the rows of ``features`` (missing values never match)."""
        s = features[self.feature]
        hit = OPERATORS[self.op](s, self.value)
        return np.asarray(pd.Series(hit, index=s.index).fillna(False), dtype=bool)

    def describe(self) -> str:
        """``frequency >= 3``."""
        if self.op in _NO_VALUE:
            return f"{self.feature} {self.op}"
        if self.op == "between":
            return f"{self.feature} between {self.value[0]} and {self.value[1]}"
        return f"{self.feature} {self.op} {self.value}"


def parse_condition(raw: Any, where: str, known: Sequence[str] | None) -> Condition:
    """Check one YAML condition and turn it into a :class:`Condition`."""
    if (
        not isinstance(raw, Mapping)
        or set(raw) - {"feature", "op", "value"}
        or "feature" not in raw
    ):
        raise ConfigError(
            f'{where}: each condition must look like {{feature: frequency, op: ">=", value: 3}}; '
            f"got {raw!r}."
        )
    feature, op = str(raw["feature"]), str(raw.get("op", "=="))
    if op not in OPERATORS:
        raise ConfigError(
            f"{where}: operator {op!r} is not one the kit knows.\n"
            f"What to do: use one of: {', '.join(OPERATORS)}."
        )
    if known is not None and feature not in known:
        raise ConfigError(
            f"{where}: feature {feature!r} is not a customer feature.\n"
            f"What to do: use one of: {', '.join(known)}."
        )
    value = raw.get("value")
    if op in _NO_VALUE:
        value = None
    elif op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ConfigError(f"{where}: 'between' needs two values, e.g. value: [30, 90].")
        value = tuple(value)
    elif op in ("in", "not in"):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: {op!r} needs a list, e.g. value: [Theatre, Dance].")
        value = tuple(value)
    elif "value" not in raw or isinstance(value, Mapping | list):
        raise ConfigError(f"{where}: {op!r} needs a single value, e.g. value: 3.")
    return Condition(feature, op, value)


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Channel:
    """A delivery channel: which consent it needs and how many a week staff can do."""

    name: str
    consent: str | None  # consent channel in ``consents`` (None: no contact details used)
    weekly_capacity: int | None  # None: not limited (automated); a number: staff-delivered
    label: str = ""


@dataclass(frozen=True)
class TriggerConfig:
    """A trigger as this organisation runs it: the spec plus its tuned settings."""

    spec: TriggerSpec
    enabled: bool
    channels: tuple[str, ...]  # in order of preference; the first with consent is used
    window_days: int
    unit_cost: float
    likelihood: float
    value: float | None  # None: the customer's own value
    control_share: float
    repeat_after_days: int
    wording: str
    params: Mapping[str, Any]
    conditions: tuple[Condition, ...] = ()
    any_conditions: tuple[Condition, ...] = ()
    custom: bool = False

    @property
    def id(self) -> str:
        return self.spec.id

    def describe_when(self, currency: str | None = None) -> str:
        """When it fires, with this organisation's thresholds filled in.

        Shares read as percentages (``top 20%``); with ``currency`` (e.g. ``"GBP"``),
        amounts of money read in it (``£500, £1,000``), else as plain numbers.
        """
        if self.custom:
            parts = [c.describe() for c in self.conditions]
            if self.any_conditions:
                parts.append("(" + " or ".join(c.describe() for c in self.any_conditions) + ")")
            return "customer features: " + " and ".join(parts) if parts else "every customer"
        values = {}
        for k, v in self.params.items():
            if k in self.spec.share_params:
                values[k] = _fmt_param(v, lambda x: f"{float(x):.0%}")
            elif k in self.spec.money_params and currency:
                values[k] = _fmt_param(v, lambda x: _money(float(x), currency))
            else:
                values[k] = _fmt_param(v)
        return self.spec.when.format(**values)


def _money(x: float, currency: str) -> str:
    from playbook.report import format_money  # the report's money format: £1,000

    return format_money(x, currency, 0 if float(x).is_integer() else 2)


def _fmt_param(v: Any, fmt: Callable[[Any], str] = str) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(fmt(x) for x in v)
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {fmt(x)}" for k, x in v.items())
    return fmt(v)


@dataclass(frozen=True)
class MomentSettings:
    """The ``moments:`` settings of an organisation, checked and frozen."""

    org_name: str
    currency: str
    horizon_days: int
    min_days_between: int
    service_requires_consent: bool
    value_floor: float
    value_window_days: int
    outcome_window_days: int
    channels: Mapping[str, Channel]
    triggers: Mapping[str, TriggerConfig]  # every trigger, enabled or not, library order

    @property
    def enabled(self) -> list[TriggerConfig]:
        """Triggers switched on, in library order."""
        return [t for t in self.triggers.values() if t.enabled]


def _section(cfg: OrgConfig | None) -> dict[str, Any]:
    if cfg is not None:
        return thaw(cfg.section("moments"))
    return thaw(package_defaults().get("moments", {}))


# Trigger thresholds that another page uses too have one home: the trigger reads them
# from there, so the page and the action list always pick the same customers.
SHARED_SETTINGS: Mapping[str, Mapping[str, tuple[str, str]]] = {
    # the CLV page's at-risk patrons are the at_risk_patron trigger's customers
    "at_risk_patron": {
        "p_alive_below": ("clv", "at_risk_p_alive"),
        "top_share": ("clv", "at_risk_top_share"),
    },
}


def _with_shared_settings(
    cfg: OrgConfig | None, tid: str, raw: Mapping[str, Any], where: str
) -> Mapping[str, Any]:
    """A built-in trigger's settings with its shared thresholds filled in from their home.

    Raises
    ------
    ConfigError
        When ``moments.triggers`` sets a shared threshold to another value than its home.
    """
    shared = SHARED_SETTINGS.get(tid)
    if not shared:
        return raw
    from playbook.clv import clv_settings

    homes = {"clv": clv_settings(cfg)}
    out = dict(raw)
    for param, (section, key) in shared.items():
        value = getattr(homes[section], key)
        given = raw.get(param)
        if given is not None and given != value:
            raise ConfigError(
                f"{where}.triggers.{tid}.{param} is {given!r}, but this threshold is set "
                f"once, as '{section}: {key}:' ({value!r}), so that the {section.upper()} "
                "page and the action list pick the same customers.\n"
                f"What to do: remove '{param}' from moments.triggers.{tid} and set "
                f"'{section}: {key}: {given!r}' in org.yaml instead."
            )
        out[param] = value
    return out


def moment_settings(cfg: OrgConfig | None = None, **overrides: Any) -> MomentSettings:
    """The organisation's moment settings (package defaults when ``cfg`` is None).

    Parameters
    ----------
    cfg : OrgConfig, optional
        Loaded organisation settings.
    **overrides
        Top-level ``moments`` settings to replace (e.g. ``horizon_days=14``).

    Raises
    ------
    ConfigError
        A setting is unknown or out of range; the message names it and what to change.
    """
    from playbook.config import deep_merge

    raw = deep_merge(_section(cfg), overrides)
    where = "org.yaml, moments"
    channels = _channels(raw.get("channels") or {}, where)
    builtin = raw.get("triggers") or {}
    unknown = sorted(set(builtin) - set(REGISTRY))
    if unknown:
        raise ConfigError(
            f"{where}.triggers: unknown trigger(s) {', '.join(unknown)}.\n"
            f"What to do: use one of: {', '.join(REGISTRY)}; declare your own triggers "
            "under moments.custom_triggers instead."
        )
    triggers: dict[str, TriggerConfig] = {}
    for tid, spec in REGISTRY.items():
        entry = _with_shared_settings(cfg, tid, builtin.get(tid) or {}, where)
        triggers[tid] = _trigger_config(spec, entry, channels, where)
    custom = raw.get("custom_triggers") or {}
    if not isinstance(custom, Mapping):
        raise ConfigError(f"{where}.custom_triggers must be a section: one trigger id per entry.")
    known_features = _feature_names()
    for tid, entry in custom.items():
        if tid in REGISTRY:
            raise ConfigError(
                f"{where}.custom_triggers.{tid}: this id is a built-in trigger.\n"
                "What to do: pick another id, or tune the built-in one under moments.triggers."
            )
        triggers[str(tid)] = _custom_config(str(tid), entry, channels, where, known_features)
    return MomentSettings(
        org_name=str(cfg.name) if cfg is not None else "us",
        currency=str(cfg.currency) if cfg is not None else "GBP",
        horizon_days=_int(raw, "horizon_days", where, lo=0),
        min_days_between=_int(raw, "min_days_between", where, lo=0),
        service_requires_consent=bool(raw.get("service_requires_consent", False)),
        value_floor=_num(raw, "value_floor", where, lo=0.0),
        value_window_days=_int(raw, "value_window_days", where, lo=1),
        outcome_window_days=_int(raw, "outcome_window_days", where, lo=1),
        channels=channels,
        triggers=triggers,
    )


def _feature_names() -> list[str] | None:
    try:
        from playbook.features import FEATURE_COLUMNS
    except ImportError:  # features module not there: names are checked at evaluation
        return None
    return list(FEATURE_COLUMNS)


def _int(raw: Mapping[str, Any], key: str, where: str, lo: int = 0) -> int:
    v = raw.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigError(
            f"{where}.{key} is {v!r}; it must be a whole number of at least {lo}.\n"
            f"What to do: fix '{key}:' under moments in org.yaml."
        )
    return v


def _num(
    raw: Mapping[str, Any], key: str, where: str, lo: float = 0.0, hi: float | None = None
) -> float:
    v = raw.get(key)
    ok = isinstance(v, int | float) and not isinstance(v, bool) and v >= lo
    if ok and hi is not None:
        ok = v <= hi
    if not ok:
        rng = f"from {lo} to {hi}" if hi is not None else f"of at least {lo}"
        raise ConfigError(
            f"{where}.{key} is {v!r}; it must be a number {rng}.\n"
            f"What to do: fix '{key}:' in org.yaml."
        )
    return float(v)


def _channels(raw: Mapping[str, Any], where: str) -> dict[str, Channel]:
    from playbook.schema import CHANNELS_CONSENT

    out = {}
    for name, spec in raw.items():
        spec = spec or {}
        extra = set(spec) - {"consent", "weekly_capacity", "label"}
        if extra:
            raise ConfigError(
                f"{where}.channels.{name} has unknown setting(s): {', '.join(sorted(extra))}.\n"
                "What to do: use consent, weekly_capacity and label."
            )
        consent = spec.get("consent")
        if consent is not None and consent not in CHANNELS_CONSENT:
            raise ConfigError(
                f"{where}.channels.{name}.consent is {consent!r}.\n"
                f"What to do: use one of {', '.join(CHANNELS_CONSENT)}, or null for a channel "
                "that uses no contact details (e.g. a note left on the seat)."
            )
        cap = spec.get("weekly_capacity")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 0):
            raise ConfigError(
                f"{where}.channels.{name}.weekly_capacity is {cap!r}; use a whole number, or "
                "null for channels that are not limited."
            )
        out[str(name)] = Channel(str(name), consent, cap, str(spec.get("label") or name))
    return out


def _check_common(
    tid: str, raw: Mapping[str, Any], channels: Mapping[str, Channel], where: str
) -> dict[str, Any]:
    w = f"{where}.{tid}"
    ch = raw.get("channel")
    chans = tuple([ch] if isinstance(ch, str) else list(ch or ()))
    if not chans:
        raise ConfigError(f"{w}.channel is missing.\nWhat to do: name a channel, e.g. email.")
    bad = [c for c in chans if c not in channels]
    if bad:
        raise ConfigError(
            f"{w}.channel {', '.join(map(str, bad))} is not a known channel.\n"
            f"What to do: use one of: {', '.join(channels)} (or add it under moments.channels)."
        )
    value = raw.get("value", "customer")
    if value != "customer" and (
        not isinstance(value, int | float) or isinstance(value, bool) or value < 0
    ):
        raise ConfigError(
            f"{w}.value is {value!r}; use 'customer' (the customer's own value) or an amount."
        )
    wording = str(raw.get("wording") or "")
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(wording) if f is not None}
    except ValueError as exc:
        raise ConfigError(f"{w}.wording is not a valid template: {exc}.") from None
    if names - set(WORDING_FIELDS):
        raise ConfigError(
            f"{w}.wording uses {', '.join(sorted(names - set(WORDING_FIELDS)))}.\n"
            f"What to do: only these placeholders are allowed (no personal data): "
            f"{', '.join('{' + f + '}' for f in WORDING_FIELDS)}."
        )
    return {
        "enabled": bool(raw.get("enabled", True)),
        "channels": chans,
        "window_days": _int(raw, "window_days", w, lo=0),
        "unit_cost": _num(raw, "unit_cost", w, lo=0.0),
        "likelihood": _num(raw, "likelihood", w, lo=0.0, hi=1.0),
        "value": None if value == "customer" else float(value),
        "control_share": _num(raw, "control_share", w, lo=0.0, hi=0.9),
        "repeat_after_days": _int(raw, "repeat_after_days", w, lo=0),
        "wording": wording,
    }


def _trigger_config(
    spec: TriggerSpec, raw: Mapping[str, Any], channels: Mapping[str, Channel], where: str
) -> TriggerConfig:
    w = f"{where}.triggers"
    allowed = set(COMMON_KEYS) | set(spec.params)
    extra = sorted(set(raw) - allowed)
    if extra:
        raise ConfigError(
            f"{w}.{spec.id} has unknown setting(s): {', '.join(extra)}.\n"
            f"What to do: use one of: {', '.join(sorted(allowed))}."
        )
    missing = [p for p in spec.params if p not in raw]
    if missing:
        raise ConfigError(f"{w}.{spec.id} is missing {', '.join(missing)} (a kit defaults bug).")
    common = _check_common(spec.id, raw, channels, w)
    params = {p: raw[p] for p in spec.params}
    return TriggerConfig(spec=spec, params=params, **common)


def _conditions(raw: Any, where: str, known: Sequence[str] | None) -> tuple[Condition, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where} must be a list of conditions.")
    return tuple(parse_condition(c, f"{where}[{i}]", known) for i, c in enumerate(raw))


def _custom_config(
    tid: str,
    raw: Any,
    channels: Mapping[str, Channel],
    where: str,
    known: Sequence[str] | None,
) -> TriggerConfig:
    w = f"{where}.custom_triggers"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{w}.{tid} must be a section of settings.")
    extra = sorted(set(raw) - set(COMMON_KEYS) - set(CUSTOM_KEYS))
    if extra:
        raise ConfigError(
            f"{w}.{tid} has unknown setting(s): {', '.join(extra)}.\n"
            f"What to do: use one of: {', '.join(sorted(set(COMMON_KEYS) | set(CUSTOM_KEYS)))}."
        )
    defaults = {
        "enabled": True,
        "window_days": 14,
        "unit_cost": 0.0,
        "likelihood": 0.05,
        "value": "customer",
        "control_share": 0.1,
        "repeat_after_days": 90,
        "wording": "",
    }
    merged = {**defaults, **raw}
    for key, vocab in (("epic", EPIC), ("stage", STAGES), ("kind", KINDS)):
        val = merged.get(key, "marketing" if key == "kind" else None)
        if val not in vocab:
            raise ConfigError(
                f"{w}.{tid}.{key} is {val!r}.\nWhat to do: use one of: {', '.join(vocab)}."
            )
    conditions = _conditions(merged.get("when"), f"{w}.{tid}.when", known)
    any_conditions = _conditions(merged.get("any"), f"{w}.{tid}.any", known)
    if not conditions and not any_conditions:
        raise ConfigError(
            f"{w}.{tid} has no conditions.\nWhat to do: add e.g.\n"
            '  when:\n    - {feature: frequency, op: ">=", value: 3}'
        )
    spec = TriggerSpec(
        id=tid,
        name=str(merged.get("name") or tid.replace("_", " ").capitalize()),
        epic=merged["epic"],
        stage=merged["stage"],
        needs=("features",),
        when="",
        action=str(merged.get("action") or ""),
        rationale=str(merged.get("rationale") or ""),
        kind=merged.get("kind", "marketing"),
        timing="state",
    )
    common = _check_common(tid, merged, channels, w)
    return TriggerConfig(
        spec=spec,
        params={},
        conditions=conditions,
        any_conditions=any_conditions,
        custom=True,
        **common,
    )
