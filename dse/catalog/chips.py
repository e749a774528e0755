"""The chip catalog: one TOML file per accelerator under ``chips/`` (schema in docs/catalog.md).

A :class:`Chip` holds the architecture parameters the model uses, the published datasheet
figures it is checked against, and the sources. Of the published figures only the unit price
enters the model (as the chip's price, docs/model.md §3.2); the rest are for checking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import make_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from dse.catalog._paths import catalog_ids, resolve
from dse.catalog._schema import Field, Table, check, shown_number
from dse.catalog.technology import Technology, load_technology
from dse.errors import InputError
from dse.files import read_toml
from dse.parameters import (
    FLOPS_GROUP,
    FORMATS,
    IN_CHIP_FILES,
    PARAMETERS,
    PER_DIE,
    SECTIONS,
    Parameter,
    choices,
    group_member,
    implied_by,
)

__all__ = ["BOUNDS", "CHIP_SCHEMA", "FORMATS", "Chip", "chip_ids", "key_table", "load_chip"]

BOUNDS: dict[str, tuple[float, float]] = {
    **{p.name: p.bounds() for p in PARAMETERS if not p.categorical},
    **{p.group[0]: p.bounds() for p in IN_CHIP_FILES if p.group},
}
"""Physical range (inclusive) of each architecture and cluster parameter, in its unit (from the
declarations in :mod:`dse.parameters`; a table of numbers by its table name): what a chip file,
a space's ``[fixed]`` values and its dimensions may hold."""

_PUBLISHED_MAX = {
    "die_area_mm2": 100_000.0,
    "transistors_b": 100_000.0,
    "peak_tflop_s": 1e7,
    "hbm_bandwidth_tb_s": 1000.0,
    "hbm_capacity_gb": 100_000.0,
    "tdp_w": 100_000.0,
    "unit_price_usd": 1e9,
    "attention_efficiency_scale": 1.5,
    "attention_fixed_tokens": 1e6,
}


def _published(name: str, kind: str = "number") -> Field:
    choices = FORMATS if kind == "numbers" else None
    return Field(kind, required=False, positive=True, maximum=_PUBLISHED_MAX[name], choices=choices)


def _field(p: Parameter) -> Field:
    if p.categorical:
        return Field("str", required=p.required)
    low, high = p.key_bounds or p.bounds()
    if p.zero_allowed and p.whole and not p.key_bounds:
        low = 0  # whole numbers: 0 or at least the lower bound (HBM stacks, analog tiles)
    kind = "int" if p.whole else "number"
    return Field(kind, required=p.required and not p.key_default, minimum=low, maximum=high)


def _members(group: str) -> tuple[Parameter, ...]:
    return tuple(p for p in IN_CHIP_FILES if p.group is not None and p.group[0] == group)


def _section_schema(section: str) -> Table:
    """The chip file table ``section``, one key per declared parameter it holds."""
    fields: dict[str, Field | Table] = {}
    for p in IN_CHIP_FILES:
        if p.section != section:
            continue
        if p.group is None:
            fields[p.file_key] = _field(p)
        elif p.group[0] not in fields:  # one table of numbers for all its members
            members = _members(p.group[0])
            low, high = p.bounds()
            fields[p.group[0]] = Field(
                "numbers",
                minimum=low,
                maximum=high,
                choices=tuple(m.group[1] for m in members if m.group),
            )
    return Table(fields)


CHIP_SCHEMA = Table(
    {
        "name": Field("str"),
        "vendor": Field("str"),
        "family": Field("str", required=False, default="unknown"),
        "year": Field("int", minimum=1990, maximum=2100),
        "source": Field("str"),
        "notes": Field("str", required=False, default=""),
        "same_silicon_as": Field("str", required=False, default=""),
        **{section: _section_schema(section) for section in SECTIONS},
        "published": Table(
            {
                "die_area_mm2": _published("die_area_mm2"),
                "transistors_b": _published("transistors_b"),
                "peak_tflop_s": _published("peak_tflop_s", "numbers"),
                "hbm_bandwidth_tb_s": _published("hbm_bandwidth_tb_s"),
                "hbm_capacity_gb": _published("hbm_capacity_gb"),
                "tdp_w": _published("tdp_w"),
                "unit_price_usd": _published("unit_price_usd"),
                # §2.6 measured on the chip's own published attention kernel timings
                "attention_efficiency_scale": _published("attention_efficiency_scale"),
                "attention_fixed_tokens": _published("attention_fixed_tokens"),
                "price_note": Field("str", required=False, default=""),
            },
            required=False,
        ),
    }
)
"""The chip file schema: metadata, one key per declared design parameter in its section, and
the published figures."""


