"""Organisation settings: package defaults overridden by ``data/<org>/org.yaml``.

The merged settings are validated once, here, and handed around as a frozen
:class:`OrgConfig`. Each analysis module ships its own defaults file in
``playbook/defaults/`` (``tiers.yaml``, ``moments.yaml`` …); its top-level keys become
known settings, so a typo in ``org.yaml`` is reported instead of silently ignored.
YAML is always read with a safe loader: nothing in ``org.yaml`` can run as code.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from playbook.errors import ConfigError
from playbook.schema import TABLES

ORG_FILE = "org.yaml"
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# libyaml's safe loader when PyYAML was built with it (ten times faster, same results)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader, with a plain error on bad syntax."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"Settings file '{path}' does not exist.") from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"'{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}.\n"
            "What to do: check indentation (spaces, not tabs) and that every 'key: value' "
            "pair has a space after the colon."
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"'{path}' must hold settings as 'key: value' lines, but it holds a "
            f"{type(data).__name__}."
        )
    return data


def package_defaults() -> dict[str, Any]:
    """All defaults files of the package, merged in name order (``core.yaml`` first).

    Read once per process; each call returns its own copy, free to change.
    """
    return copy.deepcopy(_package_defaults())


@functools.cache
def _package_defaults() -> dict[str, Any]:
    folder = resources.files("playbook") / "defaults"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    names.sort(key=lambda n: (n != "core.yaml", n))
    merged: dict[str, Any] = {}
    for name in names:
        with resources.as_file(folder / name) as path:
            merged = deep_merge(merged, read_yaml(path))
    return merged


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; nested mappings merge, the rest replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Turn a frozen settings value back into plain dicts and lists (for YAML or JSON)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class OrgConfig:
    """Validated, read-only settings of one organisation.

    Attributes
    ----------
    org_dir : pathlib.Path
        The organisation folder (holds ``org.yaml`` and the raw exports).
    slug, name, currency, timezone : str
        Identity and formatting.
    season_start_month : int
        First month of a season (1–12).
    settings : Mapping
        Every merged setting, frozen; read a module's section with :meth:`section`.
    """

    org_dir: Path
    slug: str
    name: str
    currency: str
    season_start_month: int
    timezone: str
    settings: Mapping[str, Any]

    def section(self, key: str) -> Mapping[str, Any]:
        """A top-level settings section (empty mapping when absent)."""
        value = self.settings.get(key)
        return value if isinstance(value, Mapping) else MappingProxyType({})

    @property
    def sources(self) -> Mapping[str, Any]:
        """Source file mappings, keyed by canonical table name."""
        return self.section("sources")

    @property
    def canonical_dir(self) -> Path:
        """Where intake writes the canonical Parquet tables and the ledger."""
        return self.org_dir / "canonical"

    @property
    def private_dir(self) -> Path:
        """Files that must never reach a report (salt, id map)."""
        return self.org_dir / "private"

    @property
    def min_group(self) -> int:
        """Suppression threshold for reported groups."""
        return int(self.section("privacy")["suppression_min_group"])


def load_org(org_dir: str | Path, overrides: Mapping[str, Any] | None = None) -> OrgConfig:
    """Load and validate an organisation's settings.

    Parameters
    ----------
    org_dir : str or pathlib.Path
        Folder holding ``org.yaml``.
    overrides : Mapping, optional
        Settings applied on top of ``org.yaml`` (e.g. from the command line).

    Returns
    -------
    OrgConfig

    Raises
    ------
    ConfigError
        With a plain message naming the setting, its value and what to change.
    """
    org_dir = Path(org_dir).resolve()
    path = org_dir / ORG_FILE
    if not org_dir.is_dir():
        raise ConfigError(
            f"Organisation folder '{org_dir}' does not exist.\n"
            "What to do: pass the folder that holds org.yaml, e.g. data/demo."
        )
    if not path.exists():
        raise ConfigError(
            f"No settings file in '{org_dir}': expected '{path.name}'.\n"
            "What to do: create org.yaml there (see data/README.md for a template), or run "
            "'playbook synth' to generate the demo organisation."
        )
    defaults = package_defaults()
    user = read_yaml(path)
    _check_known_keys(user, defaults, path)
    merged = deep_merge(defaults, user)
    if overrides:
        merged = deep_merge(merged, overrides)
    return validate(merged, org_dir, path)


# Settings that moved: (section, key) -> where they live now.
MOVED = {
    ("journey", "tier_bands"): "tiers.bands",
    ("scorecard", "tier_bands"): "tiers.bands",
    ("journey", "targets"): "tiers.targets",
    ("scorecard", "targets"): "tiers.targets",
}


def _check_known_keys(user: Mapping[str, Any], defaults: Mapping[str, Any], path: Path) -> None:
    unknown = sorted(set(user) - set(defaults))
    if unknown:
        raise ConfigError(
            f"'{path}' has setting(s) the kit does not know: {', '.join(unknown)}.\n"
            f"What to do: check the spelling; known settings are: {', '.join(sorted(defaults))}."
        )
    for key, value in user.items():
        base = defaults.get(key)
        if key == "sources" or not isinstance(base, Mapping) or not base:
            continue
        if isinstance(value, Mapping) and not base.get("_open", False):
            extra = sorted(set(value) - set(base))
            moved = [f"'{key}.{k}' is now '{MOVED[(key, k)]}'" for k in extra if (key, k) in MOVED]
            if moved:
                raise ConfigError(
                    f"'{path}': {'; '.join(moved)} (one home for settings that several "
                    "notebooks share).\nWhat to do: move those lines there in org.yaml."
                )
            if extra:
                raise ConfigError(
                    f"'{path}': section '{key}' has unknown setting(s): {', '.join(extra)}.\n"
                    f"What to do: use one of: {', '.join(sorted(k for k in base if k != '_open'))}."
                )


def validate(merged: dict[str, Any], org_dir: Path, path: Path | str = ORG_FILE) -> OrgConfig:
    """Validate merged settings and freeze them."""
    slug = merged.get("slug") or org_dir.name
    if not _SLUG.match(str(slug)):
        raise ConfigError(
            f"'{path}': slug '{slug}' must be lowercase letters, digits and hyphens "
            "(e.g. 'city-theatre').\nWhat to do: set 'slug:' in org.yaml or rename the folder."
        )
    month = merged.get("season_start_month")
    if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
        raise ConfigError(
            f"'{path}': season_start_month is {month!r}; it must be a whole number from 1 to 12."
            "\nWhat to do: set e.g. 'season_start_month: 9' for seasons starting in September."
        )
    currency = merged.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise ConfigError(
            f"'{path}': currency is {currency!r}; use a three-letter code such as GBP, EUR, USD."
            "\nWhat to do: set 'currency: GBP' (or your currency) in org.yaml."
        )
    tz = merged.get("timezone")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"'{path}': timezone {tz!r} is not a known time zone.\n"
            "What to do: use a name like 'Europe/London' or 'America/New_York'."
        ) from None
    min_group = merged.get("privacy", {}).get("suppression_min_group")
    if not isinstance(min_group, int) or isinstance(min_group, bool) or min_group < 1:
        raise ConfigError(
            f"'{path}': privacy.suppression_min_group is {min_group!r}; it must be a whole "
            "number of at least 1.\nWhat to do: leave it at the default 10 unless told otherwise."
        )
    decimal = merged.get("money", {}).get("decimal")
    if decimal not in (".", ",", "auto"):
        raise ConfigError(
            f"'{path}': money.decimal is {decimal!r}; use '.', ',' or auto.\n"
            "What to do: set 'decimal: auto' to decide per value."
        )
    preset = merged.get("preset")
    if preset is not None:
        from playbook.presets import check_preset_name  # late import: presets imports config

        check_preset_name(preset, "preset", path)
    _validate_sources(merged.get("sources") or {}, path, top_preset=preset)
    return OrgConfig(
        org_dir=org_dir,
        slug=str(slug),
        name=str(merged.get("name") or slug),
        currency=currency,
        season_start_month=month,
        timezone=str(tz),
        settings=_freeze(merged),
    )


_SOURCE_KEYS = {
    "file",
    "preset",
    "columns",
    "values",
    "sheet",
    "delimiter",
    "encoding",
    "header_row",
    "date_format",
    "dayfirst",
    "minor_units",
    "decimal",
    "defaults",
    "scale",
    # declarative steps presets use (see playbook.presets)
    "join",
    "filter",
    "returns",
    "comp_when_zero",
    "plan_amount",
    "optional_columns",
}


def _validate_sources(
    sources: Mapping[str, Any], path: Path | str, *, top_preset: str | None = None
) -> None:
    if not isinstance(sources, Mapping):
        raise ConfigError(f"'{path}': 'sources' must be a section of tables, one per line.")
    for table, spec in sources.items():
        if table not in TABLES:
            raise ConfigError(
                f"'{path}': sources.{table} is not a table the kit knows.\n"
                f"What to do: use one of: {', '.join(TABLES)}."
            )
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"'{path}': sources.{table} must be a section with 'file:' and 'columns:'."
            )
        extra = sorted(set(spec) - _SOURCE_KEYS)
        if extra:
            raise ConfigError(
                f"'{path}': sources.{table} has unknown setting(s): {', '.join(extra)}.\n"
                f"What to do: use only: {', '.join(sorted(_SOURCE_KEYS))}."
            )
        if "preset" in spec:
            from playbook.presets import check_preset_name

            check_preset_name(spec["preset"], f"sources.{table}.preset", path)
        if "file" not in spec and "preset" not in spec and top_preset is None:
            raise ConfigError(
                f"'{path}': sources.{table} does not say which file to read.\n"
                f"What to do: add 'file: <name of the export>' under sources.{table}."
            )
        check_value_targets(table, spec.get("values"), path)
        _check_date_format(table, spec.get("date_format"), path)
        columns = spec.get("columns") or {}
        known = set(TABLES[table].names) | _EXTRA_SOURCE_COLUMNS.get(table, set())
        bad = sorted(set(columns) - known)
        if bad:
            raise ConfigError(
                f"'{path}': sources.{table}.columns maps unknown canonical column(s): "
                f"{', '.join(bad)}.\nWhat to do: the left-hand names must be among: "
                f"{', '.join(sorted(known))}."
            )


def _check_date_format(table: str, fmt: Any, path: Path | str) -> None:
    """A ``date_format`` must be a strftime format (``%d/%m/%Y %H:%M``), not ``dd/mm/yyyy``."""
    if fmt is None:
        return
    if not isinstance(fmt, str) or "%" not in fmt:
        raise ConfigError(
            f"'{path}': sources.{table}.date_format is {fmt!r}, which is not a strftime "
            "format (those write each part with %: %d day, %m month, %Y year, %H hour, "
            f'%M minute).\nWhat to do: write date_format: "{strftime_like(str(fmt))}" '
            "(in quotes)."
        )


def strftime_like(text: str) -> str:
    """``dd/mm/yyyy hh:mm`` written as the strftime format ``%d/%m/%Y %H:%M``.

    Minutes are the ``mm`` after an hour; any other ``mm`` is the month.
    """
    parts = {"yyyy": "%Y", "yy": "%y", "dd": "%d", "d": "%d", "hh": "%H", "h": "%H", "ss": "%S"}
    out, seen_hour = [], False
    for token in re.findall(r"(?i)y+|m+|d+|h+|s+|[^ymdhs]+", text):
        low = token.lower()
        if low[0] == "m":
            out.append("%M" if seen_hour else "%m")
        elif low in parts:
            seen_hour |= low[0] == "h"
            out.append(parts[low])
        else:
            out.append(token)
    return "".join(out)


def check_value_targets(table: str, values: Any, path: Path | str = ORG_FILE) -> None:
    """Check that every word under ``sources.<table>.values`` maps to a word the kit knows.

    A status mapped to ``exchange`` instead of ``exchanged`` would otherwise drop or
    break rows far from the typo. ``null`` (a decision still to make) is allowed.

    Raises
    ------
    ConfigError
        Naming the setting, the word, its target and the allowed targets.
    """
    if not values:
        return
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"'{path}': sources.{table}.values must be a section with one line per column, "
            "each mapping the export's words to the kit's words."
        )
    names = TABLES[table].names
    for canon, words in values.items():
        col = names.get(canon)
        kind = "bool" if canon in _BOOL_SOURCE_COLUMNS else (col.kind if col else None)
        if kind != "bool" and not (col is not None and col.allowed):
            continue  # free text or a source-only column: any word will do
        if not isinstance(words, Mapping):
            raise ConfigError(
                f"'{path}': sources.{table}.values.{canon} must map words to words, e.g. "
                f"'{{Sold: active}}', not {words!r}."
            )
        for word, target in words.items():
            if target is None:
                continue
            if kind == "bool":
                if isinstance(target, bool):
                    continue
                allowed_text = "true, false"
                close: list[str] = []
            else:
                if isinstance(target, str) and target in col.allowed:
                    continue
                allowed_text = ", ".join(col.allowed)
                close = difflib.get_close_matches(str(target).lower(), col.allowed, n=1)
            hint = f"'{word}: {close[0] if close else '<one of ' + allowed_text + '>'}'"
            raise ConfigError(
                f"'{path}': sources.{table}.values.{canon} maps '{word}' to '{target}'; "
                f"allowed: {allowed_text}.\nWhat to do: write {hint} under "
                f"sources.{table}.values.{canon} in org.yaml"
                + (" (true and false without quotes)." if kind == "bool" else ".")
            )


# Source-only columns read as yes/no.
_BOOL_SOURCE_COLUMNS = {"birthday_consent"}

# Source-only columns intake understands and turns into canonical ones.
_EXTRA_SOURCE_COLUMNS: dict[str, set[str]] = {
    "customers": {"postcode", "birth_date", "birthday_consent", "source_customer_id"},
    "attendance": {"attended"},
    # ticket_ref links a return to its sale; plan_id marks a season plan's expanded tickets
    "order_lines": {"ticket_ref", "plan_id"},
}
