"""Declarative checks for TOML data: every rule names the file, the key, the expectation and the value.

A schema is a mapping of key → :class:`Field` (a leaf) or :class:`Table` (a nested table). The
:func:`check` function walks a parsed TOML document against it and returns plain, validated
Python values; anything unknown, missing, of the wrong type or out of range raises
:class:`~dse.errors.InputError`. Sources are enforced here too: a :class:`Table` with
``sourced=True`` demands a ``sources`` sub-table naming a source for every number it holds
(names and years excepted).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dse.errors import InputError

_MISSING = object()


@dataclass(frozen=True)
class Field:
    """One leaf value.

    kind:
        ``"number"`` (int or float), ``"int"``, ``"str"``, ``"bool"``, or ``"numbers"`` (a table
        of name → number, e.g. FLOPs per cycle keyed by number format).
    required:
        Missing keys are an error when true; otherwise ``default`` is returned (may be None).
    positive / minimum / maximum:
        Range rules for numbers (``positive`` means strictly greater than zero).
    choices:
        Allowed strings, or allowed keys of a ``"numbers"`` table.
    """

    kind: str = "number"
    required: bool = True
    default: Any = None
    positive: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Table:
    """A nested table of fields; ``sourced`` demands a ``sources`` entry for each value."""

    fields: Mapping[str, Field | Table]
    required: bool = True
    sourced: bool = False
    open_keys: bool = False  # a table of user-named entries, each checked against `entry`
    entry: Table | None = field(default=None)


def check(
    data: Mapping[str, Any], schema: Table, source: str | Path, prefix: str = ""
) -> dict[str, Any]:
    """Validate ``data`` against ``schema`` and return the cleaned values (defaults filled in)."""
    if schema.open_keys:
        assert schema.entry is not None
        return {
            name: check(
                _as_table(value, source, _join(prefix, name)),
                schema.entry,
                source,
                _join(prefix, name),
            )
            for name, value in data.items()
        }
    allowed = set(schema.fields) | ({"sources"} if schema.sourced else set())
    for key in data:
        if key not in allowed:
            raise InputError(source, _join(prefix, key), f"one of the keys {sorted(allowed)}", key)
    out: dict[str, Any] = {}
    for key, spec in schema.fields.items():
        dotted = _join(prefix, key)
        value = data.get(key, _MISSING)
        if isinstance(spec, Table):
            if value is _MISSING:
                if spec.required:
                    raise InputError(source, dotted, "a table", "nothing (missing)")
                value = {}
            out[key] = check(_as_table(value, source, dotted), spec, source, dotted)
        else:
            out[key] = _check_field(value, spec, source, dotted)
    if schema.sourced:
        out["sources"] = _check_sources(data.get("sources", {}), out, source, prefix)
    return out


def _check_field(value: Any, spec: Field, source: str | Path, key: str) -> Any:
    if value is _MISSING:
        if spec.required:
            raise InputError(source, key, _describe(spec), "nothing (missing)")
        return spec.default
    if spec.kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise InputError(source, key, _describe(spec), value)
        if spec.choices is not None and value not in spec.choices:
            raise InputError(source, key, f"one of {list(spec.choices)}", value)
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise InputError(source, key, "true or false", value)
        return value
    if spec.kind == "numbers":
        table = _as_table(value, source, key)
        result = {}
        for name, number in table.items():
            if spec.choices is not None and name not in spec.choices:
                raise InputError(
                    source, f"{key}.{name}", f"one of the keys {list(spec.choices)}", name
                )
            result[name] = _check_number(number, spec, source, f"{key}.{name}")
        if not result:
            raise InputError(source, key, "at least one entry", value)
        return result
    return _check_number(value, spec, source, key)


def _check_number(value: Any, spec: Field, source: str | Path, key: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(source, key, _describe(spec), value)
    if spec.kind == "int" and isinstance(value, float):
        if not value.is_integer():
            raise InputError(source, key, _describe(spec), value)
        value = int(value)
    if not math.isfinite(value):
        raise InputError(source, key, _describe(spec), value)
    if spec.positive and value <= 0:
        raise InputError(source, key, _describe(spec), value)
    if spec.minimum is not None and value < spec.minimum:
        raise InputError(source, key, _describe(spec), value)
    if spec.maximum is not None and value > spec.maximum:
        raise InputError(source, key, _describe(spec), value)
    return value


def _check_sources(
    sources: Any, values: Mapping[str, Any], source: str | Path, prefix: str
) -> dict[str, str]:
    table = _as_table(sources, source, _join(prefix, "sources"))
    for key, text in table.items():
        if key not in values:
            raise InputError(
                source,
                _join(prefix, f"sources.{key}"),
                f"a key of this table {sorted(values)}",
                key,
            )
        if not isinstance(text, str) or not text.strip():
            raise InputError(
                source, _join(prefix, f"sources.{key}"), "a non-empty source text", text
            )
    for key, value in values.items():
        needs_source = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and not key.startswith("year")
        )
        if needs_source and key not in table:
            raise InputError(
                source,
                _join(prefix, f"sources.{key}"),
                "a source for this value",
                "nothing (missing)",
            )
    return dict(table)


def _as_table(value: Any, source: str | Path, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(source, key, "a table", value)
    return value


def _describe(spec: Field) -> str:
    if spec.kind == "str":
        return "a non-empty string"
    noun = "a whole number" if spec.kind == "int" else "a number"
    rules = []
    if spec.positive and not (spec.minimum is not None and spec.minimum > 0):
        rules.append("> 0")
    if spec.minimum is not None:
        rules.append(f">= {shown_number(spec.minimum)}")
    if spec.maximum is not None:
        rules.append(f"<= {shown_number(spec.maximum)}")
    return f"{noun} {' and '.join(rules)}".strip()


def shown_number(value: float) -> str:
    """A bound as a person reads it: ``10,000`` or ``0.1`` or ``1e+09``."""
    if float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value):,}"
    return f"{value:g}"


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
