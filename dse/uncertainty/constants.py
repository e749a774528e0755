"""Uncertain constants: a distribution for each estimated or calibrated value, from
``chips/technology/uncertainty.toml`` (docs/sensitivity.md).

A constant is named as the sensitivity analysis reports it: ``tech.<table>.<key>`` for a key of a
technology table (a node, an HBM generation, a section of silicon.toml, an architecture family)
and ``settings.<key>`` for a model default of ``dse/defaults.toml``. Its distribution is
log-normal around the file's value (``sigma``: standard deviation of the logarithm, median the
value) or uniform on ``[low, high]`` (or on ``value ± plus_minus``, which follows the value when
a recalibration moves it); draws are clipped to the bounds the value's own file is
checked against.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from dse.catalog._paths import data_dir
from dse.catalog._schema import Field, Table
from dse.catalog.technology import (
    FAMILY_SCHEMA,
    MEMORY_SCHEMA,
    NODE_SCHEMA,
    SILICON_SCHEMA,
    Technology,
    load_technology,
)
from dse.designs import FloatArray
from dse.errors import InputError
from dse.files import read_toml
from dse.settings import SETTINGS_SCHEMA, Settings, load_settings

MAX_SIGMA = 2.0
"""Largest log-normal sigma accepted: a factor e² ≈ 7.4 per standard deviation."""


@dataclass(frozen=True)
class Uncertain:
    """One uncertain constant: its name, nominal value, distribution and reason.

    ``sigma`` (log-normal) or ``low``/``high`` (uniform) is set, the other None; ``bounds`` are
    the limits of the value's own schema (None where open).
    """

    name: str
    value: float
    reason: str
    sigma: float | None = None
    low: float | None = None
    high: float | None = None
    bounds: tuple[float | None, float | None] = (None, None)

    @property
    def kind(self) -> str:
        """``"tech"`` or ``"settings"``."""
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str | None:
        """The technology table (``n2``, ``hbm4``, ``yield``, ``nvidia-hopper``), or None."""
        return self.name.split(".")[1] if self.kind == "tech" else None

    @property
    def key(self) -> str:
        return self.name.rsplit(".", 1)[1]

    @property
    def certain(self) -> bool:
        """True when every draw equals the value (sigma 0, or low = high)."""
        if self.sigma is not None:
            return self.sigma == 0.0
        return self.low == self.high

    def describe(self) -> str:
        """The distribution in words: ``log-normal σ=0.2`` or ``uniform 0.5-0.9``."""
        if self.sigma is not None:
            return f"log-normal sigma={self.sigma:g}"
        return f"uniform {self.low:g}-{self.high:g}"

    def from_unit(self, u: np.ndarray) -> FloatArray:
        """Values at the quantiles ``u`` in (0, 1) (the inverse CDF), clipped to the bounds."""
        u = np.asarray(u, dtype=np.float64)
        if self.sigma is not None:
            from scipy.special import ndtri

            z = ndtri(np.clip(u, 1e-12, 1.0 - 1e-12))
            values = self.value * np.exp(self.sigma * z)
        else:
            assert self.low is not None and self.high is not None
            values = self.low + u * (self.high - self.low)
        low, high = self.bounds
        return np.clip(values, -np.inf if low is None else low, np.inf if high is None else high)

    def draw(self, rng: np.random.Generator, n: int) -> FloatArray:
        """``n`` independent draws."""
        return self.from_unit(rng.random(n))


UNCERTAINTY_FILE = "uncertainty.toml"


def uncertainty_path() -> Path:
    """The shipped uncertainty file, ``chips/technology/uncertainty.toml``."""
    return data_dir("chips") / "technology" / UNCERTAINTY_FILE


def _bounds(spec: Field) -> tuple[float | None, float | None]:
    low = spec.minimum
    if spec.positive and low is None:
        low = 0.0
    return low, spec.maximum


def _technology_tables(
    technology: Technology,
) -> dict[str, tuple[Mapping[str, Any], Mapping[str, Field | Table]]]:
    """Table id → (its values by key, its schema's fields), over all technology files."""
    tables: dict[str, tuple[Mapping[str, Any], Mapping[str, Field | Table]]] = {}
    for node in technology.nodes.values():
        tables[node.id] = (vars(node), NODE_SCHEMA.fields)
    for memory in technology.memories.values():
        tables[memory.id] = (vars(memory), MEMORY_SCHEMA.fields)
    for section, spec in SILICON_SCHEMA.fields.items():
        assert isinstance(spec, Table)
        tables[section] = (technology.silicon[section], spec.fields)
    for family in technology.families.values():
        tables[family.id] = (vars(family), FAMILY_SCHEMA.fields)
    return tables


def _settings_fields() -> dict[str, Field]:
    out: dict[str, Field] = {}
    for section in SETTINGS_SCHEMA.fields.values():
        assert isinstance(section, Table)
        out.update({k: v for k, v in section.fields.items() if isinstance(v, Field)})
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _entry(
    name: str, spec: Any, value: float, bounds: tuple[float | None, float | None], path: Path
) -> Uncertain:
    """One entry ``{sigma, reason}`` or ``{low, high, reason}``, checked."""
    shapes = (
        'a table {sigma = s, reason = "..."}, {low = a, high = b, reason = "..."} or '
        '{plus_minus = d, reason = "..."}'
    )
    if not isinstance(spec, dict):
        raise InputError(path, name, shapes, spec)
    keys = set(spec)
    if keys not in ({"sigma", "reason"}, {"low", "high", "reason"}, {"plus_minus", "reason"}):
        raise InputError(path, name, shapes, f"keys {sorted(keys)}")
    reason = spec["reason"]
    if not isinstance(reason, str) or not reason.strip():
        raise InputError(path, f"{name}.reason", "a non-empty string", reason)
    if "sigma" in spec:
        sigma = spec["sigma"]
        if not _number(sigma) or not 0.0 <= sigma <= MAX_SIGMA:
            raise InputError(path, f"{name}.sigma", f"a number >= 0 and <= {MAX_SIGMA:g}", sigma)
        if sigma > 0 and value <= 0:
            expected = "a range (low, high): a log-normal sigma needs a value > 0"
            raise InputError(path, name, expected, f"sigma with value {value:g}")
        return Uncertain(name, value, reason, sigma=float(sigma), bounds=bounds)
    if "plus_minus" in spec:
        width = spec["plus_minus"]
        if not _number(width) or width < 0:
            raise InputError(path, f"{name}.plus_minus", "a number >= 0", width)
        # Around whatever the value is now (a recalibration moves the value, not the spread),
        # within the key's bounds.
        lower, upper = bounds
        low = value - width if lower is None else max(value - width, lower)
        high = value + width if upper is None else min(value + width, upper)
        return Uncertain(name, value, reason, low=float(low), high=float(high), bounds=bounds)
    low, high = spec["low"], spec["high"]
    for key, given in (("low", low), ("high", high)):
        if not _number(given):
            raise InputError(path, f"{name}.{key}", "a finite number", given)
    if not low <= value <= high:
        raise InputError(
            path, name, f"low <= the value {value:g} <= high", f"low={low:g}, high={high:g}"
        )
    lower, upper = bounds
    if (lower is not None and low < lower) or (upper is not None and high > upper):
        shown = f"[{'-inf' if lower is None else f'{lower:g}'}, {'inf' if upper is None else f'{upper:g}'}]"
        raise InputError(
            path, name, f"a range within the key's bounds {shown}", f"[{low:g}, {high:g}]"
        )
    return Uncertain(name, value, reason, low=float(low), high=float(high), bounds=bounds)


@cache
def load_uncertainty(path: Path | None = None) -> tuple[Uncertain, ...]:
    """The uncertain constants of the shipped technology tables and defaults, checked: every
    name is a numeric key of a technology table or a setting, every range holds the value and
    stays within the key's bounds (cached)."""
    path = path or uncertainty_path()
    data = read_toml(path)
    technology = load_technology()
    settings = load_settings()
    unknown = set(data) - {"tech", "settings"}
    if unknown:
        raise InputError(
            path,
            sorted(unknown)[0],
            "one of the tables [tech.<table>], [settings]",
            sorted(unknown)[0],
        )
    out: list[Uncertain] = []
    tables = _technology_tables(technology)
    tech = data.get("tech", {})
    if not isinstance(tech, dict):
        raise InputError(path, "tech", "a table of technology tables", tech)
    for table, entries in tech.items():
        if table not in tables:
            raise InputError(
                path, f"tech.{table}", f"a technology table, one of {sorted(tables)}", table
            )
        if not isinstance(entries, dict):
            raise InputError(path, f"tech.{table}", "a table of keys", entries)
        values, fields = tables[table]
        for key, spec in entries.items():
            name = f"tech.{table}.{key}"
            field = fields.get(key)
            if not isinstance(field, Field) or field.kind not in ("number", "int"):
                numeric = sorted(
                    k
                    for k, f in fields.items()
                    if isinstance(f, Field) and f.kind in ("number", "int")
                )
                raise InputError(path, name, f"a numeric key of [{table}], one of {numeric}", key)
            out.append(_entry(name, spec, float(values[key]), _bounds(field), path))
    fields_by_name = _settings_fields()
    entries = data.get("settings", {})
    if not isinstance(entries, dict):
        raise InputError(path, "settings", "a table of settings", entries)
    for key, spec in entries.items():
        name = f"settings.{key}"
        field = fields_by_name.get(key)
        if field is None or field.kind not in ("number", "int"):
            numeric = sorted(k for k, f in fields_by_name.items() if f.kind in ("number", "int"))
            raise InputError(path, name, f"a numeric setting, one of {numeric}", key)
        out.append(_entry(name, spec, float(getattr(settings, key)), _bounds(field), path))
    return tuple(out)


def uncertain_constants(
    *,
    nodes: set[str] | None = None,
    memories: set[str] | None = None,
    families: set[str] | None = None,
    settings: Settings | None = None,
    scale: float = 1.0,
    path: Path | None = None,
) -> tuple[Uncertain, ...]:
    """The uncertain constants that can change designs on ``nodes``, HBM ``memories`` and of
    ``families`` (None: all), without the settings that ``settings`` gives other values than
    the defaults (a setting given explicitly is known), each spread scaled by ``scale``
    (0: every constant certain)."""
    technology = load_technology()
    defaults = load_settings()
    out = []
    for u in load_uncertainty(path):
        table = u.table
        if table in technology.nodes and nodes is not None and table not in nodes:
            continue
        if table in technology.memories and memories is not None and table not in memories:
            continue
        if table in technology.families and families is not None and table not in families:
            continue
        given = settings is not None and getattr(settings, u.key, None) != getattr(
            defaults, u.key, None
        )
        if u.kind == "settings" and given:
            continue
        out.append(scaled(u, scale))
    return tuple(out)


def scaled(u: Uncertain, scale: float) -> Uncertain:
    """``u`` with its spread multiplied by ``scale`` (a range shrinks toward the value)."""
    if scale == 1.0:
        return u
    if u.sigma is not None:
        return Uncertain(u.name, u.value, u.reason, sigma=u.sigma * scale, bounds=u.bounds)
    assert u.low is not None and u.high is not None
    low = u.value - (u.value - u.low) * scale
    high = u.value + (u.high - u.value) * scale
    return Uncertain(u.name, u.value, u.reason, low=low, high=high, bounds=u.bounds)
