"""Export presets: named mappings of a ticketing system's standard exports.

A preset is an entry in :data:`PRESETS`, keyed by name and then by canonical table; it
holds the same keys a ``sources.<table>`` section of ``org.yaml`` holds (columns, values,
date format …). ``org.yaml`` names it with ``preset: NAME`` under a source, and anything
written beside it overrides the preset. Adding a system is adding one entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbook.config import deep_merge, thaw
from playbook.errors import ConfigError

PRESETS: dict[str, dict[str, dict[str, Any]]] = {}


def register_preset(name: str, tables: Mapping[str, Mapping[str, Any]]) -> None:
    """Add a preset: ``{table: {columns: …, values: …, …}}``."""
    PRESETS[name] = {t: dict(spec) for t, spec in tables.items()}


def resolve(table: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A source section with its preset (if any) merged underneath it."""
    spec = thaw(spec)
    name = spec.pop("preset", None)
    if name is None:
        return spec
    if name not in PRESETS:
        raise ConfigError(
            f"org.yaml: sources.{table} names preset '{name}', which the kit does not have.\n"
            f"What to do: use one of: {', '.join(sorted(PRESETS)) or '(none installed)'}."
        )
    base = PRESETS[name].get(table)
    if base is None:
        raise ConfigError(
            f"org.yaml: preset '{name}' has no mapping for table '{table}'.\n"
            f"What to do: map the columns yourself under sources.{table}.columns."
        )
    return deep_merge(base, spec)