class _ChipMethods:
    """Accessors shared by every :class:`Chip`."""

    file_values: Mapping[str, Any]

    def flops_per_cycle(self, fmt: str) -> float:
        """Dense FLOPs per cycle per unit in ``fmt``; 0 when the chip lacks the format."""
        return float(getattr(self, group_member(FLOPS_GROUP, fmt).name))

    @property
    def flops_per_cycle_per_unit(self) -> Mapping[str, float]:
        """The formats the chip supports → dense FLOPs per cycle per unit."""
        return {fmt: self.flops_per_cycle(fmt) for fmt in FORMATS if self.flops_per_cycle(fmt)}

    def file_value(self, key: str) -> Any:
        """A parameter's value as the chip file gives it (defaults filled in), by file key."""
        return self.file_values[key]


_METADATA: tuple[tuple[str, type], ...] = (
    ("id", str),
    ("path", Path),
    ("name", str),
    ("vendor", str),
    ("family", str),
    ("year", int),
    ("source", str),
    ("notes", str),
    ("same_silicon_as", str),
)
_TYPES: dict[str, type] = {"int": int, "float": float, "category": str}

if TYPE_CHECKING:

    class Chip(_ChipMethods):
        """One accelerator package (see the runtime class below)."""

        id: str
        path: Path
        name: str
        vendor: str
        family: str
        year: int
        source: str
        notes: str
        published: MappingProxyType[str, object]
        file_values: MappingProxyType[str, Any]

        def __init__(self, **values: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...  # one attribute per declared parameter

else:
    Chip = make_dataclass(
        "Chip",
        [
            *_METADATA,
            *((p.name, _TYPES[p.kind]) for p in IN_CHIP_FILES),
            ("published", MappingProxyType),
            ("file_values", MappingProxyType),
        ],
        bases=(_ChipMethods,),
        frozen=True,
        namespace={
            "__doc__": """One accelerator package: architecture parameters plus published figures.

    Metadata (``id``, ``path``, ``name``, ``vendor``, ``family``, ``year``, ``source``,
    ``notes``), one attribute per design parameter a chip file gives (declared in
    :mod:`dse.parameters`: ``chip.tdp_w``; categoricals by id, number formats the chip lacks
    0), ``published`` figures and ``file_values`` (the file's keys, defaults filled in).

    All per-package quantities (compute units, SRAM, HBM stacks) count the whole package; the
    silicon model divides by ``dies_per_package`` where it needs per-die figures.
    """
        },
    )
    Chip.__module__ = __name__  # for pickling (make_dataclass's module= needs Python 3.12)


def chip_ids() -> list[str]:
    """Ids of the shipped chips."""
    return catalog_ids("chips")


def load_chip(name: str | Path) -> Chip:
    """Load a chip by catalog id or TOML path, validated against the schema and the technology."""
    path = resolve("chips", name)
    values = check(read_toml(path), CHIP_SCHEMA, path)
    technology = load_technology()
    parameters: dict[str, Any] = {}
    file_values: dict[str, Any] = {}
    for p in IN_CHIP_FILES:
        assert p.section is not None
        section = values[p.section]
        key = f"{p.section}.{p.file_key}"
        if p.group is not None:
            parameters[p.name] = float(section[p.group[0]].get(p.group[1], 0.0))
            continue
        raw = section[p.file_key]
        if raw is None and p.key_default:
            raw = section[p.key_default]
        if raw is None and p.default is not None:
            raw = p.default
        if raw is None and p.from_file is None:  # a value a categorical implies (HBM pins)
            raw = _implied(p, parameters, technology)
        file_values[p.file_key] = raw
        if p.categorical and raw not in choices(p.name, technology):
            raise InputError(path, key, f"one of {choices(p.name, technology)}", raw)
        if p.per_die and raw is not None and raw < section[PER_DIE]:
            raise InputError(path, key, "at least one per die", raw)
        if p.from_file is not None:
            try:
                raw = p.from_file(raw, section)
            except ValueError as rule:
                raise InputError(path, key, str(rule), raw) from None
        parameters[p.name] = _TYPES[p.kind](raw)
    _check_formats(path, parameters)
    _check_same_silicon(path, values["same_silicon_as"])
    return Chip(
        id=path.stem,
        path=path,
        **{name: values[name] for name, _ in _METADATA if name in values},
        **parameters,
        published=MappingProxyType(
            {k: v for k, v in values["published"].items() if v not in (None, "")}
        ),
        file_values=MappingProxyType(file_values),
    )


def _check_same_silicon(path: Path, reference: str) -> None:
    """``same_silicon_as`` names another catalog chip, and following the chips it names never
    comes back to this one (docs/model.md §1.7)."""
    if not reference:
        return
    key = "same_silicon_as"
    seen = {path.stem}
    while reference:
        if reference not in chip_ids() or reference in seen:
            expected = "the id of another catalog chip (dse chips list)"
            if reference in seen and reference in chip_ids():
                expected = f"a chain of same_silicon_as that ends (it comes back to {reference})"
            raise InputError(path, key, expected, reference)
        seen.add(reference)
        reference = load_chip(reference).same_silicon_as


def _implied(p: Parameter, parameters: Mapping[str, Any], technology: Technology) -> Any:
    source = implied_by(p.name)
    if source is None:
        raise AssertionError(f"{p.name}: optional in chip files but implied by no categorical")
    categorical, attribute = source
    entry = getattr(technology, categorical.table or "")[parameters[categorical.name]]
    return getattr(entry, attribute)


def _check_formats(path: Path, parameters: Mapping[str, Any]) -> None:
    """A narrower number format is never slower than a wider one."""
    wider = 0.0
    for fmt in FORMATS:  # widest first
        p = group_member(FLOPS_GROUP, fmt)
        rate = parameters[p.name]
        if rate:
            if rate < wider:
                raise InputError(
                    path,
                    f"{p.section}.{p.file_key}",
                    f"at least the wider formats' rate ({wider:g})",
                    rate,
                )
            wider = max(wider, rate)


def key_table() -> str:
    """The rows of docs/catalog.md's chip-key table for the declared parameters, section by
    section (markdown; the tests check that the page holds them)."""
    technology = load_technology()
    rows: list[str] = []
    for section in SECTIONS:
        rows.append(f"| **`[{section}]`** | | yes | table | |")
        done: set[str] = set()
        for p in IN_CHIP_FILES:
            if p.section != section:
                continue
            if p.group is not None:
                if p.group[0] in done:
                    continue
                done.add(p.group[0])
                members = _members(p.group[0])
                formats = ", ".join(f"`{m.group[1]}`" for m in members if m.group)
                names = ", ".join(f"`{m.name}`" for m in members)
                low, high = (shown_number(b) for b in p.bounds())
                rows.append(
                    f"| `[{section}.{p.group[0]}]` | {p.unit} | yes | table; keys from "
                    f"{formats}; each {low}–{high}; at least one | dense FLOPs per clock "
                    f"cycle per compute unit, design parameters {names}; a format that is "
                    "absent is not supported (0) |"
                )
                continue
            rows.append(
                f"| `{p.file_key}` | {p.unit or '–'} | {_required(p)} | {_rule(p, technology)} "
                f"| {_meaning(p)} |"
            )
    return "\n".join(rows)


def _required(p: Parameter) -> str:
    if p.required and not p.key_default:
        return "yes"
    if p.key_default:
        return f"no (= `{p.key_default}`)"
    if isinstance(p.default, str):
        return f"no (`{p.default}`)"
    if p.default is not None:
        return f"no ({shown_number(p.default)})"
    source = implied_by(p.name)
    attribute = source[1] if source else "?"
    return f"no (generation's `{attribute}`)" if source else "no"


def _rule(p: Parameter, technology: Technology) -> str:
    if p.categorical:
        ids = ", ".join(f"`{i}`" for i in choices(p.name, technology))
        return f"an id of technology table `{p.table}` ({ids})"
    low, high = (shown_number(b) for b in (p.key_bounds or p.bounds()))
    rule = f"{'whole number ' if p.whole else ''}{low}–{high}"
    if p.zero_allowed and p.whole and not p.key_bounds:
        rule += ", or 0"
    if p.per_die:
        rule += f", ≥ `{PER_DIE}`"
    if p.key_default:
        rule += f", ≥ `{p.key_default}`"
    return rule


def _meaning(p: Parameter) -> str:
    name = "" if p.file_key == p.name else f"design parameter `{p.name}`: "
    notes = f"; {p.notes}" if p.notes else ""
    return f"{name}{p.description}{notes}"
